//! The chat service: a JSON REST API and a WebSocket gateway over SQLite or PostgreSQL.
//!
//! Layout:
//! - [`config`]: the settings, from the environment; [`state`]: what every request and socket reaches;
//!   [`caller`]: who is asking, from a bearer token or a ticket, and what they may do.
//! - [`http`]: routes and extractors, one module per resource; [`openapi`]: the generated spec.
//! - [`ws`]: the WebSocket gateway (sessions, the room hub, tickets, presence).
//! - [`events`]: every room event, and the writer: the one ordered path that commits and publishes them;
//!   [`broker`]: their fan-out to every node's hub, in-process or through Redis;
//!   [`revocations`]: ended sessions and revoked tokens, read back from the database;
//!   [`webhooks`]: room events POSTed to outside URLs, from a queue the writer fills.
//! - [`domain`]: the rules (accounts, sessions, tokens, rooms, messages) as functions over a connection.
//! - [`db`]: the connection pool, the schema, the rows.
//! - [`error`]: the one error type, rendered as problem+json; [`telemetry`]: logs and metrics.
//!
//! [`Application::build`] is what `main` and every test call: it binds, migrates and returns a
//! server ready to run, on the real port even when asked for port 0.

pub mod broker;
pub mod caller;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
pub mod openapi;
pub mod revocations;
pub mod state;
pub mod telemetry;
pub mod webhooks;
pub mod ws;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use tracing_actix_web::TracingLogger;
use utoipa_swagger_ui::SwaggerUi;

use config::Config;
use db::{Database, StorageError};
use domain::credentials::{JwtKeys, new_secret};
use events::writer::{MessageWriter, WriterThread};
use http::spa::Spa;
use state::AppState;
use ws::Realtime;

/// How long in-flight requests may take to finish after SIGTERM.
const SHUTDOWN_GRACE_SECONDS: u64 = 10;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot prepare DATA_DIR {path}: {source}")]
    DataDir { path: PathBuf, source: io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("STATIC_DIR {path} holds no readable index.html: {source}")]
    StaticDir { path: PathBuf, source: io::Error },
    #[error("REDIS_URL: {0}")]
    Redis(#[from] redis::RedisError),
}

/// A bound, migrated server, not yet running.
pub struct Application {
    addr: SocketAddr,
    server: Server,
    realtime: Arc<Realtime>,
    writer: WriterThread,
    drain: Duration,
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir)
            .map_err(|source| StartupError::DataDir { path: data_dir.clone(), source })?;
        let database_url =
            config.database_url.clone().unwrap_or_else(|| data_dir.join("chat.db").display().to_string());
        let pool_size = config.db_pool_size;
        // Migrations block; run them off the async runtime.
        let db = tokio::task::spawn_blocking(move || Database::open(&database_url, pool_size))
            .await
            .map_err(|e| StartupError::DataDir { path: data_dir.clone(), source: io::Error::other(e) })??;
        let secret = jwt_secret(&config)?;
        let spa = match &config.static_dir {
            Some(dir) => Some(Spa::load(dir).map_err(|source| StartupError::StaticDir { path: dir.clone(), source })?),
            None => None,
        };
        let realtime = Realtime::start(&config, db.clone())?;
        let listener = TcpListener::bind(config.bind_addr)
            .map_err(|source| StartupError::Bind { addr: config.bind_addr, source })?;
        let addr = listener.local_addr().map_err(|source| StartupError::Bind { addr: config.bind_addr, source })?;
        tracing::info!(database = db.backend().name(), "listening on http://{addr}");
        let drain = config.drain;
        let limits = http::rate_limit::RateLimitService::new(
            &config.rate_limits,
            config.trusted_proxies.clone(),
            realtime.redis.clone(),
        );
        let wakeup = webhooks::Wakeup::default();
        let (writer, writer_thread) = MessageWriter::start(
            db.clone(),
            realtime.broker.clone(),
            realtime.hub.member_checks.clone(),
            wakeup.clone(),
        );
        webhooks::Dispatcher::start(db.clone(), config.webhooks.clone(), writer.clone(), wakeup);
        let state = web::Data::new(AppState {
            limits,
            keys: JwtKeys::new(&secret, config.access_token_ttl),
            metrics: telemetry::metrics_handle(),
            realtime: Arc::clone(&realtime),
            writer,
            db,
            config,
            spa,
        });
        let server = HttpServer::new(move || app(state.clone()))
            .listen(listener)
            .map_err(|source| StartupError::Bind { addr, source })?
            // Signals are ours: sockets are drained before actix stops accepting and finishes requests.
            .disable_signals()
            // actix leaves Nagle's algorithm on: a small frame written after another then waits for
            // the peer's (delayed, up to 40 ms) ACK. Chat frames are small and must go out at once.
            .tcp_nodelay(true)
            .shutdown_timeout(SHUTDOWN_GRACE_SECONDS)
            .run();
        Ok(Application { addr, server, realtime, writer: writer_thread, drain })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until SIGTERM or Ctrl-C. Then: sockets are closed with 1012, spread over the drain
    /// window so that clients do not all reconnect at once; the listener stops accepting; in-flight
    /// requests finish; the message writer commits what is queued and stops; and this returns.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let stopped = tokio::select! {
            result = &mut server => result,
            () = shutdown_signal() => {
                tracing::info!(drain_seconds = self.drain.as_secs(), "shutting down: draining sockets");
                self.realtime.drain(self.drain).await;
                handle.stop(true).await;
                server.await
            }
        };
        // The requests have finished: nothing more is sent.
        self.writer.stop().await;
        stopped.map_err(io::Error::other)?
    }
}

/// The app every worker runs.
fn app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let spa = state.spa.clone();
    let cors = http::browser_safety::cors(&state.config.allowed_origins);
    let mut app = App::new()
        .app_data(state)
        .wrap(ErrorHandlers::new().default_handler(http::ensure_problem))
        .wrap(from_fn(http::browser_safety::security_headers))
        .wrap(from_fn(telemetry::record_request))
        .wrap(TracingLogger::<telemetry::RequestSpan>::new())
        .configure(http::ops::configure)
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(http::rate_limit::per_address))
                // Outside the rate limit: preflights are not counted, and a 429 stays readable.
                .wrap(cors)
                .configure(http::configure_api)
                .default_service(web::to(http::not_found)),
        )
        .route("/docs", web::get().to(|| async { redirect("/docs/") }))
        .service(
            SwaggerUi::new("/docs/{_:.*}")
                // The document is served by our own route; the UI must not fetch anything elsewhere.
                .config(utoipa_swagger_ui::Config::from("/api/v1/openapi.json").validator_url("none")),
        );
    app = match spa {
        Some(spa) => app.configure(|cfg| spa.configure(cfg)),
        None => app.route("/", web::get().to(|| async { redirect("/docs/") })),
    };
    app.default_service(web::to(http::not_found))
}

/// SIGTERM (what orchestrators send) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn redirect(to: &'static str) -> HttpResponse {
    HttpResponse::Found().insert_header(("location", to)).finish()
}

/// The configured secret, or the one kept in `DATA_DIR` (made on first start).
fn jwt_secret(config: &Config) -> Result<Vec<u8>, StartupError> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = config.data_dir.join("jwt_secret");
    let failed = |source| StartupError::DataDir { path: path.clone(), source };
    match std::fs::read_to_string(&path) {
        Ok(secret) if !secret.trim().is_empty() => return Ok(secret.trim().as_bytes().to_vec()),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(failed(e)),
        _ => {}
    }
    let secret = new_secret("");
    write_private(&path, &secret).map_err(failed)?;
    tracing::warn!(
        path = %path.display(),
        "JWT_SECRET is not set: generated one in DATA_DIR; several nodes need one shared JWT_SECRET"
    );
    Ok(secret.into_bytes())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}
