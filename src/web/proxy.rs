//! Forward-auth handlers: read what the proxy or the browser sent (its
//! headers in `forwarded`, its cookies with `web::cookies`), call
//! `crate::proxy`, turn its answer into a response. Errors map to responses
//! in `web::error`, like every other error.

mod forwarded;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::{any, get};

use self::forwarded::{
    X_FORWARDED_METHOD, X_ORIGINAL_METHOD, forwarded_method, navigation, rd_from_query, target_from_forwarded,
    target_from_nginx,
};
use super::AppState;
use super::cookies::{self, set_cookie};
use super::error::{InFormat, WebError};
use super::login::step_up;
use super::oidc::current_session;
use super::ops::Requester;
use super::pages::{LogoutPage, MessagePage, render};
use crate::oidc::params::check_form;
use crate::proxy::cookie::{self, ProxyCookie};
use crate::proxy::target::TargetUrl;
use crate::proxy::{
    CADDY_PATH, CALLBACK_PATH, Decision, Identity, NGINX_PATH, ProxyError, SIGN_OUT_PATH, SSO_PATH, START_PATH,
    SsoOutcome, TRAEFIK_PATH, sign_out_confirmation,
};
use crate::store::ProxyUser;

/// On a 401 to a page navigation, where nginx should send the browser to
/// sign in (`auth_request_set … $upstream_http_x_latch_start_url`). Absent
/// for anything else, which nginx then answers with the 401 itself.
const START_URL_HEADER: &str = "x-latch-start-url";
/// The sign-out form's confirmation field.
const CONFIRMATION_FIELD: &str = "csrf_token";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(NGINX_PATH, any(auth_nginx))
        .route(TRAEFIK_PATH, any(auth_redirecting))
        .route(CADDY_PATH, any(auth_redirecting))
        .route(START_PATH, get(start))
        .route(SSO_PATH, get(sso))
        .route(CALLBACK_PATH, get(callback))
        .route(SIGN_OUT_PATH, get(confirm_sign_out).post(sign_out))
}

/// Refuses a query with a control character in it (a NUL would reach SQL).
fn check_query(query: Option<&str>) -> Result<(), ProxyError> {
    check_form(query.unwrap_or_default().as_bytes()).map_err(|error| ProxyError::BadRequest(error.to_string()))
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

async fn decide(state: &AppState, target: &TargetUrl, headers: &HeaderMap) -> Result<Decision, WebError> {
    let candidates = cookie::session_candidates(&cookies::pairs(headers), target);
    Ok(state.forward_auth.check(target, &candidates, state.clock.now()).await?)
}

/// Whether the request a proxy asks about is a page navigation: its own
/// headers come along unchanged, its method in `method_header`.
fn proxied_navigation(headers: &HeaderMap, method_header: &str) -> bool {
    navigation(headers, forwarded_method(headers, method_header)).is_navigation()
}

/// nginx `auth_request`: 200, 401 or 403. On a 401 for a page navigation
/// the URL of `start` comes along for nginx's `error_page 401` to redirect
/// to; without it, nginx passes the 401 on.
async fn auth_nginx(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let target = target_from_nginx(&headers)?;
    Ok(match decide(&state, &target, &headers).await? {
        Decision::Allow(identity) => allow(&identity),
        // nginx reads the status and the start header only: no page.
        Decision::SignIn { start_url } if proxied_navigation(&headers, X_ORIGINAL_METHOD) => no_store(
            (StatusCode::UNAUTHORIZED, [(HeaderName::from_static(START_URL_HEADER), start_url)], Extension(InFormat))
                .into_response(),
        ),
        Decision::SignIn { .. } => unauthorized(),
        Decision::Forbidden { app_name, username } => forbidden(&app_name, &username),
    })
}

/// Traefik `forwardAuth` and Caddy `forward_auth` pass a non-2xx answer on
/// to the browser, so a page navigation is redirected to sign in from
/// here; anything else gets the 401.
async fn auth_redirecting(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let target = target_from_forwarded(&headers)?;
    Ok(match decide(&state, &target, &headers).await? {
        Decision::Allow(identity) => allow(&identity),
        Decision::SignIn { start_url } if proxied_navigation(&headers, X_FORWARDED_METHOD) => {
            no_store((StatusCode::FOUND, [(LOCATION, start_url)]).into_response())
        }
        Decision::SignIn { .. } => unauthorized(),
        Decision::Forbidden { app_name, username } => forbidden(&app_name, &username),
    })
}

/// Not signed in, to a script or API client: nothing to follow.
fn unauthorized() -> Response {
    no_store(
        (
            StatusCode::UNAUTHORIZED,
            Extension(InFormat),
            "Sign-in required: open the app in a browser tab to sign in.\n",
        )
            .into_response(),
    )
}

/// Signed in and admitted: 200, with the headers that tell the app who it is.
fn allow(identity: &Identity) -> Response {
    let mut response = no_store(StatusCode::OK.into_response());
    for (name, value) in identity_headers(identity.user()) {
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                response.headers_mut().insert(name, value);
            }
            Err(_) => {
                tracing::warn!(header = %name, user = identity.user().username, "identity header value not sendable")
            }
        }
    }
    response
}

/// Authentik's `X-authentik-*` names and the `Remote-*` ones Authelia and
/// many apps read. Groups are `|`-separated in the first (as Authentik) and
/// `,`-separated in the second (as Authelia); group names may contain neither.
fn identity_headers(user: &ProxyUser) -> [(HeaderName, String); 9] {
    let name = HeaderName::from_static;
    [
        (name("x-authentik-username"), user.username.clone()),
        (name("x-authentik-groups"), user.groups.join("|")),
        (name("x-authentik-email"), user.email.clone()),
        (name("x-authentik-name"), user.name.clone()),
        (name("x-authentik-uid"), user.id.clone()),
        (name("remote-user"), user.username.clone()),
        (name("remote-groups"), user.groups.join(",")),
        (name("remote-email"), user.email.clone()),
        (name("remote-name"), user.name.clone()),
    ]
}

fn forbidden(app_name: &str, username: &str) -> Response {
    tracing::info!(app = app_name, username, "forward auth: access denied");
    let message = format!(
        "You are signed in as {username}, but {app_name} is only open to members of certain groups. \
         Ask an administrator for access."
    );
    no_store(WebError::page(StatusCode::FORBIDDEN, "No access to this app", message).into_response())
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn set_cookies(cookies: &[ProxyCookie]) -> AppendHeaders<Vec<(HeaderName, String)>> {
    AppendHeaders(cookies.iter().map(|cookie| (SET_COOKIE, set_cookie(cookie))).collect())
}

/// Step 1, on the app's host: refuses any `rd` outside the proxy apps. A
/// script that followed a redirect here (a proxy config that redirects
/// every 401, as Authentik's do) gets the 401, and starts no sign-in.
async fn start(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    check_query(query.as_deref())?;
    if !navigation(&headers, Some(method.as_str())).is_navigation() {
        return Ok(unauthorized());
    }
    let rd = rd_from_query(query.as_deref().unwrap_or_default());
    let in_progress = cookie::state_cookies(&cookies::pairs(&headers));
    let started = state.forward_auth.start(rd.as_deref(), &in_progress, state.clock.now()).await?;
    Ok(no_store((set_cookies(&started.cookies), Redirect::to(&started.location)).into_response()))
}

/// Step 2, at Latch: sign in if needed, then a code back to the app's host.
async fn sso(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    check_query(query.as_deref())?;
    let now = state.clock.now();
    let session = current_session(&state, &headers, now).await?;
    let (rd, sso_state) = (query_value(query.as_deref(), "rd"), query_value(query.as_deref(), "state"));
    let outcome = state.forward_auth.sso(rd.as_deref(), sso_state.as_deref(), session.as_ref(), now).await?;
    Ok(match outcome {
        SsoOutcome::SignIn { login_url } => Redirect::to(&login_url).into_response(),
        SsoOutcome::Forbidden { app_name } => {
            let message =
                format!("{app_name} is only open to members of certain groups. Ask an administrator for access.");
            WebError::page(StatusCode::FORBIDDEN, "No access to this app", message).into_response()
        }
        SsoOutcome::Redirect(callback) => no_store(Redirect::to(&callback).into_response()),
        SsoOutcome::SecondFactor { app_name, session, next } => {
            step_up(&state, &headers, &session, &next, &app_name).await?
        }
    })
}

/// Step 3, on the app's host: the code and this browser's state cookie buy
/// the app's cookie.
async fn callback(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    check_query(query.as_deref())?;
    let code = query_value(query.as_deref(), "code");
    let in_progress = cookie::state_cookies(&cookies::pairs(&headers));
    let signed_in = state.forward_auth.callback(code.as_deref(), &in_progress, state.clock.now()).await?;
    state.auditor.record("proxy_sign_in", &requester.actor(None, Some(&signed_in.app_slug)), None);
    Ok(no_store((set_cookies(&signed_in.cookies), Redirect::to(&signed_in.location)).into_response()))
}

/// On the app's host, a GET (a link, which any site can make the browser
/// follow) only asks: the form posts back with the confirmation token.
async fn confirm_sign_out(headers: HeaderMap) -> Response {
    let tokens = cookie::session_tokens(&cookies::pairs(&headers));
    let confirmation = sign_out_confirmation(&tokens);
    // The token rides in the action's query too: nginx configs written for
    // Authentik drop request bodies on this path.
    let query = serde_urlencoded::to_string([(CONFIRMATION_FIELD, confirmation.as_str())]).unwrap_or_default();
    let action = format!("{SIGN_OUT_PATH}?{query}");
    let page = LogoutPage { app_name: "This app", action: &action, params: &[], csrf_token: &confirmation };
    no_store(render(StatusCode::OK, &page))
}

/// On the app's host, the confirmed sign-out: ends the Latch session behind
/// the app's cookie.
async fn sign_out(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, WebError> {
    let sent = cookies::pairs(&headers);
    let (tokens, names) = (cookie::session_tokens(&sent), cookie::session_cookie_names(&sent));
    let confirmation = query_value(std::str::from_utf8(&body).ok(), CONFIRMATION_FIELD)
        .or_else(|| query_value(query.as_deref(), CONFIRMATION_FIELD));
    let signed_out = state.forward_auth.sign_out(&tokens, &names, confirmation.as_deref(), state.clock.now()).await?;
    if signed_out.sessions_ended > 0 {
        state.logout_delivery.wake();
        state.auditor.record("proxy_sign_out", &requester.actor(None, None), None);
    }
    let page = MessagePage {
        title: "Signed out",
        message: "You are signed out of Latch and of every app that signs in through it.",
        is_error: false,
    };
    Ok(no_store((set_cookies(&signed_out.cookies), render(StatusCode::OK, &page)).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_name_the_user_both_ways() {
        let user = |groups: &[&str]| ProxyUser {
            id: "0b5e…".into(),
            username: "ada".into(),
            email: "ada@example.com".into(),
            name: "Ada Lovelace".into(),
            groups: groups.iter().map(|group| (*group).to_owned()).collect(),
        };
        let headers = identity_headers(&user(&["admins", "staff"]));
        let get = |name: &str| headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
        assert_eq!(get("X-authentik-username"), Some("ada"));
        assert_eq!(get("X-authentik-groups"), Some("admins|staff"));
        assert_eq!(get("X-authentik-email"), Some("ada@example.com"));
        assert_eq!(get("X-authentik-name"), Some("Ada Lovelace"));
        assert_eq!(get("X-authentik-uid"), Some("0b5e…"));
        assert_eq!(get("Remote-User"), Some("ada"));
        assert_eq!(get("Remote-Groups"), Some("admins,staff"));
        assert_eq!(get("Remote-Email"), Some("ada@example.com"));
        assert_eq!(get("Remote-Name"), Some("Ada Lovelace"));
        assert_eq!(identity_headers(&user(&[]))[1].1, "");
    }

    #[test]
    fn forward_auth_errors_are_pages_never_redirects() {
        for error in [
            ProxyError::Misconfigured("no X-Original-URL".into()),
            ProxyError::NotRegistered { origin: "https://evil.example".into() },
            ProxyError::BadRequest("no rd".into()),
            ProxyError::SignInExpired,
            ProxyError::SignOutUnconfirmed,
        ] {
            let response = WebError::from(error).into_response();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            assert!(response.headers().get(LOCATION).is_none());
        }
    }
}
