//! `chat-bench`: how fast `send_message` is over REST, and whether every accepted message is kept.
//!
//! Layout:
//! - `main.rs`     flags, one run per backend, the exit code
//! - `server.rs`   the `chat-server` child process: start it on a free port, read that port from its log, stop it
//! - `postgres.rs` a throwaway database per run (`chat_bench_<pid>`), created and dropped with `psql`
//! - `load.rs`     the API calls: setup (user, rooms, API token), the timed send loop, the history check
//! - `report.rs`   the table, the machine description, and rewriting one section of `bench/results.md`
//!
//! It builds nothing itself: `make bench` runs `cargo build --release -p backend -p chat-bench` first.
//! Every request goes to the server it started on 127.0.0.1; the loop stops at a deadline.

mod load;
mod postgres;
mod report;
mod server;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use crate::load::{Outcome, Target};
use crate::report::{Row, RowResult};
use crate::server::Server;

/// Flags. The defaults are what `make bench` runs and what `bench/results.md` reports.
#[derive(Parser, Debug)]
#[command(name = "chat-bench", version, about)]
struct Args {
    /// Seconds of measured sending per backend, after the warm-up.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    duration: u64,

    /// Requests in flight at once (one task each, over a keep-alive connection pool).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,

    /// Seconds of sending before the measurement, into a separate room; not counted.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=60))]
    warmup: u64,

    /// Backends to measure, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Backend::Sqlite, Backend::Postgres])]
    backends: Vec<Backend>,

    /// The server binary (a release build).
    #[arg(long, default_value = "target/release/chat-server")]
    server_bin: PathBuf,

    /// PostgreSQL server (loopback only) in which the bench creates and drops its database; no database name.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pg_url: String,

    /// Results file: only its REST section (between `<!-- rest:begin -->` and `<!-- rest:end -->`) is rewritten.
    #[arg(long, default_value = "bench/results.md")]
    results: PathBuf,

    /// Print the results only; leave the results file alone.
    #[arg(long)]
    no_write: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Args {
    /// The flags that reproduce this run, spelled out in full for the results file.
    fn reproduce_flags(&self) -> String {
        let backends: Vec<&str> = self
            .backends
            .iter()
            .map(|b| match b {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            })
            .collect();
        format!(
            "--duration {} --concurrency {} --warmup {} --backends {}",
            self.duration,
            self.concurrency,
            self.warmup,
            backends.join(",")
        )
    }

    fn is_default_run(&self) -> bool {
        self.duration == 10
            && self.concurrency == 32
            && self.warmup == 2
            && self.backends == [Backend::Sqlite, Backend::Postgres]
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("chat-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mut args: Args) -> Result<ExitCode> {
    args.backends.dedup();
    let server_bin = args.server_bin.canonicalize().with_context(|| {
        format!(
            "server binary {} not found; build it with `cargo build --release -p backend` (`make bench` does)",
            args.server_bin.display()
        )
    })?;
    postgres::check_loopback(&args.pg_url)?;

    let plan = load::Plan {
        concurrency: usize::try_from(args.concurrency).context("concurrency")?,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration),
    };
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut failed = false;

    for backend in args.backends.clone() {
        let (label, result) = match backend {
            Backend::Sqlite => ("SQLite".to_string(), bench_backend(&server_bin, None, &plan).await),
            Backend::Postgres => match postgres::server_version(&args.pg_url).await {
                Err(why) => {
                    let note = format!("PostgreSQL skipped: {why}.");
                    eprintln!("chat-bench: {note}");
                    notes.push(note);
                    continue;
                }
                Ok(version) => {
                    let label = format!("PostgreSQL {version}");
                    let result = match postgres::TempDatabase::create(&args.pg_url).await {
                        Err(err) => Err(err),
                        Ok(db) => {
                            eprintln!("chat-bench: created database {}", db.name());
                            let result = bench_backend(&server_bin, Some(db.url()), &plan).await;
                            // Dropped whatever the run did, so a failed run leaves no database behind.
                            if let Err(err) = db.drop_database().await {
                                eprintln!("chat-bench: {err:#}");
                            }
                            result
                        }
                    };
                    (label, result)
                }
            },
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

    let machine = report::Machine::describe();
    let command = report::command_line(&args.reproduce_flags(), args.is_default_run());
    let section = report::rest_section(&rows, &notes, &plan, &machine, &command);
    println!("{section}");

    if failed {
        eprintln!("chat-bench: a run failed or did not verify; {} left unchanged", args.results.display());
        return Ok(ExitCode::FAILURE);
    }
    if rows.is_empty() {
        eprintln!("chat-bench: nothing was measured; {} left unchanged", args.results.display());
        return Ok(ExitCode::SUCCESS);
    }
    if !args.no_write {
        write_results(&args.results, &section)?;
        eprintln!("chat-bench: wrote {}", args.results.display());
    }
    Ok(ExitCode::SUCCESS)
}

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

fn write_results(path: &Path, section: &str) -> Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    if !existing.is_empty() && report::find_section(&existing, report::REST_SECTION).is_err() {
        // Markers half there or out of order: refuse rather than guess which text is ours.
        if existing.contains(&report::begin_marker(report::REST_SECTION))
            || existing.contains(&report::end_marker(report::REST_SECTION))
        {
            bail!("{}: the rest:begin / rest:end markers are broken; fix them by hand", path.display());
        }
    }
    let updated = report::replace_section(&existing, report::REST_SECTION, section);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}
