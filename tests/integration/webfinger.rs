//! WebFinger issuer discovery (RFC 7033, OpenID Connect Discovery 1.0 §2)
//! over real HTTP: an active person's address, as `acct:` or `mailto:`,
//! names the issuer of the app marked `--webfinger`; anything else is 404,
//! a bad query 400, every answer JSON and readable from any origin.

use reqwest::StatusCode;

use crate::common::{Backend, CALLBACK, PASSWORD, TestApp, header, http};
use crate::on_every_backend;

const ISSUER_REL: &str = "http://openid.net/specs/connect/1.0/issuer";

/// GETs `/.well-known/webfinger` with `query` (already encoded) from
/// another origin; returns the status, the content type and the JSON body,
/// after checking the CORS header RFC 7033 §5 asks for.
async fn webfinger(app: &TestApp, query: &str) -> (StatusCode, String, serde_json::Value) {
    let response = http()
        .get(app.url(&format!("/.well-known/webfinger{query}")))
        .header("Origin", "https://login.tailscale.com")
        .send()
        .await
        .expect("webfinger");
    assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some("*"), "{query}");
    let status = response.status();
    let content_type = header(&response, "content-type").unwrap_or_default();
    (status, content_type, response.json().await.expect("a JSON body"))
}

fn issuer_query(resource: &str) -> String {
    let query = serde_urlencoded::to_string([("resource", resource), ("rel", ISSUER_REL)]).unwrap();
    format!("?{query}")
}

async fn a_known_address_names_the_marked_apps_issuer(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    app.add_user("bob", PASSWORD, &[]).await;
    app.admin(&["user", "disable", "bob"]).await;
    let (status, _, body) = webfinger(&app, &issuer_query("acct:ada@example.com")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no app is marked yet: {body}");

    app.add_app("tailscale", &[CALLBACK], &["--webfinger"]).await;
    for resource in ["acct:ada@example.com", "mailto:ada@example.com", "acct:Ada@Example.COM"] {
        let (status, content_type, body) = webfinger(&app, &issuer_query(resource)).await;
        assert_eq!(status, StatusCode::OK, "{resource}: {body}");
        assert_eq!(content_type, "application/jrd+json");
        let expected = serde_json::json!({
            "subject": resource,
            "links": [{"rel": ISSUER_REL, "href": app.issuer("tailscale")}],
        });
        assert_eq!(body, expected);
    }
    // The issuer it names is a working one.
    let discovery = http().get(format!("{}.well-known/openid-configuration", app.issuer("tailscale"))).send().await;
    assert_eq!(discovery.unwrap().status(), StatusCode::OK);
    // Only other relations asked for: the subject, without links (§4.3).
    let (status, _, body) =
        webfinger(&app, "?resource=acct%3Aada%40example.com&rel=http%3A%2F%2Fwebfinger.net%2Frel%2Favatar").await;
    assert_eq!((status, body["links"].clone()), (StatusCode::OK, serde_json::json!([])));

    // Marking another app moves the mark; unmarking it leaves none.
    app.add_app("other", &[CALLBACK], &[]).await;
    app.admin(&["app", "update", "other", "--webfinger"]).await;
    let (_, _, body) = webfinger(&app, &issuer_query("acct:ada@example.com")).await;
    assert_eq!(body["links"][0]["href"], app.issuer("other").as_str());
    let apps = serde_json::from_str::<serde_json::Value>(&app.admin(&["app", "list", "--json"]).await).unwrap();
    let marked: Vec<&str> = apps
        .as_array()
        .unwrap()
        .iter()
        .filter(|app| app["webfinger"] == true)
        .map(|app| app["slug"].as_str().unwrap())
        .collect();
    assert_eq!(marked, ["other"]);
    app.admin(&["app", "update", "other", "--webfinger=false"]).await;
    let (status, _, _) = webfinger(&app, &issuer_query("acct:ada@example.com")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn unknown_or_disabled_addresses_are_not_found_and_bad_queries_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    app.add_user("bob", PASSWORD, &[]).await;
    app.admin(&["user", "disable", "bob"]).await;
    app.add_app("tailscale", &[CALLBACK], &["--webfinger"]).await;
    for resource in
        ["acct:nobody@example.com", "acct:bob@example.com", "https://example.com/ada", "acct:ada@example.org"]
    {
        let (status, content_type, body) = webfinger(&app, &issuer_query(resource)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{resource}: {body}");
        assert!(content_type.starts_with("application/json"), "{content_type}");
        assert_eq!(body["error"], "not_found", "{body}");
    }
    for query in ["", "?rel=x", "?resource=ada%40example.com", "?resource=acct%3Aada", "?resource=a%3Ab&resource=c%3Ad"]
    {
        let (status, _, body) = webfinger(&app, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"], "invalid_request", "{body}");
        assert!(body["error_description"].as_str().is_some_and(|text| text.contains("resource")), "{body}");
    }
    // A proxy app has no issuer to name.
    let proxy = ["app", "add", "uptime", "--name", "Uptime", "--proxy", "--external-url", "https://uptime.example.com"];
    let refused = app.latch(&[&proxy[..], &["--webfinger"]].concat(), None).await;
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("proxy app"));
    app.admin(&proxy).await;
    let refused = app.latch(&["app", "update", "uptime", "--webfinger"], None).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("proxy app"));
}

on_every_backend!(
    a_known_address_names_the_marked_apps_issuer,
    unknown_or_disabled_addresses_are_not_found_and_bad_queries_refused,
);
