//! Device codes (RFC 8628): one row per device authorization request, from
//! the request through the person's answer to its one redemption. Both
//! codes are stored as SHA-256 hashes only.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::access::{live_session, may_use_app};
use super::sessions;
use super::tokens::NewFamily;
use super::{NewAccessToken, Store, StoreResult};
use crate::clock::UnixTime;

pub struct NewDeviceCode<'a> {
    pub device_code_hash: &'a str,
    pub user_code_hash: &'a str,
    pub app_id: &'a str,
    pub scope: &'a str,
    /// Whether the redemption starts a refresh token family.
    pub offline: bool,
    /// Seconds the device must wait between polls.
    pub interval: i64,
    pub now: UnixTime,
    pub expires_at: UnixTime,
}

/// An unanswered, unexpired request found by its user code.
#[derive(Debug, Clone)]
pub struct PendingDevice {
    pub app_name: String,
    pub scope: String,
    /// Whether the person asking may use the app now (the access rule).
    pub admitted: bool,
    /// The app's `AppOptions::require_mfa`.
    pub require_mfa: Option<bool>,
}

/// A person's answer to a request, and the session they gave it in.
pub struct DeviceAnswer<'a> {
    pub user_code_hash: &'a str,
    pub user_id: &'a str,
    pub session_hash: &'a str,
    pub auth_time: UnixTime,
    /// The sign-in's RFC 8176 methods, space-separated.
    pub amr: &'a str,
    /// `false`: deny. `true`: approve, which the access rule may still turn
    /// into a denial, decided in the same statement.
    pub approve: bool,
}

/// How an answer was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// Approved for the app of this name and slug.
    Approved { app_name: String, app_slug: String },
    /// Denied: by the person, or (`by_rule`) by the access rule although
    /// they approved.
    Denied { app_name: String, app_slug: String, by_rule: bool },
    /// No unanswered, unexpired request has this user code.
    NotPending,
}

/// A redemption attempt: the device code, and what it buys if it redeems.
pub struct DeviceRedemption<'a> {
    pub device_code_hash: &'a str,
    pub app_id: &'a str,
    pub jti: &'a str,
    pub token_expires_at: UnixTime,
    /// Every redemption starts a family, which ties its tokens to the
    /// approving session; the family's refresh token is recorded only when
    /// the request was for offline access.
    pub family: NewFamily<'a>,
}

/// What a redeemed device code grants.
#[derive(Debug, Clone)]
pub struct DeviceGrant {
    pub user_id: String,
    pub scope: String,
    pub auth_time: UnixTime,
    pub amr: String,
    /// Whether a refresh token was recorded.
    pub offline: bool,
    /// The public `sid` of the approving session (`None` for a session
    /// older than `sid`s).
    pub sid: Option<String>,
}

/// A device code's state, seen by a poll that did not redeem it.
#[derive(Debug, Clone)]
pub struct DevicePoll {
    /// This poll came sooner than the interval, which is now 5 s longer.
    pub slowed_down: bool,
    /// Seconds the device must now wait between polls.
    pub interval: i64,
    pub expires_at: UnixTime,
    /// `Some(true)` approved, `Some(false)` denied, `None` not answered yet.
    pub approved: Option<bool>,
    /// The family an earlier redemption started, if it was redeemed.
    pub redeemed_family: Option<String>,
    /// The approver may use the app now (false before an answer).
    pub admitted: bool,
    /// The session the approval was given in is live (false before an answer).
    pub session_live: bool,
}

impl Store {
    /// Records a new request. `false` when its user code is taken (by a
    /// request not yet deleted): the caller draws another.
    pub async fn insert_device_code(&self, code: NewDeviceCode<'_>) -> StoreResult<bool> {
        let inserted = sqlx::query(
            "INSERT INTO device_codes (device_code_hash, user_code_hash, app_id, scope, offline, poll_interval, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(code.device_code_hash)
        .bind(code.user_code_hash)
        .bind(code.app_id)
        .bind(code.scope)
        .bind(i64::from(code.offline))
        .bind(code.interval)
        .bind(code.now)
        .bind(code.expires_at)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// The unanswered, unexpired request with this user code, and whether
    /// `user_id` may use its app.
    pub async fn pending_device(
        &self,
        user_code_hash: &str,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<Option<PendingDevice>> {
        let row = sqlx::query(&format!(
            "SELECT a.name, d.scope, a.require_mfa, CASE WHEN {} THEN 1 ELSE 0 END AS admitted \
             FROM device_codes d JOIN apps a ON a.id = d.app_id \
             WHERE d.user_code_hash = $1 AND d.approved IS NULL AND d.expires_at > $3",
            may_use_app("d.app_id", "$2"),
        ))
        .bind(user_code_hash)
        .bind(user_id)
        .bind(now)
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.map(|row| {
            Ok(PendingDevice {
                app_name: row.try_get("name")?,
                scope: row.try_get("scope")?,
                admitted: row.try_get::<i64, _>("admitted")? != 0,
                require_mfa: row.try_get::<Option<i64>, _>("require_mfa")?.map(|required| required != 0),
            })
        })
        .transpose()
        .map_err(|error: sqlx::Error| error.into())
    }

    /// Records the answer, once: one statement that only an unanswered,
    /// unexpired request matches, so of two answers (on any instances) the
    /// first counts and the second finds nothing pending. An approval is
    /// checked against the access rule in that same statement.
    pub async fn answer_device(&self, answer: DeviceAnswer<'_>, now: UnixTime) -> StoreResult<Answered> {
        let row = sqlx::query(&format!(
            "UPDATE device_codes SET approved = CASE WHEN $5 = 1 AND {} THEN 1 ELSE 0 END, \
             user_id = $2, session_hash = $3, auth_time = $4, decided_at = $6, amr = $7 \
             WHERE user_code_hash = $1 AND approved IS NULL AND expires_at > $6 \
             RETURNING approved, \
             (SELECT name FROM apps WHERE apps.id = device_codes.app_id) AS app_name, \
             (SELECT slug FROM apps WHERE apps.id = device_codes.app_id) AS app_slug",
            may_use_app("device_codes.app_id", "$2"),
        ))
        .bind(answer.user_code_hash)
        .bind(answer.user_id)
        .bind(answer.session_hash)
        .bind(answer.auth_time)
        .bind(i64::from(answer.approve))
        .bind(now)
        .bind(answer.amr)
        .fetch_optional(&mut *self.write().await?)
        .await?;
        let Some(row) = row else { return Ok(Answered::NotPending) };
        let app_name: String = row.try_get("app_name")?;
        let app_slug: String = row.try_get("app_slug")?;
        Ok(match row.try_get::<i64, _>("approved")? {
            0 => Answered::Denied { app_name, app_slug, by_rule: answer.approve },
            _ => Answered::Approved { app_name, app_slug },
        })
    }

    /// Redeems an approved device code and records what it buys, in one
    /// transaction whose first statement is the atomic `UPDATE … WHERE
    /// redeemed_at IS NULL`: of two instances racing on one code exactly one
    /// wins. As for an authorization code, the access rule and the approving
    /// session's being live are part of the condition, and the session row is
    /// pinned until commit, so a sign-out racing this either comes first (and
    /// nothing is issued) or revokes what this issued and tells the app.
    pub async fn redeem_device_code(
        &self,
        redemption: DeviceRedemption<'_>,
        now: UnixTime,
    ) -> StoreResult<Option<DeviceGrant>> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE device_codes SET redeemed_at = $1, family_id = $4 \
             WHERE device_code_hash = $2 AND app_id = $3 AND approved = 1 AND redeemed_at IS NULL \
             AND expires_at > $1 AND {} AND {} \
             RETURNING user_id, scope, auth_time, amr, session_hash, offline",
            may_use_app("$3", "device_codes.user_id"),
            live_session("device_codes.session_hash", "$1"),
        ))
        .bind(now)
        .bind(redemption.device_code_hash)
        .bind(redemption.app_id)
        .bind(redemption.family.id)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let grant = DeviceGrant {
            user_id: row.try_get("user_id")?,
            scope: row.try_get("scope")?,
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
        let grant = DeviceGrant { sid, ..grant };
        let family = &redemption.family;
        sqlx::query(
            "INSERT INTO token_families (id, app_id, user_id, session_hash, scope, auth_time, amr, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(family.id)
        .bind(redemption.app_id)
        .bind(&grant.user_id)
        .bind(&session_hash)
        .bind(&grant.scope)
        .bind(grant.auth_time)
        .bind(&grant.amr)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        if grant.offline {
            Self::insert_refresh_token(
                &mut transaction,
                family.refresh_hash,
                family.id,
                now,
                family.refresh_expires_at,
            )
            .await?;
        }
        let token = NewAccessToken {
            jti: redemption.jti,
            app_id: redemption.app_id,
            user_id: &grant.user_id,
            scope: &grant.scope,
            code_hash: None,
            family_id: Some(family.id),
            issued_at: now,
            expires_at: redemption.token_expires_at,
        };
        Self::insert_access_token(&mut transaction, token).await?;
        transaction.commit().await?;
        Ok(Some(grant))
    }

    /// Notes a poll of this app's device code that did not redeem it, and
    /// returns the code's state. One statement decides and records whether
    /// the poll came sooner than the interval (then the interval grows by
    /// 5 s, RFC 8628 §3.5), so polls spread over instances count alike.
    /// `None`: no such code for this app.
    pub async fn poll_device_code(
        &self,
        device_code_hash: &str,
        app_id: &str,
        now: UnixTime,
    ) -> StoreResult<Option<DevicePoll>> {
        let too_soon = "$3 < last_polled_at + poll_interval";
        let row = sqlx::query(&format!(
            "UPDATE device_codes SET slowed_down = CASE WHEN {too_soon} THEN 1 ELSE 0 END, \
             poll_interval = CASE WHEN {too_soon} THEN poll_interval + 5 ELSE poll_interval END, \
             last_polled_at = $3 \
             WHERE device_code_hash = $1 AND app_id = $2 \
             RETURNING slowed_down, poll_interval, expires_at, approved, family_id, \
             CASE WHEN user_id IS NOT NULL AND {} THEN 1 ELSE 0 END AS admitted, \
             CASE WHEN {} THEN 1 ELSE 0 END AS session_live",
            may_use_app("device_codes.app_id", "device_codes.user_id"),
            live_session("device_codes.session_hash", "$3"),
        ))
        .bind(device_code_hash)
        .bind(app_id)
        .bind(now)
        .fetch_optional(&mut *self.write().await?)
        .await?;
        row.as_ref().map(poll_from_row).transpose()
    }
}

fn poll_from_row(row: &AnyRow) -> StoreResult<DevicePoll> {
    Ok(DevicePoll {
        slowed_down: row.try_get::<i64, _>("slowed_down")? != 0,
        interval: row.try_get("poll_interval")?,
        expires_at: row.try_get("expires_at")?,
        approved: row.try_get::<Option<i64>, _>("approved")?.map(|approved| approved != 0),
        redeemed_family: row.try_get("family_id")?,
        admitted: row.try_get::<i64, _>("admitted")? != 0,
        session_live: row.try_get::<i64, _>("session_live")? != 0,
    })
}
