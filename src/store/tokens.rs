use sqlx::{Any, Row, Transaction};

use super::access::may_use_app;
use super::codes::CodeGrant;
use super::{Store, StoreResult};
use crate::clock::UnixTime;

pub struct NewAccessToken<'a> {
    pub jti: &'a str,
    pub app_id: &'a str,
    pub user_id: &'a str,
    pub scope: &'a str,
    pub code_hash: Option<&'a str>,
    pub family_id: Option<&'a str>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A refresh token family's id and its first refresh token.
pub struct NewFamily<'a> {
    pub id: &'a str,
    pub refresh_hash: &'a str,
    pub refresh_expires_at: UnixTime,
}

/// A live access token: unexpired, unrevoked (itself and its family), and
/// its user may use its app (the access rule).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccessTokenGrant {
    pub user_id: String,
    pub app_id: String,
    pub scope: String,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A live token of the client credentials grant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientTokenGrant {
    pub app_id: String,
    pub scope: String,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
}

/// What a rotated refresh token's family grants, with the scope of the new
/// access token.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub family_id: String,
    pub user_id: String,
    pub scope: String,
    pub auth_time: UnixTime,
    /// The RFC 8176 methods of the sign-in, space-separated.
    pub amr: String,
    /// The public `sid` of the session the family was issued in, while it lasts.
    pub sid: Option<String>,
}

#[derive(Debug)]
pub enum RotationOutcome {
    /// The presented token was live and is now spent; `Rotation::next_hash`
    /// replaces it.
    Rotated(RefreshGrant),
    /// A benign repeat: the presented token was rotated less than the grace
    /// window ago and its successor is still unused. Nothing was rotated;
    /// the same successor is handed out again, sealed as `Rotation::next_sealed`
    /// sealed it then (`crypto::seal`, keyed by the presented token).
    Repeated { grant: RefreshGrant, successor_sealed: String },
    /// A spent token presented outside the grace window, or one older than
    /// the immediately previous: its whole family is now revoked
    /// (RFC 9700 §4.14.2). `username`: whose tokens those were.
    Replayed { username: String },
    /// Unknown, expired, another client's, its family revoked, or its user
    /// may not use the app now; nothing changed.
    NotFound,
    /// The requested scope was refused; nothing was rotated.
    ScopeRefused,
}

/// A live refresh token as introspection reports it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshTokenInfo {
    pub user_id: String,
    pub app_id: String,
    pub scope: String,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
}

/// The rotation: the refresh token presented, the one replacing it, and the
/// access token it buys.
pub struct Rotation<'a> {
    pub presented_hash: &'a str,
    pub app_id: &'a str,
    pub next_hash: &'a str,
    /// The next token sealed under a key only the presented token derives,
    /// kept on the presented token's row for a benign repeat.
    pub next_sealed: &'a str,
    pub next_expires_at: UnixTime,
    pub jti: &'a str,
    pub access_expires_at: UnixTime,
    /// Seconds after its rotation the presented token may be presented
    /// again (`AppOptions::refresh_token_reuse_grace`); 0: never.
    pub reuse_grace: i64,
}

impl Store {
    pub(super) async fn insert_access_token(
        transaction: &mut Transaction<'_, Any>,
        token: NewAccessToken<'_>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO access_tokens (jti, app_id, user_id, scope, code_hash, family_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(token.jti)
        .bind(token.app_id)
        .bind(token.user_id)
        .bind(token.scope)
        .bind(token.code_hash)
        .bind(token.family_id)
        .bind(token.issued_at)
        .bind(token.expires_at)
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }

    /// Starts a family for a code exchange, with its first refresh token.
    pub(super) async fn insert_family(
        transaction: &mut Transaction<'_, Any>,
        family: &NewFamily<'_>,
        app_id: &str,
        grant: &CodeGrant,
        session_hash: &str,
        now: UnixTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO token_families (id, app_id, user_id, session_hash, scope, auth_time, amr, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(family.id)
        .bind(app_id)
        .bind(&grant.user_id)
        .bind(session_hash)
        .bind(&grant.scope)
        .bind(grant.auth_time)
        .bind(&grant.amr)
        .bind(now)
        .execute(&mut **transaction)
        .await?;
        Self::insert_refresh_token(transaction, family.refresh_hash, family.id, now, family.refresh_expires_at).await
    }

    pub(super) async fn insert_refresh_token(
        transaction: &mut Transaction<'_, Any>,
        token_hash: &str,
        family_id: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(family_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }

    /// Presents a refresh token, deciding in one transaction what it is:
    ///
    /// 1. live: spent atomically (the first statement, `… WHERE used_at IS
    ///    NULL`), its successor and a new access token recorded;
    /// 2. spent less than `reuse_grace` seconds ago with its successor still
    ///    unused: a benign repeat, answered with the same successor and a new
    ///    access token of the same family;
    /// 3. spent otherwise: a replay, and its family is revoked;
    /// 4. anything else (unknown, expired, another client's, revoked, or the
    ///    access rule refuses): nothing changes.
    ///
    /// Of two instances racing on one live token, one spends it and the
    /// other's update waits for that commit, then finds it spent with an
    /// unused successor: a repeat, never a replay, inside the window.
    ///
    /// `narrow` turns the family's scope into the scope of the new access
    /// token, or refuses (`None`): then nothing changes.
    pub async fn rotate_refresh_token(
        &self,
        rotation: Rotation<'_>,
        now: UnixTime,
        narrow: impl FnOnce(&str) -> Option<String>,
    ) -> StoreResult<RotationOutcome> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let repeat_since = now - rotation.reuse_grace;
        let (family_id, successor_sealed) = match Self::spend(&mut transaction, &rotation, now).await? {
            Some(family_id) => (family_id, None),
            None => match Self::repeatable(&mut transaction, &rotation, repeat_since, now).await? {
                Some((family_id, sealed)) => (family_id, Some(sealed)),
                None => {
                    let Some((family_id, username)) =
                        Self::replayed_family(&mut transaction, &rotation, repeat_since).await?
                    else {
                        return Ok(RotationOutcome::NotFound);
                    };
                    Self::revoke_family_in(&mut transaction, &family_id, now).await?;
                    transaction.commit().await?;
                    return Ok(RotationOutcome::Replayed { username });
                }
            },
        };
        let family = sqlx::query(
            "SELECT f.user_id, f.scope, f.auth_time, f.amr, s.sid FROM token_families f \
             LEFT JOIN sessions s ON s.id_hash = f.session_hash WHERE f.id = $1",
        )
        .bind(&family_id)
        .fetch_one(&mut *transaction)
        .await?;
        let Some(scope) = narrow(&family.try_get::<String, _>("scope")?) else {
            transaction.rollback().await?;
            return Ok(RotationOutcome::ScopeRefused);
        };
        let grant = RefreshGrant {
            user_id: family.try_get("user_id")?,
            scope,
            auth_time: family.try_get("auth_time")?,
            amr: family.try_get("amr")?,
            sid: family.try_get("sid")?,
            family_id,
        };
        if successor_sealed.is_none() {
            Self::insert_refresh_token(
                &mut transaction,
                rotation.next_hash,
                &grant.family_id,
                now,
                rotation.next_expires_at,
            )
            .await?;
        }
        let token = NewAccessToken {
            jti: rotation.jti,
            app_id: rotation.app_id,
            user_id: &grant.user_id,
            scope: &grant.scope,
            code_hash: None,
            family_id: Some(&grant.family_id),
            issued_at: now,
            expires_at: rotation.access_expires_at,
        };
        Self::insert_access_token(&mut transaction, token).await?;
        transaction.commit().await?;
        Ok(match successor_sealed {
            Some(successor_sealed) => RotationOutcome::Repeated { grant, successor_sealed },
            None => RotationOutcome::Rotated(grant),
        })
    }

    /// Spends the presented token if it is live, its family unrevoked and
    /// the access rule admits the family's user: the atomic first statement
    /// of a rotation. Returns the family.
    async fn spend(
        transaction: &mut Transaction<'_, Any>,
        rotation: &Rotation<'_>,
        now: UnixTime,
    ) -> StoreResult<Option<String>> {
        let row = sqlx::query(&format!(
            "UPDATE refresh_tokens SET used_at = $1, successor_hash = $4, successor_sealed = $5 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             AND family_id IN (SELECT f.id FROM token_families f WHERE f.app_id = $3 AND f.revoked_at IS NULL \
                               AND {}) \
             RETURNING family_id",
            may_use_app("f.app_id", "f.user_id")
        ))
        .bind(now)
        .bind(rotation.presented_hash)
        .bind(rotation.app_id)
        .bind(rotation.next_hash)
        .bind(rotation.next_sealed)
        .fetch_optional(&mut **transaction)
        .await?;
        Ok(row.map(|row| row.try_get("family_id")).transpose()?)
    }

    /// The family and sealed successor of a token spent after `since` whose
    /// successor is unused and unexpired, in a live family the access rule
    /// still admits: a benign repeat.
    async fn repeatable(
        transaction: &mut Transaction<'_, Any>,
        rotation: &Rotation<'_>,
        since: UnixTime,
        now: UnixTime,
    ) -> StoreResult<Option<(String, String)>> {
        let row = sqlx::query(&format!(
            "SELECT p.family_id, p.successor_sealed FROM refresh_tokens p \
             JOIN refresh_tokens s ON s.token_hash = p.successor_hash JOIN token_families f ON f.id = p.family_id \
             WHERE p.token_hash = $1 AND f.app_id = $2 AND p.used_at > $3 AND p.successor_sealed IS NOT NULL \
             AND s.used_at IS NULL AND s.expires_at > $4 AND f.revoked_at IS NULL AND {}",
            may_use_app("f.app_id", "f.user_id")
        ))
        .bind(rotation.presented_hash)
        .bind(rotation.app_id)
        .bind(since)
        .bind(now)
        .fetch_optional(&mut **transaction)
        .await?;
        row.map(|row| Ok((row.try_get("family_id")?, row.try_get("successor_sealed")?)))
            .transpose()
            .map_err(|error: sqlx::Error| error.into())
    }

    /// The family of a spent token of this app presented as a replay: spent
    /// at or before `since`, or its successor spent too (an older generation
    /// than the immediately previous).
    async fn replayed_family(
        transaction: &mut Transaction<'_, Any>,
        rotation: &Rotation<'_>,
        since: UnixTime,
    ) -> StoreResult<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT r.family_id, u.username FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id \
             JOIN users u ON u.id = f.user_id \
             WHERE r.token_hash = $1 AND f.app_id = $2 AND r.used_at IS NOT NULL \
             AND NOT (r.used_at > $3 AND EXISTS (SELECT 1 FROM refresh_tokens s \
                                                 WHERE s.token_hash = r.successor_hash AND s.used_at IS NULL))",
        )
        .bind(rotation.presented_hash)
        .bind(rotation.app_id)
        .bind(since)
        .fetch_optional(&mut **transaction)
        .await?;
        Ok(row.map(|row| Ok::<_, sqlx::Error>((row.try_get("family_id")?, row.try_get("username")?))).transpose()?)
    }

    /// Revokes a family: its refresh tokens and every access token it bought.
    pub async fn revoke_family(&self, family_id: &str, now: UnixTime) -> StoreResult<()> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        Self::revoke_family_in(&mut transaction, family_id, now).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn revoke_family_in(
        transaction: &mut Transaction<'_, Any>,
        family_id: &str,
        now: UnixTime,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(family_id)
            .execute(&mut **transaction)
            .await?;
        sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(family_id)
            .execute(&mut **transaction)
            .await?;
        Ok(())
    }

    /// A refresh token's family and owning app, if the token exists.
    pub async fn refresh_token_owner(&self, token_hash: &str) -> StoreResult<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT r.family_id, f.app_id FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id \
             WHERE r.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.map(|row| Ok((row.try_get("family_id")?, row.try_get("app_id")?)))
            .transpose()
            .map_err(|error: sqlx::Error| error.into())
    }

    /// A refresh token that could be used now: unspent, unexpired, its
    /// family unrevoked, and the access rule admits its user to its app.
    pub async fn live_refresh_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<Option<RefreshTokenInfo>> {
        Ok(sqlx::query_as::<_, RefreshTokenInfo>(&format!(
            "SELECT f.user_id, f.app_id, f.scope, r.issued_at, r.expires_at FROM refresh_tokens r \
             JOIN token_families f ON f.id = r.family_id \
             WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > $2 AND f.revoked_at IS NULL AND {}",
            may_use_app("f.app_id", "f.user_id")
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *self.read().await?)
        .await?)
    }

    /// The app an access token (of either grant) was issued to.
    pub async fn access_token_app(&self, jti: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(
            "SELECT app_id FROM access_tokens WHERE jti = $1 UNION ALL SELECT app_id FROM client_tokens WHERE jti = $1",
        )
        .bind(jti)
        .fetch_optional(&mut *self.read().await?)
        .await?;
        Ok(row.map(|row| row.try_get("app_id")).transpose()?)
    }

    pub async fn revoke_access_token(&self, jti: &str, now: UnixTime) -> StoreResult<()> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        for table in ["access_tokens", "client_tokens"] {
            sqlx::query(&format!("UPDATE {table} SET revoked_at = $1 WHERE jti = $2 AND revoked_at IS NULL"))
                .bind(now)
                .bind(jti)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    pub async fn insert_client_token(
        &self,
        jti: &str,
        app_id: &str,
        scope: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO client_tokens (jti, app_id, scope, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(jti)
        .bind(app_id)
        .bind(scope)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    pub async fn live_client_token(&self, jti: &str, now: UnixTime) -> StoreResult<Option<ClientTokenGrant>> {
        Ok(sqlx::query_as::<_, ClientTokenGrant>(
            "SELECT app_id, scope, issued_at, expires_at FROM client_tokens \
             WHERE jti = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(jti)
        .bind(now)
        .fetch_optional(&mut *self.read().await?)
        .await?)
    }

    pub async fn live_access_token(&self, jti: &str, now: UnixTime) -> StoreResult<Option<AccessTokenGrant>> {
        Ok(sqlx::query_as::<_, AccessTokenGrant>(&format!(
            "SELECT t.user_id, t.app_id, t.scope, t.issued_at, t.expires_at FROM access_tokens t \
             WHERE t.jti = $1 AND {}",
            live_access_token()
        ))
        .bind(jti)
        .bind(now)
        .fetch_optional(&mut *self.read().await?)
        .await?)
    }
}

/// The condition on `access_tokens t` (`$2` = now) that makes a user's
/// access token good: unexpired, unrevoked, its family (if any) unrevoked
/// (so a token issued while its family was being revoked still dies with
/// it), and the access rule admits its user to its app.
pub(super) fn live_access_token() -> String {
    format!(
        "t.revoked_at IS NULL AND t.expires_at > $2 \
         AND NOT EXISTS (SELECT 1 FROM token_families tf WHERE tf.id = t.family_id AND tf.revoked_at IS NOT NULL) \
         AND {}",
        may_use_app("t.app_id", "t.user_id")
    )
}
