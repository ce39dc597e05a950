//! The admin subcommands' logic: validate what the operator typed, change
//! the store, and format what to show. Every check runs before the first
//! write, and multi-row changes are single transactions, so a refused
//! command leaves nothing half-written.

mod output;
mod proxy;
mod validate;

use std::io::Read;

use crate::audit::{self, Actor};
use crate::clock;
use crate::config::Config;
use crate::crypto::at_rest::SecretKey;
use crate::crypto::keys::SigningAlg;
use crate::crypto::password::{PasswordError, generate_password, hash_password_blocking};
use crate::crypto::{random_token, sha256_hex};
use crate::oidc::keyring;
use crate::private_files;
use crate::store::{AppOptions, ConsentMode, EventFilter, NewApp, NewUser, Store, StoreError};

pub use output::{
    AppCredentials, print_apps, print_credentials, print_events, print_groups, print_keys, print_users, show_app,
};
pub(crate) use output::{say, write_line};
pub use proxy::{ProxyAppArgs, ProxySettings, add_proxy_app, print_proxy_settings, proxy_settings};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("input/output error: {0}")]
    Io(#[from] std::io::Error),
    /// Standard output was closed by its reader (`latch events | head`):
    /// not a failure, the command just stops, as Unix tools do.
    #[error("standard output was closed")]
    OutputClosed,
}

impl AdminError {
    /// A failed write to standard output: `OutputClosed` for a closed pipe.
    pub fn from_stdout(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe { Self::OutputClosed } else { Self::Io(error) }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// Reads one password from standard input; a trailing newline is not part
/// of it.
pub fn read_password_stdin() -> AdminResult<String> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let password = input.strip_suffix('\n').map(|rest| rest.strip_suffix('\r').unwrap_or(rest)).unwrap_or(&input);
    validate::password(password)?;
    Ok(password.to_owned())
}

/// Returns the generated password when none was given.
pub async fn add_user(
    store: &Store,
    username: &str,
    email: &str,
    name: Option<&str>,
    groups: &[String],
    password: Option<String>,
) -> AdminResult<Option<String>> {
    validate::username(username)?;
    validate::email(email)?;
    let name = name.unwrap_or(username).trim();
    validate::display_name(name)?;
    let (password, generated) = match password {
        Some(password) => (password, None),
        None => {
            let generated = generate_password();
            (generated.clone(), Some(generated))
        }
    };
    let password_hash = hash_password_blocking(&password)?;
    let user = NewUser { username: username.to_owned(), email: email.to_owned(), name: name.to_owned(), password_hash };
    store.create_user(user, groups, clock::now()).await?;
    Ok(generated)
}

/// Sets a user's password. Unless `keep_sessions`, every session of the
/// user ends and every token issued from them stops working, as a password
/// reset should. Returns how many sessions ended.
pub async fn set_password(store: &Store, username: &str, password: String, keep_sessions: bool) -> AdminResult<u64> {
    let password_hash = hash_password_blocking(&password)?;
    let ended = store.set_password_hash(username, &password_hash, !keep_sessions, clock::now()).await?;
    let kind = if keep_sessions { "password_changed" } else { "password_changed_sessions_ended" };
    record(store, kind, Some(username), None).await?;
    Ok(ended)
}

pub async fn set_disabled(store: &Store, username: &str, disabled: bool) -> AdminResult<()> {
    store.set_user_disabled(username, disabled, clock::now()).await?;
    record(store, if disabled { "user_disabled" } else { "user_enabled" }, Some(username), None).await
}

/// Admin commands write their audit events directly: there is no request
/// to keep fast, and the process ends right after.
pub async fn record(store: &Store, kind: &str, username: Option<&str>, app: Option<&str>) -> AdminResult<()> {
    let actor = Actor { username, app, ip: None, user_agent: Some("latch admin command") };
    store.record_events(&[audit::event(kind, &actor, None, clock::now())]).await?;
    Ok(())
}

pub fn event_filter(
    user: Option<String>,
    app: Option<String>,
    since: Option<&str>,
    limit: i64,
) -> AdminResult<EventFilter> {
    let since = since.map(|raw| validate::lifetime("--since", raw)).transpose()?.map(|age| clock::now() - age);
    if limit < 1 {
        return Err(AdminError::Invalid("--limit must be at least 1".into()));
    }
    Ok(EventFilter { username: user, app, since, limit })
}

/// Copies a backup over the configured SQLite database, after checking it
/// is one. The server must be stopped: its open file would be replaced
/// under it.
pub async fn restore(config: &Config, backup: &std::path::Path, force: bool) -> AdminResult<std::path::PathBuf> {
    let Some(target) = config.database_url.strip_prefix("sqlite://").map(|rest| rest.split('?').next().unwrap_or(rest))
    else {
        return Err(AdminError::Invalid("restore works on SQLite; restore PostgreSQL with pg_restore or psql".into()));
    };
    let target = std::path::PathBuf::from(target);
    if !backup.is_file() {
        return Err(AdminError::Invalid(format!("no backup file at {}", backup.display())));
    }
    if target.exists() && !force {
        return Err(AdminError::Invalid(format!(
            "{} exists; stop Latch and pass --force to replace it",
            target.display()
        )));
    }
    if let Some(parent) = target.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        private_files::create_dir(parent)?;
    }
    // Check a copy beside the target: opening it brings its schema up to date
    // (and seals its secrets, with a key) and proves it is a Latch database;
    // only then does it replace the target. The copy is made 0600 whatever
    // mode the backup file has on its way back.
    let staged = std::path::PathBuf::from(format!("{}.restoring", target.display()));
    let _ = std::fs::remove_file(&staged);
    std::io::copy(&mut std::fs::File::open(backup)?, &mut private_files::create_new_file(&staged)?)?;
    let checked = has_signing_keys(&staged, config.secret_key.clone()).await;
    if !matches!(checked, Ok(true)) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", staged.display()));
        }
        return Err(match checked {
            Err(error @ StoreError::SecretKey(_)) => error.into(),
            _ => AdminError::Invalid(format!("{} is not a Latch backup", backup.display())),
        });
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
        let _ = std::fs::remove_file(format!("{}{suffix}", staged.display()));
    }
    std::fs::rename(&staged, &target)?;
    Ok(target)
}

async fn has_signing_keys(database: &std::path::Path, secret_key: Option<SecretKey>) -> Result<bool, StoreError> {
    let store = Store::connect_with(&format!("sqlite://{}", database.display()), secret_key).await?;
    let keys = store.signing_keys().await;
    store.close().await;
    Ok(!keys?.is_empty())
}

/// Writes a new secret key file at `path`, 0600; an existing file is kept
/// and an error (replacing it would lose what it encrypted).
pub fn new_secret_key(path: &std::path::Path) -> AdminResult<()> {
    use std::io::Write;
    let mut file = private_files::create_new_file(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::AlreadyExists => AdminError::Invalid(format!(
            "{} exists; a new key would not decrypt what the old one encrypted",
            path.display()
        )),
        _ => AdminError::Io(error),
    })?;
    file.write_all(SecretKey::generate().as_bytes())?;
    file.sync_all()?;
    Ok(())
}

pub async fn add_group(store: &Store, name: &str) -> AdminResult<()> {
    validate::group_name(name)?;
    store.create_group(name, clock::now()).await?;
    Ok(())
}

pub struct AppAdd {
    pub slug: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub public: bool,
    pub groups: Vec<String>,
    pub options: AppOptionArgs,
}

/// Per-app settings, shared by `app add` and `app update`; on update, only
/// what is given changes.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct AppOptionArgs {
    /// Lifetime of this app's authorization codes, e.g. 60s.
    #[arg(long)]
    pub code_ttl: Option<String>,
    /// Lifetime of this app's access and ID tokens, e.g. 5m.
    #[arg(long)]
    pub access_token_ttl: Option<String>,
    /// Lifetime of this app's refresh tokens (sliding), e.g. 30d.
    #[arg(long)]
    pub refresh_token_ttl: Option<String>,
    /// implicit: no consent page (your own apps); explicit: ask each user once.
    #[arg(long)]
    pub consent: Option<ConsentMode>,
    /// Algorithm of this app's ID and access tokens.
    #[arg(long)]
    pub signing_alg: Option<SigningAlg>,
    /// Allow the client credentials grant (confidential apps only).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub client_credentials: Option<bool>,
    /// Exact URI the app may return to after sign-out (repeatable; replaces the list).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// How long a rotated refresh token may be presented again (two tabs, a
    /// retry) and get the same successor, e.g. 60s; 0 disables. Default 60s.
    #[arg(long)]
    pub refresh_token_reuse_grace: Option<String>,
}

impl AppOptionArgs {
    /// `base` with the given settings applied, each checked.
    fn apply(&self, mut options: AppOptions, public: bool) -> AdminResult<AppOptions> {
        let ttl = |flag: &str, raw: &Option<String>| -> AdminResult<Option<i64>> {
            raw.as_deref().map(|raw| validate::lifetime(flag, raw)).transpose()
        };
        options.code_ttl = ttl("--code-ttl", &self.code_ttl)?.or(options.code_ttl);
        options.access_token_ttl = ttl("--access-token-ttl", &self.access_token_ttl)?.or(options.access_token_ttl);
        options.refresh_token_ttl = ttl("--refresh-token-ttl", &self.refresh_token_ttl)?.or(options.refresh_token_ttl);
        if let Some(grace) = &self.refresh_token_reuse_grace {
            options.refresh_token_reuse_grace = validate::reuse_grace("--refresh-token-reuse-grace", grace)?;
        }
        if let Some(consent) = self.consent {
            options.consent = consent;
        }
        if let Some(alg) = self.signing_alg {
            options.signing_alg = alg;
        }
        if let Some(enabled) = self.client_credentials {
            if enabled && public {
                return Err(AdminError::Invalid("a public client cannot use the client credentials grant".into()));
            }
            options.client_credentials = enabled;
        }
        if !self.post_logout_redirect_uris.is_empty() {
            for uri in &self.post_logout_redirect_uris {
                validate::redirect_uri(uri)?;
            }
            options.post_logout_redirect_uris = self.post_logout_redirect_uris.clone();
        }
        Ok(options)
    }
}

pub async fn add_app(store: &Store, config: &Config, app: AppAdd) -> AdminResult<AppCredentials> {
    validate::slug(&app.slug)?;
    validate::display_name(&app.name)?;
    for uri in &app.redirect_uris {
        validate::redirect_uri(uri)?;
    }
    let options = app.options.apply(AppOptions::default(), app.public)?;
    let now = clock::now();
    ensure_signing_key(store, options.signing_alg, now).await?;
    let client_id = new_client_id();
    let client_secret = (!app.public).then(random_token);
    let new_app = NewApp {
        slug: app.slug.clone(),
        name: app.name,
        client_id: client_id.clone(),
        client_secret_hash: client_secret.as_deref().map(sha256_hex),
        redirect_uris: app.redirect_uris,
        options,
    };
    store.create_app(new_app, &app.groups, now).await?;
    record(store, "app_created", None, Some(&app.slug)).await?;
    Ok(AppCredentials::new(config, &app.slug, client_id, client_secret))
}

/// What `app update` replaces besides options: each list only when given.
#[derive(Debug, Default)]
pub struct AppUpdate<'a> {
    pub redirect_uris: Option<&'a [String]>,
    /// The groups whose members may use the app; an empty list lets every
    /// active user in.
    pub groups: Option<&'a [String]>,
}

/// Changes an app's settings. A new group list takes effect at once for
/// tokens already issued: every grant and check applies the access rule.
pub async fn update_app(store: &Store, slug: &str, update: AppUpdate<'_>, changes: &AppOptionArgs) -> AdminResult<()> {
    let app = store.app_by_slug(slug).await?.ok_or_else(|| StoreError::NotFound { kind: "app", name: slug.into() })?;
    for uri in update.redirect_uris.unwrap_or_default() {
        validate::redirect_uri(uri)?;
    }
    let options = changes.apply(app.options.clone(), app.is_public())?;
    ensure_signing_key(store, options.signing_alg, clock::now()).await?;
    store.update_app(slug, &options, update.redirect_uris, update.groups).await?;
    record(store, "app_updated", None, Some(slug)).await
}

async fn ensure_signing_key(store: &Store, alg: SigningAlg, now: i64) -> AdminResult<()> {
    keyring::ensure_signing_key(store, alg, now).await.map_err(|error| AdminError::Invalid(error.to_string()))
}

/// Schedules the next signing key of `alg`: published now, signing after
/// `grace`; the keys it replaces stay published until every token they
/// signed has expired.
pub async fn rotate_key(store: &Store, config: &Config, alg: SigningAlg, grace: &str) -> AdminResult<KeyRotation> {
    let grace = validate::lifetime("--grace", grace)?;
    let minimum = 2 * crate::server::KEY_REFRESH_INTERVAL.as_secs() as i64;
    if grace < minimum {
        return Err(AdminError::Invalid(format!(
            "--grace must be at least {minimum}s, so that every instance publishes the key before it signs"
        )));
    }
    let now = clock::now();
    ensure_signing_key(store, alg, now).await?;
    let default_ttl = i64::try_from(config.access_token_ttl.as_secs()).unwrap_or(i64::MAX);
    let longest_ttl = store.longest_app_token_ttl().await?.unwrap_or(0).max(default_ttl);
    let activates_at = now + grace;
    let retire_previous_at = activates_at + longest_ttl + minimum;
    let kid = keyring::rotate_signing_key(store, alg, now, activates_at, retire_previous_at)
        .await
        .map_err(|error| AdminError::Invalid(error.to_string()))?;
    record(store, "key_rotated", None, None).await?;
    Ok(KeyRotation { kid, activates_at, retire_previous_at })
}

pub struct KeyRotation {
    pub kid: String,
    pub activates_at: i64,
    pub retire_previous_at: i64,
}

pub async fn rotate_secret(store: &Store, config: &Config, slug: &str) -> AdminResult<AppCredentials> {
    let app = store.app_by_slug(slug).await?.ok_or_else(|| StoreError::NotFound { kind: "app", name: slug.into() })?;
    let secret = random_token();
    if !store.set_client_secret_hash(slug, &sha256_hex(&secret)).await? {
        return Err(AdminError::Invalid(format!("app {slug:?} is a public client and has no secret to rotate")));
    }
    Ok(AppCredentials::new(config, slug, app.client_id, Some(secret)))
}

/// 160 random bits, hex: unguessable, and safe in any config file.
fn new_client_id() -> String {
    crate::crypto::secret::random_bytes::<20>().iter().map(|byte| format!("{byte:02x}")).collect()
}
