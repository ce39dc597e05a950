//! `/account/security`: a signed-in person sets up and removes their second
//! factors and makes new recovery codes. Every change goes through the
//! admin layer as the person themselves (`Actor::Owner`).
//!
//! Who may change what: a person who holds a second factor manages their
//! factors only from a session that proved one (else they are asked for it
//! first), so a stolen password cannot swap the factor out. A person with
//! none may set one up from a password session (as they must, when an app
//! requires one); confirming it proves the factor in this session, which
//! then counts as a two-factor sign-in.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::AppState;
use super::error::WebError;
use super::login::{SECURITY_PATH, step_up};
use super::signed_in::{Section, Shell, SignedIn};
use crate::admin::{self, Actor, AdminError, ErrorClass};
use crate::login::flow::{Method, has_mfa, with_second_factor};
use crate::login::safe_next;
use crate::oidc::params::{Params, decode_pairs};
use crate::store::{FactorKind, SessionUser};

/// The page, as `templates/security.html` shows it.
#[derive(askama::Template)]
#[template(path = "security.html")]
struct SecurityPage<'a> {
    shell: Shell<'a>,
    /// Where to go on when done (a path on Latch), or empty.
    next: &'a str,
    totp: Option<FactorView>,
    setup: Option<SetupView>,
    /// The only factor held: removing it leaves none.
    last_factor: bool,
    /// The apps the person may use that require a second factor.
    required_by: Vec<String>,
    codes_left: i64,
    /// Recovery codes made by this request, shown once.
    new_codes: Vec<String>,
    notice: Option<&'a str>,
    error: Option<String>,
}

struct FactorView {
    created: String,
    last_used: Option<String>,
}

struct SetupView {
    secret: String,
    /// The `otpauth://` URI as an inline SVG QR code (made here, no script).
    qr_svg: String,
}

/// What one request did, for the page that answers it.
#[derive(Default)]
struct Answer {
    new_codes: Vec<String>,
    notice: Option<&'static str>,
    error: Option<String>,
}

fn params(raw: &[u8]) -> Result<Params, WebError> {
    decode_pairs(raw)
        .and_then(Params::from_pairs)
        .map_err(|error| WebError::page(StatusCode::BAD_REQUEST, "Invalid request", error.to_string()))
}

/// The page's own URL, keeping `next`.
fn here(next: &str) -> String {
    if next.is_empty() {
        return SECURITY_PATH.to_owned();
    }
    format!("{SECURITY_PATH}?{}", serde_urlencoded::to_string([("next", next)]).unwrap_or_default())
}

/// `next` as given, if it is a path on Latch; else empty.
fn next_of(params: &Params) -> &str {
    params.get("next").map(|next| safe_next(Some(next))).filter(|next| *next != "/").unwrap_or_default()
}

/// `None` when the person may use the page now; else the step-up page:
/// holding a factor that this session has not proven, they prove it first.
async fn unproven(
    state: &AppState,
    headers: &HeaderMap,
    signed_in: &SignedIn,
    next: &str,
) -> Result<Option<Response>, WebError> {
    let session = &signed_in.session;
    if has_mfa(&session.amr) || admin::list_factors(&state.store, &session.username).await?.is_empty() {
        return Ok(None);
    }
    Ok(Some(step_up(state, headers, session, &here(next), "Changing your sign-in security").await?))
}

pub async fn page(
    signed_in: SignedIn,
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let query = params(query.unwrap_or_default().as_bytes())?;
    let next = next_of(&query);
    if let Some(step_up) = unproven(&state, &headers, &signed_in, next).await? {
        return Ok(step_up);
    }
    show(&state, &signed_in, next, Answer::default()).await
}

pub async fn submit(
    signed_in: SignedIn,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = params(&body)?;
    let next = next_of(&form);
    signed_in.check_form(&state, &headers, form.get("csrf_token"))?;
    if let Some(step_up) = unproven(&state, &headers, &signed_in, next).await? {
        return Ok(step_up);
    }
    let answer = act(&state, &signed_in.session, &form).await?;
    show(&state, &signed_in, next, answer).await
}

/// Does what the posted form asks, as the person themselves.
async fn act(state: &AppState, session: &SessionUser, form: &Params) -> Result<Answer, WebError> {
    let actor = Actor::Owner { user_id: session.user_id.clone(), username: session.username.clone() };
    let (store, username) = (&state.store, session.username.as_str());
    let mut answer = Answer::default();
    match form.get("action").unwrap_or_default() {
        "totp_begin" => match admin::begin_totp_setup(store, username).await {
            Err(error) if error.class() == ErrorClass::Conflict => {
                answer.error = Some("You already have an authenticator app; remove it first.".into());
            }
            begun => drop(begun?),
        },
        "totp_confirm" => {
            let (code, now) = (form.get("code").unwrap_or_default(), state.clock.now());
            match admin::confirm_totp(store, &actor, username, code, now).await {
                Err(AdminError::Invalid { reason, .. }) => answer.error = Some(reason),
                confirmed => {
                    confirmed?;
                    // The code just proved the factor in this session.
                    store
                        .set_session_amr(&session.id_hash, &with_second_factor(&session.amr, Method::Otp), now)
                        .await?;
                    answer.new_codes = admin::new_recovery_codes(store, &actor, username).await?.codes;
                    answer.notice = Some("Your authenticator app is set up. Here are your recovery codes.");
                }
            }
        }
        "totp_remove" => {
            admin::remove_totp(store, &actor, username).await?;
            answer.notice = Some("The authenticator app is removed.");
        }
        "recovery_regenerate" => {
            answer.new_codes = admin::new_recovery_codes(store, &actor, username).await?.codes;
            answer.notice = Some("Here is your new set of recovery codes; the old ones no longer work.");
        }
        _ => return Err(WebError::page(StatusCode::BAD_REQUEST, "Invalid request", "Unknown action.")),
    }
    Ok(answer)
}

/// Renders the page for the signed-in person.
async fn show(state: &AppState, signed_in: &SignedIn, next: &str, answer: Answer) -> Result<Response, WebError> {
    let session = &signed_in.session;
    let (store, username) = (&state.store, session.username.as_str());
    let factors = admin::list_factors(store, username).await?;
    let totp = factors
        .iter()
        .find(|factor| factor.kind == FactorKind::Totp)
        .map(|factor| FactorView { created: when(factor.created), last_used: factor.last_used.map(when) });
    let setup = match totp {
        Some(_) => None,
        None => admin::pending_totp_setup(store, username)
            .await?
            .map(|setup| SetupView { qr_svg: qr_svg(&setup.otpauth_uri), secret: setup.secret }),
    };
    let required_by = store.apps_requiring_mfa(&session.user_id, state.mfa.required_by_default).await?;
    let codes_left = admin::recovery_codes_left(store, username).await?;
    let status = if answer.error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page = SecurityPage {
        shell: signed_in.shell(Section::Security),
        next,
        last_factor: factors.len() == 1,
        totp,
        setup,
        required_by,
        codes_left,
        new_codes: answer.new_codes,
        notice: answer.notice,
        error: answer.error,
    };
    Ok(signed_in.page(status, &page))
}

/// A Unix time as people read it (UTC, RFC 3339).
fn when(at: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(at).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// `uri` as a QR code in SVG, to put inline in the page (an image from a
/// `data:` URL would need the CSP to allow it); empty if it does not fit a
/// QR code, which an `otpauth://` URI always does.
fn qr_svg(uri: &str) -> String {
    use qrcode::render::svg;
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code.render::<svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
            // The XML declaration has no place inside HTML.
            svg.split_once("?>").map_or(svg.clone(), |(_, rest)| rest.to_owned())
        }
        Err(error) => {
            tracing::error!(%error, "cannot make a QR code of an otpauth URI");
            String::new()
        }
    }
}
