//! Sign-in as a small state machine: identify → prove → … → done.
//!
//! A sign-in under way (`Pending`) lives in the store under the SHA-256 of
//! a random token the browser holds in a cookie, so any instance continues
//! it. Each request brings one `Proof` for the `Step` the sign-in is at;
//! `advance` checks it, records the `Method` it proves and when, and answers
//! with the next step, or with a session once no step is left.
//!
//! Today one step is required, the password. A second factor is one more
//! `Step` (with its `Proof` and `Method`) added to `later` once the first
//! proof shows who is signing in; a passkey is one more `Proof` for the
//! first step. A step is never asked twice, so nobody is asked for a
//! password twice.

use super::passkey::Begun;
use super::{Authenticator, LoginError, NewSession};
use crate::clock::UnixTime;
use crate::crypto::{random_token, sha256_hex};
use crate::store::{AttemptOutcome, FailureLimit, NewSessionRecord, PendingSignInRow, StoreError};
use crate::text::{MAX_RECORDED_CHARS, bounded};
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

/// Seconds a pending sign-in lasts from its last step: time to type a
/// password or fetch a phone, not to leave a half sign-in lying around.
pub const PENDING_TTL: i64 = 5 * 60;

/// Username-only posts (`identify`) one client address may make per
/// `PENDING_TTL`. Identify stores a pending sign-in without checking
/// anything, so unbounded it would let one address fill the store. The
/// count is kept on the address, never on the username, and every username
/// gets the same refusal, so the bound tells nothing about accounts; it is
/// far above what the people behind one address start in five minutes.
pub const IDENTIFIES_PER_ADDRESS: i64 = 100;

/// The bound of `IDENTIFIES_PER_ADDRESS`; beginning a passkey sign-in
/// (which stores a ceremony) counts against the same kind of bound.
pub(super) const IDENTIFY_LIMIT: FailureLimit =
    FailureLimit { max_failures: IDENTIFIES_PER_ADDRESS, window: PENDING_TTL, lockout: PENDING_TTL };

/// How a person showed who they are: RFC 8176 §2 `amr` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `pwd`: a password.
    Password,
    /// `hwk`: a passkey bound to its device (a security key, a TPM).
    HardwareKey,
    /// `swk`: a passkey that may be synced, its private key kept in
    /// software (W3C WebAuthn "backup eligible").
    SoftwareKey,
    /// `user`: the authenticator verified the person holding the key
    /// (PIN or biometric; W3C WebAuthn "user verification").
    UserVerified,
}

/// The kinds of factor (NIST SP 800-63B §4): a sign-in is multi-factor
/// when its methods span two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Factor {
    /// Something you know.
    Knowledge,
    /// Something you have.
    Possession,
    /// A PIN or biometric checked by the key: something you know or are.
    Verification,
}

impl Method {
    /// The RFC 8176 value.
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::HardwareKey => "hwk",
            Self::SoftwareKey => "swk",
            Self::UserVerified => "user",
        }
    }

    fn parse(amr: &str) -> Option<Self> {
        [Self::Password, Self::HardwareKey, Self::SoftwareKey, Self::UserVerified]
            .into_iter()
            .find(|method| method.amr() == amr)
    }

    fn factor(self) -> Factor {
        match self {
            Self::Password => Factor::Knowledge,
            Self::HardwareKey | Self::SoftwareKey => Factor::Possession,
            Self::UserVerified => Factor::Verification,
        }
    }
}

/// Whether `methods` span two kinds of factor: a password and a key, or a
/// key that verified its holder (a passkey alone, with UV).
pub fn multi_factor(methods: &[Method]) -> bool {
    let first = methods.first().map(|method| method.factor());
    methods.iter().any(|method| Some(method.factor()) != first)
}

/// What a sign-in asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The password of the username given when the sign-in started.
    Password,
}

impl Step {
    /// The step's name in forms and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
        }
    }

    /// `None` for a name no step has.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "password" => Some(Self::Password),
            _ => None,
        }
    }
}

/// The browser a sign-in request comes from.
pub struct Browser<'a> {
    pub client_ip: &'a str,
    /// The session cookie it holds, if any: a finished sign-in replaces
    /// that session (`Store::create_session`).
    pub session: Option<&'a str>,
}

/// What one request shows, for the step the sign-in is at.
pub enum Proof {
    Password(String),
    /// A passkey's answer to the ceremony `ceremony` (`login::passkey`).
    Passkey {
        ceremony: String,
        credential: Box<PublicKeyCredential>,
    },
}

/// Where a request leaves a sign-in.
pub enum Outcome {
    /// The sign-in goes on at `step`. `token` names it (the cookie value)
    /// until `expires_at`.
    Next { token: String, step: Step, username: String, expires_at: UnixTime },
    /// Signed in: the new session, and where the browser goes now.
    Done { session: NewSession, username: String, next: String },
    /// The proof was wrong, or the username or address is locked after too
    /// many failures (`locked`; the person is told the same either way). A
    /// pending sign-in stays at its step (`at`); a sign-in made in one
    /// request has none.
    Refused { username: String, locked: bool, at: Option<Step> },
}

/// A sign-in under way.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    /// As typed: the throttling key, and shown to the person.
    username: String,
    /// Whom the proofs so far showed; `None` before the first.
    user_id: Option<String>,
    /// Each method proven, with when.
    proven: Vec<(Method, UnixTime)>,
    /// The step the person is at.
    step: Step,
    /// The steps after it, in order.
    later: Vec<Step>,
    /// Where the browser goes once signed in.
    next: String,
}

/// A pending sign-in after a proof.
enum Progress {
    Next(Pending),
    /// Nothing more is required.
    Done {
        user_id: String,
        username: String,
        amr: String,
        next: String,
    },
}

impl Pending {
    /// A sign-in as `username`, stored, so cut to `MAX_RECORDED_CHARS`: no
    /// username is that long, so a cut guess fails as the whole one would.
    fn start(username: &str, next: &str) -> Self {
        let username = bounded(username.trim(), MAX_RECORDED_CHARS).into_owned();
        Self { username, user_id: None, proven: Vec::new(), step: Step::Password, later: Vec::new(), next: next.into() }
    }

    /// Records that the current step was proven by `methods` for `user_id`
    /// at `now`, and moves on.
    fn proved(mut self, methods: &[Method], user_id: String, now: UnixTime) -> Progress {
        self.proven.extend(methods.iter().map(|method| (*method, now)));
        if self.later.is_empty() {
            return Progress::Done { amr: self.amr(), user_id, username: self.username, next: self.next };
        }
        self.step = self.later.remove(0);
        self.user_id = Some(user_id);
        Progress::Next(self)
    }

    /// The methods proven, in the order proven, space-separated, then `mfa`
    /// when they are `multi_factor` (RFC 8176 §2).
    fn amr(&self) -> String {
        let methods: Vec<Method> = self.proven.iter().map(|(method, _)| *method).collect();
        let mfa = multi_factor(&methods).then_some("mfa");
        methods.iter().map(|method| method.amr()).chain(mfa).collect::<Vec<_>>().join(" ")
    }

    fn to_row(&self, expires_at: UnixTime) -> PendingSignInRow {
        let proven = self.proven.iter().map(|(method, at)| format!("{}@{at}", method.amr()));
        let required = std::iter::once(self.step).chain(self.later.iter().copied()).map(Step::as_str);
        PendingSignInRow {
            username: self.username.clone(),
            user_id: self.user_id.clone(),
            proven: proven.collect::<Vec<_>>().join(" "),
            required: required.collect::<Vec<_>>().join(" "),
            next: self.next.clone(),
            expires_at,
        }
    }

    fn from_row(row: PendingSignInRow) -> Result<Self, StoreError> {
        let corrupt =
            || StoreError::Corrupt(format!("pending sign-in: proven {:?}, required {:?}", row.proven, row.required));
        let proven = row
            .proven
            .split_whitespace()
            .map(|entry| {
                let (method, at) = entry.split_once('@')?;
                Some((Method::parse(method)?, at.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(corrupt)?;
        let required = row.required.split_whitespace().map(Step::parse).collect::<Option<Vec<_>>>();
        let Some((step, later)) = required.as_deref().and_then(<[Step]>::split_first) else { return Err(corrupt()) };
        let (step, later) = (*step, later.to_vec());
        Ok(Self { username: row.username, user_id: row.user_id, proven, step, later, next: row.next })
    }
}

impl Authenticator {
    /// Identify: starts a sign-in as `username`, to go to `next` once signed
    /// in. Unknown usernames too, and nothing is looked up, so the answer
    /// (`Outcome::Next`) reveals nothing about which accounts exist. Each
    /// counts against `client_ip` (see `IDENTIFIES_PER_ADDRESS`); past the
    /// bound the answer is a refusal, the same as a locked sign-in.
    pub async fn identify(
        &self,
        username: &str,
        next: &str,
        client_ip: &str,
        now: UnixTime,
    ) -> Result<Outcome, LoginError> {
        let subjects = vec![(format!("identify-ip:{client_ip}"), IDENTIFY_LIMIT)];
        match self.gate.admit(subjects, now).await {
            Err(LoginError::Locked) => {
                return Ok(Outcome::Refused { username: username.to_owned(), locked: true, at: None });
            }
            admitted => admitted?.end(AttemptOutcome::Failed).await?,
        }
        self.save(None, Pending::start(username, next), now).await
    }

    /// Begins a passkey sign-in (`Passkeys::begin_sign_in`), bounded per
    /// client address as `identify` is, for the same reason: it stores a
    /// ceremony without checking anything. Past the bound, `Locked`.
    pub async fn begin_passkey_sign_in(
        &self,
        client_ip: &str,
        now: UnixTime,
    ) -> Result<Begun<RequestChallengeResponse>, LoginError> {
        let subjects = vec![(format!("passkey-ip:{client_ip}"), IDENTIFY_LIMIT)];
        self.gate.admit(subjects, now).await?.end(AttemptOutcome::Failed).await?;
        Ok(self.passkeys.begin_sign_in(now).await?)
    }

    /// Identify and prove in one request: the username and password of one
    /// form. Only a step beyond the password is stored. `browser`: what the
    /// signing-in browser holds.
    pub async fn sign_in(
        &self,
        username: &str,
        password: String,
        next: &str,
        browser: &Browser<'_>,
        now: UnixTime,
    ) -> Result<Outcome, LoginError> {
        self.advance(None, Pending::start(username, next), Proof::Password(password), browser, now).await
    }

    /// Signs in with a passkey alone (no username typed): `ceremony` and
    /// `credential` answer `Passkeys::begin_sign_in`. Refused like a wrong
    /// password when the passkey does not verify.
    pub async fn sign_in_with_passkey(
        &self,
        ceremony: String,
        credential: PublicKeyCredential,
        next: &str,
        browser: &Browser<'_>,
        now: UnixTime,
    ) -> Result<Outcome, LoginError> {
        let proof = Proof::Passkey { ceremony, credential: Box::new(credential) };
        self.advance(None, Pending::start("", next), proof, browser, now).await
    }

    /// Continues the pending sign-in whose cookie is `token` with `proof`.
    /// `Expired` when there is none: unknown, finished or expired.
    pub async fn resume(
        &self,
        token: &str,
        proof: Proof,
        browser: &Browser<'_>,
        now: UnixTime,
    ) -> Result<Outcome, LoginError> {
        let Some(row) = self.store.pending_sign_in(&sha256_hex(token), now).await? else {
            return Err(LoginError::Expired);
        };
        self.advance(Some(token), Pending::from_row(row)?, proof, browser, now).await
    }

    /// Checks `proof` against the step `pending` is at, then stores the next
    /// step or finishes. `token`: the pending sign-in's cookie, when stored.
    async fn advance(
        &self,
        token: Option<&str>,
        pending: Pending,
        proof: Proof,
        browser: &Browser<'_>,
        now: UnixTime,
    ) -> Result<Outcome, LoginError> {
        let checked = match (pending.step, proof) {
            (Step::Password, Proof::Password(password)) => self
                .check_password(&pending.username, password, browser.client_ip, now)
                .await
                .map(|id| (vec![Method::Password], id, None)),
            (Step::Password, Proof::Passkey { ceremony, credential }) => self
                .check_passkey(&ceremony, &credential, browser.client_ip, now)
                .await
                .map(|verified| (verified.methods, verified.user_id, Some(verified.username))),
        };
        let (methods, user_id, pending) = match checked {
            // A passkey names whom it signs in: no username was typed.
            Ok((methods, user_id, Some(username))) => (methods, user_id, Pending { username, ..pending }),
            Ok((methods, user_id, None)) => (methods, user_id, pending),
            Err(refused @ (LoginError::InvalidCredentials | LoginError::Locked)) => {
                let locked = matches!(refused, LoginError::Locked);
                let at = token.map(|_| pending.step);
                return Ok(Outcome::Refused { username: pending.username, locked, at });
            }
            Err(error) => return Err(error),
        };
        match pending.proved(&methods, user_id, now) {
            Progress::Next(pending) => self.save(token, pending, now).await,
            Progress::Done { user_id, username, amr, next } => {
                let session = self.start_session(token, &user_id, &amr, browser.session, now).await?;
                Ok(Outcome::Done { session, username, next })
            }
        }
    }

    /// Stores `pending` for `PENDING_TTL` seconds under `token`, or under a
    /// new token when it was not stored yet.
    async fn save(&self, token: Option<&str>, pending: Pending, now: UnixTime) -> Result<Outcome, LoginError> {
        let token = token.map_or_else(random_token, str::to_owned);
        let expires_at = now.saturating_add(PENDING_TTL);
        self.store.save_pending_sign_in(&sha256_hex(&token), &pending.to_row(expires_at)).await?;
        Ok(Outcome::Next { token, step: pending.step, username: pending.username, expires_at })
    }

    /// The session of a finished sign-in, ending its pending row (`token`)
    /// in the same transaction: `Expired` when another request finished it
    /// first or it ran out meanwhile.
    async fn start_session(
        &self,
        token: Option<&str>,
        user_id: &str,
        amr: &str,
        replaces: Option<&str>,
        now: UnixTime,
    ) -> Result<NewSession, LoginError> {
        let session = random_token();
        let expires_at = now.saturating_add(self.session_ttl);
        let id_hash = sha256_hex(&session);
        let replaces = replaces.map(sha256_hex);
        let record = NewSessionRecord {
            id_hash: &id_hash,
            user_id,
            auth_time: now,
            amr,
            expires_at,
            replaces: replaces.as_deref(),
        };
        let pending = token.map(sha256_hex);
        if !self.store.create_session(record, pending.as_deref(), now).await? {
            return Err(LoginError::Expired);
        }
        Ok(NewSession { token: session, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_ends_a_sign_in_that_requires_nothing_more() {
        let pending = Pending::start(" ada ", "/next");
        assert_eq!((pending.username.as_str(), pending.step), ("ada", Step::Password));
        assert_eq!(Pending::start(&"x".repeat(5000), "/").username.chars().count(), MAX_RECORDED_CHARS);
        match pending.proved(&[Method::Password], "u1".into(), 100) {
            Progress::Done { user_id, username, amr, next } => {
                assert_eq!(
                    (user_id.as_str(), username.as_str(), amr.as_str(), next.as_str()),
                    ("u1", "ada", "pwd", "/next")
                );
            }
            Progress::Next(pending) => panic!("a step after the password: {pending:?}"),
        }
    }

    #[test]
    fn a_pending_sign_in_survives_the_store() {
        let pending = Pending {
            username: "ada".into(),
            user_id: Some("u1".into()),
            proven: vec![(Method::Password, 1_764_556_800)],
            step: Step::Password,
            later: Vec::new(),
            next: "/application/o/authorize/?client_id=c".into(),
        };
        let row = pending.to_row(1_764_557_100);
        assert_eq!((row.proven.as_str(), row.required.as_str()), ("pwd@1764556800", "password"));
        assert_eq!(Pending::from_row(row).unwrap(), pending);
    }

    #[test]
    fn a_stored_sign_in_with_no_step_left_or_unknown_names_is_corrupt() {
        let row = Pending::start("ada", "/").to_row(0);
        for (proven, required) in [("", ""), ("pwd", "password"), ("xyz@1", "password"), ("", "password sms")] {
            let row = PendingSignInRow { proven: proven.into(), required: required.into(), ..row.clone() };
            assert!(matches!(Pending::from_row(row), Err(StoreError::Corrupt(_))), "{proven:?} {required:?}");
        }
    }
}
