//! The traffic: set up a user, two rooms and an API token, send for a fixed time, then read the history back.
//!
//! Warm-up goes to its own room, so the measured room must hold exactly one message per 2xx answer of
//! the measured phase: that is the loss / duplicate check.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hdrhistogram::Histogram;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// One request that takes longer than this counts as an error (`timeout`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Latencies are recorded in microseconds, from 1 µs to this, with 3 significant digits.
const HISTOGRAM_MAX_MICROS: u64 = 60_000_000;
/// After a transport error (connection refused, reset) a worker waits this long, so a dead server is not
/// hammered in a tight loop until the deadline.
const TRANSPORT_ERROR_PAUSE: Duration = Duration::from_millis(10);
/// The history is read in pages of this size (the API's maximum).
const HISTORY_PAGE: usize = 100;

/// How much load, for how long.
pub struct Plan {
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// A running server with everything a sender needs.
pub struct Target {
    client: Client,
    base_url: String,
    /// The user's JWT: used to set up and to read the history back.
    access_token: String,
    /// The API token (`messages:write`) every send uses, as an external system would.
    api_token: String,
    warmup_room: i64,
    measured_room: i64,
}

/// The measured phase of one backend.
pub struct Outcome {
    /// 2xx answers.
    pub ok: u64,
    /// Everything else, by kind (`HTTP 429`, `timeout`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Latency of the 2xx answers, in microseconds, from sending the request to the end of the response body.
    pub latency_micros: Histogram<u64>,
    /// From the start of sending until the last in-flight request came back.
    pub elapsed: Duration,
    pub verification: Verification,
}

impl Outcome {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// 2xx answers per second.
    pub fn requests_per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// Whether the room holds exactly the accepted messages.
pub struct Verification {
    pub ok: bool,
    pub summary: String,
}

/// What the senders of one phase brought back.
struct Load {
    ok: u64,
    errors: BTreeMap<String, u64>,
    latency_micros: Histogram<u64>,
    elapsed: Duration,
    /// `client_id` of every 2xx message.
    accepted: Vec<String>,
}

impl Target {
    /// Waits for the server to answer HTTP, then registers a user and creates the rooms and the API token.
    pub async fn setup(base_url: &str) -> Result<Target> {
        let client =
            Client::builder().no_proxy().timeout(REQUEST_TIMEOUT).build().context("building the HTTP client")?;
        wait_for_http(&client, base_url).await?;

        // The pid keeps the name unique per run (one server per backend, each with a fresh database anyway).
        let username = format!("bench_{}", std::process::id());
        let registered = expect(
            client
                .post(format!("{base_url}/api/v1/auth/register"))
                .json(&json!({"username": username, "password": "bench-password-1"})),
            StatusCode::CREATED,
            "POST /auth/register",
        )
        .await?;
        let access_token = string_field(&registered, "access_token")?;

        let create_room = |name: &str| {
            expect(
                client.post(format!("{base_url}/api/v1/rooms")).bearer_auth(&access_token).json(&json!({"name": name})),
                StatusCode::CREATED,
                "POST /rooms",
            )
        };
        let warmup_room = int_field(&create_room("bench warm-up").await?, "id")?;
        let measured_room = int_field(&create_room("bench measured").await?, "id")?;

        let token = expect(
            client
                .post(format!("{base_url}/api/v1/tokens"))
                .bearer_auth(&access_token)
                .json(&json!({"name": "chat-bench", "scopes": ["messages:write"]})),
            StatusCode::CREATED,
            "POST /tokens",
        )
        .await?;
        let api_token = string_field(&token, "token")?;

        Ok(Target { client, base_url: base_url.to_string(), access_token, api_token, warmup_room, measured_room })
    }

    /// Warm-up (not counted), the measured phase, then the history check of the measured room.
    pub async fn run(&self, plan: &Plan) -> Result<Outcome> {
        let tag = std::process::id();
        if !plan.warmup.is_zero() {
            let warm = self.send_for(self.warmup_room, plan.concurrency, plan.warmup, &format!("w{tag}")).await?;
            eprintln!("chat-bench: warm-up: {} sent, {} errors", warm.ok, warm.errors.values().sum::<u64>());
        }
        let load = self.send_for(self.measured_room, plan.concurrency, plan.duration, &format!("m{tag}")).await?;
        let verification = self.verify(self.measured_room, &load.accepted).await?;
        Ok(Outcome {
            ok: load.ok,
            errors: load.errors,
            latency_micros: load.latency_micros,
            elapsed: load.elapsed,
            verification,
        })
    }

    /// `concurrency` workers send into `room_id` until `duration` has passed; each waits for its answer.
    async fn send_for(&self, room_id: i64, concurrency: usize, duration: Duration, tag: &str) -> Result<Load> {
        let url = format!("{}/api/v1/rooms/{room_id}/messages", self.base_url);
        let started = Instant::now();
        let deadline = started + duration;
        let mut workers = JoinSet::new();
        for worker in 0..concurrency {
            let sender = Sender {
                client: self.client.clone(),
                url: url.clone(),
                api_token: self.api_token.clone(),
                id_prefix: format!("{tag}-{worker}"),
            };
            workers.spawn(sender.send_until(deadline));
        }
        let mut total = Load {
            ok: 0,
            errors: BTreeMap::new(),
            latency_micros: new_histogram(),
            elapsed: Duration::ZERO,
            accepted: Vec::new(),
        };
        while let Some(joined) = workers.join_next().await {
            let load = joined.context("a sender task panicked")?;
            total.ok += load.ok;
            for (kind, count) in load.errors {
                *total.errors.entry(kind).or_default() += count;
            }
            total.latency_micros.add(&load.latency_micros).context("merging histograms")?;
            total.accepted.extend(load.accepted);
        }
        total.elapsed = started.elapsed();
        Ok(total)
    }

    /// Reads the room's whole history (newest page first, then `before=`) and compares it with `accepted`.
    async fn verify(&self, room_id: i64, accepted: &[String]) -> Result<Verification> {
        let url = format!("{}/api/v1/rooms/{room_id}/messages", self.base_url);
        let max_pages = accepted.len() / HISTORY_PAGE + 10;
        let mut seqs: Vec<i64> = Vec::with_capacity(accepted.len());
        let mut client_ids: Vec<String> = Vec::with_capacity(accepted.len());
        let mut before: Option<i64> = None;
        for _ in 0..max_pages {
            let mut request = self.client.get(&url).bearer_auth(&self.access_token).query(&[("limit", HISTORY_PAGE)]);
            if let Some(before) = before {
                request = request.query(&[("before", before)]);
            }
            let page = expect(request, StatusCode::OK, "GET /rooms/{id}/messages").await?;
            let items =
                page.get("items").and_then(Value::as_array).ok_or_else(|| anyhow!("history page without `items`"))?;
            if items.is_empty() {
                break;
            }
            for item in items {
                seqs.push(int_field(item, "seq")?);
                client_ids.push(item.get("client_id").and_then(Value::as_str).unwrap_or("<none>").to_string());
            }
            let oldest = items.iter().filter_map(|m| m.get("seq").and_then(Value::as_i64)).min().unwrap_or(1);
            if oldest <= 1 || before.is_some_and(|b| oldest >= b) {
                break;
            }
            before = Some(oldest);
        }
        Ok(compare_history(accepted, &seqs, &client_ids))
    }
}

/// One worker: its own counters and histogram, merged at the end (no shared state while sending).
struct Sender {
    client: Client,
    url: String,
    api_token: String,
    /// Prefix of this worker's `client_id`s; a counter makes each one unique.
    id_prefix: String,
}

impl Sender {
    async fn send_until(self, deadline: Instant) -> Load {
        let mut load = Load {
            ok: 0,
            errors: BTreeMap::new(),
            latency_micros: new_histogram(),
            elapsed: Duration::ZERO,
            accepted: Vec::new(),
        };
        let mut n: u64 = 0;
        while Instant::now() < deadline {
            let client_id = format!("{}-{n}", self.id_prefix);
            n += 1;
            let started = Instant::now();
            let sent = self
                .client
                .post(&self.url)
                .bearer_auth(&self.api_token)
                .header("Idempotency-Key", &client_id)
                .json(&json!({"body": format!("bench message {client_id}"), "client_id": client_id}))
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(err) => {
                    *load.errors.entry(transport_error_kind(&err)).or_default() += 1;
                    tokio::time::sleep(TRANSPORT_ERROR_PAUSE).await;
                    continue;
                }
            };
            let status = response.status();
            // The body is read in full: the latency is that of the whole answer, and the connection is reused.
            match response.bytes().await {
                Ok(_) if status.is_success() => {
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    load.latency_micros.saturating_record(micros);
                    load.ok += 1;
                    load.accepted.push(client_id);
                }
                Ok(_) => *load.errors.entry(format!("HTTP {}", status.as_u16())).or_default() += 1,
                Err(err) => *load.errors.entry(transport_error_kind(&err)).or_default() += 1,
            }
        }
        load
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // `expect`: constant bounds that satisfy hdrhistogram's rules (low >= 1, high >= 2 * low, sigfig <= 5).
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_MICROS, 3).expect("valid histogram bounds")
}

fn transport_error_kind(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timeout".to_string()
    } else if err.is_connect() {
        "connect".to_string()
    } else if err.is_body() || err.is_decode() {
        "body".to_string()
    } else {
        "transport".to_string()
    }
}

/// The room's history against the 2xx answers: same count, seqs 1..=N without gaps or repeats, and every
/// accepted `client_id` exactly once.
fn compare_history(accepted: &[String], seqs: &[i64], client_ids: &[String]) -> Verification {
    let mut problems = Vec::new();
    if seqs.len() != accepted.len() {
        problems.push(format!("history holds {} messages, {} sends got 2xx", seqs.len(), accepted.len()));
    }
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    let distinct_seqs = {
        let mut d = sorted.clone();
        d.dedup();
        d
    };
    if distinct_seqs.len() != sorted.len() {
        problems.push(format!("{} repeated seqs", sorted.len() - distinct_seqs.len()));
    }
    let expected_seqs: Vec<i64> = (1..=i64::try_from(distinct_seqs.len()).unwrap_or(i64::MAX)).collect();
    if distinct_seqs != expected_seqs {
        problems.push("seqs are not 1..N without gaps".to_string());
    }
    let seen: HashSet<&str> = client_ids.iter().map(String::as_str).collect();
    if seen.len() != client_ids.len() {
        problems.push(format!("{} duplicated client_ids", client_ids.len() - seen.len()));
    }
    let missing = accepted.iter().filter(|id| !seen.contains(id.as_str())).count();
    if missing > 0 {
        problems.push(format!("{missing} accepted messages missing"));
    }
    let accepted_set: HashSet<&str> = accepted.iter().map(String::as_str).collect();
    let unexpected = seen.iter().filter(|id| !accepted_set.contains(*id)).count();
    if unexpected > 0 {
        problems.push(format!("{unexpected} messages that no 2xx answered"));
    }
    if problems.is_empty() {
        Verification { ok: true, summary: format!("yes: {} messages, seq 1..{}", seqs.len(), seqs.len()) }
    } else {
        Verification { ok: false, summary: format!("NO: {}", problems.join("; ")) }
    }
}

pub async fn wait_for_http(client: &Client, base_url: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.get(format!("{base_url}/healthz")).timeout(Duration::from_secs(2)).send().await {
            Ok(_) => return Ok(()),
            Err(err) if Instant::now() >= deadline => {
                return Err(err).context(format!("{base_url} does not answer HTTP"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Sends a setup request and returns its JSON body; any other status is an error that shows the body.
pub async fn expect(request: RequestBuilder, want: StatusCode, what: &str) -> Result<Value> {
    let response = request.send().await.with_context(|| format!("{what}: request failed"))?;
    let status = response.status();
    let text = response.text().await.with_context(|| format!("{what}: reading the body"))?;
    if status != want {
        let shown: String = text.chars().take(500).collect();
        bail!("{what}: expected {want}, got {status}: {shown}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: the body is not JSON"))
}

pub fn string_field(value: &Value, field: &str) -> Result<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no string `{field}` in {value}"))
}

pub fn int_field(value: &Value, field: &str) -> Result<i64> {
    value.get(field).and_then(Value::as_i64).ok_or_else(|| anyhow!("no integer `{field}` in {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn exact_history_verifies() {
        let accepted = ids(3);
        let v = compare_history(&accepted, &[3, 2, 1], &["c2".into(), "c1".into(), "c0".into()]);
        assert!(v.ok, "{}", v.summary);
        assert_eq!(v.summary, "yes: 3 messages, seq 1..3");
    }

    #[test]
    fn a_lost_message_fails() {
        let v = compare_history(&ids(3), &[1, 2], &["c0".into(), "c1".into()]);
        assert!(!v.ok);
        assert!(v.summary.contains("1 accepted messages missing"), "{}", v.summary);
    }

    #[test]
    fn a_duplicate_fails() {
        let v = compare_history(&ids(2), &[1, 2, 3], &["c0".into(), "c1".into(), "c1".into()]);
        assert!(!v.ok);
        assert!(v.summary.contains("duplicated client_ids"), "{}", v.summary);
    }

    #[test]
    fn a_gap_in_seq_fails() {
        let v = compare_history(&ids(2), &[1, 3], &["c0".into(), "c1".into()]);
        assert!(!v.ok);
        assert!(v.summary.contains("gaps"), "{}", v.summary);
    }
}
