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

mod auth;
mod errors;
mod helpers;
mod messages;
mod ops;
mod rooms;
mod tokens;
