//! Directory entries as the LDAP layer builds, filters and sends them.

use ldap3_proto::{LdapPartialAttribute, LdapSearchResultEntry};

/// One attribute: its canonical name (RFC 4519 / 4524 / 2798 spelling),
/// its values, and whether it is operational (sent only for `+` or by
/// name, RFC 4511 §4.5.1.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: &'static str,
    pub values: Vec<String>,
    pub operational: bool,
}

/// An entry: its DN and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub attributes: Vec<Attribute>,
}

/// The attribute a name given by a client means: the canonical name for
/// the aliases RFC 4519 defines (`commonName`, `surname`, `userid`, …),
/// the name lower-cased otherwise.
pub fn canonical(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let known = match lower.as_str() {
        "commonname" | "2.5.4.3" => "cn",
        "surname" | "2.5.4.4" => "sn",
        "userid" | "0.9.2342.19200300.100.1.1" => "uid",
        "rfc822mailbox" | "0.9.2342.19200300.100.1.3" => "mail",
        "gn" => "givenname",
        "2.5.4.0" => "objectclass",
        "organizationalunitname" => "ou",
        "domaincomponent" => "dc",
        _ => return lower,
    };
    known.to_owned()
}

/// Attributes whose values are DNs: they compare in DN normal form.
pub fn is_dn_valued(canonical_name: &str) -> bool {
    matches!(
        canonical_name,
        "member" | "uniquemember" | "memberof" | "entrydn" | "namingcontexts" | "subschemasubentry"
    )
}

impl Entry {
    pub fn new(dn: String) -> Self {
        Self { dn, attributes: Vec::new() }
    }

    /// Adds a user attribute; one with no values is left out.
    pub fn with(mut self, name: &'static str, values: Vec<String>) -> Self {
        if !values.is_empty() {
            self.attributes.push(Attribute { name, values, operational: false });
        }
        self
    }

    pub fn with_one(self, name: &'static str, value: impl Into<String>) -> Self {
        self.with(name, vec![value.into()])
    }

    pub fn operational(mut self, name: &'static str, values: Vec<String>) -> Self {
        if !values.is_empty() {
            self.attributes.push(Attribute { name, values, operational: true });
        }
        self
    }

    /// The attribute a client's name means (`canonical`), if the entry has it.
    pub fn get(&self, name: &str) -> Option<&Attribute> {
        let wanted = canonical(name);
        self.attributes.iter().find(|attribute| attribute.name.eq_ignore_ascii_case(&wanted))
    }

    /// The entry to send for a request's attribute list (RFC 4511
    /// §4.5.1.8): none listed or `*` means every user attribute, `+` every
    /// operational one, `1.1` (alone) none, other names those attributes;
    /// `types_only` sends names without values.
    pub fn into_result(self, requested: &[String], types_only: bool) -> LdapSearchResultEntry {
        let all_user = requested.is_empty() || requested.iter().any(|name| name == "*");
        let all_operational = requested.iter().any(|name| name == "+");
        let named: Vec<String> = requested.iter().map(|name| canonical(name)).collect();
        let attributes = self
            .attributes
            .into_iter()
            .filter(|attribute| {
                let by_kind = if attribute.operational { all_operational } else { all_user };
                by_kind || named.iter().any(|name| name.eq_ignore_ascii_case(attribute.name))
            })
            .map(|attribute| LdapPartialAttribute {
                atype: attribute.name.to_owned(),
                vals: if types_only {
                    Vec::new()
                } else {
                    attribute.values.into_iter().map(String::into_bytes).collect()
                },
            })
            .collect();
        LdapSearchResultEntry { dn: self.dn, attributes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry::new("uid=ada,dc=x".into())
            .with_one("uid", "ada")
            .with_one("cn", "Ada Lovelace")
            .with("memberOf", Vec::new())
            .operational("entryUUID", vec!["0b7e".into()])
    }

    fn names(result: &LdapSearchResultEntry) -> Vec<&str> {
        result.attributes.iter().map(|attribute| attribute.atype.as_str()).collect()
    }

    #[test]
    fn attribute_lists_select_as_rfc_4511_says() {
        assert_eq!(names(&entry().into_result(&[], false)), ["uid", "cn"]);
        assert_eq!(names(&entry().into_result(&["*".into()], false)), ["uid", "cn"]);
        assert_eq!(names(&entry().into_result(&["+".into()], false)), ["entryUUID"]);
        assert_eq!(names(&entry().into_result(&["1.1".into()], false)), Vec::<&str>::new());
        assert_eq!(names(&entry().into_result(&["commonName".into(), "ENTRYUUID".into()], false)), ["cn", "entryUUID"]);
        let typed = entry().into_result(&["uid".into()], true);
        assert!(typed.attributes[0].vals.is_empty());
    }

    #[test]
    fn aliases_find_their_attribute() {
        assert_eq!(entry().get("UserID").map(|attribute| attribute.name), Some("uid"));
        assert!(entry().get("memberOf").is_none(), "no values, no attribute");
    }
}
