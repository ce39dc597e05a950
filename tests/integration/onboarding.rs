//! One-time links and the account portal over HTTP: invites and
//! password-reset links work once and say clearly when used or expired;
//! changing a password from the portal ends the person's other sessions;
//! a session is signed out from another; the launcher lists what the
//! access rule allows; first-run setup makes the first administrator.

use reqwest::StatusCode;

use crate::common::{Backend, Browser, PASSWORD, TestApp, hidden_input, location};
use crate::on_every_backend;

on_every_backend!(
    an_invite_sets_the_first_password_once_and_signs_in,
    used_expired_and_unknown_links_say_so,
    a_reset_link_ends_the_sessions_it_replaces,
    changing_the_password_ends_the_other_sessions_only,
    a_session_is_signed_out_from_another,
    the_launcher_lists_the_apps_the_person_may_use,
    first_run_setup_makes_one_administrator,
    a_stale_sign_in_proves_the_password_again,
);

/// `latch user invite … --json`: the link.
async fn invite(app: &TestApp, username: &str, extra: &[&str]) -> String {
    let email = format!("{username}@example.com");
    let mut args = vec!["user", "invite", username, "--email", &email, "--json"];
    args.extend(extra);
    let printed: serde_json::Value = serde_json::from_str(&app.admin(&args).await).expect("--json prints JSON");
    printed["url"].as_str().expect("url").to_owned()
}

/// Opens a link's page and posts `password` twice (or `again` as the second).
pub async fn choose(browser: &Browser, url: &str, password: &str, again: &str) -> reqwest::Response {
    let page = browser.client.get(url).send().await.expect("link page");
    assert_eq!(page.status(), StatusCode::OK, "{url}");
    let html = page.text().await.expect("page");
    let csrf = hidden_input(&html, "csrf_token").expect("csrf_token");
    let form = [("csrf_token", csrf.as_str()), ("password", password), ("password_again", again)];
    browser.client.post(url).form(&form).send().await.expect("post")
}

/// `GET /account`: the page's HTML, or `None` when it sends the browser to sign in.
async fn portal(browser: &Browser, app: &TestApp) -> Option<String> {
    portal_page(browser, app, "/account").await
}

/// A page of the portal, or `None` when it sends the browser to sign in.
async fn portal_page(browser: &Browser, app: &TestApp, path: &str) -> Option<String> {
    let response = browser.client.get(app.url(path)).send().await.expect("portal");
    if response.status() == StatusCode::SEE_OTHER {
        let to = location(&response).unwrap_or_default();
        assert!(to.starts_with("/login?"), "{to}");
        return None;
    }
    assert_eq!(response.status(), StatusCode::OK);
    Some(response.text().await.expect("page"))
}

/// Posts a portal form at `path` with `fields`, the CSRF token taken from the portal.
async fn post_portal(browser: &Browser, app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let html = portal(browser, app).await.expect("signed in");
    let csrf = hidden_input(&html, "csrf_token").expect("csrf_token");
    let mut form = vec![("csrf_token", csrf.as_str())];
    form.extend_from_slice(fields);
    browser.client.post(app.url(path)).form(&form).send().await.expect("post")
}

async fn signed_in(app: &TestApp, username: &str, password: &str) -> Browser {
    let browser = Browser::new();
    let answer = browser.sign_in(&app.base, username, password).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{username} signs in");
    browser
}

async fn an_invite_sets_the_first_password_once_and_signs_in(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.admin(&["group", "add", "family"]).await;
    let url = invite(&app, "bob", &["--name", "Bob Builder", "--group", "family"]).await;
    assert!(url.starts_with(&app.url("/invite/")), "{url}");

    // Pending: no password signs in yet.
    let before = Browser::new().sign_in(&app.base, "bob", "!pending").await;
    assert_eq!(before.status(), StatusCode::UNAUTHORIZED);

    let browser = Browser::new();
    let differ = choose(&browser, &url, PASSWORD, "something else entirely").await;
    assert_eq!(differ.status(), StatusCode::BAD_REQUEST);
    assert!(differ.text().await.unwrap().contains("The two passwords differ."));
    let short = choose(&browser, &url, "short", "short").await;
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    let accepted = choose(&browser, &url, PASSWORD, PASSWORD).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&accepted).as_deref(), Some("/account"));
    let html = portal(&browser, &app).await.expect("signed in after the invite");
    assert!(html.contains("Hello, Bob Builder"), "{html}");

    // The link is spent; the password works at the sign-in form.
    let again = browser.client.get(&url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.unwrap().contains("already used"));
    signed_in(&app, "bob", PASSWORD).await;
    let users: serde_json::Value = serde_json::from_str(&app.admin(&["user", "list", "--json"]).await).unwrap();
    let bob = users.as_array().unwrap().iter().find(|user| user["username"] == "bob").expect("bob").clone();
    assert_eq!(bob["groups"], serde_json::json!(["family"]));
    let events = app.admin(&["events", "--user", "bob"]).await;
    assert!(events.contains("user_invited") && events.contains("invite_accepted"), "{events}");
}

async fn used_expired_and_unknown_links_say_so(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let short = invite(&app, "carol", &["--ttl", "1h"]).await;
    app.clock.advance(3601);
    let expired = Browser::new().client.get(&short).send().await.unwrap();
    assert_eq!(expired.status(), StatusCode::GONE);
    assert!(expired.text().await.unwrap().contains("This invitation link has expired"));
    // Posting to it is refused the same way, and sets nothing.
    let form = [("csrf_token", "x"), ("password", PASSWORD), ("password_again", PASSWORD)];
    let posted = Browser::new().client.post(&short).form(&form).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::GONE);

    let unknown = Browser::new().client.get(app.url("/reset/not-a-token")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.text().await.unwrap().contains("This password-reset link is not valid"));
    // An invite's token is no reset link.
    let token = short.rsplit('/').next().unwrap();
    let wrong_kind = Browser::new().client.get(app.url(&format!("/reset/{token}"))).send().await.unwrap();
    assert_eq!(wrong_kind.status(), StatusCode::NOT_FOUND);

    let nobody = app.latch(&["user", "reset-link", "nobody"], None).await;
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no user named \"nobody\""));
    let bad_ttl = app.latch(&["user", "invite", "dan", "--email", "dan@example.com", "--ttl", "soon"], None).await;
    assert!(String::from_utf8_lossy(&bad_ttl.stderr).contains("invalid --ttl \"soon\""));
    let taken = app.latch(&["user", "invite", "carol", "--email", "c@example.com"], None).await;
    assert!(String::from_utf8_lossy(&taken.stderr).contains("user \"carol\" already exists"));
}

async fn a_reset_link_ends_the_sessions_it_replaces(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let laptop = signed_in(&app, "ada", PASSWORD).await;
    let printed: serde_json::Value =
        serde_json::from_str(&app.admin(&["user", "reset-link", "ada", "--json"]).await).unwrap();
    let url = printed["url"].as_str().unwrap();
    assert!(url.starts_with(&app.url("/reset/")), "{url}");
    let phone = Browser::new();
    let reset = choose(&phone, url, "a brand new password", "a brand new password").await;
    assert_eq!(reset.status(), StatusCode::SEE_OTHER);
    assert!(portal(&phone, &app).await.is_some());
    assert!(portal(&laptop, &app).await.is_none(), "the session from before the reset must have ended");
    let old = Browser::new().sign_in(&app.base, "ada", PASSWORD).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    signed_in(&app, "ada", "a brand new password").await;
}

async fn changing_the_password_ends_the_other_sessions_only(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let (laptop, phone) = (signed_in(&app, "ada", PASSWORD).await, signed_in(&app, "ada", PASSWORD).await);
    let wrong = change(&laptop, &app, "not my password", "another good password", "another good password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("The current password is not right."));
    let differ = change(&laptop, &app, PASSWORD, "another good password", "another password").await;
    assert_eq!(differ.status(), StatusCode::BAD_REQUEST);
    assert!(portal(&phone, &app).await.is_some(), "refused changes end nothing");

    let changed = change(&laptop, &app, PASSWORD, "another good password", "another good password").await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&changed).as_deref(), Some("/account?done=password"));
    let notice = laptop.client.get(app.url("/account?done=password")).send().await.unwrap();
    let html = notice.text().await.unwrap();
    assert!(html.contains("Your password was changed."), "the session that changed it stays: {html}");
    assert!(portal(&phone, &app).await.is_none(), "the other session must have ended");
    assert_eq!(Browser::new().sign_in(&app.base, "ada", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    signed_in(&app, "ada", "another good password").await;

    // Wrong current passwords count as failed sign-ins: the lock holds.
    let limited =
        TestApp::spawn_with(backend, crate::common::Options { login_max_failures: Some("2"), ..Default::default() })
            .await
            .expect("second server");
    limited.add_user("eve", PASSWORD, &[]).await;
    let eve = signed_in(&limited, "eve", PASSWORD).await;
    for _ in 0..2 {
        let guess = change(&eve, &limited, "guess", "abcdefgh1", "abcdefgh1").await;
        assert_eq!(guess.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = change(&eve, &limited, PASSWORD, "abcdefgh1", "abcdefgh1").await;
    assert_eq!(locked.status(), StatusCode::UNAUTHORIZED, "locked after the failures, even with the right one");
}

/// Posts the portal's password form.
async fn change(browser: &Browser, app: &TestApp, current: &str, new: &str, again: &str) -> reqwest::Response {
    let fields = [("current_password", current), ("new_password", new), ("new_password_again", again)];
    post_portal(browser, app, "/account/password", &fields).await
}

/// The `sid` of each session the portal lists, the current one marked.
fn listed_sessions(html: &str) -> Vec<(String, bool)> {
    html.split("<li class=\"session\">")
        .skip(1)
        .filter_map(|item| Some((hidden_input(item, "sid")?, item.contains("This browser"))))
        .collect()
}

async fn a_session_is_signed_out_from_another(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    app.add_user("bob", PASSWORD, &[]).await;
    let (laptop, phone) = (signed_in(&app, "ada", PASSWORD).await, signed_in(&app, "ada", PASSWORD).await);
    let bobs = signed_in(&app, "bob", PASSWORD).await;
    let sessions = listed_sessions(&portal_page(&laptop, &app, "/account/sessions").await.unwrap());
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(sessions.iter().filter(|(_, current)| *current).count(), 1, "{sessions:?}");
    let other = sessions.iter().find(|(_, current)| !current).unwrap().0.clone();

    // Bob cannot end Ada's session.
    let foreign = post_portal(&bobs, &app, "/account/sessions/end", &[("sid", &other)]).await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    assert!(portal(&phone, &app).await.is_some());

    let ended = post_portal(&laptop, &app, "/account/sessions/end", &[("sid", &other)]).await;
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);
    assert!(portal(&phone, &app).await.is_none(), "the phone's session must have ended");
    let left = portal_page(&laptop, &app, "/account/sessions?done=session").await.unwrap();
    assert!(left.contains("The session was signed out."), "{left}");
    assert_eq!(listed_sessions(&left).len(), 1);

    // Without the form's token, nothing happens.
    let forged = laptop.client.post(app.url("/account/sessions/end-all")).form(&[("csrf_token", "x")]).send().await;
    assert_eq!(forged.unwrap().status(), StatusCode::FORBIDDEN);
    assert!(portal(&laptop, &app).await.is_some());

    let phone = signed_in(&app, "ada", PASSWORD).await;
    let everywhere = post_portal(&laptop, &app, "/account/sessions/end-all", &[]).await;
    assert_eq!(everywhere.status(), StatusCode::SEE_OTHER);
    assert!(portal(&laptop, &app).await.is_none() && portal(&phone, &app).await.is_none());
    assert!(portal(&bobs, &app).await.is_some(), "other people's sessions stay");
    let out = post_portal(&bobs, &app, "/account/sign-out", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(portal(&bobs, &app).await.is_none());
}

async fn the_launcher_lists_the_apps_the_person_may_use(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.admin(&["group", "add", "ops"]).await;
    app.add_user("ada", PASSWORD, &[]).await;
    app.add_app("grafana", &["https://grafana.example.com/cb"], &["--launch-url", "https://grafana.example.com/"])
        .await;
    app.add_app("vault", &["https://vault.example.com/cb"], &["--group", "ops"]).await;
    app.add_app("wiki", &["https://wiki.example.com/cb"], &[]).await;
    let refused = app.latch(&["app", "update", "wiki", "--launch-url", "javascript:alert(1)"], None).await;
    assert!(String::from_utf8_lossy(&refused.stderr).contains("invalid --launch-url"));
    let browser = signed_in(&app, "ada", PASSWORD).await;
    let html = portal(&browser, &app).await.unwrap();
    assert!(html.contains("<a class=\"app\" href=\"https://grafana.example.com/\">"), "{html}");
    assert!(html.contains(">wiki</span>"), "{html}");
    assert!(!html.contains("vault"), "an app of a group Ada is not in: {html}");
    app.admin(&["group", "add-member", "ops", "ada"]).await;
    assert!(portal(&browser, &app).await.unwrap().contains(">vault</span>"));
}

async fn first_run_setup_makes_one_administrator(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let url = app.setup_url.clone().expect("a fresh database has no administrator");
    assert!(url.starts_with(&app.url("/setup/")), "{url}");
    let browser = Browser::new();
    let html = browser.client.get(&url).send().await.unwrap().text().await.unwrap();
    let csrf = hidden_input(&html, "csrf_token").expect("csrf_token");
    let post = |username: &'static str, password: &'static str| {
        let form = [
            ("csrf_token", csrf.clone()),
            ("username", username.to_owned()),
            ("email", format!("{username}@example.com")),
            ("name", String::new()),
            ("password", password.to_owned()),
            ("password_again", password.to_owned()),
        ];
        browser.client.post(&url).form(&form).send()
    };
    let short = post("root", "short").await.unwrap();
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    let created = post("root", PASSWORD).await.unwrap();
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert!(portal(&browser, &app).await.unwrap().contains("Hello, root"));
    let groups = app.admin(&["group", "list", "--json"]).await;
    let groups: serde_json::Value = serde_json::from_str(&groups).unwrap();
    let admins = groups.as_array().unwrap().iter().find(|group| group["name"] == "latch-admins").expect("latch-admins");
    assert_eq!(admins["members"], serde_json::json!(["root"]));
    let again = post("mallory", PASSWORD).await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);

    // With an administrator, no new link is made.
    let store = latch::store::Store::connect(&app.database_url).await.unwrap();
    let public_url = latch::config::PublicUrl::parse(&app.base).unwrap();
    let link = latch::admin::setup::first_run_link(&store, &public_url, latch::clock::now()).await.unwrap();
    assert!(link.is_none());
    store.close().await;
}

async fn a_stale_sign_in_proves_the_password_again(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let browser = signed_in(&app, "ada", PASSWORD).await;
    app.clock.advance(latch::login::fresh::FRESH_FOR + 1);
    let page = browser.client.get(app.url("/account/confirm?next=/account")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let csrf = hidden_input(&html, "csrf_token").unwrap();
    assert_eq!(hidden_input(&html, "next").as_deref(), Some("/account"));
    let confirm = |password: &'static str| {
        let form = [("csrf_token", csrf.as_str()), ("next", "/account"), ("password", password)];
        browser.client.post(app.url("/account/confirm")).form(&form).send()
    };
    assert_eq!(confirm("wrong").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let confirmed = confirm(PASSWORD).await.unwrap();
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&confirmed).as_deref(), Some("/account"));
    // Elsewhere only: `next` never leaves Latch.
    let away = [("csrf_token", csrf.as_str()), ("next", "https://evil.example/"), ("password", PASSWORD)];
    let away = browser.client.post(app.url("/account/confirm")).form(&away).send().await.unwrap();
    assert_eq!(location(&away).as_deref(), Some("/"));
}
