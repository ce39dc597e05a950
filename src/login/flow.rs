//! Sign-in as a small state machine: identify → prove → … → done.
//!
//! A sign-in under way (`Pending`) lives in the store under the SHA-256 of
//! a random token the browser holds in a cookie, so any instance continues
//! it. Each request brings one `Proof` for the `Step` the sign-in is at;
//! `advance` checks it, records the `Method` it proves and when, and answers
//! with the next step, or with a session once no step is left.
//!
//! The password comes first. Once it shows who is signing in, a person who
//! holds a second factor (`Store::factors`) is asked for it too:
//! `Step::SecondFactor`, which any second-factor `Proof` answers (today a
//! `Proof::Code`: a TOTP code or a recovery code; a passkey is one more
//! proof kind for the same step, and one more for the first step when it
//! signs in without a password). A signed-in person whose session lacks a
//! second factor that an app demands is asked for it alone (`step_up`): a
//! pending sign-in for the known person that starts at `SecondFactor`. A
//! step is never asked twice, so nobody is asked for a password twice.

use super::{Authenticator, LoginError, NewSession};
use crate::clock::UnixTime;
use crate::crypto::{random_token, sha256_hex};
use crate::store::{AttemptOutcome, FailureLimit, NewSessionRecord, PendingSignInRow, SessionUser, StoreError};
use crate::text::{MAX_RECORDED_CHARS, bounded};

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

const IDENTIFY_LIMIT: FailureLimit =
    FailureLimit { max_failures: IDENTIFIES_PER_ADDRESS, window: PENDING_TTL, lockout: PENDING_TTL };

/// The amr value (RFC 8176 §2) a session gets when it proved two steps:
/// a first factor and a second one.
pub const AMR_MFA: &str = "mfa";

/// How a person showed who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A password (amr `pwd`).
    Password,
    /// A TOTP code (amr `otp`: RFC 8176 names RFC 6238 for it).
    Otp,
    /// A recovery code (amr `otp` too: it is a one-time password, one of a
    /// printed list, and proves possession of that list as a TOTP code
    /// proves possession of the phone. `kba` is for answers to questions,
    /// and `pwd` would claim a second password; an app that must tell the
    /// two apart has no RFC 8176 value to read, and Latch records the
    /// difference in the audit trail).
    RecoveryCode,
}

impl Method {
    /// The RFC 8176 value.
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::Otp | Self::RecoveryCode => "otp",
        }
    }

    /// The name in the store, in metrics and in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::Otp => "otp",
            Self::RecoveryCode => "recovery_code",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "pwd" => Some(Self::Password),
            "otp" => Some(Self::Otp),
            "recovery_code" => Some(Self::RecoveryCode),
            _ => None,
        }
    }

    /// The first factor a session's RFC 8176 value records, for a step-up
    /// to carry over (second factors are proven again; `mfa` is derived).
    fn first_factor_of_amr(amr: &str) -> Option<Self> {
        match amr {
            "pwd" => Some(Self::Password),
            _ => None,
        }
    }

    /// Whether it is a second factor (answers `Step::SecondFactor`).
    pub fn is_second_factor(self) -> bool {
        matches!(self, Self::Otp | Self::RecoveryCode)
    }
}

/// Whether a session's `amr` (space-separated RFC 8176 values) records a
/// second factor.
pub fn has_mfa(amr: &str) -> bool {
    amr.split(' ').any(|method| method == AMR_MFA)
}

/// A session's `amr` after `method`, a second factor, was proven in it
/// (enrolling one proves it): the method and `mfa` added, each once.
pub fn with_second_factor(amr: &str, method: Method) -> String {
    let mut values: Vec<&str> = amr.split(' ').filter(|value| !value.is_empty() && *value != AMR_MFA).collect();
    if !values.contains(&method.amr()) {
        values.push(method.amr());
    }
    if values.len() > 1 {
        values.push(AMR_MFA);
    }
    values.join(" ")
}

/// What a sign-in asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The password of the username given when the sign-in started.
    Password,
    /// A second factor of the person the first step showed: any proof for
    /// which `Method::is_second_factor` holds.
    SecondFactor,
}

impl Step {
    /// The step's name in forms and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::SecondFactor => "second_factor",
        }
    }

    /// `None` for a name no step has.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "password" => Some(Self::Password),
            "second_factor" => Some(Self::SecondFactor),
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
    /// Answers `Step::Password`.
    Password(String),
    /// Answers `Step::SecondFactor`: a TOTP code (six digits) or a recovery
    /// code, as typed.
    Code(String),
}

/// Where a request leaves a sign-in.
pub enum Outcome {
    /// The sign-in goes on at `step`. `token` names it (the cookie value)
    /// until `expires_at`.
    Next { token: String, step: Step, username: String, expires_at: UnixTime },
    /// Signed in: the new session, and where the browser goes now. `last`:
    /// the method of the last step; `recovery_codes_left` when it was a
    /// recovery code (the person is told how many remain).
    Done { session: NewSession, username: String, next: String, last: Method, recovery_codes_left: Option<i64> },
    /// The proof was wrong, or the username or address is locked after too
    /// many failures (`locked`; the person is told the same either way). A
    /// pending sign-in stays at its step (`at`); a sign-in made in one
    /// request has none.
    Refused { username: String, locked: bool, at: Option<Step> },
}

/// Where a step-up leaves a signed-in person (`Authenticator::step_up`).
pub enum StepUp {
    /// Asked for a second factor (`Step::SecondFactor`): `token` names the
    /// pending sign-in (the cookie value) until `expires_at`.
    Next { token: String, expires_at: UnixTime },
    /// They hold no second factor: they must enrol one first.
    NoFactor,
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

    /// A second factor alone, for `session` (which proved its methods at
    /// its `auth_time`), to go to `next`.
    fn step_up(session: &SessionUser, next: &str) -> Self {
        let proven = session
            .amr
            .split(' ')
            .filter_map(Method::first_factor_of_amr)
            .map(|method| (method, session.auth_time))
            .collect();
        Self {
            username: session.username.clone(),
            user_id: Some(session.user_id.clone()),
            proven,
            step: Step::SecondFactor,
            later: Vec::new(),
            next: next.into(),
        }
    }

    /// Records that the current step was proven by `method` for `user_id`
    /// at `now`, and moves on.
    fn proved(mut self, method: Method, user_id: String, now: UnixTime) -> Progress {
        self.proven.push((method, now));
        if self.later.is_empty() {
            return Progress::Done { amr: self.amr(), user_id, username: self.username, next: self.next };
        }
        self.step = self.later.remove(0);
        self.user_id = Some(user_id);
        Progress::Next(self)
    }

    /// The RFC 8176 values of the methods proven, in the order proven,
    /// each once, space-separated; `mfa` after them when a second factor
    /// followed a first one.
    fn amr(&self) -> String {
        let mut values: Vec<&str> = Vec::new();
        for (method, _) in &self.proven {
            if !values.contains(&method.amr()) {
                values.push(method.amr());
            }
        }
        let second = self.proven.iter().any(|(method, _)| method.is_second_factor());
        if second && self.proven.iter().any(|(method, _)| !method.is_second_factor()) {
            values.push(AMR_MFA);
        }
        values.join(" ")
    }

    fn to_row(&self, expires_at: UnixTime) -> PendingSignInRow {
        let proven = self.proven.iter().map(|(method, at)| format!("{}@{at}", method.as_str()));
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
        let checked = match (pending.step, proof, pending.user_id.as_deref()) {
            (Step::Password, Proof::Password(password), _) => self
                .check_password(&pending.username, password, browser.client_ip, now)
                .await
                .map(|id| (Method::Password, id, None)),
            (Step::SecondFactor, Proof::Code(code), Some(user_id)) => self
                .check_code(user_id, &code, browser.client_ip, now)
                .await
                .map(|(method, left)| (method, user_id.to_owned(), left)),
            _ => return Err(LoginError::WrongStep),
        };
        let (method, user_id, recovery_codes_left) = match checked {
            Ok(proven) => proven,
            Err(refused @ (LoginError::InvalidCredentials | LoginError::Locked)) => {
                let locked = matches!(refused, LoginError::Locked);
                let at = token.map(|_| pending.step);
                return Ok(Outcome::Refused { username: pending.username, locked, at });
            }
            Err(error) => return Err(error),
        };
        let mut pending = pending;
        if method == Method::Password && self.holds_second_factor(&user_id).await? {
            pending.later.push(Step::SecondFactor);
        }
        match pending.proved(method, user_id, now) {
            Progress::Next(pending) => self.save(token, pending, now).await,
            Progress::Done { user_id, username, amr, next } => {
                let session = self.start_session(token, &user_id, &amr, browser.session, now).await?;
                Ok(Outcome::Done { session, username, next, last: method, recovery_codes_left })
            }
        }
    }

    /// Step-up: `session` (of this browser) lacks a second factor that
    /// `next` demands. Starts a sign-in for its person at the second-factor
    /// step, so they are not asked for their password again; finished, it
    /// continues the session (`Store::create_session`). `NoFactor` when they
    /// hold none.
    pub async fn step_up(&self, session: &SessionUser, next: &str, now: UnixTime) -> Result<StepUp, LoginError> {
        if !self.holds_second_factor(&session.user_id).await? {
            return Ok(StepUp::NoFactor);
        }
        let (token, expires_at) = self.store_pending(None, &Pending::step_up(session, next), now).await?;
        Ok(StepUp::Next { token, expires_at })
    }

    /// Stores `pending` for `PENDING_TTL` seconds under `token`, or under a
    /// new token when it was not stored yet.
    async fn save(&self, token: Option<&str>, pending: Pending, now: UnixTime) -> Result<Outcome, LoginError> {
        let (token, expires_at) = self.store_pending(token, &pending, now).await?;
        Ok(Outcome::Next { token, step: pending.step, username: pending.username, expires_at })
    }

    /// `save` without the outcome: the token and when it expires.
    async fn store_pending(
        &self,
        token: Option<&str>,
        pending: &Pending,
        now: UnixTime,
    ) -> Result<(String, UnixTime), LoginError> {
        let token = token.map_or_else(random_token, str::to_owned);
        let expires_at = now.saturating_add(PENDING_TTL);
        self.store.save_pending_sign_in(&sha256_hex(&token), &pending.to_row(expires_at)).await?;
        Ok((token, expires_at))
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
        match pending.proved(Method::Password, "u1".into(), 100) {
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
    fn a_second_factor_after_the_password_makes_it_mfa() {
        let mut pending = Pending::start("ada", "/next");
        pending.later.push(Step::SecondFactor);
        let Progress::Next(pending) = pending.proved(Method::Password, "u1".into(), 100) else {
            panic!("the second factor is still to come")
        };
        assert_eq!((pending.step, pending.user_id.as_deref()), (Step::SecondFactor, Some("u1")));
        let row = pending.to_row(400);
        assert_eq!((row.proven.as_str(), row.required.as_str()), ("pwd@100", "second_factor"));
        let pending = Pending::from_row(row).unwrap();
        match pending.proved(Method::RecoveryCode, "u1".into(), 130) {
            Progress::Done { amr, .. } => assert_eq!(amr, "pwd otp mfa"),
            Progress::Next(pending) => panic!("nothing after the second factor: {pending:?}"),
        }
    }

    #[test]
    fn a_step_up_starts_at_the_second_factor_with_what_the_session_proved() {
        let session = SessionUser {
            id_hash: "h".into(),
            user_id: "u1".into(),
            username: "ada".into(),
            auth_time: 50,
            amr: "pwd".into(),
        };
        let pending = Pending::step_up(&session, "/application/o/authorize/?x=1");
        assert_eq!((pending.step, pending.proven.clone()), (Step::SecondFactor, vec![(Method::Password, 50)]));
        match pending.proved(Method::Otp, "u1".into(), 90) {
            Progress::Done { amr, next, .. } => {
                assert_eq!((amr.as_str(), next.as_str()), ("pwd otp mfa", "/application/o/authorize/?x=1"))
            }
            Progress::Next(pending) => panic!("{pending:?}"),
        }
        assert!(has_mfa("pwd otp mfa") && !has_mfa("pwd"));
        assert_eq!(with_second_factor("pwd", Method::Otp), "pwd otp mfa");
        assert_eq!(with_second_factor("pwd otp mfa", Method::Otp), "pwd otp mfa");
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
