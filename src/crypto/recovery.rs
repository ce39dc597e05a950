//! Recovery codes: one-time codes a person keeps on paper for when their
//! authenticator is lost. Each is 80 random bits, shown as four groups of
//! four base32 letters and digits (`abcd-efgh-2345-6789`), and stored only
//! as the SHA-256 of `<user_id>:<code>`: bound to its owner, so one hash
//! table does not serve every account, and 80 bits are out of reach of a
//! search anyway.

use super::secret::random_bytes;
use super::sha256_hex;
use super::totp::base32_encode;

/// Codes in a set.
pub const CODES_PER_SET: usize = 10;

/// A fresh set of `CODES_PER_SET` codes, as shown to the person.
pub fn new_codes() -> Vec<String> {
    (0..CODES_PER_SET).map(|_| new_code()).collect()
}

fn new_code() -> String {
    let letters = base32_encode(&random_bytes::<10>()).to_lowercase();
    let groups: Vec<&str> = (0..4).map(|group| &letters[group * 4..group * 4 + 4]).collect();
    groups.join("-")
}

/// The stored form of `code` (as typed: case, dashes and spaces do not
/// matter) for the person `user_id`.
pub fn code_hash(user_id: &str, code: &str) -> String {
    let normalized: String =
        code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
    sha256_hex(&format!("{user_id}:{normalized}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_grouped_and_hash_as_typed() {
        let codes = new_codes();
        assert_eq!(codes.len(), CODES_PER_SET);
        let first = &codes[0];
        assert_eq!(first.len(), 19, "{first}");
        assert_eq!(first.split('-').count(), 4, "{first}");
        assert!(codes.iter().skip(1).all(|code| code != first));
        let typed = format!(" {} ", first.to_uppercase().replace('-', " "));
        assert_eq!(code_hash("u1", &typed), code_hash("u1", first));
        assert_ne!(code_hash("u2", first), code_hash("u1", first), "bound to its owner");
    }
}
