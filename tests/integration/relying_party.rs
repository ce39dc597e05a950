//! What the tests of refresh, revocation, introspection, logout, prompts,
//! consent, form_post, key rotation and client credentials share: a
//! registered app seen as its backend sees it (the requests it makes and
//! the answers it checks), a browser that says where Latch left it, and an
//! `openidconnect` client that knows every endpoint discovery advertises.

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, ClientSecret, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IntrospectionUrl, IssuerUrl, ProviderMetadata, RedirectUrl, RevocationUrl,
};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::common::{
    AppCredentials, Backend, Browser, TestApp, absolute, location, poll_until, query_param, unescape_html,
};
pub use crate::common::{CALLBACK, PASSWORD, header, http, jwt_part as jwt, token_error};

/// A server with two users, `ada` and `grace`, and no apps yet.
pub async fn server(backend: Backend) -> Option<TestApp> {
    let app = TestApp::spawn(backend).await?;
    app.add_user("ada", PASSWORD, &[]).await;
    app.add_user("grace", PASSWORD, &[]).await;
    Some(app)
}

/// The endpoints discovery advertises beyond what `openidconnect` parses.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct MoreEndpoints {
    pub revocation_endpoint: Option<RevocationUrl>,
    pub introspection_endpoint: Option<IntrospectionUrl>,
    pub end_session_endpoint: Option<EndSessionUrl>,
}
impl AdditionalProviderMetadata for MoreEndpoints {}

pub type Metadata = ProviderMetadata<
    MoreEndpoints,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// A client with the authorization, token, userinfo, revocation and
/// introspection endpoints of discovery.
pub type Client = CoreClient<EndpointSet, EndpointNotSet, EndpointSet, EndpointSet, EndpointMaybeSet, EndpointMaybeSet>;

/// One registered app, as its operator and its backend know it.
pub struct Rp {
    pub base: String,
    pub credentials: AppCredentials,
    /// The redirect URI requests use: the first one registered.
    pub redirect_uri: String,
    /// The discovery document, fetched once at registration.
    pub discovery: serde_json::Value,
    /// `issuer` from discovery: what every authorization response's `iss` must be.
    pub issuer: String,
}

impl Rp {
    /// `latch app add <slug> --redirect-uri CALLBACK <extra…>`, then discovery.
    pub async fn register(app: &TestApp, slug: &str, extra: &[&str]) -> Rp {
        Self::register_with(app, slug, &[CALLBACK], extra).await
    }

    pub async fn register_with(app: &TestApp, slug: &str, redirect_uris: &[&str], extra: &[&str]) -> Rp {
        let credentials = app.add_app(slug, redirect_uris, extra).await;
        let response = http().get(&credentials.discovery_url).send().await.expect("discovery");
        assert_eq!(response.status(), StatusCode::OK, "discovery of {slug}");
        let discovery: serde_json::Value = response.json().await.expect("discovery JSON");
        let issuer = discovery["issuer"].as_str().expect("issuer").to_owned();
        assert_eq!(issuer, credentials.issuer, "app add and discovery disagree on the issuer");
        let redirect_uri = redirect_uris.first().expect("a redirect URI").to_string();
        Rp { base: app.base.clone(), credentials, redirect_uri, discovery, issuer }
    }

    pub fn client_id(&self) -> &str {
        &self.credentials.client_id
    }

    fn secret(&self) -> &str {
        self.credentials.client_secret.as_deref().expect("a confidential app")
    }

    pub fn endpoint(&self, field: &str) -> String {
        self.discovery[field].as_str().unwrap_or_else(|| panic!("discovery has no {field}")).to_owned()
    }

    /// The parameters of a code request to the redirect URI.
    pub fn request(&self, scope: &str, state: &str) -> Vec<(String, String)> {
        [
            ("response_type", "code"),
            ("client_id", self.client_id()),
            ("redirect_uri", &self.redirect_uri),
            ("scope", scope),
            ("state", state),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    }

    /// The authorization endpoint of discovery with `params` as its query.
    pub fn authorize_url(&self, params: &[(String, String)]) -> String {
        let mut url = url::Url::parse(&self.endpoint("authorization_endpoint")).expect("authorization_endpoint");
        url.query_pairs_mut().extend_pairs(params);
        url.into()
    }

    /// Checks a redirect back to the app: to the redirect URI, with `iss`
    /// equal to the discovered issuer (RFC 9207), and returns it.
    pub fn callback(&self, location: &str) -> url::Url {
        let url = url::Url::parse(location).unwrap_or_else(|error| panic!("Location {location:?}: {error}"));
        let expected = format!("{}?", self.redirect_uri);
        assert!(url.as_str().starts_with(&expected), "expected a redirect to the app, got {url}");
        assert_eq!(query_param(&url, "iss").as_deref(), Some(self.issuer.as_str()), "iss of {url}");
        url
    }

    /// Runs `params` in `browser`, signing in as `username` if Latch asks,
    /// and returns the code of the callback.
    pub async fn code(&self, browser: &Browser, params: &[(String, String)], username: &str) -> String {
        let callback = browser.authorize(&self.base, &self.authorize_url(params), username, PASSWORD).await;
        let callback = self.callback(callback.as_str());
        if let Some(state) = params.iter().find(|(name, _)| name == "state") {
            assert_eq!(query_param(&callback, "state").as_deref(), Some(state.1.as_str()), "{callback}");
        }
        query_param(&callback, "code").unwrap_or_else(|| panic!("no code in {callback}"))
    }

    /// Signs `username` in with `scope` and redeems the code: the token response.
    pub async fn tokens(&self, browser: &Browser, scope: &str, username: &str) -> serde_json::Value {
        let code = self.code(browser, &self.request(scope, "state-1"), username).await;
        token_ok(self.redeem(&code).await).await
    }

    /// One authorization request answered without following anything: what
    /// a request that must not show a page gets.
    pub async fn authorize_once(&self, browser: &Browser, params: &[(String, String)]) -> reqwest::Response {
        browser.client.get(self.authorize_url(params)).send().await.expect("authorize")
    }

    /// The code of an authorization request that must answer at once with
    /// a redirect to the app (no login page, no consent page).
    pub async fn silent_code(&self, browser: &Browser, params: &[(String, String)]) -> String {
        let response = self.authorize_once(browser, params).await;
        let status = response.status();
        let target = location(&response).unwrap_or_default();
        assert!(status.is_redirection(), "expected an immediate redirect to the app, got {status} to {target:?}");
        let callback = self.callback(&target);
        query_param(&callback, "code").unwrap_or_else(|| panic!("no code in {callback}"))
    }

    /// Asserts an authorization error redirect: `error`, a description, the
    /// `state` sent, `iss`, and no `code`.
    pub fn assert_error(&self, response: &reqwest::Response, error: &str, state: &str) {
        let status = response.status();
        assert!(status.is_redirection(), "expected an error redirect, got {status}");
        let callback = self.callback(&location(response).expect("Location"));
        assert_eq!(query_param(&callback, "error").as_deref(), Some(error), "{callback}");
        assert!(query_param(&callback, "error_description").is_some_and(|text| !text.is_empty()), "{callback}");
        assert_eq!(query_param(&callback, "state").as_deref(), Some(state), "{callback}");
        assert_eq!(query_param(&callback, "code"), None, "an error carries no code: {callback}");
    }

    /// POSTs `form` to the token endpoint with `client_secret_basic`.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> reqwest::Response {
        http()
            .post(self.endpoint("token_endpoint"))
            .basic_auth(self.client_id(), Some(self.secret()))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    pub async fn redeem(&self, code: &str) -> reqwest::Response {
        let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", &self.redirect_uri)];
        self.token_request(&form).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    /// RFC 7009 with `client_secret_basic`, raw.
    pub async fn revoke(&self, token: &str, hint: Option<&str>) -> reqwest::Response {
        let mut form = vec![("token", token)];
        form.extend(hint.map(|hint| ("token_type_hint", hint)));
        http()
            .post(self.endpoint("revocation_endpoint"))
            .basic_auth(self.client_id(), Some(self.secret()))
            .form(&form)
            .send()
            .await
            .expect("revocation request")
    }

    /// RFC 7662 with `client_secret_basic`, raw: 200, no-store, JSON.
    pub async fn introspect(&self, token: &str) -> serde_json::Value {
        let response = http()
            .post(self.endpoint("introspection_endpoint"))
            .basic_auth(self.client_id(), Some(self.secret()))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspection request");
        let status = response.status();
        let cache_control = header(&response, "cache-control");
        let text = response.text().await.expect("body");
        assert_eq!(status, StatusCode::OK, "introspection: {text}");
        assert_eq!(cache_control.as_deref(), Some("no-store"), "introspection answers must not be cached");
        serde_json::from_str(&text).expect("introspection JSON")
    }

    /// Asserts the introspection answer is exactly `{"active":false}`.
    pub async fn assert_inactive(&self, token: &str, what: &str) {
        let answer = self.introspect(token).await;
        assert_eq!(answer, serde_json::json!({"active": false}), "{what}: exactly {{\"active\":false}}");
    }

    /// An `openidconnect` client built from discovery (which fetches the
    /// JWKS, once, now), with revocation and introspection set from it.
    pub async fn client(&self) -> Client {
        let metadata = self.metadata().await;
        self.client_from(metadata)
    }

    pub async fn metadata(&self) -> Metadata {
        Metadata::discover_async(IssuerUrl::new(self.issuer.clone()).expect("issuer"), &http())
            .await
            .expect("openidconnect discovery")
    }

    pub fn client_from(&self, metadata: Metadata) -> Client {
        let more = metadata.additional_metadata().clone();
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.client_id().to_owned()),
            self.credentials.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).expect("redirect"))
        .set_revocation_url(more.revocation_endpoint.expect("discovery advertises revocation_endpoint"))
        .set_introspection_url(more.introspection_endpoint.expect("discovery advertises introspection_endpoint"))
    }
}

/// A successful token response (RFC 6749 §5.1): what `common::token_ok`
/// checks, plus JSON content type, `token_type` Bearer and `expires_in` in
/// (0, 31536000].
pub async fn token_ok(response: reqwest::Response) -> serde_json::Value {
    let content_type = header(&response, "content-type").unwrap_or_default();
    let body = crate::common::token_ok(response).await;
    assert!(content_type.starts_with("application/json"), "content type {content_type:?}");
    assert!(body["token_type"].as_str().is_some_and(|kind| kind.eq_ignore_ascii_case("bearer")), "{body}");
    let expires_in = body["expires_in"].as_i64().unwrap_or_else(|| panic!("expires_in must be a number: {body}"));
    assert!((1..=31_536_000).contains(&expires_in), "{body}");
    body
}

pub fn string<'a>(value: &'a serde_json::Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_else(|| panic!("{field} missing in {value}"))
}

/// The status UserInfo answers for `access_token` (GET, Bearer).
pub async fn userinfo_status(rp: &Rp, access_token: &str) -> StatusCode {
    http().get(rp.endpoint("userinfo_endpoint")).bearer_auth(access_token).send().await.expect("userinfo").status()
}

/// Where a browser ended up after following Latch's own redirects.
#[derive(Debug)]
pub enum Landing {
    /// The sign-in page (it asks for the password).
    Login(String),
    /// The consent page.
    Consent(String),
    /// A redirect away from Latch, to the app.
    App(url::Url),
    /// Any other page.
    Page(StatusCode, String),
}

impl Landing {
    pub fn is_login(&self) -> bool {
        matches!(self, Landing::Login(_))
    }
}

/// Opens `url` in `browser`, following redirects that stay on Latch.
pub async fn open(browser: &Browser, base: &str, url: &str) -> Landing {
    let response = browser.visit(base, url).await;
    landing(base, response).await
}

async fn landing(base: &str, response: reqwest::Response) -> Landing {
    let status = response.status();
    if status.is_redirection() {
        let target = absolute(base, &location(&response).expect("Location"));
        return Landing::App(url::Url::parse(&target).expect("absolute redirect"));
    }
    let html = response.text().await.expect("page");
    if status == StatusCode::OK && html.contains("type=\"password\"") && html.contains("action=\"/login\"") {
        Landing::Login(html)
    } else if status == StatusCode::OK && html.contains("name=\"latch_consent\"") {
        Landing::Consent(html)
    } else {
        Landing::Page(status, html)
    }
}

/// Submits the login form of `html` and follows Latch's redirects from there.
pub async fn sign_in_on(browser: &Browser, base: &str, html: &str, username: &str) -> Landing {
    let response = browser.submit_login(base, "", html, username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "sign-in as {username} should succeed");
    let next = absolute(base, &location(&response).expect("Location"));
    open(browser, base, &next).await
}

/// Answers Latch's "Sign out?" page as the person would: posts its form back
/// to `end_session` with the confirmation.
pub async fn confirm_sign_out(
    client: &reqwest::Client,
    end_session: &str,
    page: reqwest::Response,
) -> reqwest::Response {
    assert_eq!(page.status(), StatusCode::OK, "the sign-out confirmation page");
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign out?") && html.contains("latch_logout"), "{html}");
    let mut form = hidden_inputs(&html);
    form.push(("latch_logout".into(), "yes".into()));
    client.post(end_session).form(&form).send().await.unwrap()
}

/// Every `<input type="hidden" name="…" value="…">` of a page, in order, unescaped.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut inputs = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<input type=\"hidden\"") {
        rest = &rest[start..];
        let end = rest.find('>').expect("end of input");
        let tag = &rest[..end];
        if let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value")) {
            inputs.push((name, value));
        }
        rest = &rest[end..];
    }
    inputs
}

/// The unescaped value of `name="…"` in one tag.
pub fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape_html(&tag[start..end]))
}

/// The `Set-Cookie`-free way to carry one cookie: a client that sends
/// `Cookie: name=value` on every request and follows no redirects.
pub fn client_with_cookie(cookie: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie.parse().expect("cookie header"));
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `name=value` of the cookie `name` a response sets, if any.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Waits (up to 3 s) until the JWKS publishes a key of `alg`. A key created
/// by `app add --signing-alg` reaches the server on its next key refresh.
pub async fn wait_for_alg(rp: &Rp, alg: &str) {
    let published = poll_until(std::time::Duration::from_secs(3), async || {
        let jwks: serde_json::Value =
            http().get(rp.endpoint("jwks_uri")).send().await.expect("jwks").json().await.expect("JWKS JSON");
        jwks["keys"].as_array().is_some_and(|keys| keys.iter().any(|key| key["alg"] == alg)).then_some(())
    });
    assert!(published.await.is_some(), "no {alg} key published within 3 s");
}

/// A token request of a public client: `client_id` in the body, no secret.
pub async fn public_token(app: &TestApp, client_id: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let mut form = form.to_vec();
    form.push(("client_id", client_id));
    http().post(app.url("/application/o/token/")).form(&form).send().await.expect("token request")
}

/// A public client's sign-in with PKCE (S256) to CALLBACK: the token response.
pub async fn public_tokens(app: &TestApp, client_id: &str, scope: &str, username: &str) -> serde_json::Value {
    use base64::Engine;
    let verifier = random_verifier();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    let params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("scope", scope),
        ("state", "p"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let url = format!("{}/application/o/authorize/?{}", app.base, serde_urlencoded::to_string(params).unwrap());
    let callback = Browser::new().authorize(&app.base, &url, username, PASSWORD).await;
    let code = query_param(&callback, "code").expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier.as_str()),
    ];
    token_ok(public_token(app, client_id, &form).await).await
}

/// 43 unreserved characters from a fresh UUID pair: a PKCE verifier.
pub fn random_verifier() -> String {
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    verifier[..43].to_owned()
}
