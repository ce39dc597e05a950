//! Secrets at rest (issue 11, item 3), seen as an operator sees them: the
//! real `latch` binary started by `sh` under `umask 022` (the common
//! default, which alone would leave files 0644), its files' modes, its
//! warnings about files others can read, and, with `secret_key_file`,
//! signing keys and deployment secrets read straight from the database
//! only as AES-256-GCM ciphertext bound to their row.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce as OidcNonce, OAuth2TokenResponse,
    RedirectUrl, TokenResponse,
};
use reqwest::StatusCode;
use sqlx::Row;
use tokio::process::{Child, Command};

use crate::common::{AppCredentials, Backend, Browser, CALLBACK, PASSWORD, drop_postgres_database, fresh_database};
use crate::common::{http, poll_until, query_param};
use crate::on_every_backend;

/// The prefix of a sealed value, as README.md documents the format.
const SEALED: &str = "sealed-v1:";

/// One deployment: a database (SQLite at its default place in the data
/// directory, or a fresh PostgreSQL database), a public URL, and the
/// settings every `latch` command of it gets.
struct Deployment {
    backend: Backend,
    dir: tempfile::TempDir,
    /// `LATCH_DATABASE_URL` for PostgreSQL; SQLite uses the default.
    postgres_url: Option<String>,
    port: u16,
}

impl Deployment {
    async fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let postgres_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_database(backend, dir.path()).await?),
        };
        Some(Self { backend, dir, postgres_url, port: unused_port() })
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn database_file(&self) -> PathBuf {
        self.data_dir().join("latch.db")
    }

    fn database_url(&self) -> String {
        match &self.postgres_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.database_file().display()),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `latch <args>` under `umask 022`, with this deployment's settings,
    /// `key_file` as `LATCH_SECRET_KEY_FILE`, and nothing from the test's
    /// own `LATCH_*` or `RUST_LOG`.
    fn command(&self, key_file: Option<&Path>, args: &[&str]) -> Command {
        self.command_on(self.port, key_file, args)
    }

    /// `command`, listening on `port` (another instance of the deployment).
    fn command_on(&self, port: u16, key_file: Option<&Path>, args: &[&str]) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", "umask 022 && exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_latch")]).args(args);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("LATCH_") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        command
            .env("LATCH_DATA_DIR", self.data_dir())
            .env("LATCH_PUBLIC_URL", self.base())
            .env("LATCH_LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(url) = &self.postgres_url {
            command.env("LATCH_DATABASE_URL", url);
        }
        if let Some(key_file) = key_file {
            command.env("LATCH_SECRET_KEY_FILE", key_file);
        }
        command
    }

    async fn run(&self, key_file: Option<&Path>, args: &[&str], stdin: &str) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut child = self.command(key_file, args).spawn().expect("run latch");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).await.expect("write stdin");
        drop(input);
        child.wait_with_output().await.expect("latch output")
    }

    /// An admin command that must succeed; returns its stdout.
    async fn admin(&self, key_file: Option<&Path>, args: &[&str]) -> String {
        let output = self.run(key_file, args, "").await;
        assert!(output.status.success(), "latch {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// User `ada` and a confidential app `grafana`.
    async fn set_up(&self, key_file: Option<&Path>) -> AppCredentials {
        let args = ["user", "add", "ada", "--email", "ada@example.com", "--password-stdin"];
        let output = self.run(key_file, &args, PASSWORD).await;
        assert!(output.status.success(), "user add failed: {}", String::from_utf8_lossy(&output.stderr));
        let args = ["app", "add", "grafana", "--name", "Grafana", "--redirect-uri", CALLBACK, "--json"];
        serde_json::from_str(&self.admin(key_file, &args).await).expect("app add --json prints JSON")
    }

    /// `latch serve`, once `/health/live` answers.
    async fn serve(&self, key_file: Option<&Path>) -> Serving {
        self.serve_on(self.port, key_file).await
    }

    /// `latch serve` listening on `port`, once `/health/live` answers there.
    async fn serve_on(&self, port: u16, key_file: Option<&Path>) -> Serving {
        let mut command = self.command_on(port, key_file, &["serve"]);
        let mut child = command.stdout(Stdio::null()).spawn().expect("start latch serve");
        let live = poll_until(Duration::from_secs(60), async || {
            if child.try_wait().expect("try_wait").is_some() {
                return Some(false);
            }
            let response = http().get(format!("http://127.0.0.1:{port}/health/live")).send().await;
            response.is_ok_and(|response| response.status() == StatusCode::OK).then_some(true)
        })
        .await;
        match live {
            Some(true) => Serving { child },
            Some(false) => {
                let output = child.wait_with_output().await.expect("output");
                panic!("latch serve exited during start: {}", String::from_utf8_lossy(&output.stderr));
            }
            None => panic!("latch serve did not answer within 60 s"),
        }
    }

    /// `latch serve` that must refuse to start; returns what it printed.
    async fn refused_start(&self, key_file: Option<&Path>) -> String {
        self.refused_start_on(self.port, key_file).await
    }

    /// `refused_start`, for an instance listening on `port`.
    async fn refused_start_on(&self, port: u16, key_file: Option<&Path>) -> String {
        let child = self.command_on(port, key_file, &["serve"]).spawn().expect("start latch serve");
        let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("latch serve should have refused to start")
            .expect("output");
        assert!(!output.status.success(), "latch serve started");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// A new key file made by `latch secret-key new`.
    async fn new_key_file(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        self.admin(None, &["secret-key", "new", &path.display().to_string()]).await;
        path
    }

    async fn database(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database_url()).await.expect("open the database")
    }

    /// `(kid, private_key)` of every signing key, as stored.
    async fn stored_keys(&self) -> Vec<(String, String)> {
        let pool = self.database().await;
        let rows =
            sqlx::query("SELECT kid, private_key FROM signing_keys ORDER BY kid").fetch_all(&pool).await.expect("keys");
        pool.close().await;
        rows.iter().map(|row| (row.get("kid"), row.get("private_key"))).collect()
    }

    /// The stored value of a deployment fact.
    async fn stored_fact(&self, name: &str) -> String {
        let pool = self.database().await;
        let row = sqlx::query("SELECT value FROM deployment_facts WHERE name = $1")
            .bind(name)
            .fetch_one(&pool)
            .await
            .expect("fact");
        pool.close().await;
        row.get("value")
    }
}

/// A random free port below Linux's ephemeral range (32768–60999), where
/// neither a client connection's own port nor another test's `bind(0)`
/// can take it between this check and `latch serve` binding it.
fn unused_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    loop {
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let port = 20_000 + (random % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if self.backend == Backend::Postgres {
            drop_postgres_database(&self.database_url());
        }
    }
}

/// A running `latch serve`; killed when dropped.
struct Serving {
    child: Child,
}

impl Serving {
    /// Stops the process and returns what it logged.
    async fn stop(mut self) -> String {
        self.child.start_kill().expect("kill");
        let output = self.child.wait_with_output().await.expect("output");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())).permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// The warning Latch logs for a file others can read.
fn warned_about(log: &str, path: &Path) -> bool {
    log.contains(&format!("{} holds secrets but other accounts can read it", path.display()))
}

/// Signs ada in to `grafana` with the `openidconnect` client: the ID token
/// verifies against the JWKS and userinfo answers. Returns the token's `kid`.
async fn sign_in(deployment: &Deployment, credentials: &AppCredentials) -> String {
    let http = http();
    let issuer = IssuerUrl::new(credentials.issuer.clone()).expect("issuer");
    let metadata = CoreProviderMetadata::discover_async(issuer, &http).await.expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(credentials.client_id.clone()),
        credentials.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).expect("redirect"));
    let (url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, OidcNonce::new_random)
        .url();
    let callback = Browser::new().authorize(&deployment.base(), url.as_str(), "ada", PASSWORD).await;
    let code = query_param(&callback, "code").unwrap_or_else(|| panic!("no code in {callback}"));
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .request_async(&http)
        .await
        .expect("token exchange");
    let id_token = tokens.id_token().expect("id token");
    id_token.claims(&client.id_token_verifier(), &nonce).expect("the ID token verifies against the JWKS");
    let userinfo = http
        .get(format!("{}/application/o/userinfo/", deployment.base()))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .expect("userinfo");
    assert_eq!(userinfo.status(), StatusCode::OK);
    crate::common::jwt_part(&id_token.to_string(), 0)["kid"].as_str().expect("kid").to_owned()
}

/// Opens a sealed value the way README.md documents it, independently of
/// Latch's code: base64 of nonce ‖ ciphertext ‖ tag, AES-256-GCM under the
/// key file's 32 bytes, the row's identity as associated data.
fn open_sealed(key_file: &Path, stored: &str, row: &str) -> Option<String> {
    let key = STANDARD.decode(std::fs::read_to_string(key_file).expect("key file").trim()).expect("base64 key");
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("AES-256 key"));
    let mut sealed = STANDARD.decode(stored.strip_prefix(SEALED)?).ok()?;
    let mut ciphertext = sealed.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&sealed).ok()?;
    let plaintext = key.open_in_place(nonce, Aad::from(row.as_bytes()), &mut ciphertext).ok()?;
    String::from_utf8(plaintext.to_vec()).ok()
}

/// The RSA modulus (base64url, as in a JWK's `n`) of a PKCS#8 key, base64.
fn rsa_modulus(pkcs8_b64: &str) -> String {
    let der = STANDARD.decode(pkcs8_b64).expect("PKCS#8 base64");
    let pair = RsaKeyPair::from_pkcs8(&der).expect("an RSA PKCS#8 key");
    URL_SAFE_NO_PAD.encode(pair.public_key().modulus().big_endian_without_leading_zero())
}

/// The RSA keys of the JWKS, `kid` → `n`.
async fn jwks_moduli(deployment: &Deployment) -> Vec<(String, String)> {
    let jwks: serde_json::Value = http()
        .get(format!("{}/application/o/grafana/jwks/", deployment.base()))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JWKS JSON");
    let keys = jwks["keys"].as_array().expect("keys").iter();
    keys.map(|key| (key["kid"].as_str().expect("kid").to_owned(), key["n"].as_str().expect("n").to_owned())).collect()
}

/// Every stored signing key is sealed with `key_file` for its own row, holds
/// neither its PKCS#8 text nor its DER, and opens to the key the JWKS
/// publishes. Returns the plaintexts.
async fn assert_keys_sealed(deployment: &Deployment, key_file: &Path) -> Vec<String> {
    let published = jwks_moduli(deployment).await;
    let stored = deployment.stored_keys().await;
    assert!(!stored.is_empty());
    let mut plaintexts = Vec::new();
    for (kid, value) in &stored {
        assert!(value.starts_with(SEALED), "signing key {kid} is stored in plaintext: {value:.40}…");
        let plaintext = open_sealed(key_file, value, &format!("signing_keys:{kid}")).expect("opens for its row");
        assert!(open_sealed(key_file, value, "signing_keys:another").is_none(), "bound to its row");
        let der = STANDARD.decode(&plaintext).expect("PKCS#8");
        let sealed_bytes = STANDARD.decode(&value[SEALED.len()..]).expect("base64");
        assert!(!value.contains(&plaintext[..40]), "the stored value holds the key's text");
        assert!(!sealed_bytes.windows(64).any(|window| window == &der[..64]), "the stored value holds the key's DER");
        if let Some((_, n)) = published.iter().find(|(published, _)| published == kid) {
            assert_eq!(&rsa_modulus(&plaintext), n, "the sealed key is the published key");
        }
        plaintexts.push(plaintext);
    }
    plaintexts
}

// ---------------------------------------------------------------------------
// File modes.
// ---------------------------------------------------------------------------

/// Under umask 022: the key file `latch secret-key new` writes, the data
/// directory and the database with its WAL and shared-memory files, a
/// backup, and a database restored from a backup whose mode was lost on the
/// way are all for the owner alone; and nothing of that is warned about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_latch_creates_are_private_under_umask_022() {
    let deployment = Deployment::new(Backend::Sqlite).await.expect("SQLite");
    let key_file = deployment.new_key_file("secret.key").await;
    assert_eq!(mode(&key_file), 0o600, "key file");
    let key = std::fs::read_to_string(&key_file).expect("key file");
    let again = deployment.run(None, &["secret-key", "new", &key_file.display().to_string()], "").await;
    assert!(!again.status.success(), "an existing key file must not be replaced");
    assert_eq!(std::fs::read_to_string(&key_file).expect("key file"), key, "and it is left as it was");
    let credentials = deployment.set_up(Some(&key_file)).await;
    let serving = deployment.serve(Some(&key_file)).await;
    sign_in(&deployment, &credentials).await;
    let database = deployment.database_file();
    assert_eq!(mode(&deployment.data_dir()), 0o700, "data directory");
    for file in [database.clone(), with_suffix(&database, "-wal"), with_suffix(&database, "-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    let backups = tempfile::tempdir().expect("temp dir");
    let backup = backups.path().join("latch-backup.db");
    deployment.admin(Some(&key_file), &["backup", &backup.display().to_string()]).await;
    assert_eq!(mode(&backup), 0o600, "backup");
    let log = serving.stop().await;
    assert!(!log.contains("other accounts can read"), "nothing was open to warn about: {log}");

    set_mode(&backup, 0o644);
    std::fs::remove_dir_all(deployment.data_dir()).expect("wipe the data directory");
    deployment.admin(Some(&key_file), &["restore", &backup.display().to_string()]).await;
    assert_eq!(mode(&deployment.data_dir()), 0o700, "data directory made by restore");
    assert_eq!(mode(&database), 0o600, "restored database");
    let serving = deployment.serve(Some(&key_file)).await;
    sign_in(&deployment, &credentials).await;
    serving.stop().await;
}

/// Files a deployment from before left open (database 0644, its WAL,
/// data directory 0755) and a key file others can read are each named in a
/// warning at start, which still goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_others_can_read_are_named_in_a_warning_at_start() {
    let deployment = Deployment::new(Backend::Sqlite).await.expect("SQLite");
    let key_file = deployment.new_key_file("secret.key").await;
    let credentials = deployment.set_up(Some(&key_file)).await;
    let database = deployment.database_file();
    let wal = with_suffix(&database, "-wal");
    // The WAL the admin commands left, or an empty one as a stopped SQLite
    // may leave; never truncated: it may hold their last transactions.
    std::fs::OpenOptions::new().append(true).create(true).open(&wal).expect("WAL");
    for (path, open) in [(&database, 0o644), (&wal, 0o644), (&deployment.data_dir(), 0o755), (&key_file, 0o640)] {
        set_mode(path, open);
    }
    let serving = deployment.serve(Some(&key_file)).await;
    sign_in(&deployment, &credentials).await;
    let log = serving.stop().await;
    for path in [&database, &wal, &deployment.data_dir(), &key_file] {
        assert!(warned_about(&log, path), "no warning names {}: {log}", path.display());
    }
}

/// A backup of an encrypted deployment is restored only with its key: with
/// another key or none, `latch restore` refuses and names the setting (not
/// "not a Latch backup").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_an_encrypted_backup_needs_its_key() {
    let deployment = Deployment::new(Backend::Sqlite).await.expect("SQLite");
    let key_file = deployment.new_key_file("secret.key").await;
    let other = deployment.new_key_file("other.key").await;
    let credentials = deployment.set_up(Some(&key_file)).await;
    let backup = deployment.dir.path().join("backup.db");
    deployment.admin(Some(&key_file), &["backup", &backup.display().to_string()]).await;
    let restore = ["restore", "--force", &backup.display().to_string()];
    for (key, expected) in [(Some(&other), "another key"), (None, "encrypted")] {
        let refused = deployment.run(key.map(PathBuf::as_path), &restore, "").await;
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "restored with {key:?}");
        assert!(stderr.contains(expected) && stderr.contains("secret_key_file"), "{stderr}");
        assert!(!stderr.contains("not a Latch backup"), "{stderr}");
    }
    deployment.admin(Some(&key_file), &restore).await;
    let serving = deployment.serve(Some(&key_file)).await;
    sign_in(&deployment, &credentials).await;
    serving.stop().await;
}

// ---------------------------------------------------------------------------
// Encryption at rest.
// ---------------------------------------------------------------------------

/// With `secret_key_file` from the first command on, a full sign-in works;
/// the database holds the signing keys (the first one, and the next one
/// `latch key rotate` made) and the deployment secret only sealed with the
/// key for their own rows.
async fn sign_in_works_with_encrypted_secrets(backend: Backend) {
    let Some(deployment) = Deployment::new(backend).await else { return };
    let key_file = deployment.new_key_file("secret.key").await;
    let credentials = deployment.set_up(Some(&key_file)).await;
    let serving = deployment.serve(Some(&key_file)).await;
    let kid = sign_in(&deployment, &credentials).await;
    deployment.admin(Some(&key_file), &["key", "rotate", "--grace", "1h"]).await;
    assert_eq!(assert_keys_sealed(&deployment, &key_file).await.len(), 2, "the first key and the next");
    assert!(deployment.stored_keys().await.iter().any(|(stored, _)| *stored == kid), "signed with a stored key");
    let mark_key = deployment.stored_fact("csrf_key").await;
    let opened = open_sealed(&key_file, &mark_key, "deployment_facts:csrf_key");
    assert!(opened.is_some_and(|secret| secret.len() >= 43), "csrf_key is not sealed: {mark_key}");
    // A TOTP secret is stored sealed for its person's row.
    let printed = deployment.admin(Some(&key_file), &["user", "mfa", "totp", "ada", "--json"]).await;
    let uri: serde_json::Value = serde_json::from_str(&printed).expect("JSON");
    let uri = url::Url::parse(uri["otpauth_uri"].as_str().expect("otpauth_uri")).expect("a URI");
    let secret = uri.query_pairs().find(|(name, _)| name == "secret").expect("secret").1.into_owned();
    let pool = deployment.database().await;
    let row = sqlx::query("SELECT t.user_id, t.secret FROM totp_factors t JOIN users u ON u.id = t.user_id")
        .fetch_one(&pool)
        .await
        .expect("a TOTP row");
    pool.close().await;
    let (user_id, stored): (String, String) = (row.get("user_id"), row.get("secret"));
    assert!(!stored.contains(&secret), "stored in plaintext: {stored}");
    assert_eq!(open_sealed(&key_file, &stored, &format!("totp_factors:{user_id}")), Some(secret));
    serving.stop().await;
}

/// Several instances of one PostgreSQL deployment started together on an
/// empty database with the same key file agree on one signing key, sealed,
/// and serve as one; an instance started with another key is refused while
/// they run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_a_key_file_start_together_and_another_key_is_refused() {
    let Some(deployment) = Deployment::new(Backend::Postgres).await else { return };
    let key_file = deployment.new_key_file("secret.key").await;
    let second_port = unused_port();
    let (first, second) =
        tokio::join!(deployment.serve(Some(&key_file)), deployment.serve_on(second_port, Some(&key_file)));
    let credentials = deployment.set_up(Some(&key_file)).await;
    assert_eq!(assert_keys_sealed(&deployment, &key_file).await.len(), 1, "one first key for both");
    let jwks = |port: u16| async move {
        let url = format!("http://127.0.0.1:{port}/application/o/grafana/jwks/");
        http().get(url).send().await.expect("jwks").text().await.expect("jwks text")
    };
    assert_eq!(jwks(deployment.port).await, jwks(second_port).await, "both publish the same keys");
    sign_in(&deployment, &credentials).await;

    let other = deployment.new_key_file("other.key").await;
    let refused = deployment.refused_start_on(unused_port(), Some(&other)).await;
    assert!(refused.contains("another key"), "{refused}");
    first.stop().await;
    second.stop().await;
}

/// A deployment encrypted with one key refuses to start, with a message that
/// names the setting, with another key, without a key, and with a key file
/// that is not one; it still starts with its own key afterwards.
async fn a_wrong_or_missing_key_refuses_start_clearly(backend: Backend) {
    let Some(deployment) = Deployment::new(backend).await else { return };
    let key_file = deployment.new_key_file("secret.key").await;
    let credentials = deployment.set_up(Some(&key_file)).await;
    let other = deployment.new_key_file("other.key").await;

    let wrong = deployment.refused_start(Some(&other)).await;
    for part in ["secret_key_file", "LATCH_SECRET_KEY_FILE", &other.display().to_string(), "another key"] {
        assert!(wrong.contains(part), "expected {part:?} in: {wrong}");
    }
    let missing = deployment.refused_start(None).await;
    for part in ["encrypted", "secret_key_file", "LATCH_SECRET_KEY_FILE"] {
        assert!(missing.contains(part), "expected {part:?} in: {missing}");
    }
    let garbled = deployment.dir.path().join("garbled.key");
    std::fs::write(&garbled, "not a key\n").expect("write");
    let malformed = deployment.refused_start(Some(&garbled)).await;
    for part in ["LATCH_SECRET_KEY_FILE", "base64"] {
        assert!(malformed.contains(part), "expected {part:?} in: {malformed}");
    }
    let failed = deployment.run(Some(&other), &["user", "list"], "").await;
    assert!(!failed.status.success(), "an admin command with the wrong key must fail too");

    let serving = deployment.serve(Some(&key_file)).await;
    sign_in(&deployment, &credentials).await;
    serving.stop().await;
}

/// A deployment that stored its secrets in plaintext, started once with a
/// key, has them sealed: the same signing key (same `kid`, same private
/// key) and the same deployment secret, and sign-in goes on working.
async fn a_plaintext_deployment_is_encrypted_when_started_with_a_key(backend: Backend) {
    let Some(deployment) = Deployment::new(backend).await else { return };
    let credentials = deployment.set_up(None).await;
    let serving = deployment.serve(None).await;
    let kid = sign_in(&deployment, &credentials).await;
    serving.stop().await;
    let plaintext_keys: Vec<String> = deployment.stored_keys().await.into_iter().map(|(_, key)| key).collect();
    let plaintext_mark_key = deployment.stored_fact("csrf_key").await;
    assert!(!plaintext_mark_key.starts_with(SEALED), "no key yet: stored in plaintext");

    let key_file = deployment.new_key_file("secret.key").await;
    let serving = deployment.serve(Some(&key_file)).await;
    assert_eq!(assert_keys_sealed(&deployment, &key_file).await, plaintext_keys, "the same keys, now sealed");
    let mark_key = deployment.stored_fact("csrf_key").await;
    assert_eq!(open_sealed(&key_file, &mark_key, "deployment_facts:csrf_key"), Some(plaintext_mark_key));
    assert_eq!(sign_in(&deployment, &credentials).await, kid, "signed with the same key");
    serving.stop().await;
    assert!(deployment.refused_start(None).await.contains("secret_key_file"), "now the key is needed");
}

on_every_backend!(
    sign_in_works_with_encrypted_secrets,
    a_wrong_or_missing_key_refuses_start_clearly,
    a_plaintext_deployment_is_encrypted_when_started_with_a_key,
);
