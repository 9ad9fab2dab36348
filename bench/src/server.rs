//! The `chat-server` child process.
//!
//! It is started with `BIND_ADDR=127.0.0.1:0`, so the kernel picks a free port and the server's log line
//! `listening on http://127.0.0.1:PORT` is the only place that says which. Both output pipes are read
//! for the whole life of the process: a pipe nobody drains fills up and then blocks the server's logging.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// What the server prints once its listener is bound; the address follows it.
const LISTENING_PREFIX: &str = "listening on http://";
/// `RATE_LIMIT_*` for benchmark servers: on, but never reached (see `Server::launch`).
const UNREACHED_RATE: &str = "100000000/s";
/// Start-up includes running the migrations; a cold PostgreSQL can take a few seconds.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// After SIGTERM the server drains sockets and in-flight requests; past this it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Log lines kept to explain a server that died or never said where it listens.
const LOG_TAIL_LINES: usize = 40;

pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, from the server's own log line.
    base_url: String,
    /// The last lines the server printed, for error messages.
    log_tail: Arc<Mutex<VecDeque<String>>>,
}

/// How to start one server process. `bin` runs in `data_dir`, on `127.0.0.1:0`.
pub struct Launch<'a> {
    pub bin: &'a Path,
    /// Arguments after the binary (`bare-server` for the bench's own yardstick server).
    pub args: &'a [&'a str],
    pub data_dir: &'a Path,
    /// Set on top of the clean environment (`DATABASE_URL`, `REDIS_URL`, `JWT_SECRET`, ...).
    pub env: Vec<(&'static str, String)>,
}

impl Server {
    /// Starts `bin` with a SQLite database in `data_dir` (or `database_url`), and waits until it listens.
    pub async fn start(bin: &Path, data_dir: &Path, database_url: Option<&str>) -> Result<Server> {
        let env = database_url.map(|url| ("DATABASE_URL", url.to_string())).into_iter().collect();
        Server::launch(Launch { bin, args: &[], data_dir, env }).await
    }

    /// Starts a process as `launch` says, and waits until it logs the address it listens on.
    pub async fn launch(launch: Launch<'_>) -> Result<Server> {
        let Launch { bin, args, data_dir, env } = launch;
        let mut command = Command::new(bin);
        command
            .args(args)
            .current_dir(data_dir)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("DATA_DIR", data_dir)
            .env("RUST_LOG", "warn,backend=info")
            .env("NO_COLOR", "1")
            // Whatever the caller's shell has set, the run's configuration is only what `env` says.
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("LOG_FORMAT")
            .env_remove("STATIC_DIR")
            .env_remove("JWT_SECRET")
            .env_remove("ACCESS_TOKEN_TTL")
            .env_remove("TRUSTED_PROXIES")
            // The load comes from one address with one token, far above what the server lets one
            // client do by default. The limits stay on (their cost is part of what is measured), at
            // a rate no run reaches.
            .env("RATE_LIMIT_USER", UNREACHED_RATE)
            .env("RATE_LIMIT_SENDS", UNREACHED_RATE)
            .env("RATE_LIMIT_ADDRESS", UNREACHED_RATE)
            .env("RATE_LIMIT_LOGIN", UNREACHED_RATE)
            .env("RATE_LIMIT_LOGIN_USERNAME", UNREACHED_RATE)
            .env("RATE_LIMIT_REGISTER", UNREACHED_RATE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // If the bench itself fails or panics, the server does not outlive it.
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        // SAFETY: between fork and exec only prctl(2) runs, which is async-signal-safe and touches no memory
        // of the parent. It kills the child when the thread that started it dies, so that a bench killed
        // by a signal (where `kill_on_drop` never runs) leaves no server behind.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().with_context(|| format!("starting {}", bin.display()))?;

        let log_tail = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL_LINES)));
        let (addr_tx, mut addr_rx) = mpsc::channel::<String>(2);
        // `expect`: both pipes were requested just above, so they are there.
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        tokio::spawn(read_log(stdout, addr_tx.clone(), log_tail.clone()));
        tokio::spawn(read_log(stderr, addr_tx, log_tail.clone()));

        let waited = tokio::time::timeout(START_TIMEOUT, async {
            tokio::select! {
                addr = addr_rx.recv() => addr.ok_or_else(|| anyhow!("the server closed its output without a `{LISTENING_PREFIX}` line")),
                status = child.wait() => Err(anyhow!("the server exited during start-up ({})", describe_status(status))),
            }
        })
        .await;
        let addr = match waited {
            Ok(Ok(addr)) => addr,
            Ok(Err(err)) => bail!("{err}\n{}", tail_text(&log_tail)),
            Err(_) => {
                bail!("no `{LISTENING_PREFIX}` line within {}s\n{}", START_TIMEOUT.as_secs(), tail_text(&log_tail))
            }
        };
        check_loopback(&addr)?;
        Ok(Server { child, base_url: format!("http://{addr}"), log_tail })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The process id, while it runs (for reading its memory from `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM, then wait for the graceful shutdown; SIGKILL if it takes longer than `STOP_TIMEOUT`.
    pub async fn stop(self) -> Result<()> {
        self.stop_noting().await.map(|_| ())
    }

    /// Like `stop`, and says how the server ended when that was not a clean exit after SIGTERM (a crash
    /// on the way out is a finding), with its last log line.
    pub async fn stop_noting(mut self) -> Result<Option<String>> {
        let Some(pid) = self.child.id() else {
            bail!("the server had already exited\n{}", tail_text(&self.log_tail));
        };
        let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
        // SAFETY: kill(2) has no memory effects; `pid` is our own child, not yet reaped (`id()` is Some).
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        if sent != 0 {
            return Err(std::io::Error::last_os_error()).context("sending SIGTERM to the server");
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status.context("waiting for the server")?;
                if status.success() {
                    return Ok(None);
                }
                eprintln!("chat-bench: the server exited with {status} after SIGTERM\n{}", tail_text(&self.log_tail));
                // `expect`: see `read_log`.
                let last = self.log_tail.lock().expect("log tail lock").back().cloned().unwrap_or_default();
                Ok(Some(format!("exited with {status} after SIGTERM (last log line: `{}`)", last.trim())))
            }
            Err(_) => {
                self.child.kill().await.context("killing the server")?;
                bail!("the server did not exit within {}s of SIGTERM; killed", STOP_TIMEOUT.as_secs())
            }
        }
    }
}

/// Reads one output pipe to its end: keeps a tail and reports the first listening address.
async fn read_log(pipe: impl AsyncRead + Unpin, addr_tx: mpsc::Sender<String>, log_tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(pipe).lines();
    let mut reported = false;
    while let Ok(Some(line)) = lines.next_line().await {
        if !reported && let Some(addr) = parse_listening_addr(&line) {
            reported = true;
            // The receiver is gone once start-up is over; later lines only feed the tail.
            let _ = addr_tx.send(addr).await;
        }
        // `expect`: the lock is only held for this push, never across an await, so it cannot be poisoned.
        let mut tail = log_tail.lock().expect("log tail lock");
        if tail.len() == LOG_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// `host:port` from a line containing `listening on http://host:port`, in plain or JSON log format.
pub fn parse_listening_addr(line: &str) -> Option<String> {
    let start = line.find(LISTENING_PREFIX)? + LISTENING_PREFIX.len();
    let addr: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']' | '-'))
        .collect();
    // A port is required: with BIND_ADDR=...:0 the port is the whole point of the line.
    let (_, port) = addr.rsplit_once(':')?;
    port.parse::<u16>().ok().filter(|p| *p != 0)?;
    Some(addr)
}

/// The bench only ever sends to this machine's loopback interface.
fn check_loopback(addr: &str) -> Result<()> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("the server says it listens on {addr}, which is not a loopback address");
    }
    Ok(())
}

fn describe_status(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(err) => format!("wait failed: {err}"),
    }
}

fn tail_text(log_tail: &Mutex<VecDeque<String>>) -> String {
    // `expect`: see `read_log`.
    let tail = log_tail.lock().expect("log tail lock");
    if tail.is_empty() {
        return "(the server printed nothing)".to_string();
    }
    let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
    format!("last lines of the server's log:\n  {}", lines.join("\n  "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_a_plain_log_line() {
        let line = "2026-01-01T00:00:00.000000Z  INFO backend: listening on http://127.0.0.1:40123";
        assert_eq!(parse_listening_addr(line).as_deref(), Some("127.0.0.1:40123"));
    }

    #[test]
    fn finds_the_address_in_a_json_log_line() {
        let line = r#"{"level":"INFO","fields":{"message":"listening on http://127.0.0.1:5555","addr":"x"}}"#;
        assert_eq!(parse_listening_addr(line).as_deref(), Some("127.0.0.1:5555"));
    }

    #[test]
    fn stops_at_colour_codes_and_paths() {
        assert_eq!(
            parse_listening_addr("listening on http://127.0.0.1:8080\u{1b}[0m").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(parse_listening_addr("listening on http://[::1]:9000/ now").as_deref(), Some("[::1]:9000"));
    }

    #[test]
    fn ignores_lines_without_a_real_port() {
        assert_eq!(parse_listening_addr("starting; will be listening on http://127.0.0.1:0"), None);
        assert_eq!(parse_listening_addr("listening on http://localhost"), None);
        assert_eq!(parse_listening_addr("migrations done"), None);
    }

    #[test]
    fn accepts_only_loopback() {
        assert!(check_loopback("127.0.0.1:1").is_ok());
        assert!(check_loopback("[::1]:1").is_ok());
        assert!(check_loopback("localhost:1").is_ok());
        assert!(check_loopback("10.0.0.1:1").is_err());
        assert!(check_loopback("0.0.0.0:1").is_err());
    }
}
