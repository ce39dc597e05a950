//! Signing keys: RS256 (the default), ES256 and EdDSA (Ed25519). Private keys
//! are kept as PKCS#8 DER (base64 in the store) so that every instance loads
//! and signs with the same key; the `kid` is the RFC 7638 thumbprint of the
//! public key, so a new key never reuses a `kid`.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;

use super::secret::sha256_b64;
use crate::canonical::{UnknownValue, canonical_enum, canonical_value_enum};

canonical_enum! {
    /// JWS `alg` values (RFC 7518 §3.1, RFC 8037 §3.1) Latch signs with.
    pub enum SigningAlg ("signing algorithm") {
        RS256 = "RS256",
        ES256 = "ES256",
        EdDSA = "EdDSA",
    }
}

canonical_value_enum!(SigningAlg);

/// How a stored `alg` column is read (`#[sqlx(try_from)]`).
impl TryFrom<String> for SigningAlg {
    type Error = UnknownValue;

    fn try_from(stored: String) -> Result<Self, UnknownValue> {
        stored.parse()
    }
}

impl SigningAlg {
    /// OIDC's `at_hash`/`c_hash`: base64url of the left half of the hash
    /// the algorithm uses (SHA-512 for Ed25519, SHA-256 otherwise).
    pub fn left_half_hash(self, input: &str) -> String {
        use aws_lc_rs::digest::{SHA256, SHA512, digest};
        let algorithm = if self == Self::EdDSA { &SHA512 } else { &SHA256 };
        let hash = digest(algorithm, input.as_bytes());
        let bytes = hash.as_ref();
        URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("stored key {kid} is unreadable: {reason}")]
    Unreadable { kid: String, reason: String },
    #[error("no signing key of {0} is loaded")]
    NoKey(SigningAlg),
    #[error("signing failed")]
    Sign,
    #[error("sealing a refresh token's successor failed")]
    Seal,
    #[error("the signing thread failed: {0}")]
    Task(String),
}

/// A public key as published in a JWK Set: no private material.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicJwk {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub kid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    pair: Pair,
    jwk: PublicJwk,
    /// The public key in the form its verifier takes.
    public: Vec<u8>,
    rsa_public: Option<RsaPublicKeyComponents<Vec<u8>>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("SigningKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key and its PKCS#8 form, base64, for the store.
    pub fn generate(alg: SigningAlg) -> Result<(Self, String), KeyError> {
        let failed = |_| KeyError::Generate;
        let (pair, pkcs8) = match alg {
            SigningAlg::RS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?;
                let der = pair.as_der().map_err(failed)?.as_ref().to_vec();
                (Pair::Rsa(pair), der)
            }
            SigningAlg::ES256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?;
                let der = pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec();
                (Pair::Ec(pair), der)
            }
            SigningAlg::EdDSA => {
                let pair = Ed25519KeyPair::generate().map_err(failed)?;
                let der = pair.to_pkcs8().map_err(failed)?.as_ref().to_vec();
                (Pair::Ed(pair), der)
            }
        };
        Ok((Self::from_pair(alg, pair), STANDARD.encode(pkcs8)))
    }

    pub fn from_stored(kid: &str, alg: SigningAlg, pkcs8_b64: &str) -> Result<Self, KeyError> {
        let unreadable = |reason: String| KeyError::Unreadable { kid: kid.to_owned(), reason };
        let der = STANDARD.decode(pkcs8_b64).map_err(|error| unreadable(error.to_string()))?;
        let pair = match alg {
            SigningAlg::RS256 => RsaKeyPair::from_pkcs8(&der).map(Pair::Rsa),
            SigningAlg::ES256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).map(Pair::Ec),
            SigningAlg::EdDSA => Ed25519KeyPair::from_pkcs8(&der).map(Pair::Ed),
        }
        .map_err(|error| unreadable(error.to_string()))?;
        let key = Self::from_pair(alg, pair);
        if key.kid != kid {
            return Err(unreadable("its kid does not match its public key".into()));
        }
        Ok(key)
    }

    fn from_pair(alg: SigningAlg, pair: Pair) -> Self {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let mut jwk = PublicJwk {
            kty: "RSA",
            use_: "sig",
            alg: alg.as_str(),
            kid: String::new(),
            crv: None,
            n: None,
            e: None,
            x: None,
            y: None,
        };
        let mut rsa_public = None;
        // RFC 7638: SHA-256 over the required members in lexicographic order.
        let (thumbprint_input, public) = match &pair {
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                let components = RsaPublicKeyComponents {
                    n: public.modulus().big_endian_without_leading_zero().to_vec(),
                    e: public.exponent().big_endian_without_leading_zero().to_vec(),
                };
                let (n, e) = (b64(&components.n), b64(&components.e));
                let input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
                (jwk.n, jwk.e) = (Some(n), Some(e));
                rsa_public = Some(components);
                (input, Vec::new())
            }
            Pair::Ec(pair) => {
                // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref().to_vec();
                let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
                let input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
                (jwk.kty, jwk.crv, jwk.x, jwk.y) = ("EC", Some("P-256"), Some(x), Some(y));
                (input, point)
            }
            Pair::Ed(pair) => {
                let public = pair.public_key().as_ref().to_vec();
                let x = b64(&public);
                let input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
                (jwk.kty, jwk.crv, jwk.x) = ("OKP", Some("Ed25519"), Some(x));
                (input, public)
            }
        };
        let kid = sha256_b64(&thumbprint_input, false);
        jwk.kid = kid.clone();
        Self { kid, alg, pair, jwk, public, rsa_public }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub fn public_jwk(&self) -> &PublicJwk {
        &self.jwk
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match (&self.rsa_public, self.alg) {
            (Some(rsa), _) => rsa.verify(&RSA_PKCS1_2048_8192_SHA256, message, signature).is_ok(),
            (None, SigningAlg::ES256) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public).verify(message, signature).is_ok()
            }
            (None, _) => UnparsedPublicKey::new(&ED25519, &self.public).verify(message, signature).is_ok(),
        }
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature).map_err(|_| KeyError::Sign)?;
                Ok(signature)
            }
            Pair::Ec(pair) => Ok(pair.sign(&rng, message).map_err(|_| KeyError::Sign)?.as_ref().to_vec()),
            Pair::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_the_store_and_verifies() {
        for &alg in SigningAlg::ALL {
            let (key, stored) = SigningKey::generate(alg).unwrap();
            let loaded = SigningKey::from_stored(key.kid(), alg, &stored).unwrap();
            assert_eq!(loaded.public_jwk(), key.public_jwk());
            let signature = key.sign(b"message").unwrap();
            assert!(loaded.verify(b"message", &signature), "{alg:?}");
            assert!(!loaded.verify(b"messagE", &signature), "{alg:?}");
        }
    }

    #[test]
    fn rsa_keys_are_2048_bit_with_the_usual_exponent() {
        let (key, _) = SigningKey::generate(SigningAlg::RS256).unwrap();
        assert_eq!(key.public_jwk().e.as_deref(), Some("AQAB"));
        assert_eq!(key.sign(b"m").unwrap().len(), 256);
    }

    #[test]
    fn token_hashes_use_the_algorithms_digest() {
        assert_eq!(SigningAlg::RS256.left_half_hash("x").len(), 22);
        assert_eq!(SigningAlg::EdDSA.left_half_hash("x").len(), 43);
    }

    #[test]
    fn a_key_whose_kid_was_altered_is_refused() {
        let (_, stored) = SigningKey::generate(SigningAlg::RS256).unwrap();
        assert!(SigningKey::from_stored("other", SigningAlg::RS256, &stored).is_err());
    }
}
