//! The protocol's closed sets of values, as far as Latch supports them. Each
//! `ALL` is exactly what works: discovery publishes it, and a value outside
//! it is refused by name. Registries: RFC 6749 §4–§6 and the OAuth
//! parameters registry, OAuth 2.0 Multiple Response Type Encoding Practices
//! and Form Post Response Mode, OIDC Core §3.1.2.1 and §5.4, RFC 7636 §4.3,
//! RFC 7009 §2.1.

use crate::canonical::canonical_enum;

canonical_enum! {
    /// `grant_type` at the token endpoint (RFC 6749 §4.1.3, §4.4.2, §6).
    pub enum GrantType ("grant_type") {
        AuthorizationCode = "authorization_code",
        RefreshToken = "refresh_token",
        ClientCredentials = "client_credentials",
        /// RFC 8628 §3.4, for the apps that enable it.
        DeviceCode = "urn:ietf:params:oauth:grant-type:device_code",
    }
}

canonical_enum! {
    /// Authentication context classes (`acr`, `acr_values`; OIDC Core §2,
    /// §3.1.2.1). OIDC Core §2 asks for absolute URIs or RFC 6711 names, and
    /// no registered name means "a password" or "a second factor", so Latch
    /// names its two classes with URNs of its own. Every ID token carries
    /// the class its sign-in reached; an authorization request whose
    /// `acr_values` lists `Mfa` is answered only after a second factor.
    pub enum Acr ("acr") {
        /// One factor: a password.
        Password = "urn:latch:acr:password",
        /// Two factors: a password and a second factor (amr `mfa`).
        Mfa = "urn:latch:acr:mfa",
    }
}

impl Acr {
    /// The class a sign-in with these RFC 8176 methods (space-separated) reached.
    pub fn of_amr(amr: &str) -> Self {
        if crate::login::flow::has_mfa(amr) { Self::Mfa } else { Self::Password }
    }
}

canonical_enum! {
    /// `response_type` at the authorization endpoint: the code flow only.
    pub enum ResponseType ("response_type") {
        Code = "code",
    }
}

canonical_enum! {
    /// `response_mode`: how the authorization response reaches the app.
    /// `query` is the default for the code flow.
    pub enum ResponseMode ("response_mode") {
        Query = "query",
        FormPost = "form_post",
    }
}

canonical_enum! {
    /// `prompt` values (OIDC Core §3.1.2.1); the parameter is a
    /// space-separated list of them.
    pub enum Prompt ("prompt") {
        None = "none",
        Login = "login",
        Consent = "consent",
    }
}

canonical_enum! {
    /// `code_challenge_method` (RFC 7636 §4.3). `plain` is left out on
    /// purpose: it protects nothing against an attacker who reads the
    /// authorization request (RFC 9700 §2.1.1).
    pub enum CodeChallengeMethod ("code_challenge_method") {
        S256 = "S256",
    }
}

canonical_enum! {
    /// The kinds of token Latch issues that a client can present back, as
    /// `token_type_hint` (RFC 7009 §2.1) and introspection's `token_type`
    /// spell them.
    pub enum TokenKind ("token_type_hint") {
        AccessToken = "access_token",
        RefreshToken = "refresh_token",
    }
}

canonical_enum! {
    /// How a client authenticates at the token, revocation and
    /// introspection endpoints (RFC 6749 §2.3, OIDC Core §9). `none` is a
    /// public client, which proves possession with PKCE instead.
    pub enum ClientAuthMethod ("client authentication method") {
        ClientSecretBasic = "client_secret_basic",
        ClientSecretPost = "client_secret_post",
        None = "none",
    }
}

impl ClientAuthMethod {
    /// Introspection answers only clients that can prove who they are.
    pub const WITH_SECRET: &'static [Self] = &[Self::ClientSecretBasic, Self::ClientSecretPost];
}

canonical_enum! {
    /// The scopes Latch knows, in the order granted scopes are listed.
    /// `groups` is the scope Authelia, Pocket ID, Dex and Kanidm release the
    /// `groups` claim for, so apps set up for them get their groups here too.
    pub enum Scope ("scope") {
        OpenId = "openid",
        Profile = "profile",
        Email = "email",
        Groups = "groups",
        OfflineAccess = "offline_access",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_are_the_registered_ones() {
        assert_eq!(
            GrantType::NAMES,
            [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:device_code"
            ]
        );
        assert_eq!("refresh_token".parse(), Ok(GrantType::RefreshToken));
        assert_eq!("form_post".parse(), Ok(ResponseMode::FormPost));
        assert_eq!("S256".parse(), Ok(CodeChallengeMethod::S256));
        assert_eq!("access_token".parse(), Ok(TokenKind::AccessToken));
        assert_eq!(ClientAuthMethod::None.as_str(), "none");
        assert_eq!(Scope::OfflineAccess.as_str(), "offline_access");
    }

    #[test]
    fn unsupported_values_are_refused_by_name() {
        let error = "password".parse::<GrantType>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "grant_type password is not supported; use authorization_code, refresh_token, client_credentials or \
             urn:ietf:params:oauth:grant-type:device_code"
        );
        for plain in ["plain", "s256"] {
            assert!(plain.parse::<CodeChallengeMethod>().is_err(), "{plain}");
        }
        assert!("fragment".parse::<ResponseMode>().is_err());
        assert!("token".parse::<ResponseType>().is_err());
        assert!("select_account".parse::<Prompt>().is_err());
        assert!("id_token".parse::<TokenKind>().is_err());
    }
}
