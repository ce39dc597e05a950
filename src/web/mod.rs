//! HTTP: the router, shared state, and thin handlers that parse a request,
//! call the protocol layer and map its result.

mod account;
pub mod console;
pub mod cookies;
mod device;
pub mod error;
pub mod fresh;
mod links;
mod login;
mod oidc;
pub mod ops;
pub mod pages;
mod passkey;
mod proxy;
pub mod refusal;
mod security;
pub mod signed_in;
mod user_agent;
mod webfinger;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::routing::{get, post};
use tower_http::cors::{Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use self::refusal::{ErrorFormat, Refusals};

use crate::audit::Auditor;
use crate::clock::Clock;
use crate::config::IpNet;
use crate::login::Authenticator;
use crate::metrics::Metrics;
use crate::oidc::Provider;
use crate::proxy::ForwardAuth;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    /// The time this server runs by (`clock::Clock`).
    pub clock: Clock,
    pub provider: Arc<Provider>,
    /// Wakes the back-channel logout worker after a session ends here.
    pub logout_delivery: crate::logout_delivery::DeliveryWake,
    pub authenticator: Arc<Authenticator>,
    /// How Latch's own cookies are named and marked.
    pub cookies: cookies::CookiePolicy,
    /// Keys the CSRF tokens of Latch's forms.
    pub csrf: Arc<crate::login::csrf::CsrfKey>,
    pub forward_auth: Arc<ForwardAuth>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// `Store::database_id`, shown by `/health/ready` so that `latch doctor`
    /// can tell when one URL leads to more than one database.
    pub database_id: Arc<str>,
    pub auditor: Auditor,
    pub trusted_proxies: Arc<[IpNet]>,
    /// The settings the admin console hands the admin layer (the public
    /// URL apps are told, token lifetimes).
    pub config: Arc<crate::config::Config>,
    /// Which apps require a second factor, and who enrols one.
    pub mfa: crate::config::MfaPolicy,
    pub body_read_timeout: Duration,
    /// Sends "Forgot password?" mail; `None` without `smtp_url`.
    pub mailer: Option<crate::mail::Mailer>,
    /// Where one-time links point (`config.public_url`).
    pub public_url: crate::config::PublicUrl,
}

/// The main router. `/metrics` is on it unless it has an address of its own.
pub fn router(state: AppState, with_metrics: bool) -> Router {
    // Token, userinfo, revocation, introspection, discovery and JWKS are
    // called by browser apps from other origins; they use no cookies, so
    // any origin may call them, with the headers OAuth libraries send
    // (`X-Requested-With` from jQuery-era code, `DPoP` from RFC 9449
    // clients), and may read the `WWW-Authenticate` challenge of a refusal.
    // The authorization endpoint and the login page get no CORS.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-requested-with"),
            HeaderName::from_static("dpop"),
        ])
        .expose_headers([header::WWW_AUTHENTICATE]);
    // Each group's errors, its handlers' and the framework's alike, in one format.
    let in_format = |format| {
        let refusals = Refusals { format, body_read_timeout: state.body_read_timeout };
        axum::middleware::from_fn_with_state(refusals, refusal::in_format)
    };
    let oauth = Router::new()
        .route("/application/o/token/", axum::routing::post(oidc::token).fallback(oidc::post_only))
        .route("/application/o/revoke/", axum::routing::post(oidc::revoke).fallback(oidc::post_only))
        .route("/application/o/introspect/", axum::routing::post(oidc::introspect).fallback(oidc::post_only))
        .route("/application/o/device/", axum::routing::post(device::authorize).fallback(oidc::post_only))
        .route("/application/o/{slug}/.well-known/openid-configuration", get(oidc::discovery))
        // Where clients look for the same document: appended to the issuer
        // with its trailing slash kept (django-allauth), and the RFC 8414
        // §3.1 form, the well-known suffix between host and issuer path
        // (which drops the issuer's trailing slash; some clients keep it).
        .route("/application/o/{slug}//.well-known/openid-configuration", get(oidc::discovery))
        // Without the slash, the app was configured with an issuer that
        // lacks it: served, and recorded for `latch doctor`.
        .route("/.well-known/oauth-authorization-server/application/o/{slug}", get(oidc::discovery_without_slash))
        .route("/.well-known/oauth-authorization-server/application/o/{slug}/", get(oidc::discovery))
        .route("/.well-known/openid-configuration/application/o/{slug}", get(oidc::discovery_without_slash))
        .route("/.well-known/openid-configuration/application/o/{slug}/", get(oidc::discovery))
        .route("/.well-known/openid-configuration", get(oidc::discovery_at_root))
        .route("/.well-known/oauth-authorization-server", get(oidc::discovery_at_root))
        .route("/application/o/{slug}/jwks/", get(oidc::jwks))
        .layer(in_format(ErrorFormat::OAuth));
    let bearer = Router::new()
        .route("/application/o/userinfo/", get(oidc::userinfo).post(oidc::userinfo))
        .layer(in_format(ErrorFormat::Bearer));
    let apis = oauth.merge(bearer).layer(cors);
    // RFC 7033 §5: every answer, errors too, readable from any origin.
    let webfinger = Router::new()
        .route("/.well-known/webfinger", get(webfinger::webfinger))
        .layer(in_format(ErrorFormat::OAuth))
        .layer(SetResponseHeaderLayer::overriding(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")));
    // Called by Latch's own pages (same origin, CSRF-checked): no CORS.
    let passkeys = Router::new()
        .route("/login/passkey/options", axum::routing::post(passkey::sign_in_options))
        .route("/login/passkey/finish", axum::routing::post(passkey::sign_in_finish))
        .route("/login/passkey/second-factor/options", axum::routing::post(passkey::factor_options))
        .route("/login/passkey/second-factor/finish", axum::routing::post(passkey::factor_finish))
        .route("/account/security/passkeys/options", axum::routing::post(passkey::register_options))
        .route("/account/security/passkeys/finish", axum::routing::post(passkey::register_finish))
        .layer(in_format(ErrorFormat::OAuth));
    let pages = Router::new()
        .route("/application/o/authorize/", get(oidc::authorize_get).post(oidc::authorize_post))
        .route("/application/o/{slug}/end-session/", get(oidc::end_session_get).post(oidc::end_session_post))
        .route("/login", get(login::form).post(login::submit))
        .route("/login/forgot", get(links::forgot_page).post(links::forgot_submit))
        .route("/device", get(device::page).post(device::submit))
        .route(login::SECURITY_PATH, get(security::page).post(security::submit))
        .route("/", get(login::home))
        .route("/static/passkey.js", get(passkey::script))
        .route("/setup/{token}", get(links::setup_page).post(links::setup_submit))
        .route("/invite/{token}", get(links::invite_page).post(links::invite_submit))
        .route("/reset/{token}", get(links::reset_page).post(links::reset_submit))
        .route(account::ACCOUNT, get(account::page))
        .route("/account/profile", post(account::profile))
        .route("/account/password", post(account::password))
        .route("/account/sessions", get(account::sessions))
        .route("/account/sessions/end", post(account::end_session))
        .route("/account/sessions/end-all", post(account::end_all_sessions))
        .route("/account/sign-out", post(account::sign_out))
        .route(fresh::CONFIRM, get(fresh::page).post(fresh::submit))
        .merge(proxy::routes())
        .merge(console::routes())
        .layer(in_format(ErrorFormat::Page));
    let mut operations = Router::new().route("/health/live", get(ops::live)).route("/health/ready", get(ops::ready));
    if with_metrics {
        operations = operations.route("/metrics", get(ops::metrics));
    }
    apis.merge(webfinger)
        .merge(passkeys)
        .merge(pages)
        .merge(operations.layer(in_format(ErrorFormat::Plain)))
        .fallback(refusal::not_found)
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(security_header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .layer(security_header(header::REFERRER_POLICY, "no-referrer"))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(axum::middleware::map_response(pages::no_store_pages))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ops::observe))
        .with_state(state)
}

/// `/metrics` alone, for a separate listen address.
pub fn metrics_router(state: AppState) -> Router {
    let refusals = Refusals { format: ErrorFormat::Plain, body_read_timeout: state.body_read_timeout };
    Router::new()
        .route("/metrics", get(ops::metrics))
        .layer(axum::middleware::from_fn_with_state(refusals, refusal::in_format))
        .with_state(state)
}

/// A 303 redirect. Unlike `axum::response::Redirect`, a location that is not
/// a valid header value (which input could make it) is a 400, not a panic.
pub fn redirect(location: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    match HeaderValue::from_str(location) {
        Ok(value) => (axum::http::StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => error::WebError::page(
            axum::http::StatusCode::BAD_REQUEST,
            "Invalid request",
            "The redirect target is not a valid URL.",
        )
        .into_response(),
    }
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}
