//! Forward-auth rows: proxy apps, the one-time codes that carry a Latch
//! sign-in to an app's host, and the cookies that host then holds. Every
//! cookie is bound to a Latch session, and every check reads it through that
//! session and its user, in one query.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::access::may_use_app;
use super::{Store, StoreError, StoreResult};
use crate::clock::UnixTime;

/// Used codes are kept this long after expiry, so a replay can still find
/// and revoke what the first use issued.
const USED_CODE_RETENTION: i64 = 60 * 60;

pub struct NewProxyApp {
    pub slug: String,
    pub name: String,
    pub client_id: String,
    pub external_url: String,
    pub origin: String,
    pub cookie_domain: Option<String>,
    /// As `AppOptions::require_mfa`.
    pub require_mfa: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProxyApp {
    #[serde(skip)]
    pub app_id: String,
    pub slug: String,
    pub name: String,
    pub client_id: String,
    pub external_url: String,
    pub origin: String,
    pub cookie_domain: Option<String>,
    /// As `AppOptions::require_mfa`.
    pub require_mfa: Option<bool>,
}

impl ProxyApp {
    /// Which sign-in cookies admit to this app: those of its cookie domain
    /// when it shares one, else only its own.
    pub fn scope(&self) -> &str {
        self.cookie_domain.as_deref().unwrap_or(&self.origin)
    }
}

/// The active user behind a sign-in cookie, as identity headers show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub groups: Vec<String>,
}

/// Everything one forward-auth decision needs, from one query.
#[derive(Debug, Clone)]
pub struct ForwardAuthCheck {
    pub app: ProxyApp,
    /// `None`: no cookie, or one whose session ended or whose user is disabled.
    pub user: Option<ProxyUser>,
    /// Whether `user` is admitted by the app's group restrictions.
    pub allowed: bool,
    /// The RFC 8176 methods of the session behind the cookie (with `user`).
    pub session_amr: Option<String>,
}

pub struct NewProxyCode<'a> {
    pub code_hash: &'a str,
    pub state_hash: &'a str,
    pub app_id: &'a str,
    pub session_hash: &'a str,
    pub target_url: &'a str,
    pub expires_at: UnixTime,
}

/// What a redeemed code grants: a cookie for `app`, living as long as the
/// Latch session, and where to send the browser.
#[derive(Debug, Clone)]
pub struct ProxyGrant {
    pub app: ProxyApp,
    /// The state binding the code was redeemed with.
    pub state_hash: String,
    pub target_url: String,
    pub session_expires_at: UnixTime,
}

const PROXY_APP_COLUMNS: &str =
    "pa.app_id, a.slug, a.name, a.client_id, pa.external_url, pa.origin, pa.cookie_domain, a.require_mfa";

fn proxy_app_from_row(row: &AnyRow) -> StoreResult<ProxyApp> {
    Ok(ProxyApp {
        app_id: row.try_get("app_id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        client_id: row.try_get("client_id")?,
        external_url: row.try_get("external_url")?,
        origin: row.try_get("origin")?,
        cookie_domain: row.try_get("cookie_domain")?,
        require_mfa: row.try_get::<Option<i64>, _>("require_mfa")?.map(|required| required != 0),
    })
}

/// `$first, $first+1, …` for `count` values (at least one, so the SQL stays
/// valid when there are none; callers then bind an impossible value).
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count.max(1)).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

impl Store {
    /// The app row (no secret, no redirect URIs: OIDC cannot use it), its
    /// group restrictions and its proxy settings, in one transaction.
    pub async fn create_proxy_app(&self, app: NewProxyApp, groups: &[String], now: UnixTime) -> StoreResult<()> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        sqlx::query(
            "INSERT INTO apps (id, slug, name, client_id, client_secret_hash, redirect_uris, created_at, require_mfa) \
             VALUES ($1, $2, $3, $4, NULL, '[]', $5, $6)",
        )
        .bind(&id)
        .bind(&app.slug)
        .bind(&app.name)
        .bind(&app.client_id)
        .bind(now)
        .bind(app.require_mfa.map(i64::from))
        .execute(&mut *transaction)
        .await
        .map_err(StoreError::on_unique("app", &app.slug))?;
        sqlx::query("INSERT INTO proxy_apps (app_id, external_url, origin, cookie_domain) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(&app.external_url)
            .bind(&app.origin)
            .bind(&app.cookie_domain)
            .execute(&mut *transaction)
            .await
            .map_err(StoreError::on_unique("proxy app for", &app.origin))?;
        self.link_groups(&mut transaction, super::apps::LINK_APP_GROUP, &id, groups).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The proxy settings of app `slug` and its groups; `None` when the app
    /// is not a proxy app (or does not exist).
    pub async fn proxy_app_by_slug(&self, slug: &str) -> StoreResult<Option<(ProxyApp, Vec<String>)>> {
        let rows = sqlx::query(&format!(
            "SELECT {PROXY_APP_COLUMNS}, g.name AS group_name FROM proxy_apps pa JOIN apps a ON a.id = pa.app_id \
             LEFT JOIN app_groups ag ON ag.app_id = a.id LEFT JOIN groups g ON g.id = ag.group_id \
             WHERE a.slug = $1 ORDER BY g.name"
        ))
        .bind(slug)
        .fetch_all(&mut *self.read().await?)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let app = proxy_app_from_row(first)?;
        let mut groups = Vec::new();
        for row in &rows {
            groups.extend(row.try_get::<Option<String>, _>("group_name")?);
        }
        Ok(Some((app, groups)))
    }

    /// The proxy app whose external URL has this origin.
    pub async fn proxy_app_by_origin(&self, origin: &str) -> StoreResult<Option<ProxyApp>> {
        let row = sqlx::query(&format!(
            "SELECT {PROXY_APP_COLUMNS} FROM proxy_apps pa JOIN apps a ON a.id = pa.app_id WHERE pa.origin = $1"
        ))
        .bind(origin)
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.as_ref().map(proxy_app_from_row).transpose()
    }

    /// The forward-auth decision's data in one read: the app at `origin`;
    /// the active user behind the `(token hash, scope)` candidates that were
    /// issued for that scope, which is the app's, and whose Latch session is
    /// live; whether the app's groups admit them; and their groups. Cookies
    /// naming more than one user admit none. `None` when no proxy app has
    /// `origin`.
    pub async fn forward_auth_check(
        &self,
        origin: &str,
        candidates: &[(String, &str)],
        now: UnixTime,
    ) -> StoreResult<Option<ForwardAuthCheck>> {
        // Each candidate counts only for the scope its cookie name stands for.
        let matches = (0..candidates.len().max(1))
            .map(|n| format!("(ps.token_hash = ${} AND ps.scope = ${})", 3 + 2 * n, 4 + 2 * n))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT {PROXY_APP_COLUMNS}, u.id AS user_id, u.username, u.email, u.name AS user_name, s.amr AS session_amr, \
                    g.name AS group_name, CASE WHEN {} THEN 1 ELSE 0 END AS allowed \
             FROM proxy_apps pa \
             JOIN apps a ON a.id = pa.app_id \
             LEFT JOIN proxy_sessions ps ON ({matches}) \
                  AND ps.scope = COALESCE(pa.cookie_domain, pa.origin) \
             LEFT JOIN sessions s ON s.id_hash = ps.session_hash AND s.expires_at > $2 \
             LEFT JOIN users u ON u.id = s.user_id AND u.disabled_at IS NULL \
             LEFT JOIN group_members m ON m.user_id = u.id \
             LEFT JOIN groups g ON g.id = m.group_id \
             WHERE pa.origin = $1 \
             ORDER BY g.name",
            may_use_app("pa.app_id", "u.id"),
        );
        let mut query = sqlx::query(&sql).bind(origin).bind(now);
        if candidates.is_empty() {
            query = query.bind("").bind("");
        }
        for (hash, scope) in candidates {
            query = query.bind(hash).bind(*scope);
        }
        let rows = query.fetch_all(&mut *self.read().await?).await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let app = proxy_app_from_row(first)?;
        // Several rows: one per group, and (rarely) one per matching cookie.
        // The first row with a live user decides; the others add groups. A
        // second user means a cookie another host planted: admit no one.
        let mut user: Option<ProxyUser> = None;
        let mut allowed = false;
        let mut session_amr = None;
        for row in &rows {
            let Some(user_id) = row.try_get::<Option<String>, _>("user_id")? else { continue };
            let current = match &mut user {
                Some(current) if current.id == user_id => current,
                Some(_) => {
                    tracing::warn!(%origin, "forward auth: sign-in cookies of different users; admitting neither");
                    return Ok(Some(ForwardAuthCheck { app, user: None, allowed: false, session_amr: None }));
                }
                None => {
                    allowed = row.try_get::<i64, _>("allowed")? != 0;
                    session_amr = row.try_get("session_amr")?;
                    user.insert(ProxyUser {
                        id: user_id,
                        username: row.try_get("username")?,
                        email: row.try_get("email")?,
                        name: row.try_get("user_name")?,
                        groups: Vec::new(),
                    })
                }
            };
            if let Some(group) = row.try_get::<Option<String>, _>("group_name")?
                && !current.groups.contains(&group)
            {
                current.groups.push(group);
            }
        }
        Ok(Some(ForwardAuthCheck { app, user, allowed, session_amr }))
    }

    /// Records a code (and sweeps codes long expired, so the table stays small).
    pub async fn insert_proxy_code(&self, code: NewProxyCode<'_>, now: UnixTime) -> StoreResult<()> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        sqlx::query("DELETE FROM proxy_codes WHERE expires_at < $1")
            .bind(now.saturating_sub(USED_CODE_RETENTION))
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO proxy_codes (code_hash, state_hash, app_id, session_hash, target_url, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(code.code_hash)
        .bind(code.state_hash)
        .bind(code.app_id)
        .bind(code.session_hash)
        .bind(code.target_url)
        .bind(code.expires_at)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Redeems a code for a new cookie `token_hash`, in one transaction whose
    /// first statement is the atomic `UPDATE … WHERE used_at IS NULL`: of two
    /// instances racing on one code exactly one wins. The code must be
    /// unexpired, presented with its state (one of `state_hashes`: the
    /// browser's sign-ins in progress), its session still live, and the
    /// access rule must admit the session's user to the app; otherwise
    /// nothing changes and `None` comes back.
    pub async fn redeem_proxy_code(
        &self,
        code_hash: &str,
        state_hashes: &[String],
        token_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<ProxyGrant>> {
        let sql = format!(
            "UPDATE proxy_codes SET used_at = $1, token_hash = $2 \
             WHERE code_hash = $3 AND state_hash IN ({}) AND used_at IS NULL AND expires_at > $1 \
             AND EXISTS (SELECT 1 FROM sessions s \
                         WHERE s.id_hash = proxy_codes.session_hash AND s.expires_at > $1 AND {}) \
             RETURNING session_hash, app_id, target_url, state_hash",
            placeholders(4, state_hashes.len()),
            may_use_app("proxy_codes.app_id", "s.user_id")
        );
        let mut query = sqlx::query(&sql).bind(now).bind(token_hash).bind(code_hash);
        if state_hashes.is_empty() {
            query = query.bind("");
        }
        for hash in state_hashes {
            query = query.bind(hash);
        }
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let row = query.fetch_optional(&mut *transaction).await?;
        let Some(row) = row else { return Ok(None) };
        let state_hash: String = row.try_get("state_hash")?;
        let session_hash: String = row.try_get("session_hash")?;
        let app_id: String = row.try_get("app_id")?;
        let target_url: String = row.try_get("target_url")?;
        let details = sqlx::query(&format!(
            "SELECT {PROXY_APP_COLUMNS}, s.expires_at AS session_expires_at \
             FROM proxy_apps pa JOIN apps a ON a.id = pa.app_id, sessions s \
             WHERE pa.app_id = $1 AND s.id_hash = $2"
        ))
        .bind(&app_id)
        .bind(&session_hash)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(details) = details else { return Ok(None) };
        let app = proxy_app_from_row(&details)?;
        let session_expires_at: i64 = details.try_get("session_expires_at")?;
        sqlx::query(
            "INSERT INTO proxy_sessions (token_hash, session_hash, app_id, scope, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(&session_hash)
        .bind(&app_id)
        .bind(app.scope())
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(Some(ProxyGrant { app, state_hash, target_url, session_expires_at }))
    }

    /// A used code presented again: revokes the cookie its first use issued.
    /// Returns whether there was one.
    pub async fn revoke_replayed_proxy_code(&self, code_hash: &str) -> StoreResult<bool> {
        let revoked = sqlx::query(
            "DELETE FROM proxy_sessions WHERE token_hash = \
             (SELECT token_hash FROM proxy_codes WHERE code_hash = $1 AND used_at IS NOT NULL)",
        )
        .bind(code_hash)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(revoked.rows_affected() > 0)
    }

    /// The Latch sessions and scopes behind these cookies, for sign-out.
    pub async fn proxy_sessions_of(&self, token_hashes: &[String]) -> StoreResult<Vec<(String, String)>> {
        if token_hashes.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT session_hash, scope FROM proxy_sessions WHERE token_hash IN ({})",
            placeholders(1, token_hashes.len())
        );
        let mut query = sqlx::query(&sql);
        for hash in token_hashes {
            query = query.bind(hash);
        }
        let rows = query.fetch_all(&mut *self.read().await?).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("session_hash")?, row.try_get("scope")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholder_lists_are_never_empty() {
        assert_eq!(placeholders(3, 0), "$3");
        assert_eq!(placeholders(3, 2), "$3, $4");
    }
}
