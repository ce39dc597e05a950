//! Scopes and the claims each one releases.

use serde_json::{Map, Value, json};

use super::values::Scope;
use crate::store::UserClaims;

/// What granting `scope` hands the app, as the consent page says it.
pub fn scope_description(scope: Scope) -> &'static str {
    match scope {
        Scope::OpenId => "Your account identifier",
        Scope::Profile => "Your name, username and groups",
        Scope::Email => "Your email address",
        Scope::Groups => "The groups you belong to",
        Scope::OfflineAccess => "Access while you are away (it stays signed in)",
    }
}

pub const SUPPORTED_CLAIMS: [&str; 20] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "amr",
    "acr",
    "nonce",
    "at_hash",
    "azp",
    "sid",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "nickname",
    "groups",
    "email",
    "email_verified",
];

/// The known scopes in a space-separated `scope`, each once, in canonical
/// order; unknown ones are ignored, not fatal (RFC 6749 §3.3).
pub fn known_scopes(scope: &str) -> Vec<Scope> {
    Scope::ALL.iter().copied().filter(|known| has_scope(scope, *known)).collect()
}

/// The granted subset of a requested `scope`, as `known_scopes` spelled out.
pub fn granted_scope(requested: &str) -> String {
    known_scopes(requested).iter().map(|scope| scope.as_str()).collect::<Vec<_>>().join(" ")
}

/// Whether the space-separated `scope` names `wanted`.
pub fn has_scope(scope: &str, wanted: Scope) -> bool {
    scope.split(' ').any(|granted| granted == wanted.as_str())
}

/// `sub` plus what `scope` allows. Groups travel with `groups`, and with
/// `profile` as in Authentik, so apps set up for either provider get them.
pub fn user_claims(user: &UserClaims, scope: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id));
    if has_scope(scope, Scope::Profile) {
        let (given, family) = user.name.split_once(' ').unwrap_or((&user.name, ""));
        claims.insert("name".into(), json!(user.name));
        claims.insert("given_name".into(), json!(given));
        if !family.is_empty() {
            claims.insert("family_name".into(), json!(family));
        }
        claims.insert("preferred_username".into(), json!(user.username));
        claims.insert("nickname".into(), json!(user.username));
    }
    if has_scope(scope, Scope::Profile) || has_scope(scope, Scope::Groups) {
        claims.insert("groups".into(), json!(user.groups));
    }
    if has_scope(scope, Scope::Email) {
        claims.insert("email".into(), json!(user.email));
        // Addresses are entered by the administrator, who vouches for them.
        claims.insert("email_verified".into(), json!(true));
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_scopes_are_dropped_and_order_is_canonical() {
        assert_eq!(granted_scope("email  openid foo profile email"), "openid profile email");
        assert_eq!(granted_scope("offline_access openid"), "openid offline_access");
        assert_eq!(granted_scope("foo"), "");
        assert_eq!(granted_scope("openid email groups"), "openid email groups");
    }

    #[test]
    fn claims_follow_scopes() {
        let user = UserClaims {
            id: "u1".into(),
            username: "ada".into(),
            email: "ada@example.com".into(),
            name: "Ada Lovelace".into(),
            groups: vec!["admins".into()],
        };
        let only_openid = user_claims(&user, "openid");
        assert_eq!(only_openid.len(), 1);
        let all = user_claims(&user, "openid profile email");
        assert_eq!(all["given_name"], "Ada");
        assert_eq!(all["family_name"], "Lovelace");
        assert_eq!(all["groups"], json!(["admins"]));
        assert_eq!(all["email_verified"], true);
        let groups_only = user_claims(&user, "openid groups");
        assert_eq!(groups_only.keys().collect::<Vec<_>>(), ["groups", "sub"]);
        assert_eq!(groups_only["groups"], json!(["admins"]));
    }

    #[test]
    fn known_scopes_ignore_unknown_and_repeated_ones() {
        assert_eq!(known_scopes("groups foo openid groups"), [Scope::OpenId, Scope::Groups]);
        assert!(known_scopes("").is_empty());
    }
}
