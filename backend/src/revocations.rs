//! Ended sessions and revoked API tokens, known to every node within seconds, also after a Redis outage.
//!
//! An access token is checked by its signature alone, so the node must remember which sessions ended
//! (logout, reuse of a spent refresh token) to refuse their tokens before they expire. Two paths feed
//! that memory: the broker (`Event::SessionEnded`, `Event::TokenRevoked`: at once, but pub/sub can drop
//! them) and [`watch`], which reads what was revoked in the database every [`POLL`] (durable: it sees
//! every revocation, whatever happened to Redis). Both end in the hub's dispatch, which closes the
//! sockets concerned; dispatching the same revocation twice does nothing more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

use crate::db::{Database, now};
use crate::domain::{api_tokens, sessions};
use crate::events::{Event, Sink};

/// How often the database is asked what was revoked since the last time.
pub const POLL: Duration = Duration::from_secs(2);
/// Revocations are read again from this far back at each poll: the nodes' clocks, which stamp
/// `revoked_at`, may differ a little, and a transaction may commit a moment after its stamp.
const OVERLAP: Duration = Duration::from_secs(10);

/// The sessions ended recently, each kept until every access token it could have issued has expired.
pub struct EndedSessions {
    /// Session (refresh-token family) -> when it may be forgotten.
    ended: Mutex<HashMap<String, Instant>>,
    keep: Duration,
}

impl EndedSessions {
    /// `keep`: the access-token lifetime (a token of an ended session is refused until it expires anyway).
    pub fn new(keep: Duration) -> EndedSessions {
        EndedSessions { ended: Mutex::default(), keep }
    }

    fn ended(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        // Each operation is one map call: poison leaves the map consistent.
        self.ended.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers that `session` ended. False when it was known already.
    pub fn end(&self, session: &str) -> bool {
        let now = Instant::now();
        let mut ended = self.ended();
        // Swept here, when something is added, so the map holds at most one token lifetime of endings.
        if ended.len() >= 1024 {
            ended.retain(|_, forget_at| *forget_at > now);
        }
        ended.insert(session.to_owned(), now + self.keep).is_none()
    }

    pub fn has_ended(&self, session: &str) -> bool {
        self.ended().contains_key(session)
    }
}

/// Reads the revocations of the database into the hub, for as long as the node runs: run it in a task.
/// The first read goes back one access-token lifetime, so that a node started after a logout refuses
/// the ended session's tokens too.
pub async fn watch(sink: Arc<dyn Sink>, db: Database, token_lifetime: Duration) {
    let lifetime = chrono::Duration::from_std(token_lifetime).unwrap_or(chrono::Duration::days(1));
    let mut since = now() - lifetime;
    let mut tick = tokio::time::interval(POLL);
    loop {
        tick.tick().await;
        let started = now();
        let from = since;
        let read =
            db.read(move |conn| Ok((sessions::ended_since(conn, from)?, api_tokens::revoked_since(conn, from)?)));
        match read.await {
            Ok((sessions, tokens)) => {
                for session in sessions {
                    sink.dispatch(&Event::SessionEnded { session });
                }
                for token_id in tokens {
                    sink.dispatch(&Event::TokenRevoked { token_id });
                }
                since = overlap(started);
            }
            // The database is down: nothing new can be revoked either; read from the same point next time.
            Err(e) => tracing::warn!("cannot read revocations: {e}"),
        }
    }
}

fn overlap(t: NaiveDateTime) -> NaiveDateTime {
    t - chrono::Duration::from_std(OVERLAP).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_sessions_are_remembered_once() {
        let sessions = EndedSessions::new(Duration::from_secs(60));
        assert!(!sessions.has_ended("a"));
        assert!(sessions.end("a"));
        assert!(!sessions.end("a"), "the second report of the same ending is not news");
        assert!(sessions.has_ended("a") && !sessions.has_ended("b"));
    }
}
