//! Configuration: one struct read from the environment (and a `.env` file), with defaults that run
//! with nothing installed: SQLite in `DATA_DIR`, in-process fan-out, a generated JWT secret.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

/// Everything the server needs to start. `Default` is what `make run` uses with an empty environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen; port 0 picks a free port (the tests use `127.0.0.1:0`).
    pub bind_addr: SocketAddr,
    /// Holds the SQLite file and the generated JWT secret.
    pub data_dir: PathBuf,
    /// `postgres://...` for PostgreSQL, `sqlite://path` or a plain path for SQLite;
    /// `None` means `DATA_DIR/chat.db`.
    pub database_url: Option<String>,
    /// Redis for fan-out across nodes; `None` keeps everything in this process.
    pub redis_url: Option<String>,
    /// HS256 key for access tokens; `None` generates one once and keeps it in `DATA_DIR`.
    pub jwt_secret: Option<String>,
    /// The built SPA, served at `/` with a fallback to `index.html`.
    pub static_dir: Option<PathBuf>,
    /// Browser origins allowed besides the server's own.
    pub allowed_origins: Vec<String>,
    /// Lifetime of an access token (JWT).
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token.
    pub refresh_token_ttl: Duration,
    /// Connections in the database pool; `None` picks a default per backend.
    pub db_pool_size: Option<u32>,
    /// Emit JSON log lines (`LOG_FORMAT=json`) instead of human ones.
    pub log_json: bool,
    /// On SIGTERM, sockets are closed with 1012 spread over this window (`DRAIN_SECONDS`).
    pub drain: Duration,
    /// Request rates allowed per user, per client address, and for login and registration.
    pub rate_limits: RateLimits,
    /// Sockets one user may hold open on a node (`MAX_SOCKETS_PER_USER`); the next upgrade gets 429.
    pub max_sockets_per_user: usize,
    /// Peers whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`: addresses or CIDR blocks);
    /// empty: the client address is always the peer's.
    pub trusted_proxies: Vec<IpNet>,
    /// Outgoing webhooks: where they may go and how they are retried.
    pub webhooks: WebhookSettings,
}

/// How outgoing webhooks are sent (CONTRACT-2 "Webhooks").
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Hosts (names or addresses, lowercase) a webhook may reach over plain `http://` and at loopback,
    /// private or link-local addresses (`WEBHOOK_ALLOW_HOSTS`, comma-separated): an internal service
    /// the operator trusts. Everything else must be `https://` to a public address.
    pub allow_hosts: Vec<String>,
    /// Deliveries in flight at once on this node (`WEBHOOK_CONCURRENCY`); each webhook has at most one.
    pub concurrency: usize,
    /// The waits after each failed attempt; the last repeats until `give_up_after`.
    pub retry_delays: Vec<Duration>,
    /// A webhook whose event has failed for this long is disabled and its room's owner notified.
    pub give_up_after: Duration,
    /// How long a receiver has to answer (`WEBHOOK_TIMEOUT_SECONDS`, default 10).
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        WebhookSettings {
            allow_hosts: Vec::new(),
            concurrency: 64,
            retry_delays: vec![
                Duration::from_secs(5),
                Duration::from_secs(30),
                minutes(2),
                minutes(10),
                minutes(60),
                minutes(240),
            ],
            give_up_after: Duration::from_secs(3 * 24 * 3600),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The request rates of `RATE_LIMIT_*`; `None` switches a limit off. Defaults are for people
/// and well-behaved bots; a load test raises them explicitly (see `bench/`).
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// API requests per authenticated user, whatever the address (`RATE_LIMIT_USER`).
    pub per_user: Option<Rate>,
    /// API requests per client address, signed in or not (`RATE_LIMIT_ADDRESS`).
    pub per_address: Option<Rate>,
    /// Login attempts per client address, whatever the names tried (`RATE_LIMIT_LOGIN`): one
    /// address guessing gets 10 a minute, over one name or many.
    pub login: Option<Rate>,
    /// Login attempts per username, whatever the addresses (`RATE_LIMIT_LOGIN_USERNAME`): guesses
    /// at one name spread over many addresses. Ten times the per-address rate, so that no single
    /// address can lock the name's owner out; doing so takes ten addresses guessing at full speed.
    pub login_username: Option<Rate>,
    /// Registrations per client address (`RATE_LIMIT_REGISTER`).
    pub register: Option<Rate>,
    /// `GET /users` searches per user (`RATE_LIMIT_LOOKUPS`).
    pub lookups: Option<Rate>,
    /// Messages sent per user over all their sockets and REST together (`RATE_LIMIT_SENDS`): each socket
    /// also has its own frame budget, but a user holds up to `MAX_SOCKETS_PER_USER` of them.
    pub sends: Option<Rate>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_user: Some(Rate::per_minute(1200)),
            per_address: Some(Rate::per_minute(3000)),
            login: Some(Rate::per_minute(10)),
            login_username: Some(Rate::per_minute(100)),
            register: Some(Rate::per_minute(20)),
            lookups: Some(Rate::per_minute(60)),
            sends: Some(Rate::per_minute(1200)),
        }
    }
}

impl RateLimits {
    /// No limit at all (for tests that measure something else).
    pub fn off() -> RateLimits {
        RateLimits {
            per_user: None,
            per_address: None,
            login: None,
            login_username: None,
            register: None,
            lookups: None,
            sends: None,
        }
    }
}

/// `limit` requests per `period`, written `10/min` (also `/s`, `/h`, or `off`). Up to `limit`
/// may come at once; after that they are let through as the period allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub limit: u32,
    pub period: Duration,
}

impl Rate {
    pub const fn per_minute(limit: u32) -> Rate {
        Rate { limit, period: Duration::from_secs(60) }
    }

    /// `10/min`, `50/s`, `1000/h`; `off` (or `0`) is `None`.
    pub fn parse(text: &str) -> Result<Option<Rate>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") || text == "0" {
            return Ok(None);
        }
        let (limit, unit) = text.split_once('/').ok_or_else(|| format!("{text:?}: expected N/s, N/min, N/h or off"))?;
        let limit: u32 = limit.trim().parse().map_err(|e| format!("{text:?}: {e}"))?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => return Err(format!("{text:?}: unknown period {other:?} (s, min or h)")),
        };
        Ok((limit > 0).then_some(Rate { limit, period }))
    }
}

/// `TRUSTED_PROXIES`: `10.0.0.5, 172.16.0.0/12`; a bare address is a block of one.
fn parse_networks(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not an address or a CIDR block"))
        })
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            redis_url: None,
            jwt_secret: None,
            static_dir: None,
            allowed_origins: Vec::new(),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            db_pool_size: None,
            log_json: false,
            drain: Duration::from_secs(10),
            rate_limits: RateLimits::default(),
            max_sockets_per_user: 20,
            trusted_proxies: Vec::new(),
            webhooks: WebhookSettings::default(),
        }
    }
}

/// A variable that is set but cannot be used. Start-up stops with this rather than guess.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

impl Config {
    /// Reads the environment; a `.env` file in the working directory is loaded first when present.
    pub fn from_env() -> Result<Config, ConfigError> {
        // A missing .env is the normal case; a malformed one is worth stopping for.
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            return Err(ConfigError { name: ".env", problem: e.to_string() });
        }
        let defaults = Config::default();
        Ok(Config {
            bind_addr: parse_var("BIND_ADDR")?.unwrap_or(defaults.bind_addr),
            data_dir: var("DATA_DIR").map(PathBuf::from).unwrap_or(defaults.data_dir),
            database_url: var("DATABASE_URL"),
            redis_url: var("REDIS_URL"),
            jwt_secret: jwt_secret_var()?,
            static_dir: var("STATIC_DIR").map(PathBuf::from),
            allowed_origins: var("ALLOWED_ORIGINS")
                .map(|v| {
                    v.split(',').map(|o| o.trim().trim_end_matches('/').to_owned()).filter(|o| !o.is_empty()).collect()
                })
                .unwrap_or_default(),
            access_token_ttl: parse_var("ACCESS_TOKEN_TTL")?
                .map(Duration::from_secs)
                .unwrap_or(defaults.access_token_ttl),
            refresh_token_ttl: parse_var("REFRESH_TOKEN_TTL")?
                .map(Duration::from_secs)
                .unwrap_or(defaults.refresh_token_ttl),
            db_pool_size: parse_var("DB_POOL_SIZE")?,
            log_json: var("LOG_FORMAT").is_some_and(|v| v.eq_ignore_ascii_case("json")),
            drain: parse_var("DRAIN_SECONDS")?.map(Duration::from_secs).unwrap_or(defaults.drain),
            rate_limits: RateLimits {
                per_user: rate_var("RATE_LIMIT_USER", defaults.rate_limits.per_user)?,
                per_address: rate_var("RATE_LIMIT_ADDRESS", defaults.rate_limits.per_address)?,
                login: rate_var("RATE_LIMIT_LOGIN", defaults.rate_limits.login)?,
                login_username: rate_var("RATE_LIMIT_LOGIN_USERNAME", defaults.rate_limits.login_username)?,
                register: rate_var("RATE_LIMIT_REGISTER", defaults.rate_limits.register)?,
                lookups: rate_var("RATE_LIMIT_LOOKUPS", defaults.rate_limits.lookups)?,
                sends: rate_var("RATE_LIMIT_SENDS", defaults.rate_limits.sends)?,
            },
            max_sockets_per_user: parse_var("MAX_SOCKETS_PER_USER")?.unwrap_or(defaults.max_sockets_per_user),
            trusted_proxies: var("TRUSTED_PROXIES")
                .map(|v| parse_networks(&v))
                .transpose()
                .map_err(|problem| ConfigError { name: "TRUSTED_PROXIES", problem })?
                .unwrap_or_default(),
            webhooks: WebhookSettings {
                allow_hosts: var("WEBHOOK_ALLOW_HOSTS")
                    .map(|v| v.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect())
                    .unwrap_or_default(),
                concurrency: parse_var("WEBHOOK_CONCURRENCY")?
                    .filter(|&n: &usize| n > 0)
                    .unwrap_or(defaults.webhooks.concurrency),
                timeout: parse_var("WEBHOOK_TIMEOUT_SECONDS")?
                    .filter(|&s: &u64| s > 0)
                    .map(Duration::from_secs)
                    .unwrap_or(defaults.webhooks.timeout),
                ..defaults.webhooks
            },
        })
    }
}

/// The fewest bytes `JWT_SECRET` may have: HS256 with a shorter key can be brute-forced offline from one
/// token (RFC 7518 asks for a key at least as long as the hash, 32 bytes).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

fn jwt_secret_var() -> Result<Option<String>, ConfigError> {
    match var("JWT_SECRET") {
        Some(secret) if secret.len() < MIN_JWT_SECRET_BYTES => Err(ConfigError {
            name: "JWT_SECRET",
            problem: format!(
                "is {} bytes long; it needs at least {MIN_JWT_SECRET_BYTES} random bytes (try `openssl rand -hex 32`)",
                secret.len()
            ),
        }),
        secret => Ok(secret),
    }
}

/// A variable's value, treating an empty string as unset (as `docker compose` writes them).
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn rate_var(name: &'static str, default: Option<Rate>) -> Result<Option<Rate>, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => Rate::parse(&v).map_err(|problem| ConfigError { name, problem }),
    }
}

fn parse_var<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    var(name)
        .map(|v| v.trim().parse::<T>().map_err(|e| ConfigError { name, problem: format!("{v:?}: {e}") }))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(Rate::parse("10/min"), Ok(Some(Rate::per_minute(10))));
        assert_eq!(Rate::parse(" 50 / s "), Ok(Some(Rate { limit: 50, period: Duration::from_secs(1) })));
        assert_eq!(Rate::parse("off"), Ok(None));
        assert_eq!(Rate::parse("0/min"), Ok(None));
        assert!(Rate::parse("10").is_err());
        assert!(Rate::parse("10/week").is_err());
        assert!(Rate::parse("x/min").is_err());
    }

    #[test]
    fn proxies_parse() {
        let nets = parse_networks("10.0.0.5, 172.16.0.0/12,::1").unwrap();
        assert_eq!(nets.len(), 3);
        assert!(nets[0].contains(&"10.0.0.5".parse::<IpAddr>().unwrap()));
        assert!(nets[1].contains(&"172.20.1.1".parse::<IpAddr>().unwrap()));
        assert!(parse_networks("nginx").is_err());
    }
}
