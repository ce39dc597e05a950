//! The admin subcommands' logic: validate what the operator typed, change
//! the store, and format what to show. Every check runs before the first
//! write, and multi-row changes are single transactions, so a refused
//! command leaves nothing half-written.

mod output;
mod validate;

use std::io::Read;

use crate::clock;
use crate::config::Config;
use crate::crypto::password::{PasswordError, generate_password, hash_password_blocking};
use crate::crypto::{random_token, sha256_hex};
use crate::store::{NewApp, NewUser, Store, StoreError};

pub use output::{AppCredentials, print_apps, print_credentials, print_groups, print_users, show_app};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("cannot read the password from standard input: {0}")]
    Stdin(#[from] std::io::Error),
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

pub async fn set_password(store: &Store, username: &str, password: String) -> AdminResult<()> {
    let password_hash = hash_password_blocking(&password)?;
    store.set_password_hash(username, &password_hash).await?;
    Ok(())
}

pub async fn set_disabled(store: &Store, username: &str, disabled: bool) -> AdminResult<()> {
    store.set_user_disabled(username, disabled, clock::now()).await?;
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
}

pub async fn add_app(store: &Store, config: &Config, app: AppAdd) -> AdminResult<AppCredentials> {
    validate::slug(&app.slug)?;
    validate::display_name(&app.name)?;
    for uri in &app.redirect_uris {
        validate::redirect_uri(uri)?;
    }
    let client_id = new_client_id();
    let client_secret = (!app.public).then(random_token);
    let new_app = NewApp {
        slug: app.slug.clone(),
        name: app.name,
        client_id: client_id.clone(),
        client_secret_hash: client_secret.as_deref().map(sha256_hex),
        redirect_uris: app.redirect_uris,
    };
    store.create_app(new_app, &app.groups, clock::now()).await?;
    Ok(AppCredentials::new(config, &app.slug, client_id, client_secret))
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
