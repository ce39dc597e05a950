//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA-1,
//! 6 digits, 30-second steps, what every authenticator app computes by
//! default, and the `otpauth://` URI those apps scan (Google Authenticator's
//! Key Uri Format, which they all follow). Nothing here keeps state: which
//! step was used last lives in the store (`store::factors`).

use aws_lc_rs::hmac;

use super::secret::random_bytes;

/// Seconds per time step (RFC 6238 §4.1 `X`).
pub const STEP_SECONDS: i64 = 30;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Steps either side of the current one whose codes are accepted: a phone
/// clock a little off, or a code typed as its step turned.
pub const SKEW_STEPS: i64 = 1;
/// Secret length: 160 bits, RFC 4226 §4's recommendation.
const SECRET_BYTES: usize = 20;

/// RFC 4648 §6 alphabet.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new secret, base32 without padding (32 characters), as apps take it.
pub fn new_secret() -> String {
    base32_encode(&random_bytes::<SECRET_BYTES>())
}

/// The time step of unix time `now` (RFC 6238 §4.2 `T`).
pub fn step_at(now: i64) -> i64 {
    now.div_euclid(STEP_SECONDS)
}

/// The code of time step `step` for the base32 `secret`; `None` when the
/// secret is not base32.
pub fn code_at_step(secret: &str, step: i64) -> Option<String> {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &base32_decode(secret)?);
    let mac = hmac::sign(&key, &step.to_be_bytes());
    let mac = mac.as_ref();
    // RFC 4226 §5.3 dynamic truncation.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bytes: [u8; 4] = mac.get(offset..offset + 4)?.try_into().ok()?;
    let value = u32::from_be_bytes(bytes) & 0x7fff_ffff;
    Some(format!("{:0width$}", value % 10u32.pow(DIGITS as u32), width = DIGITS))
}

/// The step whose code `code` is, among the steps within `SKEW_STEPS` of
/// `now` and later than `after` (the last step used), newest first; `None`
/// when it is none of them. Compared in constant time.
pub fn matching_step(secret: &str, code: &str, now: i64, after: i64) -> Option<i64> {
    let current = step_at(now);
    (current - SKEW_STEPS..=current + SKEW_STEPS).rev().filter(|step| *step > after).find(|step| {
        code_at_step(secret, *step)
            .is_some_and(|expected| super::constant_time_eq(expected.as_bytes(), code.as_bytes()))
    })
}

/// What a person types, as a code: spaces (apps show `123 456`) dropped.
pub fn normalize(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The `otpauth://totp/…` URI an authenticator app scans: `issuer` and
/// `account` label the entry in the app.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let encode = |text: &str| utf8_percent_encode(text, NON_ALPHANUMERIC).to_string();
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        encode(issuer),
        encode(account),
        encode(issuer)
    )
}

/// RFC 4648 base32, upper case, no padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// RFC 4648 base32, case-insensitive, padding and spaces ignored; `None`
/// for any other character.
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b'=' && *c != b' ') {
        let value = BASE32.iter().position(|&letter| letter == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 column, cut to 6 digits (the last six of
    /// the 8-digit values, as truncation modulo 10^6 gives).
    #[test]
    fn codes_match_rfc_6238_test_vectors() {
        let secret = base32_encode(b"12345678901234567890");
        assert_eq!(secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at_step(&secret, step_at(time)).as_deref(), Some(code), "at {time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_the_next_but_never_a_used_one() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        let now = 1_764_556_815;
        let code = code_at_step(&secret, step_at(now)).unwrap();
        assert_eq!(matching_step(&secret, &code, now, -1), Some(step_at(now)));
        assert_eq!(matching_step(&secret, &code, now + STEP_SECONDS, -1), Some(step_at(now)), "one step late");
        assert_eq!(matching_step(&secret, &code, now + 2 * STEP_SECONDS, -1), None, "two steps late");
        assert_eq!(matching_step(&secret, &code, now, step_at(now)), None, "used");
        assert_eq!(matching_step(&secret, "12345", now, -1), None);
        assert_eq!(normalize(" 123 456 "), "123456");
    }

    #[test]
    fn base32_round_trips_and_refuses_other_characters() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            assert_eq!(base32_decode(&base32_encode(bytes)).as_deref(), Some(bytes));
        }
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("mzxw6ytboi======").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(base32_decode("MZ1"), None);
    }

    #[test]
    fn otpauth_uris_escape_the_label() {
        assert_eq!(
            otpauth_uri("Latch", "ada lovelace", "ABC"),
            "otpauth://totp/Latch:ada%20lovelace?secret=ABC&issuer=Latch&algorithm=SHA1&digits=6&period=30"
        );
    }
}
