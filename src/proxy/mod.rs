//! Forward auth: nginx, Traefik and Caddy ask Latch, request by request,
//! whether a browser may into an app that has no SSO of its own.
//!
//! **The check.** The proxy sends the original URL (in its own headers) and
//! the browser's cookies. The URL's origin names the proxy app; a
//! `latch_proxy_…` cookie names a row in `proxy_sessions`, which is bound to
//! a Latch session; one query joins app, cookie, session, user and groups.
//! So ending the session, signing out or disabling the user denies the very
//! next request on every instance, and a check costs one indexed read: no
//! password hashing, no signing.
//!
//! **Why the app gets a cookie of its own.** The app lives on its own host,
//! where the browser does not send Latch's session cookie, and handing it
//! Latch's own session token would let anything on that host (the app
//! included) act as the user at Latch. Instead the app's host holds a
//! separate random token that only admits to forward-auth checks in its
//! scope and dies with the session it was issued in.
//!
//! **Signing in** (all on `/outpost.goauthentik.io/`, which the proxy routes
//! to Latch on the app's host as well as on Latch's own):
//! 1. `start?rd=<url>` on the app's host: `rd` must belong to a registered
//!    proxy app (else refused: no open redirect). Sets a state cookie of its
//!    own for this sign-in on the app's host (so sign-ins in several tabs
//!    each finish) and sends the browser to Latch's `sso`.
//! 2. `sso?rd=…&state=…` on Latch's public URL: without a Latch session, to
//!    the login page and back; with one, and if the app's groups admit the
//!    user, a one-time code (stored hashed, 60 s, bound to the session, the
//!    app and the state) goes back to the app's host.
//! 3. `callback?code=…` on the app's host: the code is redeemed atomically,
//!    only together with the state cookie that started the sign-in (so a
//!    code cannot be pushed into someone else's browser), and the app's
//!    cookie is set; then on to `rd`.
//!
//! Only a top-level page navigation is sent to sign in (`navigation`); a
//! script, a POST or a HEAD is answered 401 by the checks and by `start`.
//! Signing out asks first: a POST carrying a token derived from the
//! browser's sign-in cookies ends the session, a bare GET does not.
//!
//! Nothing is kept in process memory: any instance can serve any step.
//! Nothing here knows about HTTP: `web::proxy` reads the proxy's headers
//! and the browser's cookies into the typed values these steps take, and
//! writes their answers out as responses.

pub mod cookie;
pub mod error;
pub mod navigation;
pub mod target;

use crate::clock::UnixTime;
use crate::config::{MfaPolicy, PublicUrl};
use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::login::flow::has_mfa;
use crate::login::sign_in_url;
use crate::store::{NewProxyCode, ProxyApp, ProxyUser, SessionUser, Store};
use cookie::{Candidate, MAX_FLOWS, ProxyCookie, StateCookie, session_cookie_name, state_binding};
pub use error::{ProxyError, ProxyResult};
use target::TargetUrl;

/// Every forward-auth path starts with this, as Authentik's do, so proxy
/// configs written for Authentik only change the host they point at.
pub const PREFIX: &str = "/outpost.goauthentik.io";
pub const START_PATH: &str = "/outpost.goauthentik.io/start";
pub const SSO_PATH: &str = "/outpost.goauthentik.io/sso";
pub const CALLBACK_PATH: &str = "/outpost.goauthentik.io/callback";
pub const SIGN_OUT_PATH: &str = "/outpost.goauthentik.io/sign_out";
pub const NGINX_PATH: &str = "/outpost.goauthentik.io/auth/nginx";
pub const TRAEFIK_PATH: &str = "/outpost.goauthentik.io/auth/traefik";
pub const CADDY_PATH: &str = "/outpost.goauthentik.io/auth/caddy";

/// A code is redeemed within seconds of being issued; 60 s is generous.
const CODE_TTL: i64 = 60;
/// How long a person may take on the login page before the sign-in they
/// started must be started again.
const STATE_TTL: i64 = 60 * 60;

/// The user a check admits: who the app is told is signing in (the web
/// layer tells it in identity headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity(ProxyUser);

impl Identity {
    pub fn user(&self) -> &ProxyUser {
        &self.0
    }
}

/// The answer to a proxy's question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Signed in and admitted: pass, with these identity headers.
    Allow(Identity),
    /// Not signed in to this app (no cookie, or its session is over): the
    /// browser should go to `start_url`, on the app's host.
    SignIn { start_url: String },
    /// Signed in, but the app's groups do not include the user.
    Forbidden { app_name: String, username: String },
}

/// Where `start` sends the browser, with the cookies to set first: this
/// sign-in's state cookie, and removals of the oldest ones in progress.
#[derive(Debug)]
pub struct Started {
    pub location: String,
    pub cookies: Vec<ProxyCookie>,
}

/// What `sso` does with the browser.
#[derive(Debug, PartialEq, Eq)]
pub enum SsoOutcome {
    /// No Latch session: sign in at this URL, which leads back here.
    SignIn { login_url: String },
    /// The user may not use the app: say so, hand out nothing.
    Forbidden { app_name: String },
    /// The app requires a second factor the session lacks: ask for it
    /// alone (step-up), then come back to `next` (this step, on Latch).
    SecondFactor { app_name: String, session: SessionUser, next: String },
    /// On to the app's callback with a fresh code.
    Redirect(String),
}

/// A finished sign-in: cookies to set on the app's host, then `location`.
#[derive(Debug)]
pub struct SignedIn {
    pub cookies: Vec<ProxyCookie>,
    pub location: String,
    /// The app signed in to, for the audit trail.
    pub app_slug: String,
}

/// A finished sign-out: how many Latch sessions ended, cookies to clear.
#[derive(Debug)]
pub struct SignedOut {
    pub sessions_ended: usize,
    pub cookies: Vec<ProxyCookie>,
}

pub struct ForwardAuth {
    store: Store,
    public_url: PublicUrl,
    mfa: MfaPolicy,
}

impl ForwardAuth {
    pub fn new(store: Store, public_url: PublicUrl, mfa: MfaPolicy) -> Self {
        Self { store, public_url, mfa }
    }

    /// The decision for `target`, given the sign-in cookies the browser sent
    /// for it (`cookie::session_candidates`). A cookie counts only if Latch
    /// issued it for the exact scope its name stands for, and that is the
    /// app's scope; cookies that name different people admit no one.
    pub async fn check(&self, target: &TargetUrl, candidates: &[Candidate], now: UnixTime) -> ProxyResult<Decision> {
        let hashed: Vec<(String, &str)> =
            candidates.iter().map(|candidate| (sha256_hex(&candidate.token), candidate.scope.as_str())).collect();
        let check = self
            .store
            .forward_auth_check(target.origin(), &hashed, now)
            .await?
            .ok_or_else(|| ProxyError::NotRegistered { origin: target.origin().to_owned() })?;
        // A session without the second factor the app requires is sent to
        // sign in, where `sso` asks for the factor alone.
        let second_factor_missing =
            self.mfa.required_for(check.app.require_mfa) && !check.session_amr.as_deref().is_some_and(has_mfa);
        Ok(match check.user {
            None => Decision::SignIn { start_url: start_url(&check.app, target) },
            Some(user) if !check.allowed => Decision::Forbidden { app_name: check.app.name, username: user.username },
            Some(_) if second_factor_missing => Decision::SignIn { start_url: start_url(&check.app, target) },
            Some(user) => Decision::Allow(Identity(user)),
        })
    }

    /// Step 1, on the app's host. `in_progress` are the browser's state
    /// cookies (`cookie::state_cookies`, newest first): they stay, but for
    /// the oldest beyond [`MAX_FLOWS`].
    pub async fn start(&self, rd: Option<&str>, in_progress: &[StateCookie], now: UnixTime) -> ProxyResult<Started> {
        let (app, target) = self.registered_target(rd).await?;
        let state = random_token();
        let query =
            serde_urlencoded::to_string([("rd", target.as_str()), ("state", state.as_str())]).unwrap_or_default();
        let mut cookies = vec![StateCookie::new(&state, is_https(&app), now).cookie(STATE_TTL)];
        cookies.extend(in_progress.iter().skip(MAX_FLOWS - 1).map(|oldest| oldest.cookie(0)));
        Ok(Started { location: self.public_url.join(&format!("{SSO_PATH}?{query}")), cookies })
    }

    /// Step 2, at Latch, with the browser's Latch session if it has one.
    pub async fn sso(
        &self,
        rd: Option<&str>,
        state: Option<&str>,
        session: Option<&SessionUser>,
        now: UnixTime,
    ) -> ProxyResult<SsoOutcome> {
        let (app, target) = self.registered_target(rd).await?;
        let state = state
            .filter(|state| !state.is_empty() && state.len() <= 128)
            .ok_or_else(|| ProxyError::BadRequest("the state parameter is missing".into()))?;
        let here = serde_urlencoded::to_string([("rd", target.as_str()), ("state", state)]).unwrap_or_default();
        let next = format!("{SSO_PATH}?{here}");
        let Some(session) = session else {
            return Ok(SsoOutcome::SignIn { login_url: self.public_url.join(&sign_in_url(&next, None)) });
        };
        if !self.store.user_may_use_app(&app.app_id, &session.user_id).await? {
            tracing::info!(app = %app.slug, user_id = %session.user_id, "forward auth: user not in the app's groups");
            return Ok(SsoOutcome::Forbidden { app_name: app.name });
        }
        if self.mfa.required_for(app.require_mfa) && !has_mfa(&session.amr) {
            return Ok(SsoOutcome::SecondFactor { app_name: app.name, session: session.clone(), next });
        }
        let code = random_token();
        let code_hash = sha256_hex(&code);
        let state_hash = state_binding(state, is_https(&app));
        let new_code = NewProxyCode {
            code_hash: &code_hash,
            state_hash: &state_hash,
            app_id: &app.app_id,
            session_hash: &session.id_hash,
            target_url: target.as_str(),
            expires_at: now.saturating_add(CODE_TTL),
        };
        self.store.insert_proxy_code(new_code, now).await?;
        let query = serde_urlencoded::to_string([("code", code.as_str())]).unwrap_or_default();
        Ok(SsoOutcome::Redirect(format!("{}{CALLBACK_PATH}?{query}", app.origin)))
    }

    /// Step 3, on the app's host: `in_progress` are the browser's state
    /// cookies; the code must be bound to one of them.
    pub async fn callback(
        &self,
        code: Option<&str>,
        in_progress: &[StateCookie],
        now: UnixTime,
    ) -> ProxyResult<SignedIn> {
        let code = code.filter(|code| !code.is_empty()).ok_or(ProxyError::SignInExpired)?;
        let code_hash = sha256_hex(code);
        let token = random_token();
        let bindings: Vec<String> = in_progress.iter().map(StateCookie::binding).collect();
        let redeemed = if bindings.is_empty() {
            tracing::info!("forward auth: callback without a state cookie (expired, or another browser)");
            None
        } else {
            self.store.redeem_proxy_code(&code_hash, &bindings, &sha256_hex(&token), now).await?
        };
        let Some(grant) = redeemed else {
            // A used code presented again, from anywhere, is a leak: what its
            // first use issued stops working (as for OIDC codes).
            if self.store.revoke_replayed_proxy_code(&code_hash).await? {
                tracing::warn!("forward auth: a used code was presented again; its cookie is revoked");
            }
            return Err(ProxyError::SignInExpired);
        };
        let secure = is_https(&grant.app);
        let session_cookie = ProxyCookie {
            name: session_cookie_name(grant.app.scope()),
            value: token,
            domain: grant.app.cookie_domain.clone(),
            path: "/",
            max_age: grant.session_expires_at.saturating_sub(now),
            secure,
        };
        let finished = in_progress.iter().filter(|flow| flow.binding() == grant.state_hash).map(|flow| flow.cookie(0));
        let planted = TargetUrl::parse(&grant.app.origin)
            .map(|app| cookie::planted_lookalikes(&app, grant.app.scope()))
            .unwrap_or_default();
        tracing::info!(app = %grant.app.slug, "forward auth: signed in");
        Ok(SignedIn {
            cookies: planted.into_iter().chain([session_cookie]).chain(finished).collect(),
            location: grant.target_url,
            app_slug: grant.app.slug,
        })
    }

    /// Signs the browser out of Latch, if `confirmation` is the
    /// [`sign_out_confirmation`] of the sign-in cookies it sent: every
    /// session behind them ends (and with it every app cookie and token
    /// issued in it). Returns the cookies to clear: the ones named in the
    /// request (host-only) and, for shared scopes, their parent-domain
    /// versions. Anything else is [`ProxyError::SignOutUnconfirmed`].
    pub async fn sign_out(
        &self,
        cookie_tokens: &[String],
        cookie_names: &[String],
        confirmation: Option<&str>,
        now: UnixTime,
    ) -> ProxyResult<SignedOut> {
        let expected = sign_out_confirmation(cookie_tokens);
        if !confirmation.is_some_and(|confirmation| constant_time_eq(confirmation.as_bytes(), expected.as_bytes())) {
            return Err(ProxyError::SignOutUnconfirmed);
        }
        let hashes: Vec<String> = cookie_tokens.iter().map(|token| sha256_hex(token)).collect();
        let sessions = self.store.proxy_sessions_of(&hashes).await?;
        let mut ended: Vec<&str> = Vec::new();
        for (session_hash, _) in &sessions {
            if !ended.contains(&session_hash.as_str()) {
                self.store.end_session(session_hash, now).await?;
                ended.push(session_hash);
            }
        }
        let sessions_ended = ended.len();
        if sessions_ended > 0 {
            tracing::info!(sessions = sessions_ended, "forward auth: signed out");
        }
        let removal = |name: String, domain: Option<String>| ProxyCookie {
            // A `__Host-` cookie is only replaced by another `Secure` one.
            secure: name.starts_with("__Host-"),
            name,
            value: String::new(),
            domain,
            path: "/",
            max_age: 0,
        };
        let mut cookies: Vec<ProxyCookie> = cookie_names.iter().map(|name| removal(name.clone(), None)).collect();
        for (_, scope) in sessions {
            if !scope.contains("://") {
                cookies.push(removal(session_cookie_name(&scope), Some(scope)));
            }
        }
        Ok(SignedOut { sessions_ended, cookies })
    }

    /// `rd` parsed, and the proxy app it belongs to: anything else is refused.
    async fn registered_target(&self, rd: Option<&str>) -> ProxyResult<(ProxyApp, TargetUrl)> {
        let rd =
            rd.ok_or_else(|| ProxyError::BadRequest("the rd parameter (where to go after sign-in) is missing".into()))?;
        let target = TargetUrl::parse(rd).map_err(ProxyError::BadRequest)?;
        let app = self
            .store
            .proxy_app_by_origin(target.origin())
            .await?
            .ok_or_else(|| ProxyError::NotRegistered { origin: target.origin().to_owned() })?;
        Ok((app, target))
    }
}

/// What the sign-out form must post back: a hash of the browser's sign-in
/// cookies, which no page on another site can read or compute (a
/// synchronizer token bound to the sign-in it ends, so no further cookie is
/// needed on the app's host). Hex, 64 characters.
pub fn sign_out_confirmation(cookie_tokens: &[String]) -> String {
    let mut tokens: Vec<&str> = cookie_tokens.iter().map(String::as_str).collect();
    tokens.sort_unstable();
    sha256_hex(&format!("latch forward-auth sign-out:{}", tokens.join(",")))
}

fn is_https(app: &ProxyApp) -> bool {
    app.origin.starts_with("https://")
}

/// `start` on the app's own host, carrying the URL to come back to.
fn start_url(app: &ProxyApp, target: &TargetUrl) -> String {
    let query = serde_urlencoded::to_string([("rd", target.as_str())]).unwrap_or_default();
    format!("{}{START_PATH}?{query}", app.origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_urls_stay_on_the_app_host_and_carry_the_whole_target() {
        let app = ProxyApp {
            app_id: "id".into(),
            slug: "uptime".into(),
            name: "Uptime".into(),
            client_id: "c".into(),
            external_url: "https://uptime.example.com".into(),
            origin: "https://uptime.example.com".into(),
            cookie_domain: None,
            require_mfa: None,
        };
        let target = TargetUrl::parse("https://uptime.example.com/a b?x=1&y=2").unwrap();
        let url = start_url(&app, &target);
        assert_eq!(
            url,
            "https://uptime.example.com/outpost.goauthentik.io/start?rd=https%3A%2F%2Fuptime.example.com%2Fa%2520b%3Fx%3D1%26y%3D2"
        );
        let query = url.split_once('?').unwrap().1;
        let rd = url::form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == "rd").unwrap().1;
        assert_eq!(rd, target.as_str());
    }
}
