//! The device authorization grant (RFC 8628), for devices that cannot show
//! a browser (a TV, a command-line tool), in its three steps:
//!
//! 1. the device asks for codes at the device authorization endpoint
//!    (§3.1, §3.2): a device code it keeps, a user code it shows;
//! 2. a person, signed in at `/device`, types the user code, sees which app
//!    asks for what, and approves or denies (§3.3);
//! 3. the device polls the token endpoint with its device code (§3.4,
//!    §3.5) until it gets tokens or a final error: `grant::device_code`.
//!
//! Each app opts in (`latch app update <slug> --device-code`).

use serde::Serialize;

use super::Provider;
use super::claims::{granted_scope, has_scope, known_scopes};
use super::error::{ErrorCode, ProtocolResult, client_error};
use super::params::Params;
use super::values::Scope;
use crate::audit::Actor;
use crate::clock::UnixTime;
use crate::crypto::secret::random_bytes;
use crate::crypto::{random_token, sha256_hex};
use crate::login::flow::has_mfa;
use crate::store::{
    Admission, Answered, App, AttemptOutcome, DeviceAnswer, FailureLimit, NewDeviceCode, SessionUser, StoreError,
    StoreResult,
};

/// Seconds a device code lives unless its app sets `device_code_ttl`:
/// time to find a phone, sign in and type eight letters.
pub const DEFAULT_TTL: i64 = 600;

/// Seconds between polls (RFC 8628 §3.2's default); each poll that comes
/// sooner is told `slow_down` and adds 5 to its code's interval (§3.5).
pub const INTERVAL: i64 = 5;

/// RFC 8628 §6.1: consonants only (no vowels, so no words; no digits or
/// letters easily confused), 8 of them: 20^8, about 2^34.6 codes.
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// Wrong user codes each person (and each client address) may type before
/// typing is locked for a while (RFC 8628 §5.1). A right code forgives
/// nothing: anyone can request a code of their own from a public client, and
/// that must not reset the count between guesses. With 10 guesses per 15
/// minutes, and even a thousand codes waiting, one person's chance of
/// hitting someone else's code in a day is about 4 in 100 000.
const PER_PERSON: FailureLimit = FailureLimit { max_failures: 10, window: 900, lockout: 900 };
const PER_ADDRESS: FailureLimit = FailureLimit { max_failures: 30, window: 900, lockout: 900 };
/// Seconds a lookup's throttling slot stays held if its instance dies or
/// the request is dropped mid-lookup (the lookup is one quick query).
const LOOKUP_LEASE: i64 = 60;

/// A user code, normalized: `USER_CODE_LEN` letters of `ALPHABET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    fn generate() -> Self {
        let mut code = String::with_capacity(USER_CODE_LEN);
        while code.len() < USER_CODE_LEN {
            // Rejection sampling keeps the letters uniform: 240 = 12 × 20.
            for byte in random_bytes::<16>().into_iter().filter(|byte| *byte < 240) {
                if code.len() < USER_CODE_LEN {
                    code.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
                }
            }
        }
        Self(code)
    }

    /// A code as a person typed it: case, dashes and spaces do not matter
    /// (RFC 8628 §6.1). `None` when what is left is not a code's shape.
    pub fn parse(typed: &str) -> Option<Self> {
        let code: String =
            typed.chars().filter(|c| *c != '-' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
        let shaped = code.len() == USER_CODE_LEN && code.bytes().all(|byte| ALPHABET.contains(&byte));
        shaped.then_some(Self(code))
    }

    /// `BCDF-GHJK`: two halves are easier to read out and type.
    pub fn display(&self) -> String {
        let (first, second) = self.0.split_at(USER_CODE_LEN / 2);
        format!("{first}-{second}")
    }

    fn hash(&self) -> String {
        sha256_hex(&self.0)
    }
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    /// Seconds.
    pub expires_in: i64,
    /// Seconds.
    pub interval: i64,
}

/// A request waiting for the person's answer, as the `/device` page shows it.
#[derive(Debug, Clone)]
pub struct DeviceRequest {
    pub user_code: String,
    pub app_name: String,
    pub scopes: Vec<Scope>,
    /// Whether the person may use the app (the access rule); if not, only
    /// a denial can come of it.
    pub admitted: bool,
    /// The app requires a second factor this session has not proven: the
    /// person proves it (step-up) before they can approve.
    pub needs_second_factor: bool,
}

/// What became of the person's answer to the request of app `app_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceOutcome {
    pub app_name: String,
    pub decision: Decision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approved,
    Denied,
    /// They approved, but the access rule refuses them this app.
    NotAllowed,
}

/// Why a typed user code led nowhere. The messages are for the person.
#[derive(Debug, thiserror::Error)]
pub enum UserCodeError {
    #[error("That is not a code from a device: codes are 8 letters, like BCDF-GHJK.")]
    Malformed,
    #[error("No device is waiting for this code. Check it on the device: it may have expired or been used.")]
    NotPending,
    #[error("Too many wrong codes. Please wait a quarter of an hour and try again.")]
    Locked,
    #[error("Too many codes are being checked at once. Please try again in a moment.")]
    Busy,
    /// An approval from a session without the second factor the app
    /// requires (the page asks for it first; this guards the answer).
    #[error("This app requires a second factor. Enter the code again to confirm it is you.")]
    SecondFactorRequired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Provider {
    /// Step 1 (RFC 8628 §3.1, §3.2): new codes for `app`, an authenticated
    /// client, asking for `scope` (unknown scopes are dropped, as at the
    /// authorization endpoint). `unauthorized_client` unless the app opted in.
    pub async fn authorize_device(
        &self,
        app: &App,
        params: &Params,
        now: UnixTime,
    ) -> ProtocolResult<DeviceAuthorization> {
        require_device_grant(app)?;
        let scope = granted_scope(params.get("scope").unwrap_or_default());
        let device_code = random_token();
        let expires_in = app.options.device_code_ttl.unwrap_or(DEFAULT_TTL);
        // A user code may collide with a live one (1 in 2^34.6 per code
        // alive); a few draws make that as good as impossible.
        for _ in 0..4 {
            let user_code = UserCode::generate();
            let inserted = self
                .store
                .insert_device_code(NewDeviceCode {
                    device_code_hash: &sha256_hex(&device_code),
                    user_code_hash: &user_code.hash(),
                    app_id: &app.id,
                    scope: &scope,
                    offline: has_scope(&scope, Scope::OfflineAccess),
                    interval: INTERVAL,
                    now,
                    expires_at: now + expires_in,
                })
                .await?;
            if inserted {
                let verification_uri = self.public_url.join("/device");
                let query = serde_urlencoded::to_string([("user_code", user_code.display())]).unwrap_or_default();
                return Ok(DeviceAuthorization {
                    device_code,
                    user_code: user_code.display(),
                    verification_uri_complete: format!("{verification_uri}?{query}"),
                    verification_uri,
                    expires_in,
                    interval: INTERVAL,
                });
            }
        }
        Err(StoreError::Duplicate { kind: "user code", name: "four random draws".into() }.into())
    }

    /// Step 2a (RFC 8628 §3.3): the request behind a typed user code, for
    /// the signed-in person to answer. Throttled per person and address.
    pub async fn device_request(
        &self,
        typed: &str,
        session: &SessionUser,
        client_ip: &str,
        now: UnixTime,
    ) -> Result<DeviceRequest, UserCodeError> {
        let code = UserCode::parse(typed).ok_or(UserCodeError::Malformed)?;
        let user_code_hash = code.hash();
        let lookup = self.store.pending_device(&user_code_hash, &session.user_id, now);
        let pending = self.throttled(session, client_ip, now, lookup).await?;
        Ok(DeviceRequest {
            user_code: code.display(),
            app_name: pending.app_name,
            scopes: known_scopes(&pending.scope),
            admitted: pending.admitted,
            needs_second_factor: self.mfa.required_for(pending.require_mfa) && !has_mfa(&session.amr),
        })
    }

    /// Step 2b (RFC 8628 §3.3): records the person's answer, once. An
    /// approval applies the access rule, and ties the tokens the device
    /// will get to this session (its `auth_time`, and its sign-out).
    pub async fn answer_device_request(
        &self,
        typed: &str,
        session: &SessionUser,
        approve: bool,
        client_ip: &str,
        now: UnixTime,
    ) -> Result<DeviceOutcome, UserCodeError> {
        let code = UserCode::parse(typed).ok_or(UserCodeError::Malformed)?;
        let user_code_hash = code.hash();
        if approve && self.device_request(typed, session, client_ip, now).await?.needs_second_factor {
            return Err(UserCodeError::SecondFactorRequired);
        }
        let answer = DeviceAnswer {
            user_code_hash: &user_code_hash,
            user_id: &session.user_id,
            session_hash: &session.id_hash,
            auth_time: session.auth_time,
            amr: &session.amr,
            approve,
        };
        let answering = async {
            Ok(match self.store.answer_device(answer, now).await? {
                Answered::NotPending => None,
                answered => Some(answered),
            })
        };
        let (kind, app_name, app_slug, decision) = match self.throttled(session, client_ip, now, answering).await? {
            Answered::Approved { app_name, app_slug } => ("device_approved", app_name, app_slug, Decision::Approved),
            Answered::Denied { app_name, app_slug, by_rule: false } => {
                ("device_denied", app_name, app_slug, Decision::Denied)
            }
            Answered::Denied { app_name, app_slug, by_rule: true } => {
                ("device_refused", app_name, app_slug, Decision::NotAllowed)
            }
            Answered::NotPending => return Err(UserCodeError::NotPending),
        };
        // The app by slug in the event's own field, like every other event,
        // so `latch events --app <slug>` finds the device's answers too.
        let actor = Actor {
            username: Some(&session.username),
            app: Some(&app_slug),
            ip: Some(client_ip),
            ..Default::default()
        };
        self.auditor.record(kind, &actor, None);
        Ok(DeviceOutcome { app_name, decision })
    }

    /// Runs `lookup` (a search by user code) holding a throttling slot for
    /// the person and the address; a search that finds nothing counts as a
    /// failure, one that finds something leaves the counts as they are.
    async fn throttled<T>(
        &self,
        session: &SessionUser,
        client_ip: &str,
        now: UnixTime,
        lookup: impl Future<Output = StoreResult<Option<T>>>,
    ) -> Result<T, UserCodeError> {
        let person = user_code_subject(&session.user_id);
        let address = format!("device-ip:{client_ip}");
        let subjects = [(person.as_str(), PER_PERSON), (address.as_str(), PER_ADDRESS)];
        let attempt = match self.store.begin_login_attempt(&subjects, now, LOOKUP_LEASE).await? {
            Admission::Granted(attempt) => attempt,
            Admission::Locked => return Err(UserCodeError::Locked),
            Admission::Busy => return Err(UserCodeError::Busy),
        };
        let found = lookup.await;
        let outcome = match &found {
            Ok(None) => AttemptOutcome::Failed,
            Ok(Some(_)) | Err(_) => AttemptOutcome::Abandoned,
        };
        self.store.end_login_attempt(&attempt, &subjects, outcome, now).await?;
        found?.ok_or(UserCodeError::NotPending)
    }
}

/// `unauthorized_client` unless `app` opted in to the device grant.
pub(super) fn require_device_grant(app: &App) -> ProtocolResult<()> {
    if app.options.device_code {
        return Ok(());
    }
    client_error(
        ErrorCode::UnauthorizedClient,
        "the device authorization grant is not enabled for this app (latch app update <slug> --device-code)",
    )
}

/// The throttling key of one person's user-code guesses (shared by every
/// instance, like the sign-in's): `latch user unlock` clears it too.
pub fn user_code_subject(user_id: &str) -> String {
    format!("device-user:{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_codes_ignore_case_dashes_and_spaces() {
        let code = UserCode::parse("bcdf-ghjk").expect("a code");
        assert_eq!(code, UserCode::parse(" BCDFGHJK ").expect("a code"));
        assert_eq!(code, UserCode::parse("bc df gh jk").expect("a code"));
        assert_eq!(code.display(), "BCDF-GHJK");
        for wrong in ["", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", "BCDF_GHJK"] {
            assert_eq!(UserCode::parse(wrong), None, "{wrong}");
        }
    }

    #[test]
    fn generated_codes_parse_back_and_use_every_letter() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let code = UserCode::generate();
            assert_eq!(UserCode::parse(&code.display()), Some(code.clone()));
            seen.extend(code.0.bytes());
        }
        assert_eq!(seen.len(), ALPHABET.len());
    }
}
