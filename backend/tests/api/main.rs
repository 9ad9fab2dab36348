//! Black-box tests of the REST API: each test starts the real server (`Application::build`) on
//! `127.0.0.1:0` with a fresh database and talks HTTP to it, as a client would.
//!
//! Layout: `helpers.rs` holds `TestApp` (one helper per endpoint) and the shape assertions; every other
//! module is one resource of the contract (`CONTRACT.md`).
//!
//! Every test is written once, as `async fn name(app: TestApp)`, and listed in its module's
//! `db_tests!`, which generates `sqlite::name` and `postgres::name`; `cargo test --test api -- postgres`
//! (or `-- sqlite`) runs one half. PostgreSQL comes from `TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`); without one the postgres half is skipped
//! with a warning, except under `CI`, where it fails. `TEST_LOG=1` shows the server's logs.

/// Generates, for each listed `async fn name(app: TestApp)` of the calling module, the tests
/// `sqlite::name` and `postgres::name`.
macro_rules! db_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let app = crate::helpers::TestApp::spawn(crate::helpers::TestDb::Sqlite).await;
                    super::$name(app).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if !crate::helpers::TestDb::Postgres.is_available() {
                        return;
                    }
                    let app = crate::helpers::TestApp::spawn(crate::helpers::TestDb::Postgres).await;
                    super::$name(app).await;
                }
            )+
        }
    };
}

/// Like `db_tests!`, for tests that need a server configured differently: each listed
/// `async fn name(app: TestApp)` runs on a server whose `Config` went through `configure` (a
/// `fn(&mut Config)`), as `sqlite_configured::name` and `postgres_configured::name`. A module may use
/// both macros.
macro_rules! db_tests_configured {
    ($configure:ident => $($name:ident),+ $(,)?) => {
        mod sqlite_configured {
            $(
                #[tokio::test]
                async fn $name() {
                    let app = crate::helpers::TestApp::spawn_with(crate::helpers::TestDb::Sqlite, super::$configure).await;
                    super::$name(app).await;
                }
            )+
        }
        mod postgres_configured {
            $(
                #[tokio::test]
                async fn $name() {
                    if !crate::helpers::TestDb::Postgres.is_available() {
                        return;
                    }
                    let app =
                        crate::helpers::TestApp::spawn_with(crate::helpers::TestDb::Postgres, super::$configure).await;
                    super::$name(app).await;
                }
            )+
        }
    };
}

mod accounts;
mod auth;
mod browser_safety;
mod cluster;
mod conversations;
mod errors;
mod faults;
mod hardening;
mod helpers;
mod hooks;
mod logs;
mod long_polling;
mod messages;
mod moderation;
mod notifications;
mod ops;
mod rate_limits;
mod rooms;
mod search;
mod sessions;
mod sse;
mod tokens;
mod topology;
mod typescript;
mod webhooks;
mod ws;
mod ws_auth;
mod ws_client;
mod ws_cluster;
mod ws_delivery;
mod ws_frames;
mod ws_hardening;
mod ws_limits;
mod ws_presence;
