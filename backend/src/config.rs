//! Configuration: one struct read from the environment (and a `.env` file), with defaults that run
//! with nothing installed: SQLite in `DATA_DIR`, in-process fan-out, a generated JWT secret.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
            jwt_secret: var("JWT_SECRET"),
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
        })
    }
}

/// A variable's value, treating an empty string as unset (as `docker compose` writes them).
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_var<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    var(name)
        .map(|v| v.trim().parse::<T>().map_err(|e| ConfigError { name, problem: format!("{v:?}: {e}") }))
        .transpose()
}
