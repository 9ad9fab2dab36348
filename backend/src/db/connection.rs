//! The one connection type every query is written against.
//!
//! Kept in a module of its own as diesel's docs advise: the derive generates a backend that
//! dispatches each query to the variant's database at run time, so one code path serves both.

/// A connection to PostgreSQL or SQLite. Never built with `DbConnection::establish`, which tries the
/// variants in turn and hides why each failed: `pool::Manager` picks the variant from the URL.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}
