//! Fan-out: R rooms x S subscriber sockets, an offered send rate stepped up until the server no longer
//! keeps up, and for every step the delivered rate, the send-to-delivery latency, and every message lost
//! or delivered twice.
//!
//! - Senders are their own sockets (the owner of the rooms, not subscribed), `K` per room so that none
//!   goes over the server's per-connection limit (20/s): each sends open-loop on a fixed schedule, with a
//!   phase of its own so that the rooms do not all send in the same millisecond. A sender that cannot
//!   write (the server does not read) falls behind and sends less: `sent/s` shows it.
//! - Every body carries its step and its send time (`now_nanos`, same process), so each subscriber
//!   measures send -> delivery itself; latencies go into a few shared histograms per step.
//! - Every subscriber keeps the seqs it received; every sender the seqs acked to it. At the end, per
//!   (subscriber, room), an acked seq never received is lost, one received twice is duplicated.
//! - Before the first step the bench waits for the servers to go quiet (thousands of subscriptions leave
//!   presence work behind); after each step it waits (up to `--tail-seconds`) for the step's last acks
//!   and deliveries. At the end the senders close first (the server answers every send before their
//!   close), then the subscribers get up to `DRAIN_TIMEOUT` to receive everything acked, then close.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::deploy::{Deployment, Kind};
use crate::load::new_histogram;
use crate::ws::{self, Account, Api, Frame, MessageFrame, Socket};

/// What one sender socket may send per second: half the server's per-connection limit (20/s, burst 40),
/// so that catching up after a stall stays inside the burst.
const MAX_SENDS_PER_SOCKET: f64 = 10.0;
/// Upgrades in flight at once while the sockets are opened.
const CONNECTS_IN_FLIGHT: usize = 64;
/// Registrations in flight (argon2 takes a core for ~30 ms each).
const REGISTRATIONS_IN_FLIGHT: usize = 4;
/// Other setup requests in flight (rooms, joins).
const REQUESTS_IN_FLIGHT: usize = 32;
/// Latency histograms are sharded so that thousands of subscribers rarely wait for one lock.
const SHARDS: usize = 16;
/// The client's read buffer per socket.
const READ_BUFFER: usize = 16 * 1024;
/// A step keeps up when the delivered rate is at least this share of offered x subscribers...
const KEEP_UP_SHARE: f64 = 0.95;
/// ...and its p99 is under this.
pub const P99_TARGET_MS: f64 = 50.0;
/// Steps in a row that do not keep up before the stepping stops.
const STOP_AFTER_FAILED_STEPS: usize = 2;
/// Pause between steps, so that one step's tail does not overlap the next.
const BETWEEN_STEPS: Duration = Duration::from_millis(500);
/// After the setup, the longest wait for the servers to go quiet (subscriptions, presence) before the
/// first step.
const QUIET_TIMEOUT: Duration = Duration::from_secs(60);
/// After the last step, how long the subscribers may take to receive everything acked.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a socket may take to close at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The text of every body after the stamp: a short chat line.
const FILLER: &str = "the quick brown fox jumps over the lazy dog";

/// How much load.
#[derive(Clone, Debug)]
pub struct Plan {
    pub rooms: usize,
    /// Subscriber sockets per room.
    pub subscribers: usize,
    /// Users the subscriber sockets belong to (registration is slow; sockets per user are not limited).
    pub users: usize,
    /// Offered sends per second across all rooms, one step each, in order.
    pub rates: Vec<u64>,
    pub step: Duration,
    /// Longest wait after a step for its last acks and deliveries.
    pub tail: Duration,
    /// Run every rate even after two in a row did not keep up.
    pub all_steps: bool,
}

impl Plan {
    fn senders_per_room(&self) -> usize {
        let max_rate = self.rates.iter().copied().max().unwrap_or(1) as f64;
        ((max_rate / self.rooms as f64 / MAX_SENDS_PER_SOCKET).ceil() as usize).max(1)
    }
}

/// One step of one target.
#[derive(Clone, Debug, Default)]
pub struct Step {
    /// Offered sends per second (all rooms).
    pub offered: u64,
    pub seconds: f64,
    pub sent: u64,
    pub acked: u64,
    /// `error` frames answering a send (`rate_limited`, ...).
    pub errors: u64,
    /// `message` frames of this step's messages received, over all subscribers.
    pub delivered: u64,
    /// Deliveries per second, from the step's start to its last delivery.
    pub delivered_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Acked messages never received by a subscriber whose socket stayed open.
    pub lost: u64,
    /// Messages received more than once by one subscriber.
    pub duplicated: u64,
    /// Acked messages not received by subscribers the server had closed.
    pub missed_on_closed: u64,
    /// Sockets the server closed (or that failed) during the step.
    pub closed: u64,
    pub keeps_up: bool,
    /// Cores used by the servers and by the bench, on average from the step's start to the end of its tail.
    pub server_cores: f64,
    pub bench_cores: f64,
    /// Gaps the servers filled from the database during the step (`ws_gaps_filled_total`): a message
    /// that overtook an earlier one (the other node's, through Redis) makes every subscriber read it.
    pub gap_fills: Option<u64>,
}

impl Step {
    pub fn expected_deliveries_per_sec(&self, subscribers: usize) -> f64 {
        self.offered as f64 * subscribers as f64
    }
}

/// Everything measured on one target.
pub struct TargetRun {
    pub label: String,
    pub kind: Kind,
    pub steps: Vec<Step>,
    /// Deliveries that no ack accounts for, foreign frames, close codes, error codes: what went wrong.
    pub notes: Vec<String>,
    pub sockets: usize,
    pub setup_secs: f64,
}

impl TargetRun {
    /// The highest offered rate that kept up (and its step).
    pub fn saturation(&self) -> Option<&Step> {
        self.steps.iter().filter(|s| s.keeps_up).max_by_key(|s| s.offered)
    }

    /// True when no step lost or repeated a message (what makes the run fail).
    pub fn verified(&self) -> bool {
        self.steps.iter().all(|s| s.lost == 0 && s.duplicated == 0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Setup,
    Step {
        index: usize,
        start: Instant,
        end: Instant,
        per_socket_rate: f64,
    },
    /// Senders close; subscribers keep reading.
    StopSending,
    Stop,
}

#[derive(Default)]
struct StepCounters {
    sent: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    delivered: AtomicU64,
    last_delivery_nanos: AtomicU64,
    closed: AtomicU64,
}

/// What all tasks share while the load runs.
struct Tally {
    steps: Vec<StepCounters>,
    /// `[shard][step]`.
    shards: Vec<Mutex<Vec<Histogram<u64>>>>,
    current_step: AtomicUsize,
    /// Error codes, close codes, foreign frames: counted by kind.
    events: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn new(steps: usize) -> Tally {
        Tally {
            steps: (0..steps).map(|_| StepCounters::default()).collect(),
            shards: (0..SHARDS).map(|_| Mutex::new((0..steps).map(|_| new_histogram()).collect())).collect(),
            current_step: AtomicUsize::new(0),
            events: Mutex::new(BTreeMap::new()),
        }
    }

    fn event(&self, kind: String) {
        *self.events.lock().unwrap_or_else(|p| p.into_inner()).entry(kind).or_default() += 1;
    }

    fn closed(&self, kind: String) {
        let step = self.current_step.load(Ordering::Relaxed);
        if let Some(counters) = self.steps.get(step) {
            counters.closed.fetch_add(1, Ordering::Relaxed);
        }
        self.event(kind);
    }

    fn histogram(&self, step: usize) -> Histogram<u64> {
        let mut merged = new_histogram();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            // `expect`: every histogram has the same bounds, so adding cannot fail.
            merged.add(&shard[step]).expect("same bounds");
        }
        merged
    }
}

/// Who connects where, as what.
struct Layout {
    /// `ws://` URL per node.
    ws_urls: Vec<String>,
    room_ids: Vec<i64>,
    /// Token per user; subscriber slot `s` of a room is user `s % users`.
    user_tokens: Vec<String>,
    owner_token: String,
}

/// Sets up users and rooms, opens every socket, runs the steps, and accounts for every message.
pub async fn run(deployment: &Deployment, plan: &Plan) -> Result<TargetRun> {
    let setup_started = Instant::now();
    let layout = prepare(deployment, plan).await?;
    let steps_total = plan.rates.len();
    let tally = Arc::new(Tally::new(steps_total));
    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let senders_per_room = plan.senders_per_room();
    let subscriber_count = plan.rooms * plan.subscribers;
    let sockets = subscriber_count + plan.rooms * senders_per_room;
    eprintln!(
        "chat-bench: fanout on {}: opening {subscriber_count} subscriber and {} sender sockets",
        deployment.label,
        plan.rooms * senders_per_room
    );

    let connects = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<()>>();
    let mut subscribers = JoinSet::new();
    for index in 0..subscriber_count {
        let room = index / plan.subscribers;
        let slot = index % plan.subscribers;
        let spec = SubscriberSpec {
            index,
            room_id: layout.room_ids[room],
            ws_url: layout.ws_urls[index % layout.ws_urls.len()].clone(),
            token: layout.user_tokens[slot % layout.user_tokens.len()].clone(),
        };
        subscribers.spawn(subscriber(
            spec,
            Arc::clone(&connects),
            ready_tx.clone(),
            Arc::clone(&tally),
            phase_rx.clone(),
        ));
    }
    let mut senders = JoinSet::new();
    for index in 0..plan.rooms * senders_per_room {
        let room = index / senders_per_room;
        let spec = SenderSpec {
            index,
            room_id: layout.room_ids[room],
            // Alternating nodes: with one sender per room every other room, with several each room's.
            ws_url: layout.ws_urls[index % layout.ws_urls.len()].clone(),
            token: layout.owner_token.clone(),
            // Spread the sockets' send times evenly over one interval (golden-ratio sequence).
            phase: (index as f64 * 0.618_033_988_75).fract(),
        };
        senders.spawn(sender(spec, Arc::clone(&connects), ready_tx.clone(), Arc::clone(&tally), phase_rx.clone()));
    }
    drop(ready_tx);

    let mut opened = 0;
    let mut setup_error = None;
    while opened < sockets {
        match ready_rx.recv().await {
            Some(Ok(())) => opened += 1,
            Some(Err(err)) => {
                setup_error = Some(err);
                break;
            }
            None => {
                setup_error = Some(anyhow!("socket tasks ended before all were ready"));
                break;
            }
        }
    }
    let setup_secs = setup_started.elapsed().as_secs_f64();
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    if setup_error.is_none() {
        eprintln!("chat-bench: {sockets} sockets open and subscribed after {setup_secs:.1}s");
        match ws::wait_until_quiet(&deployment.pids(), QUIET_TIMEOUT).await {
            Ok(Some(waited)) if waited > Duration::from_secs(1) => {
                notes.push(format!("the servers were busy for {:.1} s after the setup", waited.as_secs_f64()));
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                notes.push(format!("the servers were still busy {} s after the setup", QUIET_TIMEOUT.as_secs()))
            }
            Err(err) => setup_error = Some(err),
        }
    }
    if setup_error.is_none() {
        let metrics_urls: Vec<String> = match deployment.kind {
            Kind::Bare => Vec::new(),
            _ => deployment.nodes.iter().map(|n| n.base_url.clone()).collect(),
        };
        let nodes = Nodes { pids: deployment.pids(), metrics_urls, client: reqwest::Client::new() };
        steps = drive(plan, senders_per_room, &tally, &phase_tx, &nodes).await;
    }

    // Senders close first: the server answers every send before it answers the close. Then the subscribers
    // get the time to receive everything acked, and only then close, so nothing acked goes unaccounted.
    let _ = phase_tx.send(Phase::StopSending);
    let sender_reports = join_all(&mut senders).await;
    if setup_error.is_none() && !all_delivered(&tally, plan.subscribers, DRAIN_TIMEOUT).await {
        notes.push(format!("deliveries were still missing {} s after the last send", DRAIN_TIMEOUT.as_secs()));
    }
    let _ = phase_tx.send(Phase::Stop);
    let subscriber_reports = join_all(&mut subscribers).await;
    if let Some(err) = setup_error {
        return Err(err.context(format!("opening {sockets} sockets")));
    }
    account(&mut steps, &subscriber_reports?, &sender_reports?, &mut notes);
    let unanswered: u64 = tally
        .steps
        .iter()
        .map(|c| {
            let answered = c.acked.load(Ordering::Relaxed) + c.errors.load(Ordering::Relaxed);
            c.sent.load(Ordering::Relaxed).saturating_sub(answered)
        })
        .sum();
    if unanswered > 0 {
        notes.push(format!(
            "{unanswered} sends never answered by the end (server backlog); their deliveries count as unacked"
        ));
    }
    let events = tally.events.lock().unwrap_or_else(|p| p.into_inner());
    for (kind, count) in events.iter() {
        notes.push(format!("{kind}: {count}"));
    }
    Ok(TargetRun { label: deployment.label.clone(), kind: deployment.kind, steps, notes, sockets, setup_secs })
}

/// Registers the users, creates the rooms and the memberships (nothing for the bare server).
async fn prepare(deployment: &Deployment, plan: &Plan) -> Result<Layout> {
    let ws_urls: Vec<String> = deployment.nodes.iter().map(|n| n.ws_url.clone()).collect();
    if deployment.kind == Kind::Bare {
        return Ok(Layout {
            ws_urls,
            room_ids: (1..=plan.rooms as i64).collect(),
            user_tokens: vec!["bare".to_string()],
            owner_token: "bare".to_string(),
        });
    }
    let api = Api::new(&deployment.nodes[0].base_url).await?;
    let tag = std::process::id();
    let owner = api.register(&format!("bench_owner_{tag}")).await?;
    let users = plan.users.min(plan.subscribers).max(1);
    let api = &api;
    let accounts: Vec<Account> = ws::bounded(
        REGISTRATIONS_IN_FLIGHT,
        (0..users).map(|u| async move { api.register(&format!("bench_u{u}_{tag}")).await }),
    )
    .await
    .context("registering the users")?;
    let owner = &owner;
    let room_ids: Vec<i64> = ws::bounded(
        REQUESTS_IN_FLIGHT,
        (0..plan.rooms).map(|r| async move { api.create_room(owner, &format!("fanout {r}")).await }),
    )
    .await
    .context("creating the rooms")?;
    let joins = room_ids
        .iter()
        .flat_map(|&room_id| accounts.iter().map(move |account| async move { api.join(account, room_id).await }));
    ws::bounded(REQUESTS_IN_FLIGHT, joins).await.context("joining the rooms")?;
    Ok(Layout {
        ws_urls,
        room_ids,
        user_tokens: accounts.into_iter().map(|a| a.access_token).collect(),
        owner_token: owner.access_token.clone(),
    })
}

/// The server processes, for their CPU time and their counters.
struct Nodes {
    pids: Vec<u32>,
    /// Base URLs whose `/metrics` the bench reads (none for the bare server).
    metrics_urls: Vec<String>,
    client: reqwest::Client,
}

impl Nodes {
    async fn gap_fills(&self) -> Option<u64> {
        if self.metrics_urls.is_empty() {
            return None;
        }
        let total = ws::scrape_counter(&self.client, &self.metrics_urls, "ws_gaps_filled_total").await?;
        Some(total as u64)
    }
}

/// Runs the steps in order; stops after `STOP_AFTER_FAILED_STEPS` in a row that do not keep up (unless
/// `all_steps`): one more than the first, so that one noisy step does not end the run.
async fn drive(
    plan: &Plan,
    senders_per_room: usize,
    tally: &Tally,
    phases: &watch::Sender<Phase>,
    nodes: &Nodes,
) -> Vec<Step> {
    let server_pids = &nodes.pids[..];
    let bench_pid = [std::process::id()];
    let mut steps = Vec::new();
    let mut failed_in_a_row = 0;
    let sender_sockets = (plan.rooms * senders_per_room) as f64;
    for (index, &rate) in plan.rates.iter().enumerate() {
        tally.current_step.store(index, Ordering::Relaxed);
        let start = Instant::now() + Duration::from_millis(20);
        let end = start + plan.step;
        let gaps_before = nodes.gap_fills().await;
        let cpu_before = (ws::total_cpu_ticks(server_pids), ws::total_cpu_ticks(&bench_pid), Instant::now());
        let per_socket_rate = rate as f64 / sender_sockets;
        let _ = phases.send(Phase::Step { index, start, end, per_socket_rate });
        tokio::time::sleep_until(end).await;

        // The tail: every send answered, every answer delivered to every subscriber, or the deadline.
        let counters = &tally.steps[index];
        let deadline = end + plan.tail;
        loop {
            let sent = counters.sent.load(Ordering::Relaxed);
            let acked = counters.acked.load(Ordering::Relaxed);
            let answered = acked + counters.errors.load(Ordering::Relaxed);
            let delivered = counters.delivered.load(Ordering::Relaxed);
            if (answered >= sent && delivered >= acked * plan.subscribers as u64) || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut step = measure(index, rate, plan, start, tally);
        let wall = cpu_before.2.elapsed().as_secs_f64() * ws::ticks_per_sec() as f64;
        step.server_cores = ws::total_cpu_ticks(server_pids).saturating_sub(cpu_before.0) as f64 / wall;
        step.bench_cores = ws::total_cpu_ticks(&bench_pid).saturating_sub(cpu_before.1) as f64 / wall;
        step.gap_fills = match (gaps_before, nodes.gap_fills().await) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        eprintln!("chat-bench:   {}", describe(&step, plan.subscribers));
        failed_in_a_row = if step.keeps_up { 0 } else { failed_in_a_row + 1 };
        steps.push(step);
        if failed_in_a_row >= STOP_AFTER_FAILED_STEPS && !plan.all_steps {
            break;
        }
        tokio::time::sleep(BETWEEN_STEPS).await;
    }
    steps
}

/// Waits until every acked message reached every subscriber, or `timeout`; true when it did.
async fn all_delivered(tally: &Tally, subscribers: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let done = tally
            .steps
            .iter()
            .all(|c| c.delivered.load(Ordering::Relaxed) >= c.acked.load(Ordering::Relaxed) * subscribers as u64);
        if done {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The step's counters and latencies right after its tail (loss is accounted at the very end).
fn measure(index: usize, offered: u64, plan: &Plan, start: Instant, tally: &Tally) -> Step {
    let counters = &tally.steps[index];
    let ms = |micros: u64| micros as f64 / 1000.0;
    let histogram = tally.histogram(index);
    let sent = counters.sent.load(Ordering::Relaxed);
    let acked = counters.acked.load(Ordering::Relaxed);
    let errors = counters.errors.load(Ordering::Relaxed);
    let delivered = counters.delivered.load(Ordering::Relaxed);
    let closed = counters.closed.load(Ordering::Relaxed);
    let last = counters.last_delivery_nanos.load(Ordering::Relaxed);
    let start_nanos = ws::now_nanos().saturating_sub(u64::try_from(start.elapsed().as_nanos()).unwrap_or(0));
    let span = Duration::from_nanos(last.saturating_sub(start_nanos)).as_secs_f64();
    let delivered_per_sec = if delivered == 0 || span <= 0.0 { 0.0 } else { delivered as f64 / span };
    let seconds = plan.step.as_secs_f64();
    let offered_count = offered as f64 * seconds;
    let expected = offered as f64 * plan.subscribers as f64;
    let (p50_ms, p99_ms, p999_ms, max_ms) = if histogram.is_empty() {
        (0.0, 0.0, 0.0, 0.0)
    } else {
        (
            ms(histogram.value_at_quantile(0.50)),
            ms(histogram.value_at_quantile(0.99)),
            ms(histogram.value_at_quantile(0.999)),
            ms(histogram.max()),
        )
    };
    let keeps_up = sent as f64 >= KEEP_UP_SHARE * offered_count
        && errors == 0
        && acked == sent
        && closed == 0
        && delivered == acked * plan.subscribers as u64
        && delivered_per_sec >= KEEP_UP_SHARE * expected
        && p99_ms < P99_TARGET_MS;
    Step {
        offered,
        seconds,
        sent,
        acked,
        errors,
        delivered,
        delivered_per_sec,
        p50_ms,
        p99_ms,
        p999_ms,
        max_ms,
        closed,
        keeps_up,
        ..Step::default()
    }
}

pub fn describe(step: &Step, subscribers: usize) -> String {
    format!(
        "offered {}/s: sent {:.0}/s, acked {}, errors {}, delivered {} = {:.0}/s ({:.0}% of {:.0}), p50 {:.2} ms, p99 {:.2} ms, \
         p99.9 {:.2} ms, max {:.2} ms, closed {}, gap fills {}, cores: servers {:.2}, bench {:.2}{}",
        step.offered,
        step.sent as f64 / step.seconds,
        step.acked,
        step.errors,
        step.delivered,
        step.delivered_per_sec,
        100.0 * step.delivered_per_sec / step.expected_deliveries_per_sec(subscribers).max(1.0),
        step.expected_deliveries_per_sec(subscribers),
        step.p50_ms,
        step.p99_ms,
        step.p999_ms,
        step.max_ms,
        step.closed,
        step.gap_fills.map_or("-".to_string(), |g| g.to_string()),
        step.server_cores,
        step.bench_cores,
        if step.keeps_up { "" } else { "; does not keep up" }
    )
}

struct SubscriberSpec {
    index: usize,
    room_id: i64,
    ws_url: String,
    token: String,
}

/// What a subscriber brings back: every seq it received, and whether the server closed it.
struct SubscriberReport {
    room_id: i64,
    seqs: Vec<i64>,
    /// The step during which the server closed the socket (or it failed).
    closed_at_step: Option<usize>,
}

async fn subscriber(
    spec: SubscriberSpec,
    connects: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Result<()>>,
    tally: Arc<Tally>,
    mut phases: watch::Receiver<Phase>,
) -> SubscriberReport {
    let mut report = SubscriberReport { room_id: spec.room_id, seqs: Vec::new(), closed_at_step: None };
    let opened = async {
        // `expect`: the semaphore is never closed.
        let _permit = connects.acquire().await.expect("semaphore open");
        let mut socket = ws::connect(&spec.ws_url, &spec.token, READ_BUFFER).await?;
        ws::subscribe(&mut socket, spec.room_id, None).await?;
        Ok::<Socket, anyhow::Error>(socket)
    }
    .await;
    let mut socket = match opened {
        Ok(socket) => {
            let _ = ready.send(Ok(()));
            socket
        }
        Err(err) => {
            let _ = ready.send(Err(err.context(format!("subscriber socket {}", spec.index))));
            return report;
        }
    };
    drop(ready);
    let shard = &tally.shards[spec.index % SHARDS];
    let stop = phases.wait_for(|p| *p == Phase::Stop);
    tokio::pin!(stop);
    loop {
        let frame = tokio::select! {
            _ = &mut stop => break,
            frame = socket.next() => frame,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(close))) => {
                tally.closed(format!("subscriber socket closed by the server: {}", ws::close_text(close.as_ref())));
                report.closed_at_step = Some(tally.current_step.load(Ordering::Relaxed));
                return report;
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => {
                tally.closed(format!("subscriber socket failed: {err}"));
                report.closed_at_step = Some(tally.current_step.load(Ordering::Relaxed));
                return report;
            }
            None => {
                tally.closed("subscriber socket ended without a close frame".to_string());
                report.closed_at_step = Some(tally.current_step.load(Ordering::Relaxed));
                return report;
            }
        };
        let now = ws::now_nanos();
        match MessageFrame::parse(&text) {
            Ok(Some(frame)) => {
                let stamp = parse_stamp(&frame.message.body).filter(|(step, _)| *step < tally.steps.len());
                match stamp {
                    Some((step, sent_at)) if frame.message.room_id == spec.room_id => {
                        let micros = now.saturating_sub(sent_at) / 1000;
                        shard.lock().unwrap_or_else(|p| p.into_inner())[step].saturating_record(micros.max(1));
                        let counters = &tally.steps[step];
                        counters.delivered.fetch_add(1, Ordering::Relaxed);
                        counters.last_delivery_nanos.fetch_max(now, Ordering::Relaxed);
                        report.seqs.push(frame.message.seq);
                    }
                    _ => tally.event(format!(
                        "message frames not sent by this bench (room {}, body {:?})",
                        frame.message.room_id,
                        ws::shorten(&frame.message.body)
                    )),
                }
            }
            Ok(None) if text.starts_with(r#"{"type":"error""#) => {
                tally.event(format!("error frame to a subscriber: {}", ws::shorten(&text)));
            }
            // Presence and the like.
            Ok(None) => {}
            Err(err) => tally.event(format!("{err:#}")),
        }
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close(None)).await;
    report
}

struct SenderSpec {
    index: usize,
    room_id: i64,
    ws_url: String,
    token: String,
    /// Where in its send interval this socket sends, 0..1.
    phase: f64,
}

/// The seqs acked to one sender, with the step each message belongs to.
struct SenderReport {
    room_id: i64,
    acked: Vec<(i64, usize)>,
}

async fn sender(
    spec: SenderSpec,
    connects: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Result<()>>,
    tally: Arc<Tally>,
    mut phases: watch::Receiver<Phase>,
) -> SenderReport {
    let mut report = SenderReport { room_id: spec.room_id, acked: Vec::new() };
    let opened = async {
        // `expect`: the semaphore is never closed.
        let _permit = connects.acquire().await.expect("semaphore open");
        ws::connect(&spec.ws_url, &spec.token, READ_BUFFER).await
    }
    .await;
    let socket = match opened {
        Ok(socket) => {
            let _ = ready.send(Ok(()));
            socket
        }
        Err(err) => {
            let _ = ready.send(Err(err.context(format!("sender socket {}", spec.index))));
            return report;
        }
    };
    drop(ready);
    let (mut sink, stream) = socket.split();
    // Shared with the reader, so that what was acked survives a reader given up on at the end.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut acks = tokio::spawn(read_acks(stream, Arc::clone(&tally), Arc::clone(&acked)));

    'phases: while phases.changed().await.is_ok() {
        let phase = *phases.borrow_and_update();
        let (index, start, end, rate) = match phase {
            Phase::Setup => continue,
            Phase::StopSending | Phase::Stop => break,
            Phase::Step { index, start, end, per_socket_rate } => (index, start, end, per_socket_rate),
        };
        let interval = 1.0 / rate;
        let counters = &tally.steps[index];
        for n in 0u64.. {
            let at = start + Duration::from_secs_f64(interval * (n as f64 + spec.phase));
            if at >= end {
                break;
            }
            tokio::time::sleep_until(at).await;
            // A sender held back by a server that does not read sends no more after the step's end.
            if Instant::now() >= end {
                break;
            }
            let client_id = format!("s{index}-{}-{n}", spec.index);
            let body = format!("bench s{index} t{} {FILLER}", ws::now_nanos());
            let frame =
                serde_json::json!({"type": "send", "room_id": spec.room_id, "body": body, "client_id": client_id});
            if let Err(err) = sink.send(Message::text(frame.to_string())).await {
                tally.closed(format!("sender socket failed: {err}"));
                break 'phases;
            }
            counters.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
    // The server answers the close after every send before it: with a backlog that takes a while.
    match tokio::time::timeout(DRAIN_TIMEOUT, &mut acks).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tally.event(format!("ack reader panicked: {err}")),
        Err(_) => {
            acks.abort();
            tally.event(format!(
                "sender sockets the server had not closed {} s after the last step (their acks so far are kept)",
                DRAIN_TIMEOUT.as_secs()
            ));
        }
    }
    report.acked = std::mem::take(&mut *acked.lock().unwrap_or_else(|p| p.into_inner()));
    report
}

/// Reads a sender's socket to its end: acks (seq and step), error frames, the close.
async fn read_acks(
    mut stream: futures_util::stream::SplitStream<Socket>,
    tally: Arc<Tally>,
    acked: Arc<Mutex<Vec<(i64, usize)>>>,
) {
    while let Some(frame) = stream.next().await {
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(close)) => {
                // The bench's own close at the end is answered with 1000; anything else is news.
                if close.as_ref().is_some_and(|c| u16::from(c.code) != 1000) {
                    tally.closed(format!("sender socket closed by the server: {}", ws::close_text(close.as_ref())));
                }
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        };
        let frame = match Frame::parse(&text) {
            Ok(frame) => frame,
            Err(err) => {
                tally.event(format!("{err:#}"));
                continue;
            }
        };
        let step = frame.client_id.as_deref().and_then(step_of_client_id).filter(|s| *s < tally.steps.len());
        match (frame.kind.as_ref(), step) {
            ("ack", Some(step)) => match frame.message_seq() {
                Some(seq) => {
                    tally.steps[step].acked.fetch_add(1, Ordering::Relaxed);
                    acked.lock().unwrap_or_else(|p| p.into_inner()).push((seq, step));
                }
                None => tally.event(format!("ack without message.seq: {}", ws::shorten(&text))),
            },
            ("error", step) => {
                if let Some(step) = step {
                    tally.steps[step].errors.fetch_add(1, Ordering::Relaxed);
                }
                let code = frame.code.as_deref().unwrap_or("?");
                tally.event(format!("error frame `{code}` answering a send"));
            }
            ("presence" | "presence_changed", _) => {}
            _ => tally.event(format!("unexpected frame to a sender: {}", ws::shorten(&text))),
        }
    }
}

/// Every message against every subscriber of its room: lost, duplicated, missed after a close.
fn account(steps: &mut [Step], subscribers: &[SubscriberReport], senders: &[SenderReport], notes: &mut Vec<String>) {
    // seq -> step, per room.
    let mut acked: HashMap<i64, HashMap<i64, usize>> = HashMap::new();
    for sender in senders {
        let room = acked.entry(sender.room_id).or_default();
        for &(seq, step) in &sender.acked {
            if room.insert(seq, step).is_some() {
                notes.push(format!("room {}: seq {seq} acked twice", sender.room_id));
            }
        }
    }
    let empty = HashMap::new();
    let mut unacked = 0u64;
    for subscriber in subscribers {
        let room = acked.get(&subscriber.room_id).unwrap_or(&empty);
        let mut seen: HashMap<i64, u32> = HashMap::with_capacity(subscriber.seqs.len());
        for &seq in &subscriber.seqs {
            *seen.entry(seq).or_default() += 1;
        }
        for (&seq, &times) in &seen {
            match room.get(&seq) {
                Some(&step) if step < steps.len() && times > 1 => steps[step].duplicated += u64::from(times - 1),
                Some(_) => {}
                None => unacked += u64::from(times),
            }
        }
        for (&seq, &step) in room {
            if step >= steps.len() || seen.contains_key(&seq) {
                continue;
            }
            match subscriber.closed_at_step {
                Some(closed) if closed <= step => steps[step].missed_on_closed += 1,
                _ => steps[step].lost += 1,
            }
        }
    }
    if unacked > 0 {
        notes.push(format!("{unacked} deliveries of seqs that no ack accounts for"));
    }
    let missed: u64 = steps.iter().map(|s| s.missed_on_closed).sum();
    if missed > 0 {
        notes.push(format!("{missed} acked messages not received by sockets the server had closed"));
    }
}

/// `(step, send time)` from a body `bench s{step} t{nanos} ...`.
fn parse_stamp(body: &str) -> Option<(usize, u64)> {
    let mut words = body.split(' ');
    if words.next()? != "bench" {
        return None;
    }
    let step = words.next()?.strip_prefix('s')?.parse().ok()?;
    let nanos = words.next()?.strip_prefix('t')?.parse().ok()?;
    Some((step, nanos))
}

/// The step from a `client_id` `s{step}-{socket}-{n}`.
fn step_of_client_id(client_id: &str) -> Option<usize> {
    client_id.strip_prefix('s')?.split('-').next()?.parse().ok()
}

async fn join_all<T: 'static>(set: &mut JoinSet<T>) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        out.push(joined.context("a socket task panicked")?);
    }
    Ok(out)
}

/// Parses `--rates 200,500,1000`.
pub fn check_rates(rates: &[u64]) -> Result<()> {
    if rates.is_empty() || rates.contains(&0) {
        bail!("--rates: give one or more positive rates (messages per second across all rooms)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_client_ids_round_trip() {
        assert_eq!(parse_stamp("bench s3 t123456 the quick brown fox"), Some((3, 123456)));
        assert_eq!(parse_stamp("hello s3 t1"), None);
        assert_eq!(parse_stamp("bench s3"), None);
        assert_eq!(step_of_client_id("s12-7-99"), Some(12));
        assert_eq!(step_of_client_id("x12-7-99"), None);
    }

    fn step() -> Step {
        Step { offered: 1, ..Step::default() }
    }

    #[test]
    fn accounts_lost_duplicated_and_closed() {
        let mut steps = vec![step(), step()];
        let senders = vec![SenderReport { room_id: 1, acked: vec![(1, 0), (2, 0), (3, 1), (4, 1)] }];
        let subscribers = vec![
            // Everything once.
            SubscriberReport { room_id: 1, seqs: vec![1, 2, 3, 4], closed_at_step: None },
            // 2 twice, 4 never.
            SubscriberReport { room_id: 1, seqs: vec![1, 2, 2, 3], closed_at_step: None },
            // Closed during step 1: 3 and 4 missed on a closed socket, not lost.
            SubscriberReport { room_id: 1, seqs: vec![1, 2], closed_at_step: Some(1) },
            // 9 was never acked.
            SubscriberReport { room_id: 1, seqs: vec![1, 2, 3, 4, 9], closed_at_step: None },
        ];
        let mut notes = Vec::new();
        account(&mut steps, &subscribers, &senders, &mut notes);
        assert_eq!((steps[0].lost, steps[0].duplicated, steps[0].missed_on_closed), (0, 1, 0));
        assert_eq!((steps[1].lost, steps[1].duplicated, steps[1].missed_on_closed), (1, 0, 2));
        assert_eq!(notes.len(), 2, "{notes:?}");
    }

    #[test]
    fn senders_per_room_stay_under_the_limit() {
        let plan = Plan {
            rooms: 100,
            subscribers: 50,
            users: 50,
            rates: vec![200, 3000],
            step: Duration::from_secs(5),
            tail: Duration::from_secs(5),
            all_steps: false,
        };
        assert_eq!(plan.senders_per_room(), 3);
        assert_eq!(Plan { rates: vec![500], ..plan.clone() }.senders_per_room(), 1);
        assert_eq!(Plan { rooms: 2, rates: vec![100], ..plan }.senders_per_room(), 5);
    }
}
