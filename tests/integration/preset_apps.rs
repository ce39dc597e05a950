//! Presets proven by signing a new person in through the real app or the
//! app's own OpenID Connect library, configured with nothing but what
//! `latch app add --preset … --json` printed (plus the app's own base URL
//! and local secrets): Apache's mod_auth_openidc, a NextAuth v4 host set up
//! as Karakeep sets it up, a django-allauth site set up as Paperless-ngx
//! sets it up, JupyterHub with oauthenticator, and authlib's Starlette
//! client used as Open WebUI uses it (Open WebUI itself, with torch and
//! CUDA, is too heavy to install for CI). The Python and Node.js
//! packages live in tests/apps (installed by tests/apps/setup.sh, which
//! .ci/run calls); without them the tests print SKIPPED outside CI and fail
//! under CI. Each app listens on its own loopback address, so its cookies
//! and Latch's (on 127.0.0.1) stay apart.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Backend, Browser, TestApp, absolute, hidden_input, location, poll_until};
use crate::mod_auth_openidc::{Apache, apache};
use crate::on_every_backend;
use crate::presets::add_from_preset;
use crate::relying_party::{PASSWORD, server};

/// tests/apps: the apps' own code and their installed packages.
fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

/// `path` when setup.sh installed it; otherwise `None` (with a notice)
/// outside CI, and a failure under CI, where .ci/run installs it.
fn installed(path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing under CI: .ci/run runs tests/apps/setup.sh",
        path.display()
    );
    eprintln!("SKIPPED ({} missing: run tests/apps/setup.sh)", path.display());
    None
}

fn python() -> Option<PathBuf> {
    installed(apps_dir().join(".venv/bin/python"))
}

fn node_modules() -> Option<PathBuf> {
    installed(apps_dir().join("node_modules/next-auth"))?;
    Some(apps_dir().join("node_modules"))
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).expect("bind").local_addr().expect("addr").port()
}

/// The app settings `app add --preset --json` printed, in order; a value
/// the preset leaves to the operator (`<…>`, a local secret) gets a fresh
/// random one, as the operator would make.
fn settings(added: &Value) -> Vec<(String, String)> {
    let settings = added["settings"].as_object().unwrap_or_else(|| panic!("no settings: {added}"));
    settings
        .iter()
        .map(|(name, value)| {
            let value = value.as_str().unwrap_or_else(|| panic!("{name}: {value}"));
            let local_secret = value.starts_with('<') && value.ends_with('>');
            let value = if local_secret { uuid::Uuid::new_v4().simple().to_string() } else { value.to_owned() };
            (name.clone(), value)
        })
        .collect()
}

/// A real app's server process, killed with everything it started (its
/// process group) when dropped.
struct AppServer {
    base: String,
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl AppServer {
    /// Starts `program args…` in `dir` with `env`, output to `dir/app.log`,
    /// and waits until it listens on `ip:port`.
    async fn start(
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        dir: tempfile::TempDir,
        ip: &str,
        port: u16,
    ) -> Self {
        let log = std::fs::File::create(dir.path().join("app.log")).expect("log");
        let child = tokio::process::Command::new(program)
            .args(args)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", program.display()));
        let mut server = Self { base: format!("http://{ip}:{port}"), child, dir };
        let listening = poll_until(Duration::from_secs(60), async || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{} exited with {status} before listening:\n{}", program.display(), server.logs());
            }
            tokio::net::TcpStream::connect((ip, port)).await.ok()
        })
        .await;
        assert!(listening.is_some(), "{} did not listen within 60 s:\n{}", program.display(), server.logs());
        server
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("app.log")).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        // The process group: JupyterHub's proxy and runserver's children too.
        let group = self.child.id().and_then(|id| rustix::process::Pid::from_raw(id as i32));
        if let Some(group) = group {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

/// The app's redirect to Latch, which must go to Latch's authorization
/// endpoint: the sign-in there, and the callback URL Latch sends back.
async fn sign_in_at_latch(browser: &Browser, latch: &TestApp, app: &AppServer, response: reqwest::Response) -> String {
    let status = response.status();
    let authorize = location(&response).unwrap_or_else(|| panic!("{status}, not a redirect:\n{}", app.logs()));
    assert!(authorize.starts_with(&latch.url("/application/o/authorize/")), "{authorize}");
    let callback = browser.authorize(&latch.base, &authorize, "ada", PASSWORD).await;
    assert!(callback.as_str().starts_with(&app.base), "{callback}");
    callback.to_string()
}

/// GETs `url` on the app and returns where it redirects to, absolute.
async fn redirect_from(browser: &Browser, app: &AppServer, url: &str) -> String {
    let response = browser.client.get(url).send().await.expect("request");
    let status = response.status();
    match location(&response) {
        Some(to) if status.is_redirection() => absolute(&app.base, &to),
        _ => panic!("{url}: {status}: {}\n{}", response.text().await.unwrap_or_default(), app.logs()),
    }
}

async fn mod_auth_openidc_preset_signs_in_through_apache(backend: Backend) {
    let Some(binary) = apache() else { return };
    let Some(latch) = server(backend).await else { return };
    let port = free_port(crate::mod_auth_openidc::IP);
    let url = format!("http://{}:{port}/protected", crate::mod_auth_openidc::IP);
    let added = add_from_preset(&latch, "apache", "mod-auth-openidc", &url).await;
    let directives: Vec<String> = settings(&added).iter().map(|(name, value)| format!("{name} {value}")).collect();
    let apache = Apache::start_with(&binary, port, &directives.join("\n"), "/protected").await;

    let browser = Browser::new();
    let first = browser.client.get(apache.url("/protected/index.html")).send().await.unwrap();
    let authorize = location(&first).unwrap_or_else(|| panic!("{}: {}", first.status(), apache.logs()));
    assert!(authorize.contains("code_challenge_method=S256"), "OIDCPKCEMethod: {authorize}");
    let callback = browser.authorize(&latch.base, &authorize, "ada", PASSWORD).await;
    assert!(callback.as_str().starts_with(&format!("{url}/redirect_uri?")), "{callback}");
    let back = browser.client.get(callback.as_str()).send().await.unwrap();
    assert!(location(&back).is_some_and(|to| to.ends_with("/protected/index.html")), "{}", apache.logs());
    let page = browser.client.get(apache.url("/protected/index.html")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{}", apache.logs());
    assert_eq!(page.text().await.unwrap(), "PROTECTED\n");
    // OIDCRemoteUserClaim preferred_username: Apache knows the person by
    // name. It logs a request after answering it.
    let logged = poll_until(Duration::from_secs(5), async || {
        apache.served_users().contains("ada /protected/index.html").then_some(())
    });
    assert!(logged.await.is_some(), "{}", apache.served_users());
}

on_every_backend!(mod_auth_openidc_preset_signs_in_through_apache);

async fn karakeep_preset_signs_a_new_person_in_through_nextauth(backend: Backend) {
    let Some(node_modules) = node_modules() else { return };
    let Some(latch) = server(backend).await else { return };
    let ip = "127.0.0.6";
    let port = free_port(ip);
    let url = format!("http://{ip}:{port}");
    let added = add_from_preset(&latch, "karakeep", "karakeep", &url).await;
    let mut env = settings(&added);
    // Karakeep's own secret, which the preset leaves to the operator.
    env.push(("NEXTAUTH_SECRET".into(), uuid::Uuid::new_v4().simple().to_string()));
    let script = node_modules.parent().expect("tests/apps").join("karakeep_nextauth/server.js");
    let script = script.to_string_lossy().into_owned();
    let port_text = port.to_string();
    let dir = tempfile::tempdir().unwrap();
    let app =
        AppServer::start(Path::new("node"), &[script.as_str(), ip, port_text.as_str()], &env, dir, ip, port).await;

    let browser = Browser::new();
    let csrf: Value = browser.client.get(app.url("/api/auth/csrf")).send().await.unwrap().json().await.unwrap();
    let csrf = csrf["csrfToken"].as_str().expect("csrfToken");
    let start = browser
        .client
        .post(app.url("/api/auth/signin/custom"))
        .form(&[("csrfToken", csrf), ("callbackUrl", &app.url("/"))])
        .send()
        .await
        .unwrap();
    let callback = sign_in_at_latch(&browser, &latch, &app, start).await;
    assert!(callback.starts_with(&app.url("/api/auth/callback/custom?")), "{callback}");
    let home = redirect_from(&browser, &app, &callback).await;
    assert_eq!(home, app.url("/"), "NextAuth refused the sign-in:\n{}", app.logs());
    let session: Value = browser.client.get(app.url("/api/auth/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(session["user"]["email"], "ada@example.com", "{session}");
    assert_eq!(session["user"]["name"], "Test User", "{session}");
}

on_every_backend!(karakeep_preset_signs_a_new_person_in_through_nextauth);

async fn paperless_ngx_preset_signs_a_new_person_in_through_django_allauth(backend: Backend) {
    let Some(python) = python() else { return };
    let Some(latch) = server(backend).await else { return };
    let ip = "127.0.0.5";
    let port = free_port(ip);
    let url = format!("http://{ip}:{port}");
    let added = add_from_preset(&latch, "paperless", "paperless-ngx", &url).await;
    let env = settings(&added);
    assert!(env.contains(&("PAPERLESS_ACCOUNT_DEFAULT_HTTP_PROTOCOL".into(), "http".into())), "{env:?}");
    let site = apps_dir().join("paperless_allauth/site.py").to_string_lossy().into_owned();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_string_lossy().into_owned();
    let port_text = port.to_string();
    let args = [site.as_str(), ip, port_text.as_str(), data.as_str()];
    let app = AppServer::start(&python, &args, &env, dir, ip, port).await;

    let browser = Browser::new();
    let login = app.url("/accounts/oidc/latch/login/?process=login");
    let page = browser.client.get(&login).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{}", app.logs());
    let csrf = hidden_input(&page.text().await.unwrap(), "csrfmiddlewaretoken").expect("allauth's confirmation form");
    let start = browser.client.post(&login).form(&[("csrfmiddlewaretoken", csrf)]).send().await.unwrap();
    let callback = sign_in_at_latch(&browser, &latch, &app, start).await;
    assert!(callback.starts_with(&app.url("/accounts/oidc/latch/login/callback/?")), "{callback}");
    let landing = redirect_from(&browser, &app, &callback).await;
    assert_eq!(landing, app.url("/whoami"), "allauth did not sign the new person in:\n{}", app.logs());
    let whoami = browser.client.get(&landing).send().await.unwrap();
    assert_eq!(whoami.status(), StatusCode::OK);
    assert_eq!(whoami.text().await.unwrap(), "ada ada@example.com");
}

on_every_backend!(paperless_ngx_preset_signs_a_new_person_in_through_django_allauth);

async fn jupyterhub_preset_signs_a_new_person_in_through_oauthenticator(backend: Backend) {
    let Some(python) = python() else { return };
    let Some(node_modules) = node_modules() else { return };
    let Some(latch) = server(backend).await else { return };
    let ip = "127.0.0.7";
    let (port, hub_port, api_port) = (free_port(ip), free_port(ip), free_port(ip));
    let url = format!("http://{ip}:{port}");
    let added = add_from_preset(&latch, "jupyterhub", "jupyterhub", &url).await;
    // The hub's proxy runs as a process of the test's own, not the hub's
    // (JupyterHub starts its proxy in a session of its own, which would
    // outlive a killed hub): JupyterHub's "external proxy" setup.
    let token = uuid::Uuid::new_v4().simple().to_string();
    let proxy_env = [("CONFIGPROXY_AUTH_TOKEN".to_owned(), token.clone())];
    let proxy_args = [
        "--ip".to_owned(),
        ip.to_owned(),
        "--port".to_owned(),
        port.to_string(),
        "--api-ip".to_owned(),
        ip.to_owned(),
        "--api-port".to_owned(),
        api_port.to_string(),
        "--default-target".to_owned(),
        format!("http://{ip}:{hub_port}"),
    ];
    let proxy_args: Vec<&str> = proxy_args.iter().map(String::as_str).collect();
    let proxy = node_modules.join(".bin/configurable-http-proxy");
    let _proxy = AppServer::start(&proxy, &proxy_args, &proxy_env, tempfile::tempdir().unwrap(), ip, port).await;

    let dir = tempfile::tempdir().unwrap();
    let mut config: Vec<String> = settings(&added).iter().map(|(name, value)| format!("c.{name} = {value}")).collect();
    // Where this hub runs: its addresses, files, and proxy.
    let d = dir.path().display();
    config.extend([
        format!("c.JupyterHub.bind_url = \"{url}\""),
        format!("c.JupyterHub.hub_bind_url = \"http://{ip}:{hub_port}\""),
        format!("c.ConfigurableHTTPProxy.api_url = \"http://{ip}:{api_port}\""),
        "c.ConfigurableHTTPProxy.should_start = False".to_owned(),
        format!("c.ConfigurableHTTPProxy.auth_token = \"{token}\""),
        format!("c.JupyterHub.db_url = \"sqlite:///{d}/hub.sqlite\""),
        format!("c.JupyterHub.cookie_secret_file = \"{d}/cookie_secret\""),
        format!("c.JupyterHub.pid_file = \"{d}/hub.pid\""),
    ]);
    std::fs::write(dir.path().join("jupyterhub_config.py"), config.join("\n")).unwrap();
    let hub = python.parent().expect("bin").join("jupyterhub");
    let mut app = AppServer::start(&hub, &["-f", "jupyterhub_config.py"], &[], dir, ip, hub_port).await;
    // People reach the hub through its proxy.
    app.base = url;

    let browser = Browser::new();
    let ready = poll_until(Duration::from_secs(30), async || {
        let response = browser.client.get(app.url("/hub/oauth_login")).send().await.ok()?;
        response.status().is_redirection().then_some(response)
    });
    let start = ready.await.unwrap_or_else(|| panic!("the hub did not start:\n{}", app.logs()));
    let callback = sign_in_at_latch(&browser, &latch, &app, start).await;
    assert!(callback.starts_with(&app.url("/hub/oauth_callback?")), "{callback}");
    let next = redirect_from(&browser, &app, &callback).await;
    assert!(next.starts_with(&app.url("/hub/")), "the hub did not sign ada in: {next}\n{}", app.logs());
    let home = browser.client.get(app.url("/hub/home")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK, "{}", app.logs());
    assert!(home.text().await.unwrap().contains("ada"), "the hub's home page is not ada's");
}

on_every_backend!(jupyterhub_preset_signs_a_new_person_in_through_oauthenticator);

async fn open_webui_preset_signs_a_new_person_in_through_authlib(backend: Backend) {
    let Some(python) = python() else { return };
    let Some(latch) = server(backend).await else { return };
    let ip = "127.0.0.8";
    let port = free_port(ip);
    let url = format!("http://{ip}:{port}");
    let added = add_from_preset(&latch, "open-webui", "open-webui", &url).await;
    let mut env = settings(&added);
    // Open WebUI's own session secret, which the preset leaves to the operator.
    env.push(("WEBUI_SECRET_KEY".into(), uuid::Uuid::new_v4().simple().to_string()));
    let script = apps_dir().join("open_webui_authlib/app.py").to_string_lossy().into_owned();
    let port_text = port.to_string();
    let dir = tempfile::tempdir().unwrap();
    let app = AppServer::start(&python, &[script.as_str(), ip, port_text.as_str()], &env, dir, ip, port).await;

    let browser = Browser::new();
    let start = browser.client.get(app.url("/oauth/oidc/login")).send().await.unwrap();
    let callback = sign_in_at_latch(&browser, &latch, &app, start).await;
    assert!(callback.starts_with(&app.url("/oauth/oidc/callback?")), "{callback}");
    let signed_in = browser.client.get(&callback).send().await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK, "{}", app.logs());
    let person: Value = signed_in.json().await.unwrap();
    assert_eq!(person["email"], "ada@example.com", "{person}");
    assert_eq!(person["username"], "ada", "OAUTH_USERNAME_CLAIM: {person}");
    // Open WebUI takes the person from the ID token, as the preset says.
    assert_eq!(person["claims_from"], "id_token", "{person}");
}

on_every_backend!(open_webui_preset_signs_a_new_person_in_through_authlib);
