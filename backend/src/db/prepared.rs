//! The writer's two UPDATEs, written out so that SQLite keeps them prepared.
//!
//! Diesel never caches an UPDATE's prepared statement (its `UpdateStatement` marks itself unsafe to
//! cache), so the writer parsed and planned these two again for every room in every commit. Their SQL
//! never changes, so a statement with a static query id is cached by diesel like any SELECT: at 1,000
//! messages/s the writer thread went from 0.26-0.30 to 0.22-0.23 core (bench/results.md). SQLite only:
//! PostgreSQL keeps `diesel::update` (not measured there). The read marker's also serves a client's `read`.

use chrono::NaiveDateTime;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::{QueryResult, RunQueryDsl};

/// Takes `n` seqs of a room at once: `(last_seq, kind)` after the increment.
pub struct TakeSeqs {
    pub room_id: i64,
    pub n: i64,
    pub at: NaiveDateTime,
}

impl QueryFragment<Sqlite> for TakeSeqs {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("UPDATE rooms SET last_seq = last_seq + ");
        out.push_bind_param::<BigInt, _>(&self.n)?;
        out.push_sql(", last_activity_at = ");
        out.push_bind_param::<Timestamp, _>(&self.at)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<BigInt, _>(&self.room_id)?;
        out.push_sql(" RETURNING last_seq, kind");
        Ok(())
    }
}

impl Query for TakeSeqs {
    type SqlType = (BigInt, Text);
}

/// Moves a member's read marker up to `seq` (never down).
pub struct ReadUpTo {
    pub room_id: i64,
    pub user_id: i64,
    pub seq: i64,
}

impl QueryFragment<Sqlite> for ReadUpTo {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("UPDATE room_members SET last_read_seq = ");
        out.push_bind_param::<BigInt, _>(&self.seq)?;
        out.push_sql(" WHERE room_id = ");
        out.push_bind_param::<BigInt, _>(&self.room_id)?;
        out.push_sql(" AND user_id = ");
        out.push_bind_param::<BigInt, _>(&self.user_id)?;
        out.push_sql(" AND last_read_seq < ");
        out.push_bind_param::<BigInt, _>(&self.seq)?;
        Ok(())
    }
}

/// The SQL of each is fixed, so its type identifies it: what lets diesel cache the statement.
macro_rules! cached_statement {
    ($($statement:ty),*) => {$(
        impl QueryId for $statement {
            type QueryId = Self;
            const HAS_STATIC_QUERY_ID: bool = true;
        }
        impl RunQueryDsl<SqliteConnection> for $statement {}
    )*};
}

cached_statement!(TakeSeqs, ReadUpTo);

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::Connection;
    use diesel::connection::{InstrumentationEvent, SimpleConnection};

    use super::*;

    fn database() -> SqliteConnection {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute(
            "CREATE TABLE rooms (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, last_seq BIGINT NOT NULL,
                 last_activity_at TIMESTAMP NOT NULL);
             CREATE TABLE room_members (room_id BIGINT, user_id BIGINT, last_read_seq BIGINT NOT NULL,
                 PRIMARY KEY (room_id, user_id));
             INSERT INTO rooms VALUES (1, 'group', 5, '2026-01-01 00:00:00');
             INSERT INTO room_members VALUES (1, 7, 3);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn seqs_are_taken_in_blocks_and_the_marker_only_moves_up() {
        let mut conn = database();
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc();
        let taken: (i64, String) = TakeSeqs { room_id: 1, n: 3, at }.get_result(&mut conn).unwrap();
        assert_eq!(taken, (8, "group".to_owned()));
        let taken: (i64, String) = TakeSeqs { room_id: 1, n: 1, at }.get_result(&mut conn).unwrap();
        assert_eq!(taken, (9, "group".to_owned()));
        assert_eq!(ReadUpTo { room_id: 1, user_id: 7, seq: 9 }.execute(&mut conn).unwrap(), 1);
        assert_eq!(ReadUpTo { room_id: 1, user_id: 7, seq: 4 }.execute(&mut conn).unwrap(), 0);
        let marker: i64 = diesel::select(diesel::dsl::sql::<BigInt>("(SELECT last_read_seq FROM room_members)"))
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(marker, 9);
    }

    #[test]
    fn each_statement_is_prepared_once() {
        let mut conn = database();
        let cached = Arc::new(Mutex::new(Vec::new()));
        let seen = cached.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { sql, .. } = event {
                seen.lock().unwrap().push(sql.to_owned());
            }
        });
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc();
        for seq in 6..9 {
            let _: (i64, String) = TakeSeqs { room_id: 1, n: 1, at }.get_result(&mut conn).unwrap();
            ReadUpTo { room_id: 1, user_id: 7, seq }.execute(&mut conn).unwrap();
        }
        let cached = cached.lock().unwrap();
        assert_eq!(cached.len(), 2, "{cached:?}");
        assert!(cached[0].starts_with("UPDATE rooms") && cached[1].starts_with("UPDATE room_members"));
    }
}
