//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2).
//!
//! Problems with `client_id` or `redirect_uri` are shown to the person on a
//! page and never redirected (the redirect target is not trusted yet); every
//! other problem goes back to the app's registered redirect URI with `error`,
//! `state` and `iss`, in the response mode the app asked for.

use url::Url;

use super::Provider;
use super::claims::{granted_scope, has_scope, known_scopes};
use super::error::{ErrorCode, InternalError, OAuthError};
use super::id_token_hint::HintedSubject;
use super::params::{ParamError, Params};
use super::reauth;
use super::redirect_uri::{self, explain_mismatch};
use super::values::{Acr, CodeChallengeMethod, Prompt, ResponseMode, ResponseType, Scope};
use crate::audit::Actor;
use crate::clock::UnixTime;
use crate::crypto::{random_token, sha256_hex};
use crate::login::flow::has_mfa;
use crate::store::{App, ConsentMode, NewCode, SessionUser};

pub use super::reauth::REAUTH_MARKER;

#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// The request cannot be trusted enough to redirect: say why on a page.
    ErrorPage(String),
    /// The browser must sign in, then repeat the request with `resume`.
    SignIn { login_hint: Option<String>, resume: Vec<(String, String)> },
    /// The person is signed in without the second factor this app (or the
    /// request's `acr_values`) requires: ask for it alone (step-up), then
    /// repeat the request with `resume`.
    SecondFactor { app_name: String, session: SessionUser, resume: Vec<(String, String)> },
    /// The person must approve what the app will receive.
    Consent { app_name: String, scopes: Vec<Scope>, resume: Vec<(String, String)> },
    /// Answer the app.
    Respond(AuthorizationResponse),
}

/// The parameters that go back to the app, and how.
#[derive(Debug)]
pub struct AuthorizationResponse {
    pub redirect_uri: String,
    pub params: Vec<(&'static str, String)>,
    pub mode: ResponseMode,
}

impl AuthorizationResponse {
    /// The redirect URI (keeping its own query) with the parameters added.
    pub fn redirect_url(&self) -> String {
        match Url::parse(&self.redirect_uri) {
            Ok(mut url) => {
                url.query_pairs_mut().extend_pairs(&self.params);
                url.into()
            }
            // Registration only admits absolute URLs.
            Err(_) => self.redirect_uri.clone(),
        }
    }
}

/// The person's answer on the consent page (already CSRF-checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDecision {
    Allow,
    Deny,
}

/// The validated request, once the app and redirect URI are known good.
struct ValidRequest<'p> {
    scope: String,
    nonce: Option<&'p str>,
    code_challenge: Option<&'p str>,
    /// The `prompt` values Latch knows; others are ignored.
    prompts: Vec<Prompt>,
    max_age: Option<i64>,
    /// `acr_values` lists `Acr::Mfa`.
    wants_mfa: bool,
}

impl Provider {
    pub async fn authorize(
        &self,
        params: Result<Params, ParamError>,
        session: Option<&SessionUser>,
        decision: Option<ConsentDecision>,
        now: UnixTime,
    ) -> Result<AuthorizeOutcome, InternalError> {
        let params = match params {
            Ok(params) => params,
            // Not even client_id and redirect_uri can be trusted: a page.
            Err(error) => return Ok(AuthorizeOutcome::ErrorPage(format!("The request is malformed: {error}."))),
        };
        let Some(client_id) = params.get("client_id") else {
            return Ok(AuthorizeOutcome::ErrorPage("The request has no client_id.".into()));
        };
        let user_id = session.as_ref().map(|session| session.user_id.as_str());
        let Some((app, admitted)) = self.store.app_admitting(client_id, user_id).await? else {
            return Ok(AuthorizeOutcome::ErrorPage(format!("No app is registered with client_id {client_id:?}.")));
        };
        let Some(redirect_uri) = params.get("redirect_uri") else {
            return Ok(AuthorizeOutcome::ErrorPage("The request has no redirect_uri; it is required.".into()));
        };
        if !app.redirect_uris.iter().any(|registered| redirect_uri::matches(registered, redirect_uri)) {
            return Ok(AuthorizeOutcome::ErrorPage(explain_mismatch(redirect_uri, &app.redirect_uris)));
        }
        let (mode, mode_error) = match params.get("response_mode").map(str::parse) {
            None => (ResponseMode::Query, None),
            Some(Ok(mode)) => (mode, None),
            // The error goes back the default way: the app's way is unknown.
            Some(Err(unknown)) => (ResponseMode::Query, Some(unknown.to_string())),
        };
        let responder = Responder { provider: self, app: &app, redirect_uri, state: params.get("state"), mode };
        if let Some(message) = mode_error {
            return Ok(responder.error(OAuthError::new(ErrorCode::InvalidRequest, message)));
        }
        let request = match validate(&app, &params) {
            Ok(request) => request,
            Err(error) => return Ok(responder.error(error)),
        };
        let hinted = match params.get("id_token_hint") {
            Some(hint) => match self.hinted_subject(hint, &app) {
                Ok(hinted) => Some(hinted),
                Err(error) => return Ok(responder.error(error)),
            },
            None => None,
        };

        // A sign-in this request sent the browser to, made in this session:
        // used up here, whether or not the session would have done anyway.
        let reauthenticated = match (session, params.get(REAUTH_MARKER)) {
            (Some(session), Some(mark)) => self.take_reauth(mark, session, now).await?,
            _ => false,
        };
        let session =
            session.filter(|session| reauthenticated || !demands_sign_in(session, &request, hinted.as_ref(), now));
        let Some(session) = session else {
            if request.prompts.contains(&Prompt::None) {
                return Ok(responder.error(OAuthError::new(ErrorCode::LoginRequired, "the user must sign in")));
            }
            return Ok(AuthorizeOutcome::SignIn {
                login_hint: params.get("login_hint").map(str::to_owned),
                resume: resume_params(&params, Some(reauth::new_mark())),
            });
        };
        if !admitted {
            return Ok(responder.error(OAuthError::new(ErrorCode::AccessDenied, "you are not allowed to use this app")));
        }
        if (request.wants_mfa || self.mfa.required_for(app.options.require_mfa)) && !has_mfa(&session.amr) {
            if request.prompts.contains(&Prompt::None) {
                let error = OAuthError::new(ErrorCode::InteractionRequired, "a second factor is required");
                return Ok(responder.error(error));
            }
            // The step-up repeats the request: a sign-in it demanded and
            // that was just used up carries over, once, as for consent.
            let mark = if reauthenticated { Some(self.renew_reauth(session, now).await?) } else { None };
            let (app_name, session, resume) = (app.name.clone(), session.clone(), resume_params(&params, mark));
            return Ok(AuthorizeOutcome::SecondFactor { app_name, session, resume });
        }
        match decision {
            Some(ConsentDecision::Deny) => {
                return Ok(responder.error(OAuthError::new(ErrorCode::AccessDenied, "the user denied the request")));
            }
            Some(ConsentDecision::Allow) => {
                self.store.record_consent(&session.user_id, &app.id, &request.scope, now).await?;
                let actor = Actor { app: Some(&app.slug), ..Default::default() };
                self.auditor.record(
                    "consent_granted",
                    &actor,
                    Some(format!("user {} scope {}", session.user_id, request.scope)),
                );
            }
            None if self.needs_consent(&app, session, &request).await? => {
                if request.prompts.contains(&Prompt::None) {
                    return Ok(responder.error(OAuthError::new(ErrorCode::ConsentRequired, "consent is required")));
                }
                // The consent form repeats the request: a sign-in it demanded
                // and that was just used up must carry over to it, once.
                let mark = if reauthenticated { Some(self.renew_reauth(session, now).await?) } else { None };
                return Ok(AuthorizeOutcome::Consent {
                    app_name: app.name.clone(),
                    scopes: known_scopes(&request.scope),
                    resume: resume_params(&params, mark),
                });
            }
            None => {}
        }

        let code = random_token();
        let code_ttl = app.options.code_ttl.unwrap_or(self.code_ttl);
        self.store
            .insert_code(NewCode {
                code_hash: &sha256_hex(&code),
                app_id: &app.id,
                user_id: &session.user_id,
                session_hash: &session.id_hash,
                redirect_uri,
                scope: &request.scope,
                nonce: request.nonce,
                code_challenge: request.code_challenge,
                auth_time: session.auth_time,
                amr: &session.amr,
                expires_at: now + code_ttl,
                offline: has_scope(&request.scope, Scope::OfflineAccess),
            })
            .await?;
        Ok(responder.respond(vec![("code", code)]))
    }

    /// Explicit-consent apps ask once per user until the scope grows;
    /// `prompt=consent` asks every time.
    async fn needs_consent(
        &self,
        app: &App,
        session: &SessionUser,
        request: &ValidRequest<'_>,
    ) -> Result<bool, InternalError> {
        if request.prompts.contains(&Prompt::Consent) {
            return Ok(true);
        }
        if app.options.consent == ConsentMode::Implicit {
            return Ok(false);
        }
        let Some(granted) = self.store.consented_scope(&session.user_id, &app.id).await? else {
            return Ok(true);
        };
        Ok(!known_scopes(&request.scope).into_iter().all(|scope| has_scope(&granted, scope)))
    }
}

/// Whether the request demands a new sign-in although the browser has a
/// session (OIDC Core §3.1.2.1). `max_age=0` always does: whole seconds
/// cannot show that no time has passed since the session's sign-in.
fn demands_sign_in(
    session: &SessionUser,
    request: &ValidRequest<'_>,
    hinted: Option<&HintedSubject>,
    now: UnixTime,
) -> bool {
    let too_old = request.max_age.is_some_and(|max_age| max_age == 0 || now - session.auth_time > max_age);
    let other_user = hinted.is_some_and(|hinted| hinted.subject != session.user_id);
    request.prompts.contains(&Prompt::Login) || too_old || other_user
}

/// The request's parameters to repeat it after sign-in or consent, with
/// `mark` (see `reauth`) in place of any mark the request carried.
fn resume_params(params: &Params, mark: Option<String>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = params
        .sorted_pairs()
        .into_iter()
        .filter(|(name, _)| *name != REAUTH_MARKER)
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    pairs.extend(mark.map(|mark| (REAUTH_MARKER.to_owned(), mark)));
    pairs
}

/// Builds answers to the app: every one carries `state` and `iss` (RFC 9207).
struct Responder<'a> {
    provider: &'a Provider,
    app: &'a App,
    redirect_uri: &'a str,
    state: Option<&'a str>,
    mode: ResponseMode,
}

impl Responder<'_> {
    fn respond(&self, mut params: Vec<(&'static str, String)>) -> AuthorizeOutcome {
        params.extend(self.state.map(|state| ("state", state.to_owned())));
        params.push(("iss", self.provider.issuer(&self.app.slug)));
        AuthorizeOutcome::Respond(AuthorizationResponse {
            redirect_uri: self.redirect_uri.to_owned(),
            params,
            mode: self.mode,
        })
    }

    fn error(&self, error: OAuthError) -> AuthorizeOutcome {
        self.respond(vec![
            ("error", error.code.as_str().to_owned()),
            ("error_description", error.description.into_owned()),
        ])
    }
}

fn validate<'p>(app: &App, params: &'p Params) -> Result<ValidRequest<'p>, OAuthError> {
    let invalid = |code, description: &'static str| Err(OAuthError::new(code, description));
    match params.get("response_type").map(str::parse) {
        None => return invalid(ErrorCode::InvalidRequest, "response_type is required"),
        Some(Ok(ResponseType::Code)) => {}
        Some(Err(unknown)) => return Err(OAuthError::new(ErrorCode::UnsupportedResponseType, unknown.to_string())),
    }
    if params.get("request").is_some() {
        return invalid(ErrorCode::RequestNotSupported, "request objects are not supported");
    }
    if params.get("request_uri").is_some() {
        return invalid(ErrorCode::RequestUriNotSupported, "request_uri is not supported");
    }
    let scope = granted_scope(params.get("scope").unwrap_or_default());
    if !has_scope(&scope, Scope::OpenId) {
        return invalid(ErrorCode::InvalidScope, "the openid scope is required");
    }
    let code_challenge = params.get("code_challenge");
    match (code_challenge, params.get("code_challenge_method").map(str::parse)) {
        (None, Some(_)) => return invalid(ErrorCode::InvalidRequest, "code_challenge_method without code_challenge"),
        // RFC 7636 §4.3 defaults to `plain`, which is not supported.
        (Some(_), None) => {
            return invalid(ErrorCode::InvalidRequest, "only code_challenge_method=S256 is supported");
        }
        (Some(_), Some(Err(unknown))) => return Err(OAuthError::new(ErrorCode::InvalidRequest, unknown.to_string())),
        (Some(challenge), Some(Ok(CodeChallengeMethod::S256))) if !is_s256_challenge(challenge) => {
            return invalid(ErrorCode::InvalidRequest, "code_challenge must be 43 base64url characters");
        }
        (Some(_), Some(Ok(CodeChallengeMethod::S256))) | (None, None) => {}
    }
    if app.is_public() && code_challenge.is_none() {
        return invalid(ErrorCode::InvalidRequest, "PKCE with S256 is required for public clients");
    }
    let raw_prompts: Vec<&str> =
        params.get("prompt").unwrap_or_default().split(' ').filter(|value| !value.is_empty()).collect();
    let prompts: Vec<Prompt> = raw_prompts.iter().filter_map(|value| value.parse().ok()).collect();
    if prompts.contains(&Prompt::None) && raw_prompts.len() > 1 {
        return invalid(ErrorCode::InvalidRequest, "prompt=none cannot be combined with other values");
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(seconds) if seconds >= 0 => Some(seconds),
            _ => return invalid(ErrorCode::InvalidRequest, "max_age must be a non-negative number of seconds"),
        },
    };
    let wants_mfa =
        params.get("acr_values").is_some_and(|values| values.split(' ').any(|value| value == Acr::Mfa.as_str()));
    Ok(ValidRequest { scope, nonce: params.get("nonce"), code_challenge, prompts, max_age, wants_mfa })
}

/// A SHA-256 digest, base64url without padding.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}
