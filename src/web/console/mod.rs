//! The admin console at `/admin`, for members of `latch-admins`: thin
//! pages over the admin layer (`crate::admin`), the same functions the CLI
//! calls, with the signed-in administrator as the actor. It never writes
//! the store itself. Every form carries a CSRF token; a change answers with
//! a redirect to a page (POST-redirect-GET), except where it shows a
//! secret once (a generated password, a client secret), which is never
//! put in a URL. A refused change shows the form again, as typed, with the
//! admin layer's reason.

mod apps;
mod chart;
mod dashboard;
mod dates;
mod events;
mod form;
mod groups;
mod invites;
mod keys;
mod users;

use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::error::WebError;
use super::fresh;
use super::pages::error_page;
use super::signed_in::{Section as ShellSection, Shell, SignedIn};
use super::{AppState, redirect};
use crate::admin::{Actor, AdminError, ErrorClass};

/// The console's routes; every one needs an administrator (`ConsoleAdmin`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard::page))
        .route("/admin/", get(dashboard::page))
        .route("/admin/users", get(users::list).post(users::create))
        .route("/admin/users/new", get(users::new).post(invites::invite))
        .route("/admin/users/{username}", get(users::show))
        .route("/admin/users/{username}/reset-link", post(invites::reset_link))
        .route("/admin/users/{username}/{action}", post(users::act))
        .route("/admin/groups", get(groups::list).post(groups::create))
        .route("/admin/groups/{name}", get(groups::show))
        .route("/admin/groups/{name}/{action}", post(groups::act))
        .route("/admin/apps", get(apps::list).post(apps::create))
        .route("/admin/apps/new", get(apps::new))
        .route("/admin/apps/{slug}", get(apps::show).post(apps::update))
        .route("/admin/apps/{slug}/rotate-secret", post(apps::rotate_secret))
        .route("/admin/apps/{slug}/remove", post(apps::remove))
        .route("/admin/keys", get(keys::list))
        .route("/admin/keys/rotate", post(keys::rotate))
        .route("/admin/events", get(events::list))
        .route("/admin/events.jsonl", get(events::export))
}

/// The administrator behind a console request: a signed-in member of
/// `latch-admins`. Anyone else is refused before a handler runs: a page
/// request without a session goes to sign in (and back), a signed-in person
/// who is not an administrator gets a 403 page (`SignedIn`).
pub struct ConsoleAdmin {
    /// The admin layer's actor: `web:<username>` in the audit trail.
    pub actor: Actor,
    signed_in: SignedIn,
}

impl FromRequestParts<AppState> for ConsoleAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        signed_in.require_administrator().map_err(IntoResponse::into_response)?;
        let session = &signed_in.session;
        let actor = Actor::WebAdmin { user_id: session.user_id.clone(), username: session.username.clone() };
        Ok(Self { actor, signed_in })
    }
}

impl ConsoleAdmin {
    /// The layout's part of a console page.
    fn shell(&self) -> Shell<'_> {
        self.signed_in.shell(ShellSection::Admin)
    }

    /// The console's part of a page in `section`.
    fn frame(&self, section: Section) -> Frame<'_> {
        Frame { csrf_token: &self.signed_in.csrf_token, section, notice: None, error: None }
    }

    /// `page` with `status` (and the CSRF cookie, when the browser needs one).
    fn show(&self, status: StatusCode, page: &impl Template) -> Response {
        self.signed_in.page(status, page)
    }

    /// Refuses a posted form whose CSRF token does not fit this browser:
    /// the page it came from is too old, or it came from another site.
    fn check_form(&self, state: &AppState, headers: &HeaderMap, form: &form::Form) -> Result<(), Stop> {
        Ok(self.signed_in.check_form(state, headers, form.get("csrf_token"))?)
    }

    /// Refuses a sensitive action (a secret, keys, granting admin, someone
    /// else's factors) unless the administrator proved their password in
    /// the last `FRESH_FOR` seconds: `Err` sends them to confirm it and
    /// then back to `back`, the GET page the form was on, to press the
    /// button again (a posted action is never replayed).
    fn require_fresh(&self, state: &AppState, back: &str) -> Result<(), Stop> {
        fresh::require_fresh(state, &self.signed_in.session, back).map_or(Ok(()), |detour| Err(detour.into()))
    }
}

/// A response that ends a handler early: a refusal page, a redirect to
/// sign in. Boxed, as a `Response` is large for an `Err`.
pub struct Stop(Box<Response>);

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for Stop {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl From<WebError> for Stop {
    fn from(error: WebError) -> Self {
        error.into_response().into()
    }
}

/// The query of a page a change redirected to: `done` names what was
/// done (see `done`).
#[derive(serde::Deserialize)]
pub struct DoneQuery {
    pub done: Option<String>,
}

/// The console's sections, for its navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Users,
    Groups,
    Apps,
    Keys,
    Events,
}

/// What every console page shows above its content (inside the layout's
/// `Shell`): where in the console it is, and the outcome of what was just
/// done.
pub struct Frame<'a> {
    pub csrf_token: &'a str,
    pub section: Section,
    /// What the last change did (after its redirect), from a fixed list.
    pub notice: Option<&'static str>,
    /// Why the change just posted was refused.
    pub error: Option<String>,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Self::Dashboard => "dashboard",
            Self::Users => "users",
            Self::Groups => "groups",
            Self::Apps => "apps",
            Self::Keys => "keys",
            Self::Events => "events",
        }
    }
}

impl Frame<'_> {
    /// `aria-current` for the navigation link of the section named `name`.
    pub fn current(&self, name: &str) -> &'static str {
        if self.section.name() == name { "page" } else { "false" }
    }
}

/// A refused admin operation as the status and message to show on its
/// form; `Err` for a failure that is not the operator's to fix (logged,
/// answered with a generic 500 page).
fn admin_failure(error: AdminError) -> Result<(StatusCode, String), WebError> {
    let status = match error.class() {
        ErrorClass::NotFound => StatusCode::NOT_FOUND,
        ErrorClass::Conflict => StatusCode::CONFLICT,
        ErrorClass::Invalid => StatusCode::BAD_REQUEST,
        ErrorClass::Internal => {
            return Err(match error {
                AdminError::Store(error) => error.into(),
                other => {
                    tracing::error!(error = %other, "admin console operation failed");
                    WebError::page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Please try again.")
                }
            });
        }
    };
    Ok((status, error.to_string()))
}

/// `admin_failure`, its `Err` already a response.
fn refused(error: AdminError) -> Result<(StatusCode, String), Stop> {
    admin_failure(error).map_err(Stop::from)
}

/// `Ok` the value, or the response for a failure no form can show (a
/// missing object's own page: 404).
fn found<T>(result: Result<T, AdminError>) -> Result<T, Stop> {
    result.map_err(|error| match admin_failure(error) {
        Ok((status, message)) => stop(status, "Not found", &message),
        Err(error) => error.into(),
    })
}

/// The 404 page for a `kind` named `name` that is not there.
fn missing(kind: &'static str, name: &str) -> Stop {
    stop(StatusCode::NOT_FOUND, "Not found", &AdminError::not_found(kind, name).to_string())
}

/// An error page that ends a handler.
fn stop(status: StatusCode, title: &str, message: &str) -> Stop {
    error_page(status, title, message).into()
}

/// The redirect after a change: back to `path`, telling it what was done
/// by a key from the page's fixed list of notices (never text from the
/// request, which a link could forge).
fn done(path: &str, what: &str) -> Response {
    redirect(&format!("{path}?done={what}"))
}

/// `name` percent-encoded (every byte but ASCII letters and digits), to put
/// a username, group or slug in a path or query.
fn path_part(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}
