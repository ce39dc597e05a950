//! Compact JWS serialization (RFC 7515) of JSON claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::keys::{KeyError, SigningKey};

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

/// `typ` of an ID token (OIDC Core §2 leaves it to JWT's default).
pub const ID_TOKEN_TYP: &str = "JWT";
/// `typ` of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// `typ` of a logout token (Back-Channel Logout 1.0 §2.4).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";

/// `typ` is one of the `*_TYP` constants: the kind of token.
pub fn sign(key: &SigningKey, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
    let header = Header { alg: key.alg().as_str(), typ, kid: key.kid() };
    let header = serde_json::to_vec(&header).map_err(|_| KeyError::Sign)?;
    let claims = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwsError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("signed by an unknown key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("a token of another kind")]
    WrongType,
}

#[derive(serde::Deserialize)]
struct PresentedHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

/// Whether a header's `typ` names the media type `expected`: compared
/// without case, with the `application/` prefix optional (RFC 7515 §4.1.9).
fn is_typ(presented: Option<&str>, expected: &str) -> bool {
    presented.is_some_and(|typ| {
        let typ =
            typ.get(..12).filter(|prefix| prefix.eq_ignore_ascii_case("application/")).map_or(typ, |_| &typ[12..]);
        typ.eq_ignore_ascii_case(expected)
    })
}

/// Checks the signature with the key the header names (the algorithm must
/// be that key's: no `none`, no algorithm confusion) and the token's kind
/// (`typ`, e.g. `ACCESS_TOKEN_TYP`: RFC 9068 §4, an ID token is no access
/// token and the other way round), and returns the claims.
pub fn verify<'k, T: serde::de::DeserializeOwned>(
    token: &str,
    typ: &str,
    find_key: impl FnOnce(&str) -> Option<&'k SigningKey>,
) -> Result<T, JwsError> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| JwsError::Malformed);
    let header: PresentedHeader = serde_json::from_slice(&decode(header)?).map_err(|_| JwsError::Malformed)?;
    let key = header.kid.as_deref().and_then(find_key).ok_or(JwsError::UnknownKey)?;
    if header.alg != key.alg().as_str() {
        return Err(JwsError::UnknownKey);
    }
    let signed_len = token.len() - signature.len() - 1;
    if !key.verify(&token.as_bytes()[..signed_len], &decode(signature)?) {
        return Err(JwsError::BadSignature);
    }
    if !is_typ(header.typ.as_deref(), typ) {
        return Err(JwsError::WrongType);
    }
    serde_json::from_slice(&decode(claims)?).map_err(|_| JwsError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::SigningAlg;
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};

    #[test]
    fn the_signature_verifies_with_the_published_key() {
        let (key, _) = SigningKey::generate(SigningAlg::RS256).unwrap();
        let token = sign(&key, "JWT", &serde_json::json!({"sub": "x"})).unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let jwk = key.public_jwk();
        let public = RsaPublicKeyComponents {
            n: URL_SAFE_NO_PAD.decode(jwk.n.as_ref().unwrap()).unwrap(),
            e: URL_SAFE_NO_PAD.decode(jwk.e.as_ref().unwrap()).unwrap(),
        };
        public
            .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).unwrap())
            .unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["kid"], key.kid());
        assert_eq!(header["alg"], "RS256");
    }

    #[test]
    fn verify_accepts_only_untampered_tokens_from_known_keys() {
        let (key, _) = SigningKey::generate(SigningAlg::RS256).unwrap();
        let token = sign(&key, ID_TOKEN_TYP, &serde_json::json!({"sub": "x"})).unwrap();
        let claims: serde_json::Value = verify(&token, ID_TOKEN_TYP, |kid| (kid == key.kid()).then_some(&key)).unwrap();
        assert_eq!(claims["sub"], "x");
        let tampered = token.replacen(".", ".e30", 1);
        assert!(verify::<serde_json::Value>(&tampered, ID_TOKEN_TYP, |_| Some(&key)).is_err());
        assert_eq!(verify::<serde_json::Value>(&token, ID_TOKEN_TYP, |_| None), Err(JwsError::UnknownKey));
        assert_eq!(verify::<serde_json::Value>("a.b", ID_TOKEN_TYP, |_| Some(&key)), Err(JwsError::Malformed));
        let unsigned =
            format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k"}"#), URL_SAFE_NO_PAD.encode("{}"));
        assert!(verify::<serde_json::Value>(&unsigned, ID_TOKEN_TYP, |_| Some(&key)).is_err());
    }

    #[test]
    fn verify_accepts_only_the_expected_kind() {
        let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let access = sign(&key, ACCESS_TOKEN_TYP, &serde_json::json!({"sub": "x"})).unwrap();
        let id = sign(&key, ID_TOKEN_TYP, &serde_json::json!({"sub": "x"})).unwrap();
        let check = |token: &str, typ: &str| verify::<serde_json::Value>(token, typ, |_| Some(&key)).map(|_| ());
        assert_eq!(check(&access, ACCESS_TOKEN_TYP), Ok(()));
        assert_eq!(check(&id, ID_TOKEN_TYP), Ok(()));
        assert_eq!(check(&access, ID_TOKEN_TYP), Err(JwsError::WrongType));
        assert_eq!(check(&id, ACCESS_TOKEN_TYP), Err(JwsError::WrongType));
        for spelling in ["application/at+jwt", "AT+JWT", "Application/At+Jwt"] {
            assert!(is_typ(Some(spelling), ACCESS_TOKEN_TYP), "{spelling}");
        }
        for other in [None, Some(""), Some("application/"), Some("jwt"), Some("at+jwt2"), Some("x-at+jwt")] {
            assert!(!is_typ(other, ACCESS_TOKEN_TYP), "{other:?}");
        }
    }
}
