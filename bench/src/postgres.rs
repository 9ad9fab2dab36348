//! A throwaway PostgreSQL database per run, through the `psql` client.
//!
//! `psql` rather than a Rust driver: the machine that runs PostgreSQL has it, and the bench then needs no
//! second database client compiled in. The database is named `chat_bench_<pid>` and dropped at the end.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

/// How long `psql` may try to reach the server before PostgreSQL counts as not answering.
const CONNECT_TIMEOUT_SECS: &str = "3";
/// Bound on any one `psql` call (CREATE / DROP DATABASE take well under a second).
const PSQL_TIMEOUT: Duration = Duration::from_secs(30);

/// The server URL must be on loopback and carry no database name (the bench picks its own).
pub fn check_loopback(server_url: &str) -> Result<()> {
    let Some(rest) = server_url.strip_prefix("postgres://").or_else(|| server_url.strip_prefix("postgresql://")) else {
        bail!("--pg-url {server_url}: expected postgres://user@host:port");
    };
    let authority = rest.trim_end_matches('/');
    if authority.contains(['/', '?']) {
        bail!("--pg-url {server_url}: give the server only (postgres://user@host:port), without a database or options");
    }
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("--pg-url {server_url}: the bench only talks to this machine (127.0.0.1, ::1, localhost)");
    }
    Ok(())
}

fn database_url(server_url: &str, database: &str) -> String {
    format!("{}/{database}", server_url.trim_end_matches('/'))
}

/// Runs one SQL command as `psql` against `url`, returning its unaligned output.
async fn psql(url: &str, sql: &str) -> Result<String> {
    let mut command = Command::new("psql");
    command
        .arg(url)
        .args(["--no-psqlrc", "--quiet", "--no-align", "--tuples-only", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_SECS)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PSQL_TIMEOUT, command.output())
        .await
        .with_context(|| format!("psql did not finish within {}s", PSQL_TIMEOUT.as_secs()))?
        .context("running psql (is the PostgreSQL client installed?)")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // The first line says it ("psql: error: connection to server ... failed: Connection refused").
        let first = stderr.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("failed without a message");
        if first.starts_with("psql:") {
            bail!("{first}");
        }
        bail!("psql: {first}");
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The server's version (`15.20`), or why PostgreSQL cannot be used.
pub async fn server_version(server_url: &str) -> Result<String, String> {
    let url = database_url(server_url, "postgres");
    let version =
        psql(&url, "SHOW server_version").await.map_err(|err| format!("{server_url} does not answer ({err:#})"))?;
    // "15.20 (Debian 15.20-0+deb12u1)" -> "15.20"
    Ok(version.split_whitespace().next().unwrap_or("?").to_string())
}

/// Runs `run` with the `DATABASE_URL` of a throwaway database, dropped afterwards whatever the run did (so a
/// failed run leaves no database behind). `Err(why)` when PostgreSQL cannot be used (the part skips it);
/// otherwise the label naming its version ("PostgreSQL 15.20") and the run's result.
pub async fn in_temp_database<T, F, Fut>(server_url: &str, run: F) -> Result<(String, Result<T>), String>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let label = format!("PostgreSQL {}", server_version(server_url).await?);
    let db = match TempDatabase::create(server_url).await {
        Ok(db) => db,
        Err(err) => return Ok((label, Err(err))),
    };
    eprintln!("chat-bench: created database {}", db.name());
    let result = run(db.url().to_string()).await;
    if let Err(err) = db.drop_database().await {
        eprintln!("chat-bench: {err:#}");
    }
    Ok((label, result))
}

/// A database that exists for one run. Call `drop_database`; nothing happens on `Drop` (it would need async).
pub struct TempDatabase {
    server_url: String,
    name: String,
    url: String,
}

impl TempDatabase {
    pub async fn create(server_url: &str) -> Result<TempDatabase> {
        let name = format!("chat_bench_{}", std::process::id());
        let maintenance = database_url(server_url, "postgres");
        // A database of this name can only be the leftover of an interrupted run with the same pid.
        psql(&maintenance, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
        psql(&maintenance, &format!("CREATE DATABASE {name}")).await.with_context(|| format!("creating {name}"))?;
        Ok(TempDatabase { server_url: server_url.to_string(), url: database_url(server_url, &name), name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `DATABASE_URL` for the server.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn drop_database(self) -> Result<()> {
        let maintenance = database_url(&self.server_url, "postgres");
        psql(&maintenance, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .await
            .with_context(|| format!("dropping {}", self.name))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback_servers_without_a_database() {
        assert!(check_loopback("postgres://postgres@127.0.0.1:5432").is_ok());
        assert!(check_loopback("postgres://postgres@127.0.0.1:5432/").is_ok());
        assert!(check_loopback("postgresql://u:p@localhost").is_ok());
        assert!(check_loopback("postgres://postgres@[::1]:5432").is_ok());
    }

    #[test]
    fn refuses_other_hosts_and_database_names() {
        assert!(check_loopback("postgres://postgres@db.example:5432").is_err());
        assert!(check_loopback("postgres://postgres@10.1.2.3:5432").is_err());
        assert!(check_loopback("postgres://postgres@127.0.0.1:5432/chat").is_err());
        assert!(check_loopback("mysql://127.0.0.1").is_err());
    }

    #[test]
    fn builds_database_urls() {
        assert_eq!(database_url("postgres://p@127.0.0.1:5432/", "x"), "postgres://p@127.0.0.1:5432/x");
    }
}
