//! Search: does `GET /search` stay fast as history grows (issue 13)?
//!
//! The scene: `messages` messages spread evenly over `rooms` rooms, one reader a member of `member_of` of
//! them. Bodies are 4-16 words drawn from a 5,000-word made-up vocabulary with Zipf frequencies (a few
//! words common, most rare, as in real text), the same on both databases (a fixed seed). The rows are loaded
//! straight into the database by its own command-line client (`sqlite3`, `psql`) while the server is
//! stopped, through the same triggers and generated column the server's inserts go through, so the
//! full-text indexes (SQLite FTS5, PostgreSQL GIN over a tsvector) grow as they do in use.
//!
//! Timed, one query at a time (latency, not throughput), two-word queries of words of middling frequency:
//! 1. `GET /search?q=a b` end to end over HTTP, as the app asks it;
//! 2. inside the database, the server's own full-text query (copied from `domain/search.rs`), and
//! 3. a `LIKE '%a%' AND LIKE '%b%'` scan of the reader's rooms for the same words, newest first, 21 rows,
//!    like the full-text query: what search costs without the index.
//!
//! (2) and (3) are timed by the client (`.timer on`, `\timing`), so they leave out HTTP and JSON.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::server::Server;

/// Issue 13's target for a two-word query over HTTP.
pub const TARGET_P99_MS: f64 = 50.0;
/// Words in the made-up vocabulary.
const VOCABULARY: usize = 5_000;
/// Query words are drawn from these frequency ranks: common enough to match, rare enough to be asked for.
const QUERY_RANKS: std::ops::Range<usize> = 10..300;
/// Untimed queries before each timed series (caches, prepared statements, connections).
pub const WARMUP_QUERIES: usize = 10;
/// Rows per INSERT statement of the load.
const ROWS_PER_INSERT: usize = 1_000;
/// The page size the server answers with (the default `limit`) plus the one row it reads to know there is more.
pub const PAGE_ROWS: usize = 21;
const PASSWORD: &str = "bench-password-1";
/// The first message's time; each next one a second later.
const FIRST_AT: &str = "2026-01-01 00:00:00";
/// Bound on loading the data (1,000,000 rows take a few minutes on 2 cores).
const LOAD_TIMEOUT: Duration = Duration::from_secs(1800);
/// Bound on one timed series inside the database.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Clone, Debug)]
pub struct Plan {
    pub messages: usize,
    pub rooms: usize,
    pub member_of: usize,
    pub queries: usize,
    pub like_queries: usize,
}

impl Plan {
    pub fn check(&self) -> Result<()> {
        if self.rooms == 0 || !self.messages.is_multiple_of(self.rooms) {
            bail!("--search-messages must be a multiple of --search-rooms");
        }
        if self.member_of == 0 || self.member_of > self.rooms {
            bail!("--search-member-of must be between 1 and --search-rooms");
        }
        Ok(())
    }

    /// The reader's rooms: every (rooms / member_of)-th, spread over the whole id range.
    fn reader_rooms(&self) -> impl Iterator<Item = usize> {
        let step = self.rooms / self.member_of;
        (0..self.member_of).map(move |i| 1 + i * step)
    }
}

/// Where the rows go, and how its client is called.
pub enum Store {
    Sqlite { db_file: PathBuf },
    Postgres { url: String },
}

/// Sorted latencies in milliseconds.
pub struct Latencies(Vec<f64>);

impl Latencies {
    pub fn new(mut ms: Vec<f64>) -> Latencies {
        ms.sort_by(f64::total_cmp);
        Latencies(ms)
    }

    /// The `q` quantile (nearest rank).
    pub fn quantile(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        self.0[rank - 1]
    }
}

pub struct SearchRun {
    pub label: String,
    pub load_secs: f64,
    pub http: Latencies,
    pub mean_hits: f64,
    pub index_in_db: Latencies,
    pub like_in_db: Latencies,
}

/// A registered user.
struct Account {
    id: i64,
    token: String,
}

/// One backend: accounts through the API, the rows loaded with the server stopped, then the timed series.
/// Its `label` names the kind of database; the caller may name the version.
pub async fn run(server_bin: &Path, database_url: Option<&str>, plan: &Plan) -> Result<SearchRun> {
    let label = if database_url.is_some() { "PostgreSQL" } else { "SQLite" }.to_string();
    // Also the server's working directory and the home of its generated JWT secret, kept across restarts.
    let data_dir = tempfile::Builder::new().prefix("chat-bench-search-").tempdir().context("creating DATA_DIR")?;
    let store = match database_url {
        Some(url) => Store::Postgres { url: url.to_string() },
        None => Store::Sqlite { db_file: data_dir.path().join("chat.db") },
    };
    let client = Client::builder().no_proxy().timeout(Duration::from_secs(60)).build()?;

    let server = Server::start(server_bin, data_dir.path(), database_url).await?;
    let accounts = async {
        let author = register(&client, server.base_url(), "bench_search_author").await?;
        let reader = register(&client, server.base_url(), "bench_search_reader").await?;
        anyhow::Ok((author, reader))
    }
    .await;
    server.stop().await?;
    let (author, reader) = accounts?;

    let corpus = Corpus::new();
    eprintln!("chat-bench: search on {label}: loading {} messages into {} rooms", plan.messages, plan.rooms);
    let started = Instant::now();
    store.load(&corpus, plan, author.id, reader.id).await?;
    let load_secs = started.elapsed().as_secs_f64();
    eprintln!("chat-bench: search on {label}: loaded in {load_secs:.0} s");

    let queries = corpus.queries(WARMUP_QUERIES + plan.queries.max(plan.like_queries));
    let server = Server::start(server_bin, data_dir.path(), database_url).await?;
    let timed = time_http(&client, server.base_url(), &reader.token, &queries[..WARMUP_QUERIES + plan.queries]).await;
    server.stop().await?;
    let (http, mean_hits) = timed?;

    let index_in_db =
        store.time(&queries[..WARMUP_QUERIES + plan.queries], |q| store.index_query(q, reader.id)).await?;
    let like_in_db = store.time(&queries[..WARMUP_QUERIES + plan.like_queries], |q| like_query(q, reader.id)).await?;
    Ok(SearchRun { label, load_secs, http, mean_hits, index_in_db, like_in_db })
}

async fn register(client: &Client, base_url: &str, username: &str) -> Result<Account> {
    let response = client
        .post(format!("{base_url}/api/v1/auth/register"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .context("POST /auth/register")?;
    let status = response.status();
    let body: Value = response.json().await.context("POST /auth/register: not JSON")?;
    if status != StatusCode::CREATED {
        bail!("POST /auth/register: {status}: {body}");
    }
    let id = body["user"]["id"].as_i64().context("no user.id in the registration")?;
    let token = body["access_token"].as_str().context("no access_token in the registration")?.to_string();
    Ok(Account { id, token })
}

/// Each query once over HTTP, in turn; the first `WARMUP_QUERIES` not counted. Also the mean number of hits.
async fn time_http(client: &Client, base_url: &str, token: &str, queries: &[String]) -> Result<(Latencies, f64)> {
    let mut ms = Vec::with_capacity(queries.len());
    let mut hits = 0usize;
    for (n, q) in queries.iter().enumerate() {
        let started = Instant::now();
        let response = client
            .get(format!("{base_url}/api/v1/search"))
            .query(&[("q", q.as_str())])
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("GET /search?q={q}"))?;
        let status = response.status();
        let page: Value = response.json().await.context("GET /search: not JSON")?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        if status != StatusCode::OK {
            bail!("GET /search?q={q}: {status}: {page}");
        }
        if n >= WARMUP_QUERIES {
            ms.push(elapsed);
            hits += page["items"].as_array().map_or(0, Vec::len);
        }
    }
    let counted = queries.len().saturating_sub(WARMUP_QUERIES).max(1);
    Ok((Latencies::new(ms), hits as f64 / counted as f64))
}

/// The scan without an index, the same on both databases: the reader's rooms, both words anywhere in the
/// body (SQLite's LIKE ignores ASCII case; the words are lowercase, so PostgreSQL's LIKE finds the same).
fn like_query(q: &str, reader: i64) -> String {
    let mut words = q.split(' ');
    let (a, b) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    format!(
        "SELECT m.id FROM messages m JOIN room_members rm ON rm.room_id = m.room_id AND rm.user_id = {reader} \
         WHERE m.body LIKE '%{a}%' AND m.body LIKE '%{b}%' AND m.deleted = FALSE ORDER BY m.id DESC LIMIT {PAGE_ROWS};"
    )
}

impl Store {
    fn client(&self) -> Command {
        match self {
            Store::Sqlite { db_file } => {
                let mut command = Command::new("sqlite3");
                command.arg("-bail").arg(db_file);
                command
            }
            Store::Postgres { url } => {
                let mut command = Command::new("psql");
                command.arg(url).args(["--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1"]);
                command
            }
        }
    }

    /// The server's full-text query (`domain/search.rs`) for the reader, with the words inlined.
    fn index_query(&self, q: &str, reader: i64) -> String {
        let mut words: Vec<&str> = q.split(' ').collect();
        let last = words.pop().unwrap_or_default();
        match self {
            Store::Postgres { .. } => {
                let mut tsquery: Vec<String> = words.iter().map(|w| (*w).to_string()).collect();
                tsquery.push(format!("{last}:*"));
                format!(
                    "SELECT m.id FROM messages m JOIN room_members rm ON rm.room_id = m.room_id AND rm.user_id = {reader} \
                     WHERE m.search @@ to_tsquery('simple', '{}') AND NOT m.deleted ORDER BY m.id DESC LIMIT {PAGE_ROWS};",
                    tsquery.join(" & ")
                )
            }
            Store::Sqlite { .. } => {
                let mut fts: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
                fts.push(format!("\"{last}\"*"));
                format!(
                    "SELECT m.id FROM messages_fts f JOIN messages m ON m.id = f.rowid \
                     JOIN room_members rm ON rm.room_id = m.room_id AND rm.user_id = {reader} \
                     WHERE messages_fts MATCH '{}' AND m.deleted = 0 ORDER BY m.id DESC LIMIT {PAGE_ROWS};",
                    fts.join(" ")
                )
            }
        }
    }

    /// Writes the rooms, the memberships and the messages in one transaction through the client's stdin.
    async fn load(&self, corpus: &Corpus, plan: &Plan, author: i64, reader: i64) -> Result<()> {
        let mut child = self.client().stdin(Stdio::piped()).stdout(Stdio::null()).kill_on_drop(true).spawn()?;
        let mut stdin = child.stdin.take().context("the client's stdin")?;
        let writing = async {
            stdin.write_all(self.load_head(plan, author, reader).as_bytes()).await?;
            let mut rng = SplitMix(0x5eed);
            let mut batch = String::with_capacity(ROWS_PER_INSERT * 128);
            for first in (0..plan.messages).step_by(ROWS_PER_INSERT) {
                batch.clear();
                batch.push_str("INSERT INTO messages (room_id, seq, author_id, body, created_at) VALUES ");
                for i in first..(first + ROWS_PER_INSERT).min(plan.messages) {
                    let (room, seq) = (i % plan.rooms + 1, i / plan.rooms + 1);
                    let body = corpus.body(&mut rng);
                    let sep = if i == first { "" } else { "," };
                    let _ = write!(batch, "{sep}({room},{seq},{author},'{body}',{})", at(i));
                }
                batch.push_str(";\n");
                stdin.write_all(batch.as_bytes()).await?;
            }
            stdin.write_all(self.load_tail().as_bytes()).await?;
            stdin.shutdown().await?;
            drop(stdin);
            anyhow::Ok(())
        };
        let finished = tokio::time::timeout(LOAD_TIMEOUT, async {
            let written = writing.await;
            let status = child.wait().await?;
            written.context("writing the rows to the client")?;
            if !status.success() {
                bail!("the client failed loading the rows ({status})");
            }
            anyhow::Ok(())
        })
        .await;
        finished.with_context(|| format!("loading took longer than {} s", LOAD_TIMEOUT.as_secs()))?
    }

    fn load_head(&self, plan: &Plan, author: i64, reader: i64) -> String {
        let mut sql = String::new();
        // Only while loading: the rows are thrown away after the run anyway.
        sql.push_str(match self {
            Store::Sqlite { .. } => "PRAGMA synchronous = OFF;\nBEGIN;\n",
            Store::Postgres { .. } => "SET synchronous_commit = off;\nBEGIN;\n",
        });
        let last_seq = plan.messages / plan.rooms;
        let last_at = at(plan.messages - 1);
        let start = at(0);
        sql.push_str(
            "INSERT INTO rooms (id, name, visibility, kind, created_by, created_at, last_seq, last_activity_at) VALUES ",
        );
        for room in 1..=plan.rooms {
            let sep = if room == 1 { "" } else { "," };
            let _ = write!(sql, "{sep}({room},'room {room}','private','room',{author},{start},{last_seq},{last_at})");
        }
        sql.push_str(";\nINSERT INTO room_members (room_id, user_id, role, joined_at, last_read_seq) VALUES ");
        for room in 1..=plan.rooms {
            let sep = if room == 1 { "" } else { "," };
            let _ = write!(sql, "{sep}({room},{author},'owner',{start},{last_seq})");
        }
        for room in plan.reader_rooms() {
            let _ = write!(sql, ",({room},{reader},'member',{start},{last_seq})");
        }
        sql.push_str(";\n");
        sql
    }

    fn load_tail(&self) -> String {
        match self {
            // Indexed as the server's message writer indexes new messages (`domain::search::index_pending`):
            // the index is no longer kept by a trigger on insert.
            Store::Sqlite { .. } => "INSERT INTO messages_fts (rowid, body) SELECT id, body FROM messages \
                 WHERE id > (SELECT indexed_upto FROM messages_fts_state) ORDER BY id;\n\
                 UPDATE messages_fts_state SET indexed_upto = (SELECT MAX(id) FROM messages);\nCOMMIT;\n"
                .to_string(),
            // The ids were given, so the sequence is moved past them; statistics as autovacuum would make.
            Store::Postgres { .. } => {
                "COMMIT;\nSELECT setval('rooms_id_seq', (SELECT max(id) FROM rooms));\nANALYZE;\n".to_string()
            }
        }
    }

    /// Runs `make(q)` for every query through the client with its timer on; drops the first
    /// `WARMUP_QUERIES` timings.
    async fn time(&self, queries: &[String], make: impl Fn(&str) -> String) -> Result<Latencies> {
        let mut script = match self {
            Store::Sqlite { .. } => ".timer on\n.output /dev/null\n".to_string(),
            Store::Postgres { .. } => "\\timing on\n\\o /dev/null\n".to_string(),
        };
        for q in queries {
            script.push_str(&make(q));
            script.push('\n');
        }
        let mut child = self
            .client()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child.stdin.take().context("the client's stdin")?;
        stdin.write_all(script.as_bytes()).await?;
        drop(stdin);
        let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
            .await
            .with_context(|| format!("the timed queries took longer than {} s", SCRIPT_TIMEOUT.as_secs()))??;
        if !output.status.success() {
            bail!("the timed queries failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let ms = timings(&String::from_utf8_lossy(&output.stdout));
        if ms.len() != queries.len() {
            bail!("{} timings for {} queries", ms.len(), queries.len());
        }
        Ok(Latencies::new(ms.into_iter().skip(WARMUP_QUERIES).collect()))
    }
}

/// The milliseconds of each statement in a client's timer output: `Run Time: real 0.012 user ...` (sqlite3,
/// seconds) or `Time: 12.345 ms` (psql, with ` (00:01.235)` after a second).
fn timings(output: &str) -> Vec<f64> {
    output
        .lines()
        .filter_map(|line| {
            if let Some(rest) = line.strip_prefix("Run Time: real ") {
                rest.split_whitespace().next()?.parse::<f64>().ok().map(|s| s * 1000.0)
            } else {
                line.strip_prefix("Time: ")?.split_whitespace().next()?.parse::<f64>().ok()
            }
        })
        .collect()
}

/// Message `i`'s time as an SQL literal both databases read as a TIMESTAMP (as the server writes them).
fn at(i: usize) -> String {
    let first = chrono::NaiveDateTime::parse_from_str(FIRST_AT, "%Y-%m-%d %H:%M:%S").expect("FIRST_AT parses");
    let when = first + chrono::Duration::seconds(i as i64);
    format!("'{}'", when.format("%Y-%m-%d %H:%M:%S%.6f"))
}

/// The made-up vocabulary (lowercase letters only, so nothing needs quoting) and its Zipf weights.
struct Corpus {
    words: Vec<String>,
    /// Cumulative weights 1/rank: word r is drawn with probability (1/r) / H(VOCABULARY).
    cumulative: Vec<f64>,
}

impl Corpus {
    fn new() -> Corpus {
        const ONSETS: [&str; 16] = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st"];
        const VOWELS: [&str; 5] = ["a", "e", "i", "o", "u"];
        let mut rng = SplitMix(0x0c0ffee);
        let mut seen = HashSet::new();
        let mut words = Vec::with_capacity(VOCABULARY);
        while words.len() < VOCABULARY {
            let syllables = 2 + rng.below(3);
            let word: String = (0..syllables)
                .map(|_| format!("{}{}", ONSETS[rng.below(ONSETS.len())], VOWELS[rng.below(VOWELS.len())]))
                .collect();
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let mut total = 0.0;
        let cumulative = (1..=VOCABULARY)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Corpus { words, cumulative }
    }

    fn word(&self, rng: &mut SplitMix) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let u = rng.unit() * total;
        let rank = self.cumulative.partition_point(|&c| c < u).min(VOCABULARY - 1);
        &self.words[rank]
    }

    fn body(&self, rng: &mut SplitMix) -> String {
        let length = 4 + rng.below(13);
        let words: Vec<&str> = (0..length).map(|_| self.word(rng)).collect();
        words.join(" ")
    }

    /// `n` two-word queries of middling frequency, fixed by the seed.
    fn queries(&self, n: usize) -> Vec<String> {
        let mut rng = SplitMix(0x9e3779b9);
        let span = QUERY_RANKS.end - QUERY_RANKS.start;
        (0..n)
            .map(|_| {
                let a = QUERY_RANKS.start + rng.below(span);
                let b = QUERY_RANKS.start + (a - QUERY_RANKS.start + 1 + rng.below(span - 1)) % span;
                format!("{} {}", self.words[a], self.words[b])
            })
            .collect()
    }
}

/// splitmix64: a small, fixed sequence, so the data and the queries are the same on every run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_clients_timer_lines() {
        let sqlite = "Run Time: real 0.012 user 0.000100 sys 0.000000\nRun Time: real 1.500 user 1 sys 0\n";
        assert_eq!(timings(sqlite), [12.0, 1500.0]);
        let psql = "Time: 0.334 ms\nnoise\nTime: 1234.567 ms (00:01.235)\n";
        assert_eq!(timings(psql), [0.334, 1234.567]);
    }

    #[test]
    fn the_vocabulary_is_plain_words_and_common_words_come_first() {
        let corpus = Corpus::new();
        assert!(corpus.words.iter().all(|w| w.chars().all(|c| c.is_ascii_lowercase())));
        let mut rng = SplitMix(1);
        let draws: Vec<&str> = (0..20_000).map(|_| corpus.word(&mut rng)).collect();
        let count = |w: &str| draws.iter().filter(|d| **d == w).count();
        assert!(count(&corpus.words[0]) > 10 * count(&corpus.words[200]).max(1));
        let queries = corpus.queries(50);
        assert!(queries.iter().all(|q| q.split(' ').count() == 2 && q.split(' ').next() != q.split(' ').nth(1)));
        assert_eq!(queries, corpus.queries(50), "the same on every run");
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let l = Latencies::new((1..=100).rev().map(f64::from).collect());
        assert_eq!((l.quantile(0.5), l.quantile(0.99), l.quantile(1.0)), (50.0, 99.0, 100.0));
        assert_eq!(Latencies::new(vec![]).quantile(0.99), 0.0);
    }

    #[test]
    fn the_reader_is_in_rooms_spread_over_the_range() {
        let plan = Plan { messages: 1000, rooms: 1000, member_of: 50, queries: 1, like_queries: 1 };
        let rooms: Vec<usize> = plan.reader_rooms().collect();
        assert_eq!((rooms.len(), rooms[0], rooms[49]), (50, 1, 981));
    }
}
