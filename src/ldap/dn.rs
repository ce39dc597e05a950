//! Distinguished names (RFC 4514): parsing what clients send, escaping
//! what the directory emits, and where in the directory a DN points.
//!
//! Every attribute in Latch's DNs (`dc`, `ou`, `uid`, `cn`) compares
//! case-insensitively, so DNs are compared in a normal form: attribute
//! types and values lower-cased, spaces around separators dropped, escapes
//! resolved and re-applied one way.

/// One relative DN, `uid=ada`: the type lower-cased, the value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    pub attribute: String,
    pub value: String,
}

/// Parses `dn` into its RDNs, leftmost first. The empty DN is the root.
/// Errors (a sentence) for an RDN without `=`, an empty type or value, a
/// multi-valued RDN (`+`, which Latch never emits) or a bad escape.
pub fn parse(dn: &str) -> Result<Vec<Rdn>, String> {
    if dn.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut rdns = Vec::new();
    for raw in split_unescaped(dn, ',') {
        let Some((attribute, value)) = raw.split_once('=') else {
            return Err(format!("{raw:?} has no '='"));
        };
        if split_unescaped(value, '+').count() > 1 {
            return Err(format!("{raw:?} is a multi-valued RDN"));
        }
        let attribute = attribute.trim().to_ascii_lowercase();
        let value = unescape(trim_value(value))?;
        if attribute.is_empty() || value.is_empty() {
            return Err(format!("{raw:?} lacks a type or a value"));
        }
        if !attribute.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            return Err(format!("{attribute:?} is not an attribute type"));
        }
        rdns.push(Rdn { attribute, value });
    }
    Ok(rdns)
}

/// `dn` in normal form: `uid=ada,ou=people,dc=example,dc=com`.
pub fn normalize(dn: &str) -> Result<String, String> {
    Ok(join(&parse(dn)?))
}

fn join(rdns: &[Rdn]) -> String {
    rdns.iter()
        .map(|rdn| format!("{}={}", rdn.attribute, escape(&rdn.value.to_lowercase())))
        .collect::<Vec<_>>()
        .join(",")
}

/// A configured base DN in normal form; it must name at least one RDN.
pub fn check_base(raw: &str) -> Result<String, String> {
    let rdns = parse(raw)?;
    if rdns.is_empty() {
        return Err("the base DN must not be empty".into());
    }
    Ok(join(&rdns))
}

/// The default base DN for a host: `sso.example.com` gives
/// `dc=sso,dc=example,dc=com`; an IP address or a name that is not a plain
/// DNS name gives `dc=latch`.
pub fn base_for_host(host: &str) -> String {
    let is_name = host.parse::<std::net::IpAddr>().is_err()
        && !host.is_empty()
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !is_name {
        return "dc=latch".into();
    }
    host.to_ascii_lowercase().split('.').map(|label| format!("dc={label}")).collect::<Vec<_>>().join(",")
}

/// Escapes an attribute value for a DN (RFC 4514 §2.4).
pub fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (index, c) in value.chars().enumerate() {
        let edge_space = c == ' ' && (index == 0 || index == last);
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') || edge_space || (c == '#' && index == 0) {
            escaped.push('\\');
            escaped.push(c);
        } else if c == '\0' {
            escaped.push_str("\\00");
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// Splits at `separator`s not escaped by a backslash.
fn split_unescaped(text: &str, separator: char) -> impl Iterator<Item = &str> {
    let mut escaped = false;
    text.split(move |c: char| {
        let split = c == separator && !escaped;
        escaped = c == '\\' && !escaped;
        split
    })
}

/// Drops spaces around a raw value, but not an escaped trailing one.
fn trim_value(value: &str) -> &str {
    let mut value = value.trim_start();
    while let Some(shorter) = value.strip_suffix(' ') {
        if shorter.ends_with('\\') {
            break;
        }
        value = shorter;
    }
    value
}

/// Resolves `\,`-style and `\2c`-style escapes.
fn unescape(value: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte != b'\\' {
            bytes.push(byte);
            rest = tail;
            continue;
        }
        match tail {
            [high, low, after @ ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                let hex = [*high, *low];
                let text = std::str::from_utf8(&hex).map_err(|_| format!("bad escape in {value:?}"))?;
                bytes.push(u8::from_str_radix(text, 16).map_err(|_| format!("bad escape in {value:?}"))?);
                rest = after;
            }
            [escaped, after @ ..] => {
                bytes.push(*escaped);
                rest = after;
            }
            [] => return Err(format!("{value:?} ends in a lone '\\'")),
        }
    }
    String::from_utf8(bytes).map_err(|_| format!("{value:?} is not UTF-8 once unescaped"))
}

/// Where a DN points in Latch's directory, under the base `<base>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The empty DN (RFC 4512 §5.1).
    RootDse,
    /// `cn=Subschema`.
    Subschema,
    Base,
    /// `ou=people,<base>`.
    People,
    /// `ou=groups,<base>`.
    Groups,
    /// `ou=services,<base>`.
    Services,
    /// `uid=<username>,ou=people,<base>`, the username as sent.
    Person(String),
    /// `cn=<group>,ou=groups,<base>`.
    Group(String),
    /// `cn=<account>,ou=services,<base>`.
    Service(String),
    /// Anything else: outside the directory or below its leaves.
    Elsewhere,
}

/// The distinguished names of the directory under one base.
#[derive(Debug, Clone)]
pub struct Tree {
    /// Normal form (`check_base`).
    base: String,
    base_rdns: Vec<Rdn>,
}

pub const SUBSCHEMA_DN: &str = "cn=Subschema";

impl Tree {
    /// `base` must be in normal form (`check_base`).
    pub fn new(base: &str) -> Result<Self, String> {
        let base = check_base(base)?;
        Ok(Self { base_rdns: parse(&base)?, base })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn people(&self) -> String {
        format!("ou=people,{}", self.base)
    }

    pub fn groups(&self) -> String {
        format!("ou=groups,{}", self.base)
    }

    pub fn services(&self) -> String {
        format!("ou=services,{}", self.base)
    }

    pub fn person(&self, username: &str) -> String {
        format!("uid={},{}", escape(username), self.people())
    }

    pub fn group(&self, name: &str) -> String {
        format!("cn={},{}", escape(name), self.groups())
    }

    pub fn service(&self, name: &str) -> String {
        format!("cn={},{}", escape(name), self.services())
    }

    /// Errors: `dn` is not a DN (a sentence saying why).
    pub fn locate(&self, dn: &str) -> Result<Location, String> {
        let rdns = parse(dn)?;
        if rdns.is_empty() {
            return Ok(Location::RootDse);
        }
        if rdns.len() == 1 && rdns[0].attribute == "cn" && rdns[0].value.eq_ignore_ascii_case("subschema") {
            return Ok(Location::Subschema);
        }
        let Some(split) = rdns.len().checked_sub(self.base_rdns.len()) else { return Ok(Location::Elsewhere) };
        let (below, suffix) = rdns.split_at(split);
        let same = |a: &Rdn, b: &Rdn| a.attribute == b.attribute && a.value.to_lowercase() == b.value.to_lowercase();
        if !suffix.iter().zip(&self.base_rdns).all(|(a, b)| same(a, b)) {
            return Ok(Location::Elsewhere);
        }
        let ou = |rdn: &Rdn| (rdn.attribute == "ou").then(|| rdn.value.to_ascii_lowercase());
        Ok(match below {
            [] => Location::Base,
            [unit] => match ou(unit).as_deref() {
                Some("people") => Location::People,
                Some("groups") => Location::Groups,
                Some("services") => Location::Services,
                _ => Location::Elsewhere,
            },
            [leaf, unit] => match (leaf.attribute.as_str(), ou(unit).as_deref()) {
                ("uid", Some("people")) => Location::Person(leaf.value.clone()),
                ("cn", Some("groups")) => Location::Group(leaf.value.clone()),
                ("cn", Some("services")) => Location::Service(leaf.value.clone()),
                _ => Location::Elsewhere,
            },
            _ => Location::Elsewhere,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_in_one_normal_form() {
        assert_eq!(normalize("UID=Ada , OU=People,dc=Example,DC=com").unwrap(), "uid=ada,ou=people,dc=example,dc=com");
        assert_eq!(normalize("cn=a\\,b,ou=groups").unwrap(), "cn=a\\,b,ou=groups");
        assert_eq!(normalize("cn=a\\2cb,ou=groups").unwrap(), "cn=a\\,b,ou=groups");
        assert_eq!(normalize("").unwrap(), "");
        for bad in ["uid", "=x", "uid=", "cn=a\\", "cn=x,,dc=y"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_base_comes_from_the_host() {
        assert_eq!(base_for_host("sso.Example.com"), "dc=sso,dc=example,dc=com");
        assert_eq!(base_for_host("127.0.0.1"), "dc=latch");
        assert_eq!(base_for_host("::1"), "dc=latch");
    }

    #[test]
    fn escaping_round_trips() {
        for value in ["a,b", " lead", "trail ", "#hash", "plus+eq=", "back\\slash", "ümlaut"] {
            let dn = format!("cn={},dc=x", escape(value));
            assert_eq!(parse(&dn).unwrap()[0].value, value, "{dn}");
        }
    }

    #[test]
    fn dns_are_located_in_the_tree() {
        let tree = Tree::new("dc=example,dc=com").unwrap();
        assert_eq!(tree.locate("").unwrap(), Location::RootDse);
        assert_eq!(tree.locate("cn=subschema").unwrap(), Location::Subschema);
        assert_eq!(tree.locate("DC=Example,dc=com").unwrap(), Location::Base);
        assert_eq!(tree.locate("ou=People,dc=example,dc=com").unwrap(), Location::People);
        assert_eq!(tree.locate("uid=Ada,ou=people,dc=example,dc=com").unwrap(), Location::Person("Ada".into()));
        assert_eq!(tree.locate("cn=a\\,b,ou=groups,dc=example,dc=com").unwrap(), Location::Group("a,b".into()));
        assert_eq!(tree.locate("cn=nas,ou=services,dc=example,dc=com").unwrap(), Location::Service("nas".into()));
        assert_eq!(tree.locate("dc=other,dc=com").unwrap(), Location::Elsewhere);
        assert_eq!(tree.locate("uid=a,ou=people,dc=org").unwrap(), Location::Elsewhere);
        assert_eq!(tree.locate("x=1,uid=a,ou=people,dc=example,dc=com").unwrap(), Location::Elsewhere);
        assert_eq!(tree.person("a,b"), "uid=a\\,b,ou=people,dc=example,dc=com");
    }
}
