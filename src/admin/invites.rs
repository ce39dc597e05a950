//! One-time links that let a person choose a password: an invite (a new,
//! pending person) and a password-reset link (an existing one). The link
//! carries 256 random bits; the store keeps only their SHA-256, and using a
//! link is atomic across instances (`Store::use_password_link`).

use super::record::{Change, ChangeKind};
use super::{Actor, AdminError, AdminResult, validate};
use crate::clock::{self, UnixTime};
use crate::config::PublicUrl;
use crate::crypto::password::{PasswordError, hash_password_blocking};
use crate::crypto::{random_token, sha256_hex};
use crate::mail::{Mailer, invite_mail, reset_mail};
use crate::store::{Admission, AttemptOutcome, FailureLimit, LinkPurpose, LinkState, NewUser, Store};

/// How long an invite lasts unless `--ttl` says otherwise.
pub const DEFAULT_INVITE_TTL: &str = "7d";
/// How long a password-reset link lasts unless `--ttl` says otherwise.
pub const DEFAULT_RESET_TTL: &str = "1d";

/// The stored password hash of a person who has not chosen a password yet:
/// not a PHC string, so no password verifies against it.
pub(super) const NO_PASSWORD_YET: &str = "!pending";

/// `user invite`.
#[derive(Debug, Clone)]
pub struct Invite {
    pub username: String,
    pub email: String,
    /// Full name as apps show it; `None`: the username.
    pub name: Option<String>,
    /// Groups the person joins, each of which must exist.
    pub groups: Vec<String>,
    /// How long the link lasts, as text such as `7d`; `None`: `DEFAULT_INVITE_TTL`.
    pub ttl: Option<String>,
}

/// A link to hand (or mail) to the person.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OneTimeLink {
    /// `<public_url>/invite/<token>` or `<public_url>/reset/<token>`.
    pub url: String,
    /// Unix seconds.
    pub expires_at: UnixTime,
}

/// Creates a pending person (who cannot sign in until they choose a
/// password through the link) and their invite link, all or nothing.
/// Errors: `Invalid` (username, email, name, `--ttl`), `Duplicate` user,
/// `NotFound` group.
pub async fn invite(store: &Store, actor: &Actor, public_url: &PublicUrl, command: Invite) -> AdminResult<OneTimeLink> {
    validate::username(&command.username)?;
    validate::email(&command.email)?;
    let name = command.name.as_deref().unwrap_or(&command.username).trim().to_owned();
    validate::display_name(&name)?;
    let ttl = validate::lifetime("--ttl", command.ttl.as_deref().unwrap_or(DEFAULT_INVITE_TTL))?;
    let (token, now) = (random_token(), clock::now());
    let expires_at = now.saturating_add(ttl);
    let user = NewUser {
        username: command.username.clone(),
        email: command.email,
        name,
        password_hash: NO_PASSWORD_YET.to_owned(),
    };
    store.create_invited_user(user, &command.groups, &sha256_hex(&token), now, expires_at).await?;
    let change = Change::to_user(ChangeKind::UserInvited, &command.username);
    let change =
        if command.groups.is_empty() { change } else { change.detail(format!("groups {}", command.groups.join(","))) };
    change.record(store, actor).await?;
    Ok(OneTimeLink { url: public_url.join(&format!("/invite/{token}")), expires_at })
}

/// `user reset-link`: a link with which `username` chooses a new password
/// (their sessions end when they do). Earlier reset links stay valid until
/// one is used. Errors: `Invalid` `--ttl`, `NotFound` user.
pub async fn reset_link(
    store: &Store,
    actor: &Actor,
    public_url: &PublicUrl,
    username: &str,
    ttl: Option<&str>,
) -> AdminResult<OneTimeLink> {
    let ttl = validate::lifetime("--ttl", ttl.unwrap_or(DEFAULT_RESET_TTL))?;
    let user_id = store.user_id(username).await?.ok_or_else(|| AdminError::not_found("user", username))?;
    let (token, now) = (random_token(), clock::now());
    let expires_at = now.saturating_add(ttl);
    store.create_link(&sha256_hex(&token), LinkPurpose::Reset, Some(&user_id), now, expires_at).await?;
    Change::to_user(ChangeKind::ResetLinkIssued, username).record(store, actor).await?;
    Ok(OneTimeLink { url: public_url.join(&format!("/reset/{token}")), expires_at })
}

/// A link someone opened, and the password they chose with it. No
/// `Debug`: it carries a password.
pub struct UseLink {
    pub purpose: LinkPurpose,
    /// The token from the link's path.
    pub token: String,
    pub password: String,
}

/// Sets the password of the link's person and uses the link up, in one
/// transaction; every session of theirs ends (a reset may follow a leak).
/// Returns the person's user id; `None` when the link is used, expired or
/// unknown (`link_state` says which). Errors: `Invalid` password. The
/// audit event names the person as the actor: they made the change.
pub async fn use_link(store: &Store, command: UseLink, now: UnixTime) -> AdminResult<Option<String>> {
    validate::password(&command.password)?;
    let password_hash = hash_off_runtime(command.password).await?;
    let token_hash = sha256_hex(&command.token);
    let Some(user_id) = store.use_password_link(&token_hash, command.purpose, &password_hash, now).await? else {
        return Ok(None);
    };
    let kind = match command.purpose {
        LinkPurpose::Invite => ChangeKind::InviteAccepted,
        _ => ChangeKind::PasswordResetByLink,
    };
    if let Some(claims) = store.active_user_claims(&user_id).await? {
        let actor = Actor::Owner { user_id: user_id.clone(), username: claims.username.clone() };
        Change::to_user(kind, &claims.username).record(store, &actor).await?;
    }
    Ok(Some(user_id))
}

/// Where the link with `token` for `purpose` stands at `now`.
pub async fn link_state(store: &Store, purpose: LinkPurpose, token: &str, now: UnixTime) -> AdminResult<LinkState> {
    Ok(store.link_state(&sha256_hex(token), purpose, now).await?)
}

/// Hashes `password` on the blocking pool: these operations run inside web
/// requests, where argon2 must not hold up the async runtime.
pub(super) async fn hash_off_runtime(password: String) -> AdminResult<String> {
    let hashed = tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await;
    Ok(hashed.map_err(|error| PasswordError::Task(error.to_string()))??)
}

/// Mails `link` (made by `invite` or `reset_link` for `username`) to the
/// person's address: an invite or a reset mail by `purpose`. Returns the
/// address. Errors: `NotFound` user (or disabled), `Mail`.
pub async fn mail_link(
    store: &Store,
    mailer: &Mailer,
    username: &str,
    purpose: LinkPurpose,
    link: &OneTimeLink,
) -> AdminResult<String> {
    let user_id = store.user_id(username).await?.ok_or_else(|| AdminError::not_found("user", username))?;
    let person = store.active_user_claims(&user_id).await?.ok_or_else(|| AdminError::not_found("user", username))?;
    let expires = readable_time(link.expires_at);
    let mail = match purpose {
        LinkPurpose::Invite => invite_mail(&person.name, &link.url, &expires),
        _ => reset_mail(&person.name, &link.url, &expires),
    };
    mailer.send(&person.name, &person.email, &mail).await?;
    Ok(person.email)
}

/// A Unix time as a mail says it: `2026-12-01 05:50 UTC`.
pub fn readable_time(at: UnixTime) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(at).unwrap_or(0));
    let text = humantime::format_rfc3339_seconds(time).to_string();
    format!("{} {} UTC", text.get(..10).unwrap_or_default(), text.get(11..16).unwrap_or_default())
}

/// "Forgot password?" requests one client address may make per hour.
const FORGOT_PER_ADDRESS: FailureLimit = FailureLimit { max_failures: 5, window: 3600, lockout: 3600 };
/// Reset mails one person may be sent per hour through "Forgot password?".
const FORGOT_PER_PERSON: FailureLimit = FailureLimit { max_failures: 3, window: 3600, lockout: 3600 };

/// "Forgot password?": mails a reset link to each active person whose
/// username or e-mail address is `login`, unless the client address or
/// the person has asked too often this hour (`FORGOT_PER_ADDRESS`,
/// `FORGOT_PER_PERSON`, counted in the store on every instance). Returns
/// how many mails went out; the caller tells the visitor the same thing
/// whatever it is, so the answer reveals no account. Errors: `Store`,
/// `Mail`.
pub async fn forgot_password(
    store: &Store,
    mailer: &Mailer,
    public_url: &PublicUrl,
    login: &str,
    client_ip: &str,
    now: UnixTime,
) -> AdminResult<usize> {
    if !counted(store, &format!("forgot:ip:{client_ip}"), FORGOT_PER_ADDRESS, now).await? {
        return Ok(0);
    }
    let mut sent = 0;
    for (user_id, username) in store.users_for_login(login.trim()).await? {
        if !counted(store, &format!("forgot:user:{user_id}"), FORGOT_PER_PERSON, now).await? {
            continue;
        }
        let actor = Actor::Owner { user_id, username: username.clone() };
        let link = reset_link(store, &actor, public_url, &username, None).await?;
        mail_link(store, mailer, &username, LinkPurpose::Reset, &link).await?;
        sent += 1;
    }
    Ok(sent)
}

/// Counts one request against `subject`'s hourly `limit`; `false` when the
/// limit was reached already.
async fn counted(store: &Store, subject: &str, limit: FailureLimit, now: UnixTime) -> AdminResult<bool> {
    let subjects = [(subject, limit)];
    let Admission::Granted(attempt) = store.begin_login_attempt(&subjects, now, 60).await? else {
        return Ok(false);
    };
    store.end_login_attempt(&attempt, &subjects, AttemptOutcome::Failed, now).await?;
    Ok(true)
}
