//! Opening connections: the backend is chosen from the URL's scheme, SQLite connections get their
//! pragmas, migrations run once at start-up (under an advisory lock on PostgreSQL, so several nodes
//! starting together do not race).

use std::sync::{Mutex, Weak};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, ConnectionError, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::DbConnection;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// Any lock number will do, as long as every node uses the same one.
const MIGRATION_LOCK_KEY: i64 = 0x6368_6174; // "chat"

/// How long a request waits for a pooled connection before it gets a 503.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why storage could not be opened; start-up stops with it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] ConnectionError),
    #[error("cannot open the connection pool: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("migrations failed: {0}")]
    Migrate(String),
    #[error("cannot prepare the SQLite database: {0}")]
    Setup(#[from] diesel::result::Error),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgresql",
            Backend::Sqlite => "sqlite",
        }
    }
}

pub type Pool = r2d2::Pool<Manager>;

/// Opens connections of one backend; r2d2 calls it.
#[derive(Debug)]
pub struct Manager {
    backend: Backend,
    url: String,
}

impl Manager {
    pub fn new(backend: Backend, url: &str) -> Manager {
        Manager { backend, url: url.to_owned() }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        connect(self.backend, &self.url).map_err(|e| match e {
            StorageError::Connect(e) => r2d2::Error::ConnectionError(e),
            other => r2d2::Error::QueryError(diesel::result::Error::QueryBuilderError(other.to_string().into())),
        })
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

pub fn build(manager: Manager, backend: Backend, size: Option<u32>) -> Result<Pool, StorageError> {
    // SQLite readers run in parallel in WAL mode; a few suffice on 2 cores. PostgreSQL does the
    // real work in its own processes, so more connections keep more requests in flight.
    let default_size = match backend {
        Backend::Sqlite => 8,
        Backend::Postgres => 16,
    };
    Ok(r2d2::Pool::builder()
        .max_size(size.unwrap_or(default_size))
        .connection_timeout(CHECKOUT_TIMEOUT)
        // Validating on every checkout costs a round trip per request; has_broken catches dead ones.
        .test_on_check_out(false)
        .build(manager)?)
}

/// One connection, ready to use.
pub fn connect(backend: Backend, url: &str) -> Result<DbConnection, StorageError> {
    Ok(match backend {
        Backend::Postgres => DbConnection::Postgresql(PgConnection::establish(url)?),
        Backend::Sqlite => DbConnection::Sqlite(connect_sqlite(url)?),
    })
}

fn connect_sqlite(url: &str) -> Result<SqliteConnection, StorageError> {
    let mut conn = SqliteConnection::establish(url.strip_prefix("sqlite://").unwrap_or(url))?;
    // busy_timeout: readers may still meet a checkpoint; foreign_keys is off by default in SQLite;
    // synchronous=FULL: in WAL mode NORMAL survives a process crash but not the host losing power, and
    // an acknowledged message must survive both (CONTRACT-2 "Durability"); FULL fsyncs the WAL at every
    // commit, which group commit pays once per batch. mmap: in WAL mode
    // a reader drops its page cache whenever another connection wrote, so under steady writes
    // every read refills it; mapped pages make that refill cheap. Auto-checkpoints are off: the
    // writer would stall on them; `Database` checkpoints from a thread of its own instead.
    // journal_size_limit: a WAL file is cut back to 64 MiB when it starts over.
    conn.batch_execute(
        "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;
         PRAGMA mmap_size = 268435456; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;",
    )?;
    Ok(conn)
}

/// How often the SQLite WAL is copied back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Checkpoints the SQLite WAL from a thread of its own, so that the writer seldom waits for one.
/// The thread ends once the database's writer is gone.
///
/// A PASSIVE checkpoint never blocks the writer, but under steady writes it never catches up
/// either: the writer appends while it copies, and SQLite starts the WAL over only when a write
/// begins with every frame copied. So the WAL grew for as long as the writes went on (700 MB in
/// 20 s of `make bench` fan-out). Hence two steps: copy most frames beside the writer, then the
/// few appended meanwhile while holding the writer's lock, which leaves nothing uncopied; the
/// next write then starts the WAL over, and `journal_size_limit` cuts a file a burst grew.
pub fn start_checkpoints(mut conn: DbConnection, writer: Weak<Mutex<DbConnection>>) {
    let spawned = std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || {
        loop {
            std::thread::sleep(CHECKPOINT_INTERVAL);
            let Some(writer) = writer.upgrade() else { return };
            checkpoint(&mut conn);
            // A panic while writing leaves no transaction open (see `Database::write_here`).
            let _no_writes = writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            checkpoint(&mut conn);
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start the checkpoint thread; the WAL will grow: {e}");
    }
}

fn checkpoint(conn: &mut DbConnection) {
    if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
        tracing::warn!("WAL checkpoint failed: {e}");
    }
}

/// Runs pending migrations.
pub fn migrate(backend: Backend, url: &str) -> Result<(), StorageError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| StorageError::Migrate(e.to_string());
    match backend {
        Backend::Postgres => {
            let mut conn = PgConnection::establish(url)?;
            conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let result = conn.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()).map_err(failed);
            conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
            result
        }
        Backend::Sqlite => {
            let mut conn = connect_sqlite(url)?;
            // WAL lets readers run beside the writer; the setting is kept in the file.
            conn.batch_execute("PRAGMA journal_mode = WAL;")?;
            conn.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()).map_err(failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::Integer;
    use diesel::{QueryableByName, RunQueryDsl};

    #[derive(QueryableByName)]
    struct Synchronous {
        #[diesel(sql_type = Integer)]
        synchronous: i32,
    }

    /// CONTRACT-2 "Durability": every connection the server opens on SQLite fsyncs each commit (FULL is 2;
    /// NORMAL, 1, loses acknowledged messages when the host loses power).
    #[test]
    fn every_sqlite_connection_fsyncs_each_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let mut conn = super::connect_sqlite(path.to_str().unwrap()).unwrap();
        let mode: Synchronous = diesel::sql_query("PRAGMA synchronous").get_result(&mut conn).unwrap();
        assert_eq!(mode.synchronous, 2, "PRAGMA synchronous is FULL");
    }
}
