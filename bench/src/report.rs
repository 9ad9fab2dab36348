//! The results: a markdown table, the machine it ran on, and the exact command, written into one marked
//! section of `bench/results.md`.
//!
//! Each benchmark owns the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` and rewrites only
//! that (`rest`, `fanout`, `idle`, `replay`), so the other sections and hand-written text around them survive.

use std::fmt::Write as _;

use anyhow::{Result, bail};

use crate::deploy::Kind;
use crate::fanout::{self, TargetRun};
use crate::idle::{self, IdleRun};
use crate::load::{Outcome, Plan};
use crate::replay::{self, ReplayRun};
use crate::search::{self, SearchRun};
use crate::webhook::{self, WebhookRun};

/// The marker name of the REST `send_message` section.
pub const REST_SECTION: &str = "rest";
pub const FANOUT_SECTION: &str = "fanout";
pub const IDLE_SECTION: &str = "idle";
pub const REPLAY_SECTION: &str = "replay";
pub const SEARCH_SECTION: &str = "search";
pub const WEBHOOK_SECTION: &str = "webhooks";

/// The top of a results file the bench creates from nothing.
const NEW_FILE_HEADER: &str = "# Benchmarks\n\n\
Measured by `make bench` (the `chat-bench` crate in `bench/`). Each section below is written by its own\n\
benchmark between its `<!-- NAME:begin -->` / `<!-- NAME:end -->` markers and replaced on every run;\n\
text outside the markers is kept.\n";

pub fn begin_marker(name: &str) -> String {
    format!("<!-- {name}:begin -->")
}

pub fn end_marker(name: &str) -> String {
    format!("<!-- {name}:end -->")
}

/// The byte range of the text between the section's markers.
pub fn find_section(doc: &str, name: &str) -> Result<(usize, usize)> {
    let begin = begin_marker(name);
    let end = end_marker(name);
    let Some(begin_at) = doc.find(&begin) else { bail!("no {begin} marker") };
    let content_start = begin_at + begin.len();
    let Some(end_offset) = doc[content_start..].find(&end) else { bail!("no {end} marker after {begin}") };
    Ok((content_start, content_start + end_offset))
}

/// `doc` with the section's content replaced by `body`; the section is appended when it is not there yet.
pub fn replace_section(doc: &str, name: &str, body: &str) -> String {
    let body = body.trim_matches('\n');
    match find_section(doc, name) {
        Ok((start, end)) => format!("{}\n{body}\n{}", &doc[..start], &doc[end..]),
        Err(_) => {
            let head = if doc.trim().is_empty() { NEW_FILE_HEADER } else { doc };
            let head = head.trim_end_matches('\n');
            format!("{head}\n\n{}\n{body}\n{}\n", begin_marker(name), end_marker(name))
        }
    }
}

/// One line of the table.
pub struct Row {
    pub backend: String,
    pub concurrency: usize,
    pub result: RowResult,
}

pub enum RowResult {
    Measured(Measured),
    /// The run did not get to a measurement (the server did not start, setup was refused, ...).
    Failed(String),
}

pub struct Measured {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    /// Total non-2xx answers and transport errors, with a breakdown when there are any.
    errors: String,
    verified: String,
}

impl Row {
    pub fn new(backend: String, concurrency: usize, outcome: &Outcome) -> Row {
        let h = &outcome.latency_micros;
        let ms = |micros: u64| micros as f64 / 1000.0;
        let errors = if outcome.errors.is_empty() {
            "0".to_string()
        } else {
            let kinds: Vec<String> = outcome.errors.iter().map(|(kind, n)| format!("{kind}: {n}")).collect();
            format!("{} ({})", outcome.error_count(), kinds.join(", "))
        };
        Row {
            backend,
            concurrency,
            result: RowResult::Measured(Measured {
                requests_per_sec: outcome.requests_per_sec(),
                p50_ms: ms(h.value_at_quantile(0.50)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                p999_ms: ms(h.value_at_quantile(0.999)),
                max_ms: ms(h.max()),
                errors,
                verified: outcome.verification.summary.clone(),
            }),
        }
    }
}

/// One line for the terminal, printed as each backend finishes.
pub fn describe(row: &Row) -> String {
    match &row.result {
        RowResult::Measured(m) => format!(
            "{}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms, errors {}, verified {}",
            row.backend, m.requests_per_sec, m.p50_ms, m.p99_ms, m.p999_ms, m.max_ms, m.errors, m.verified
        ),
        RowResult::Failed(why) => format!("{}: failed: {why}", row.backend),
    }
}

/// Where the numbers came from.
pub struct Machine {
    cpu: String,
    cores: usize,
    memory: String,
    kernel: String,
    date: String,
    /// `/proc/loadavg`'s 1, 5 and 15 minute figures when the run started: others share these cores.
    load: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpu: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".to_string()),
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory: memory_total(&meminfo).unwrap_or_else(|| "unknown".to_string()),
            // The same string as `uname -r`.
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_string(), |s| s.trim().to_string()),
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            load: std::fs::read_to_string("/proc/loadavg")
                .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|_| "unknown".to_string()),
        }
    }

    /// The closing lines of every section.
    fn footer(&self, command: &str) -> String {
        format!(
            "Machine: {}, {} cores, {} memory, Linux {}; load average {} at the start. Run: {}.\n\nCommand: {command}",
            self.cpu, self.cores, self.memory, self.kernel, self.load, self.date
        )
    }
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}

fn memory_total(meminfo: &str) -> Option<String> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
}

/// The command that reproduces a section: `make bench` when the whole run used the defaults, and always
/// the direct call of this part with every flag spelled out.
pub fn command_line(part: &str, flags: &str, whole_default_run: bool) -> String {
    let args = if flags.is_empty() { part.to_string() } else { format!("{part} {flags}") };
    let direct = format!(
        "cargo build --release -p backend -p chat-bench && \
         target/release/chat-bench --server-bin target/release/chat-server {args}"
    );
    if whole_default_run {
        format!("`make bench` (this section alone: `make bench BENCH_ARGS=\"{part}\"`), which runs `{direct}`")
    } else {
        format!("`make bench BENCH_ARGS=\"{args}\"`, which runs `{direct}`")
    }
}

/// The REST section's content (without its markers).
pub fn rest_section(rows: &[Row], notes: &[String], plan: &Plan, machine: &Machine, command: &str) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail, so the results of `writeln!` are ignored.
    let _ = writeln!(out, "## REST send_message\n");
    let _ = writeln!(
        out,
        "`POST /api/v1/rooms/{{id}}/messages` with an API token (`messages:write`); every request has a unique\n\
         body, `client_id` and `Idempotency-Key`. {concurrency} workers, each waiting for its answer before the next\n\
         request (closed loop), over HTTP/1.1 keep-alive on loopback; the server (`target/release/chat-server`,\n\
         `RUST_LOG=warn,backend=info`) and the bench share the machine. {warmup}\n\
         then {duration} s measured. requests/s counts 2xx answers; latency is client-side, from\n\
         sending to the end of the response, 2xx only. *verified*: the room's history, read back over REST, holds\n\
         exactly one message per 2xx answer, with seq 1..N (no loss, no duplicate).\n",
        concurrency = plan.concurrency,
        warmup = if plan.warmup.is_zero() {
            "No warm-up;".to_string()
        } else {
            format!("{} s of warm-up into another room (not counted),", plan.warmup.as_secs())
        },
        duration = plan.duration.as_secs(),
    );
    let _ = writeln!(
        out,
        "| backend | concurrency | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | verified |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|---|");
    for row in rows {
        match &row.result {
            RowResult::Measured(m) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
                    row.backend,
                    row.concurrency,
                    m.requests_per_sec,
                    m.p50_ms,
                    m.p99_ms,
                    m.p999_ms,
                    m.max_ms,
                    m.errors,
                    m.verified
                );
            }
            RowResult::Failed(why) => {
                let why = why.lines().next().unwrap_or_default().replace('|', "\\|");
                let _ = writeln!(
                    out,
                    "| {} | {} | - | - | - | - | - | - | run failed: {why} |",
                    row.backend, row.concurrency
                );
            }
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out);
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    let _ = writeln!(out, "\n{}", machine.footer(command));
    out
}

fn ratio(value: f64, bare: Option<f64>) -> String {
    match bare {
        Some(bare) if bare > 0.0 => format!("{:.0} %", 100.0 * value / bare),
        _ => "-".to_string(),
    }
}

/// `value` as a multiple of the bare server's (memory: more is worse).
fn times(value: f64, bare: Option<f64>) -> String {
    match bare {
        Some(bare) if bare > 0.0 => format!("{:.1}x", value / bare),
        _ => "-".to_string(),
    }
}

fn notes_list(out: &mut String, notes: &[String]) {
    if !notes.is_empty() {
        let _ = writeln!(out);
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
}

/// The idle SSE streams held after the sockets, beside a socket's figure (issue 14).
fn sse_table(out: &mut String, runs: &[IdleRun]) {
    let measured: Vec<(&IdleRun, &idle::Reading)> =
        runs.iter().filter_map(|r| r.sse.as_ref().map(|s| (r, s))).collect();
    if measured.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nThen, the sockets closed, server-sent-event streams (`GET /rooms/{{id}}/events`, each read up to its \
         `subscribed` event) over the same users' rooms, held idle the same way; memory per stream beside a socket's:\n"
    );
    let _ = writeln!(
        out,
        "| target | SSE streams | RSS before MiB | RSS after MiB | KiB per stream | vs a socket | opened in s | closed |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (run, sse) in measured {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {} |",
            run.label,
            sse.connections,
            sse.rss_before_kib as f64 / 1024.0,
            sse.rss_after_kib as f64 / 1024.0,
            sse.kib_each(),
            times(sse.kib_each(), Some(run.sockets.kib_each())),
            sse.open_secs,
            sse.closed
        );
    }
}

/// The fan-out section: what was run, a summary per target with its saturation point, every step.
pub fn fanout_section(
    runs: &[TargetRun],
    notes: &[String],
    plan: &fanout::Plan,
    machine: &Machine,
    command: &str,
) -> String {
    let mut out = String::new();
    let sockets = plan.rooms * plan.subscribers;
    let _ = writeln!(out, "## WebSocket fan-out\n");
    let _ = writeln!(
        out,
        "{rooms} rooms x {subs} subscriber sockets ({sockets} sockets, {users} users, each socket subscribed to one\n\
         room). Senders are separate sockets of the rooms' owner (not subscribed), a few per room so that none\n\
         exceeds 10 sends/s (the server allows 20/s per connection), sending `send` frames open-loop on a fixed\n\
         schedule. Each step offers a rate of messages/s across all rooms for {step} s; keeping up means\n\
         offered x {subs} deliveries/s. *delivered/s*: `message` frames of the step received by subscribers,\n\
         divided by the time from the step's start to its last delivery. Latency: from the send (a monotonic\n\
         stamp in the body) to the subscriber reading the frame, same process and clock. Before the first\n\
         step the bench waits for the servers to go idle after the setup; after a step it waits up to {tail} s\n\
         for its tail. *lost*: acked messages a subscriber whose socket stayed open never\n\
         received; *dup*: received twice (per subscriber and room, by seq, counted at the end of the run).\n\
         A step *keeps up* when all offered messages were sent and acked without error, every subscriber got\n\
         every one, delivered/s >= {share:.0} % of offered x {subs}, no socket was closed, and p99 < {p99:.0} ms;\n\
         the *saturation point* is the highest offered rate that keeps up. Stepping stops after two steps\n\
         in a row that do not. The bare server (`chat-bench bare-server`: tokio-tungstenite, no auth, no database,\n\
         same frames, seq in memory, 256-frame queue per socket) gets the same load: *vs bare* is the ratio\n\
         at the same offered rate. Two nodes: subscribers and senders alternate between the nodes (with\n\
         several senders per room, each room gets messages from both); messages cross through Redis. Servers, bench and databases share the machine's cores; *server cores* and\n\
         *bench cores* are their CPU time over the step and its tail (PostgreSQL and Redis not counted).\n\
         *gap fills*: the servers' `ws_gaps_filled_total` over the step, sessions that read missed\n\
         messages from the database because a later one arrived first.\n",
        rooms = plan.rooms,
        subs = plan.subscribers,
        users = plan.users.min(plan.subscribers),
        step = plan.step.as_secs(),
        tail = plan.tail.as_secs(),
        share = 95.0,
        p99 = fanout::P99_TARGET_MS,
    );
    let bare = runs.iter().find(|r| r.kind == Kind::Bare);
    let bare_saturation = bare.and_then(|b| b.saturation()).map(|s| s.delivered_per_sec);
    let _ = writeln!(
        out,
        "| target | saturation: offered msg/s | deliveries/s there | vs bare | p99 ms there | lost | dup | closed |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        let lost: u64 = run.steps.iter().map(|s| s.lost).sum();
        let dup: u64 = run.steps.iter().map(|s| s.duplicated).sum();
        let closed: u64 = run.steps.iter().map(|s| s.closed).sum();
        match run.saturation() {
            Some(step) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {} | {:.2} | {lost} | {dup} | {closed} |",
                    run.label,
                    step.offered,
                    step.delivered_per_sec,
                    ratio(step.delivered_per_sec, bare_saturation),
                    step.p99_ms
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "| {} | below {} | - | - | - | {lost} | {dup} | {closed} |",
                    run.label,
                    plan.rates.first().copied().unwrap_or(0)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\nTarget (issue 11): on SQLite, at least 80 % of the bare server's rate at p99 < 50 ms, nothing lost.\n"
    );
    let _ = writeln!(
        out,
        "| target | offered msg/s | sent/s | delivered/s | of offered x {} | vs bare | p50 ms | p99 ms | p99.9 ms | max ms | lost | dup | errors | closed | gap fills | server cores | bench cores | keeps up |",
        plan.subscribers
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for run in runs {
        for step in &run.steps {
            let bare_step = bare.and_then(|b| b.steps.iter().find(|s| s.offered == step.offered));
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.1} % | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {} |",
                run.label,
                step.offered,
                step.sent as f64 / step.seconds,
                step.delivered_per_sec,
                100.0 * step.delivered_per_sec / step.expected_deliveries_per_sec(plan.subscribers).max(1.0),
                ratio(step.delivered_per_sec, bare_step.map(|b| b.delivered_per_sec)),
                step.p50_ms,
                step.p99_ms,
                step.p999_ms,
                step.max_ms,
                step.lost,
                step.duplicated,
                step.errors,
                step.closed,
                step.gap_fills.map_or("-".to_string(), |g| g.to_string()),
                step.server_cores,
                step.bench_cores,
                if step.keeps_up { "yes" } else { "no" }
            );
        }
    }
    let mut all_notes: Vec<String> = notes.to_vec();
    for run in runs {
        all_notes
            .push(format!("{}: setup (users, rooms, {} sockets) took {:.1} s", run.label, run.sockets, run.setup_secs));
        all_notes.extend(run.notes.iter().map(|n| format!("{}: {n}", run.label)));
    }
    notes_list(&mut out, &all_notes);
    let _ = writeln!(out, "\n{}", machine.footer(command));
    out
}

/// The idle-sockets section.
pub fn idle_section(runs: &[IdleRun], notes: &[String], plan: &idle::Plan, machine: &Machine, command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Idle WebSocket sockets (and SSE streams)\n");
    let _ = writeln!(
        out,
        "{sockets} authenticated sockets ({users} users, each socket subscribed to its user's room), opened 64 at a\n\
         time and left idle. Resident memory (`VmRSS` of `/proc/PID/status`, summed over the nodes) of servers\n\
         restarted after the users and rooms were created, once 100 sockets were opened and closed, then with\n\
         every socket open and subscribed (2 s after the last). Target (issue 11): under {target:.0} KiB per socket\n\
         ({total:.0} MiB at 10,000).\n",
        sockets = plan.sockets,
        users = plan.users,
        target = idle::TARGET_KIB_PER_SOCKET,
        total = idle::TARGET_KIB_PER_SOCKET * 10_000.0 / 1024.0,
    );
    let bare = runs.iter().find(|r| r.kind == Kind::Bare).map(|r| r.sockets.kib_each());
    let _ = writeln!(
        out,
        "| target | sockets | RSS before MiB | RSS after MiB | MiB per 1,000 | KiB per socket | vs bare | opened in s | closed |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:.2} | {:.1} | {} | {:.1} | {} |",
            run.label,
            run.sockets.connections,
            run.sockets.rss_before_kib as f64 / 1024.0,
            run.sockets.rss_after_kib as f64 / 1024.0,
            run.sockets.mib_per_thousand(),
            run.sockets.kib_each(),
            if run.kind == Kind::Bare { "-".to_string() } else { times(run.sockets.kib_each(), bare) },
            run.sockets.open_secs,
            run.sockets.closed
        );
    }
    sse_table(&mut out, runs);
    let mut all_notes: Vec<String> = notes.to_vec();
    for run in runs {
        if let Some(setup) = run.rss_setup_kib {
            all_notes.push(format!(
                "{}: {:.1} MiB right after registering the {} users (argon2) and creating their rooms; the \
                 figures above are from a restart on the same data",
                run.label,
                setup as f64 / 1024.0,
                plan.users
            ));
        }
    }
    notes_list(&mut out, &all_notes);
    let _ = writeln!(out, "\n{}", machine.footer(command));
    out
}

/// The replay section.
pub fn replay_section(
    runs: &[ReplayRun],
    notes: &[String],
    plan: &replay::Plan,
    machine: &Machine,
    command: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## WebSocket replay (recovery)\n");
    let _ = writeln!(
        out,
        "A room holds {messages} messages posted over REST; a fresh socket sends `subscribe` with `since: 0`.\n\
         Timed from sending `subscribe` to receiving `subscribed`, after all {messages} replayed `message` frames\n\
         (checked: seqs 1..{messages} in order, `truncated: false`). One warm-up run, then {runs} runs, each on a new\n\
         socket (alternating nodes when there are two). The bare server keeps no history, so it has no figure\n\
         here. Target (issue 4): a 1,000-message replay under {target:.0} ms.\n",
        messages = plan.messages,
        runs = plan.runs,
        target = replay::TARGET_MS,
    );
    let _ = writeln!(out, "| target | messages | median ms | min ms | max ms | runs | warm-up ms |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} | {:.1} |",
            run.label,
            run.messages,
            run.median_ms(),
            run.min_ms(),
            run.max_ms(),
            run.runs_ms.len(),
            run.warmup_ms
        );
    }
    notes_list(&mut out, notes);
    let _ = writeln!(out, "\n{}", machine.footer(command));
    out
}

/// The section's content (without its markers).
pub fn search_section(
    runs: &[SearchRun],
    notes: &[String],
    plan: &search::Plan,
    machine: &Machine,
    command: &str,
) -> String {
    use search::{PAGE_ROWS, TARGET_P99_MS, WARMUP_QUERIES};
    let mut out = String::new();
    let _ = writeln!(out, "## Search\n");
    let _ = writeln!(
        out,
        "{messages} messages in {rooms} rooms, one reader in {member_of} of them; bodies of 4-16 words from a \
         5,000-word vocabulary with Zipf frequencies, loaded through the database's own client (the full-text \
         index grows by its triggers or generated column, row by row). {queries} two-word queries of words of \
         middling frequency (the second as a prefix), one at a time, after {WARMUP_QUERIES} untimed ones: \
         `GET /search` end to end over HTTP; the server's full-text query and a `LIKE '%a%' AND LIKE '%b%'` scan \
         of the reader's rooms (newest first, {PAGE_ROWS} rows, like the index query; {like} queries) timed inside \
         the database by its client. Target (issue 13): p99 under {TARGET_P99_MS:.0} ms over HTTP.\n",
        messages = plan.messages,
        rooms = plan.rooms,
        member_of = plan.member_of,
        queries = plan.queries,
        like = plan.like_queries,
    );
    let _ = writeln!(
        out,
        "| target | load s | GET /search p50 ms | p99 ms | hits per query | index in the DB p50 / p99 ms | LIKE scan in the DB p50 / p99 ms | LIKE p99 / index p99 |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        let (index, like) = (run.index_in_db.quantile(0.99), run.like_in_db.quantile(0.99));
        let ratio = if index > 0.0 { format!("{:.0}x", like / index) } else { "-".to_string() };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {ratio} |",
            run.label,
            run.load_secs,
            run.http.quantile(0.5),
            run.http.quantile(0.99),
            run.mean_hits,
            run.index_in_db.quantile(0.5),
            index,
            run.like_in_db.quantile(0.5),
            like,
        );
    }
    notes_list(&mut out, notes);
    let _ = writeln!(out, "\n{}", machine.footer(command));
    out
}

pub fn webhook_section(
    runs: &[WebhookRun],
    notes: &[String],
    plan: &webhook::Plan,
    machine: &Machine,
    command: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Webhooks\n");
    let _ = writeln!(
        out,
        "One node. {rate} REST sends/s for {seconds} s into {rooms} rooms without webhooks, then into {rooms} rooms \
         with a `message.created` webhook each, POSTed to a receiver in the bench that answers 200 at once (plain \
         http on 127.0.0.1, allowed by `WEBHOOK_ALLOW_HOSTS`). Send latency side by side is the cost on sends; \
         the delay runs from the event's `timestamp` (written in the sending transaction) to its arrival.\n",
        rate = plan.rate,
        seconds = plan.seconds,
        rooms = plan.rooms,
    );
    let _ = writeln!(
        out,
        "| target | sends without webhooks p50 / p99 ms | with webhooks p50 / p99 ms | send errors | delivered | deliveries/s | commit to delivery p50 / p99 / max ms | missing / twice / out of order |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        let _ = writeln!(
            out,
            "| {} | {:.1} / {:.1} | {:.1} / {:.1} | {} / {} | {} | {:.0} | {:.1} / {:.1} / {:.1} | {} / {} / {} |",
            run.label,
            run.without.latency.quantile(0.5),
            run.without.latency.quantile(0.99),
            run.with.latency.quantile(0.5),
            run.with.latency.quantile(0.99),
            run.without.errors,
            run.with.errors,
            run.delivered,
            run.deliveries_per_sec,
            run.delay.quantile(0.5),
            run.delay.quantile(0.99),
            run.delay.quantile(1.0),
            run.missing,
            run.duplicates,
            run.out_of_order,
        );
    }
    notes_list(&mut out, notes);
    let _ = writeln!(out, "\n{}", machine.footer(command));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_file_with_header_and_section() {
        let doc = replace_section("", "rest", "## REST\nnumbers\n");
        assert!(doc.starts_with("# Benchmarks\n"));
        assert!(doc.contains("markers is kept.\n\n<!-- rest:begin -->"), "{doc}");
        assert!(doc.ends_with("<!-- rest:begin -->\n## REST\nnumbers\n<!-- rest:end -->\n"), "{doc}");
    }

    #[test]
    fn rewrites_only_its_own_section() {
        let doc = "# Benchmarks\n\nintro\n\n<!-- rest:begin -->\nold rest\n<!-- rest:end -->\n\n\
                   <!-- ws:begin -->\nws numbers\n<!-- ws:end -->\n\nfooter\n";
        let updated = replace_section(doc, "rest", "new rest");
        assert_eq!(
            updated,
            "# Benchmarks\n\nintro\n\n<!-- rest:begin -->\nnew rest\n<!-- rest:end -->\n\n\
             <!-- ws:begin -->\nws numbers\n<!-- ws:end -->\n\nfooter\n"
        );
        // Applying it twice changes nothing more.
        assert_eq!(replace_section(&updated, "rest", "new rest"), updated);
        // The other section is rewritten the same way, leaving REST alone.
        let ws = replace_section(&updated, "ws", "ws v2");
        assert!(ws.contains("<!-- rest:begin -->\nnew rest\n<!-- rest:end -->"));
        assert!(ws.contains("<!-- ws:begin -->\nws v2\n<!-- ws:end -->"));
    }

    #[test]
    fn appends_a_missing_section_after_existing_text() {
        let doc = "# Benchmarks\n\n<!-- ws:begin -->\nws\n<!-- ws:end -->\n\n\n";
        let updated = replace_section(doc, "rest", "rest");
        assert_eq!(
            updated,
            "# Benchmarks\n\n<!-- ws:begin -->\nws\n<!-- ws:end -->\n\n<!-- rest:begin -->\nrest\n<!-- rest:end -->\n"
        );
    }

    #[test]
    fn an_end_marker_before_the_begin_marker_is_not_a_section() {
        assert!(find_section("<!-- rest:end -->\n<!-- rest:begin -->\n", "rest").is_err());
        assert!(find_section("<!-- rest:begin -->\n", "rest").is_err());
    }

    #[test]
    fn reads_the_machine_from_proc_text() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(memory_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n").as_deref(), Some("23.4 GiB"));
        assert_eq!(memory_total(""), None);
    }

    #[test]
    fn names_make_bench_for_default_flags() {
        assert!(
            command_line("rest", "--duration 10", true)
                .starts_with("`make bench` (this section alone: `make bench BENCH_ARGS=\"rest\"`)")
        );
        assert!(
            command_line("rest", "--duration 3", false)
                .starts_with("`make bench BENCH_ARGS=\"rest --duration 3\"`, which runs `cargo build")
        );
        assert!(command_line("rest", "--duration 3", false).ends_with("chat-server rest --duration 3`"));
    }
}
