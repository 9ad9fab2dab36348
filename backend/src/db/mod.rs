//! Storage: one [`Database`] handle over SQLite (the embedded default) or PostgreSQL.
//!
//! Diesel is blocking, so every query runs on the blocking thread pool through [`Database::read`]
//! or [`Database::write`], never on the async workers. Writes to SQLite go through one connection
//! behind a mutex: SQLite allows one writer at a time anyway, and queueing writers here is far
//! cheaper than letting them collide and sleep in SQLite's busy handler.

mod connection;
pub mod models;
mod pool;
pub mod prepared;
pub mod schema;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::{QueryResult, RunQueryDsl};
use tracing::Span;

pub use connection::DbConnection;
pub use pool::{Backend, StorageError};

use crate::error::ApiError;
use pool::{Manager, Pool};

/// Cheap to clone: the pool and the writer are shared.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    /// SQLite only: the single connection that writes. `None` on PostgreSQL, whose writers use the pool.
    sqlite_writer: Option<Arc<Mutex<DbConnection>>>,
    backend: Backend,
}

impl Database {
    /// Connects, runs the pending migrations and opens the pool.
    /// `url` is `postgres://...`, `sqlite://path` or a plain SQLite path.
    pub fn open(url: &str, pool_size: Option<u32>) -> Result<Database, StorageError> {
        let backend = Backend::of_url(url);
        pool::migrate(backend, url)?;
        let pool = pool::build(Manager::new(backend, url), backend, pool_size)?;
        let sqlite_writer = match backend {
            Backend::Sqlite => {
                let writer = Arc::new(Mutex::new(pool::connect(backend, url)?));
                pool::start_checkpoints(pool::connect(backend, url)?, Arc::downgrade(&writer));
                Some(writer)
            }
            Backend::Postgres => None,
        };
        Ok(Database { pool, sqlite_writer, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `f` with a pooled connection on the blocking pool. For queries that only read.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        blocking(move || f(&mut *pool.get()?)).await
    }

    /// Runs `f`, which writes, on the blocking pool. `f` opens its own transaction where it needs one.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        blocking(move || db.write_here(f)).await
    }

    /// Runs `f`, which writes, on this thread: for threads that may block (the message writer).
    pub fn write_here<T>(&self, f: impl FnOnce(&mut DbConnection) -> Result<T, ApiError>) -> Result<T, ApiError> {
        match &self.sqlite_writer {
            None => f(&mut *self.pool.get()?),
            Some(writer) => {
                // A panic while writing leaves no transaction open (diesel rolls back on unwind),
                // so a poisoned lock still guards a usable connection.
                let mut conn = writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                f(&mut conn)
            }
        }
    }

    /// True when the database answers a trivial query within `timeout`: for `/readyz`.
    pub async fn is_ready(&self, timeout: Duration) -> bool {
        let pool = self.pool.clone();
        let check = blocking(move || {
            let mut conn = pool.get_timeout(timeout)?;
            conn.batch_execute("SELECT 1")?;
            Ok(())
        });
        matches!(tokio::time::timeout(timeout, check).await, Ok(Ok(())))
    }

    /// Connections checked out of the pool right now, for `/metrics`.
    pub fn connections_in_use(&self) -> u32 {
        let state = self.pool.state();
        state.connections - state.idle_connections
    }
}

/// Runs blocking work on the blocking pool, inside the caller's tracing span.
async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let span = Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f)).await.map_err(ApiError::internal)?
}

/// The current time as stored: UTC, truncated to microseconds so that SQLite and PostgreSQL
/// return exactly what was written.
pub fn now() -> NaiveDateTime {
    let now = Utc::now().naive_utc();
    DateTime::from_timestamp_micros(now.and_utc().timestamp_micros()).map_or(now, |t| t.naive_utc())
}

/// Runs one statement on whichever backend `conn` is, for the clauses the multi-backend connection
/// cannot express (`ON CONFLICT DO NOTHING`): `$c` is the concrete connection inside `$body`.
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgresql($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Inserts a room membership unless the user is a member already (`ON CONFLICT DO NOTHING`); the rows
/// inserted.
pub fn insert_member_unless_present(conn: &mut DbConnection, row: &models::MemberRow) -> QueryResult<usize> {
    use schema::room_members;
    per_backend!(conn, c => diesel::insert_into(room_members::table).values(row).on_conflict_do_nothing().execute(c))
}

/// Inserts a ban unless the user is banned already; the rows inserted.
pub fn insert_ban_unless_present(conn: &mut DbConnection, row: &models::BanRow) -> QueryResult<usize> {
    use schema::room_bans;
    per_backend!(conn, c => diesel::insert_into(room_bans::table).values(row).on_conflict_do_nothing().execute(c))
}

/// A stored time on the wire.
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}
