//! The command line: `latch serve` and the admin subcommands, one clap enum.
//! `anyhow` lives here and only here, at the edge.

use clap::{Parser, Subcommand};

use crate::admin::{self, AdminError, AppAdd, AppOptionArgs, AppUpdate, ProxyAppArgs, say};
use crate::config::{Config, ConfigArgs, LogFormat, mask_password};
use crate::crypto::keys::SigningAlg;
use crate::server::Server;
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(name = "latch", version, about = "A small, fast single sign-on identity provider")]
pub struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the identity provider.
    Serve,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Manage the apps that sign people in through Latch.
    #[command(subcommand)]
    App(Box<AppCommand>),
    /// Manage token signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Show the audit trail, newest first.
    Events {
        /// Only events about this username.
        #[arg(long)]
        user: Option<String>,
        /// Only events about this app (slug).
        #[arg(long)]
        app: Option<String>,
        /// Only events younger than this, e.g. 1h or 7d.
        #[arg(long)]
        since: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent copy of the SQLite database while Latch runs, to a
    /// new file only its owner can read.
    Backup { file: std::path::PathBuf },
    /// Put a backup in place of the SQLite database (Latch must be stopped).
    Restore {
        file: std::path::PathBuf,
        /// Replace an existing database.
        #[arg(long)]
        force: bool,
    },
    /// Manage the key that encrypts signing keys and secrets in the database.
    #[command(subcommand)]
    SecretKey(SecretKeyCommand),
}

#[derive(Debug, Subcommand)]
enum SecretKeyCommand {
    /// Write a new key (32 random bytes, base64) to a new file only its owner can read.
    New { file: std::path::PathBuf },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Create the next signing key: published at once, used after the grace period.
    Rotate {
        #[arg(long, default_value_t = SigningAlg::RS256)]
        alg: SigningAlg,
        /// How long every instance publishes the key before signing with it.
        #[arg(long, default_value = "1h")]
        grace: String,
    },
    /// List signing keys (public information only).
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user; without --password-stdin a strong password is generated and printed once.
    Add {
        username: String,
        #[arg(long)]
        email: String,
        /// Full name, as apps will show it.
        #[arg(long)]
        name: Option<String>,
        /// Group to add the user to (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password, read from standard input; their sessions and tokens end.
    Passwd {
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Keep the user's sessions and refresh tokens (by default a new
        /// password signs them out everywhere, as a reset should).
        #[arg(long)]
        keep_sessions: bool,
    },
    /// Lock a user out of every app at once: sessions end, tokens stop working.
    Disable { username: String },
    /// Let a disabled user sign in again.
    Enable { username: String },
    /// Lift a sign-in lock caused by repeated failures.
    Unlock { username: String },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// Create a group.
    Add { name: String },
    /// Add a user to a group.
    AddMember { group: String, username: String },
    /// Remove a user from a group.
    RemoveMember { group: String, username: String },
    /// List groups and their members.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Register an OpenID Connect app (prints its client_id and, once, its secret) or, with --proxy, a forward-auth app.
    Add {
        /// Short name used in URLs, e.g. grafana.
        slug: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Exact redirect URI (repeatable; at least one, unless --proxy).
        #[arg(long = "redirect-uri", required_unless_present = "proxy")]
        redirect_uris: Vec<String>,
        /// A public client (a browser or mobile app that cannot keep a secret): PKCE is required.
        #[arg(long)]
        public: bool,
        /// Only members of this group may use the app (repeatable; none: every active user).
        #[arg(long = "group")]
        groups: Vec<String>,
        #[command(flatten)]
        options: AppOptionArgs,
        #[command(flatten)]
        proxy: ProxyAppArgs,
        #[arg(long)]
        json: bool,
    },
    /// Change an app's settings; only what is given changes.
    Update {
        slug: String,
        /// Replace the redirect URIs with these (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Replace the groups whose members may use the app with these
        /// (repeatable); takes effect at once, for tokens already issued too.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Remove every group restriction: every active user may use the app.
        #[arg(long, conflicts_with = "groups")]
        clear_groups: bool,
        #[command(flatten)]
        options: AppOptionArgs,
    },
    /// List apps.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show an app's settings and the URLs to configure in it.
    Show {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove an app; its tokens stop working.
    Remove { slug: String },
    /// Replace a confidential app's client secret; prints the new one once.
    RotateSecret {
        slug: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        // Needs no settings, and must not load them: `secret_key_file` may
        // name the file about to be written.
        Command::SecretKey(command) => secret_key(command),
        command => with_config(cli.config.load()?, command).await,
    }
}

async fn with_config(config: Config, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::User(command) => user(&open(&config).await?, command).await,
        Command::Group(command) => group(&open(&config).await?, command).await,
        Command::App(command) => app(&open(&config).await?, &config, *command).await,
        Command::Key(command) => key(&open(&config).await?, &config, command).await,
        Command::Events { user, app, since, limit, json } => {
            let store = open(&config).await?;
            let filter = admin::event_filter(user, app, since.as_deref(), limit)?;
            admin::print_events(&store.list_events(&filter).await?, json)?;
            Ok(())
        }
        Command::Backup { file } => {
            open(&config).await?.backup_to(&file).await?;
            say!("Backed up to {}.", file.display())?;
            Ok(())
        }
        Command::Restore { file, force } => {
            let restored = admin::restore(&config, &file, force).await?;
            say!("Restored {} into {}.", file.display(), restored.display())?;
            Ok(())
        }
        Command::SecretKey(command) => secret_key(command),
    }
}

fn secret_key(command: SecretKeyCommand) -> anyhow::Result<()> {
    match command {
        SecretKeyCommand::New { file } => {
            admin::new_secret_key(&file)?;
            say!("Wrote a new secret key to {}.", file.display())?;
            say!(
                "Set secret_key_file (LATCH_SECRET_KEY_FILE) to it on every instance; keep a copy apart from backups."
            )?;
        }
    }
    Ok(())
}

/// Whether `error` is standard output closed by its reader: the command
/// then ends quietly and successfully (`latch events --json | head`).
pub fn output_closed(error: &anyhow::Error) -> bool {
    matches!(error.downcast_ref::<AdminError>(), Some(AdminError::OutputClosed))
}

async fn open(config: &Config) -> anyhow::Result<Store> {
    // Every error's Display carries its cause, so only the top one is printed.
    Store::connect_with(&config.database_url, config.secret_key.clone())
        .await
        .map_err(|error| anyhow::anyhow!("cannot open the database {}: {error}", mask_password(&config.database_url)))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(config.log_format);
    let server = Server::build(&config).await?;
    let address = server.local_addr()?;
    tracing::info!(
        %address,
        public_url = config.public_url.as_str(),
        database = %mask_password(&config.database_url),
        "latch is listening"
    );
    server.run(shutdown_signal()).await?;
    tracing::info!("latch stopped");
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logger = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colours);
    match format {
        LogFormat::Text => logger.fmt_fields(text_log_fields()).init(),
        LogFormat::Json => logger.json().flatten_event(true).init(),
    }
}

/// The most characters of one field the text log shows.
const MAX_LOGGED_CHARS: usize = 1000;

/// Fields of the text log, `name=value` (the message bare), each value cut
/// to `MAX_LOGGED_CHARS` with control characters escaped: fields carry
/// request text (usernames, client ids, redirect URIs, origins), and one
/// event must stay one line that sends the terminal nothing. (The JSON log
/// escapes by itself.)
fn text_log_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        let text = crate::text::printable(&crate::text::bounded(&text, MAX_LOGGED_CHARS)).into_owned();
        match field.name() {
            "message" => write!(writer, "{text}"),
            name => write!(writer, "{name}={text}"),
        }
    })
    .delimited(" ")
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = interrupt => {},
            () = terminate => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

async fn user(store: &Store, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { username, email, name, groups, password_stdin } => {
            let password = if password_stdin { Some(admin::read_password_stdin()?) } else { None };
            let generated = admin::add_user(store, &username, &email, name.as_deref(), &groups, password).await?;
            say!("Created user {username}.")?;
            if let Some(password) = generated {
                say!("Password (shown once): {password}")?;
            }
        }
        UserCommand::Passwd { username, keep_sessions, .. } => {
            let ended = admin::set_password(store, &username, admin::read_password_stdin()?, keep_sessions).await?;
            if keep_sessions {
                say!("Password of {username} changed; their sessions were kept.")?;
            } else {
                say!("Password of {username} changed; {ended} session(s) ended and their tokens revoked.")?;
            }
        }
        UserCommand::Disable { username } => {
            admin::set_disabled(store, &username, true).await?;
            say!("Disabled {username}: their sessions and tokens no longer work.")?;
        }
        UserCommand::Enable { username } => {
            admin::set_disabled(store, &username, false).await?;
            say!("Enabled {username}.")?;
        }
        UserCommand::Unlock { username } => {
            let was_locked = store.clear_login_failures(&crate::login::user_subject(&username)).await?;
            admin::record(store, "user_unlocked", Some(&username), None).await?;
            say!(
                "{}",
                if was_locked {
                    format!("Unlocked {username}.")
                } else {
                    format!("{username} had no failed sign-ins.")
                }
            )?;
        }
        UserCommand::List { json } => admin::print_users(&store.list_users().await?, json)?,
    }
    Ok(())
}

async fn group(store: &Store, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::Add { name } => {
            admin::add_group(store, &name).await?;
            say!("Created group {name}.")?;
        }
        GroupCommand::AddMember { group, username } => {
            store.add_group_member(&group, &username).await?;
            say!("Added {username} to {group}.")?;
        }
        GroupCommand::RemoveMember { group, username } => {
            store.remove_group_member(&group, &username).await?;
            say!("Removed {username} from {group}.")?;
        }
        GroupCommand::List { json } => admin::print_groups(&store.list_groups().await?, json)?,
    }
    Ok(())
}

async fn app(store: &Store, config: &Config, command: AppCommand) -> anyhow::Result<()> {
    match command {
        AppCommand::Add { slug, name, groups, proxy, json, .. } if proxy.proxy => {
            let settings = admin::add_proxy_app(store, config, &slug, &name, &groups, &proxy).await?;
            admin::print_proxy_settings(&settings, json)?;
        }
        AppCommand::Add { slug, name, redirect_uris, public, groups, options, json, .. } => {
            let created =
                admin::add_app(store, config, AppAdd { slug, name, redirect_uris, public, groups, options }).await?;
            admin::print_credentials(&created, json)?;
        }
        AppCommand::Update { slug, redirect_uris, groups, clear_groups, options } => {
            let update = AppUpdate {
                redirect_uris: (!redirect_uris.is_empty()).then_some(&redirect_uris),
                groups: (clear_groups || !groups.is_empty()).then_some(&groups),
            };
            admin::update_app(store, &slug, update, &options).await?;
            say!("Updated app {slug}.")?;
        }
        AppCommand::List { json } => admin::print_apps(&store.list_apps().await?, json)?,
        AppCommand::Show { slug, json } => admin::show_app(store, config, &slug, json).await?,
        AppCommand::Remove { slug } => {
            store.remove_app(&slug).await?;
            admin::record(store, "app_removed", None, Some(&slug)).await?;
            say!("Removed app {slug}.")?;
        }
        AppCommand::RotateSecret { slug, json } => {
            let rotated = admin::rotate_secret(store, config, &slug).await?;
            admin::print_credentials(&rotated, json)?;
        }
    }
    Ok(())
}

async fn key(store: &Store, config: &Config, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Rotate { alg, grace } => {
            let rotation = admin::rotate_key(store, config, alg, &grace).await?;
            say!("New {alg} key {} is published now and signs from {}.", rotation.kid, rotation.activates_at)?;
            say!("The keys it replaces stay published until {}.", rotation.retire_previous_at)?;
        }
        KeyCommand::List { json } => admin::print_keys(&store.signing_keys().await?, json)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_event_carrying_request_text_stays_one_bounded_inert_line() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(text_log_fields())
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let forged = "x\n2026-01-01T00:00:00Z  INFO latch: admin signed in\u{1b}[2J\u{202e}";
        let long = "y".repeat(5000);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(redirect_uri = %forged, username = forged, user_agent = %long, "refused {forged}");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains(['\u{1b}', '\u{202e}']), "{text}");
        assert!(text.contains("refused x\\n2026-01-01T00:00:00Z"), "{text}");
        assert!(text.contains("redirect_uri=x\\n2026-01-01T00:00:00Z"), "{text}");
        assert!(text.contains(&format!("user_agent={}…", "y".repeat(MAX_LOGGED_CHARS - 1))), "{text}");
        assert!(!text.contains(&"y".repeat(MAX_LOGGED_CHARS)), "{text}");
    }
}
