//! Passed membership checks, remembered for a few seconds per (room, author).
//!
//! Why: the check is a database read on the blocking pool before every send. For a chat socket
//! sending into the room it sits in, it cost more than the rest of the send together (on SQLite
//! a reader refills its page cache after every commit): with it remembered, one node on SQLite
//! keeps up with 2,000 messages/s fanned out to 50 sockets each, not 1,250.
//!
//! Leaving a room forgets the entry on every node: the leave is published as
//! [`Event::MemberLeft`](crate::events::Event), which each node's hub hands here. Should Redis be
//! down, other nodes still stop trusting the entry after [`MEMBER_CHECK_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::db::models::UserRow;

/// How long a passed membership check lets the same author send to the same room unchecked.
pub const MEMBER_CHECK_TTL: Duration = Duration::from_secs(5);

/// Cheap to clone: one node's shared memory of passed checks.
#[derive(Clone, Default)]
pub struct MemberChecks(Arc<Mutex<Checks>>);

#[derive(Default)]
struct Checks {
    /// By (room, author): when the check passed, and the author's row it read.
    passed: HashMap<(i64, i64), (Instant, UserRow)>,
    /// When expired entries were last swept out (at most once per TTL).
    swept: Option<Instant>,
}

impl MemberChecks {
    fn lock(&self) -> MutexGuard<'_, Checks> {
        // Each operation leaves the map consistent, so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The author's row, if `author` passed the check for `room_id` less than the TTL ago.
    pub fn get(&self, room_id: i64, author: i64, now: Instant) -> Option<UserRow> {
        let checks = self.lock();
        let (at, row) = checks.passed.get(&(room_id, author))?;
        (now - *at < MEMBER_CHECK_TTL).then(|| row.clone())
    }

    pub fn remember(&self, room_id: i64, author: UserRow, now: Instant) {
        let mut checks = self.lock();
        if checks.swept.is_none_or(|swept| now - swept >= MEMBER_CHECK_TTL) {
            checks.passed.retain(|_, (at, _)| now - *at < MEMBER_CHECK_TTL);
            checks.swept = Some(now);
        }
        checks.passed.insert((room_id, author.id), (now, author));
    }

    /// Forgets every check of a user (blocked by someone: their sends into direct rooms are checked again).
    pub fn forget_user(&self, user_id: i64) {
        self.lock().passed.retain(|(_, user), _| *user != user_id);
    }

    /// Forgets every check of a room (deleted).
    pub fn forget_room(&self, room_id: i64) {
        self.lock().passed.retain(|(room, _), _| *room != room_id);
    }

    /// `user_id` is no longer a member of `room_id`: their next send there is checked again.
    pub fn forget(&self, room_id: i64, user_id: i64) {
        self.lock().passed.remove(&(room_id, user_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64) -> UserRow {
        let created_at = crate::db::now();
        UserRow { id, username: format!("u{id}"), display_name: format!("U{id}"), created_at, deleted_at: None }
    }

    #[test]
    fn a_passed_check_is_trusted_for_its_ttl_only() {
        let (checks, start) = (MemberChecks::default(), Instant::now());
        assert!(checks.get(1, 7, start).is_none());
        checks.remember(1, user(7), start);
        assert_eq!(checks.get(1, 7, start + MEMBER_CHECK_TTL / 2).map(|u| u.id), Some(7));
        assert!(checks.get(2, 7, start).is_none(), "another room is checked on its own");
        assert!(checks.get(1, 8, start).is_none(), "another author is checked on their own");
        assert!(checks.get(1, 7, start + MEMBER_CHECK_TTL).is_none());
    }

    #[test]
    fn leaving_forgets_at_once() {
        let (checks, start) = (MemberChecks::default(), Instant::now());
        checks.remember(1, user(7), start);
        checks.remember(2, user(7), start);
        checks.forget(1, 7);
        assert!(checks.get(1, 7, start).is_none());
        assert!(checks.get(2, 7, start).is_some());
    }

    #[test]
    fn expired_checks_are_swept_out() {
        let (checks, start) = (MemberChecks::default(), Instant::now());
        for author in 0..100 {
            checks.remember(1, user(author), start);
        }
        checks.remember(2, user(1), start + MEMBER_CHECK_TTL);
        assert_eq!(checks.lock().passed.len(), 1);
    }
}
