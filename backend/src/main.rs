//! `chat-server`: reads the configuration, builds the application, runs it until SIGTERM.

use std::process::ExitCode;

use backend::{Application, config::Config, telemetry};

#[actix_web::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("chat-server: bad configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init_logging(config.log_json);
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
