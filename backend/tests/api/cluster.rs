//! A cluster for the multi-process tests: `chat-server` processes (the real binary) sharing a fresh
//! PostgreSQL database, one `JWT_SECRET`, and a Redis started by the test on its own free port. The
//! test can kill and restart Redis, and send SIGTERM to a node. Everything is killed on drop.
//!
//! Nodes log to pipes that a thread per process drains (so the server never blocks on its
//! output); the lines are kept for failure messages and echoed to stderr with `TEST_LOG=1`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::helpers::{JWT_SECRET, PgTestDatabase, TestApp, TestDb};

/// How long a node may take to start (migrations included) and Redis to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A free TCP port on 127.0.0.1 (free when this returns; the OS does not hand it out again soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("its address").port()
}

/// Whether the cluster tests can run here: PostgreSQL answers and `redis-server` is installed.
/// Under `CI` a missing one fails the test; otherwise it is skipped with a warning.
pub fn cluster_available() -> bool {
    if !TestDb::Postgres.is_available() {
        return false;
    }
    let found = Command::new("redis-server").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if found.is_ok_and(|s| s.success()) {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI is set but `redis-server` is not installed");
    let _ = writeln!(std::io::stderr(), "WARNING: `redis-server` is not installed: a multi-process test is SKIPPED.");
    false
}

/// Lines a child process wrote, shared with the thread that reads them.
type Log = Arc<Mutex<Vec<String>>>;

/// Reads `pipe` line by line into `log` until it closes; sends each line to `lines` too.
fn drain(pipe: impl Read + Send + 'static, name: String, log: Log, lines: Option<mpsc::Sender<String>>) {
    std::thread::spawn(move || {
        let echo = std::env::var_os("TEST_LOG").is_some();
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if echo {
                let _ = writeln!(std::io::stderr(), "[{name}] {line}");
            }
            if let Some(tx) = &lines {
                let _ = tx.send(line.clone());
            }
            log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    });
}

/// A `redis-server` on its own port, without persistence.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let mut redis = RedisServer { port: free_port(), child: None };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it at once (SIGKILL): every connection drops.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port, empty, and waits until it answers PING.
    pub async fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let port = self.port;
        let deadline = Instant::now() + START_TIMEOUT;
        while !redis_answers(port) {
            assert!(Instant::now() < deadline, "redis-server on port {port} does not answer");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn redis_answers(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
    if conn.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    conn.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How a node is started, besides the cluster's database, Redis and secret.
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// `DRAIN_SECONDS`, when set.
    pub drain_seconds: Option<u64>,
    /// Other variables to set (`WEBHOOK_ALLOW_HOSTS`, ...).
    pub env: Vec<(&'static str, String)>,
}

/// One `chat-server` process, and a `TestApp` that talks to it.
pub struct Node {
    pub app: TestApp,
    pub pid: u32,
    child: Child,
    log: Log,
    _data_dir: tempfile::TempDir,
}

impl Node {
    /// Starts the binary on a free port and waits for its `listening on` line.
    pub async fn start(database_url: &str, redis_url: &str, options: &NodeOptions) -> Node {
        let mut env = vec![("DATABASE_URL", database_url.to_owned()), ("REDIS_URL", redis_url.to_owned())];
        if let Some(drain) = options.drain_seconds {
            env.push(("DRAIN_SECONDS", drain.to_string()));
        }
        env.extend(options.env.iter().cloned());
        Node::start_with_env(&env).await
    }

    /// One node on its own: SQLite in its data directory, no Redis, and `env` on top (which may
    /// override `RUST_LOG`, or set `LOG_FORMAT`).
    pub async fn start_with_env(env: &[(&str, String)]) -> Node {
        let data_dir = tempfile::tempdir().expect("create a data directory");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-server"));
        // Only what we set: nothing from this environment (or a `.env` file) leaks in.
        cmd.env_clear()
            .current_dir(data_dir.path())
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("DATA_DIR", data_dir.path())
            .env("JWT_SECRET", JWT_SECRET)
            .env("RUST_LOG", std::env::var("TEST_NODE_LOG").unwrap_or_else(|_| "info".into()))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            cmd.env(name, value);
        }
        let mut child = cmd.spawn().expect("start chat-server");
        let pid = child.id();
        let log: Log = Arc::default();
        let (tx, rx) = mpsc::channel();
        drain(child.stdout.take().unwrap(), format!("node {pid}"), Arc::clone(&log), Some(tx.clone()));
        drain(child.stderr.take().unwrap(), format!("node {pid}"), Arc::clone(&log), Some(tx));
        let port = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let line = rx.recv_timeout(left).ok()?;
                if let Some(port) = listening_port(&line) {
                    return Some(port);
                }
            }
        })
        .await
        .expect("wait for the node");
        let Some(port) = port else {
            let status = child.try_wait().ok().flatten();
            let _ = child.kill();
            let _ = child.wait();
            let output = log.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
            panic!("chat-server did not start (exit: {status:?}); its output:\n{output}");
        };
        Node { app: TestApp::at(format!("http://127.0.0.1:{port}")), pid, child, log, _data_dir: data_dir }
    }

    /// Everything the node logged so far.
    pub fn logs(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).join("\n")
    }

    /// Sends SIGTERM, as an orchestrator does.
    pub fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid);
    }

    /// Waits for the process to exit; `None` if it is still running after `wait`.
    pub async fn wait_exit(&mut self, wait: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().expect("query the child") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The port of a `listening on http://127.0.0.1:PORT` log line.
fn listening_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("listening on http://")? + "listening on http://".len()..];
    let addr: String =
        rest.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']')).collect();
    addr.rsplit_once(':')?.1.parse().ok()
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Nodes sharing one database, one Redis and one secret. Dropped in field order: the nodes, then
/// Redis, then the database.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub redis: RedisServer,
    options: NodeOptions,
    db: PgTestDatabase,
}

impl Cluster {
    /// `n` nodes, started one after the other (the first runs the migrations). `None` when the
    /// cluster tests cannot run here (see `cluster_available`).
    pub async fn start(n: usize, options: NodeOptions) -> Option<Cluster> {
        if !cluster_available() {
            return None;
        }
        let db = tokio::task::spawn_blocking(PgTestDatabase::create).await.expect("create the test database");
        let redis = RedisServer::start().await;
        let mut cluster = Cluster { nodes: Vec::new(), redis, options, db };
        for _ in 0..n {
            cluster.add_node().await;
        }
        Some(cluster)
    }

    /// Starts one more node; returns its index.
    pub async fn add_node(&mut self) -> usize {
        let node = Node::start(&self.db.url, &self.redis.url(), &self.options).await;
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Node `i`'s client.
    pub fn app(&self, i: usize) -> &TestApp {
        &self.nodes[i].app
    }

    /// The last lines of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        const LAST: usize = 200;
        let mut out = String::new();
        for node in &self.nodes {
            let log = node.log.lock().unwrap_or_else(|p| p.into_inner());
            let from = log.len().saturating_sub(LAST);
            out.push_str(&format!(
                "--- node {} ({}), last {} lines ---\n",
                node.pid,
                node.app.address,
                log.len() - from
            ));
            for line in &log[from..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Cluster {
    /// A failed test shows what the nodes logged (the harness prints a failing test's output).
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}
