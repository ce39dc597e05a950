//! Signing keys: the list (never a private half) and scheduling the next
//! key of an algorithm.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::dates::date_time;
use super::form::Form;
use super::{ConsoleAdmin, DoneQuery, Frame, Section, Shell, Stop, done, found, refused};
use crate::admin::{self, AdminError, KeyListing, RotateKey};
use crate::crypto::keys::SigningAlg;
use crate::web::AppState;

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage<'a> {
    shell: Shell<'a>,
    frame: Frame<'a>,
    keys: Vec<KeyRow>,
    /// The rotation form's values, as typed.
    grace: &'a str,
    /// Each algorithm, and whether it is the one chosen.
    algs: Vec<(&'static str, bool)>,
}

struct KeyRow {
    kid: String,
    alg: &'static str,
    status: &'static str,
    created: String,
    signs_from: String,
    retires: String,
}

impl From<&KeyListing> for KeyRow {
    fn from(key: &KeyListing) -> Self {
        Self {
            kid: key.kid.clone(),
            alg: key.alg.as_str(),
            status: key.status.name(),
            created: date_time(key.created_at),
            signs_from: date_time(key.activates_at),
            retires: key.retire_at.map(date_time).unwrap_or_else(|| "—".into()),
        }
    }
}

/// The grace period the form proposes: long enough for every instance
/// and every app's cached JWKS.
const DEFAULT_GRACE: &str = "1h";

pub async fn list(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Query(query): Query<DoneQuery>,
) -> Result<Response, Stop> {
    let notice = (query.done.as_deref() == Some("rotated"))
        .then_some("The new key is published now and signs once the grace period has passed.");
    keys_page(&state, &admin, StatusCode::OK, notice, None, SigningAlg::RS256.as_str(), DEFAULT_GRACE).await
}

async fn keys_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    alg: &str,
    grace: &str,
) -> Result<Response, Stop> {
    let keys = found(admin::list_keys(&state.store).await)?;
    let algs = SigningAlg::NAMES.iter().map(|name| (*name, *name == alg)).collect();
    let mut frame = admin.frame(Section::Keys);
    frame.notice = notice;
    frame.error = error;
    let page = KeysPage { shell: admin.shell(), frame, keys: keys.iter().map(KeyRow::from).collect(), grace, algs };
    Ok(admin.show(status, &page))
}

/// `POST /admin/keys/rotate`.
pub async fn rotate(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let form = Form::parse(&body);
    admin.check_form(&state, &headers, &form)?;
    admin.require_fresh(&state, "/admin/keys")?;
    let (alg, grace) = (form.text("alg"), form.text("grace"));
    let outcome = match alg.parse::<SigningAlg>() {
        Ok(alg) => {
            admin::rotate_key(&state.store, &state.config, &admin.actor, RotateKey { alg, grace: grace.clone() })
                .await
                .map(|_| ())
        }
        Err(error) => Err(AdminError::invalid("alg", error.to_string())),
    };
    match outcome {
        Ok(()) => Ok(done("/admin/keys", "rotated")),
        Err(error) => {
            let (status, message) = refused(error)?;
            keys_page(&state, &admin, status, None, Some(message), &alg, &grace).await
        }
    }
}
