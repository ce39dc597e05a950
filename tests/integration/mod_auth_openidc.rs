//! A real relying party that implements Back-Channel Logout 1.0: Apache
//! httpd with Debian's `mod_auth_openidc`, started here as a foreground
//! process with its own configuration in a temporary directory, listening on
//! 127.0.0.4 (so its cookies and Latch's, on 127.0.0.1, stay apart). A
//! browser signs in to Apache's protected location through Latch, signs out
//! at Latch, and Apache's own session is gone: the next request to the
//! protected location is sent to Latch again.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;

use crate::common::{Backend, Browser, TestApp, location, poll_until};
use crate::on_every_backend;
use crate::relying_party::{PASSWORD, confirm_sign_out, server};

pub const IP: &str = "127.0.0.4";
const MODULES: &str = "/usr/lib/apache2/modules";

/// Apache's binary and `mod_auth_openidc`, or `None` (with a notice) when
/// they are not installed outside CI. Under CI they must be: `.ci/run`
/// installs them.
pub fn apache() -> Option<PathBuf> {
    let binary = ["/usr/sbin/apache2", "/usr/sbin/httpd"].map(PathBuf::from).into_iter().find(|path| path.is_file());
    let module = Path::new(MODULES).join("mod_auth_openidc.so");
    match binary {
        Some(binary) if module.is_file() => Some(binary),
        _ if std::env::var_os("CI").is_some() => {
            panic!("apache2 and libapache2-mod-auth-openidc are required under CI (.ci/run installs them)")
        }
        _ => {
            eprintln!("SKIPPED (apache2 with mod_auth_openidc not installed)");
            None
        }
    }
}

pub struct Apache {
    base: String,
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

/// Where mod_auth_openidc receives the authorization response and, with
/// `?logout=backchannel`, logout tokens.
const REDIRECT_PATH: &str = "/protected/redirect_uri";

/// The whole configuration: the modules it needs, the `mod_auth_openidc`
/// directives (one per line), and `location` behind it.
fn config(dir: &Path, port: u16, directives: &str, location: &str) -> String {
    let d = dir.display();
    // Run as root (CI), Apache switches to `User` for its worker.
    let user = if rustix::process::geteuid().is_root() { "User www-data\nGroup www-data\n" } else { "" };
    // One process serves one connection at a time (-X): a browser's
    // kept-alive connection would keep Latch's notice waiting. The access
    // log records the user each request was served to.
    format!(
        "ServerRoot \"{d}\"\nServerName {IP}\nListen {IP}:{port}\nPidFile {d}/apache.pid\n\
             ErrorLog {d}/error.log\nLogLevel warn auth_openidc:debug\n{user}\
             CustomLog {d}/access.log \"%u %U\"\nKeepAlive Off\n\
             LoadModule mpm_prefork_module {MODULES}/mod_mpm_prefork.so\n\
             LoadModule authn_core_module {MODULES}/mod_authn_core.so\n\
             LoadModule authz_core_module {MODULES}/mod_authz_core.so\n\
             LoadModule authz_user_module {MODULES}/mod_authz_user.so\n\
             LoadModule auth_openidc_module {MODULES}/mod_auth_openidc.so\n\
             DocumentRoot \"{d}/htdocs\"\n{directives}\n\
             <Location {location}>\n  AuthType openid-connect\n  Require valid-user\n</Location>\n",
    )
}

/// The directives of the back-channel test: set up by hand from Latch's
/// discovery.
fn directives(port: u16, issuer: &str, client_id: &str, client_secret: &str) -> String {
    format!(
        "OIDCProviderMetadataURL {issuer}.well-known/openid-configuration\n\
         OIDCClientID {client_id}\nOIDCClientSecret {client_secret}\n\
         OIDCRedirectURI http://{IP}:{port}{REDIRECT_PATH}\n\
         OIDCCryptoPassphrase {passphrase}\nOIDCScope \"openid profile\"",
        passphrase = uuid::Uuid::new_v4().simple(),
    )
}

impl Apache {
    async fn start(binary: &Path, port: u16, issuer: &str, client_id: &str, client_secret: &str) -> Self {
        Self::start_with(binary, port, &directives(port, issuer, client_id, client_secret), "/protected").await
    }

    /// Apache on `IP:port` with `directives` and `location` protected; its
    /// document root has `<location>/index.html`.
    pub async fn start_with(binary: &Path, port: u16, directives: &str, location: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let protected = dir.path().join("htdocs").join(location.trim_start_matches('/'));
        std::fs::create_dir_all(&protected).unwrap();
        std::fs::write(protected.join("index.html"), "PROTECTED\n").unwrap();
        // The worker may run as www-data: let it in.
        for path in [dir.path(), &dir.path().join("htdocs"), &protected] {
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        let file = dir.path().join("apache.conf");
        std::fs::write(&file, config(dir.path(), port, directives, location)).unwrap();
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = tokio::process::Command::new(binary)
            .arg("-X")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let mut apache = Self { base: format!("http://{IP}:{port}"), child, dir };
        apache.wait_until_listening(port).await;
        apache
    }

    async fn wait_until_listening(&mut self, port: u16) {
        let listening = poll_until(Duration::from_secs(10), async || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("apache exited with {status} before listening:\n{}", self.logs());
            }
            tokio::net::TcpStream::connect((IP, port)).await.ok()
        })
        .await;
        assert!(listening.is_some(), "apache did not listen on {IP}:{port} within 10 s:\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .filter_map(|name| std::fs::read_to_string(self.dir.path().join(name)).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The users Apache served pages to, from its access log.
    pub fn served_users(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Opens the protected page: `Ok` with its body when Apache serves it,
/// `Err` with where Apache sends the browser otherwise.
async fn open_protected(browser: &Browser, apache: &Apache) -> Result<String, String> {
    let response = browser.client.get(apache.url("/protected/index.html")).send().await.unwrap();
    match response.status() {
        StatusCode::OK => Ok(response.text().await.unwrap()),
        status if status.is_redirection() => Err(location(&response).unwrap_or_default()),
        status => panic!("apache answered {status}: {}\n{}", response.text().await.unwrap(), apache.logs()),
    }
}

/// Signs in through Apache: its redirect to Latch, the sign-in, the
/// callback (where mod_auth_openidc redeems the code), and back.
async fn sign_in_through(browser: &Browser, latch: &TestApp, apache: &Apache) {
    let authorize = open_protected(browser, apache).await.expect_err("a new browser is sent to sign in");
    assert!(authorize.starts_with(&latch.url("/application/o/authorize/")), "{authorize}");
    let callback = browser.authorize(&latch.base, &authorize, "ada", PASSWORD).await;
    assert!(callback.as_str().starts_with(&apache.url(REDIRECT_PATH)), "{callback}");
    let response = browser.client.get(callback.as_str()).send().await.unwrap();
    let back = location(&response).unwrap_or_else(|| panic!("{}: {}", response.status(), apache.logs()));
    assert!(back.ends_with("/protected/index.html"), "{back}");
}

async fn signing_out_at_latch_ends_the_apache_session(backend: Backend) {
    let Some(binary) = apache() else { return };
    let Some(latch) = server(backend).await else { return };
    let port = std::net::TcpListener::bind((IP, 0)).unwrap().local_addr().unwrap().port();
    let redirect_uri = format!("http://{IP}:{port}{REDIRECT_PATH}");
    let backchannel_uri = format!("{redirect_uri}?logout=backchannel");
    let credentials = latch.add_app("apache", &[&redirect_uri], &["--backchannel-logout-uri", &backchannel_uri]).await;
    let secret = credentials.client_secret.as_deref().expect("a confidential app");
    let apache = Apache::start(&binary, port, &credentials.issuer, &credentials.client_id, secret).await;

    let browser = Browser::new();
    sign_in_through(&browser, &latch, &apache).await;
    let page = open_protected(&browser, &apache).await.unwrap_or_else(|to| panic!("sent to {to}: {}", apache.logs()));
    assert_eq!(page, "PROTECTED\n");

    // Sign out at Latch (RP-initiated, confirmed by the person): Apache is
    // told only through the back channel.
    let end_session = latch.url("/application/o/apache/end-session/");
    let confirm = browser.client.get(&end_session).send().await.unwrap();
    let response = confirm_sign_out(&browser.client, &end_session, confirm).await;
    assert_eq!(response.status(), StatusCode::OK);

    let to = poll_until(Duration::from_secs(10), async || open_protected(&browser, &apache).await.err()).await;
    let to = to.unwrap_or_else(|| panic!("apache still serves the signed-out browser:\n{}", apache.logs()));
    assert!(to.starts_with(&latch.url("/application/o/authorize/")), "{to}");
    // Latch's session ended too: the next sign-in asks for the password.
    let again = open_protected(&browser, &apache).await.expect_err("sent to sign in");
    let response = browser.visit(&latch.base, &again).await;
    assert_eq!(response.status(), StatusCode::OK, "the login page");
}

on_every_backend!(signing_out_at_latch_ends_the_apache_session);
