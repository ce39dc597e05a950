//! The command line: `latch serve` and the admin subcommands, one clap enum.
//! A thin front end over `crate::admin`: parse, call, format (`output`).
//! `anyhow` lives here and only here, at the edge.

mod app_args;
mod commands;
pub(crate) mod output;
mod serve;

use clap::{Parser, Subcommand};

use crate::admin::{self, EventQuery};
use crate::config::{Config, ConfigArgs, mask_password};
use crate::crypto::keys::SigningAlg;
use crate::store::Store;
use app_args::{AppOptionArgs, PresetArgs, ProxyAppArgs};
use output::{OutputError, say};

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
    /// The LDAP interface: search accounts for apps, and its settings.
    #[command(subcommand)]
    Ldap(LdapCommand),
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
    /// Make groups, people, apps and access policies what a TOML file
    /// declares (README: "Declarative configuration"). Prints the changes;
    /// leaves what the file does not mention unless --prune.
    Apply {
        file: std::path::PathBuf,
        /// Print the changes without making them.
        #[arg(long)]
        dry_run: bool,
        /// Also remove apps and groups, and disable people, the file does not mention.
        #[arg(long)]
        prune: bool,
    },
    /// Print groups, people and apps as a file `latch apply` takes (no secrets).
    Export,
    /// The running instances of this deployment.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Check the deployment from the outside in and say what to change;
    /// exits non-zero when it finds a problem.
    Doctor {
        /// Only this app's problems (and the deployment's).
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// List the instances with their listen addresses; flag stale ones and mixed versions.
    Status {
        #[arg(long)]
        json: bool,
    },
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
    /// Manage a person's app passwords (for LDAP binds only).
    #[command(subcommand)]
    AppPassword(AppPasswordCommand),
    /// Change a user's e-mail address or name.
    Update {
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Full name, as apps will show it.
        #[arg(long)]
        name: Option<String>,
    },
    /// Sign a user out everywhere: their sessions end and their tokens are revoked.
    EndSessions { username: String },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Invite a person: creates them, pending, and prints a one-time link
    /// with which they choose their password.
    Invite {
        username: String,
        #[arg(long)]
        email: String,
        /// Full name, as apps will show it.
        #[arg(long)]
        name: Option<String>,
        /// Group to add the person to (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// How long the link works, e.g. 7d (the default) or 12h.
        #[arg(long)]
        ttl: Option<String>,
        /// Also e-mail the link to the person (needs smtp_url).
        #[arg(long)]
        send: bool,
        /// Print {"url": …, "expires_at": …}.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time link with which a person chooses a new password;
    /// their sessions end when they do.
    ResetLink {
        username: String,
        /// How long the link works, e.g. 1d (the default) or 2h.
        #[arg(long)]
        ttl: Option<String>,
        /// Also e-mail the link to the person (needs smtp_url).
        #[arg(long)]
        send: bool,
        /// Print {"url": …, "expires_at": …}.
        #[arg(long)]
        json: bool,
    },
    /// Manage a user's second factors (TOTP, recovery codes, passkeys).
    #[command(subcommand)]
    Mfa(MfaCommand),
}

#[derive(Debug, Subcommand)]
enum MfaCommand {
    /// List the user's second factors (kind, name, created, last used; never a secret).
    List {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Enrol a TOTP authenticator for the user; prints its otpauth:// URI once.
    Totp {
        username: String,
        /// Replace the authenticator the user has (without it, one there is refused).
        #[arg(long)]
        replace: bool,
        #[arg(long)]
        json: bool,
    },
    /// Replace the user's recovery codes with a fresh set; prints them once.
    RecoveryCodes {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove every second factor and recovery code of the user.
    Reset { username: String },
}

#[derive(Debug, Subcommand)]
enum AppPasswordCommand {
    /// Create an app password for LDAP binds from one device or app; printed once.
    Add {
        username: String,
        /// Names the device or app, e.g. phone-mail.
        label: String,
        #[arg(long)]
        json: bool,
    },
    /// List a person's app passwords (labels only).
    List {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke an app password.
    Remove { username: String, label: String },
}

#[derive(Debug, Subcommand)]
enum LdapCommand {
    /// Manage the accounts apps bind as to search the directory.
    #[command(subcommand)]
    Account(LdapAccountCommand),
    /// Show the LDAP settings, the directory's DNs and the search accounts.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum LdapAccountCommand {
    /// Create a search account (cn=<name>,ou=services,<base>); its secret is printed once.
    Add {
        name: String,
        /// See only the members of this group, and the group (repeatable; none: everyone).
        #[arg(long = "group")]
        groups: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List search accounts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a search account.
    Remove { name: String },
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
    /// Register an OpenID Connect app (prints its client_id and, once, its secret), with --proxy a forward-auth app, or with --preset a known app.
    Add {
        /// Short name used in URLs, e.g. grafana.
        slug: String,
        /// Display name (with --preset, the app's own name by default).
        #[arg(long, required_unless_present = "preset")]
        name: Option<String>,
        /// Exact redirect URI (repeatable; at least one, unless --proxy or --preset).
        #[arg(long = "redirect-uri", required_unless_present_any = ["proxy", "preset"])]
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
        #[command(flatten)]
        preset: PresetArgs,
        #[arg(long)]
        json: bool,
    },
    /// List the known apps `app add --preset` can register, and what each needs.
    Presets {
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
        /// A new display name.
        #[arg(long)]
        name: Option<String>,
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
    let actor = commands::operator();
    match command {
        Command::Serve => serve::serve(config).await,
        Command::User(command) => commands::user(&open(&config).await?, &config, &actor, command).await,
        Command::Group(command) => commands::group(&open(&config).await?, &actor, command).await,
        Command::App(command) => commands::app(&open(&config).await?, &config, &actor, *command).await,
        Command::Key(command) => commands::key(&open(&config).await?, &config, &actor, command).await,
        Command::Ldap(command) => commands::ldap(&open(&config).await?, &config, &actor, command).await,
        Command::Events { user, app, since, limit, json } => {
            let events =
                admin::list_events(&open(&config).await?, EventQuery { user, app, since, ..EventQuery::newest(limit) })
                    .await?;
            output::events(&events, json)?;
            Ok(())
        }
        Command::Backup { file } => {
            admin::backup(&open(&config).await?, &file).await?;
            say!("Backed up to {}.", file.display())?;
            Ok(())
        }
        Command::Restore { file, force } => {
            let restored = admin::restore(&config, &file, force).await?;
            say!("Restored {} into {}.", file.display(), restored.display())?;
            Ok(())
        }
        Command::SecretKey(command) => secret_key(command),
        Command::Apply { file, dry_run, prune } => {
            commands::apply(&open(&config).await?, &config, &actor, &file, dry_run, prune).await
        }
        Command::Export => {
            let text = crate::declarative::export(&open(&config).await?).await?;
            output::write_line(text.trim_end())?;
            Ok(())
        }
        Command::Cluster(ClusterCommand::Status { json }) => {
            output::cluster(&admin::cluster_status(&open(&config).await?).await?, json)?;
            Ok(())
        }
        Command::Doctor { app, json } => {
            let problems = crate::doctor::examine(&open(&config).await?, &config, app.as_deref()).await?;
            output::problems(&problems, json)?;
            match problems.len() {
                0 => Ok(()),
                found => Err(anyhow::anyhow!("latch doctor found {found} problem(s)")),
            }
        }
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
    matches!(error.downcast_ref::<OutputError>(), Some(OutputError::Closed))
}

async fn open(config: &Config) -> anyhow::Result<Store> {
    // Every error's Display carries its cause, so only the top one is printed.
    Store::connect_with(&config.database_url, config.secret_key.clone())
        .await
        .map_err(|error| anyhow::anyhow!("cannot open the database {}: {error}", mask_password(&config.database_url)))
}
