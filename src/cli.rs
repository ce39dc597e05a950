//! The command line: `latch serve` and the admin subcommands, one clap enum.
//! `anyhow` lives here and only here, at the edge.

use clap::{Parser, Subcommand};

use crate::admin::{self, AppAdd, AppOptionArgs, ProxyAppArgs};
use crate::config::{Config, ConfigArgs, LogFormat, mask_password};
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
        #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256", "EdDSA"])]
        alg: String,
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
    /// Set a user's password, read from standard input.
    Passwd {
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
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
            println!("Backed up to {}.", file.display());
            Ok(())
        }
        Command::Restore { file, force } => {
            let restored = admin::restore(&config, &file, force).await?;
            println!("Restored {} into {}.", file.display(), restored.display());
            Ok(())
        }
        Command::SecretKey(command) => secret_key(command),
    }
}

fn secret_key(command: SecretKeyCommand) -> anyhow::Result<()> {
    match command {
        SecretKeyCommand::New { file } => {
            admin::new_secret_key(&file)?;
            println!("Wrote a new secret key to {}.", file.display());
            println!(
                "Set secret_key_file (LATCH_SECRET_KEY_FILE) to it on every instance; keep a copy apart from backups."
            );
        }
    }
    Ok(())
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
        LogFormat::Text => logger.init(),
        LogFormat::Json => logger.json().flatten_event(true).init(),
    }
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
            println!("Created user {username}.");
            if let Some(password) = generated {
                println!("Password (shown once): {password}");
            }
        }
        UserCommand::Passwd { username, .. } => {
            admin::set_password(store, &username, admin::read_password_stdin()?).await?;
            println!("Password of {username} changed.");
        }
        UserCommand::Disable { username } => {
            admin::set_disabled(store, &username, true).await?;
            println!("Disabled {username}: their sessions and tokens no longer work.");
        }
        UserCommand::Enable { username } => {
            admin::set_disabled(store, &username, false).await?;
            println!("Enabled {username}.");
        }
        UserCommand::Unlock { username } => {
            let was_locked = store.clear_login_failures(&crate::login::user_subject(&username)).await?;
            admin::record(store, "user_unlocked", Some(&username), None).await?;
            println!(
                "{}",
                if was_locked {
                    format!("Unlocked {username}.")
                } else {
                    format!("{username} had no failed sign-ins.")
                }
            );
        }
        UserCommand::List { json } => admin::print_users(&store.list_users().await?, json)?,
    }
    Ok(())
}

async fn group(store: &Store, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::Add { name } => {
            admin::add_group(store, &name).await?;
            println!("Created group {name}.");
        }
        GroupCommand::AddMember { group, username } => {
            store.add_group_member(&group, &username).await?;
            println!("Added {username} to {group}.");
        }
        GroupCommand::RemoveMember { group, username } => {
            store.remove_group_member(&group, &username).await?;
            println!("Removed {username} from {group}.");
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
        AppCommand::Update { slug, redirect_uris, options } => {
            admin::update_app(store, &slug, &redirect_uris, &options).await?;
            println!("Updated app {slug}.");
        }
        AppCommand::List { json } => admin::print_apps(&store.list_apps().await?, json)?,
        AppCommand::Show { slug, json } => admin::show_app(store, config, &slug, json).await?,
        AppCommand::Remove { slug } => {
            store.remove_app(&slug).await?;
            admin::record(store, "app_removed", None, Some(&slug)).await?;
            println!("Removed app {slug}.");
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
            let rotation = admin::rotate_key(store, config, &alg, &grace).await?;
            println!("New {alg} key {} is published now and signs from {}.", rotation.kid, rotation.activates_at);
            println!("The keys it replaces stay published until {}.", rotation.retire_previous_at);
        }
        KeyCommand::List { json } => admin::print_keys(&store.signing_keys().await?, json)?,
    }
    Ok(())
}
