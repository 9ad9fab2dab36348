//! The results: a markdown table, the machine it ran on, and the exact command, written into one marked
//! section of `bench/results.md`.
//!
//! Each benchmark owns the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` and rewrites only
//! that, so other sections (a later WebSocket fan-out bench) and hand-written text around them survive.

use std::fmt::Write as _;

use anyhow::{Result, bail};

use crate::load::{Outcome, Plan};

/// The marker name of the REST `send_message` section.
pub const REST_SECTION: &str = "rest";

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
        }
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

/// The command that reproduces the run: `make bench` when the flags are its defaults, and the direct call.
pub fn command_line(flags: &str, is_default: bool) -> String {
    let direct = format!("cargo build --release -p backend -p chat-bench && target/release/chat-bench {flags}");
    if is_default {
        format!("`make bench`, which runs `{direct}`")
    } else {
        format!("`make bench BENCH_ARGS=\"{flags}\"`, which runs `{direct}`")
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
    let _ = writeln!(
        out,
        "\nMachine: {}, {} cores, {} memory, Linux {}. Run: {}.\n\nCommand: {command}",
        machine.cpu, machine.cores, machine.memory, machine.kernel, machine.date
    );
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
        assert!(command_line("--duration 10", true).starts_with("`make bench`, which runs `cargo build"));
        assert!(command_line("--duration 3", false).starts_with("`make bench BENCH_ARGS=\"--duration 3\"`"));
    }
}
