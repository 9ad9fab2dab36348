//! Group commit for messages, and the one ordered path for every room event. Every send, REST or
//! WebSocket, goes through [`MessageWriter::send`]: its read-side checks run on a pooled connection,
//! then it joins a queue that one writer thread drains in batches, committing each batch in a single
//! transaction. Every other change to a room (an edit, a delete) goes through the same queue with
//! [`MessageWriter::commit`], in its own transaction between two batches.
//!
//! Why: a commit is the expensive part of a send (an fsync on PostgreSQL, the WAL append and lock
//! hand-off on SQLite), and a room's seq makes its sends serial anyway. Committing many sends at
//! once turns N commits into one, while each send still returns only after its commit.
//!
//! The writer also publishes what it committed, in commit order, through one publisher task. Were
//! each sender to publish its own message after its answer, the senders of one batch would race
//! and subscribers would see seqs out of order, each inversion costing every one of them a
//! database read to fill a gap that was not one; and an edit published by its HTTP handler could
//! overtake the message it edits.
//!
//! Each transaction also queues its events for the room's webhooks (`webhooks::outbox::enqueue`), so
//! that what is committed is exactly what webhooks are sent, and rings this node's webhook dispatcher.
//!
//! On SQLite the writer also keeps the search index: new messages are indexed in a transaction of their
//! own after `INDEX_EVERY` sends, and before any search ([`MessageWriter::index_for_search`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use super::Event;
use super::member_checks::MemberChecks;
use crate::broker::Broker;
use crate::db::{Backend, Database, DbConnection};
use crate::domain::messages::{self, DedupKeys, Extras, MessageBody, PendingSend, Posted};
use crate::domain::search;
use crate::error::ApiError;
use crate::webhooks::{Wakeup, outbox};

/// The most sends committed in one transaction.
const MAX_BATCH: usize = 256;
/// Sends waiting for the writer before new ones wait to enter the queue (backpressure).
const QUEUE_DEPTH: usize = 4096;
/// SQLite: new messages indexed for search at once (sooner when a search comes).
const INDEX_EVERY: usize = 512;
/// Group commit, paced: a batch that follows a small one starts at least `COMMIT_INTERVAL` after it, or
/// as soon as `SMALL_BATCH` sends wait. A commit costs about the same for one send as for many (most of
/// it the fsync and its kernel work), and sends that come one at a time, as a room's do, got a commit
/// each: half the writer's time under fan-out. Now a send after a quiet spell is committed at once; one
/// that closely follows a small batch waits at most `COMMIT_INTERVAL` to share the next commit; and
/// when many senders wait at once (a closed loop of REST clients), each holds the others up only until
/// the batch is no longer small.
const COMMIT_INTERVAL: Duration = Duration::from_millis(2);
const SMALL_BATCH: usize = 8;
/// How often a paced wait looks at the queue.
const PACE_TICK: Duration = Duration::from_micros(500);

/// A change's work: its own transaction, committed when this returns `Ok`; the events to publish.
type Apply = Box<dyn FnOnce(&mut DbConnection) -> Result<Committed, ApiError> + Send>;

/// What a transaction committed: its events, and how many it queued for webhooks.
struct Committed {
    events: Vec<Event>,
    queued: usize,
}

/// Where the writer hands what it committed: the publisher task (in commit order), and the webhook
/// dispatcher's wake-up.
struct Published {
    events: mpsc::UnboundedSender<Event>,
    webhooks: Wakeup,
}

impl Published {
    fn send(&self, committed: Committed) {
        if committed.queued > 0 {
            self.webhooks.ring();
        }
        for event in committed.events {
            // Fails only when the runtime is shutting down; the events are committed.
            let _ = self.events.send(event);
        }
    }
}

enum Job {
    Send {
        send: PendingSend,
        reply: oneshot::Sender<Result<Posted, ApiError>>,
    },
    Change {
        apply: Apply,
        done: oneshot::Sender<Result<(), ApiError>>,
    },
    /// SQLite: index what was sent since the last time, for a search about to read the index.
    IndexSearch {
        done: oneshot::Sender<Result<(), ApiError>>,
    },
    /// Shutdown: what was queued before is committed, then the thread ends.
    Stop,
}

/// The writer thread, to stop at shutdown ([`WriterThread::stop`]).
pub struct WriterThread {
    thread: thread::JoinHandle<()>,
    queue: mpsc::Sender<Job>,
}

/// Cheap to clone: a handle on the queue.
#[derive(Clone)]
pub struct MessageWriter {
    db: Database,
    queue: mpsc::Sender<Job>,
    members: MemberChecks,
    /// SQLite: messages were stored that the search index does not hold yet.
    search_behind: Arc<AtomicBool>,
}

impl MessageWriter {
    /// Starts the writer thread and its publisher task (on the current runtime). Both end when
    /// every handle is dropped. `members` is the node's memory of passed membership checks.
    pub fn start(
        db: Database,
        broker: Broker,
        members: MemberChecks,
        webhooks: Wakeup,
    ) -> (MessageWriter, WriterThread) {
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
        let sqlite = db.backend() == Backend::Sqlite;
        let search_behind = Arc::new(AtomicBool::new(sqlite));
        let mut index = SearchIndex { sqlite, behind: Arc::clone(&search_behind), unindexed: 0 };
        let writer_db = db.clone();
        let thread = thread::Builder::new()
            .name("message-writer".into())
            .spawn(move || write_batches(&writer_db, jobs, &Published { events: published, webhooks }, &mut index))
            // Unwrap: spawning a thread fails only when the OS is out of threads at start-up.
            .expect("cannot start the message writer thread");
        let writer_thread = WriterThread { thread, queue: queue.clone() };
        (MessageWriter { db, queue, members, search_behind }, writer_thread)
    }

    /// The author's row when they are a member of `room_id` (remembered for a few seconds); 403 or 404
    /// otherwise. What a send checks, for other frames that need membership (`typing`).
    pub async fn member(&self, room_id: i64, author: i64) -> Result<crate::db::models::UserRow, ApiError> {
        if let Some(row) = self.members.get(room_id, author, Instant::now()) {
            return Ok(row);
        }
        let row = self.db.read(move |conn| messages::prepare(conn, room_id, author)).await?;
        self.members.remember(room_id, row.clone(), Instant::now());
        Ok(row)
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
        reply_to: Option<i64>,
        via: Option<String>,
    ) -> Result<Posted, ApiError> {
        let author = self.member(room_id, author).await?;
        // Most messages neither reply nor mention: those cost no read here.
        let mut extras = if Extras::needed(&body, reply_to) {
            let (id, text) = (author.id, body.as_str().to_owned());
            self.db.read(move |conn| Extras::resolve(conn, room_id, id, &text, reply_to)).await?
        } else {
            Extras::default()
        };
        extras.via = via;
        let (reply, answer) = oneshot::channel();
        let job = Job::Send { send: PendingSend { room_id, author, body, keys, extras }, reply };
        self.queue.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Commits a change to a room in its own transaction, in order with the sends around it, then
    /// publishes the events it returns (in commit order, like messages) and answers with its value.
    pub async fn commit<T, F>(&self, change: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<(T, Vec<Event>), ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let (value, committed) = oneshot::channel();
        let apply: Apply = Box::new(move |conn| {
            let (result, events, queued) = conn.transaction(|conn| {
                let (result, events) = change(conn)?;
                let queued = outbox::enqueue(conn, &events)?;
                Ok::<_, ApiError>((result, events, queued))
            })?;
            // The caller may have gone; the change is committed regardless.
            let _ = value.send(result);
            Ok(Committed { events, queued })
        });
        let (done, finished) = oneshot::channel();
        self.queue.send(Job::Change { apply, done }).await.map_err(|_| stopped())?;
        finished.await.map_err(|_| stopped())??;
        committed.await.map_err(|_| stopped())
    }

    /// Before a search reads the index: SQLite indexes the messages stored since the last time (in the
    /// writer's order, after the sends queued before), so that a search finds every message sent before it.
    /// Nothing to wait for when none was stored since (and never on PostgreSQL).
    pub async fn index_for_search(&self) -> Result<(), ApiError> {
        if !self.search_behind.load(Ordering::Acquire) {
            return Ok(());
        }
        let (done, finished) = oneshot::channel();
        self.queue.send(Job::IndexSearch { done }).await.map_err(|_| stopped())?;
        finished.await.map_err(|_| stopped())?
    }
}

impl WriterThread {
    /// Shutdown: commits what is queued, then ends the writer thread and waits for it; sends after this
    /// are refused (503). Why wait: the thread holds a handle on the connection pool, and were it the
    /// last one, the pool's PostgreSQL connections would be closed on that thread while the process
    /// exits, freeing TLS state that `exit` frees too (a node once aborted so after SIGTERM, "double
    /// free or corruption").
    pub async fn stop(self) {
        let _ = self.queue.send(Job::Stop).await;
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
    }
}

fn stopped() -> ApiError {
    ApiError::Unavailable { detail: "The message writer is not running.".into() }
}

/// The writer thread: takes what is queued (at least one job) and works through it in queue order:
/// each run of sends in one transaction, each change in its own; publishes what it committed in
/// commit order, answers every caller, and repeats.
fn write_batches(db: &Database, mut jobs: mpsc::Receiver<Job>, published: &Published, index: &mut SearchIndex) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    let mut sends = Vec::with_capacity(MAX_BATCH);
    // When the last batch started, and whether it was small.
    let (mut last_start, mut last_small) = (Instant::now(), false);
    while let Some(first) = jobs.blocking_recv() {
        if last_small {
            pace(&jobs, last_start + COMMIT_INTERVAL);
        }
        last_start = Instant::now();
        queued.push(first);
        take_queued(&mut jobs, &mut queued);
        last_small = queued.len() < SMALL_BATCH;
        for job in queued.drain(..) {
            match job {
                Job::Send { send, reply } => sends.push((send, reply)),
                Job::Change { apply, done } => {
                    // The sends queued before this change commit before it.
                    store_sends(db, &mut sends, published, index);
                    let _ = done.send(db.write_here(apply).map(|committed| published.send(committed)));
                }
                Job::IndexSearch { done } => {
                    store_sends(db, &mut sends, published, index);
                    let _ = done.send(index.catch_up(db));
                }
                Job::Stop => {
                    // Jobs queued after the stop are dropped: their callers are answered 503.
                    store_sends(db, &mut sends, published, index);
                    return;
                }
            }
        }
        store_sends(db, &mut sends, published, index);
        if index.unindexed >= INDEX_EVERY {
            // A failure leaves the index behind, and the next search or batch tries again.
            if let Err(e) = index.catch_up(db) {
                tracing::warn!("indexing new messages for search failed: {e}");
            }
        }
    }
}

/// The writer's side of the search index (SQLite): how far behind it is.
struct SearchIndex {
    sqlite: bool,
    /// Shared with [`MessageWriter::index_for_search`]: false once everything stored is indexed (true at
    /// start: the last run may have stopped with messages not yet indexed).
    behind: Arc<AtomicBool>,
    /// Messages stored since the last catch-up.
    unindexed: usize,
}

impl SearchIndex {
    fn stored(&mut self, new_messages: usize) {
        if self.sqlite && new_messages > 0 {
            self.unindexed += new_messages;
            self.behind.store(true, Ordering::Release);
        }
    }

    /// Indexes what was stored since the last time, in one transaction. Only this thread stores messages,
    /// so nothing is stored between the check and the commit.
    fn catch_up(&mut self, db: &Database) -> Result<(), ApiError> {
        if !self.sqlite || !self.behind.load(Ordering::Acquire) {
            return Ok(());
        }
        db.write_here(|conn| conn.transaction(search::index_pending))?;
        self.unindexed = 0;
        self.behind.store(false, Ordering::Release);
        Ok(())
    }
}

/// Waits until `until`, or until a batch that is not small waits in the queue (many senders at once:
/// waiting longer would only hold them up).
fn pace(jobs: &mpsc::Receiver<Job>, until: Instant) {
    while jobs.len() + 1 < SMALL_BATCH {
        let Some(left) = until.checked_duration_since(Instant::now()) else { return };
        thread::sleep(left.min(PACE_TICK));
    }
}

/// Moves what waits in the queue into `queued`, up to a batch.
fn take_queued(jobs: &mut mpsc::Receiver<Job>, queued: &mut Vec<Job>) {
    while queued.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => queued.push(job),
            Err(_) => break,
        }
    }
}

/// Stores `sends` in one transaction, publishes the new messages in commit order and answers every
/// sender; leaves `sends` empty.
fn store_sends(
    db: &Database,
    sends: &mut Vec<(PendingSend, oneshot::Sender<Result<Posted, ApiError>>)>,
    published: &Published,
    index: &mut SearchIndex,
) {
    if sends.is_empty() {
        return;
    }
    let (sends, replies): (Vec<PendingSend>, Vec<_>) = sends.drain(..).unzip();
    metrics::histogram!("message_batch_size").record(sends.len() as f64);
    let stored = db.write_here(|conn| {
        conn.transaction(|conn| {
            let results = messages::store_batch(conn, &sends)?;
            let events = new_events(&results);
            let queued = outbox::enqueue(conn, &events)?;
            Ok::<_, ApiError>((results, Committed { events, queued }))
        })
    });
    match stored {
        Ok((results, committed)) => {
            // Before anyone hears of the new messages: a search made after the ack or the delivery
            // must find them.
            index.stored(results.iter().flatten().filter(|p| p.created).count());
            published.send(committed);
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

/// The events of a stored batch, in commit order: each new message, then the notifications it made.
fn new_events(results: &[Result<Posted, ApiError>]) -> Vec<Event> {
    let mut events = Vec::with_capacity(results.len());
    for posted in results.iter().flatten().filter(|p| p.created) {
        events.push(Event::Message { message: posted.message.clone() });
        for (user_id, notification) in &posted.notifications {
            events.push(Event::Notification { user_id: *user_id, notification: notification.clone() });
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::sync::mpsc;

    use super::{Job, QUEUE_DEPTH, SMALL_BATCH, pace};

    /// Runs `pace` with a deadline `interval` away on a thread of its own; returns how long it waited, or
    /// `None` if it still waits after 10 s.
    fn paced(jobs: mpsc::Receiver<Job>, interval: Duration) -> Option<Duration> {
        let (done, waited) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let started = Instant::now();
            pace(&jobs, started + interval);
            let _ = done.send(started.elapsed());
        });
        waited.recv_timeout(Duration::from_secs(10)).ok()
    }

    #[test]
    fn a_paced_batch_waits_out_the_interval_unless_a_batch_is_already_waiting() {
        // A lone send waits until its deadline (never less), for others to share its commit.
        let (_queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        let waited = paced(jobs, Duration::from_millis(20)).expect("the wait ends at its deadline");
        assert!(waited >= Duration::from_millis(20), "waited {waited:?}");

        // A deadline already past: no wait.
        let (_queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        assert!(paced(jobs, Duration::ZERO).is_some());

        // Enough sends waiting beside the one taken to make a batch that is not small: no wait, however
        // far the deadline.
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        for _ in 0..SMALL_BATCH - 1 {
            queue.try_send(Job::Stop).unwrap_or_else(|_| panic!("the queue has room"));
        }
        assert!(paced(jobs, Duration::from_secs(3600)).is_some(), "the wait ended at once");
    }
}
