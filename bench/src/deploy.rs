//! What the WebSocket benchmarks run against: the bare yardstick server, one `chat-server` on SQLite with
//! the in-process broker, or two `chat-server` nodes sharing a fresh PostgreSQL database and Redis.
//!
//! Every process is a child started on `127.0.0.1:0`; `stop` ends them (SIGTERM, then SIGKILL) and drops
//! the database, and so does an error on the way up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::postgres::{self, TempDatabase};
use crate::server::{Launch, Server};

/// Where the processes come from.
pub struct Binaries {
    pub server: PathBuf,
    /// This very binary, started as `chat-bench bare-server`.
    pub bench: PathBuf,
    pub pg_url: String,
    pub redis_url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The yardstick: no auth, no database, no REST.
    Bare,
    /// One node, SQLite, in-process broker.
    Sqlite,
    /// Two nodes on one PostgreSQL database, fanning out through Redis.
    Postgres,
}

/// One running node.
pub struct Node {
    pub server: Server,
    pub base_url: String,
    pub ws_url: String,
    /// How it was started, to start it again.
    bin: PathBuf,
    args: Vec<&'static str>,
    env: Vec<(&'static str, String)>,
    data_dir: PathBuf,
}

pub struct Deployment {
    pub kind: Kind,
    /// As the tables show it: `SQLite, 1 node`, `PostgreSQL 15.20 + Redis, 2 nodes`, ...
    pub label: String,
    pub nodes: Vec<Node>,
    database: Option<TempDatabase>,
    _data_dirs: Vec<TempDir>,
    /// How nodes ended that did not exit cleanly when restarted.
    pub unclean_restarts: Vec<String>,
}

impl Deployment {
    /// Starts the processes; `Ok(Err(reason))` when this kind cannot run here (no PostgreSQL, no Redis).
    pub async fn start(kind: Kind, bins: &Binaries) -> Result<Result<Deployment, String>> {
        let mut deployment = Deployment {
            kind,
            label: String::new(),
            nodes: Vec::new(),
            database: None,
            _data_dirs: Vec::new(),
            unclean_restarts: Vec::new(),
        };
        let started = match kind {
            Kind::Bare => {
                deployment.label = "bare server (yardstick)".to_string();
                deployment.add_node(&bins.bench, &["bare-server"], Vec::new()).await
            }
            Kind::Sqlite => {
                deployment.label = "SQLite, 1 node".to_string();
                deployment.add_node(&bins.server, &[], server_env()).await
            }
            Kind::Postgres => {
                let version = match postgres::server_version(&bins.pg_url).await {
                    Ok(version) => version,
                    Err(why) => return Ok(Err(format!("PostgreSQL skipped: {why}"))),
                };
                if let Err(why) = redis_ping(&bins.redis_url).await {
                    return Ok(Err(format!("PostgreSQL + Redis skipped: {why}")));
                }
                deployment.label = format!("PostgreSQL {version} + Redis, 2 nodes");
                deployment.start_pair(bins).await
            }
        };
        match started {
            Ok(()) => Ok(Ok(deployment)),
            Err(err) => {
                // Whatever did start is stopped; the start-up error is the one worth reading.
                if let Err(stop_err) = deployment.stop().await {
                    eprintln!("chat-bench: {stop_err:#}");
                }
                Err(err)
            }
        }
    }

    /// Two nodes, one after the other (the first runs the migrations), sharing the JWT secret.
    async fn start_pair(&mut self, bins: &Binaries) -> Result<()> {
        let db = TempDatabase::create(&bins.pg_url).await?;
        eprintln!("chat-bench: created database {}", db.name());
        let url = db.url().to_string();
        self.database = Some(db);
        let secret = format!("chat-bench-{}-shared-secret-of-both-nodes", std::process::id());
        for _ in 0..2 {
            let mut env = server_env();
            env.push(("DATABASE_URL", url.clone()));
            env.push(("REDIS_URL", bins.redis_url.clone()));
            env.push(("JWT_SECRET", secret.clone()));
            self.add_node(&bins.server, &[], env).await?;
        }
        Ok(())
    }

    async fn add_node(&mut self, bin: &Path, args: &[&'static str], env: Vec<(&'static str, String)>) -> Result<()> {
        let data_dir = tempfile::Builder::new().prefix("chat-bench-").tempdir().context("creating a temp DATA_DIR")?;
        let node = start_node(bin.to_path_buf(), args.to_vec(), env, data_dir.path().to_path_buf()).await?;
        eprintln!("chat-bench: {} node {} up at {}", kind_name(self.kind), self.nodes.len() + 1, node.base_url);
        self.nodes.push(node);
        self._data_dirs.push(data_dir);
        Ok(())
    }

    /// Stops every node and starts it again on the same data (database, JWT secret): a fresh process
    /// with the users and rooms already there, so that its memory owes nothing to their creation.
    pub async fn restart(&mut self) -> Result<()> {
        let nodes = std::mem::take(&mut self.nodes);
        for node in nodes {
            let Node { server, bin, args, env, data_dir, .. } = node;
            if let Some(how) = server.stop_noting().await? {
                self.unclean_restarts.push(format!("node {} {how} (stopped to restart it)", self.nodes.len() + 1));
            }
            let node = start_node(bin, args, env, data_dir).await?;
            eprintln!(
                "chat-bench: {} node {} restarted at {}",
                kind_name(self.kind),
                self.nodes.len() + 1,
                node.base_url
            );
            self.nodes.push(node);
        }
        Ok(())
    }

    /// The server processes' ids, to read their memory.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(|n| n.server.pid()).collect()
    }

    /// Stops every node (each SIGTERM, then SIGKILL) and drops the database; reports the first error, or
    /// else how nodes ended that did not exit cleanly.
    pub async fn stop(self) -> Result<Vec<String>> {
        let mut first_err = None;
        let mut unclean = Vec::new();
        for (index, node) in self.nodes.into_iter().enumerate() {
            match node.server.stop_noting().await {
                Ok(None) => {}
                Ok(Some(how)) => unclean.push(format!("node {} {how}", index + 1)),
                Err(err) => {
                    first_err.get_or_insert(err);
                }
            }
        }
        if let Some(db) = self.database
            && let Err(err) = db.drop_database().await
        {
            first_err.get_or_insert(err);
        }
        match first_err {
            Some(err) => Err(err),
            None => Ok(unclean),
        }
    }
}

async fn start_node(
    bin: PathBuf,
    args: Vec<&'static str>,
    env: Vec<(&'static str, String)>,
    data_dir: PathBuf,
) -> Result<Node> {
    let server = Server::launch(Launch { bin: &bin, args: &args, data_dir: &data_dir, env: env.clone() }).await?;
    let base_url = server.base_url().to_string();
    let ws_url = format!("{}/api/v1/ws", base_url.replacen("http://", "ws://", 1));
    Ok(Node { server, base_url, ws_url, bin, args, env, data_dir })
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Bare => "bare",
        Kind::Sqlite => "SQLite",
        Kind::Postgres => "PostgreSQL",
    }
}

/// What every `chat-server` of these benchmarks gets: tokens that outlive any run, and a short drain so
/// that stopping a node with sockets still open takes seconds, not the default ten.
fn server_env() -> Vec<(&'static str, String)> {
    // The plans give each user up to 100 sockets (fan-out: 5,000 sockets of 50 users), past the default
    // limit of 20 per user.
    vec![
        ("ACCESS_TOKEN_TTL", "7200".to_string()),
        ("DRAIN_SECONDS", "1".to_string()),
        ("MAX_SOCKETS_PER_USER", "100000".to_string()),
    ]
}

/// `redis://127.0.0.1:6379` answers `PING` (raw RESP over TCP: the bench needs no Redis client). Only on
/// loopback; nothing is written there.
pub async fn redis_ping(url: &str) -> Result<(), String> {
    let addr = redis_addr(url)?;
    let attempt = async {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.map_err(|e| format!("{url}: {e}"))?;
        tcp.write_all(b"PING\r\n").await.map_err(|e| format!("{url}: {e}"))?;
        let mut reply = [0u8; 64];
        let n = tcp.read(&mut reply).await.map_err(|e| format!("{url}: {e}"))?;
        if reply[..n].starts_with(b"+PONG") {
            Ok(())
        } else {
            Err(format!("{url} answered {:?} to PING", String::from_utf8_lossy(&reply[..n]).trim()))
        }
    };
    tokio::time::timeout(Duration::from_secs(3), attempt).await.map_err(|_| format!("{url} did not answer PING"))?
}

/// `host:port` of a `redis://` URL without credentials or database, on loopback only.
fn redis_addr(url: &str) -> Result<String, String> {
    let Some(rest) = url.strip_prefix("redis://") else { return Err(format!("{url}: expected redis://host:port")) };
    let authority = rest.trim_end_matches('/');
    if authority.contains(['/', '@', '?']) {
        return Err(format!("{url}: give host:port only"));
    }
    let (host, port) = authority.rsplit_once(':').unwrap_or((authority, "6379"));
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!("{url}: the bench only talks to this machine"));
    }
    Ok(format!("{host}:{port}"))
}

/// Checks `--redis-url` up front, before anything is started.
pub fn check_redis_url(url: &str) -> Result<()> {
    match redis_addr(url) {
        Ok(_) => Ok(()),
        Err(why) => bail!("--redis-url {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls_are_loopback_host_and_port() {
        assert_eq!(redis_addr("redis://127.0.0.1:6379").as_deref(), Ok("127.0.0.1:6379"));
        assert_eq!(redis_addr("redis://localhost").as_deref(), Ok("localhost:6379"));
        assert!(redis_addr("redis://10.0.0.1:6379").is_err());
        assert!(redis_addr("redis://127.0.0.1:6379/2").is_err());
        assert!(redis_addr("redis://user:pw@127.0.0.1:6379").is_err());
        assert!(redis_addr("http://127.0.0.1").is_err());
    }
}
