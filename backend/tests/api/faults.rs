//! Faults, black-box: the real `chat-server` binary on a PostgreSQL of the test's own (never the
//! machine's shared one, which other tests use at the same time), stopped hard under load and
//! started again. (Redis killed under load is in `ws_cluster.rs`, beside the other cluster tests.)
//!
//! `PrivatePostgres` runs `initdb` and `pg_ctl` from `/usr/lib/postgresql/<version>/bin` (or
//! `PG_BIN_DIR`) on a temporary directory and a free port. `initdb` refuses to run as root, so as
//! root every PostgreSQL command runs as the `postgres` user (`runuser`), which owns the directory.
//! Without the binaries the test is skipped with a warning, or fails under `CI`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cluster::{Node, free_port};
use crate::helpers::*;
use crate::ws_delivery::{assert_exact_seqs, compact, seqs_of};

/// A PostgreSQL server of one test's own: a fresh cluster in a temporary directory, on a free port,
/// trusting local connections. Stopped (immediately) and removed on drop.
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    /// Run the commands as the `postgres` user (we are root).
    as_postgres: bool,
    /// Declared last: removed after the server is stopped.
    dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// `initdb` and start. `None` (after a warning) when the PostgreSQL server binaries are not
    /// installed; under `CI` that fails the test instead.
    pub fn start() -> Option<PrivatePostgres> {
        let Some(bin) = server_bin_dir() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but the PostgreSQL server binaries (initdb) are missing"
            );
            let _ = writeln!(
                std::io::stderr(),
                "WARNING: no /usr/lib/postgresql/*/bin/initdb (set PG_BIN_DIR): a PostgreSQL fault test is SKIPPED."
            );
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("chat-pg-").tempdir().expect("create a temporary directory");
        if as_postgres {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
            assert!(status.is_ok_and(|s| s.success()), "chown the PostgreSQL directory to postgres");
        }
        let pg = PrivatePostgres {
            data: dir.path().join("data"),
            log: dir.path().join("postgres.log"),
            port: free_port(),
            bin,
            as_postgres,
            dir,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                pg.data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        pg.start_again();
        Some(pg)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: every backend is killed, as in a
    /// crash; the next start recovers from the WAL). `PG_STOP_MODE=fast` stops it the polite way
    /// instead (backends end their sessions with FATAL 57P01 `admin_shutdown`).
    pub fn stop_immediately(&self) {
        let mode = std::env::var("PG_STOP_MODE").unwrap_or_else(|_| "immediate".into());
        self.run("pg_ctl", &["stop", "-D", self.data.to_str().unwrap(), "-m", &mode, "-w", "-t", "30"]);
    }

    /// Starts it (again) and waits until it accepts connections.
    pub fn start_again(&self) {
        // fsync off: the machine does not crash in this test, only PostgreSQL does, and the WAL in
        // the OS's cache survives that. The socket goes into our directory, not /run/postgresql.
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.port,
            self.dir.path().display()
        );
        let (data, log) = (self.data.to_str().unwrap(), self.log.to_str().unwrap());
        self.run("pg_ctl", &["start", "-D", data, "-l", log, "-w", "-t", "60", "-o", &options]);
    }

    /// Runs one of the PostgreSQL binaries (as `postgres` when we are root); panics with its output
    /// and the server log if it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(&program);
            cmd
        } else {
            Command::new(&program)
        };
        let output = cmd
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        if !output.status.success() {
            panic!(
                "{} {args:?} failed ({}):\n{}{}\n--- server log ---\n{}",
                program.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Never panic here; a server already stopped makes pg_ctl fail, which is fine.
        let program = self.bin.join("pg_ctl");
        let data = self.data.to_str().unwrap_or_default();
        let args = ["stop", "-D", data, "-m", "immediate", "-w", "-t", "30"];
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(&program);
            cmd
        } else {
            Command::new(&program)
        };
        let _ = cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`, or `PG_BIN_DIR`.
fn server_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return Some(PathBuf::from(dir)).filter(|d| d.join("initdb").exists());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // "Uid:	real	effective	saved	fs"
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1)) == Some("0")
}

/// What one HTTP attempt got.
#[derive(Debug)]
struct Attempt {
    /// Since the load started.
    at: Duration,
    took: Duration,
    /// The status, or the transport error.
    outcome: Result<u16, String>,
    /// For a 503: problem+json with `code: service_unavailable` and a `Retry-After`.
    well_formed_503: bool,
}

/// A send that got its 2xx: what the client was told.
#[derive(Debug)]
struct Acked {
    key: String,
    message: Value,
}

/// How long any one request may take, outage or not: the pool's checkout timeout (5 s) for the
/// read-side checks, and as much again for the writer's connection, plus slack for a busy machine.
const REQUEST_BOUND: Duration = Duration::from_secs(14);

/// What the senders share: when the load started, when to stop, and what they saw.
struct Load {
    started: Instant,
    stop: std::sync::atomic::AtomicBool,
    attempts: Mutex<Vec<Attempt>>,
    acked: Mutex<Vec<Acked>>,
}

/// One sender: sends `body = key` with `Idempotency-Key: key`, retrying with the same key after a
/// 503 or a transport error, until it gets a 2xx; new keys until `load.stop` is set.
async fn send_until_stopped(app: &TestApp, token: &str, room_id: i64, worker: usize, load: &Load) {
    let Load { started, stop, attempts, acked } = load;
    let started = *started;
    let client = reqwest::Client::builder().timeout(REQUEST_BOUND).build().expect("an HTTP client");
    let url = app.url(&format!("/api/v1/rooms/{room_id}/messages"));
    let mut i = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        i += 1;
        let key = format!("w{worker}-{i}");
        loop {
            let t = Instant::now();
            let sent = client
                .post(&url)
                .bearer_auth(token)
                .header("Idempotency-Key", &key)
                .json(&json!({"body": key}))
                .send()
                .await;
            let at = t.duration_since(started);
            match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp.headers().get("retry-after").is_some();
                    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    let took = t.elapsed();
                    let well_formed_503 = status == StatusCode::SERVICE_UNAVAILABLE
                        && retry_after
                        && ct.starts_with("application/problem+json")
                        && body["code"] == "service_unavailable"
                        && body["status"] == 503;
                    attempts.lock().unwrap().push(Attempt { at, took, outcome: Ok(status.as_u16()), well_formed_503 });
                    if status.is_success() {
                        acked.lock().unwrap().push(Acked { key: key.clone(), message: body });
                        break;
                    }
                    if status != StatusCode::SERVICE_UNAVAILABLE {
                        // Recorded; the test fails on it. Stop this worker rather than spin.
                        return;
                    }
                }
                Err(e) => {
                    let took = t.elapsed();
                    attempts.lock().unwrap().push(Attempt {
                        at,
                        took,
                        outcome: Err(e.to_string()),
                        well_formed_503: false,
                    });
                }
            }
            // Sooner than Retry-After (2 s) says: this test wants many attempts during the outage.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One reader: the room's latest page and the caller's room list in turn, until `load.stop`; each
/// answer is recorded like a send's (a 2xx, or a 503 problem with `Retry-After`).
async fn read_until_stopped(app: &TestApp, token: &str, room_id: i64, load: &Load) {
    let client = reqwest::Client::builder().timeout(REQUEST_BOUND).build().expect("an HTTP client");
    let paths = [format!("/api/v1/rooms/{room_id}/messages?limit=20"), "/api/v1/rooms".to_owned()];
    for path in paths.iter().cycle() {
        if load.stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let t = Instant::now();
        let at = t.duration_since(load.started);
        let attempt = match client.get(app.url(path)).bearer_auth(token).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp.headers().get("retry-after").is_some();
                let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let well_formed_503 = status == 503
                    && retry_after
                    && ct.starts_with("application/problem+json")
                    && body["code"] == "service_unavailable";
                Attempt { at, took: t.elapsed(), outcome: Ok(status), well_formed_503 }
            }
            Err(e) => Attempt { at, took: t.elapsed(), outcome: Err(e.to_string()), well_formed_503: false },
        };
        load.attempts.lock().unwrap().push(attempt);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/readyz` every 200 ms until `stop`: (since the load started, status or error).
async fn poll_readyz(
    app: &TestApp,
    started: Instant,
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<(Duration, Result<u16, String>)> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("an HTTP client");
    let mut seen = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let at = started.elapsed();
        let got = client.get(app.url("/readyz")).send().await.map(|r| r.status().as_u16()).map_err(|e| e.to_string());
        seen.push((at, got));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen
}

/// Every message of a room, oldest first, paged over REST.
async fn whole_history(app: &TestApp, token: &str, room_id: i64) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    loop {
        let after = all.last().map_or(0, |m| m["seq"].as_i64().unwrap());
        let page = app.history_page(token, room_id, &format!("after={after}&limit=100")).await;
        let items = items(&page).clone();
        if items.is_empty() {
            return all;
        }
        all.extend(items);
    }
}

mod postgres {
    use super::*;

    /// PostgreSQL stopped hard (`-m immediate`; `PG_STOP_MODE=fast` tries the polite way) under
    /// four concurrent REST senders and a reader, and started again 4 s later. Meanwhile every request is answered within `REQUEST_BOUND`, by a 2xx or a
    /// 503 problem with `Retry-After` (never a 500); `/readyz` says 503, then 200 again. Afterwards
    /// every acknowledged message is in the history, which is exactly one message per key with seqs
    /// 1..N; the same server process goes on serving.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fault_postgres_restarted_under_load_loses_no_acknowledged_message() {
        const WORKERS: usize = 4;
        const BEFORE: Duration = Duration::from_millis(1500);
        const OUTAGE: Duration = Duration::from_secs(4);
        const AFTER: Duration = Duration::from_secs(3);
        let Some(pg) = tokio::task::spawn_blocking(PrivatePostgres::start).await.unwrap() else { return };
        let pg = Arc::new(pg);
        // No REDIS_URL: one node, fanning out in process. No per-user or per-address limit: the
        // senders are one user at full speed, and a 429 is not what this test is about.
        let env = [
            ("DATABASE_URL", pg.url()),
            ("RATE_LIMIT_USER", "off".to_owned()),
            ("RATE_LIMIT_ADDRESS", "off".to_owned()),
            ("RATE_LIMIT_SENDS", "off".to_owned()),
        ];
        let mut node = Node::start_with_env(&env).await;
        let app = &node.app;
        let alice = app.new_user().await;
        let room_id = app.room_id(&alice, "public").await;

        let stop_readyz = std::sync::atomic::AtomicBool::new(false);
        let load = Load {
            started: Instant::now(),
            stop: std::sync::atomic::AtomicBool::new(false),
            attempts: Mutex::new(Vec::new()),
            acked: Mutex::new(Vec::new()),
        };
        let started = load.started;
        let (mut stopped_at, mut restarted_at) = (Duration::ZERO, Duration::ZERO);
        let outage = async {
            tokio::time::sleep(BEFORE).await;
            stopped_at = started.elapsed();
            let pg2 = Arc::clone(&pg);
            tokio::task::spawn_blocking(move || pg2.stop_immediately()).await.unwrap();
            tokio::time::sleep(OUTAGE).await;
            let pg2 = Arc::clone(&pg);
            tokio::task::spawn_blocking(move || pg2.start_again()).await.unwrap();
            restarted_at = started.elapsed();
            tokio::time::sleep(AFTER).await;
            load.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        };
        let senders = futures_util::future::join_all(
            (0..WORKERS).map(|w| send_until_stopped(app, &alice.token, room_id, w, &load)),
        );
        let reader = read_until_stopped(app, &alice.token, room_id, &load);
        let readyz = poll_readyz(app, started, &stop_readyz);
        let driving = async {
            tokio::join!(outage, senders, reader);
            // A last look at /readyz once every sender is through.
            tokio::time::sleep(Duration::from_millis(400)).await;
            stop_readyz.store(true, std::sync::atomic::Ordering::Relaxed);
        };
        let ((), readyz) = tokio::join!(driving, readyz);
        let attempts = load.attempts.into_inner().unwrap();
        let acked = load.acked.into_inner().unwrap();
        let summary = format!(
            "PostgreSQL stopped at {stopped_at:?}, back at {restarted_at:?}; {} attempts, {} acked; statuses: {}",
            attempts.len(),
            acked.len(),
            status_counts(&attempts)
        );
        eprintln!("{summary}; slowest {:?}", attempts.iter().map(|a| a.took).max());

        // Every attempt answered, in time, with a 2xx or a well-formed 503.
        for a in &attempts {
            assert!(a.took < REQUEST_BOUND, "an attempt took {:?} (at {:?}): {a:?}\n{summary}", a.took, a.at);
            match a.outcome {
                Ok(200 | 201) => {}
                Ok(503) => assert!(a.well_formed_503, "a 503 without problem+json and Retry-After: {a:?}"),
                _ => panic!("an attempt got {:?} at {:?}; expected 2xx or 503\n{summary}", a.outcome, a.at),
            }
        }
        let unavailable = attempts.iter().filter(|a| a.outcome == Ok(503)).count();
        assert!(unavailable > 0, "no request met the outage\n{summary}");

        // /readyz: 503 while PostgreSQL was down, 200 before and at the end.
        let readyz_text = format!("{readyz:?}");
        assert!(
            readyz.iter().any(|(at, s)| *at > stopped_at && *at < restarted_at && *s == Ok(503)),
            "/readyz never said 503 during the outage: {readyz_text}"
        );
        assert!(readyz.iter().all(|(_, s)| matches!(s, Ok(200 | 503))), "/readyz answered 200 or 503: {readyz_text}");
        assert_eq!(readyz.last().map(|(_, s)| s.clone()), Some(Ok(200)), "/readyz is 200 again: {readyz_text}");

        // Nothing acknowledged is lost; nothing is stored twice; no seq is skipped.
        let history = whole_history(app, &alice.token, room_id).await;
        assert_exact_seqs(&seqs_of(&history), 1, history.len() as i64, "the history after the outage");
        let mut bodies: Vec<&str> = history.iter().map(|m| m["body"].as_str().unwrap()).collect();
        bodies.sort_unstable();
        let total = bodies.len();
        bodies.dedup();
        assert_eq!(bodies.len(), total, "a key was stored twice: seqs {}", compact(&seqs_of(&history)));
        assert_eq!(total, acked.len(), "every key was acknowledged once in the end, and stored once\n{summary}");
        for Acked { key, message } in &acked {
            let seq = message["seq"].as_i64().unwrap_or_else(|| panic!("the ack of {key} is a message: {message}"));
            assert_eq!(&history[(seq - 1) as usize], message, "the ack of {key} is what the history holds");
            assert_eq!(message["body"], key.as_str());
        }

        // The same process serves on.
        let m = app.send(&alice, room_id, "after the outage").await;
        assert_eq!(m["seq"], total as i64 + 1);
        assert!(node.wait_exit(Duration::ZERO).await.is_none(), "the server exited:\n{}", node.logs());
        let logs = node.logs();
        assert!(!logs.contains("panicked"), "the server panicked:\n{logs}");
        drop(pg);
    }
}

fn status_counts(attempts: &[Attempt]) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for a in attempts {
        let key = match &a.outcome {
            Ok(s) => s.to_string(),
            Err(e) => format!("error {e}"),
        };
        *counts.entry(key).or_default() += 1;
    }
    format!("{counts:?}")
}
