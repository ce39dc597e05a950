//! E-mail against a real SMTP server: Python's aiosmtpd (Debian's
//! `python3-aiosmtpd`, which `.ci/run` installs), started here, storing
//! what it receives in a Maildir the test reads. Invites and reset links
//! are mailed with `--send`; "Forgot password?" mails a working link to an
//! account that exists, answers the same for one that does not, and stops
//! mailing when one address asks too often.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;

use crate::common::{Backend, Browser, Options, PASSWORD, TestApp, hidden_input, poll_until};
use crate::on_every_backend;

on_every_backend!(invites_and_reset_links_are_mailed, forgot_password_reveals_no_account);

/// aiosmtpd on a free port of 127.0.0.1, in a process group of its own
/// that dropping it kills.
struct SmtpServer {
    child: std::process::Child,
    url: String,
    maildir: tempfile::TempDir,
}

impl SmtpServer {
    /// `None` (with a notice) when aiosmtpd is not installed, outside CI.
    async fn start() -> Option<Self> {
        use std::os::unix::process::CommandExt;
        let python = Path::new("/usr/bin/python3");
        let installed = std::process::Command::new(python).args(["-c", "import aiosmtpd"]).status();
        if !installed.is_ok_and(|status| status.success()) {
            assert!(
                std::env::var_os("CI").is_none(),
                "aiosmtpd is required under CI (.ci/run installs python3-aiosmtpd)"
            );
            eprintln!("SKIPPED (aiosmtpd not installed: apt-get install python3-aiosmtpd)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let maildir = tempfile::tempdir().expect("maildir");
        let child = std::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start aiosmtpd");
        let up = poll_until(Duration::from_secs(20), async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
        });
        assert!(up.await.is_some(), "aiosmtpd did not start on port {port}");
        Some(Self { child, url: format!("smtp://127.0.0.1:{port}"), maildir })
    }

    /// Every mail received so far, as text.
    fn mails(&self) -> Vec<String> {
        let new = self.maildir.path().join("mail").join("new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(new)
            .map(|dir| dir.filter_map(|entry| Some(entry.ok()?.path())).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().filter_map(|file| std::fs::read_to_string(file).ok()).collect()
    }

    /// Waits for the `count`th mail and returns them all.
    async fn wait_for(&self, count: usize) -> Vec<String> {
        let arrived = poll_until(Duration::from_secs(20), async || {
            let mails = self.mails();
            (mails.len() >= count).then_some(mails)
        });
        arrived.await.unwrap_or_else(|| panic!("expected {count} mail(s), got {:?}", self.mails()))
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}

/// The first link under `path` (`/invite/`, `/reset/`) in a mail.
fn link_in(mail: &str, app: &TestApp, path: &str) -> String {
    let start = mail.find(&app.url(path)).unwrap_or_else(|| panic!("no {path} link in {mail}"));
    mail[start..].split_whitespace().next().expect("link").to_owned()
}

async fn with_mail(backend: Backend) -> Option<(SmtpServer, TestApp)> {
    let smtp = SmtpServer::start().await?;
    let options = Options { smtp_url: Some(smtp.url.clone()), ..Default::default() };
    let app = TestApp::spawn_with(backend, options).await?;
    Some((smtp, app))
}

async fn invites_and_reset_links_are_mailed(backend: Backend) {
    let Some((smtp, app)) = with_mail(backend).await else { return };
    let without = app.latch(&["user", "invite", "bob", "--email", "bob@example.com", "--send"], None).await;
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("--send needs smtp_url"));
    let users = app.admin(&["user", "list", "--json"]).await;
    assert!(!users.contains("\"bob\""), "a refused --send creates nobody: {users}");

    let smtp_url = smtp.url.as_str();
    let args = ["--smtp-url", smtp_url, "user", "invite", "bob", "--email", "bob@example.com", "--name", "Bob"];
    let printed = app.admin(&[&args[..], &["--send"]].concat()).await;
    assert!(printed.contains("Mailed the link to bob@example.com."), "{printed}");
    let mail = smtp.wait_for(1).await.remove(0);
    assert!(mail.contains("To: Bob <bob@example.com>"), "{mail}");
    assert!(mail.contains("Subject: Your account is ready"), "{mail}");
    let invite = link_in(&mail, &app, "/invite/");
    let browser = Browser::new();
    let page = browser.client.get(&invite).send().await.unwrap().text().await.unwrap();
    let csrf = hidden_input(&page, "csrf_token").unwrap();
    let form = [("csrf_token", csrf.as_str()), ("password", PASSWORD), ("password_again", PASSWORD)];
    assert_eq!(browser.client.post(&invite).form(&form).send().await.unwrap().status(), StatusCode::SEE_OTHER);

    app.admin(&["--smtp-url", smtp_url, "user", "reset-link", "bob", "--send", "--json"]).await;
    // Mail files sort by name, not always by arrival within one second.
    let mails = smtp.wait_for(2).await;
    let reset = mails.iter().find(|mail| mail.contains("Subject: Choose a new password"));
    link_in(reset.unwrap_or_else(|| panic!("no reset mail in {mails:?}")), &app, "/reset/");
}

/// Posts "Forgot password?" for `login`; returns the page's text.
async fn forgot(app: &TestApp, login: &str) -> String {
    let browser = Browser::new();
    let page = browser.client.get(app.url("/login/forgot")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = hidden_input(&page.text().await.unwrap(), "csrf_token").unwrap();
    let form = [("csrf_token", csrf.as_str()), ("login", login)];
    let answer = browser.client.post(app.url("/login/forgot")).form(&form).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.text().await.unwrap()
}

async fn forgot_password_reveals_no_account(backend: Backend) {
    let Some((smtp, app)) = with_mail(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let login_page = Browser::new().client.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(login_page.contains("href=\"/login/forgot\""), "{login_page}");

    let for_nobody = forgot(&app, "nobody@example.com").await;
    let for_ada = forgot(&app, "ADA@example.com").await;
    assert_eq!(for_nobody, for_ada, "the answer must not tell whether the account exists");
    let mail = smtp.wait_for(1).await.remove(0);
    assert!(mail.contains("ada@example.com"), "{mail}");
    let reset = link_in(&mail, &app, "/reset/");
    let browser = Browser::new();
    let page = browser.client.get(&reset).send().await.unwrap().text().await.unwrap();
    let csrf = hidden_input(&page, "csrf_token").unwrap();
    let form =
        [("csrf_token", csrf.as_str()), ("password", "a fresh password"), ("password_again", "a fresh password")];
    assert_eq!(browser.client.post(&reset).form(&form).send().await.unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(Browser::new().sign_in(&app.base, "ada", "a fresh password").await.status(), StatusCode::SEE_OTHER);

    // Three mails per person and hour, five requests per address: the
    // answer stays the same, and the mails stop at three.
    for _ in 0..5 {
        assert_eq!(forgot(&app, "ada").await, for_ada);
    }
    smtp.wait_for(3).await;
    // The requests' work runs after their answers: give the refused ones
    // the time a sent mail takes, then check none was sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.mails().len(), 3, "only three mails per person and hour");
}
