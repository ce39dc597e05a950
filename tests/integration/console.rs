//! The admin console at `/admin`, over HTTP: only administrators get in; it
//! changes data only through the admin layer, so each change leaves the
//! same audit event the CLI's does (but for the actor); forms refuse a
//! missing or foreign CSRF token and show the admin layer's refusals
//! without losing what was typed; the dashboard counts what happened; the
//! event list filters and exports.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Backend, Browser, PASSWORD, TestApp, alert_text, header, hidden_input, location, unescape_html};
use crate::on_every_backend;

/// The administrator every test signs in as.
pub const ADMIN: &str = "boss";

on_every_backend!(
    console_and_cli_leave_the_same_events,
    only_administrators_get_in,
    forms_without_their_csrf_token_change_nothing,
    refusals_are_shown_on_the_form_as_typed,
    dashboard_counts_sign_ins_failures_and_sessions,
    events_filter_page_and_export,
    an_invite_from_the_console_signs_the_invitee_in,
    a_reset_link_from_the_console_works_once,
    sensitive_actions_need_a_fresh_sign_in,
    only_administrators_make_links,
);

/// Makes `username` an administrator from the CLI (a member of
/// `latch-admins`).
pub async fn add_admin(app: &TestApp, username: &str) {
    app.add_user(username, PASSWORD, &["latch-admins"]).await;
}

/// Today and tomorrow (UTC) as `YYYY-MM-DD`.
fn today() -> (String, String) {
    let day = |at: std::time::SystemTime| humantime::format_rfc3339_seconds(at).to_string()[..10].to_owned();
    let now = std::time::SystemTime::now();
    (day(now), day(now + std::time::Duration::from_secs(86_400)))
}

/// A browser signed in to Latch as `username`.
pub async fn signed_in(app: &TestApp, username: &str) -> Console {
    let browser = Browser::new();
    let response = browser.sign_in(&app.base, username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "sign-in as {username}");
    Console { browser, base: app.base.clone() }
}

/// A browser at the console.
pub struct Console {
    pub browser: Browser,
    pub base: String,
}

impl Console {
    /// GETs `path`; returns the status and the page.
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self.browser.client.get(format!("{}{path}", self.base)).send().await.expect("GET");
        (response.status(), response.text().await.expect("page"))
    }

    /// The page at `path`, which must answer 200.
    pub async fn page(&self, path: &str) -> String {
        let (status, page) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {page}");
        page
    }

    /// Posts `fields` with the CSRF token of the page at `form_page`, as a
    /// browser submitting a form found there would.
    pub async fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let page = self.page(form_page).await;
        let token = hidden_input(&page, "csrf_token").unwrap_or_else(|| panic!("no csrf_token on {form_page}: {page}"));
        let mut form = vec![("csrf_token", token.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }

    /// Posts `form` as it is.
    pub async fn post(&self, action: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.browser.client.post(format!("{}{action}", self.base)).form(form).send().await.expect("POST")
    }

    /// Like `submit`, and the change must succeed with a redirect
    /// (POST-redirect-GET) to a page that then shows a notice.
    pub async fn change(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> String {
        let response = self.submit(form_page, action, fields).await;
        let status = response.status();
        let target = location(&response);
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::SEE_OTHER, "POST {action} {fields:?}: {}", alert_text(&body).unwrap_or(body));
        let target = target.expect("Location");
        assert!(target.contains("?done="), "{target}");
        let page = self.page(&target).await;
        assert!(page.contains("role=\"status\""), "no notice after {action}: {page}");
        target
    }

    /// Like `submit`, for a change that answers with a page of its own
    /// (one that shows a secret once): 200.
    pub async fn change_with_page(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> String {
        let response = self.submit(form_page, action, fields).await;
        let status = response.status();
        let body = response.text().await.expect("page");
        assert_eq!(status, StatusCode::OK, "POST {action}: {}", alert_text(&body).unwrap_or(body));
        body
    }
}

/// The text of the element with `id` on `page` (up to its first tag end).
pub fn text_of(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{id}\""))?;
    let open = page[start..].find('>')? + start + 1;
    let end = page[open..].find("</")? + open;
    Some(unescape_html(page[open..end].trim()))
}

/// Every audit event, oldest first, as `latch events --json` prints them.
async fn events(app: &TestApp) -> Vec<Value> {
    let json = app.admin(&["events", "--json", "--limit", "10000"]).await;
    let mut events: Vec<Value> = serde_json::from_str(&json).expect("events --json");
    events.reverse();
    events
}

/// The changes (events with an actor) not about the administrator's own
/// account, as (kind, username, app, detail) with key ids masked, sorted:
/// events are timed to the second, so those of one second come in no
/// particular order.
async fn changes(app: &TestApp) -> Vec<(String, Value, Value, String)> {
    let mut changes: Vec<_> = events(app)
        .await
        .into_iter()
        .filter(|event| event["actor"].is_string() && event["username"] != ADMIN)
        .map(|event| {
            let detail = event["detail"].as_str().unwrap_or_default();
            // A rotated key's id is random: keep what kind of key it is.
            let detail = detail.split(" key ").next().unwrap_or_default().to_owned();
            (
                event["kind"].as_str().unwrap_or_default().to_owned(),
                event["username"].clone(),
                event["app"].clone(),
                detail,
            )
        })
        .collect();
    changes.sort_by_key(|change| format!("{change:?}"));
    changes
}

/// The same administration done twice, on two fresh servers: from the CLI
/// on one, from the console on the other. The audit trails are the same
/// event for event, but for who made each change.
async fn console_and_cli_leave_the_same_events(backend: Backend) {
    let Some(cli) = TestApp::spawn(backend).await else { return };
    let Some(web) = TestApp::spawn(backend).await else { return };
    for app in [&cli, &web] {
        add_admin(app, ADMIN).await;
    }

    // From the CLI.
    let staff = ["group", "add", "staff"];
    cli.admin(&staff).await;
    cli.admin(&["group", "add", "ops"]).await;
    let carol = [
        "user",
        "add",
        "carol",
        "--email",
        "carol@example.com",
        "--name",
        "Carol C",
        "--group",
        "staff",
        "--password-stdin",
    ];
    assert!(cli.latch(&carol, Some(PASSWORD)).await.status.success());
    cli.admin(&["user", "update", "carol", "--email", "carol@example.org", "--name", "Carol D"]).await;
    cli.admin(&["group", "add-member", "ops", "carol"]).await;
    cli.admin(&["group", "remove-member", "ops", "carol"]).await;
    cli.admin(&["user", "disable", "carol"]).await;
    cli.admin(&["user", "enable", "carol"]).await;
    cli.admin(&["user", "unlock", "carol"]).await;
    cli.admin(&["user", "end-sessions", "carol"]).await;
    assert!(
        cli.latch(&["user", "passwd", "carol", "--password-stdin"], Some("another long password"))
            .await
            .status
            .success()
    );
    // An authenticator enrolled from the CLI on both, then reset.
    cli.admin(&["user", "mfa", "totp", "carol"]).await;
    cli.admin(&["user", "mfa", "reset", "carol"]).await;
    let add = [
        "app",
        "add",
        "web",
        "--name",
        "Web",
        "--redirect-uri",
        "https://web.example.com/cb",
        "--group",
        "staff",
        "--consent",
        "explicit",
        "--signing-alg",
        "ES256",
    ];
    cli.admin(&add).await;
    cli.admin(&["app", "update", "web", "--access-token-ttl", "10m", "--redirect-uri", "https://web.example.com/cb2"])
        .await;
    cli.admin(&["app", "rotate-secret", "web"]).await;
    cli.admin(&["app", "add", "uptime", "--name", "Uptime", "--proxy", "--external-url", "https://uptime.example.com"])
        .await;
    cli.admin(&["app", "update", "uptime", "--group", "staff"]).await;
    cli.admin(&["key", "rotate", "--alg", "EdDSA", "--grace", "1h"]).await;
    cli.admin(&["app", "remove", "uptime"]).await;

    // From the console.
    let console = signed_in(&web, ADMIN).await;
    console.change("/admin/groups", "/admin/groups", &[("name", "staff")]).await;
    console.change("/admin/groups", "/admin/groups", &[("name", "ops")]).await;
    let person = [
        ("username", "carol"),
        ("email", "carol@example.com"),
        ("name", "Carol C"),
        ("group", "staff"),
        ("password", PASSWORD),
    ];
    console.change("/admin/users/new", "/admin/users", &person).await;
    let carol = "/admin/users/carol";
    console.change(carol, "/admin/users/carol/edit", &[("email", "carol@example.org"), ("name", "Carol D")]).await;
    console.change(carol, "/admin/users/carol/add-group", &[("group", "ops")]).await;
    console.change(carol, "/admin/users/carol/remove-group", &[("group", "ops")]).await;
    for action in ["disable", "enable", "unlock", "end-sessions"] {
        console.change(carol, &format!("{carol}/{action}"), &[]).await;
    }
    console.change(carol, "/admin/users/carol/password", &[("password", "another long password")]).await;
    web.admin(&["user", "mfa", "totp", "carol"]).await;
    let page = console.page(carol).await;
    assert!(page.contains("<th scope=\"row\">totp</th>"), "the person's page lists the factor: {page}");
    console.change(carol, "/admin/users/carol/reset-factors", &[]).await;
    assert!(console.page(carol).await.contains("None enrolled."));
    let app = [
        ("kind", "oidc"),
        ("slug", "web"),
        ("name", "Web"),
        ("redirect_uris", "https://web.example.com/cb"),
        ("group", "staff"),
        ("consent", "explicit"),
        ("signing_alg", "ES256"),
    ];
    let created = console.change_with_page("/admin/apps/new", "/admin/apps", &app).await;
    assert!(text_of(&created, "client-secret").is_some_and(|secret| secret.len() >= 32), "{created}");
    let update = [
        ("redirect_uris", "https://web.example.com/cb2"),
        ("group", "staff"),
        ("consent", "explicit"),
        ("signing_alg", "ES256"),
        ("access_token_ttl", "10m"),
    ];
    console.change("/admin/apps/web", "/admin/apps/web", &update).await;
    console.change_with_page("/admin/apps/web", "/admin/apps/web/rotate-secret", &[]).await;
    let proxy =
        [("kind", "proxy"), ("slug", "uptime"), ("name", "Uptime"), ("external_url", "https://uptime.example.com")];
    console.change_with_page("/admin/apps/new", "/admin/apps", &proxy).await;
    console.change("/admin/apps/uptime", "/admin/apps/uptime", &[("group", "staff")]).await;
    let uptime: Value = serde_json::from_str(&web.admin(&["app", "show", "uptime", "--json"]).await).expect("JSON");
    assert_eq!(uptime["groups"], serde_json::json!(["staff"]), "{uptime}");
    console.change("/admin/keys", "/admin/keys/rotate", &[("alg", "EdDSA"), ("grace", "1h")]).await;
    console.change("/admin/apps/uptime", "/admin/apps/uptime/remove", &[("confirm", "1")]).await;

    let (by_cli, by_web) = (changes(&cli).await, changes(&web).await);
    assert_eq!(by_cli.len(), 20, "{by_cli:#?}");
    assert_eq!(by_web, by_cli);
    // Who made them: the console names the administrator.
    let trail = events(&web).await;
    // (But for the administrator's own account and the authenticator,
    // both made from the CLI.)
    let actors: Vec<&str> = trail
        .iter()
        .filter(|event| event["username"] != ADMIN && event["kind"] != "totp_enrolled")
        .filter_map(|event| event["actor"].as_str())
        .collect();
    assert_eq!(actors.len(), 19, "{trail:#?}");
    assert!(actors.iter().all(|actor| *actor == "web:boss"), "{actors:?}");
    // The console wrote what it said: carol's profile and the app's settings.
    let users: Value = serde_json::from_str(&web.admin(&["user", "list", "--json"]).await).expect("JSON");
    let carol =
        users.as_array().and_then(|users| users.iter().find(|user| user["username"] == "carol")).expect("carol");
    assert_eq!((carol["email"].as_str(), carol["name"].as_str()), (Some("carol@example.org"), Some("Carol D")));
    let shown: Value = serde_json::from_str(&web.admin(&["app", "show", "web", "--json"]).await).expect("JSON");
    assert_eq!(shown["redirect_uris"], serde_json::json!(["https://web.example.com/cb2"]));
    assert_eq!(shown["options"]["access_token_ttl"], 600);
    assert_eq!(shown["options"]["signing_alg"], "ES256");
}

/// Without a session, the console sends the browser to sign in and back; a
/// person who is not an administrator gets a 403 page that says why, on
/// every console address, and can change nothing.
async fn only_administrators_get_in(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_admin(&app, ADMIN).await;
    app.add_user("eve", PASSWORD, &[]).await;

    let anonymous = Browser::new();
    let response = anonymous.client.get(app.url("/admin/users?q=a")).send().await.expect("GET");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response).as_deref(), Some("/login?next=%2Fadmin%2Fusers%3Fq%3Da"));

    let eve = signed_in(&app, "eve").await;
    for path in ["/admin", "/admin/users", "/admin/users/boss", "/admin/apps", "/admin/events.jsonl", "/admin/keys"] {
        let (status, page) = eve.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.contains("Administrators only"), "{path}: {page}");
        assert!(alert_text(&page).is_some_and(|text| text.contains("latch-admins")), "{page}");
    }
    let response = eve.post("/admin/groups", &[("name", "mine")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = eve.post("/admin/users/eve/add-group", &[("group", "latch-admins")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let groups = app.admin(&["group", "list", "--json"]).await;
    assert!(!groups.contains("mine"), "{groups}");
    assert!(!groups.contains("\"eve\""), "eve must not have made herself an administrator: {groups}");

    // Once an administrator, she gets in (the membership is read per request).
    app.admin(&["group", "add-member", "latch-admins", "eve"]).await;
    assert_eq!(eve.get("/admin").await.0, StatusCode::OK);
}

/// A console form posted without the token its page carried, with a token
/// made for another browser, or from another site, changes nothing.
async fn forms_without_their_csrf_token_change_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_admin(&app, ADMIN).await;
    app.add_user("dan", PASSWORD, &[]).await;
    let console = signed_in(&app, ADMIN).await;
    let other = signed_in(&app, ADMIN).await;
    let foreign = hidden_input(&other.page("/admin/groups").await, "csrf_token").expect("token");
    let before = events(&app).await.len();

    let refused = [
        console.post("/admin/groups", &[("name", "sneaky")]).await,
        console.post("/admin/groups", &[("name", "sneaky"), ("csrf_token", "")]).await,
        console.post("/admin/groups", &[("name", "sneaky"), ("csrf_token", &foreign)]).await,
        console.post("/admin/users/dan/disable", &[("csrf_token", &foreign)]).await,
    ];
    for response in refused {
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let page = response.text().await.expect("page");
        assert!(page.contains("Form expired"), "{page}");
    }
    // The right token, but posted from another site (Fetch Metadata).
    let page = console.page("/admin/groups").await;
    let token = hidden_input(&page, "csrf_token").expect("token");
    let cross_site = console
        .browser
        .client
        .post(app.url("/admin/groups"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("name", "sneaky"), ("csrf_token", &token)])
        .send()
        .await
        .expect("POST");
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);

    assert_eq!(events(&app).await.len(), before, "a refused form must change nothing");
    assert!(!app.admin(&["group", "list"]).await.contains("sneaky"));
    assert!(app.admin(&["user", "list"]).await.contains("active"), "dan stays active");
    // The same form with its own token works.
    console.change("/admin/groups", "/admin/groups", &[("name", "fine")]).await;
}

/// What the admin layer refuses comes back on the form: the status of the
/// refusal, its reason in an alert, and every field as it was typed
/// (never a password).
async fn refusals_are_shown_on_the_form_as_typed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_admin(&app, ADMIN).await;
    app.admin(&["group", "add", "staff"]).await;
    let console = signed_in(&app, ADMIN).await;

    let person = [
        ("username", "frank"),
        ("email", "not-an-address"),
        ("name", "Frank F"),
        ("group", "staff"),
        ("password", "a long enough password"),
    ];
    let response = console.submit("/admin/users/new", "/admin/users", &person).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.expect("page");
    assert!(alert_text(&page).is_some_and(|text| text.contains("e-mail") || text.contains("email")), "{page}");
    assert!(page.contains("value=\"frank\""), "{page}");
    assert!(page.contains("value=\"not-an-address\""), "{page}");
    assert!(page.contains("value=\"Frank F\""), "{page}");
    assert!(page.contains("value=\"staff\" checked"), "{page}");
    assert!(!page.contains("a long enough password"), "a password is never shown back");

    let taken = [("username", ADMIN), ("email", "b@example.com"), ("password", "a long enough password")];
    let response = console.submit("/admin/users/new", "/admin/users", &taken).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let page = response.text().await.expect("page");
    assert_eq!(alert_text(&page).as_deref(), Some("user \"boss\" already exists"));

    let app_form = [
        ("kind", "oidc"),
        ("slug", "wiki"),
        ("name", "Wiki"),
        ("redirect_uris", "https://wiki.example.com/cb#fragment"),
        ("code_ttl", "5 parsecs"),
    ];
    let response = console.submit("/admin/apps/new", "/admin/apps", &app_form).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.expect("page");
    let alert = alert_text(&page).expect("alert");
    assert!(alert.contains("code-ttl") || alert.contains("fragment"), "{alert}");
    assert!(page.contains("https://wiki.example.com/cb#fragment</textarea>"), "{page}");
    assert!(page.contains("value=\"wiki\""), "{page}");

    let response = console.submit("/admin/keys", "/admin/keys/rotate", &[("alg", "RS256"), ("grace", "1s")]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.expect("page");
    assert!(alert_text(&page).is_some_and(|text| text.contains("--grace must be at least")), "{page}");
    assert!(page.contains("value=\"1s\""), "{page}");

    let response = console.submit("/admin/users/boss", "/admin/users/nobody/disable", &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let (status, page) = console.get("/admin/events?from=2026-02-30").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(alert_text(&page).is_some_and(|text| text.contains("2026-02-30")), "{page}");
    // Nothing was created by any of it.
    let users = app.admin(&["user", "list"]).await;
    assert!(!users.contains("frank"), "{users}");
    assert!(!app.admin(&["app", "list"]).await.contains("wiki"));
}

/// The dashboard counts today's sign-ins and failures, the sign-ins to each
/// app, and the sessions alive now; its pages are never cached or framed
/// and run no script.
async fn dashboard_counts_sign_ins_failures_and_sessions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_admin(&app, ADMIN).await;
    app.add_user("gina", PASSWORD, &[]).await;
    let web = app.add_app("grafana", &[crate::common::CALLBACK], &[]).await;
    let console = signed_in(&app, ADMIN).await;
    let _gina_elsewhere = signed_in(&app, "gina").await;
    // A third sign-in, to grafana; two failures.
    let gina = Browser::new();
    let code = gina
        .code(&app, &crate::common::code_request(&web.client_id, crate::common::CALLBACK, "s"), "gina", PASSWORD)
        .await;
    crate::common::token_ok(app.redeem(&web, &code, crate::common::CALLBACK, None).await).await;
    assert_eq!(Browser::new().sign_in(&app.base, "gina", "wrong").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(Browser::new().sign_in(&app.base, "nobody", "wrong").await.status(), StatusCode::UNAUTHORIZED);

    // Audit events are written in batches: wait for them to be counted.
    let page = crate::common::poll_until(std::time::Duration::from_secs(10), async || {
        let page = console.page("/admin").await;
        (page.contains(">3</span><span class=\"what\">sign-ins in 30 days")
            && page.contains(">2</span><span class=\"what\">failed sign-ins in 30 days")
            && page.contains("grafana</a></th><td class=\"num\">1<"))
        .then_some(page)
    })
    .await
    .unwrap_or_else(|| panic!("the dashboard never counted the sign-ins and failures"));
    assert!(page.contains(">3</span><span class=\"what\">active sessions"), "{page}");
    assert!(page.contains(">2</span><span class=\"what\">people signed in now"), "{page}");
    // Today is the last row of the table, and the last bar of the chart.
    let rows: Vec<&str> = page.split("<tr><th scope=\"row\">").skip(1).collect();
    assert_eq!(rows.len(), 30 + 1, "30 days and one app");
    assert!(rows[29].contains("<td class=\"num\">3</td><td class=\"num\">2</td>"), "{}", rows[29]);
    assert!(page.contains("<svg class=\"chart\""), "{page}");
    assert!(page.contains("3 sign-ins and 2 failures in all"), "{page}");
    assert!(page.contains(": 3 sign-ins</title>"), "{page}");

    let response = console.browser.client.get(app.url("/admin")).send().await.expect("GET");
    assert_eq!(header(&response, "cache-control").as_deref(), Some("no-store"));
    let csp = header(&response, "content-security-policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("script-src"), "{csp}");
    let page = response.text().await.expect("page");
    // Nothing to run, nothing to fetch (the SVG namespace is a name, not an address).
    let fetching = ["<script", "src=", "<link", "url(", "@import"];
    assert!(fetching.iter().all(|what| !page.contains(what)), "no script, nothing fetched: {page}");
}

/// The event list: newest first, filtered by person, app, kind and days,
/// 100 to a page; the export holds the same selection as JSON lines.
async fn events_filter_page_and_export(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_admin(&app, ADMIN).await;
    for n in 0..105 {
        app.admin(&["group", "add", &format!("g{n:03}")]).await;
    }
    app.add_user("hal", PASSWORD, &[]).await;
    app.admin(&["user", "disable", "hal"]).await;
    let console = signed_in(&app, ADMIN).await;

    // 100 to a page, every group once over the two pages.
    let first = console.page("/admin/events?kind=group_created").await;
    assert_eq!(first.matches("<th scope=\"row\">group_created</th>").count(), 100);
    let next = first
        .split("rel=\"next\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .and_then(|link| link.split('"').next())
        .expect("a next page");
    let second = console.page(&unescape_html(next)).await;
    assert_eq!(second.matches("<th scope=\"row\">group_created</th>").count(), 5);
    assert!(!second.contains("rel=\"next\""), "{second}");
    let mut shown: Vec<&str> = [&first, &second]
        .iter()
        .flat_map(|page| page.split("group g").skip(1))
        .filter_map(|rest| rest.get(..3))
        .collect();
    shown.sort();
    let expected: Vec<String> = (0..105).map(|n| format!("{n:03}")).collect();
    assert_eq!(shown, expected);
    // Newest first (to the second, which is what events are timed by).
    let export =
        console.browser.client.get(app.url("/admin/events.jsonl?kind=group_created")).send().await.expect("GET");
    let body = export.text().await.expect("body");
    let times: Vec<i64> = body
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON")["at"].as_i64().expect("at"))
        .collect();
    assert_eq!(times.len(), 105);
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "{times:?}");

    let hal = console.page("/admin/events?user=hal").await;
    let mut kinds: Vec<&str> =
        hal.split("<th scope=\"row\">").skip(1).filter_map(|row| row.split('<').next()).collect();
    kinds.sort();
    assert_eq!(kinds, ["user_created", "user_disabled"]);
    let today = today();
    let none = console.page(&format!("/admin/events?user=hal&to={}", today.0)).await;
    assert!(none.contains("user_created"), "to includes the whole day");
    let later = console.page(&format!("/admin/events?user=hal&from={}", today.1)).await;
    assert!(later.contains("No events match."), "{later}");

    let response = console.browser.client.get(app.url("/admin/events.jsonl?user=hal")).send().await.expect("GET");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "content-type").is_some_and(|value| value.starts_with("application/jsonl")));
    assert!(header(&response, "content-disposition").is_some_and(|value| value.contains("latch-events.jsonl")));
    let body = response.text().await.expect("body");
    let lines: Vec<Value> =
        body.lines().map(|line| serde_json::from_str(line).expect("a JSON object a line")).collect();
    assert_eq!(lines.len(), 2, "{body}");
    let mut kinds: Vec<&str> = lines.iter().filter_map(|line| line["kind"].as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["user_created", "user_disabled"]);
    assert!(lines[0]["actor"].as_str().is_some_and(|actor| actor.starts_with("cli:")));
}

/// The one-time link a console answer shows.
fn one_time_link(page: &str) -> String {
    text_of(page, "one-time-link").unwrap_or_else(|| panic!("no link on {page}"))
}

/// An administrator invites someone from the console; a refused invite
/// keeps what was typed; the invitee opens the link, chooses a password
/// and is signed in on /account.
async fn an_invite_from_the_console_signs_the_invitee_in(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_admin(&app, ADMIN).await;
    app.admin(&["group", "add", "staff"]).await;
    let console = signed_in(&app, ADMIN).await;
    let fields = [("username", "ivy"), ("email", "ivy@example.com"), ("name", "Ivy Invitee"), ("group", "staff")];
    let page = console.change_with_page("/admin/users/new", "/admin/users/new", &fields).await;
    let url = one_time_link(&page);
    assert!(url.starts_with(&app.url("/invite/")), "{url}");

    let again = console
        .submit("/admin/users/new", "/admin/users/new", &[("username", "ivy"), ("email", "i@example.org")])
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let again = again.text().await.expect("page");
    assert!(alert_text(&again).is_some_and(|text| text.contains("already exists")), "{again}");
    assert!(again.contains("value=\"i@example.org\""), "typed e-mail kept: {again}");

    let invitee = Browser::new();
    let accepted = crate::onboarding::choose(&invitee, &url, PASSWORD, PASSWORD).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&accepted).as_deref(), Some("/account"));
    let account = invitee.client.get(app.url("/account")).send().await.expect("GET /account");
    assert_eq!(account.status(), StatusCode::OK);
    assert!(account.text().await.expect("page").contains("Hello, Ivy Invitee"));
    let invited = events(&app).await.into_iter().find(|event| event["kind"] == "user_invited").expect("user_invited");
    assert_eq!(invited["username"], "ivy");
    assert_eq!(invited["detail"], "groups staff");
}

/// A password-reset link made on a person's page sets their password once.
async fn a_reset_link_from_the_console_works_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_admin(&app, ADMIN).await;
    app.add_user("carol", PASSWORD, &[]).await;
    let console = signed_in(&app, ADMIN).await;
    let page = console.change_with_page("/admin/users/carol", "/admin/users/carol/reset-link", &[]).await;
    let url = one_time_link(&page);
    assert!(url.starts_with(&app.url("/reset/")), "{url}");

    let new_password = "a brand new long password";
    let used = crate::onboarding::choose(&Browser::new(), &url, new_password, new_password).await;
    assert_eq!(used.status(), StatusCode::SEE_OTHER);
    let twice = Browser::new().client.get(&url).send().await.expect("GET link");
    assert_eq!(twice.status(), StatusCode::GONE);
    assert_eq!(Browser::new().sign_in(&app.base, "carol", new_password).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(Browser::new().sign_in(&app.base, "carol", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    let missing = console.submit("/admin/users/carol", "/admin/users/nobody/reset-link", &[]).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// A console action: the page its form is on, where it posts, its fields.
type Action = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

/// Rotating a client secret or keys, granting admin (from a person's page
/// or the group's) and resetting someone's second factors with a sign-in
/// older than `FRESH_FOR`: each goes to confirm the password and back to
/// the page its form was on, changing nothing; after confirming, each works.
async fn sensitive_actions_need_a_fresh_sign_in(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_admin(&app, ADMIN).await;
    app.add_user("carol", PASSWORD, &[]).await;
    app.add_user("dave", PASSWORD, &[]).await;
    app.admin(&["user", "mfa", "totp", "carol"]).await;
    app.admin(&["app", "add", "web", "--name", "Web", "--redirect-uri", "https://web.example.com/cb"]).await;
    let console = signed_in(&app, ADMIN).await;
    let actions: [Action; 5] = [
        ("/admin/apps/web", "/admin/apps/web/rotate-secret", &[]),
        ("/admin/keys", "/admin/keys/rotate", &[("alg", "RS256"), ("grace", "1h")]),
        ("/admin/users/carol", "/admin/users/carol/add-group", &[("group", "latch-admins")]),
        ("/admin/groups/latch-admins", "/admin/groups/latch-admins/add-member", &[("username", "dave")]),
        ("/admin/users/carol", "/admin/users/carol/reset-factors", &[]),
    ];

    app.clock.advance(latch::login::fresh::FRESH_FOR + 1);
    let before = changes(&app).await;
    for (page, action, fields) in actions {
        let response = console.submit(page, action, fields).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{action}");
        let confirm = location(&response).expect("Location");
        assert!(confirm.starts_with("/account/confirm?next="), "{action}: {confirm}");
        let confirm_page = console.page(&confirm).await;
        // The page's path as the console writes it: every byte but letters and digits encoded.
        let next = hidden_input(&confirm_page, "next").expect("next").replace("%2D", "-");
        assert_eq!(next, page, "{action}");
    }
    assert_eq!(changes(&app).await, before, "a stale sign-in changed something");

    let confirm_page = console.page("/account/confirm?next=/admin/keys").await;
    let token = hidden_input(&confirm_page, "csrf_token").expect("csrf_token");
    let form = [("csrf_token", token.as_str()), ("next", "/admin/keys"), ("password", PASSWORD)];
    let confirmed = console.post("/account/confirm", &form).await;
    assert_eq!(location(&confirmed).as_deref(), Some("/admin/keys"));

    let secret = console.change_with_page("/admin/apps/web", "/admin/apps/web/rotate-secret", &[]).await;
    assert!(secret.contains("has a new client secret"), "{secret}");
    for (page, action, fields) in &actions[1..] {
        console.change(page, action, fields).await;
    }
    let kinds: Vec<String> =
        changes(&app).await.into_iter().filter(|change| !before.contains(change)).map(|change| change.0).collect();
    for kind in ["app_secret_rotated", "key_rotated", "group_member_added", "factors_reset"] {
        assert!(kinds.iter().any(|seen| seen == kind), "no {kind} in {kinds:?}");
    }
    let admins = app.admin(&["group", "list", "--json"]).await;
    assert!(admins.contains("\"carol\"") && admins.contains("\"dave\""), "{admins}");
}

/// Someone who is not an administrator can make no link.
async fn only_administrators_make_links(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_admin(&app, ADMIN).await;
    app.add_user("eve", PASSWORD, &[]).await;
    let eve = signed_in(&app, "eve").await;
    let invite = eve.post("/admin/users/new", &[("username", "evil"), ("email", "evil@example.com")]).await;
    assert_eq!(invite.status(), StatusCode::FORBIDDEN);
    let reset = eve.post("/admin/users/boss/reset-link", &[]).await;
    assert_eq!(reset.status(), StatusCode::FORBIDDEN);
    assert!(!app.admin(&["user", "list"]).await.contains("evil"));
    assert!(!events(&app).await.iter().any(|event| event["kind"] == "reset_link_issued"));
}
