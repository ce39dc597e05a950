//! Passkeys: WebAuthn ceremonies through `webauthn-rs`, which does every
//! verification (challenge, origin, RP ID hash, signature, user
//! verification, sign count); this module keeps what it needs between
//! the two requests of a ceremony and the credentials it produces.
//!
//! A ceremony's state lives in the store under the SHA-256 of a random
//! token the page holds and posts back with the authenticator's answer, so
//! any instance finishes what another began; finishing takes (deletes) it,
//! so one answer counts once and a replayed one finds nothing.
//!
//! The relying party (W3C WebAuthn §5.1): RP ID is `public_url`'s host,
//! the one allowed origin is `public_url`'s origin (`http://localhost:PORT`
//! included: browsers treat it as secure). A `public_url` naming an IP
//! address has no RP ID (WebAuthn needs a domain), and passkeys are then
//! `Unavailable`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use super::flow::Method;
use crate::clock::UnixTime;
use crate::crypto::{random_token, sha256_hex};
use crate::store::{CeremonyRow, PasskeyRow, Store, StoreError, UserClaims};
use crate::text::printable;

/// Seconds a ceremony may take: the person finds their phone or key and
/// touches it. W3C WebAuthn §15.1 recommends 5 minutes for UV.
pub const CEREMONY_TTL: i64 = 5 * 60;

/// The longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// `public_url` names no domain, so there is no RP ID.
    #[error("passkeys are not available: public_url must name the server by a domain name (such as localhost)")]
    Unavailable,
    /// The ceremony token is unknown, finished or expired, or belongs to
    /// another person or sign-in.
    #[error("this passkey request has expired; please try again")]
    Expired,
    /// The authenticator's answer did not verify, or names a credential
    /// this person does not have (or a disabled person's).
    #[error("the passkey was not accepted")]
    Refused,
    /// The credential is registered already.
    #[error("this passkey is already registered")]
    Duplicate,
    /// The name is empty, too long or holds control characters.
    #[error("a passkey name must be 1 to {MAX_NAME_CHARS} characters, without control characters")]
    InvalidName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a ceremony is for: the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Register,
    SignIn,
    SecondFactor,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SignIn => "sign_in",
            Self::SecondFactor => "second_factor",
        }
    }
}

/// A ceremony begun: the token the page posts back, and the options it
/// hands `navigator.credentials.create()` / `.get()` (JSON as webauthn-rs
/// serializes them).
pub struct Begun<T> {
    pub token: String,
    pub options: T,
}

/// A passkey that verified: whose, and the RFC 8176 methods it proves.
#[derive(Debug)]
pub struct Verified {
    pub user_id: String,
    pub username: String,
    pub methods: Vec<Method>,
}

/// What a page or admin listing shows of a passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySummary {
    pub id: String,
    pub name: String,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

pub struct Passkeys {
    relying_party: Option<Webauthn>,
    store: Store,
}

impl Passkeys {
    /// The relying party of `public_url` (see the module docs); `None` when
    /// it names an IP address, logged once here.
    pub fn new(store: Store, public_url: &str) -> Self {
        let relying_party = relying_party(public_url);
        if relying_party.is_none() {
            tracing::warn!(public_url, "passkeys are off: public_url must name the server by a domain name");
        }
        Self { relying_party, store }
    }

    /// Whether passkeys can be used at all (`public_url` names a domain).
    pub fn available(&self) -> bool {
        self.relying_party.is_some()
    }

    fn rp(&self) -> Result<&Webauthn, PasskeyError> {
        self.relying_party.as_ref().ok_or(PasskeyError::Unavailable)
    }

    /// Begins registering a passkey named `name` for `user`. Its existing
    /// passkeys are excluded (the authenticator refuses to make a second
    /// one for the same account). Resident keys are preferred, so that the
    /// passkey can sign in without a username where the authenticator can
    /// keep one; webauthn-rs asks for user verification.
    pub async fn begin_registration(
        &self,
        user: &UserClaims,
        name: &str,
        now: UnixTime,
    ) -> Result<Begun<CreationChallengeResponse>, PasskeyError> {
        let rp = self.rp()?;
        let name = passkey_name(name)?;
        let exclude = self.credentials_of(&user.id).await?.iter().map(|key| key.cred_id().clone()).collect();
        let display_name = if user.name.trim().is_empty() { &user.username } else { &user.name };
        let (mut options, state) = rp
            .start_passkey_registration(user_handle(&user.id)?, &user.username, display_name, Some(exclude))
            .map_err(refused)?;
        // webauthn-rs leaves this hint at "discouraged", which browsers take
        // as "make it non-discoverable"; it enforces nothing about it.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Preferred);
        }
        let row = Ceremony { kind: Kind::Register, user_id: Some(&user.id), bound_to: None, name: Some(&name) };
        let token = self.save(row, &state, now).await?;
        Ok(Begun { token, options })
    }

    /// Finishes the registration `token` began for `user_id` with the
    /// browser's `credential`, and keeps the new passkey.
    pub async fn finish_registration(
        &self,
        user_id: &str,
        token: &str,
        credential: &RegisterPublicKeyCredential,
        now: UnixTime,
    ) -> Result<PasskeySummary, PasskeyError> {
        let rp = self.rp()?;
        let ceremony = self.take(token, Kind::Register, user_id, None, now).await?;
        let state: PasskeyRegistration = from_json(&ceremony.state)?;
        let passkey = rp.finish_passkey_registration(credential, &state).map_err(refused)?;
        let row = PasskeyRow {
            id: Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
            credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
            name: ceremony.name.unwrap_or_default(),
            credential: to_json(&passkey)?,
            created_at: now,
            last_used_at: None,
        };
        match self.store.add_passkey(&row).await {
            Err(StoreError::Duplicate { .. }) => Err(PasskeyError::Duplicate),
            added => Ok(added.map(|()| summary(row))?),
        }
    }

    /// Begins a sign-in with no one named: the browser offers the passkeys
    /// it holds for this RP (discoverable credentials).
    pub async fn begin_sign_in(&self, now: UnixTime) -> Result<Begun<RequestChallengeResponse>, PasskeyError> {
        let (mut options, state) = self.rp()?.start_discoverable_authentication().map_err(refused)?;
        // webauthn-rs marks these options for conditional UI; the page
        // chooses the mediation itself (autofill, or a button's modal).
        options.mediation = None;
        let row = Ceremony { kind: Kind::SignIn, user_id: None, bound_to: None, name: None };
        let token = self.save(row, &state, now).await?;
        Ok(Begun { token, options })
    }

    /// Finishes the sign-in `token` began: whose passkey answered, if it
    /// verifies and its owner is active.
    pub async fn finish_sign_in(
        &self,
        token: &str,
        credential: &PublicKeyCredential,
        now: UnixTime,
    ) -> Result<Verified, PasskeyError> {
        let rp = self.rp()?;
        let ceremony = self.take_unbound(token, Kind::SignIn, now).await?;
        let state: DiscoverableAuthentication = from_json(&ceremony.state)?;
        let (handle, credential_id) = rp.identify_discoverable_authentication(credential).map_err(refused)?;
        let user_id = handle.to_string();
        let credential_id = URL_SAFE_NO_PAD.encode(credential_id);
        let row = self.store.passkey_by_credential(&user_id, &credential_id).await?.ok_or(PasskeyError::Refused)?;
        let mut passkey: Passkey = from_json(&row.credential)?;
        let result = rp.finish_discoverable_authentication_v2(credential, state, &passkey).map_err(refused)?;
        self.used(row, &mut passkey, &result, now).await
    }

    /// Begins the second factor of the pending sign-in `bound_to` (SHA-256
    /// of its cookie) of `user_id`, with that person's passkeys; `None`
    /// when they have none.
    pub async fn begin_second_factor(
        &self,
        user_id: &str,
        bound_to: &str,
        now: UnixTime,
    ) -> Result<Option<Begun<RequestChallengeResponse>>, PasskeyError> {
        let rp = self.rp()?;
        let keys = self.credentials_of(user_id).await?;
        if keys.is_empty() {
            return Ok(None);
        }
        let (options, state) = rp.start_passkey_authentication(&keys).map_err(refused)?;
        let row = Ceremony { kind: Kind::SecondFactor, user_id: Some(user_id), bound_to: Some(bound_to), name: None };
        let token = self.save(row, &state, now).await?;
        Ok(Some(Begun { token, options }))
    }

    /// Finishes the second factor `token` began for `user_id` in the
    /// pending sign-in `bound_to`.
    pub async fn finish_second_factor(
        &self,
        user_id: &str,
        bound_to: &str,
        token: &str,
        credential: &PublicKeyCredential,
        now: UnixTime,
    ) -> Result<Verified, PasskeyError> {
        let rp = self.rp()?;
        let ceremony = self.take(token, Kind::SecondFactor, user_id, Some(bound_to), now).await?;
        let state: PasskeyAuthentication = from_json(&ceremony.state)?;
        let credential_id = URL_SAFE_NO_PAD.encode(&credential.raw_id);
        let row = self.store.passkey_by_credential(user_id, &credential_id).await?.ok_or(PasskeyError::Refused)?;
        let mut passkey: Passkey = from_json(&row.credential)?;
        let result = rp.finish_passkey_authentication(credential, &state).map_err(refused)?;
        self.used(row, &mut passkey, &result, now).await
    }

    /// A person's passkeys, oldest first.
    pub async fn list(&self, user_id: &str) -> Result<Vec<PasskeySummary>, PasskeyError> {
        Ok(self.store.passkeys_of(user_id).await?.into_iter().map(summary).collect())
    }

    /// Records a verified use (the credential's new sign count and backup
    /// state, and when), and says what it proved: `swk` for a passkey that
    /// may be synced (backup eligible: its private key leaves the device,
    /// in software), `hwk` for one bound to its device (a security key, a
    /// TPM); `user` when the authenticator verified the person (PIN or
    /// biometric, the second factor of the key).
    async fn used(
        &self,
        row: PasskeyRow,
        passkey: &mut Passkey,
        result: &AuthenticationResult,
        now: UnixTime,
    ) -> Result<Verified, PasskeyError> {
        let Some(user) = self.store.active_user_claims(&row.user_id).await? else {
            return Err(PasskeyError::Refused);
        };
        passkey.update_credential(result);
        self.store.passkey_used(&row.id, &to_json(&*passkey)?, now).await?;
        let key = if result.backup_eligible() { Method::SoftwareKey } else { Method::HardwareKey };
        let mut methods = vec![key];
        if result.user_verified() {
            methods.push(Method::UserVerified);
        }
        Ok(Verified { user_id: user.id, username: user.username, methods })
    }

    async fn credentials_of(&self, user_id: &str) -> Result<Vec<Passkey>, PasskeyError> {
        self.store.passkeys_of(user_id).await?.iter().map(|row| from_json(&row.credential)).collect()
    }

    async fn save(
        &self,
        ceremony: Ceremony<'_>,
        state: &impl Serialize,
        now: UnixTime,
    ) -> Result<String, PasskeyError> {
        let token = random_token();
        let row = CeremonyRow {
            kind: ceremony.kind.as_str().to_owned(),
            user_id: ceremony.user_id.map(str::to_owned),
            bound_to: ceremony.bound_to.map(str::to_owned),
            name: ceremony.name.map(str::to_owned),
            state: to_json(state)?,
            expires_at: now.saturating_add(CEREMONY_TTL),
        };
        self.store.save_ceremony(&sha256_hex(&token), &row).await?;
        Ok(token)
    }

    /// Takes the ceremony `token` if it is a `kind` for `user_id` (and the
    /// pending sign-in `bound_to`); `Expired` otherwise. A ceremony taken by
    /// the wrong person is gone all the same: it was guessed or stolen.
    async fn take(
        &self,
        token: &str,
        kind: Kind,
        user_id: &str,
        bound_to: Option<&str>,
        now: UnixTime,
    ) -> Result<CeremonyRow, PasskeyError> {
        let ceremony = self.take_unbound(token, kind, now).await?;
        let fits = ceremony.user_id.as_deref() == Some(user_id) && ceremony.bound_to.as_deref() == bound_to;
        if fits { Ok(ceremony) } else { Err(PasskeyError::Expired) }
    }

    async fn take_unbound(&self, token: &str, kind: Kind, now: UnixTime) -> Result<CeremonyRow, PasskeyError> {
        let ceremony = self.store.take_ceremony(&sha256_hex(token), now).await?;
        ceremony.filter(|ceremony| ceremony.kind == kind.as_str()).ok_or(PasskeyError::Expired)
    }
}

/// What a new ceremony row says besides its state.
struct Ceremony<'a> {
    kind: Kind,
    user_id: Option<&'a str>,
    bound_to: Option<&'a str>,
    name: Option<&'a str>,
}

fn relying_party(public_url: &str) -> Option<Webauthn> {
    let url = Url::parse(public_url).ok()?;
    let host = url.domain()?;
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    WebauthnBuilder::new(host, &origin).ok()?.rp_name("Latch").build().ok()
}

/// The WebAuthn user handle of a person: their id, a UUID (W3C WebAuthn
/// §14.6.1: no personal information in it).
fn user_handle(user_id: &str) -> Result<Uuid, PasskeyError> {
    Uuid::parse_str(user_id).map_err(|_| StoreError::Corrupt(format!("user id {user_id:?} is not a UUID")).into())
}

/// A passkey name as typed, trimmed; `InvalidName` when empty, longer than
/// `MAX_NAME_CHARS` or holding control characters.
pub fn passkey_name(name: &str) -> Result<String, PasskeyError> {
    let name = name.trim();
    let fits = !name.is_empty() && name.chars().count() <= MAX_NAME_CHARS && printable(name) == name;
    if fits { Ok(name.to_owned()) } else { Err(PasskeyError::InvalidName) }
}

/// webauthn-rs's reason, for the log only: the person is told `Refused`.
fn refused(error: webauthn_rs::prelude::WebauthnError) -> PasskeyError {
    tracing::info!(%error, "passkey ceremony refused");
    PasskeyError::Refused
}

fn summary(row: PasskeyRow) -> PasskeySummary {
    PasskeySummary { id: row.id, name: row.name, created_at: row.created_at, last_used_at: row.last_used_at }
}

fn to_json(value: &impl Serialize) -> Result<String, PasskeyError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(error.to_string()).into())
}

fn from_json<T: DeserializeOwned>(raw: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(raw).map_err(|error| StoreError::Corrupt(format!("passkey data: {error}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_public_urls_host_and_needs_a_domain() {
        for (url, origin) in [
            ("http://localhost:9000", "http://localhost:9000"),
            ("https://sso.example.com/latch", "https://sso.example.com"),
        ] {
            let rp = relying_party(url).unwrap_or_else(|| panic!("{url}"));
            assert_eq!(rp.get_allowed_origins(), [Url::parse(origin).unwrap()], "{url}");
        }
        assert!(relying_party("http://127.0.0.1:9000").is_none());
        assert!(relying_party("http://[::1]:9000").is_none());
    }

    #[test]
    fn passkey_names_are_trimmed_short_and_printable() {
        assert_eq!(passkey_name("  work laptop ").unwrap(), "work laptop");
        assert_eq!(passkey_name(&"é".repeat(MAX_NAME_CHARS)).unwrap().chars().count(), MAX_NAME_CHARS);
        for bad in ["", "   ", "a\nb", "a\u{202e}b", &"x".repeat(MAX_NAME_CHARS + 1)] {
            assert!(matches!(passkey_name(bad), Err(PasskeyError::InvalidName)), "{bad:?}");
        }
    }
}
