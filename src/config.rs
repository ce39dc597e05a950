//! One `Config`, assembled from flags, `LATCH_*` environment variables and an
//! optional TOML file, in that order of precedence. Every value is checked
//! here, once, so a bad setting stops the process at start with its name.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::connections::ConnectionLimits;
use crate::crypto::at_rest::SecretKey;

const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:9000";
const DEFAULT_DATA_DIR: &str = "./latch-data";

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: PublicUrl,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub code_ttl: Duration,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub session_ttl: Duration,
    pub log_format: LogFormat,
    pub metrics_listen: Option<SocketAddr>,
    pub trusted_proxies: Vec<IpNet>,
    pub throttle: ThrottleLimits,
    pub event_retention: Duration,
    pub connections: ConnectionLimits,
    /// Encrypts signing keys and deployment secrets in the store.
    pub secret_key: Option<SecretKey>,
    pub mfa: MfaPolicy,
}

/// The second-factor policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MfaPolicy {
    /// `require_mfa`: apps that set nothing of their own (`--require-mfa`)
    /// require a second factor. Default false.
    pub required_by_default: bool,
    /// `mfa_enrolment`: `open` (the default) lets people set up their own
    /// second factors at `/account/security`, and sends someone an app
    /// requires one of, who has none, there; `closed` leaves enrolment to
    /// administrators (`latch user mfa totp`), and such a person is refused
    /// with a page that says so.
    pub enrolment: MfaEnrolment,
}

impl MfaPolicy {
    /// Whether an app with the per-app setting `app` (`None`: unset)
    /// requires a second factor.
    pub fn required_for(&self, app: Option<bool>) -> bool {
        app.unwrap_or(self.required_by_default)
    }
}

/// Who enrols second factors (`mfa_enrolment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MfaEnrolment {
    /// Each person, at `/account/security`.
    #[default]
    Open,
    /// Administrators only.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Brute-force limits for the sign-in form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    pub max_failures_per_user: i64,
    pub max_failures_per_ip: i64,
    pub window: Duration,
    pub lockout: Duration,
}

/// An address range, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    network: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (address, prefix) = match raw.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (raw, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| format!("{address:?} is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= max)
                .ok_or_else(|| format!("bad prefix length in {raw:?}"))?,
            None => max,
        };
        Ok(Self { network, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(address),
            v4 => v4,
        };
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

/// The externally visible base URL, without a trailing slash. Every absolute
/// URL Latch emits is built from it, never from a request's Host header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw).map_err(|error| error.to_string())?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err("the scheme must be http or https".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("it must not have a query or fragment".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("it must not contain credentials".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("it must name a host".into());
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// `path` must start with `/`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid setting `{setting}` ({env} / --{flag}): {value:?}: {reason}")]
    Invalid { setting: &'static str, env: String, flag: String, value: String, reason: String },
    #[error("cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// The raw settings as given on the command line or in the environment.
/// Global so that `latch --database-url … user add` and
/// `latch user add … --database-url …` both work.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ConfigArgs {
    /// TOML file with any of the settings below (keys in snake_case).
    #[arg(long, env = "LATCH_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:9000].
    #[arg(long, env = "LATCH_LISTEN", global = true)]
    pub listen: Option<String>,
    /// URL under which browsers and apps reach Latch [default: http://127.0.0.1:9000].
    #[arg(long, env = "LATCH_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Directory for the SQLite database [default: ./latch-data].
    #[arg(long, env = "LATCH_DATA_DIR", global = true)]
    pub data_dir: Option<String>,
    /// sqlite://… or postgres://… [default: sqlite://<data dir>/latch.db].
    #[arg(long, env = "LATCH_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Default lifetime of authorization codes, e.g. 60s [default: 60s].
    #[arg(long = "default-code-ttl", env = "LATCH_CODE_TTL", global = true)]
    pub code_ttl: Option<String>,
    /// Default lifetime of access and ID tokens, e.g. 5m [default: 5m].
    #[arg(long = "default-access-token-ttl", env = "LATCH_ACCESS_TOKEN_TTL", global = true)]
    pub access_token_ttl: Option<String>,
    /// Default lifetime of refresh tokens, sliding with each use, e.g. 30d [default: 30d].
    #[arg(long = "default-refresh-token-ttl", env = "LATCH_REFRESH_TOKEN_TTL", global = true)]
    pub refresh_token_ttl: Option<String>,
    /// Lifetime of a sign-in session, e.g. 24h [default: 24h].
    #[arg(long, env = "LATCH_SESSION_TTL", global = true)]
    pub session_ttl: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "LATCH_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    /// Serve /metrics on this separate address instead of the main one.
    #[arg(long, env = "LATCH_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<String>,
    /// Comma-separated addresses or CIDR ranges of reverse proxies whose
    /// X-Forwarded-For is believed [default: none].
    #[arg(long, env = "LATCH_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// Failed sign-ins per username within the window before a lock [default: 5].
    #[arg(long, env = "LATCH_LOGIN_MAX_FAILURES", global = true)]
    pub login_max_failures: Option<String>,
    /// Failed sign-ins per client IP within the window before a lock [default: 20].
    #[arg(long, env = "LATCH_LOGIN_MAX_FAILURES_PER_IP", global = true)]
    pub login_max_failures_per_ip: Option<String>,
    /// The window failures are counted in, e.g. 5m [default: 5m].
    #[arg(long, env = "LATCH_LOGIN_WINDOW", global = true)]
    pub login_window: Option<String>,
    /// How long a lock lasts, e.g. 15m [default: 15m].
    #[arg(long, env = "LATCH_LOGIN_LOCKOUT", global = true)]
    pub login_lockout: Option<String>,
    /// How long audit events are kept, e.g. 90d [default: 90d].
    #[arg(long, env = "LATCH_EVENT_RETENTION", global = true)]
    pub event_retention: Option<String>,
    /// Time a client has to send a request's header, from its first byte [default: 10s].
    #[arg(long, env = "LATCH_HEADER_READ_TIMEOUT", global = true)]
    pub header_read_timeout: Option<String>,
    /// Time a client has to send a request's body, after its header [default: 30s].
    #[arg(long, env = "LATCH_BODY_READ_TIMEOUT", global = true)]
    pub body_read_timeout: Option<String>,
    /// How long a connection may wait for its next request (keep-alive) [default: 60s].
    #[arg(long, env = "LATCH_IDLE_TIMEOUT", global = true)]
    pub idle_timeout: Option<String>,
    /// Client connections served at once; more wait to be accepted [default: 4096].
    #[arg(long, env = "LATCH_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<String>,
    /// File with the key (32 random bytes, base64) that encrypts signing keys
    /// and secrets in the database [default: none, stored unencrypted].
    #[arg(long, env = "LATCH_SECRET_KEY_FILE", global = true)]
    pub secret_key_file: Option<String>,
    /// Apps that do not say otherwise (`app update --require-mfa`) require a
    /// second factor: true or false [default: false].
    #[arg(long = "default-require-mfa", env = "LATCH_REQUIRE_MFA", global = true)]
    pub require_mfa: Option<String>,
    /// Who sets up second factors: open (each person, at /account/security)
    /// or closed (administrators, with `latch user mfa`) [default: open].
    #[arg(long, env = "LATCH_MFA_ENROLMENT", global = true)]
    pub mfa_enrolment: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    public_url: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    code_ttl: Option<String>,
    access_token_ttl: Option<String>,
    refresh_token_ttl: Option<String>,
    session_ttl: Option<String>,
    log_format: Option<String>,
    metrics_listen: Option<String>,
    trusted_proxies: Option<String>,
    login_max_failures: Option<String>,
    login_max_failures_per_ip: Option<String>,
    login_window: Option<String>,
    login_lockout: Option<String>,
    event_retention: Option<String>,
    header_read_timeout: Option<String>,
    body_read_timeout: Option<String>,
    idle_timeout: Option<String>,
    max_connections: Option<String>,
    secret_key_file: Option<String>,
    require_mfa: Option<String>,
    mfa_enrolment: Option<String>,
}

impl ConfigArgs {
    pub fn load(&self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let pick = |given: &Option<String>, from_file: Option<String>| given.clone().or(from_file);

        let listen = match pick(&self.listen, file.listen) {
            Some(raw) => {
                raw.parse().map_err(|error: std::net::AddrParseError| invalid("listen", &raw, error.to_string()))?
            }
            None => {
                DEFAULT_LISTEN.parse().map_err(|_| invalid("listen", DEFAULT_LISTEN, "bad built-in default".into()))?
            }
        };
        let public_url_raw = pick(&self.public_url, file.public_url).unwrap_or_else(|| DEFAULT_PUBLIC_URL.into());
        let public_url =
            PublicUrl::parse(&public_url_raw).map_err(|reason| invalid("public_url", &public_url_raw, reason))?;
        let data_dir_raw = pick(&self.data_dir, file.data_dir).unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        if data_dir_raw.trim().is_empty() {
            return Err(invalid("data_dir", &data_dir_raw, "must not be empty".into()));
        }
        let data_dir = PathBuf::from(data_dir_raw);
        let database_url = match pick(&self.database_url, file.database_url) {
            Some(raw) => check_database_url(&raw)?,
            None => format!("sqlite://{}", data_dir.join("latch.db").display()),
        };
        Ok(Config {
            listen,
            public_url,
            data_dir,
            database_url,
            code_ttl: duration("code_ttl", pick(&self.code_ttl, file.code_ttl), "60s")?,
            access_token_ttl: duration("access_token_ttl", pick(&self.access_token_ttl, file.access_token_ttl), "5m")?,
            refresh_token_ttl: duration(
                "refresh_token_ttl",
                pick(&self.refresh_token_ttl, file.refresh_token_ttl),
                "30d",
            )?,
            session_ttl: duration("session_ttl", pick(&self.session_ttl, file.session_ttl), "24h")?,
            log_format: match pick(&self.log_format, file.log_format).as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => return Err(invalid("log_format", other, "must be text or json".into())),
            },
            metrics_listen: pick(&self.metrics_listen, file.metrics_listen)
                .map(|raw| {
                    raw.parse()
                        .map_err(|error: std::net::AddrParseError| invalid("metrics_listen", &raw, error.to_string()))
                })
                .transpose()?,
            trusted_proxies: pick(&self.trusted_proxies, file.trusted_proxies)
                .map(|raw| {
                    raw.split(',')
                        .filter(|part| !part.trim().is_empty())
                        .map(|part| {
                            IpNet::parse(part.trim()).map_err(|reason| invalid("trusted_proxies", &raw, reason))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default(),
            throttle: ThrottleLimits {
                max_failures_per_user: count(
                    "login_max_failures",
                    pick(&self.login_max_failures, file.login_max_failures),
                    5,
                )?,
                max_failures_per_ip: count(
                    "login_max_failures_per_ip",
                    pick(&self.login_max_failures_per_ip, file.login_max_failures_per_ip),
                    20,
                )?,
                window: duration("login_window", pick(&self.login_window, file.login_window), "5m")?,
                lockout: duration("login_lockout", pick(&self.login_lockout, file.login_lockout), "15m")?,
            },
            event_retention: duration("event_retention", pick(&self.event_retention, file.event_retention), "90d")?,
            connections: ConnectionLimits {
                header_read_timeout: duration(
                    "header_read_timeout",
                    pick(&self.header_read_timeout, file.header_read_timeout),
                    "10s",
                )?,
                body_read_timeout: duration(
                    "body_read_timeout",
                    pick(&self.body_read_timeout, file.body_read_timeout),
                    "30s",
                )?,
                idle_timeout: duration("idle_timeout", pick(&self.idle_timeout, file.idle_timeout), "60s")?,
                max_connections: u32::try_from(count(
                    "max_connections",
                    pick(&self.max_connections, file.max_connections),
                    4096,
                )?)
                .unwrap_or(u32::MAX),
            },
            secret_key: pick(&self.secret_key_file, file.secret_key_file)
                .map(|raw| SecretKey::read(Path::new(&raw)).map_err(|reason| invalid("secret_key_file", &raw, reason)))
                .transpose()?,
            mfa: MfaPolicy {
                required_by_default: match pick(&self.require_mfa, file.require_mfa) {
                    None => false,
                    Some(raw) => boolean("require_mfa", &raw)?,
                },
                enrolment: match pick(&self.mfa_enrolment, file.mfa_enrolment).as_deref().map(str::trim) {
                    None | Some("open") => MfaEnrolment::Open,
                    Some("closed") => MfaEnrolment::Closed,
                    Some(other) => return Err(invalid("mfa_enrolment", other, "must be open or closed".into())),
                },
            },
        })
    }
}

fn boolean(setting: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(setting, raw, "must be true or false".into())),
    }
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigError::File { path: path.to_owned(), reason: error.to_string() })?;
    toml::from_str(&text).map_err(|error| ConfigError::File { path: path.to_owned(), reason: error.to_string() })
}

fn check_database_url(raw: &str) -> Result<String, ConfigError> {
    let scheme = raw.split_once("://").map(|(scheme, _)| scheme);
    match scheme {
        Some("sqlite" | "postgres" | "postgresql") => Ok(raw.to_owned()),
        _ => Err(invalid("database_url", &mask_password(raw), "must start with sqlite:// or postgres://".into())),
    }
}

fn count(setting: &'static str, raw: Option<String>, default: i64) -> Result<i64, ConfigError> {
    match raw {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(value) if value >= 1 => Ok(value),
            _ => Err(invalid(setting, &raw, "must be a whole number of at least 1".into())),
        },
    }
}

fn duration(setting: &'static str, raw: Option<String>, default: &str) -> Result<Duration, ConfigError> {
    let raw = raw.unwrap_or_else(|| default.to_owned());
    let parsed = humantime::parse_duration(&raw).map_err(|error| invalid(setting, &raw, error.to_string()))?;
    if parsed.as_secs() == 0 {
        return Err(invalid(setting, &raw, "must be at least one second".into()));
    }
    Ok(parsed)
}

fn invalid(setting: &'static str, value: &str, reason: String) -> ConfigError {
    let env = format!("LATCH_{}", setting.to_uppercase());
    let kebab = setting.replace('_', "-");
    let per_app_too = setting.ends_with("token_ttl") || setting == "code_ttl" || setting == "require_mfa";
    let flag = if per_app_too { format!("default-{kebab}") } else { kebab };
    ConfigError::Invalid { setting, env, flag, value: value.to_owned(), reason }
}

/// A database URL safe to print: the password, if any, replaced by `***`.
pub fn mask_password(database_url: &str) -> String {
    match Url::parse(database_url) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => database_url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_configuration() {
        let config = ConfigArgs::default().load().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(config.public_url.as_str(), "http://127.0.0.1:9000");
        assert_eq!(config.database_url, "sqlite://./latch-data/latch.db");
        assert_eq!(config.code_ttl, Duration::from_secs(60));
        assert_eq!(config.connections.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.connections.max_connections, 4096);
    }

    #[test]
    fn a_bad_value_names_its_setting() {
        let args = ConfigArgs { listen: Some("nine thousand".into()), ..Default::default() };
        let message = args.load().unwrap_err().to_string();
        assert!(message.contains("LATCH_LISTEN"), "{message}");
        let args = ConfigArgs { public_url: Some("ftp://x".into()), ..Default::default() };
        assert!(args.load().unwrap_err().to_string().contains("public_url"));
        let args = ConfigArgs { database_url: Some("mysql://x".into()), ..Default::default() };
        assert!(args.load().unwrap_err().to_string().contains("LATCH_DATABASE_URL"));
        let args = ConfigArgs { code_ttl: Some("soon".into()), ..Default::default() };
        assert!(args.load().unwrap_err().to_string().contains("code_ttl"));
        let args = ConfigArgs { max_connections: Some("0".into()), ..Default::default() };
        assert!(args.load().unwrap_err().to_string().contains("LATCH_MAX_CONNECTIONS"));
    }

    #[test]
    fn flags_and_env_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latch.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9100\"\npublic_url = \"https://sso.example.com/\"\n").unwrap();
        let args = ConfigArgs { config: Some(path.clone()), ..Default::default() };
        let config = args.load().unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.public_url.as_str(), "https://sso.example.com");
        let args = ConfigArgs { config: Some(path), listen: Some("127.0.0.1:9200".into()), ..Default::default() };
        assert_eq!(args.load().unwrap().listen.port(), 9200);
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latch.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let args = ConfigArgs { config: Some(path), ..Default::default() };
        assert!(args.load().unwrap_err().to_string().contains("lisen"));
    }

    #[test]
    fn trusted_proxy_ranges_match_addresses() {
        let range = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(range.contains("10.1.2.3".parse().unwrap()));
        assert!(range.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!range.contains("11.0.0.1".parse().unwrap()));
        assert!(IpNet::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        let args = ConfigArgs { trusted_proxies: Some("127.0.0.1, nonsense".into()), ..Default::default() };
        assert!(args.load().unwrap_err().to_string().contains("LATCH_TRUSTED_PROXIES"));
    }

    #[test]
    fn a_bad_secret_key_file_names_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        std::fs::write(&path, "too short").unwrap();
        let args = ConfigArgs { secret_key_file: Some(path.display().to_string()), ..Default::default() };
        let message = args.load().unwrap_err().to_string();
        assert!(message.contains("LATCH_SECRET_KEY_FILE") && message.contains("base64"), "{message}");
        std::fs::write(&path, SecretKey::generate()).unwrap();
        assert_eq!(args.load().unwrap().secret_key.unwrap().path(), path);
    }

    #[test]
    fn the_mfa_policy_defaults_to_optional_and_open() {
        let config = ConfigArgs::default().load().unwrap();
        assert_eq!(config.mfa, MfaPolicy { required_by_default: false, enrolment: MfaEnrolment::Open });
        assert!(config.mfa.required_for(Some(true)) && !config.mfa.required_for(None));
        let args =
            ConfigArgs { require_mfa: Some("true".into()), mfa_enrolment: Some("closed".into()), ..Default::default() };
        let policy = args.load().unwrap().mfa;
        assert!(policy.required_for(None) && !policy.required_for(Some(false)));
        assert_eq!(policy.enrolment, MfaEnrolment::Closed);
        let args = ConfigArgs { require_mfa: Some("yes please".into()), ..Default::default() };
        assert!(args.load().unwrap_err().to_string().contains("LATCH_REQUIRE_MFA"));
        let args = ConfigArgs { mfa_enrolment: Some("ajar".into()), ..Default::default() };
        assert!(args.load().unwrap_err().to_string().contains("LATCH_MFA_ENROLMENT"));
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(mask_password("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }
}
