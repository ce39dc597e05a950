//! Signing keys. Private keys are kept as PKCS#8 DER (base64 in the store) so
//! that every instance loads and signs with the same key; the `kid` is the
//! RFC 7638 thumbprint of the public key, so a new key never reuses a `kid`.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;

use super::secret::sha256_b64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SigningAlg {
    RS256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        match raw {
            "RS256" => Ok(Self::RS256),
            other => Err(KeyError::UnknownAlg(other.to_owned())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("stored key {kid} is unreadable: {reason}")]
    Unreadable { kid: String, reason: String },
    #[error("unknown signing algorithm {0}")]
    UnknownAlg(String),
    #[error("signing failed")]
    Sign,
}

/// A public key as published in a JWK Set: no private material.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicJwk {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub kid: String,
    pub n: String,
    pub e: String,
}

pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    pair: RsaKeyPair,
    public: RsaPublicKeyComponents<Vec<u8>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("SigningKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key and its PKCS#8 form, base64, for the store.
    pub fn generate(alg: SigningAlg) -> Result<(Self, String), KeyError> {
        let pair = match alg {
            SigningAlg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?,
        };
        let pkcs8 = pair.as_der().map_err(|_| KeyError::Generate)?;
        let stored = STANDARD.encode(pkcs8.as_ref());
        Ok((Self::from_pair(alg, pair), stored))
    }

    pub fn from_stored(kid: &str, alg: &str, pkcs8_b64: &str) -> Result<Self, KeyError> {
        let unreadable = |reason: String| KeyError::Unreadable { kid: kid.to_owned(), reason };
        let alg = SigningAlg::parse(alg)?;
        let der = STANDARD.decode(pkcs8_b64).map_err(|error| unreadable(error.to_string()))?;
        let pair = RsaKeyPair::from_pkcs8(&der).map_err(|error| unreadable(error.to_string()))?;
        let key = Self::from_pair(alg, pair);
        if key.kid != kid {
            return Err(unreadable("its kid does not match its public key".into()));
        }
        Ok(key)
    }

    fn from_pair(alg: SigningAlg, pair: RsaKeyPair) -> Self {
        let public = pair.public_key();
        let public = RsaPublicKeyComponents {
            n: public.modulus().big_endian_without_leading_zero().to_vec(),
            e: public.exponent().big_endian_without_leading_zero().to_vec(),
        };
        let (n, e) = (URL_SAFE_NO_PAD.encode(&public.n), URL_SAFE_NO_PAD.encode(&public.e));
        // RFC 7638: SHA-256 over the required members in lexicographic order.
        let kid = sha256_b64(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#), false);
        Self { kid, alg, pair, public }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub fn public_jwk(&self) -> PublicJwk {
        PublicJwk {
            kty: "RSA",
            use_: "sig",
            alg: self.alg.as_str(),
            kid: self.kid.clone(),
            n: URL_SAFE_NO_PAD.encode(&self.public.n),
            e: URL_SAFE_NO_PAD.encode(&self.public.e),
        }
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.public.verify(&RSA_PKCS1_2048_8192_SHA256, message, signature).is_ok()
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature).map_err(|_| KeyError::Sign)?;
        Ok(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_key_loads_back_with_the_same_kid() {
        let (key, stored) = SigningKey::generate(SigningAlg::RS256).unwrap();
        let loaded = SigningKey::from_stored(key.kid(), "RS256", &stored).unwrap();
        assert_eq!(loaded.public_jwk(), key.public_jwk());
        assert_eq!(key.public_jwk().e, "AQAB");
        assert_eq!(key.sign(b"m").unwrap().len(), 256);
    }

    #[test]
    fn a_key_whose_kid_was_altered_is_refused() {
        let (_, stored) = SigningKey::generate(SigningAlg::RS256).unwrap();
        assert!(SigningKey::from_stored("other", "RS256", &stored).is_err());
    }
}
