//! WebFinger (RFC 7033) as OpenID Connect Discovery 1.0 §2 uses it: given
//! a person's e-mail address (`acct:ada@example.com` or
//! `mailto:ada@example.com`), name the issuer that signs them in, so that
//! an app which asks for an address first (Tailscale's custom OIDC) finds
//! Latch. The issuer is that of the one app marked with `latch app
//! add|update <slug> --webfinger`. Only active people's addresses are
//! answered; every other resource is "not found".

use serde::Serialize;

use super::Provider;
use crate::store::StoreError;

/// The link relation of an OpenID Connect issuer (Discovery 1.0 §2).
pub const ISSUER_REL: &str = "http://openid.net/specs/connect/1.0/issuer";

/// Why a query gets no JRD.
#[derive(Debug, thiserror::Error)]
pub enum WebFingerError {
    /// RFC 7033 §4.2: `resource` absent, repeated or malformed (400).
    #[error("{0}")]
    BadRequest(&'static str),
    /// No active person has the address, the resource is not an address,
    /// or no app is marked for WebFinger (404).
    #[error("no information is available about this resource")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A query (RFC 7033 §4.1): the resource and the relations asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebFingerQuery {
    /// As the client sent it, which the answer repeats as its `subject`.
    pub resource: String,
    /// The address the resource names, when it names one (`acct:` or
    /// `mailto:`); `None` for a URI of another scheme.
    pub email: Option<String>,
    /// `rel` parameters; none: every relation.
    pub rels: Vec<String>,
}

impl WebFingerQuery {
    /// Parses the query string (`None`: there was none). Errors:
    /// `BadRequest` without exactly one `resource`, or with one that is not
    /// a URI or is an `acct:`/`mailto:` URI without one address.
    pub fn parse(query: Option<&str>) -> Result<Self, WebFingerError> {
        let mut resource = None;
        let mut rels = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match name.as_ref() {
                "resource" if resource.is_some() => {
                    return Err(WebFingerError::BadRequest("the resource parameter must be given once"));
                }
                "resource" => resource = Some(value.into_owned()),
                "rel" => rels.push(value.into_owned()),
                // RFC 7033 §4.1 leaves room for more parameters.
                _ => {}
            }
        }
        let resource = resource.ok_or(WebFingerError::BadRequest("the resource parameter is required"))?;
        let email = address(&resource)?;
        Ok(Self { resource, email, rels })
    }
}

/// The address an `acct:` (RFC 7565) or `mailto:` (RFC 6068) URI names;
/// `None` for a URI of another scheme.
fn address(resource: &str) -> Result<Option<String>, WebFingerError> {
    let malformed = WebFingerError::BadRequest("the resource is not a URI, e.g. acct:ada@example.com");
    let Some((scheme, rest)) = resource.split_once(':') else { return Err(malformed) };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() || resource.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(malformed);
    }
    if !scheme.eq_ignore_ascii_case("acct") && !scheme.eq_ignore_ascii_case("mailto") {
        return Ok(None);
    }
    let one_address = WebFingerError::BadRequest("an acct: or mailto: resource names one address, user@host");
    // An address has one unencoded `@`; a mailto: with several recipients
    // or header fields (`?subject=`) is not one address.
    let Some((user, host)) = rest.split_once('@') else { return Err(one_address) };
    if user.is_empty() || host.is_empty() || host.contains(['@', ',', '?', '/']) || user.contains([',', '?', '/']) {
        return Err(one_address);
    }
    let decode = |part: &str| percent_encoding::percent_decode_str(part).decode_utf8().map(|text| text.into_owned());
    match (decode(user), decode(host)) {
        (Ok(user), Ok(host)) => Ok(Some(format!("{user}@{host}"))),
        _ => Err(one_address),
    }
}

/// A JSON Resource Descriptor (RFC 7033 §4.4), served as
/// `application/jrd+json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jrd {
    pub subject: String,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub rel: &'static str,
    pub href: String,
}

impl Provider {
    /// The JRD for `query`: its subject and, unless `rel` asks only for
    /// other relations (RFC 7033 §4.3), the issuer link. Errors:
    /// `NotFound` (see `WebFingerError`), `Store`.
    pub async fn webfinger(&self, query: &WebFingerQuery) -> Result<Jrd, WebFingerError> {
        let email = query.email.as_deref().ok_or(WebFingerError::NotFound)?;
        let slug = self.store.webfinger_app_for(email).await?.ok_or(WebFingerError::NotFound)?;
        let wanted = query.rels.is_empty() || query.rels.iter().any(|rel| rel == ISSUER_REL);
        let links = if wanted { vec![Link { rel: ISSUER_REL, href: self.issuer(&slug) }] } else { Vec::new() };
        Ok(Jrd { subject: query.resource.clone(), links })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(query: &str) -> Result<WebFingerQuery, WebFingerError> {
        WebFingerQuery::parse(Some(query))
    }

    #[test]
    fn acct_and_mailto_name_an_address() {
        let query =
            parsed("resource=acct%3Aada%40example.com&rel=http%3A%2F%2Fopenid.net%2Fspecs%2Fconnect%2F1.0%2Fissuer")
                .unwrap();
        assert_eq!(query.resource, "acct:ada@example.com");
        assert_eq!(query.email.as_deref(), Some("ada@example.com"));
        assert_eq!(query.rels, [ISSUER_REL]);
        assert_eq!(parsed("resource=mailto:ada@example.com").unwrap().email.as_deref(), Some("ada@example.com"));
        assert_eq!(parsed("resource=ACCT:ada@example.com").unwrap().email.as_deref(), Some("ada@example.com"));
        // RFC 7565 §7: an `@` inside the user part is percent-encoded.
        let encoded = parsed("resource=acct:ada%2540home%40example.com").unwrap();
        assert_eq!(encoded.email.as_deref(), Some("ada@home@example.com"));
        assert_eq!(parsed("resource=https://example.com/ada").unwrap().email, None, "known only as not found");
    }

    #[test]
    fn a_missing_repeated_or_malformed_resource_is_a_bad_request() {
        for query in [
            "",
            "rel=x",
            "resource=a:b&resource=c:d",
            "resource=ada@example.com",
            "resource=",
            "resource=acct:ada",
            "resource=acct:@example.com",
            "resource=acct:ada@",
            "resource=mailto:a@example.com,b@example.com",
            "resource=mailto:a@example.com?subject=hi",
            "resource=acct:a%20b@example.com%ff",
            "resource=1acct:ada@example.com",
            "resource=acct:ada@exa%0Ample.com%0A",
        ] {
            assert!(matches!(parsed(query), Err(WebFingerError::BadRequest(_))), "{query}");
        }
        assert!(matches!(WebFingerQuery::parse(None), Err(WebFingerError::BadRequest(_))));
    }
}
