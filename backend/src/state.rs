//! What every request and socket of a node can reach: [`AppState`], built once by `Application::build`.

use std::sync::Arc;

use actix_web::web;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::db::Database;
use crate::domain::credentials::JwtKeys;
use crate::events::writer::MessageWriter;
use crate::http::rate_limit::RateLimitService;
use crate::http::spa::Spa;
use crate::ws::Realtime;

/// What every handler can reach, shared by all workers.
pub struct AppState {
    pub db: Database,
    pub keys: JwtKeys,
    pub config: Config,
    pub metrics: PrometheusHandle,
    pub realtime: Arc<Realtime>,
    pub writer: MessageWriter,
    /// Request rate limits (per address, per user, login, register).
    pub limits: Arc<RateLimitService>,
    /// The browser app, when `STATIC_DIR` is set.
    pub spa: Option<Spa>,
}

pub type State = web::Data<AppState>;
