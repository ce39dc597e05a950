use sqlx::Row;

use super::access::{live_session, may_use_app};
use super::sessions;
use super::tokens::NewFamily;
use super::{NewAccessToken, Store, StoreResult};
use crate::clock::UnixTime;

pub struct NewCode<'a> {
    pub code_hash: &'a str,
    pub app_id: &'a str,
    pub user_id: &'a str,
    pub session_hash: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub auth_time: UnixTime,
    /// The session's RFC 8176 methods, space-separated.
    pub amr: &'a str,
    pub expires_at: UnixTime,
    /// Whether the exchange starts a refresh token family.
    pub offline: bool,
}

/// A redemption attempt: everything the code must be bound to, the access
/// token to record if it is, and the refresh token to record if the code
/// was issued for offline access.
pub struct CodeRedemption<'a> {
    pub code_hash: &'a str,
    pub app_id: &'a str,
    pub redirect_uri: &'a str,
    /// S256 of the presented verifier; `None` when no verifier was sent.
    pub code_challenge: Option<&'a str>,
    pub jti: &'a str,
    pub token_expires_at: UnixTime,
    pub family: NewFamily<'a>,
}

/// What a redeemed code grants.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub user_id: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth_time: UnixTime,
    /// The RFC 8176 methods of the sign-in, space-separated.
    pub amr: String,
    /// Whether a refresh token was recorded.
    pub offline: bool,
    /// The public `sid` of the session the code was issued in (`None` for
    /// a session older than `sid`s).
    pub sid: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CodeState {
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub expires_at: UnixTime,
    pub used: bool,
    /// Whether the user may use the app now (the access rule).
    pub admitted: bool,
    /// Whether the session the code was issued in is still live.
    pub session_live: bool,
    /// Whom the code was issued to, for the audit trail.
    pub username: String,
}

impl Store {
    pub async fn insert_code(&self, code: NewCode<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, app_id, user_id, session_hash, redirect_uri, scope, nonce, \
             code_challenge, auth_time, amr, expires_at, offline) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(code.code_hash)
        .bind(code.app_id)
        .bind(code.user_id)
        .bind(code.session_hash)
        .bind(code.redirect_uri)
        .bind(code.scope)
        .bind(code.nonce)
        .bind(code.code_challenge)
        .bind(code.auth_time)
        .bind(code.amr)
        .bind(code.expires_at)
        .bind(i64::from(code.offline))
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    /// Redeems the code and records what it buys, in one transaction whose
    /// first statement is the atomic `UPDATE … WHERE used_at IS NULL`: of two
    /// instances racing on one code exactly one wins, and a replay that loses
    /// the race waits for the winner's rows, so `revoke_tokens_of_code` finds
    /// them. Every binding of the code (client, redirect URI, PKCE challenge,
    /// expiry, active user) is part of the condition, so a wrong attempt
    /// changes nothing; `code_state` explains a failure afterwards.
    ///
    /// The access rule is part of the condition too: the user may use the
    /// app now, and the session the code was issued in is still live, so a
    /// code issued before a sign-out or a group change does not redeem.
    pub async fn redeem_code(&self, redemption: CodeRedemption<'_>, now: UnixTime) -> StoreResult<Option<CodeGrant>> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE authorization_codes SET used_at = $1 \
             WHERE code_hash = $2 AND app_id = $3 AND used_at IS NULL AND expires_at > $1 AND redirect_uri = $4 \
             AND ((code_challenge IS NULL AND $5 IS NULL) OR code_challenge = $5) AND {} AND {} \
             RETURNING user_id, scope, nonce, auth_time, amr, session_hash, offline",
            may_use_app("$3", "authorization_codes.user_id"),
            live_session("authorization_codes.session_hash", "$1"),
        ))
        .bind(now)
        .bind(redemption.code_hash)
        .bind(redemption.app_id)
        .bind(redemption.redirect_uri)
        .bind(redemption.code_challenge)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let grant = CodeGrant {
            user_id: row.try_get("user_id")?,
            scope: row.try_get("scope")?,
            nonce: row.try_get("nonce")?,
            auth_time: row.try_get("auth_time")?,
            amr: row.try_get("amr")?,
            offline: row.try_get::<i64, _>("offline")? != 0,
            sid: None,
        };
        let session_hash: String = row.try_get("session_hash")?;
        let Some(sid) = sessions::pin_for_app(&mut transaction, &session_hash, redemption.app_id, now).await? else {
            transaction.rollback().await?;
            return Ok(None);
        };
        let grant = CodeGrant { sid, ..grant };
        let family_id = if grant.offline {
            let family = &redemption.family;
            Self::insert_family(&mut transaction, family, redemption.app_id, &grant, &session_hash, now).await?;
            Some(family.id)
        } else {
            None
        };
        let token = NewAccessToken {
            jti: redemption.jti,
            app_id: redemption.app_id,
            user_id: &grant.user_id,
            scope: &grant.scope,
            code_hash: Some(redemption.code_hash),
            family_id,
            issued_at: now,
            expires_at: redemption.token_expires_at,
        };
        Self::insert_access_token(&mut transaction, token).await?;
        transaction.commit().await?;
        Ok(Some(grant))
    }

    /// The stored state of this app's code, to explain a failed redemption.
    pub async fn code_state(&self, code_hash: &str, app_id: &str, now: UnixTime) -> StoreResult<Option<CodeState>> {
        let row = sqlx::query(&format!(
            "SELECT c.redirect_uri, c.code_challenge, c.expires_at, c.used_at, u.username, \
             CASE WHEN {} THEN 1 ELSE 0 END AS admitted, CASE WHEN {} THEN 1 ELSE 0 END AS session_live \
             FROM authorization_codes c JOIN users u ON u.id = c.user_id WHERE c.code_hash = $1 AND c.app_id = $2",
            may_use_app("c.app_id", "c.user_id"),
            live_session("c.session_hash", "$3"),
        ))
        .bind(code_hash)
        .bind(app_id)
        .bind(now)
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.map(|row| {
            Ok(CodeState {
                redirect_uri: row.try_get("redirect_uri")?,
                code_challenge: row.try_get("code_challenge")?,
                expires_at: row.try_get("expires_at")?,
                used: row.try_get::<Option<i64>, _>("used_at")?.is_some(),
                admitted: row.try_get::<i64, _>("admitted")? != 0,
                session_live: row.try_get::<i64, _>("session_live")? != 0,
                username: row.try_get("username")?,
            })
        })
        .transpose()
        .map_err(|error: sqlx::Error| error.into())
    }

    /// Revokes everything issued for a code, including the refresh token
    /// family it started: called when the code is replayed.
    pub async fn revoke_tokens_of_code(&self, code_hash: &str, app_id: &str, now: UnixTime) -> StoreResult<()> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        sqlx::query(
            "UPDATE token_families SET revoked_at = $1 WHERE revoked_at IS NULL AND id IN \
             (SELECT family_id FROM access_tokens WHERE code_hash = $2 AND app_id = $3 AND family_id IS NOT NULL)",
        )
        .bind(now)
        .bind(code_hash)
        .bind(app_id)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND (code_hash = $2 AND app_id = $3 \
             OR family_id IN (SELECT family_id FROM access_tokens WHERE code_hash = $2 AND app_id = $3))",
        )
        .bind(now)
        .bind(code_hash)
        .bind(app_id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }
}
