//! The token endpoint (RFC 6749 §4.1.3, §4.4, §6; OIDC Core §3.1.3, §12).

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Provider;
use super::claims::{has_scope, user_claims};
use super::error::{ErrorCode, ProtocolResult, client_error};
use super::params::Params;
use crate::audit::Actor;
use crate::clock::UnixTime;
use crate::crypto::keys::{KeyError, SigningAlg};
use crate::crypto::{jws, random_token, seal, sha256_b64, sha256_hex};
use crate::store::{App, CodeRedemption, NewFamily, Rotation, RotationOutcome, UserClaims};

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

/// RFC 9068 access token claims. For the client credentials grant `sub` is
/// the client itself.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub scope: String,
}

/// A token response and whom it was for, for the audit trail.
struct Issued {
    response: TokenResponse,
    username: Option<String>,
}

/// What an issued set of tokens is about.
struct Issue<'a> {
    app: &'a App,
    user: Option<&'a UserClaims>,
    scope: &'a str,
    jti: String,
    auth_time: Option<UnixTime>,
    /// The sign-in's RFC 8176 methods, space-separated.
    amr: Option<&'a str>,
    nonce: Option<&'a str>,
    refresh_token: Option<String>,
}

impl Provider {
    pub async fn token(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<TokenResponse> {
        let issued = match params.get("grant_type") {
            Some("authorization_code") => self.exchange_code(app, params, now).await,
            Some("refresh_token") => self.refresh(app, params, now).await,
            Some("client_credentials") => self.client_credentials(app, params, now).await,
            Some(other) => client_error(
                ErrorCode::UnsupportedGrantType,
                format!(
                    "grant_type {other} is not supported; use authorization_code, refresh_token or client_credentials"
                ),
            ),
            None => client_error(ErrorCode::InvalidRequest, "grant_type is required"),
        }?;
        let actor = Actor { username: issued.username.as_deref(), app: Some(&app.slug), ..Default::default() };
        self.auditor.record("tokens_issued", &actor, params.get("grant_type").map(str::to_owned));
        Ok(issued.response)
    }

    pub(super) fn access_token_ttl(&self, app: &App) -> i64 {
        app.options.access_token_ttl.unwrap_or(self.access_token_ttl)
    }

    fn refresh_token_ttl(&self, app: &App) -> i64 {
        app.options.refresh_token_ttl.unwrap_or(self.refresh_token_ttl)
    }

    async fn exchange_code(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<Issued> {
        let Some(code) = params.get("code") else {
            return client_error(ErrorCode::InvalidRequest, "code is required");
        };
        let Some(redirect_uri) = params.get("redirect_uri") else {
            return client_error(ErrorCode::InvalidRequest, "redirect_uri is required");
        };
        let verifier = params.get("code_verifier");
        if verifier.is_some_and(|verifier| !is_valid_verifier(verifier)) {
            return client_error(ErrorCode::InvalidRequest, "code_verifier must be 43 to 128 unreserved characters");
        }
        if app.is_public() && verifier.is_none() {
            return client_error(ErrorCode::InvalidRequest, "code_verifier is required for public clients");
        }
        let code_hash = sha256_hex(code);
        let challenge = verifier.map(|verifier| sha256_b64(verifier, false));
        let jti = random_token();
        let refresh_token = random_token();
        let family_id = uuid::Uuid::new_v4().to_string();
        let redemption = CodeRedemption {
            code_hash: &code_hash,
            app_id: &app.id,
            redirect_uri,
            code_challenge: challenge.as_deref(),
            jti: &jti,
            token_expires_at: now + self.access_token_ttl(app),
            family: NewFamily {
                id: &family_id,
                refresh_hash: &sha256_hex(&refresh_token),
                refresh_expires_at: now + self.refresh_token_ttl(app),
            },
        };
        let Some(grant) = self.store.redeem_code(redemption, now).await? else {
            return self.explain_failed_redemption(app, &code_hash, redirect_uri, challenge.as_deref(), now).await;
        };
        let Some(user) = self.store.active_user_claims(&grant.user_id).await? else {
            return client_error(ErrorCode::InvalidGrant, "the user is disabled");
        };
        self.issue(
            Issue {
                app,
                user: Some(&user),
                scope: &grant.scope,
                jti,
                auth_time: Some(grant.auth_time),
                amr: Some(&grant.amr),
                nonce: grant.nonce.as_deref(),
                refresh_token: grant.offline.then_some(refresh_token),
            },
            now,
        )
        .await
    }

    /// Rotation on every use (RFC 9700 §4.14.2): the presented token is
    /// spent and a new one replaces it. Presenting the immediately previous
    /// token again within the app's grace window (two tabs, two replicas, a
    /// retry after a lost response) is benign: it gets the same successor
    /// the first use got, so the family stays one chain and either holder
    /// continues with it. Any other spent token revokes the whole family.
    /// Every refresh re-applies the access rule.
    async fn refresh(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<Issued> {
        let Some(presented) = params.get("refresh_token") else {
            return client_error(ErrorCode::InvalidRequest, "refresh_token is required");
        };
        let presented_hash = sha256_hex(presented);
        let next = random_token();
        let Some(next_sealed) = seal::seal(presented, &next) else {
            return Err(KeyError::Seal.into());
        };
        let jti = random_token();
        let rotation = Rotation {
            presented_hash: &presented_hash,
            app_id: &app.id,
            next_hash: &sha256_hex(&next),
            next_sealed: &next_sealed,
            next_expires_at: now + self.refresh_token_ttl(app),
            jti: &jti,
            access_expires_at: now + self.access_token_ttl(app),
            reuse_grace: app.options.refresh_token_reuse_grace,
        };
        // A refresh may narrow the scope (RFC 6749 §6), never widen it.
        let requested = params.get("scope");
        let narrow = |granted: &str| match requested {
            Some(requested) if requested.split(' ').all(|scope| has_scope(granted, scope)) => {
                Some(super::claims::granted_scope(requested))
            }
            Some(_) => None,
            None => Some(granted.to_owned()),
        };
        let refused = || {
            client_error(
                ErrorCode::InvalidGrant,
                "the refresh token is invalid, expired, revoked or already used, or its user may not use this app",
            )
        };
        let (grant, refresh_token) = match self.store.rotate_refresh_token(rotation, now, narrow).await? {
            RotationOutcome::Rotated(grant) => (grant, next),
            RotationOutcome::Repeated { grant, successor_sealed } => {
                // Sealed under the presented token: only its holder opens it.
                let Some(successor) = seal::open(presented, &successor_sealed) else { return refused() };
                tracing::info!(app = %app.slug, "refresh token presented again within the grace window");
                (grant, successor)
            }
            RotationOutcome::ScopeRefused => {
                return client_error(ErrorCode::InvalidScope, "a refresh cannot widen the granted scope");
            }
            RotationOutcome::Replayed { username } => {
                tracing::warn!(app = %app.slug, %username, "refresh token replayed; its family was revoked");
                let actor = Actor { username: Some(&username), app: Some(&app.slug), ..Default::default() };
                self.auditor.record("refresh_token_reuse", &actor, Some("family revoked".into()));
                return refused();
            }
            RotationOutcome::NotFound => return refused(),
        };
        let scope = grant.scope.clone();
        let Some(user) = self.store.active_user_claims(&grant.user_id).await? else {
            return client_error(ErrorCode::InvalidGrant, "the user is disabled");
        };
        self.issue(
            Issue {
                app,
                user: Some(&user),
                scope: &scope,
                jti,
                auth_time: Some(grant.auth_time),
                amr: Some(&grant.amr),
                nonce: None,
                refresh_token: Some(refresh_token),
            },
            now,
        )
        .await
    }

    /// The client acting for itself (RFC 6749 §4.4): an access token whose
    /// subject is the client; no ID token, no refresh token.
    async fn client_credentials(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<Issued> {
        if app.is_public() {
            return client_error(
                ErrorCode::UnauthorizedClient,
                "a public client cannot use the client_credentials grant",
            );
        }
        if !app.options.client_credentials {
            return client_error(
                ErrorCode::UnauthorizedClient,
                "the client_credentials grant is not enabled for this app (latch app update --client-credentials)",
            );
        }
        let scope = params.get("scope").map(super::claims::granted_scope).unwrap_or_default();
        let jti = random_token();
        let expires_at = now + self.access_token_ttl(app);
        self.store.insert_client_token(&jti, &app.id, &scope, now, expires_at).await?;
        self.issue(
            Issue { app, user: None, scope: &scope, jti, auth_time: None, amr: None, nonce: None, refresh_token: None },
            now,
        )
        .await
    }

    async fn issue(&self, issue: Issue<'_>, now: UnixTime) -> ProtocolResult<Issued> {
        let app = issue.app;
        let alg = SigningAlg::parse(&app.options.signing_alg)?;
        let mut keys = self.keys.current();
        if keys.signing_key(alg, now).is_none() {
            // A key made moments ago (an app switched to a new algorithm)
            // may not have reached this instance's periodic reload yet.
            self.keys.refresh(&self.store, now).await?;
            keys = self.keys.current();
        }
        let Some(key) = keys.signing_key(alg, now) else {
            return Err(KeyError::UnknownAlg(alg.as_str().to_owned()).into());
        };
        let expires_in = self.access_token_ttl(app);
        let subject = issue.user.map_or_else(|| app.client_id.clone(), |user| user.id.clone());
        let access_claims = AccessTokenClaims {
            iss: self.issuer(&app.slug),
            sub: subject,
            aud: app.client_id.clone(),
            client_id: app.client_id.clone(),
            exp: now + expires_in,
            iat: now,
            jti: issue.jti.clone(),
            scope: issue.scope.to_owned(),
        };
        let id_claims = match issue.user {
            Some(user) if has_scope(issue.scope, "openid") => Some(self.id_token_claims(&issue, user, now)),
            _ => None,
        };
        let kid = key.kid().to_owned();
        let (access_token, id_token) = self
            .signing
            .run(move || {
                let key = keys.key(&kid).ok_or(KeyError::Sign)?;
                let access_token = jws::sign(key, "at+jwt", &access_claims)?;
                let id_token = id_claims
                    .map(|mut claims| {
                        claims.insert("at_hash".into(), json!(alg.left_half_hash(&access_token)));
                        jws::sign(key, "JWT", &claims)
                    })
                    .transpose()?;
                Ok((access_token, id_token))
            })
            .await?;
        let response = TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in,
            id_token,
            refresh_token: issue.refresh_token,
            scope: issue.scope.to_owned(),
        };
        Ok(Issued { response, username: issue.user.map(|user| user.username.clone()) })
    }

    /// All but `at_hash`, which is added once the access token is signed.
    fn id_token_claims(&self, issue: &Issue<'_>, user: &UserClaims, now: UnixTime) -> Map<String, Value> {
        let app = issue.app;
        let mut claims = user_claims(user, issue.scope);
        claims.insert("iss".into(), json!(self.issuer(&app.slug)));
        claims.insert("aud".into(), json!(app.client_id));
        claims.insert("azp".into(), json!(app.client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + self.access_token_ttl(app)));
        if let Some(auth_time) = issue.auth_time {
            claims.insert("auth_time".into(), json!(auth_time));
        }
        if let Some(amr) = issue.amr {
            claims.insert("amr".into(), json!(amr.split(' ').collect::<Vec<_>>()));
        }
        if let Some(nonce) = issue.nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        claims
    }

    /// Says which binding failed. A code that was already used is being
    /// replayed: what its first use issued is revoked (RFC 6749 §4.1.2).
    async fn explain_failed_redemption<T>(
        &self,
        app: &App,
        code_hash: &str,
        redirect_uri: &str,
        challenge: Option<&str>,
        now: UnixTime,
    ) -> ProtocolResult<T> {
        let Some(state) = self.store.code_state(code_hash, &app.id, now).await? else {
            return client_error(ErrorCode::InvalidGrant, "the code is unknown or was issued to another client");
        };
        let reason = if state.used {
            self.store.revoke_tokens_of_code(code_hash, &app.id, now).await?;
            tracing::warn!(app = %app.slug, "authorization code replayed; tokens issued for it were revoked");
            let actor = Actor { app: Some(&app.slug), username: Some(&state.username), ..Default::default() };
            self.auditor.record("code_reuse", &actor, Some("tokens issued for the code revoked".into()));
            "the code was already used"
        } else if state.expires_at <= now {
            "the code has expired"
        } else if state.redirect_uri != redirect_uri {
            "redirect_uri differs from the one in the authorization request"
        } else if !state.admitted {
            "the user may not use this app now (disabled, or not in its groups)"
        } else if !state.session_live {
            "the sign-in session the code was issued in has ended"
        } else if state.code_challenge.is_none() {
            "code_verifier was sent but the authorization request had no code_challenge"
        } else if challenge.is_none() {
            "code_verifier is required: the authorization request had a code_challenge"
        } else {
            "code_verifier does not match the code_challenge"
        };
        client_error(ErrorCode::InvalidGrant, reason)
    }
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
}
