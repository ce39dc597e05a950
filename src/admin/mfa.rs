//! A person's second factors: list them, enrol a TOTP authenticator, make
//! a fresh set of recovery codes, remove every factor. The same operations
//! serve an administrator (for anyone) and the person themselves on
//! `/account/security`; the `Actor` tells the audit trail which.

use super::record::{Change, ChangeKind};
use super::{Actor, AdminError, AdminResult};
use crate::clock;
use crate::clock::UnixTime;
use crate::crypto::{recovery, totp};
use crate::store::{Factor, Store, TotpEnrolment};

/// How authenticator apps label Latch's entries (with the username).
pub const TOTP_ISSUER: &str = "Latch";
/// The name a TOTP factor is listed under.
const TOTP_NAME: &str = "Authenticator app";

/// `user mfa totp`.
#[derive(Debug, Clone)]
pub struct EnrolTotp {
    pub username: String,
    /// Replace an authenticator the person has; without it, one there is
    /// a refusal.
    pub replace: bool,
}

/// A TOTP enrolment: the `otpauth://` URI (it holds the secret), shown once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TotpEnrolled {
    pub otpauth_uri: String,
}

/// A fresh set of recovery codes, shown once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecoveryCodes {
    pub codes: Vec<String>,
}

/// The id of the account `username`. Errors: `NotFound` user.
async fn user_id(store: &Store, username: &str) -> AdminResult<String> {
    let user = store.user_credentials(username).await?;
    user.map(|user| user.id).ok_or_else(|| AdminError::not_found("user", username))
}

/// The person's second factors (kind, name, created, last used; never a
/// secret). Errors: `NotFound` user.
pub async fn list_factors(store: &Store, username: &str) -> AdminResult<Vec<Factor>> {
    Ok(store.factors(&user_id(store, username).await?).await?)
}

/// Enrols a TOTP authenticator for the person, confirmed at once (whoever
/// runs this hands the URI over). Errors: `NotFound` user, `Duplicate`
/// when one is enrolled and `replace` is not set.
pub async fn enrol_totp(store: &Store, actor: &Actor, command: EnrolTotp) -> AdminResult<TotpEnrolled> {
    let user_id = user_id(store, &command.username).await?;
    let secret = totp::new_secret();
    let mode = if command.replace { TotpEnrolment::Replacing } else { TotpEnrolment::Confirmed };
    if !store.enrol_totp(&user_id, TOTP_NAME, &secret, mode, clock::now()).await? {
        return Err(AdminError::Duplicate { kind: "TOTP authenticator of", name: command.username });
    }
    Change::to_user(ChangeKind::TotpEnrolled, &command.username).record(store, actor).await?;
    Ok(TotpEnrolled { otpauth_uri: totp::otpauth_uri(TOTP_ISSUER, &command.username, &secret) })
}

/// Replaces the person's recovery codes with a fresh set of
/// `recovery::CODES_PER_SET`. Errors: `NotFound` user.
pub async fn new_recovery_codes(store: &Store, actor: &Actor, username: &str) -> AdminResult<RecoveryCodes> {
    let user_id = user_id(store, username).await?;
    let codes = recovery::new_codes();
    let hashes: Vec<String> = codes.iter().map(|code| recovery::code_hash(&user_id, code)).collect();
    store.replace_recovery_codes(&user_id, &hashes, clock::now()).await?;
    Change::to_user(ChangeKind::RecoveryCodesGenerated, username).record(store, actor).await?;
    Ok(RecoveryCodes { codes })
}

/// Removes every second factor and recovery code of the person; how many
/// factors there were. Their sessions stay. Errors: `NotFound` user.
pub async fn reset_factors(store: &Store, actor: &Actor, username: &str) -> AdminResult<u64> {
    let removed = store.reset_factors(&user_id(store, username).await?).await?;
    Change::to_user(ChangeKind::FactorsReset, username)
        .detail(format!("{removed} factor(s) removed"))
        .record(store, actor)
        .await?;
    Ok(removed)
}

/// A set-up begun by the person: the secret (base32) and its URI, to show
/// until they confirm it with a code.
#[derive(Debug, Clone)]
pub struct TotpSetup {
    pub secret: String,
    pub otpauth_uri: String,
}

/// The person's set-up awaiting its code, if any.
pub async fn pending_totp_setup(store: &Store, username: &str) -> AdminResult<Option<TotpSetup>> {
    let factor = store.totp_factor(&user_id(store, username).await?).await?;
    Ok(factor.filter(|factor| !factor.confirmed).map(|factor| TotpSetup {
        otpauth_uri: totp::otpauth_uri(TOTP_ISSUER, username, &factor.secret),
        secret: factor.secret,
    }))
}

/// Begins a TOTP set-up for the person (replacing one begun before): no
/// factor until `confirm_totp`. Errors: `NotFound` user, `Duplicate` when
/// they have an authenticator already.
pub async fn begin_totp_setup(store: &Store, username: &str) -> AdminResult<TotpSetup> {
    let user_id = user_id(store, username).await?;
    let secret = totp::new_secret();
    if !store.enrol_totp(&user_id, TOTP_NAME, &secret, TotpEnrolment::Unconfirmed, clock::now()).await? {
        return Err(AdminError::Duplicate { kind: "TOTP authenticator of", name: username.to_owned() });
    }
    Ok(TotpSetup { otpauth_uri: totp::otpauth_uri(TOTP_ISSUER, username, &secret), secret })
}

/// Confirms the person's set-up with the `code` their app shows at `now`:
/// the authenticator becomes a factor. Errors: `Invalid` `code` (wrong, or
/// no set-up under way), `NotFound` user.
pub async fn confirm_totp(store: &Store, actor: &Actor, username: &str, code: &str, now: UnixTime) -> AdminResult<()> {
    let user_id = user_id(store, username).await?;
    let wrong = || AdminError::invalid("code", "That code is not right. Check the time on your phone and try again.");
    let factor = store.totp_factor(&user_id).await?.filter(|factor| !factor.confirmed).ok_or_else(wrong)?;
    let step = totp::matching_step(&factor.secret, &totp::normalize(code), now, factor.last_step).ok_or_else(wrong)?;
    if !store.use_totp_step(&user_id, step, true, now).await? {
        return Err(wrong());
    }
    Change::to_user(ChangeKind::TotpEnrolled, username).record(store, actor).await
}

/// Removes the person's authenticator; whether there was one. Errors:
/// `NotFound` user.
pub async fn remove_totp(store: &Store, actor: &Actor, username: &str) -> AdminResult<bool> {
    let removed = store.remove_totp(&user_id(store, username).await?).await?;
    if removed {
        Change::to_user(ChangeKind::TotpRemoved, username).record(store, actor).await?;
    }
    Ok(removed)
}

/// How many unused recovery codes the person has. Errors: `NotFound` user.
pub async fn recovery_codes_left(store: &Store, username: &str) -> AdminResult<i64> {
    Ok(store.recovery_codes_left(&user_id(store, username).await?).await?)
}
