use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::access::may_use_app;
use super::{Store, StoreError, StoreResult, decode_list, encode_list};
use crate::canonical::{canonical_enum, canonical_value_enum};
use crate::clock::UnixTime;
use crate::crypto::keys::SigningAlg;

pub struct NewApp {
    pub slug: String,
    pub name: String,
    pub client_id: String,
    pub client_secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub options: AppOptions,
}

canonical_enum! {
    /// Whether an app asks each person before it gets their claims.
    pub enum ConsentMode ("consent") {
        /// No consent page: the operator's own apps.
        Implicit = "implicit",
        /// Ask each person once, and again when the app asks for more.
        Explicit = "explicit",
    }
}

canonical_value_enum!(ConsentMode);

/// Per-app settings an operator can change after creation. Lifetimes are
/// seconds; `None` means the deployment's default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppOptions {
    pub code_ttl: Option<i64>,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub consent: ConsentMode,
    pub signing_alg: SigningAlg,
    pub client_credentials: bool,
    pub post_logout_redirect_uris: Vec<String>,
    /// Seconds a rotated refresh token may be presented again and get the
    /// same successor (a retry, a second tab); 0 disables.
    pub refresh_token_reuse_grace: i64,
    /// Where the app is told, server to server, that a session it received
    /// tokens in has ended (Back-Channel Logout 1.0); `None`: it is not told.
    pub backchannel_logout_uri: Option<String>,
    /// Whether the device authorization grant (RFC 8628) is allowed.
    pub device_code: bool,
    pub device_code_ttl: Option<i64>,
    /// Whether signing in to the app needs a second factor; `None`: the
    /// deployment's `require_mfa` decides.
    pub require_mfa: Option<bool>,
}

/// About a minute, as Amazon Cognito's retry grace period: long enough for a
/// retry or a second tab, short enough that a stolen token is soon useless.
pub const DEFAULT_REFRESH_TOKEN_REUSE_GRACE: i64 = 60;

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            code_ttl: None,
            access_token_ttl: None,
            refresh_token_ttl: None,
            consent: ConsentMode::Implicit,
            signing_alg: SigningAlg::RS256,
            client_credentials: false,
            post_logout_redirect_uris: Vec::new(),
            refresh_token_reuse_grace: DEFAULT_REFRESH_TOKEN_REUSE_GRACE,
            backchannel_logout_uri: None,
            device_code: false,
            device_code_ttl: None,
            require_mfa: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct App {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub client_id: String,
    /// `None` for a public client.
    pub client_secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub options: AppOptions,
}

impl App {
    pub fn is_public(&self) -> bool {
        self.client_secret_hash.is_none()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AppSummary {
    pub slug: String,
    pub name: String,
    pub client_id: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub groups: Vec<String>,
    #[serde(flatten)]
    pub options: AppOptions,
    /// Set for a forward-auth (proxy) app: the URL it is guarded at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
}

/// Restricts an app (`$1`) to a group (`$2`, by name).
pub(super) const LINK_APP_GROUP: &str =
    "INSERT INTO app_groups (app_id, group_id) SELECT $1, id FROM groups WHERE name = $2 ON CONFLICT DO NOTHING";

const APP_COLUMNS: &str = "id, slug, name, client_id, client_secret_hash, redirect_uris, code_ttl, access_token_ttl, \
     refresh_token_ttl, consent, signing_alg, client_credentials, post_logout_redirect_uris, refresh_token_reuse_grace, \
     backchannel_logout_uri, device_code, device_code_ttl, require_mfa";

fn options_from_row(row: &AnyRow) -> StoreResult<AppOptions> {
    Ok(AppOptions {
        code_ttl: row.try_get("code_ttl")?,
        access_token_ttl: row.try_get("access_token_ttl")?,
        refresh_token_ttl: row.try_get("refresh_token_ttl")?,
        consent: parse_column(row, "consent")?,
        signing_alg: parse_column(row, "signing_alg")?,
        client_credentials: row.try_get::<i64, _>("client_credentials")? != 0,
        post_logout_redirect_uris: decode_list(&row.try_get::<String, _>("post_logout_redirect_uris")?)?,
        refresh_token_reuse_grace: row.try_get("refresh_token_reuse_grace")?,
        backchannel_logout_uri: row.try_get("backchannel_logout_uri")?,
        device_code: row.try_get::<i64, _>("device_code")? != 0,
        device_code_ttl: row.try_get("device_code_ttl")?,
        require_mfa: row.try_get::<Option<i64>, _>("require_mfa")?.map(|required| required != 0),
    })
}

/// A text column holding one of a closed set of values; anything else was
/// not written by Latch and is reported, not guessed at.
pub(super) fn parse_column<T>(row: &AnyRow, column: &str) -> StoreResult<T>
where
    T: std::str::FromStr<Err = crate::canonical::UnknownValue>,
{
    let stored: String = row.try_get(column)?;
    stored.parse().map_err(|error| StoreError::Corrupt(format!("apps.{column}: {error}")))
}

/// Whether `apps` admits the user `$2`, as an `admitted` column (the access rule).
fn admitted_column() -> String {
    format!("CASE WHEN {} THEN 1 ELSE 0 END AS admitted", may_use_app("apps.id", "$2"))
}

fn admits(row: &AnyRow) -> StoreResult<bool> {
    Ok(row.try_get::<i64, _>("admitted")? != 0)
}

fn app_from_row(row: &AnyRow) -> StoreResult<App> {
    Ok(App {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        client_id: row.try_get("client_id")?,
        client_secret_hash: row.try_get("client_secret_hash")?,
        redirect_uris: decode_list(&row.try_get::<String, _>("redirect_uris")?)?,
        options: options_from_row(row)?,
    })
}

impl Store {
    /// The app and its group restrictions in one transaction.
    pub async fn create_app(&self, app: NewApp, groups: &[String], now: UnixTime) -> StoreResult<()> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        sqlx::query(
            "INSERT INTO apps (id, slug, name, client_id, client_secret_hash, redirect_uris, created_at, code_ttl, \
             access_token_ttl, refresh_token_ttl, consent, signing_alg, client_credentials, post_logout_redirect_uris, \
             refresh_token_reuse_grace, backchannel_logout_uri, device_code, device_code_ttl, require_mfa) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(&id)
        .bind(&app.slug)
        .bind(&app.name)
        .bind(&app.client_id)
        .bind(&app.client_secret_hash)
        .bind(encode_list(&app.redirect_uris))
        .bind(now)
        .bind(app.options.code_ttl)
        .bind(app.options.access_token_ttl)
        .bind(app.options.refresh_token_ttl)
        .bind(app.options.consent.as_str())
        .bind(app.options.signing_alg.as_str())
        .bind(i64::from(app.options.client_credentials))
        .bind(encode_list(&app.options.post_logout_redirect_uris))
        .bind(app.options.refresh_token_reuse_grace)
        .bind(&app.options.backchannel_logout_uri)
        .bind(i64::from(app.options.device_code))
        .bind(app.options.device_code_ttl)
        .bind(app.options.require_mfa.map(i64::from))
        .execute(&mut *transaction)
        .await
        .map_err(StoreError::on_unique("app", &app.slug))?;
        self.link_groups(&mut transaction, LINK_APP_GROUP, &id, groups).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The app with this client ID and whether it admits `user_id` (the
    /// access rule): the authorization endpoint's two questions in one read.
    pub async fn app_admitting(&self, client_id: &str, user_id: Option<&str>) -> StoreResult<Option<(App, bool)>> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS}, {} FROM apps WHERE client_id = $1", admitted_column()))
            .bind(client_id)
            .bind(user_id)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        row.as_ref().map(|row| Ok((app_from_row(row)?, admits(row)?))).transpose()
    }

    pub async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1"))
            .bind(client_id)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    pub async fn app_by_slug(&self, slug: &str) -> StoreResult<Option<App>> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE slug = $1"))
            .bind(slug)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    /// Whether an app has this slug: all that discovery and JWKS ask, on
    /// every request, so without reading and decoding the whole row.
    pub async fn app_exists(&self, slug: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 AS found FROM apps WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        Ok(row.is_some())
    }

    pub async fn list_apps(&self) -> StoreResult<Vec<AppSummary>> {
        let rows = sqlx::query(
            "SELECT a.slug, a.name, a.client_id, a.client_secret_hash, a.redirect_uris, a.code_ttl, a.access_token_ttl, \
             a.refresh_token_ttl, a.consent, a.signing_alg, a.client_credentials, a.post_logout_redirect_uris, \
             a.refresh_token_reuse_grace, a.backchannel_logout_uri, a.device_code, a.device_code_ttl, a.require_mfa, g.name AS group_name, pa.external_url FROM apps a LEFT JOIN proxy_apps pa ON pa.app_id = a.id \
             LEFT JOIN app_groups ag ON ag.app_id = a.id LEFT JOIN groups g ON g.id = ag.group_id \
             ORDER BY a.slug, g.name",
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        let mut apps: Vec<AppSummary> = Vec::new();
        for row in rows {
            let slug: String = row.try_get("slug")?;
            if apps.last().is_none_or(|last| last.slug != slug) {
                apps.push(AppSummary {
                    slug,
                    name: row.try_get("name")?,
                    client_id: row.try_get("client_id")?,
                    public: row.try_get::<Option<String>, _>("client_secret_hash")?.is_none(),
                    redirect_uris: decode_list(&row.try_get::<String, _>("redirect_uris")?)?,
                    groups: Vec::new(),
                    options: options_from_row(&row)?,
                    external_url: row.try_get("external_url")?,
                });
            }
            if let (Some(group), Some(app)) = (row.try_get::<Option<String>, _>("group_name")?, apps.last_mut()) {
                app.groups.push(group);
            }
        }
        Ok(apps)
    }

    /// Replaces an app's options and, when given, its redirect URIs and its
    /// groups (an empty list lifts the restriction), in one transaction: an
    /// unknown group changes nothing. Tokens already issued follow the new
    /// groups at once, since every grant and check applies the access rule.
    pub async fn update_app(
        &self,
        slug: &str,
        options: &AppOptions,
        redirect_uris: Option<&[String]>,
        groups: Option<&[String]>,
    ) -> StoreResult<()> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let updated = sqlx::query(
            "UPDATE apps SET code_ttl = $1, access_token_ttl = $2, refresh_token_ttl = $3, consent = $4, signing_alg = $5, \
             client_credentials = $6, post_logout_redirect_uris = $7, redirect_uris = COALESCE($8, redirect_uris), \
             refresh_token_reuse_grace = $9, backchannel_logout_uri = $10, device_code = $11, device_code_ttl = $12, \
             require_mfa = $14 WHERE slug = $13 RETURNING id",
        )
        .bind(options.code_ttl)
        .bind(options.access_token_ttl)
        .bind(options.refresh_token_ttl)
        .bind(options.consent.as_str())
        .bind(options.signing_alg.as_str())
        .bind(i64::from(options.client_credentials))
        .bind(encode_list(&options.post_logout_redirect_uris))
        .bind(redirect_uris.map(encode_list))
        .bind(options.refresh_token_reuse_grace)
        .bind(&options.backchannel_logout_uri)
        .bind(i64::from(options.device_code))
        .bind(options.device_code_ttl)
        .bind(slug)
        .bind(options.require_mfa.map(i64::from))
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(updated) = updated else {
            return Err(StoreError::NotFound { kind: "app", name: slug.to_owned() });
        };
        if let Some(groups) = groups {
            let id: String = updated.try_get("id")?;
            sqlx::query("DELETE FROM app_groups WHERE app_id = $1").bind(&id).execute(&mut *transaction).await?;
            self.link_groups(&mut transaction, LINK_APP_GROUP, &id, groups).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    pub async fn remove_app(&self, slug: &str) -> StoreResult<()> {
        let removed =
            sqlx::query("DELETE FROM apps WHERE slug = $1").bind(slug).execute(&mut *self.write().await?).await?;
        if removed.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "app", name: slug.to_owned() });
        }
        Ok(())
    }

    /// Replaces a confidential app's secret; public apps have none to replace.
    pub async fn set_client_secret_hash(&self, slug: &str, secret_hash: &str) -> StoreResult<bool> {
        let updated =
            sqlx::query("UPDATE apps SET client_secret_hash = $1 WHERE slug = $2 AND client_secret_hash IS NOT NULL")
                .bind(secret_hash)
                .bind(slug)
                .execute(&mut *self.write().await?)
                .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// The names of the apps the user may use that require a second
    /// factor: those that say so, and with `by_default` those that say
    /// nothing.
    pub async fn apps_requiring_mfa(&self, user_id: &str, by_default: bool) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(&format!(
            "SELECT name FROM apps WHERE (require_mfa = 1 OR (require_mfa IS NULL AND $1 = 1)) AND {} ORDER BY name",
            may_use_app("apps.id", "$2")
        ))
        .bind(i64::from(by_default))
        .bind(user_id)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter().map(|row| row.try_get("name")).collect::<Result<_, sqlx::Error>>().map_err(Into::into)
    }

    /// Whether the app admits the user now (the access rule).
    pub async fn user_may_use_app(&self, app_id: &str, user_id: &str) -> StoreResult<bool> {
        let row = sqlx::query(&format!("SELECT {} FROM apps WHERE id = $1", admitted_column()))
            .bind(app_id)
            .bind(user_id)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        row.as_ref().map_or(Ok(false), admits)
    }
}
