//! `response_mode=form_post` (OAuth 2.0 Form Post Response Mode), as
//! ASP.NET Core apps such as Kavita use it: Latch answers with an HTML form
//! that posts the response to the app. The test parses the page, submits
//! the form to a small relying party of its own, and redeems the code.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::common::{Backend, Browser};
use crate::on_every_backend;
use crate::relying_party::{
    Landing, Rp, attribute, hidden_inputs, http, jwt, open, server, sign_in_on, string, token_ok,
};

type Forms = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// An app's callback endpoint: records every form posted to it.
struct Catcher {
    url: String,
    forms: Forms,
    task: JoinHandle<()>,
}

impl Catcher {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/signin-oidc", listener.local_addr().unwrap());
        let forms: Forms = Arc::default();
        let recorded = forms.clone();
        let router = axum::Router::new().route(
            "/signin-oidc",
            axum::routing::post(move |body: Bytes| {
                let recorded = recorded.clone();
                async move {
                    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).expect("a form");
                    recorded.lock().unwrap().push(pairs);
                    "signed in"
                }
            }),
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("relying party");
        });
        Self { url, forms, task }
    }

    fn last(&self) -> Vec<(String, String)> {
        self.forms.lock().unwrap().last().cloned().expect("the app received a form")
    }
}

impl Drop for Catcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The form of a form_post page: its method, action, and hidden fields.
struct PostedForm {
    method: String,
    action: String,
    fields: Vec<(String, String)>,
}

impl PostedForm {
    fn parse(html: &str) -> Self {
        assert_eq!(html.matches("<form").count(), 1, "one form: {html}");
        let start = html.find("<form").unwrap();
        let tag = &html[start..start + html[start..].find('>').unwrap()];
        let end = html.find("</form>").expect("</form>");
        let form = &html[start..end];
        assert!(form.contains("type=\"submit\""), "a visible button for browsers without JavaScript: {form}");
        Self {
            method: attribute(tag, "method").expect("method").to_lowercase(),
            action: attribute(tag, "action").expect("action"),
            fields: hidden_inputs(form),
        }
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.fields.iter().map(|(name, _)| name.as_str()).collect();
        names.sort();
        names
    }

    /// What the browser does: POST the fields to the action.
    async fn submit(&self) {
        assert_eq!(self.method, "post");
        let response = http().post(&self.action).form(&self.fields).send().await.expect("posting the form");
        assert_eq!(response.status(), StatusCode::OK);
    }
}

/// The form_post page's security headers: no caching, no framing, and a CSP
/// whose only script source is the hash of the page's one inline script.
fn assert_locked_down(headers: &HeaderMap, html: &str) {
    use base64::Engine;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(header("referrer-policy").as_deref(), Some("no-referrer"), "the code must not leak in a Referer");
    assert!(header("location").is_none(), "a form_post answer is a page, not a redirect");
    assert!(header("content-type").unwrap_or_default().starts_with("text/html"));
    let csp = header("content-security-policy").expect("a Content-Security-Policy");
    let directives: Vec<(&str, Vec<&str>)> = csp
        .split(';')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .map(|directive| {
            let mut words = directive.split_whitespace();
            (words.next().unwrap(), words.collect())
        })
        .collect();
    let directive = |name: &str| directives.iter().find(|(key, _)| *key == name).map(|(_, values)| values.clone());
    assert_eq!(directive("default-src"), Some(vec!["'none'"]), "{csp}");
    assert_eq!(directive("frame-ancestors"), Some(vec!["'none'"]), "{csp}");
    let script_sources = directive("script-src").unwrap_or_else(|| panic!("script-src: {csp}"));

    assert!(!html.contains("<script src"), "no external scripts: {html}");
    let scripts: Vec<&str> =
        html.split("<script>").skip(1).map(|rest| &rest[..rest.find("</script>").expect("</script>")]).collect();
    assert_eq!(scripts.len(), 1, "one inline script: {html}");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, scripts[0].as_bytes());
    let hash = format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest));
    assert_eq!(script_sources, vec![hash.as_str()], "script-src allows exactly the page's own script: {csp}");
}

/// A state that needs escaping in HTML.
const STATE: &str = "st\"ate<&>'x";

async fn form_post_page_posts_code_state_and_iss_to_the_app(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let catcher = Catcher::start().await;
    let rp = Rp::register_with(&app, "kavita", &[&catcher.url], &[]).await;
    let mut params = rp.request("openid profile", STATE);
    params.extend([("response_mode".into(), "form_post".into()), ("nonce".into(), "n-1".into())]);
    let browser = Browser::new();

    // Signing in ends on the form page, not a redirect.
    let Landing::Login(html) = open(&browser, &app.base, &rp.authorize_url(&params)).await else {
        panic!("sign in first");
    };
    let Landing::Page(status, html) = sign_in_on(&browser, &app.base, &html, "ada").await else {
        panic!("form_post answers with a page");
    };
    assert_eq!(status, StatusCode::OK);
    let form = PostedForm::parse(&html);
    assert_eq!(form.action, catcher.url);
    assert_eq!(form.names(), vec!["code", "iss", "state"]);
    assert_eq!(form.field("state"), Some(STATE), "state survives HTML escaping exactly");
    assert_eq!(form.field("iss"), Some(rp.issuer.as_str()));
    form.submit().await;
    let received = catcher.last();
    assert_eq!(received, form.fields, "the app receives exactly the form's fields");
    let code = form.field("code").unwrap();
    let tokens = token_ok(rp.redeem(code).await).await;
    assert_eq!(jwt(string(&tokens, "id_token"), 1)["nonce"], "n-1");

    // Signed in: the same answer at once, and its headers.
    let response = browser.client.get(rp.authorize_url(&params)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    assert_locked_down(&headers, &html);
    let form = PostedForm::parse(&html);
    assert_ne!(form.field("code"), Some(code), "a new code");
    form.submit().await;
    let received = catcher.last();
    let code = received.iter().find(|(name, _)| name == "code").map(|(_, code)| code).expect("a code");
    token_ok(rp.redeem(code).await).await;
}

async fn errors_in_form_post_mode_come_back_as_a_form(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let catcher = Catcher::start().await;
    let rp = Rp::register_with(&app, "kavita", &[&catcher.url], &[]).await;
    let mut params = rp.request("openid", STATE);
    params.extend([("response_mode".into(), "form_post".into()), ("prompt".into(), "none".into())]);

    let response = Browser::new().client.get(rp.authorize_url(&params)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    assert_locked_down(&headers, &html);
    let form = PostedForm::parse(&html);
    assert_eq!(form.action, catcher.url);
    assert_eq!(form.field("error"), Some("login_required"));
    assert_eq!(form.field("state"), Some(STATE));
    assert_eq!(form.field("iss"), Some(rp.issuer.as_str()));
    assert_eq!(form.field("code"), None);
    form.submit().await;
    assert!(catcher.last().iter().any(|(name, value)| name == "error" && value == "login_required"));
}

async fn unsupported_response_mode_is_an_error(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let mut params = rp.request("openid", "s");
    params.push(("response_mode".into(), "fragment".into()));
    rp.assert_error(&rp.authorize_once(&Browser::new(), &params).await, "invalid_request", "s");
}

on_every_backend!(
    form_post_page_posts_code_state_and_iss_to_the_app,
    errors_in_form_post_mode_come_back_as_a_form,
    unsupported_response_mode_is_an_error,
);
