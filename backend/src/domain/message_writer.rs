//! Group commit for messages. Every send, REST or WebSocket, goes through [`MessageWriter::send`]:
//! its read-side checks run on a pooled connection, then it joins a queue that one writer thread
//! drains in batches, committing each batch in a single transaction.
//!
//! Why: a commit is the expensive part of a send (an fsync on PostgreSQL, the WAL append and lock
//! hand-off on SQLite), and a room's seq makes its sends serial anyway. Committing many sends at
//! once turns N commits into one, while each send still returns only after its commit.
//!
//! The writer also publishes what it committed, in commit order, through one publisher task. Were
//! each sender to publish its own message after its answer, the senders of one batch would race
//! and subscribers would see seqs out of order, each inversion costing every one of them a
//! database read to fill a gap that was not one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::messages::{self, DedupKeys, MessageBody, PendingSend, Posted};
use crate::broker::{Broker, Event};
use crate::db::Database;
use crate::db::models::UserRow;
use crate::error::ApiError;

/// The most sends committed in one transaction.
const MAX_BATCH: usize = 256;
/// Sends waiting for the writer before new ones wait to enter the queue (backpressure).
const QUEUE_DEPTH: usize = 4096;
/// How long a passed membership check lets the same author send to the same room unchecked.
/// Leaving a room forgets it at once on the node that handled the leave; other nodes notice
/// within this time.
const MEMBER_CHECK_TTL: Duration = Duration::from_secs(5);

struct Job {
    send: PendingSend,
    reply: oneshot::Sender<Result<Posted, ApiError>>,
}

/// Cheap to clone: a handle on the queue.
#[derive(Clone)]
pub struct MessageWriter {
    db: Database,
    queue: mpsc::Sender<Job>,
    members: MemberChecks,
}

/// Passed membership checks, by (room, author): the author's row and when it was read.
///
/// Why: the check is a database read on the blocking pool before every send. For a chat socket
/// sending into the room it sits in, it cost more than the rest of the send together (on SQLite
/// a reader refills its page cache after every commit): with it remembered for a few seconds, one
/// node on SQLite keeps up with 2,000 messages/s fanned out to 50 sockets each, not 1,250.
#[derive(Clone, Default)]
struct MemberChecks(Arc<Mutex<Checks>>);

#[derive(Default)]
struct Checks {
    passed: HashMap<(i64, i64), (Instant, UserRow)>,
    /// When expired entries were last swept out (at most once per TTL).
    swept: Option<Instant>,
}

impl MemberChecks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Checks> {
        // Each operation leaves the map consistent, so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, room_id: i64, author: i64, now: Instant) -> Option<UserRow> {
        let checks = self.lock();
        let (at, row) = checks.passed.get(&(room_id, author))?;
        (now - *at < MEMBER_CHECK_TTL).then(|| row.clone())
    }

    fn remember(&self, room_id: i64, author: UserRow, now: Instant) {
        let mut checks = self.lock();
        if checks.swept.is_none_or(|swept| now - swept >= MEMBER_CHECK_TTL) {
            checks.passed.retain(|_, (at, _)| now - *at < MEMBER_CHECK_TTL);
            checks.swept = Some(now);
        }
        checks.passed.insert((room_id, author.id), (now, author));
    }

    fn forget(&self, room_id: i64, user_id: i64) {
        self.lock().passed.remove(&(room_id, user_id));
    }
}

impl MessageWriter {
    /// Starts the writer thread and its publisher task (on the current runtime). Both end when
    /// every handle is dropped.
    pub fn start(db: Database, broker: Broker) -> MessageWriter {
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        // Unbounded: the writer must never wait on the broker (a Redis outage is retried there).
        let (published, mut to_publish) = mpsc::unbounded_channel::<Event>();
        tokio::spawn(async move {
            // Whatever queued up while the last publish was out goes in the next one, in order.
            let mut events = Vec::with_capacity(MAX_BATCH);
            while to_publish.recv_many(&mut events, MAX_BATCH).await > 0 {
                broker.publish_all(&events).await;
                events.clear();
            }
        });
        let writer_db = db.clone();
        thread::Builder::new()
            .name("message-writer".into())
            .spawn(move || write_batches(&writer_db, jobs, &published))
            // Unwrap: spawning a thread fails only when the OS is out of threads at start-up.
            .expect("cannot start the message writer thread");
        MessageWriter { db, queue, members: MemberChecks::default() }
    }

    /// Stores a message from `author` in `room_id`, once; committed when this returns `Ok`, and
    /// handed to the broker (by the writer, in seq order) when it was new.
    /// A retry (same `client_id` or `Idempotency-Key`) returns the first message with `created: false`.
    pub async fn send(
        &self,
        room_id: i64,
        author: i64,
        body: MessageBody,
        keys: DedupKeys,
    ) -> Result<Posted, ApiError> {
        let author = match self.members.get(room_id, author, Instant::now()) {
            Some(row) => row,
            None => {
                let row = self.db.read(move |conn| messages::prepare(conn, room_id, author)).await?;
                self.members.remember(room_id, row.clone(), Instant::now());
                row
            }
        };
        let (reply, answer) = oneshot::channel();
        let job = Job { send: PendingSend { room_id, author, body, keys }, reply };
        self.queue.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// `user_id` is no longer a member of `room_id`: their next send there is checked again.
    pub fn forget_member(&self, room_id: i64, user_id: i64) {
        self.members.forget(room_id, user_id);
    }
}

fn stopped() -> ApiError {
    ApiError::Unavailable { detail: "The message writer is not running.".into() }
}

/// The writer thread: takes what is queued (at least one send), stores it in one transaction,
/// publishes the new messages in commit order, answers every sender, and repeats.
fn write_batches(db: &Database, mut jobs: mpsc::Receiver<Job>, published: &mpsc::UnboundedSender<Event>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (sends, replies): (Vec<PendingSend>, Vec<_>) = batch.drain(..).map(|j| (j.send, j.reply)).unzip();
        metrics::histogram!("message_batch_size").record(sends.len() as f64);
        match db.write_here(|conn| messages::store_batch(conn, &sends)) {
            Ok(results) => {
                for posted in results.iter().flatten().filter(|p| p.created) {
                    // Fails only when the runtime is shutting down; the messages are committed.
                    let _ = published.send(Event::Message { message: posted.message.clone() });
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    // The sender may have gone (client disconnected); the message is stored regardless.
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!("a batch of {} messages failed: {e}", sends.len());
                for reply in replies {
                    let _ = reply.send(Err(e.for_each_caller()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64) -> UserRow {
        UserRow { id, username: format!("u{id}"), display_name: format!("U{id}"), created_at: crate::db::now() }
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
