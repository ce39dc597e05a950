//! Request parameters as a flat list of pairs, refusing repeats (RFC 6749
//! §3.1: "parameters MUST NOT be included more than once") and control
//! characters. This is the one parsing edge for every form and query Latch
//! reads, so a NUL byte is refused here, the same way on every backend,
//! instead of reaching SQL (PostgreSQL refuses NUL in text, SQLite stores it).

use std::collections::HashMap;

/// Why a request's parameters were refused. The message goes into OAuth
/// error descriptions (RFC 6749 §5.2: `%x20-21 / %x23-5B / %x5D-7E`), so a
/// name with any other character is not quoted (`shown_name`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("the parameter {0} was sent more than once")]
    Repeated(String),
    #[error("the parameter {0} contains a control character")]
    ControlCharacter(String),
    #[error("a parameter is not UTF-8 text once percent-decoded")]
    NotUtf8,
}

/// The pairs of an `application/x-www-form-urlencoded` body or a query
/// (`+` is a space, `%XX` a byte). Unlike a lossy decoder, which would turn
/// bytes that are not UTF-8 into U+FFFD and leave a request that is then
/// refused for some other, misleading reason, this names the cause.
pub fn decode_pairs(raw: &[u8]) -> Result<Vec<(String, String)>, ParamError> {
    raw.split(|byte| *byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |byte| *byte == b'=');
            let name = decode_component(parts.next().unwrap_or_default())?;
            Ok((name, decode_component(parts.next().unwrap_or_default())?))
        })
        .collect()
}

fn decode_component(raw: &[u8]) -> Result<String, ParamError> {
    let plus_as_space: Vec<u8> = raw.iter().map(|byte| if *byte == b'+' { b' ' } else { *byte }).collect();
    let decoded = percent_encoding::percent_decode(&plus_as_space).decode_utf8().map_err(|_| ParamError::NotUtf8)?;
    Ok(decoded.into_owned())
}

/// Parameters whose values may span lines: JSON (OIDC Core §5.5 `claims`)
/// may be pretty-printed. Every other value is a single line of text (most
/// are `%x20-7E` by RFC 6749 Appendix A), so no C0 control character or DEL.
const MULTI_LINE: [&str; 1] = ["claims"];

/// Whether `value` of parameter `name` holds a character no form or query
/// legitimately sends: NUL anywhere, other C0 controls and DEL outside the
/// line breaks and tabs of a multi-line value.
pub fn has_control_character(name: &str, value: &str) -> bool {
    let multi_line = MULTI_LINE.contains(&name);
    value.chars().any(|c| match c {
        '\t' | '\n' | '\r' => !multi_line,
        c => c.is_ascii_control(),
    })
}

/// `name` as an error message may quote it: itself when every character is
/// allowed in an OAuth error description, else a description of it.
pub fn shown_name(name: &str) -> String {
    let plain = |c: char| (' '..='~').contains(&c) && c != '"' && c != '\\';
    if name.chars().all(plain) { name.to_owned() } else { "with an unusual name".to_owned() }
}

/// The error for the first pair of `pairs` carrying a control character.
fn check_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<(), ParamError> {
    for (name, value) in pairs {
        let (name, value) = (name.as_ref(), value.as_ref());
        if has_control_character("", name) || has_control_character(name, value) {
            return Err(ParamError::ControlCharacter(shown_name(name)));
        }
    }
    Ok(())
}

/// Refuses a raw query or form body whose decoded names or values hold a
/// control character, for endpoints that read single fields from it rather
/// than `Params` (forward auth's `start`, `sso` and `callback`).
pub fn check_form(raw: &[u8]) -> Result<(), ParamError> {
    check_pairs(url::form_urlencoded::parse(raw))
}

#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// `Err` names the first parameter sent twice or carrying a control
    /// character (in its name or value).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, ParamError> {
        check_pairs(pairs.iter().map(|(name, value)| (name, value)))?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(ParamError::Repeated(shown_name(&name)));
            }
            map.insert(name, value);
        }
        Ok(Self(map))
    }

    /// A parameter sent empty counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|value| !value.is_empty())
    }

    /// The parameters, sorted by name, for rebuilding a request URL.
    pub fn sorted_pairs(&self) -> Vec<(&str, &str)> {
        let mut pairs: Vec<_> = self.0.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        pairs.sort_unstable();
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_exactly_or_name_bytes_that_are_not_text() {
        let pairs = decode_pairs(b"a=1+2&b=%C3%A9%26&&c&=v").unwrap();
        let expected = [("a", "1 2"), ("b", "é&"), ("c", ""), ("", "v")];
        assert_eq!(pairs, expected.map(|(name, value)| (name.to_owned(), value.to_owned())));
        assert_eq!(decode_pairs(b"client_id=%FF"), Err(ParamError::NotUtf8));
        assert_eq!(decode_pairs(&[b'a', b'=', 0xFF]), Err(ParamError::NotUtf8));
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_absent() {
        assert_eq!(
            Params::from_pairs(vec![pair("a", "1"), pair("a", "2")]).unwrap_err(),
            ParamError::Repeated("a".into())
        );
        let params = Params::from_pairs(vec![pair("a", ""), pair("b", "x")]).unwrap();
        assert_eq!(params.get("a"), None);
        assert_eq!(params.get("b"), Some("x"));
    }

    #[test]
    fn control_characters_are_refused_except_line_breaks_in_json() {
        for (name, value) in [("nonce", "a\0b"), ("state", "a\nb"), ("scope", "openid\t"), ("x", "\u{7f}")] {
            let error = Params::from_pairs(vec![pair(name, value)]).unwrap_err();
            assert_eq!(error, ParamError::ControlCharacter(name.into()), "{value:?}");
        }
        assert_eq!(
            Params::from_pairs(vec![pair("a\0\u{1b}", "1")]).unwrap_err().to_string(),
            "the parameter with an unusual name contains a control character"
        );
        assert!(Params::from_pairs(vec![pair("claims", "{\n\t\"userinfo\": {}\r\n}")]).is_ok());
        assert!(Params::from_pairs(vec![pair("claims", "{\0}")]).is_err());
        assert!(Params::from_pairs(vec![pair("state", "ünïcode ✓ -._~")]).is_ok());
        assert_eq!(
            check_form(b"rd=https%3A%2F%2Fa.example%2F&state=%00"),
            Err(ParamError::ControlCharacter("state".into()))
        );
        assert!(check_form(b"rd=https://a.example/?x=1&state=abc").is_ok());
    }
}
