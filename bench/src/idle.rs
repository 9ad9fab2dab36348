//! Idle sockets: the server's resident memory before and after N authenticated sockets, each subscribed
//! to one room, sit open doing nothing. Then the same for server-sent-event streams of a room (issue 14):
//! memory per stream beside memory per socket.
//!
//! The users (one room each) are created first; then the servers are restarted on the same data, so that
//! their heap owes nothing to creating them (argon2 hashes take 19 MiB each, and the allocator keeps what
//! it had). A hundred sockets are opened and closed (one-time set-up of workers), then the "before"
//! reading; the difference to "after" is the sockets and their subscriptions only. Memory is `VmRSS` from
//! `/proc/PID/status`, summed over the nodes.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use futures_util::{Stream, StreamExt};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::deploy::{Deployment, Kind};
use crate::sse;
use crate::ws::{self, Api};

/// Upgrades in flight at once.
const CONNECTS_IN_FLIGHT: usize = 64;
const REGISTRATIONS_IN_FLIGHT: usize = 4;
/// The client's read buffer per socket: idle sockets need little.
const READ_BUFFER: usize = 4096;
/// Before each reading, the server gets this long to finish what the last step started.
const SETTLE: Duration = Duration::from_secs(2);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections opened and closed before the "before" reading.
const WARM_UP_CONNECTIONS: usize = 100;
/// The target per socket (issue 11; issue 4 had set 16).
pub const TARGET_KIB_PER_SOCKET: f64 = 12.0;

#[derive(Clone, Debug)]
pub struct Plan {
    pub sockets: usize,
    /// Users the sockets belong to, each with a room of its own.
    pub users: usize,
    /// SSE streams held after the sockets are closed (0: none). The bare server has no SSE.
    pub sse_streams: usize,
}

/// The servers' memory around one batch of idle connections.
pub struct Reading {
    pub connections: usize,
    /// KiB, summed over the nodes.
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// Seconds to open and subscribe them all.
    pub open_secs: f64,
    /// Connections the server closed while they sat idle.
    pub closed: u64,
}

impl Reading {
    pub fn kib_each(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / self.connections.max(1) as f64
    }

    pub fn mib_per_thousand(&self) -> f64 {
        self.kib_each() * 1000.0 / 1024.0
    }
}

pub struct IdleRun {
    pub label: String,
    pub kind: Kind,
    /// KiB, summed over the nodes: after creating the users and rooms, before the restart.
    pub rss_setup_kib: Option<u64>,
    /// The idle sockets.
    pub sockets: Reading,
    /// The SSE streams held afterwards, when asked for (not on the bare server).
    pub sse: Option<Reading>,
}

pub async fn run(deployment: &mut Deployment, plan: &Plan) -> Result<IdleRun> {
    let (tokens, rooms) = prepare(deployment, plan).await?;
    let mut rss_setup_kib = None;
    if deployment.kind != Kind::Bare {
        rss_setup_kib = Some(total_rss(&deployment.pids())?);
        deployment.restart().await?;
    }
    let connects = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let sockets = measure(deployment, plan.sockets, "sockets", |index, holder| {
        let user = index % tokens.len();
        let ws_url = deployment.nodes[index % deployment.nodes.len()].ws_url.clone();
        idle_socket(ws_url, tokens[user].clone(), rooms[user], Arc::clone(&connects), holder)
    })
    .await?;
    let sse = match (deployment.kind, plan.sse_streams) {
        (Kind::Bare, _) | (_, 0) => None,
        (_, streams) => {
            // Restarted: the memory the sockets left to the allocator would hide the streams' own.
            deployment.restart().await?;
            Some(sse::hold(deployment, streams, &tokens, &rooms).await.context("idle SSE streams")?)
        }
    };
    let run = IdleRun { label: deployment.label.clone(), kind: deployment.kind, rss_setup_kib, sockets, sse };
    eprintln!("chat-bench:   {}", describe(&run));
    Ok(run)
}

/// Opens and closes a few connections (one-time set-up of the servers' workers), reads the servers' memory,
/// opens `n` connections (`open(index, holder)`, each on its own task), reads the memory again once they are
/// all open and settled, then closes them.
pub async fn measure<F, Fut>(deployment: &Deployment, n: usize, what: &str, mut open: F) -> Result<Reading>
where
    F: FnMut(usize, Holder) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    hold_all(n.min(WARM_UP_CONNECTIONS), None, what, &mut open).await.with_context(|| format!("warm-up {what}"))?;
    tokio::time::sleep(SETTLE).await;
    let pids = deployment.pids();
    let rss_before_kib = total_rss(&pids)?;
    eprintln!("chat-bench: idle on {}: {rss_before_kib} KiB before, opening {n} {what}", deployment.label);
    let (open_secs, closed, rss_after_kib) = hold_all(n, Some(&pids), what, &mut open).await?;
    Ok(Reading { connections: n, rss_before_kib, rss_after_kib: rss_after_kib.unwrap_or(0), open_secs, closed })
}

/// What one held connection is told and tells: whether it opened (once), and that the server ended it.
pub struct Holder {
    ready: mpsc::UnboundedSender<Result<()>>,
    closed: Arc<AtomicU64>,
    stop: watch::Receiver<bool>,
}

impl Holder {
    /// Reports how opening went; the connection and what keeps it when it opened.
    pub fn opened<C>(self, connection: Result<C>) -> Option<(C, Held)> {
        let Holder { ready, closed, stop } = self;
        match connection {
            Ok(connection) => {
                let _ = ready.send(Ok(()));
                Some((connection, Held { closed, stop }))
            }
            Err(err) => {
                let _ = ready.send(Err(err));
                None
            }
        }
    }
}

/// An open connection's side of [`hold_all`].
pub struct Held {
    closed: Arc<AtomicU64>,
    stop: watch::Receiver<bool>,
}

impl Held {
    /// Reads the connection (`alive`: true for each thing it receives while open, false or the end when the
    /// server ended it) until the bench stops it: true then; false, counted as closed, when the server ended it.
    pub async fn until_stopped(mut self, mut alive: impl Stream<Item = bool> + Unpin) -> bool {
        let stopped = self.stop.wait_for(|stop| *stop);
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => return true,
                open = alive.next() => if open != Some(true) {
                    self.closed.fetch_add(1, Ordering::Relaxed);
                    return false;
                },
            }
        }
    }
}

/// Runs `n` connections (`open(index, holder)`, each on its own task) until all have opened, reads the memory
/// of `pids` (when given) once they settled, then stops them all. Returns the seconds to open them, how many
/// the server closed, the memory in KiB.
pub async fn hold_all<F, Fut>(
    n: usize,
    pids: Option<&[u32]>,
    what: &str,
    mut open: F,
) -> Result<(f64, u64, Option<u64>)>
where
    F: FnMut(usize, Holder) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let closed = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<()>>();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for index in 0..n {
        let holder = Holder { ready: ready_tx.clone(), closed: Arc::clone(&closed), stop: stop_rx.clone() };
        tasks.spawn(open(index, holder));
    }
    drop(ready_tx);
    let mut opened = 0;
    let mut failure = None;
    while opened < n {
        match ready_rx.recv().await {
            Some(Ok(())) => opened += 1,
            Some(Err(err)) => {
                failure = Some(err.context(format!("after {opened} {what}")));
                break;
            }
            None => {
                failure = Some(anyhow!("{what}: tasks ended early"));
                break;
            }
        }
    }
    let open_secs = started.elapsed().as_secs_f64();
    let measured = match (failure, pids) {
        (Some(err), _) => Err(err),
        (None, None) => Ok(None),
        (None, Some(pids)) => {
            tokio::time::sleep(SETTLE).await;
            total_rss(pids).map(Some)
        }
    };
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok((open_secs, closed.load(Ordering::Relaxed), measured?))
}

pub fn describe(run: &IdleRun) -> String {
    let sockets = &run.sockets;
    format!(
        "{} sockets in {:.1}s: {:.1} MiB -> {:.1} MiB, {:.2} MiB per 1,000, {:.1} KiB per socket, closed {}",
        sockets.connections,
        sockets.open_secs,
        sockets.rss_before_kib as f64 / 1024.0,
        sockets.rss_after_kib as f64 / 1024.0,
        sockets.mib_per_thousand(),
        sockets.kib_each(),
        sockets.closed
    )
}

/// A token and a room per user (the bare server needs neither).
async fn prepare(deployment: &Deployment, plan: &Plan) -> Result<(Vec<String>, Vec<i64>)> {
    let users = plan.users.clamp(1, plan.sockets.max(1));
    if deployment.kind == Kind::Bare {
        return Ok((vec!["bare".to_string(); users], (1..=users as i64).collect()));
    }
    let api = Api::new(&deployment.nodes[0].base_url).await?;
    let api = &api;
    let tag = std::process::id();
    let created: Vec<(String, i64)> = ws::bounded(
        REGISTRATIONS_IN_FLIGHT,
        (0..users).map(|u| async move {
            let account = api.register(&format!("bench_idle{u}_{tag}")).await?;
            let room = api.create_room(&account, &format!("idle {u}")).await?;
            Ok((account.access_token, room))
        }),
    )
    .await
    .context("registering the users")?;
    Ok(created.into_iter().unzip())
}

async fn idle_socket(ws_url: String, token: String, room_id: i64, connects: Arc<Semaphore>, holder: Holder) {
    let opened = async {
        // `expect`: the semaphore is never closed.
        let _permit = connects.acquire().await.expect("semaphore open");
        let mut socket = ws::connect(&ws_url, &token, READ_BUFFER).await?;
        ws::subscribe(&mut socket, room_id, None).await?;
        Ok::<_, anyhow::Error>(socket)
    }
    .await;
    let Some((mut socket, held)) = holder.opened(opened) else { return };
    // Presence of the user's other sockets, pings (answered by the library): all the same here.
    let open = socket.by_ref().map(|frame| matches!(frame, Ok(ref message) if !message.is_close()));
    if held.until_stopped(open).await {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close(None)).await;
    }
}

pub fn total_rss(pids: &[u32]) -> Result<u64> {
    pids.iter().map(|&pid| ws::rss_kib(pid)).sum()
}
