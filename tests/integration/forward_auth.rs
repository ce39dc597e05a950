//! Forward auth behind real proxies: Debian's nginx and Caddy, started here
//! on loopback ports with the very configs the README shows
//! (`docs/forward-auth/*.template`, only the addresses filled in), in front
//! of a tiny upstream that echoes the headers it received, and of Latch.
//!
//! Latch listens on 127.0.0.1, nginx on 127.0.0.2 and Caddy on 127.0.0.3:
//! as in production, the apps' hosts never see Latch's own cookie.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Backend, Browser, CALLBACK, PASSWORD, TestApp, absolute, code_request, location, poll_until};
use crate::on_every_backend;

const NGINX_TEMPLATE: &str = "docs/forward-auth/nginx.conf.template";
const CADDY_TEMPLATE: &str = "docs/forward-auth/Caddyfile.template";
/// The addresses the templates are written with, as the README shows them.
const EXAMPLE_APP: &str = "https://uptime.example.com";
const EXAMPLE_LATCH: &str = "https://sso.example.com";
const EXAMPLE_UPSTREAM: &str = "127.0.0.1:3001";

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|error| panic!("cannot read {}: {error}", full.display()))
}

// ------------------------------------------------------------ the upstream

/// An app with no SSO: answers every request with what it received, and
/// remembers it, so a test can tell that a request never arrived.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Value>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let log = log.clone();
            async move {
                let mut headers = serde_json::Map::new();
                for (name, value) in request.headers() {
                    let value = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
                    match headers.get_mut(name.as_str()) {
                        Some(Value::Array(values)) => values.push(value),
                        _ => {
                            headers.insert(name.as_str().to_owned(), Value::Array(vec![value]));
                        }
                    }
                }
                let echo =
                    json!({"method": request.method().as_str(), "uri": request.uri().to_string(), "headers": headers});
                log.lock().unwrap().push(echo.clone());
                axum::Json(echo)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, seen, server }
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

// ------------------------------------------------------------- the proxies

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nginx,
    Caddy,
}

impl Kind {
    fn binary(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Caddy => "caddy",
        }
    }

    fn ip(self) -> &'static str {
        match self {
            Self::Nginx => "127.0.0.2",
            Self::Caddy => "127.0.0.3",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Self::Nginx => "behind-nginx",
            Self::Caddy => "behind-caddy",
        }
    }
}

/// The proxy's binary, or `None` (with a notice) when it is not installed
/// outside CI. Under CI it must be there: `.ci/run` installs it.
fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("{name} is required under CI (.ci/run installs it) but is not installed");
        }
        eprintln!("SKIPPED ({name} not installed)");
    }
    found
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

/// Replaces `from` (which must occur: the template and this test must not
/// drift apart) with `to`.
fn fill(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the template no longer contains {from:?}");
    text.replace(from, to)
}

/// Which configs the proxies run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// Latch's own, from `docs/forward-auth/`.
    Latch,
    /// The shape Authentik documents for its outpost (nginx: no
    /// `proxy_redirect off`, so redirects to Latch are rewritten onto the
    /// app's host; Caddy: `reverse_proxy` and `forward_auth` in a `route`).
    Authentik,
}

/// The site config for `kind`, listening at `base` (`http://ip:port`).
fn site_config(kind: Kind, flavor: Flavor, base: &str, latch: &str, upstream: SocketAddr) -> String {
    let listen = base.trim_start_matches("http://");
    match (kind, flavor) {
        (Kind::Nginx, Flavor::Latch) => {
            let site = repo_file(NGINX_TEMPLATE);
            let site = fill(&site, "listen 80;", &format!("listen {listen};"));
            let site = fill(&site, EXAMPLE_APP, base);
            let site = fill(&site, EXAMPLE_LATCH, latch);
            fill(&site, EXAMPLE_UPSTREAM, &upstream.to_string())
        }
        (Kind::Caddy, Flavor::Latch) => {
            let site = repo_file(CADDY_TEMPLATE);
            let site = fill(&site, "uptime.example.com {", &format!("{base} {{"));
            let site = fill(&site, EXAMPLE_LATCH, latch);
            fill(&site, EXAMPLE_UPSTREAM, &upstream.to_string())
        }
        (Kind::Nginx, Flavor::Authentik) => {
            let identity: String = ["username", "groups", "email", "name", "uid"]
                .iter()
                .map(|name| {
                    format!(
                        "        auth_request_set $authentik_{name} $upstream_http_x_authentik_{name};\n\
                         \x20       proxy_set_header X-authentik-{name} $authentik_{name};\n"
                    )
                })
                .collect();
            format!(
                "server {{\n    listen {listen};\n    location / {{\n        proxy_pass http://{upstream};\n\
                 \x20       auth_request /outpost.goauthentik.io/auth/nginx;\n\
                 \x20       error_page 401 = @goauthentik_proxy_signin;\n\
                 \x20       auth_request_set $auth_cookie $upstream_http_set_cookie;\n\
                 \x20       add_header Set-Cookie $auth_cookie;\n{identity}    }}\n\
                 \x20   location /outpost.goauthentik.io {{\n\
                 \x20       proxy_pass {latch}/outpost.goauthentik.io;\n\
                 \x20       proxy_set_header Host $host;\n\
                 \x20       proxy_set_header X-Original-URL $scheme://$http_host$request_uri;\n\
                 \x20       add_header Set-Cookie $auth_cookie;\n\
                 \x20       auth_request_set $auth_cookie $upstream_http_set_cookie;\n\
                 \x20       proxy_pass_request_body off;\n\
                 \x20       proxy_set_header Content-Length \"\";\n    }}\n\
                 \x20   location @goauthentik_proxy_signin {{\n        internal;\n\
                 \x20       add_header Set-Cookie $auth_cookie;\n\
                 \x20       return 302 /outpost.goauthentik.io/start?rd=$scheme://$http_host$request_uri;\n    }}\n}}\n"
            )
        }
        (Kind::Caddy, Flavor::Authentik) => format!(
            "{base} {{\n\troute {{\n\t\treverse_proxy /outpost.goauthentik.io/* {latch}\n\
             \t\tforward_auth {latch} {{\n\t\t\turi /outpost.goauthentik.io/auth/caddy\n\
             \t\t\tcopy_headers X-Authentik-Username X-Authentik-Groups X-Authentik-Email X-Authentik-Name X-Authentik-Uid\n\
             \t\t\ttrusted_proxies private_ranges\n\t\t}}\n\t\treverse_proxy {upstream}\n\t}}\n}}\n"
        ),
    }
}

/// A proxy process with its config and logs in a temporary directory.
struct Proxy {
    kind: Kind,
    /// The app's external URL: where browsers go.
    base: String,
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Proxy {
    async fn start(kind: Kind, flavor: Flavor, binary: &Path, port: u16, latch: &str, upstream: SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // nginx workers may run as `nobody`: let them into the directory.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let ip = kind.ip();
        let base = format!("http://{ip}:{port}");
        let site = site_config(kind, flavor, &base, latch, upstream);
        let mut command = tokio::process::Command::new(binary);
        match kind {
            Kind::Nginx => {
                std::fs::write(dir.path().join("site.conf"), site).unwrap();
                let d = dir.path().display();
                let main = format!(
                    "master_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
                     events {{ worker_connections 256; }}\n\
                     http {{\n    access_log {d}/access.log;\n    client_body_temp_path {d}/body;\n\
                     \x20   proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n\
                     \x20   uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
                     \x20   include {d}/site.conf;\n}}\n"
                );
                let config = dir.path().join("nginx.conf");
                std::fs::write(&config, main).unwrap();
                command
                    .arg("-p")
                    .arg(dir.path())
                    .arg("-e")
                    .arg(dir.path().join("error.log"))
                    .arg("-c")
                    .arg(&config)
                    .args(["-g", "daemon off;"]);
            }
            Kind::Caddy => {
                let global = format!("{{\n\tadmin off\n\tauto_https off\n\tdefault_bind {ip}\n}}\n\n");
                let config = dir.path().join("Caddyfile");
                std::fs::write(&config, format!("{global}{site}")).unwrap();
                command
                    .args(["run", "--adapter", "caddyfile", "--config"])
                    .arg(&config)
                    .env("HOME", dir.path())
                    .env("XDG_DATA_HOME", dir.path().join("data"))
                    .env("XDG_CONFIG_HOME", dir.path().join("config"));
            }
        }
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let mut proxy = Self { kind, base, child, dir };
        proxy.wait_until_listening(ip, port).await;
        proxy
    }

    async fn wait_until_listening(&mut self, ip: &str, port: u16) {
        let listening = poll_until(Duration::from_secs(10), async || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{:?} exited with {status} before listening:\n{}", self.kind, self.logs());
            }
            tokio::net::TcpStream::connect((ip, port)).await.ok().map(drop)
        })
        .await;
        assert!(listening.is_some(), "{:?} did not listen on {ip}:{port} within 10 s:\n{}", self.kind, self.logs());
    }

    fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .filter_map(|name| std::fs::read_to_string(self.dir.path().join(name)).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

// --------------------------------------------------------------- the setup

/// Latch with users `ada` (in admins and staff) and `bob` (in no group), the
/// upstream, and each installed proxy guarding it as a proxy app open to
/// the admins group only.
struct Setup {
    latch: TestApp,
    upstream: Upstream,
    proxies: Vec<Proxy>,
}

async fn setup(backend: Backend) -> Option<Setup> {
    setup_with(backend, Flavor::Latch).await
}

async fn setup_with(backend: Backend, flavor: Flavor) -> Option<Setup> {
    let latch = TestApp::spawn(backend).await?;
    latch.admin(&["group", "add", "admins"]).await;
    latch.admin(&["group", "add", "staff"]).await;
    latch.add_user("ada", PASSWORD, &["admins", "staff"]).await;
    latch.add_user("bob", PASSWORD, &[]).await;
    let upstream = Upstream::start().await;
    let mut proxies = Vec::new();
    for kind in [Kind::Nginx, Kind::Caddy] {
        let Some(binary) = find_binary(kind.binary()) else { continue };
        let port = free_port(kind.ip());
        let external = format!("http://{}:{port}", kind.ip());
        let added = latch
            .admin(&[
                "app",
                "add",
                kind.slug(),
                "--name",
                kind.slug(),
                "--proxy",
                "--external-url",
                &external,
                "--group",
                "admins",
                "--json",
            ])
            .await;
        let settings: Value = serde_json::from_str(&added).expect("app add --proxy --json prints JSON");
        assert_eq!(settings["external_url"], external.as_str());
        proxies.push(Proxy::start(kind, flavor, &binary, port, &latch.base, upstream.addr).await);
    }
    Some(Setup { latch, upstream, proxies })
}

// --------------------------------------------------------------- browsing

/// What a browser sends when it opens a page (a top-level navigation).
pub const PAGE_HEADERS: [(&str, &str); 3] = [
    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-dest", "document"),
];

/// A browser that opens pages, as a person does (unlike a script's `fetch`).
pub(crate) fn page_browser() -> Browser {
    let headers = PAGE_HEADERS.iter().map(|(name, value)| (name.parse().unwrap(), value.parse().unwrap())).collect();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    Browser { client }
}

/// Follows redirects wherever they lead (proxies, Latch); returns the final
/// response and every URL visited on the way.
async fn follow(browser: &Browser, url: &str) -> (reqwest::Response, Vec<String>) {
    let mut url = url.to_owned();
    let mut visited = Vec::new();
    for _ in 0..15 {
        visited.push(url.clone());
        let response = browser.client.get(&url).send().await.unwrap();
        if !response.status().is_redirection() {
            return (response, visited);
        }
        let next = location(&response).unwrap_or_else(|| panic!("redirect without Location from {url}"));
        url = url::Url::parse(&url).unwrap().join(&next).unwrap().to_string();
    }
    panic!("too many redirects: {visited:#?}");
}

/// Opens `url` and expects Latch's login page; signs in there as `username`
/// and follows on. Returns the final response and every URL visited.
async fn sign_in_through(
    latch: &TestApp,
    browser: &Browser,
    url: &str,
    username: &str,
) -> (reqwest::Response, Vec<String>) {
    let (page, mut visited) = follow(browser, url).await;
    assert_eq!(page.status(), StatusCode::OK, "expected the login page, visited {visited:#?}");
    assert!(page.url().as_str().starts_with(&latch.url("/login?")), "not the login page: {}", page.url());
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"password\""), "not the login page: {html}");
    let login = browser.submit_login(&latch.base, "", &html, username, PASSWORD).await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER, "sign-in failed");
    let next = absolute(&latch.base, &location(&login).unwrap());
    let (response, more) = follow(browser, &next).await;
    visited.extend(more);
    (response, visited)
}

/// The upstream's echo of a request that got through.
async fn echo(response: reqwest::Response) -> Value {
    let status = response.status();
    let url = response.url().to_string();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "expected the upstream at {url}, got {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not the upstream's echo at {url}: {text}"))
}

fn header_values(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"][name]
        .as_array()
        .map(|values| values.iter().filter_map(|value| value.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

async fn user_id(latch: &TestApp, username: &str) -> String {
    let users: Value = serde_json::from_str(&latch.admin(&["user", "list", "--json"]).await).unwrap();
    let user = users.as_array().unwrap().iter().find(|user| user["username"] == username).unwrap();
    user["id"].as_str().unwrap().to_owned()
}

/// A browser signed in to `proxy`'s app as ada.
async fn signed_in(setup: &Setup, proxy: &Proxy) -> Browser {
    let browser = page_browser();
    let (response, _) = sign_in_through(&setup.latch, &browser, &proxy.url("/"), "ada").await;
    echo(response).await;
    browser
}

/// A request the proxy refused: it sends the browser to sign in again
/// (nginx and Caddy both answer with a redirect to `start` on the app's host).
fn assert_sent_to_sign_in(response: &reqwest::Response, proxy: &Proxy) {
    assert_eq!(response.status(), StatusCode::FOUND, "{:?} should refuse the request", proxy.kind);
    let target = location(response).unwrap();
    assert!(target.starts_with(&proxy.url("/outpost.goauthentik.io/start?rd=")), "{target}");
}

// ------------------------------------------------------------------ tests

async fn sign_in_lands_on_the_original_url_with_identity_headers(backend: Backend) {
    let Some(setup) = setup(backend).await else { return };
    let uid = user_id(&setup.latch, "ada").await;
    for proxy in &setup.proxies {
        let browser = page_browser();
        let original = "/dash/board?tab=2&q=a%20b&rd=x";
        let (response, visited) = sign_in_through(&setup.latch, &browser, &proxy.url(original), "ada").await;
        assert!(
            visited.iter().any(|url| url.starts_with(&proxy.url("/outpost.goauthentik.io/callback?code="))),
            "{visited:#?}"
        );
        let seen = echo(response).await;
        assert_eq!(seen["uri"], original, "{:?} lost the path or query: {seen}", proxy.kind);
        for (name, value) in [
            ("x-authentik-username", "ada"),
            ("x-authentik-groups", "admins|staff"),
            ("x-authentik-email", "ada@example.com"),
            ("x-authentik-name", "Test User"),
            ("x-authentik-uid", uid.as_str()),
            ("remote-user", "ada"),
            ("remote-groups", "admins,staff"),
            ("remote-email", "ada@example.com"),
            ("remote-name", "Test User"),
        ] {
            assert_eq!(header_values(&seen, name), vec![value.to_owned()], "{:?}: {name} in {seen}", proxy.kind);
        }
        // Signed in now: the next request goes straight through.
        let response = browser.client.get(proxy.url("/other?x=1")).send().await.unwrap();
        assert_eq!(echo(response).await["uri"], "/other?x=1");
    }
}

async fn an_existing_latch_session_passes_without_a_password(backend: Backend) {
    let Some(setup) = setup(backend).await else { return };
    let credentials = setup.latch.add_app("grafana", &[CALLBACK], &[]).await;
    let browser = page_browser();
    // Signed in to Latch through an OIDC app…
    let params = code_request(&credentials.client_id, CALLBACK, "state-1");
    let callback = browser.authorize(&setup.latch.base, &setup.latch.authorize_url(&params), "ada", PASSWORD).await;
    assert!(callback.as_str().starts_with(CALLBACK));
    // …then each proxied app lets the browser straight in.
    for proxy in &setup.proxies {
        let (response, visited) = follow(&browser, &proxy.url("/straight/in?yes=1")).await;
        assert!(!visited.iter().any(|url| url.contains("/login")), "asked for a password again: {visited:#?}");
        let seen = echo(response).await;
        assert_eq!(seen["uri"], "/straight/in?yes=1");
        assert_eq!(header_values(&seen, "remote-user"), vec!["ada".to_owned()]);
    }
}

async fn users_outside_the_groups_are_refused_and_the_upstream_never_sees_them(backend: Backend) {
    let Some(setup) = setup(backend).await else { return };
    for proxy in &setup.proxies {
        // bob is in no group: Latch refuses to sign him in to the app.
        let browser = page_browser();
        let (response, _) = sign_in_through(&setup.latch, &browser, &proxy.url("/secret"), "bob").await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let response = browser.client.get(proxy.url("/secret")).send().await.unwrap();
        assert_sent_to_sign_in(&response, proxy);
    }
    assert_eq!(setup.upstream.requests(), 0, "the upstream saw a refused request");
    // ada gets in; once out of the group, her very next request is refused.
    let browsers = {
        let mut browsers = Vec::new();
        for proxy in &setup.proxies {
            browsers.push(signed_in(&setup, proxy).await);
        }
        browsers
    };
    setup.latch.admin(&["group", "remove-member", "admins", "ada"]).await;
    let before = setup.upstream.requests();
    for (proxy, browser) in setup.proxies.iter().zip(&browsers) {
        let response = browser.client.get(proxy.url("/secret")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{:?}", proxy.kind);
    }
    assert_eq!(setup.upstream.requests(), before, "the upstream saw a refused request");
}

async fn forged_identity_headers_never_reach_the_upstream(backend: Backend) {
    let Some(setup) = setup(backend).await else { return };
    let forged = [
        ("X-authentik-username", "mallory"),
        ("X-Authentik-Groups", "root"),
        ("x-authentik-email", "mallory@evil.example"),
        ("X-authentik-name", "Mallory"),
        ("X-authentik-uid", "0"),
        ("Remote-User", "mallory"),
        ("remote-groups", "root"),
        ("Remote-Email", "mallory@evil.example"),
        ("Remote-Name", "Mallory"),
    ];
    for proxy in &setup.proxies {
        // Not signed in: forging gets nowhere, whatever else is forged along.
        let before = setup.upstream.requests();
        let stranger = page_browser();
        let mut request = stranger.client.get(proxy.url("/admin"));
        for (name, value) in forged {
            request = request.header(name, value);
        }
        let response = request
            .header("X-Original-URL", "http://evil.example/")
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Forwarded-Uri", "/elsewhere")
            .send()
            .await
            .unwrap();
        assert_sent_to_sign_in(&response, proxy);
        assert_eq!(setup.upstream.requests(), before);

        // Signed in as ada: the upstream sees ada, once, and never mallory.
        let browser = signed_in(&setup, proxy).await;
        let mut request = browser.client.get(proxy.url("/admin"));
        for (name, value) in forged {
            request = request.header(name, value);
        }
        let seen = echo(request.send().await.unwrap()).await;
        for (name, _) in forged {
            let values = header_values(&seen, &name.to_ascii_lowercase());
            assert_eq!(values.len(), 1, "{:?} passed {name} twice: {seen}", proxy.kind);
            assert!(!values[0].contains("mallory") && values[0] != "root" && values[0] != "0", "{name}: {seen}");
        }
        assert_eq!(header_values(&seen, "remote-user"), vec!["ada".to_owned()]);
    }
}

async fn signing_out_refuses_the_next_request(backend: Backend) {
    let Some(setup) = setup(backend).await else { return };
    for proxy in &setup.proxies {
        let browser = signed_in(&setup, proxy).await;
        let sign_out = proxy.url("/outpost.goauthentik.io/sign_out");
        // A bare GET (a link or an image on any site) only asks.
        let response = browser.client.get(&sign_out).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let html = response.text().await.unwrap();
        assert!(html.contains("<h1>Sign out?</h1>") && html.contains("method=\"post\""), "{html}");
        let response = browser.client.get(proxy.url("/still-in")).send().await.unwrap();
        assert_eq!(echo(response).await["uri"], "/still-in", "{:?}: a GET signed out", proxy.kind);
        // A POST without the form's token (from another site) neither.
        let response = browser.client.post(&sign_out).form(&[("latch_logout", "yes")]).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let response = browser.client.get(proxy.url("/still-in")).send().await.unwrap();
        assert_eq!(echo(response).await["uri"], "/still-in", "{:?}: an unconfirmed POST signed out", proxy.kind);
        // The form, posted back, signs out.
        sign_out_with_the_form(&browser, proxy).await;
        let before = setup.upstream.requests();
        let response = browser.client.get(proxy.url("/after")).send().await.unwrap();
        assert_sent_to_sign_in(&response, proxy);
        assert_eq!(setup.upstream.requests(), before);
        // Out of Latch too: signing in again asks for the password.
        let (page, _) = follow(&browser, &proxy.url("/after")).await;
        assert!(page.url().as_str().starts_with(&setup.latch.url("/login?")), "{}", page.url());
    }
}

/// Opens the sign-out page and posts its form back.
async fn sign_out_with_the_form(browser: &Browser, proxy: &Proxy) {
    let html = browser.client.get(proxy.url("/outpost.goauthentik.io/sign_out")).send().await.unwrap().text().await;
    let html = html.unwrap();
    let action = crate::common::unescape_html(html.split("action=\"").nth(1).unwrap().split('"').next().unwrap());
    let token = crate::common::hidden_input(&html, "csrf_token").unwrap();
    let response = browser
        .client
        .post(proxy.url(&action))
        .form(&[("csrf_token", token.as_str()), ("latch_logout", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{:?}: the sign-out form failed", proxy.kind);
}

async fn disabling_the_user_refuses_the_next_request(backend: Backend) {
    let Some(setup) = setup(backend).await else { return };
    let mut browsers = Vec::new();
    for proxy in &setup.proxies {
        browsers.push(signed_in(&setup, proxy).await);
    }
    setup.latch.admin(&["user", "disable", "ada"]).await;
    let before = setup.upstream.requests();
    for (proxy, browser) in setup.proxies.iter().zip(&browsers) {
        let response = browser.client.get(proxy.url("/after")).send().await.unwrap();
        assert_sent_to_sign_in(&response, proxy);
    }
    assert_eq!(setup.upstream.requests(), before);
}

async fn a_replayed_code_revokes_the_sign_in(backend: Backend) {
    let Some(setup) = setup(backend).await else { return };
    for proxy in &setup.proxies {
        let browser = page_browser();
        let (response, visited) = sign_in_through(&setup.latch, &browser, &proxy.url("/"), "ada").await;
        echo(response).await;
        let callback = visited.iter().find(|url| url.contains("/outpost.goauthentik.io/callback?code=")).unwrap();
        // Someone else presents the same code: refused, and ada's cookie dies.
        let thief = page_browser();
        let response = thief.client.get(callback).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(location(&response).is_none());
        let response = browser.client.get(proxy.url("/")).send().await.unwrap();
        assert_sent_to_sign_in(&response, proxy);
    }
}

async fn rd_outside_the_proxy_apps_is_refused_without_a_redirect(backend: Backend) {
    let Some(setup) = setup(backend).await else { return };
    let mut starts = vec![setup.latch.url("/outpost.goauthentik.io/start")];
    starts.extend(setup.proxies.iter().map(|proxy| proxy.url("/outpost.goauthentik.io/start")));
    let other_port = free_port("127.0.0.2");
    for start in &starts {
        for rd in [
            "rd=https://evil.example/".to_owned(),
            "rd=https%3A%2F%2Fevil.example%2F".to_owned(),
            "rd=//evil.example/".to_owned(),
            "rd=https://evil.example%5C@127.0.0.2/".to_owned(),
            format!("rd=http://127.0.0.2:{other_port}/"),
            format!("rd=https://evil.example/?next=http://127.0.0.2:{other_port}/"),
            "rd=javascript:alert(1)".to_owned(),
            String::new(),
        ] {
            let response = page_browser().client.get(format!("{start}?{rd}")).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{start}?{rd}");
            assert!(location(&response).is_none(), "{start}?{rd} redirected");
        }
    }
    // Latch's own step refuses them too, signed in or not.
    let browser = page_browser();
    browser.sign_in(&setup.latch.base, "ada", PASSWORD).await;
    let query = serde_urlencoded::to_string([("rd", "https://evil.example/"), ("state", "s")]).unwrap();
    let response =
        browser.client.get(setup.latch.url(&format!("/outpost.goauthentik.io/sso?{query}"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(location(&response).is_none());
}

async fn proxy_misconfiguration_is_named_and_traefik_is_answered(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.admin(&["app", "add", "kuma", "--name", "Kuma", "--proxy", "--external-url", "https://kuma.example.com"]).await;
    let client = page_browser().client;
    // nginx without X-Original-URL: a configuration error that says so.
    let response = client.get(app.url("/outpost.goauthentik.io/auth/nginx")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("X-Original-URL"));
    let response = client
        .get(app.url("/outpost.goauthentik.io/auth/nginx"))
        .header("X-Original-URL", "https://kuma.example.com/x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Traefik (not installed here) sends X-Forwarded-*, as Caddy does.
    let response = client.get(app.url("/outpost.goauthentik.io/auth/traefik")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("X-Forwarded-Proto"));
    let forwarded = |host: &'static str| {
        client
            .get(app.url("/outpost.goauthentik.io/auth/traefik"))
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", host)
            .header("X-Forwarded-Uri", "/status?page=1&x=%2F")
    };
    let response = forwarded("kuma.example.com").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        location(&response).unwrap(),
        "https://kuma.example.com/outpost.goauthentik.io/start?rd=https%3A%2F%2Fkuma.example.com%2Fstatus%3Fpage%3D1%26x%3D%252F"
    );
    // A host that is no proxy app is refused, not redirected.
    let response = forwarded("unknown.example.com").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(location(&response).is_none());
    // `app show` prints what to paste into the proxy.
    let shown: Value = serde_json::from_str(&app.admin(&["app", "show", "kuma", "--json"]).await).unwrap();
    assert_eq!(shown["external_url"], "https://kuma.example.com");
    assert_eq!(shown["traefik_auth_url"], app.url("/outpost.goauthentik.io/auth/traefik"));
    assert_eq!(shown["start_url"], "https://kuma.example.com/outpost.goauthentik.io/start");
}

/// A second Latch instance on `app`'s database and public URL, as behind a
/// load balancer. Returns its own address.
pub(crate) async fn second_instance(app: &TestApp, dir: &Path) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let args = latch::config::ConfigArgs {
        public_url: Some(app.base.clone()),
        database_url: Some(app.database_url.clone()),
        data_dir: Some(dir.display().to_string()),
        ..Default::default()
    };
    let server = latch::server::Server::with_listener(&args.load().unwrap(), listener).await.unwrap();
    (base, tokio::spawn(async move { server.run(std::future::pending()).await.unwrap() }))
}

/// Every step of a sign-in, and every check, on alternating instances that
/// share only the database: nothing lives in one process's memory.
async fn any_instance_serves_any_step(backend: Backend) {
    let Some(a) = TestApp::spawn(backend).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (b, server_b) = second_instance(&a, dir.path()).await;
    a.add_user("ada", PASSWORD, &[]).await;
    a.admin(&["app", "add", "kuma", "--name", "Kuma", "--proxy", "--external-url", "https://kuma.example.com"]).await;
    let browser = page_browser();
    let on = |base: &str, url: &str| url.replacen(&a.base, base, 1);
    let check = |base: &str| {
        browser
            .client
            .get(format!("{base}/outpost.goauthentik.io/auth/traefik"))
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "kuma.example.com")
            .header("X-Forwarded-Uri", "/dash?x=1")
    };
    // Check on B: not signed in, off to `start` (on the app's host, which
    // here is played by A).
    let response = check(&b).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let start = location(&response).unwrap().replacen("https://kuma.example.com", &a.base, 1);
    let response = browser.client.get(&start).send().await.unwrap();
    let sso = location(&response).unwrap();
    assert!(sso.starts_with(&a.url("/outpost.goauthentik.io/sso?")), "{sso}");
    // Latch's step on B: to the login page, signed in on B, back to A.
    let response = browser.client.get(on(&b, &sso)).send().await.unwrap();
    let login = location(&response).unwrap();
    let page = browser.client.get(on(&b, &login)).send().await.unwrap().text().await.unwrap();
    let signed_in = browser.submit_login(&b, "", &page, "ada", PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let next = absolute(&a.base, &location(&signed_in).unwrap());
    let response = browser.client.get(&next).send().await.unwrap();
    let callback = location(&response).unwrap();
    assert!(callback.starts_with("https://kuma.example.com/outpost.goauthentik.io/callback?code="), "{callback}");
    // The callback on B sets the app's cookie; the check on A honours it.
    let response = browser.client.get(callback.replacen("https://kuma.example.com", &b, 1)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response).unwrap(), "https://kuma.example.com/dash?x=1");
    let response = check(&a.base).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["remote-user"], "ada");
    // Disabled through A's database: B refuses the very next check.
    a.admin(&["user", "disable", "ada"]).await;
    let response = check(&b).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    server_b.abort();
}

/// Two servers in one process on one database (as in these tests, or in a
/// program embedding Latch), and a user then apps added by the CLI, another
/// process, one after the other: each instance knows each app at once.
/// Starting the second instance must leave the first one's locks on the
/// SQLite file in place: without them a CLI command, closing, took the
/// database for unused and deleted the WAL and shared-memory files both
/// instances were still reading, and their readers saw no later commit
/// (B answered "Unknown app" for the second app).
async fn both_instances_in_one_process_see_each_app_the_cli_adds(backend: Backend) {
    let Some(a) = TestApp::spawn(backend).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (b, server_b) = second_instance(&a, dir.path()).await;
    let client = page_browser().client;
    a.add_user("ada", PASSWORD, &[]).await;
    for n in 1..=3 {
        let host = format!("app{n}.example.com");
        a.admin(&[
            "app",
            "add",
            &format!("app{n}"),
            "--name",
            "App",
            "--proxy",
            "--external-url",
            &format!("https://{host}"),
        ])
        .await;
        for base in [&b, &a.base] {
            let response = client
                .get(format!("{base}/outpost.goauthentik.io/auth/traefik"))
                .header("X-Forwarded-Method", "GET")
                .header("X-Forwarded-Proto", "https")
                .header("X-Forwarded-Host", &host)
                .header("X-Forwarded-Uri", "/")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FOUND, "{base} on {host}: {}", response.text().await.unwrap());
        }
    }
    server_b.abort();
}

/// Drives start → sso → callback against Latch directly (the app hosts are
/// example names that do not resolve) and returns the callback's answer.
pub async fn sign_in_directly(latch: &TestApp, browser: &Browser, target: &str) -> reqwest::Response {
    let external = url::Url::parse(target).unwrap().origin().ascii_serialization();
    let query = serde_urlencoded::to_string([("rd", target)]).unwrap();
    let start = latch.url(&format!("/outpost.goauthentik.io/start?{query}"));
    let response = browser.client.get(start).headers(header_map(&PAGE_HEADERS)).send().await.unwrap();
    let sso = location(&response).unwrap();
    let response = browser.client.get(&sso).send().await.unwrap();
    let callback = location(&response).unwrap();
    assert!(callback.starts_with(&format!("{external}/outpost.goauthentik.io/callback?code=")), "{callback}");
    browser.client.get(callback.replacen(&external, &latch.base, 1)).send().await.unwrap()
}

/// `--cookie-domain`: one sign-in covers every app sharing the domain (each
/// still checking its own groups), and no app outside it.
async fn a_cookie_domain_covers_the_apps_that_share_it(backend: Backend) {
    let Some(latch) = TestApp::spawn(backend).await else { return };
    latch.admin(&["group", "add", "admins"]).await;
    latch.add_user("ada", PASSWORD, &[]).await;
    for (slug, host, extra) in [
        ("kuma", "kuma.example.com", &["--cookie-domain", "example.com"][..]),
        ("grafana", "grafana.example.com", &["--cookie-domain", "example.com"][..]),
        ("admin", "admin.example.com", &["--cookie-domain", "example.com", "--group", "admins"][..]),
        ("alone", "alone.example.com", &[][..]),
    ] {
        let external = format!("https://{host}");
        let mut args = vec!["app", "add", slug, "--name", slug, "--proxy", "--external-url", &external];
        args.extend(extra);
        latch.admin(&args).await;
    }
    let browser = page_browser();
    browser.sign_in(&latch.base, "ada", PASSWORD).await;
    let response = sign_in_directly(&latch, &browser, "https://kuma.example.com/a?b=c").await;
    assert_eq!(location(&response).unwrap(), "https://kuma.example.com/a?b=c");
    let cookie = app_cookie(&response);
    assert!(cookie.contains("; Domain=example.com") && cookie.contains("; Secure") && cookie.contains("; HttpOnly"));
    let pair = cookie.split(';').next().unwrap().to_owned();
    let check = |host: &str| {
        crate::common::http()
            .get(latch.url("/outpost.goauthentik.io/auth/traefik"))
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", host)
            .header("X-Forwarded-Uri", "/")
            .header("Cookie", pair.clone())
            .send()
    };
    assert_eq!(check("kuma.example.com").await.unwrap().status(), StatusCode::OK);
    assert_eq!(check("grafana.example.com").await.unwrap().status(), StatusCode::OK);
    assert_eq!(check("admin.example.com").await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(check("alone.example.com").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // A host-only app's cookie stays with that app, and says so by its name.
    let response = sign_in_directly(&latch, &browser, "https://alone.example.com/").await;
    let cookie = app_cookie(&response);
    assert!(!cookie.contains("Domain=") && cookie.starts_with("__Host-latch_proxy_"), "{cookie}");
}

/// The app's sign-in cookie among a response's `Set-Cookie`s.
pub fn app_cookie(response: &reqwest::Response) -> String {
    crate::common::set_cookies(response)
        .into_iter()
        .find(|cookie| {
            let name = cookie.split('=').next().unwrap_or_default().trim_start_matches("__Host-");
            name.starts_with("latch_proxy_")
                && !name.starts_with("latch_proxy_state")
                && !cookie_value(cookie).is_empty()
        })
        .expect("the app's cookie")
}

/// The token in a `Set-Cookie` value.
fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

pub fn header_map(pairs: &[(&str, &str)]) -> reqwest::header::HeaderMap {
    pairs.iter().map(|(name, value)| (name.parse().unwrap(), value.parse().unwrap())).collect()
}

/// What `fetch()` sends from a page.
const FETCH_HEADERS: [(&str, &str); 3] = [("accept", "*/*"), ("sec-fetch-mode", "cors"), ("sec-fetch-dest", "empty")];

/// Scripts, API clients, POSTs and HEADs get a 401 they can act on, from
/// each proxy and from `start`; only a page is sent to sign in.
async fn only_page_navigations_are_sent_to_sign_in(backend: Backend) {
    let Some(setup) = setup(backend).await else { return };
    for proxy in &setup.proxies {
        let client = crate::common::http();
        let url = proxy.url("/api/items?x=1");
        let requests = [
            ("fetch", client.get(&url).headers(header_map(&FETCH_HEADERS))),
            ("JSON API call", client.get(&url).header("accept", "application/json")),
            ("XHR", client.get(&url).header("x-requested-with", "XMLHttpRequest").header("accept", "text/html")),
            ("form POST", client.post(&url).headers(header_map(&PAGE_HEADERS)).form(&[("a", "b")])),
            ("HEAD", client.head(&url).headers(header_map(&PAGE_HEADERS))),
        ];
        for (what, request) in requests {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{:?}: {what}", proxy.kind);
            assert!(location(&response).is_none(), "{:?}: {what} was redirected", proxy.kind);
        }
        let response = client.get(&url).headers(header_map(&PAGE_HEADERS)).send().await.unwrap();
        assert_sent_to_sign_in(&response, proxy);
        // A script that followed a redirect to `start` (Authentik's configs
        // redirect every 401) gets the 401 too, and starts no sign-in.
        let start = location(&response).unwrap();
        let response = client.get(&start).headers(header_map(&FETCH_HEADERS)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{:?}: start answered a fetch", proxy.kind);
        assert!(crate::common::set_cookies(&response).is_empty());
        let response = client.get(&start).headers(header_map(&PAGE_HEADERS)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{:?}: start refused a page", proxy.kind);
    }
    assert_eq!(setup.upstream.requests(), 0, "the upstream saw a request without a sign-in");
}

/// Two tabs start signing in to one app before either finishes: both land
/// where they were going.
async fn sign_ins_in_several_tabs_all_finish(backend: Backend) {
    let Some(setup) = setup(backend).await else { return };
    for proxy in &setup.proxies {
        let browser = page_browser();
        let mut tabs = Vec::new();
        for path in ["/first-tab", "/second-tab", "/third-tab"] {
            let (page, visited) = follow(&browser, &proxy.url(path)).await;
            assert!(page.url().as_str().starts_with(&setup.latch.url("/login?")), "{visited:#?}");
            tabs.push((path, page.text().await.unwrap()));
        }
        // Finished in the order they were opened: the first tab's state
        // cookie is the oldest.
        for (path, html) in &tabs {
            let login = browser.submit_login(&setup.latch.base, "", html, "ada", PASSWORD).await;
            assert_eq!(login.status(), StatusCode::SEE_OTHER);
            let (response, visited) = follow(&browser, &absolute(&setup.latch.base, &location(&login).unwrap())).await;
            assert_eq!(response.status(), StatusCode::OK, "{:?}: {path} did not finish: {visited:#?}", proxy.kind);
            assert_eq!(echo(response).await["uri"], *path);
        }
    }
}

/// A browser already signed in to Latch is never asked again, and a new
/// one signs in once, behind proxies configured as Authentik documents:
/// nginx rewrites Latch's redirect to `sso` onto the app's host, where the
/// browser has no Latch session, so Latch's login page must let a
/// signed-in browser through.
async fn authentik_style_proxy_configs_work_unchanged(backend: Backend) {
    let Some(setup) = setup_with(backend, Flavor::Authentik).await else { return };
    for proxy in &setup.proxies {
        let browser = page_browser();
        browser.sign_in(&setup.latch.base, "ada", PASSWORD).await;
        let (response, visited) = follow(&browser, &proxy.url("/dash?tab=2")).await;
        assert_eq!(response.status(), StatusCode::OK, "{:?} asked again: {visited:#?}", proxy.kind);
        let seen = echo(response).await;
        assert_eq!(seen["uri"], "/dash?tab=2");
        assert_eq!(header_values(&seen, "x-authentik-username"), vec!["ada".to_owned()]);

        let fresh = page_browser();
        let (response, _) = sign_in_through(&setup.latch, &fresh, &proxy.url("/other"), "ada").await;
        assert_eq!(echo(response).await["uri"], "/other");
        let response = fresh.client.get(proxy.url("/again")).send().await.unwrap();
        assert_eq!(echo(response).await["uri"], "/again");
        // Signing out works through these configs too (nginx drops the
        // body of requests to the outpost paths).
        sign_out_with_the_form(&fresh, proxy).await;
        let response = fresh.client.get(proxy.url("/after")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{:?}: still signed in", proxy.kind);
        assert!(location(&response).unwrap().contains("/outpost.goauthentik.io/start?rd="));
        // A script is told 401 even though these configs redirect every 401.
        let response =
            crate::common::http().get(proxy.url("/api")).headers(header_map(&FETCH_HEADERS)).send().await.unwrap();
        let start = location(&response).map(|start| absolute(&proxy.base, &start));
        if let Some(start) = start {
            let response = crate::common::http().get(&start).headers(header_map(&FETCH_HEADERS)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{:?}: {start}", proxy.kind);
        } else {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{:?}", proxy.kind);
        }
    }
}

/// `/login?next=…` continues a signed-in browser to `next`, unless `next`
/// itself demands a fresh sign-in (`prompt=login`); `next` stays a path on
/// Latch.
async fn the_login_page_lets_a_signed_in_browser_through(backend: Backend) {
    let Some(latch) = TestApp::spawn(backend).await else { return };
    latch.add_user("ada", PASSWORD, &[]).await;
    let credentials = latch.add_app("grafana", &[CALLBACK], &[]).await;
    let browser = page_browser();
    browser.sign_in(&latch.base, "ada", PASSWORD).await;
    let login = |next: &str| {
        let query = serde_urlencoded::to_string([("next", next)]).unwrap();
        browser.client.get(latch.url(&format!("/login?{query}"))).send()
    };
    let response = login("/outpost.goauthentik.io/sso?rd=x&state=y").await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response).unwrap(), "/outpost.goauthentik.io/sso?rd=x&state=y");
    let response = login("https://evil.example/").await.unwrap();
    assert_eq!(location(&response).unwrap(), "/");
    // Without a `next`, the form stays: to sign in as someone else.
    assert_eq!(browser.client.get(latch.url("/login")).send().await.unwrap().status(), StatusCode::OK);
    // prompt=login sends the browser to the login page, which asks.
    latch.clock.advance(1);
    let mut params = code_request(&credentials.client_id, CALLBACK, "s");
    params.push(("prompt", "login"));
    let response = browser.client.get(latch.authorize_url(&params)).send().await.unwrap();
    let page = browser.client.get(absolute(&latch.base, &location(&response).unwrap())).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("name=\"password\""));
}

/// Another host under the same parent domain can make the browser send a
/// cookie of its choosing along with the app's own; it never counts.
async fn a_cookie_another_host_planted_never_wins(backend: Backend) {
    let Some(latch) = TestApp::spawn(backend).await else { return };
    latch.admin(&["group", "add", "staff"]).await;
    latch.add_user("ada", PASSWORD, &["staff"]).await;
    latch.add_user("bob", PASSWORD, &[]).await;
    for (slug, external) in [("kuma", "https://kuma.example.com"), ("plain", "http://plain.example.com")] {
        latch.admin(&["app", "add", slug, "--name", slug, "--proxy", "--external-url", external]).await;
    }
    let token_of = async |username: &str, target: &str| {
        let browser = page_browser();
        browser.sign_in(&latch.base, username, PASSWORD).await;
        let response = sign_in_directly(&latch, &browser, target).await;
        let cookie = app_cookie(&response);
        (cookie.split('=').next().unwrap().to_owned(), cookie_value(&cookie), crate::common::set_cookies(&response))
    };
    let (name, ada, _) = token_of("ada", "https://kuma.example.com/").await;
    let (_, bob, _) = token_of("bob", "https://kuma.example.com/").await;
    let check = |host: &str, cookies: String| {
        crate::common::http()
            .get(latch.url("/outpost.goauthentik.io/auth/traefik"))
            .header("X-Forwarded-Proto", if host.starts_with("plain") { "http" } else { "https" })
            .header("X-Forwarded-Host", host)
            .header("X-Forwarded-Uri", "/")
            .header("Cookie", cookies)
            .send()
    };
    let user = async |response: reqwest::Response| {
        (response.status(), response.headers().get("remote-user").map(|value| value.to_str().unwrap().to_owned()))
    };
    // bob's cookie, planted for the parent domain under the unprefixed
    // name, beside ada's own: ada.
    let unprefixed = name.trim_start_matches("__Host-");
    let planted = format!("{unprefixed}={bob}; {name}={ada}");
    assert_eq!(user(check("kuma.example.com", planted).await.unwrap()).await, (StatusCode::OK, Some("ada".into())));
    // bob's cookie under the name of the parent domain's scope: not his.
    let parent = latch::proxy::cookie::session_cookie_name("example.com");
    let response = check("kuma.example.com", format!("{parent}={bob}")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Over http no name is safe from planting: two people, no one.
    let (plain, ada, set) = token_of("ada", "http://plain.example.com/").await;
    let (_, bob, _) = token_of("bob", "http://plain.example.com/").await;
    // Signing in clears what a sibling could have planted for the parent.
    let cleared = format!("{plain}=; Path=/; Max-Age=0; Domain=example.com; HttpOnly; SameSite=Lax");
    assert!(set.contains(&cleared), "{set:#?}");
    for cookies in [format!("{plain}={bob}; {plain}={ada}"), format!("{plain}={ada}; {plain}={bob}")] {
        assert_eq!(check("plain.example.com", cookies).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(check("plain.example.com", format!("{plain}={ada}")).await.unwrap().status(), StatusCode::OK);
    // Planted under longer paths, bob's cookies come first in the header:
    // more of them than the check looks at must not push ada's out of
    // sight and leave bob alone to be admitted.
    let flood = format!("{plain}={bob}; {plain}={bob}; {plain}={bob}; {plain}={bob}; {plain}={ada}");
    assert_eq!(check("plain.example.com", flood).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // Signing out with planted cookies ahead of the app's own still ends
    // ada's sign-in, not only the planted ones.
    let junk: Vec<String> = (0..4).map(|n| format!("{plain}={n:0>43}")).collect();
    let cookies = format!("{}; {plain}={ada}", junk.join("; "));
    let sign_out = latch.url("/outpost.goauthentik.io/sign_out");
    let client = crate::common::http();
    let html = client.get(&sign_out).header("Cookie", &cookies).send().await.unwrap().text().await.unwrap();
    let action = crate::common::unescape_html(html.split("action=\"").nth(1).unwrap().split('"').next().unwrap());
    let token = crate::common::hidden_input(&html, "csrf_token").unwrap();
    let response = client
        .post(latch.url(&action))
        .header("Cookie", &cookies)
        .form(&[("csrf_token", token.as_str()), ("latch_logout", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the sign-out form");
    let response = check("plain.example.com", format!("{plain}={ada}")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "ada's sign-in outlived the sign-out");
}

on_every_backend!(
    only_page_navigations_are_sent_to_sign_in,
    sign_ins_in_several_tabs_all_finish,
    authentik_style_proxy_configs_work_unchanged,
    the_login_page_lets_a_signed_in_browser_through,
    a_cookie_another_host_planted_never_wins,
    sign_in_lands_on_the_original_url_with_identity_headers,
    an_existing_latch_session_passes_without_a_password,
    users_outside_the_groups_are_refused_and_the_upstream_never_sees_them,
    forged_identity_headers_never_reach_the_upstream,
    signing_out_refuses_the_next_request,
    disabling_the_user_refuses_the_next_request,
    a_replayed_code_revokes_the_sign_in,
    rd_outside_the_proxy_apps_is_refused_without_a_redirect,
    proxy_misconfiguration_is_named_and_traefik_is_answered,
    any_instance_serves_any_step,
    both_instances_in_one_process_see_each_app_the_cli_adds,
    a_cookie_domain_covers_the_apps_that_share_it,
);

/// The README shows the configs these tests run, character for character.
#[test]
fn the_readme_shows_the_tested_proxy_configs() {
    let readme = repo_file("README.md");
    for template in [NGINX_TEMPLATE, CADDY_TEMPLATE] {
        let config = repo_file(template);
        assert!(readme.contains(config.trim_end()), "README.md does not show {template} as it is");
    }
}
