//! The directory's entries, built from store rows: people, groups, the
//! organizational units, the base, the root DSE and the subschema.

use super::dn::{SUBSCHEMA_DN, Tree};
use super::entry::Entry;
use crate::store::{DirectoryPerson, GroupSummary};

/// RFC 2696 Simple Paged Results.
pub const OID_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
/// RFC 4532 Who am I?
pub const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
/// RFC 4511 §4.14 StartTLS.
pub const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";

/// A person: `inetOrgPerson`, with `cn` the full name (RFC 4519),
/// `givenName`/`sn` split from it at the last space, `memberOf` the DNs of
/// `groups` (the person's groups the reader may see), and `entryUUID` the
/// stable OIDC `sub`.
pub fn person(tree: &Tree, person: &DirectoryPerson, groups: &[&str]) -> Entry {
    let name = person.name.trim();
    let (given, surname) = match name.rsplit_once(' ') {
        Some((given, surname)) => (Some(given.trim()), surname),
        None => (None, name),
    };
    Entry::new(tree.person(&person.username))
        .with("objectClass", strings(&["top", "person", "organizationalPerson", "inetOrgPerson"]))
        .with_one("uid", &person.username)
        .with_one("cn", name)
        .with_one("displayName", name)
        .with("givenName", given.map(str::to_owned).into_iter().collect())
        .with_one("sn", surname)
        .with_one("mail", &person.email)
        .with("memberOf", groups.iter().map(|group| tree.group(group)).collect())
        .operational("entryUUID", vec![person.id.clone()])
        .operational("entryDN", vec![tree.person(&person.username)])
        .operational("subschemaSubentry", vec![SUBSCHEMA_DN.into()])
}

/// A group: `groupOfNames` and `groupOfUniqueNames`, members both ways.
pub fn group(tree: &Tree, group: &GroupSummary) -> Entry {
    let members: Vec<String> = group.members.iter().map(|username| tree.person(username)).collect();
    Entry::new(tree.group(&group.name))
        .with("objectClass", strings(&["top", "groupOfNames", "groupOfUniqueNames"]))
        .with_one("cn", &group.name)
        .with("member", members.clone())
        .with("uniqueMember", members)
        .operational("entryDN", vec![tree.group(&group.name)])
        .operational("subschemaSubentry", vec![SUBSCHEMA_DN.into()])
}

/// `ou=people`, `ou=groups` or `ou=services` under the base.
pub fn unit(tree: &Tree, name: &str) -> Entry {
    let dn = format!("ou={name},{}", tree.base());
    Entry::new(dn.clone())
        .with("objectClass", strings(&["top", "organizationalUnit"]))
        .with_one("ou", name)
        .operational("entryDN", vec![dn])
}

/// The base entry: a `domain` when it is a `dc=`, else an extensible object
/// carrying its naming attribute.
pub fn base(tree: &Tree) -> Entry {
    let (attribute, value) = tree.base().split(',').next().and_then(|rdn| rdn.split_once('=')).unwrap_or(("dc", ""));
    let class = if attribute == "dc" { "domain" } else { "extensibleObject" };
    let naming: &'static str = match attribute {
        "dc" => "dc",
        "o" => "o",
        "ou" => "ou",
        _ => "cn",
    };
    Entry::new(tree.base().to_owned())
        .with("objectClass", strings(&["top", class]))
        .with_one(naming, value)
        .operational("entryDN", vec![tree.base().to_owned()])
}

/// The root DSE (RFC 4512 §5.1): what the server is and supports.
pub fn root_dse(tree: &Tree, starttls: bool) -> Entry {
    let mut extensions = vec![OID_WHOAMI.to_owned()];
    if starttls {
        extensions.push(OID_STARTTLS.to_owned());
    }
    Entry::new(String::new())
        .with_one("objectClass", "top")
        .operational("namingContexts", vec![tree.base().to_owned()])
        .operational("supportedLDAPVersion", vec!["3".into()])
        .operational("supportedControl", vec![OID_PAGED_RESULTS.into()])
        .operational("supportedExtension", extensions)
        .operational("supportedSASLMechanisms", Vec::new())
        .operational("subschemaSubentry", vec![SUBSCHEMA_DN.into()])
        .operational("vendorName", vec!["Latch".into()])
        .operational("vendorVersion", vec![format!("Latch {}", env!("CARGO_PKG_VERSION"))])
}

/// The subschema subentry (RFC 4512 §4.2), describing the attributes and
/// classes the directory uses, enough for clients that read it first.
pub fn subschema() -> Entry {
    Entry::new(SUBSCHEMA_DN.into())
        .with("objectClass", strings(&["top", "subentry", "subschema", "extensibleObject"]))
        .with_one("cn", "Subschema")
        .operational("attributeTypes", strings(ATTRIBUTE_TYPES))
        .operational("objectClasses", strings(OBJECT_CLASSES))
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

/// From RFC 4512, 4519, 4524, 2798, 4530 and draft-howard-rfc2307bis.
const ATTRIBUTE_TYPES: &[&str] = &[
    "( 2.5.4.0 NAME 'objectClass' EQUALITY objectIdentifierMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.38 )",
    "( 2.5.4.3 NAME ( 'cn' 'commonName' ) SUP name )",
    "( 2.5.4.4 NAME ( 'sn' 'surname' ) SUP name )",
    "( 2.5.4.41 NAME 'name' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
    "( 2.5.4.42 NAME ( 'givenName' 'gn' ) SUP name )",
    "( 2.16.840.1.113730.3.1.241 NAME 'displayName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )",
    "( 0.9.2342.19200300.100.1.1 NAME ( 'uid' 'userid' ) EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
    "( 0.9.2342.19200300.100.1.3 NAME ( 'mail' 'rfc822Mailbox' ) EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 )",
    "( 0.9.2342.19200300.100.1.25 NAME ( 'dc' 'domainComponent' ) EQUALITY caseIgnoreIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 SINGLE-VALUE )",
    "( 2.5.4.11 NAME ( 'ou' 'organizationalUnitName' ) SUP name )",
    "( 2.5.4.31 NAME 'member' SUP distinguishedName )",
    "( 2.5.4.50 NAME 'uniqueMember' EQUALITY uniqueMemberMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.34 )",
    "( 2.5.4.49 NAME 'distinguishedName' EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )",
    "( 1.2.840.113556.1.2.102 NAME 'memberOf' EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 NO-USER-MODIFICATION )",
    "( 1.3.6.1.1.16.4 NAME 'entryUUID' EQUALITY UUIDMatch ORDERING UUIDOrderingMatch SYNTAX 1.3.6.1.1.16.1 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )",
    "( 1.3.6.1.1.20 NAME 'entryDN' EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 SINGLE-VALUE NO-USER-MODIFICATION USAGE directoryOperation )",
];

const OBJECT_CLASSES: &[&str] = &[
    "( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )",
    "( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) )",
    "( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL MAY ( ou ) )",
    "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL MAY ( displayName $ givenName $ mail $ uid ) )",
    "( 2.5.6.9 NAME 'groupOfNames' SUP top STRUCTURAL MUST ( member $ cn ) )",
    "( 2.5.6.17 NAME 'groupOfUniqueNames' SUP top STRUCTURAL MUST ( uniqueMember $ cn ) )",
    "( 2.5.6.5 NAME 'organizationalUnit' SUP top STRUCTURAL MUST ou )",
    "( 0.9.2342.19200300.100.4.13 NAME 'domain' SUP top STRUCTURAL MUST dc )",
];
