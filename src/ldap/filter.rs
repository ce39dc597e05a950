//! Search filters (RFC 4511 §4.5.1.7) evaluated over one entry.
//!
//! Every attribute Latch serves has a case-insensitive syntax (directory
//! strings, IA5 strings, DNs, OIDs), so assertions compare lower-cased
//! text; DN-valued attributes (`member`, `memberOf`, …) compare in DN
//! normal form, so `memberOf=CN=Admins,OU=Groups,…` matches.

use ldap3_proto::proto::{LdapFilter, LdapSubstringFilter};

use super::dn;
use super::entry::{Entry, canonical, is_dn_valued};

/// Whether `entry` matches `filter`. An assertion on an attribute the
/// entry lacks is false (and its negation true), as for an absent value.
pub fn matches(filter: &LdapFilter, entry: &Entry) -> bool {
    match filter {
        LdapFilter::And(all) => all.iter().all(|filter| matches(filter, entry)),
        LdapFilter::Or(any) => any.iter().any(|filter| matches(filter, entry)),
        LdapFilter::Not(filter) => !matches(filter, entry),
        LdapFilter::Equality(name, value) | LdapFilter::Approx(name, value) => equals(entry, name, value),
        LdapFilter::Present(name) => entry.get(name).is_some(),
        LdapFilter::Substring(name, parts) => any_value(entry, name, |value| substrings(value, parts)),
        LdapFilter::GreaterOrEqual(name, bound) => any_value(entry, name, |value| value >= bound.to_lowercase()),
        LdapFilter::LessOrEqual(name, bound) => any_value(entry, name, |value| value <= bound.to_lowercase()),
        // `(memberOf:1.2.840.113556.1.4.1941:=cn=…)` (Active Directory's
        // transitive membership, which is plain membership here) and other
        // rules with a type: equality.
        LdapFilter::Extensible(assertion) => {
            assertion.type_.as_deref().is_some_and(|name| equals(entry, name, &assertion.match_value))
        }
    }
}

fn equals(entry: &Entry, name: &str, asserted: &str) -> bool {
    if is_dn_valued(&canonical(name)) {
        let Ok(asserted) = dn::normalize(asserted) else { return false };
        return any_value(entry, name, |value| dn::normalize(&value).is_ok_and(|value| value == asserted));
    }
    let asserted = asserted.to_lowercase();
    any_value(entry, name, |value| value == asserted)
}

/// Whether one of the attribute's values, lower-cased, passes `test`.
fn any_value(entry: &Entry, name: &str, test: impl Fn(String) -> bool) -> bool {
    entry.get(name).is_some_and(|attribute| attribute.values.iter().any(|value| test(value.to_lowercase())))
}

fn substrings(value: String, parts: &LdapSubstringFilter) -> bool {
    let mut rest = value.as_str();
    if let Some(initial) = &parts.initial {
        let Some(after) = rest.strip_prefix(initial.to_lowercase().as_str()) else { return false };
        rest = after;
    }
    for any in &parts.any {
        let any = any.to_lowercase();
        let Some(at) = rest.find(any.as_str()) else { return false };
        rest = &rest[at + any.len()..];
    }
    match &parts.final_ {
        Some(last) => rest.ends_with(last.to_lowercase().as_str()),
        None => true,
    }
}

/// The usernames a filter can only match among, when it says so plainly:
/// `(uid=x)` alone or inside a top-level AND. Lets a search read one row
/// instead of the whole directory.
pub fn only_uid(filter: &LdapFilter) -> Option<&str> {
    match filter {
        LdapFilter::Equality(name, value) if canonical(name) == "uid" => Some(value.as_str()),
        LdapFilter::And(all) => all.iter().find_map(only_uid),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_proto::parse_ldap_filter_str;

    fn ada() -> Entry {
        Entry::new("uid=ada,ou=people,dc=x".into())
            .with("objectClass", vec!["top".into(), "inetOrgPerson".into()])
            .with_one("uid", "ada")
            .with_one("mail", "Ada@Example.com")
            .with_one("cn", "Ada Lovelace")
            .with("memberOf", vec!["cn=admins,ou=groups,dc=x".into()])
    }

    fn check(filter: &str) -> bool {
        matches(&parse_ldap_filter_str(filter).unwrap_or_else(|error| panic!("{filter}: {error:?}")), &ada())
    }

    #[test]
    fn filters_apps_send_match_as_expected() {
        assert!(check("(objectClass=*)"));
        assert!(check("(objectclass=INETORGPERSON)"));
        assert!(check("(&(objectClass=inetOrgPerson)(|(uid=ADA)(mail=ada)))"));
        assert!(check("(mail=ada@example.com)"));
        // The text parser takes no '=' in values; on the wire they are BER.
        let member_of = |dn: &str| LdapFilter::Equality("memberOf".into(), dn.into());
        assert!(matches(&member_of("CN=Admins, OU=Groups,DC=x"), &ada()));
        assert!(!matches(&member_of("cn=users,ou=groups,dc=x"), &ada()));
        let transitive = LdapFilter::Extensible(ldap3_proto::proto::LdapMatchingRuleAssertion {
            matching_rule: Some("1.2.840.113556.1.4.1941".into()),
            type_: Some("memberOf".into()),
            match_value: "cn=admins,ou=groups,dc=x".into(),
            dn_attributes: false,
        });
        assert!(matches(&transitive, &ada()));
        assert!(check("(!(uid=bob))"));
        assert!(!check("(displayName=*)"));
        assert!(check("(cn=ada*)"));
        assert!(check("(cn=*love*)"));
        assert!(check("(cn=*lace)"));
        assert!(check("(cn=a*l*e)"));
        assert!(!check("(cn=*x*)"));
        assert!(!check("(cn=lace*)"));
        assert!(matches(&LdapFilter::Equality("commonName".into(), "ada LOVELACE".into()), &ada()));
    }

    #[test]
    fn a_plain_uid_assertion_narrows_the_read() {
        let filter = parse_ldap_filter_str("(&(objectClass=person)(uid=ada))").unwrap();
        assert_eq!(only_uid(&filter), Some("ada"));
        assert_eq!(only_uid(&parse_ldap_filter_str("(|(uid=ada)(mail=ada))").unwrap()), None);
    }
}
