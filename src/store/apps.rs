use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, StoreResult, decode_list, encode_list};
use crate::clock::UnixTime;

pub struct NewApp {
    pub slug: String,
    pub name: String,
    pub client_id: String,
    pub client_secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
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
}

const APP_COLUMNS: &str = "id, slug, name, client_id, client_secret_hash, redirect_uris";

fn app_from_row(row: &AnyRow) -> StoreResult<App> {
    Ok(App {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        client_id: row.try_get("client_id")?,
        client_secret_hash: row.try_get("client_secret_hash")?,
        redirect_uris: decode_list(&row.try_get::<String, _>("redirect_uris")?)?,
    })
}

impl Store {
    /// The app and its group restrictions in one transaction.
    pub async fn create_app(&self, app: NewApp, groups: &[String], now: UnixTime) -> StoreResult<()> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut transaction = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO apps (id, slug, name, client_id, client_secret_hash, redirect_uris, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(&app.slug)
        .bind(&app.name)
        .bind(&app.client_id)
        .bind(&app.client_secret_hash)
        .bind(encode_list(&app.redirect_uris))
        .bind(now)
        .execute(&mut *transaction)
        .await
        .map_err(StoreError::on_unique("app", &app.slug))?;
        for group in groups {
            let added = sqlx::query(
                "INSERT INTO app_groups (app_id, group_id) SELECT $1, id FROM groups WHERE name = $2 ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(group)
            .execute(&mut *transaction)
            .await?;
            if added.rows_affected() == 0 && !self.group_exists_in(&mut transaction, group).await? {
                return Err(StoreError::NotFound { kind: "group", name: group.clone() });
            }
        }
        transaction.commit().await?;
        Ok(())
    }

    pub async fn app_by_client_id(&self, client_id: &str) -> StoreResult<Option<App>> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1"))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    pub async fn app_by_slug(&self, slug: &str) -> StoreResult<Option<App>> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE slug = $1"))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    pub async fn list_apps(&self) -> StoreResult<Vec<AppSummary>> {
        let rows = sqlx::query(
            "SELECT a.slug, a.name, a.client_id, a.client_secret_hash, a.redirect_uris, g.name AS group_name \
             FROM apps a LEFT JOIN app_groups ag ON ag.app_id = a.id LEFT JOIN groups g ON g.id = ag.group_id \
             ORDER BY a.slug, g.name",
        )
        .fetch_all(&self.pool)
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
                });
            }
            if let (Some(group), Some(app)) = (row.try_get::<Option<String>, _>("group_name")?, apps.last_mut()) {
                app.groups.push(group);
            }
        }
        Ok(apps)
    }

    pub async fn remove_app(&self, slug: &str) -> StoreResult<()> {
        let removed = sqlx::query("DELETE FROM apps WHERE slug = $1").bind(slug).execute(&self.pool).await?;
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
                .execute(&self.pool)
                .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// An app with no group restriction admits every active user; otherwise
    /// the user must be in at least one of its groups.
    pub async fn user_may_use_app(&self, app_id: &str, user_id: &str) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM app_groups WHERE app_id = $1) AS restrictions, \
                    (SELECT COUNT(*) FROM app_groups ag JOIN group_members m ON m.group_id = ag.group_id \
                     WHERE ag.app_id = $1 AND m.user_id = $2) AS memberships",
        )
        .bind(app_id)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        let restrictions: i64 = row.try_get("restrictions")?;
        let memberships: i64 = row.try_get("memberships")?;
        Ok(restrictions == 0 || memberships > 0)
    }
}
