//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2).
//!
//! Problems with `client_id` or `redirect_uri` are shown to the person on a
//! page and never redirected (the redirect target is not trusted yet); every
//! other problem goes back to the app's registered redirect URI with `error`,
//! `state` and `iss`.

use url::Url;

use super::Provider;
use super::claims::{granted_scope, has_scope};
use super::error::{ErrorCode, InternalError, OAuthError};
use super::params::Params;
use super::redirect_uri::explain_mismatch;
use crate::clock::UnixTime;
use crate::crypto::{random_token, sha256_hex};
use crate::store::{App, NewCode, SessionUser};

#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// The request cannot be trusted enough to redirect: say why on a page.
    ErrorPage(String),
    /// The browser must sign in, then repeat this same request.
    SignIn,
    /// Send the browser to this URL (the app's, with a code or an error).
    Redirect(String),
}

/// The validated request, once the app and redirect URI are known good.
struct ValidRequest<'p> {
    scope: String,
    state: Option<&'p str>,
    nonce: Option<&'p str>,
    code_challenge: Option<&'p str>,
}

impl Provider {
    pub async fn authorize(
        &self,
        params: Result<Params, String>,
        session: Option<&SessionUser>,
        now: UnixTime,
    ) -> Result<AuthorizeOutcome, InternalError> {
        let params = match params {
            Ok(params) => params,
            Err(repeated) => {
                return Ok(AuthorizeOutcome::ErrorPage(format!("The parameter {repeated:?} was sent more than once.")));
            }
        };
        let Some(client_id) = params.get("client_id") else {
            return Ok(AuthorizeOutcome::ErrorPage("The request has no client_id.".into()));
        };
        let Some(app) = self.store.app_by_client_id(client_id).await? else {
            return Ok(AuthorizeOutcome::ErrorPage(format!("No app is registered with client_id {client_id:?}.")));
        };
        let Some(redirect_uri) = params.get("redirect_uri") else {
            return Ok(AuthorizeOutcome::ErrorPage("The request has no redirect_uri; it is required.".into()));
        };
        if !app.redirect_uris.iter().any(|registered| registered == redirect_uri) {
            return Ok(AuthorizeOutcome::ErrorPage(explain_mismatch(redirect_uri, &app.redirect_uris)));
        }
        let state = params.get("state");
        let back =
            |error: OAuthError| AuthorizeOutcome::Redirect(self.error_redirect(&app, redirect_uri, &error, state));

        let request = match validate(&app, &params) {
            Ok(request) => request,
            Err(error) => return Ok(back(error)),
        };
        let Some(session) = session else {
            return Ok(AuthorizeOutcome::SignIn);
        };
        if !self.store.user_may_use_app(&app.id, &session.user_id).await? {
            return Ok(back(OAuthError::new(ErrorCode::AccessDenied, "you are not allowed to use this app")));
        }
        let code = random_token();
        self.store
            .insert_code(NewCode {
                code_hash: &sha256_hex(&code),
                app_id: &app.id,
                user_id: &session.user_id,
                redirect_uri,
                scope: &request.scope,
                nonce: request.nonce,
                code_challenge: request.code_challenge,
                auth_time: session.auth_time,
                expires_at: now + self.code_ttl,
            })
            .await?;
        let mut response = vec![("code", code.as_str())];
        response.extend(request.state.map(|state| ("state", state)));
        Ok(AuthorizeOutcome::Redirect(self.redirect_with(&app, redirect_uri, &response)))
    }

    fn error_redirect(&self, app: &App, redirect_uri: &str, error: &OAuthError, state: Option<&str>) -> String {
        let mut response = vec![("error", error.code.as_str()), ("error_description", error.description.as_ref())];
        response.extend(state.map(|state| ("state", state)));
        self.redirect_with(app, redirect_uri, &response)
    }

    /// The registered URI (whose own query is kept) with the response
    /// parameters and `iss` (RFC 9207) added to its query.
    fn redirect_with(&self, app: &App, redirect_uri: &str, response: &[(&str, &str)]) -> String {
        let issuer = self.issuer(&app.slug);
        match Url::parse(redirect_uri) {
            Ok(mut url) => {
                url.query_pairs_mut().extend_pairs(response).append_pair("iss", &issuer);
                url.into()
            }
            // Registration only admits absolute URLs; keep the exact string otherwise.
            Err(_) => redirect_uri.to_owned(),
        }
    }
}

fn validate<'p>(app: &App, params: &'p Params) -> Result<ValidRequest<'p>, OAuthError> {
    let invalid = |code, description: &'static str| Err(OAuthError::new(code, description));
    match params.get("response_type") {
        None => return invalid(ErrorCode::InvalidRequest, "response_type is required"),
        Some("code") => {}
        Some(_) => {
            return invalid(ErrorCode::UnsupportedResponseType, "only response_type=code is supported");
        }
    }
    if params.get("request").is_some() {
        return invalid(ErrorCode::RequestNotSupported, "request objects are not supported");
    }
    if params.get("request_uri").is_some() {
        return invalid(ErrorCode::RequestUriNotSupported, "request_uri is not supported");
    }
    if let Some(mode) = params.get("response_mode")
        && mode != "query"
    {
        return invalid(ErrorCode::InvalidRequest, "only response_mode=query is supported");
    }
    let scope = granted_scope(params.get("scope").unwrap_or_default());
    if !has_scope(&scope, "openid") {
        return invalid(ErrorCode::InvalidScope, "the openid scope is required");
    }
    let code_challenge = params.get("code_challenge");
    match (code_challenge, params.get("code_challenge_method")) {
        (None, Some(_)) => {
            return invalid(ErrorCode::InvalidRequest, "code_challenge_method without code_challenge");
        }
        (Some(_), None | Some("plain")) => {
            return invalid(ErrorCode::InvalidRequest, "only code_challenge_method=S256 is supported");
        }
        (Some(challenge), Some("S256")) if !is_s256_challenge(challenge) => {
            return invalid(ErrorCode::InvalidRequest, "code_challenge must be 43 base64url characters");
        }
        (Some(_), Some("S256")) | (None, None) => {}
        (Some(_), Some(_)) => {
            return invalid(ErrorCode::InvalidRequest, "unknown code_challenge_method");
        }
    }
    if app.is_public() && code_challenge.is_none() {
        return invalid(ErrorCode::InvalidRequest, "PKCE with S256 is required for public clients");
    }
    Ok(ValidRequest { scope, state: params.get("state"), nonce: params.get("nonce"), code_challenge })
}

/// A SHA-256 digest, base64url without padding.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}
