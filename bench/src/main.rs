//! `chat-bench`: how fast the chat server is, and whether it keeps every message.
//!
//! Parts (subcommands; without one, all six run in this order, which is what `make bench` does):
//! - `rest`    `send_message` over REST: requests/s, latency, and the room's history checked afterwards
//! - `fanout`  WebSocket fan-out: R rooms x S subscribers at stepped send rates, to saturation
//! - `idle`    the server's memory per idle WebSocket, and per idle server-sent-event stream
//! - `replay`  time to replay 1,000 missed messages on `subscribe` with `since`
//! - `search`  `GET /search` over 1,000,000 messages in 1,000 rooms, beside a `LIKE` scan (the longest part:
//!   loading the rows takes minutes per database)
//! - `webhooks` sends at 1,000 messages/s into rooms with a webhook each, to a receiver in this process:
//!   deliveries/s, the delay from commit to delivery, and the send latency beside rooms without webhooks
//!
//! `fanout` and `idle` also run against `bare-server`, a bare broadcast server built into this binary (the
//! yardstick of what the machine can do), so their figures are also ratios.
//!
//! Layout:
//! - `main.rs`     flags, one run per part and backend, the exit code
//! - `server.rs`   a child process (`chat-server`, or this binary as `bare-server`): start it on a free port,
//!   read that port from its log, stop it
//! - `deploy.rs`   what the WebSocket parts run against: bare, SQLite (1 node), PostgreSQL + Redis (2 nodes)
//! - `postgres.rs` a throwaway database per run (`chat_bench_<pid>`), created and dropped with `psql`
//! - `load.rs`     the REST part: setup (user, rooms, API token), the timed send loop, the history check
//! - `ws.rs`       WebSocket client plumbing, frame parsing, the REST calls that set up users and rooms
//! - `fanout.rs`, `idle.rs`, `replay.rs`  the WebSocket parts; `sse.rs` the idle SSE streams
//! - `search.rs`   the search part: the rows loaded through `sqlite3` / `psql`, then timed queries
//! - `webhook.rs`  the webhook part, and its receiver
//! - `bare.rs`     the bare broadcast server
//! - `report.rs`   the tables, the machine description, and rewriting one section of `bench/results.md`
//!
//! It builds nothing itself: `make bench` runs `cargo build --release -p backend -p chat-bench` first.
//! Every connection goes to a server it started on 127.0.0.1; every phase stops at a deadline.

mod bare;
mod deploy;
mod fanout;
mod idle;
mod load;
mod postgres;
mod replay;
mod report;
mod search;
mod server;
mod sse;
mod webhook;
mod ws;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::deploy::{Binaries, Deployment, Kind};
use crate::load::{Outcome, Target};
use crate::report::{Machine, Row, RowResult};
use crate::server::Server;

/// Flags. The defaults are what `make bench` runs and what `bench/results.md` reports.
#[derive(Parser, Debug)]
#[command(name = "chat-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Part>,

    /// Without a subcommand: every part, with these flags.
    #[command(flatten)]
    all: AllArgs,

    #[command(flatten)]
    common: Common,
}

#[derive(Subcommand, Debug)]
enum Part {
    /// Every part: rest, fanout, idle, replay, search (the same as no subcommand).
    All(AllArgs),
    /// send_message over REST.
    Rest(RestArgs),
    /// WebSocket fan-out to R rooms x S subscribers at stepped send rates.
    Fanout(FanoutArgs),
    /// Server memory per idle WebSocket.
    Idle(IdleArgs),
    /// Time to replay missed messages on subscribe with since.
    Replay(ReplayArgs),
    /// Full-text search over a large history, beside a LIKE scan.
    Search(SearchArgs),
    /// Outgoing webhooks: deliveries/s, commit-to-delivery delay, the cost on sends.
    Webhooks(WebhookArgs),
    /// Only serve: the bare broadcast server on BIND_ADDR (default 127.0.0.1:0). The bench starts it itself.
    BareServer,
}

/// What every part shares.
#[derive(Args, Debug)]
struct Common {
    /// Backends to measure, comma-separated. For the WebSocket parts `postgres` means two nodes sharing
    /// PostgreSQL and Redis. `fanout` and `idle` always run the bare server first (the yardstick);
    /// `--backends bare` runs only that.
    #[arg(long, global = true, value_enum, value_delimiter = ',', default_values_t = [Backend::Sqlite, Backend::Postgres])]
    backends: Vec<Backend>,

    /// The server binary (a release build).
    #[arg(long, global = true, default_value = "target/release/chat-server")]
    server_bin: PathBuf,

    /// PostgreSQL server (loopback only) in which the bench creates and drops its database; no database name.
    #[arg(long, global = true, default_value = "postgres://postgres@127.0.0.1:5432")]
    pg_url: String,

    /// Redis (loopback only) the two PostgreSQL nodes fan out through; the bench itself writes nothing there.
    #[arg(long, global = true, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,

    /// Results file: each part rewrites only its own section (`<!-- rest:begin -->` ... `<!-- rest:end -->`).
    #[arg(long, global = true, default_value = "bench/results.md")]
    results: PathBuf,

    /// Print the results only; leave the results file alone.
    #[arg(long, global = true)]
    no_write: bool,
}

#[derive(Args, Debug, Clone)]
struct AllArgs {
    #[command(flatten)]
    rest: RestArgs,
    #[command(flatten)]
    fanout: FanoutArgs,
    #[command(flatten)]
    idle: IdleArgs,
    #[command(flatten)]
    replay: ReplayArgs,
    #[command(flatten)]
    search: SearchArgs,
    #[command(flatten)]
    webhooks: WebhookArgs,
}

#[derive(Args, Debug, Clone)]
struct WebhookArgs {
    /// Webhooks: rooms with a webhook each (and as many without, for the comparison).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    webhook_rooms: u64,

    /// Webhooks: messages/s offered across the rooms.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=20_000))]
    webhook_rate: u64,

    /// Webhooks: seconds of sending, with webhooks and without.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    webhook_seconds: u64,
}

impl WebhookArgs {
    fn plan(&self) -> webhook::Plan {
        webhook::Plan { rooms: self.webhook_rooms as usize, rate: self.webhook_rate, seconds: self.webhook_seconds }
    }

    fn flags(&self) -> String {
        format!(
            "--webhook-rooms {} --webhook-rate {} --webhook-seconds {}",
            self.webhook_rooms, self.webhook_rate, self.webhook_seconds
        )
    }

    fn is_default(&self) -> bool {
        self.webhook_rooms == 100 && self.webhook_rate == 1000 && self.webhook_seconds == 10
    }
}

#[derive(Args, Debug, Clone)]
struct RestArgs {
    /// REST: seconds of measured sending per backend, after the warm-up.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    duration: u64,

    /// REST: requests in flight at once (one task each, over a keep-alive connection pool).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,

    /// REST: seconds of sending before the measurement, into a separate room; not counted.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=60))]
    warmup: u64,
}

#[derive(Args, Debug, Clone)]
struct FanoutArgs {
    /// Fan-out: rooms.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    rooms: u64,

    /// Fan-out: subscriber sockets per room.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
    subscribers: u64,

    /// Fan-out: users the subscriber sockets belong to (subscriber i of every room is user i mod users).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
    users: u64,

    /// Fan-out: offered messages/s across all rooms, one step each, in order.
    #[arg(long, value_delimiter = ',', default_values_t = [200u64, 500, 1000, 1250, 1500, 1750, 2000, 2500, 3000])]
    rates: Vec<u64>,

    /// Fan-out: seconds per step.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    step_seconds: u64,

    /// Fan-out: longest wait after a step for its last acks and deliveries, in seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=120))]
    tail_seconds: u64,

    /// Fan-out: run every rate, even after two in a row did not keep up.
    #[arg(long)]
    all_steps: bool,
}

#[derive(Args, Debug, Clone)]
struct IdleArgs {
    /// Idle: sockets to open.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=50_000))]
    idle_sockets: u64,

    /// Idle: users the sockets belong to (one room each).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    idle_users: u64,

    /// Idle: server-sent-event streams held after the sockets (0: none).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=20_000))]
    idle_sse_streams: u64,
}

#[derive(Args, Debug, Clone)]
struct ReplayArgs {
    /// Replay: messages in the room (the server replays at most 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1000))]
    replay_messages: u64,

    /// Replay: timed runs (after one warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100))]
    replay_runs: u64,
}

#[derive(Args, Debug, Clone)]
struct SearchArgs {
    /// Search: messages loaded (a multiple of --search-rooms).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    search_messages: u64,

    /// Search: rooms they are spread over.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    search_rooms: u64,

    /// Search: rooms the reader who searches is a member of.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    search_member_of: u64,

    /// Search: timed two-word queries (over HTTP, and the index query in the database).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    search_queries: u64,

    /// Search: timed LIKE scans (each reads the reader's rooms whole, so fewer).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    like_queries: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// The bare broadcast server (WebSocket parts only).
    Bare,
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Bare => "bare",
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Backend::Bare => Kind::Bare,
            Backend::Sqlite => Kind::Sqlite,
            Backend::Postgres => Kind::Postgres,
        }
    }
}

impl Common {
    fn flags(&self) -> String {
        let backends: Vec<&str> = self.backends.iter().map(|b| b.name()).collect();
        format!("--backends {}", backends.join(","))
    }

    fn is_default(&self) -> bool {
        self.backends == [Backend::Sqlite, Backend::Postgres]
    }
}

impl RestArgs {
    /// The flags that reproduce this run, spelled out in full for the results file.
    fn flags(&self) -> String {
        format!("--duration {} --concurrency {} --warmup {}", self.duration, self.concurrency, self.warmup)
    }

    fn is_default(&self) -> bool {
        self.duration == 10 && self.concurrency == 32 && self.warmup == 2
    }
}

impl FanoutArgs {
    fn plan(&self) -> fanout::Plan {
        fanout::Plan {
            rooms: self.rooms as usize,
            subscribers: self.subscribers as usize,
            users: self.users as usize,
            rates: self.rates.clone(),
            step: Duration::from_secs(self.step_seconds),
            tail: Duration::from_secs(self.tail_seconds),
            all_steps: self.all_steps,
        }
    }

    fn flags(&self) -> String {
        let rates: Vec<String> = self.rates.iter().map(u64::to_string).collect();
        format!(
            "--rooms {} --subscribers {} --users {} --rates {} --step-seconds {} --tail-seconds {}{}",
            self.rooms,
            self.subscribers,
            self.users,
            rates.join(","),
            self.step_seconds,
            self.tail_seconds,
            if self.all_steps { " --all-steps" } else { "" }
        )
    }

    fn is_default(&self) -> bool {
        self.rooms == 100
            && self.subscribers == 50
            && self.users == 50
            && self.rates == [200, 500, 1000, 1250, 1500, 1750, 2000, 2500, 3000]
            && self.step_seconds == 5
            && self.tail_seconds == 5
            && !self.all_steps
    }
}

impl IdleArgs {
    fn flags(&self) -> String {
        format!(
            "--idle-sockets {} --idle-users {} --idle-sse-streams {}",
            self.idle_sockets, self.idle_users, self.idle_sse_streams
        )
    }

    fn is_default(&self) -> bool {
        self.idle_sockets == 10_000 && self.idle_users == 100 && self.idle_sse_streams == 1000
    }
}

impl ReplayArgs {
    fn flags(&self) -> String {
        format!("--replay-messages {} --replay-runs {}", self.replay_messages, self.replay_runs)
    }

    fn is_default(&self) -> bool {
        self.replay_messages == 1000 && self.replay_runs == 10
    }
}

impl SearchArgs {
    fn plan(&self) -> search::Plan {
        search::Plan {
            messages: self.search_messages as usize,
            rooms: self.search_rooms as usize,
            member_of: self.search_member_of as usize,
            queries: self.search_queries as usize,
            like_queries: self.like_queries as usize,
        }
    }

    fn flags(&self) -> String {
        format!(
            "--search-messages {} --search-rooms {} --search-member-of {} --search-queries {} --like-queries {}",
            self.search_messages, self.search_rooms, self.search_member_of, self.search_queries, self.like_queries
        )
    }

    fn is_default(&self) -> bool {
        self.search_messages == 1_000_000
            && self.search_rooms == 1000
            && self.search_member_of == 50
            && self.search_queries == 200
            && self.like_queries == 30
    }
}

impl AllArgs {
    fn is_default(&self) -> bool {
        self.rest.is_default()
            && self.fanout.is_default()
            && self.idle.is_default()
            && self.replay.is_default()
            && self.search.is_default()
            && self.webhooks.is_default()
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("chat-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// How a part ended, for the exit code.
#[derive(PartialEq, Eq)]
enum Verdict {
    Ok,
    /// Measured, but a run failed or lost / repeated messages.
    Failed,
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let Cli { command, all, mut common } = cli;
    if matches!(command, Some(Part::BareServer)) {
        raise_open_files(0)?;
        bare::serve().await?;
        return Ok(ExitCode::SUCCESS);
    }
    if command.is_some() && !all.is_default() {
        bail!("a part's flags go after the part (`chat-bench fanout --rooms 10`), not before it");
    }
    common.backends.dedup();
    let bench = Bench::new(common)?;
    let verdicts = match command {
        None => bench.all(&all, true).await?,
        Some(Part::All(all)) => bench.all(&all, true).await?,
        Some(Part::Rest(args)) => vec![bench.rest(&args, false).await?],
        Some(Part::Fanout(args)) => vec![bench.fanout(&args, false).await?],
        Some(Part::Idle(args)) => vec![bench.idle(&args, false).await?],
        Some(Part::Replay(args)) => vec![bench.replay(&args, false).await?],
        Some(Part::Search(args)) => vec![bench.search(&args, false).await?],
        Some(Part::Webhooks(args)) => vec![bench.webhooks(&args, false).await?],
        Some(Part::BareServer) => unreachable!("handled above"),
    };
    if verdicts.contains(&Verdict::Failed) {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Raises the open-file limit (the servers started later inherit it) and checks it covers `needed`.
fn raise_open_files(needed: u64) -> Result<()> {
    let limit = ws::raise_open_files()?;
    if limit < needed {
        bail!("the open-file limit is {limit}, {needed} are needed (raise the hard limit: ulimit -Hn)");
    }
    Ok(())
}

struct Bench {
    common: Common,
    bins: Binaries,
}

impl Bench {
    fn new(common: Common) -> Result<Bench> {
        let server = common.server_bin.canonicalize().with_context(|| {
            format!(
                "server binary {} not found; build it with `cargo build --release -p backend` (`make bench` does)",
                common.server_bin.display()
            )
        })?;
        postgres::check_loopback(&common.pg_url)?;
        deploy::check_redis_url(&common.redis_url)?;
        let bench = std::env::current_exe().context("locating chat-bench itself")?;
        let bins = Binaries { server, bench, pg_url: common.pg_url.clone(), redis_url: common.redis_url.clone() };
        Ok(Bench { common, bins })
    }

    /// Every part in turn; a part that fails does not stop the next.
    async fn all(&self, args: &AllArgs, top_level: bool) -> Result<Vec<Verdict>> {
        let whole_default = top_level && args.is_default() && self.common.is_default();
        let mut verdicts = Vec::new();
        verdicts.push(self.rest(&args.rest, whole_default).await?);
        verdicts.push(self.fanout(&args.fanout, whole_default).await?);
        verdicts.push(self.idle(&args.idle, whole_default).await?);
        verdicts.push(self.replay(&args.replay, whole_default).await?);
        verdicts.push(self.search(&args.search, whole_default).await?);
        verdicts.push(self.webhooks(&args.webhooks, whole_default).await?);
        Ok(verdicts)
    }

    fn command(&self, part: &str, flags: &str, whole_default: bool) -> String {
        report::command_line(part, &format!("{flags} {}", self.common.flags()), whole_default)
    }

    /// Prints the section, and writes it unless told not to or nothing was measured.
    fn publish(&self, name: &str, section: &str, measured: bool) -> Result<()> {
        println!("{section}");
        if !measured {
            eprintln!("chat-bench: nothing was measured; {} left unchanged", self.common.results.display());
        } else if !self.common.no_write {
            write_results(&self.common.results, name, section)?;
            eprintln!("chat-bench: wrote the {name} section of {}", self.common.results.display());
        }
        Ok(())
    }

    async fn rest(&self, args: &RestArgs, whole_default: bool) -> Result<Verdict> {
        // Described before the run: its load average is what others were doing when it started.
        let machine = Machine::describe();
        let plan = load::Plan {
            concurrency: usize::try_from(args.concurrency).context("concurrency")?,
            warmup: Duration::from_secs(args.warmup),
            duration: Duration::from_secs(args.duration),
        };
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        let mut failed = false;

        for backend in self.common.backends.clone() {
            let (label, result) = match backend {
                // No REST there.
                Backend::Bare => continue,
                Backend::Sqlite => ("SQLite".to_string(), bench_backend(&self.bins.server, None, &plan).await),
                Backend::Postgres => {
                    let (server, plan) = (&self.bins.server, &plan);
                    let run = |url: String| async move { bench_backend(server, Some(&url), plan).await };
                    match postgres::in_temp_database(&self.bins.pg_url, run).await {
                        Ok(labelled) => labelled,
                        Err(why) => {
                            let note = format!("PostgreSQL skipped: {why}.");
                            eprintln!("chat-bench: {note}");
                            notes.push(note);
                            continue;
                        }
                    }
                }
            };
            match result {
                Ok(outcome) => {
                    failed |= !outcome.verification.ok;
                    let row = Row::new(label, plan.concurrency, &outcome);
                    eprintln!("{}", report::describe(&row));
                    rows.push(row);
                }
                Err(err) => {
                    failed = true;
                    eprintln!("chat-bench: {label} run failed: {err:#}");
                    rows.push(Row {
                        backend: label,
                        concurrency: plan.concurrency,
                        result: RowResult::Failed(format!("{err:#}")),
                    });
                }
            }
        }

        let command = self.command("rest", &args.flags(), whole_default);
        let section = report::rest_section(&rows, &notes, &plan, &machine, &command);
        if failed {
            println!("{section}");
            eprintln!("chat-bench: a run failed or did not verify; {} left unchanged", self.common.results.display());
            return Ok(Verdict::Failed);
        }
        self.publish(report::REST_SECTION, &section, !rows.is_empty())?;
        Ok(Verdict::Ok)
    }

    /// The kinds a WebSocket part runs on: the bare server first (when asked), then `--backends`.
    fn kinds(&self, with_bare: bool) -> Vec<Kind> {
        let mut kinds = if with_bare { vec![Kind::Bare] } else { Vec::new() };
        kinds.extend(self.common.backends.iter().map(|b| b.kind()).filter(|k| *k != Kind::Bare));
        kinds
    }

    /// Starts each deployment in turn, runs `part` on it, stops it. A kind that cannot run here is a
    /// note; a run that fails is an error line and fails the part.
    async fn each_deployment<T>(
        &self,
        kinds: &[Kind],
        notes: &mut Vec<String>,
        part: RunOn<'_, T>,
    ) -> (Vec<T>, Vec<String>) {
        let mut results = Vec::new();
        let mut errors = Vec::new();
        for &kind in kinds {
            let mut deployment = match Deployment::start(kind, &self.bins).await {
                Ok(Ok(deployment)) => deployment,
                Ok(Err(why)) => {
                    eprintln!("chat-bench: {why}");
                    notes.push(format!("{why}."));
                    continue;
                }
                Err(err) => {
                    eprintln!("chat-bench: starting {kind:?} failed: {err:#}");
                    errors.push(format!("{kind:?}: the servers did not start: {err:#}"));
                    continue;
                }
            };
            let label = deployment.label.clone();
            let result = part(&mut deployment).await;
            let mut unclean = std::mem::take(&mut deployment.unclean_restarts);
            match deployment.stop().await {
                Ok(more) => unclean.extend(more),
                Err(err) => eprintln!("chat-bench: stopping {label}: {err:#}"),
            }
            notes.extend(unclean.into_iter().map(|how| format!("{label}: {how}.")));
            match result {
                Ok(result) => results.push(result),
                Err(err) => {
                    eprintln!("chat-bench: {label} run failed: {err:#}");
                    errors.push(format!("{label}: {err:#}"));
                }
            }
        }
        (results, errors)
    }

    async fn fanout(&self, args: &FanoutArgs, whole_default: bool) -> Result<Verdict> {
        let machine = Machine::describe();
        let plan = args.plan();
        fanout::check_rates(&plan.rates)?;
        let sockets = plan.rooms * (plan.subscribers + 3) + 256;
        raise_open_files(sockets as u64)?;
        let mut notes = Vec::new();
        let (runs, errors) = self
            .each_deployment(&self.kinds(true), &mut notes, &|d| {
                let plan = plan.clone();
                Box::pin(async move { fanout::run(d, &plan).await })
            })
            .await;
        let verified = runs.iter().all(fanout::TargetRun::verified);
        notes.extend(errors.iter().map(|e| format!("run failed: {e}")));
        let command = self.command("fanout", &args.flags(), whole_default);
        let section = report::fanout_section(&runs, &notes, &plan, &machine, &command);
        self.finish(report::FANOUT_SECTION, &section, !runs.is_empty(), errors.is_empty(), verified)
    }

    async fn idle(&self, args: &IdleArgs, whole_default: bool) -> Result<Verdict> {
        let machine = Machine::describe();
        let plan = idle::Plan {
            sockets: args.idle_sockets as usize,
            users: args.idle_users as usize,
            sse_streams: args.idle_sse_streams as usize,
        };
        raise_open_files(args.idle_sockets.max(args.idle_sse_streams) + 256)?;
        let mut notes = Vec::new();
        let (runs, errors) = self
            .each_deployment(&self.kinds(true), &mut notes, &|d| {
                let plan = plan.clone();
                Box::pin(async move { idle::run(d, &plan).await })
            })
            .await;
        notes.extend(errors.iter().map(|e| format!("run failed: {e}")));
        let command = self.command("idle", &args.flags(), whole_default);
        let section = report::idle_section(&runs, &notes, &plan, &machine, &command);
        self.finish(report::IDLE_SECTION, &section, !runs.is_empty(), errors.is_empty(), true)
    }

    async fn replay(&self, args: &ReplayArgs, whole_default: bool) -> Result<Verdict> {
        let machine = Machine::describe();
        let plan = replay::Plan { messages: args.replay_messages as usize, runs: args.replay_runs as usize };
        let mut notes = Vec::new();
        let (runs, errors) = self
            .each_deployment(&self.kinds(false), &mut notes, &|d| {
                let plan = plan.clone();
                Box::pin(async move { replay::run(d, &plan).await })
            })
            .await;
        notes.extend(errors.iter().map(|e| format!("run failed: {e}")));
        let command = self.command("replay", &args.flags(), whole_default);
        let section = report::replay_section(&runs, &notes, &plan, &machine, &command);
        self.finish(report::REPLAY_SECTION, &section, !runs.is_empty(), errors.is_empty(), true)
    }

    /// The search part: SQLite, then PostgreSQL in a throwaway database (no Redis: one node).
    async fn search(&self, args: &SearchArgs, whole_default: bool) -> Result<Verdict> {
        let machine = Machine::describe();
        let plan = args.plan();
        plan.check()?;
        let (server, plan_ref) = (&self.bins.server, &plan);
        let (runs, notes, failed) = self
            .each_single_node("search", |url| async move { search::run(server, url.as_deref(), plan_ref).await })
            .await;
        let runs: Vec<_> = runs.into_iter().map(|(label, run)| search::SearchRun { label, ..run }).collect();
        let command = self.command("search", &args.flags(), whole_default);
        let section = report::search_section(&runs, &notes, &plan, &machine, &command);
        self.finish(report::SEARCH_SECTION, &section, !runs.is_empty(), !failed, true)
    }

    /// The webhook part: one node per backend (SQLite; PostgreSQL in a throwaway database).
    async fn webhooks(&self, args: &WebhookArgs, whole_default: bool) -> Result<Verdict> {
        let machine = Machine::describe();
        let plan = args.plan();
        let (server, plan_ref) = (&self.bins.server, &plan);
        let (runs, notes, failed) = self
            .each_single_node("webhooks", |url| async move { webhook::run(server, url.as_deref(), plan_ref).await })
            .await;
        let runs: Vec<_> = runs.into_iter().map(|(label, run)| webhook::WebhookRun { label, ..run }).collect();
        let verified = runs.iter().all(webhook::WebhookRun::verified);
        let command = self.command("webhooks", &args.flags(), whole_default);
        let section = report::webhook_section(&runs, &notes, &plan, &machine, &command);
        self.finish(report::WEBHOOK_SECTION, &section, !runs.is_empty(), !failed, verified)
    }

    /// Runs a one-node part (`run` gets the database URL: `None` for SQLite) on each of `--backends`, PostgreSQL
    /// in a throwaway database: each run's result with its label, the notes (skips, failures), and whether a
    /// run failed.
    async fn each_single_node<T, F, Fut>(&self, part: &str, run: F) -> (Vec<(String, T)>, Vec<String>, bool)
    where
        F: Fn(Option<String>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let (mut runs, mut notes, mut failed) = (Vec::new(), Vec::new(), false);
        for backend in self.common.backends.clone() {
            let (label, result) = match backend {
                Backend::Bare => continue,
                Backend::Sqlite => ("SQLite".to_string(), run(None).await),
                Backend::Postgres => match postgres::in_temp_database(&self.bins.pg_url, |url| run(Some(url))).await {
                    Ok(labelled) => labelled,
                    Err(why) => {
                        notes.push(format!("PostgreSQL skipped: {why}."));
                        continue;
                    }
                },
            };
            match result {
                Ok(result) => runs.push((label, result)),
                Err(err) => {
                    failed = true;
                    eprintln!("chat-bench: {part} on {label} failed: {err:#}");
                    notes.push(format!("{label}: run failed: {err:#}"));
                }
            }
        }
        (runs, notes, failed)
    }

    /// A WebSocket part's section: written when every run completed, even with lost or repeated
    /// messages (those are findings, and the section says so), but then the exit code is a failure.
    fn finish(&self, name: &str, section: &str, measured: bool, completed: bool, verified: bool) -> Result<Verdict> {
        if !completed {
            println!("{section}");
            eprintln!("chat-bench: a {name} run failed; {} left unchanged", self.common.results.display());
            return Ok(Verdict::Failed);
        }
        self.publish(name, section, measured)?;
        if !verified {
            eprintln!("chat-bench: {name}: messages were lost or delivered twice (see the section)");
            return Ok(Verdict::Failed);
        }
        Ok(Verdict::Ok)
    }
}

/// A part run on one deployment; the future owns a copy of the plan and borrows only the deployment.
type RunOn<'p, T> = &'p dyn for<'d> Fn(&'d mut Deployment) -> Pin<Box<dyn Future<Output = Result<T>> + 'd>>;

/// One backend: start a server on it, measure, verify, stop the server.
async fn bench_backend(server_bin: &Path, database_url: Option<&str>, plan: &load::Plan) -> Result<Outcome> {
    // Also the server's working directory, so no `.env` of the checkout changes its configuration.
    let data_dir = tempfile::Builder::new().prefix("chat-bench-").tempdir().context("creating a temp DATA_DIR")?;
    let server = Server::start(server_bin, data_dir.path(), database_url).await?;
    eprintln!("chat-bench: server up at {}", server.base_url());
    let outcome = async {
        let target = Target::setup(server.base_url()).await?;
        target.run(plan).await
    }
    .await;
    let stopped = server.stop().await;
    let outcome = outcome?;
    stopped?;
    Ok(outcome)
}

fn write_results(path: &Path, name: &str, section: &str) -> Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    if !existing.is_empty() && report::find_section(&existing, name).is_err() {
        // Markers half there or out of order: refuse rather than guess which text is ours.
        if existing.contains(&report::begin_marker(name)) || existing.contains(&report::end_marker(name)) {
            bail!("{}: the {name}:begin / {name}:end markers are broken; fix them by hand", path.display());
        }
    }
    let updated = report::replace_section(&existing, name, section);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_runs_everything_with_the_defaults() {
        let cli = Cli::try_parse_from(["chat-bench", "--server-bin", "x"]).unwrap();
        assert!(cli.command.is_none());
        assert!(cli.all.is_default() && cli.common.is_default());
        assert_eq!(cli.all.search.plan().messages, 1_000_000);
    }

    #[test]
    fn common_flags_go_before_or_after_the_part() {
        let cli =
            Cli::try_parse_from(["chat-bench", "--server-bin", "x", "fanout", "--rooms", "3", "--backends", "sqlite"])
                .unwrap();
        assert_eq!(cli.common.backends, [Backend::Sqlite]);
        assert_eq!(cli.common.server_bin, PathBuf::from("x"));
        let Some(Part::Fanout(args)) = cli.command else { panic!("fanout expected") };
        assert_eq!(args.rooms, 3);
        let misplaced = Cli::try_parse_from(["chat-bench", "--duration", "3", "fanout"]).unwrap();
        assert!(misplaced.command.is_some() && !misplaced.all.is_default(), "refused by `run`");
        assert!(Cli::try_parse_from(["chat-bench", "rest", "--rooms", "3"]).is_err());
    }

    #[test]
    fn the_flags_written_down_parse_back_to_the_same_run() {
        let cli = Cli::try_parse_from(["chat-bench", "--rates", "1,2", "--idle-sockets", "5"]).unwrap();
        let flags = cli.all.fanout.flags();
        let mut argv = vec!["chat-bench".to_string(), "fanout".to_string()];
        argv.extend(flags.split(' ').map(str::to_string));
        let Some(Part::Fanout(again)) = Cli::try_parse_from(argv).unwrap().command else { panic!("fanout") };
        assert_eq!(again.flags(), flags);
        assert_eq!(cli.all.idle.idle_sockets, 5);
    }
}
