//! The webhook part: what outgoing webhooks cost and how fast they go. One node, `ROOMS` rooms with a
//! webhook each (message.created) to a receiver in this process that answers 200 at once, and as many
//! rooms without. REST sends at a fixed rate into the rooms without webhooks, then into those with: send
//! latency side by side (the cost on sends), then deliveries per second, the delay from commit (the
//! event's `timestamp`, written in the sending transaction) to arrival at the receiver, and whether every
//! message arrived once, in seq order per room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use reqwest::Client;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::search::Latencies;
use crate::server::{Launch, Server};
use crate::ws::Api;

/// Sends in flight at most (a paced sender never waits on an answer to send the next).
const MAX_IN_FLIGHT: usize = 512;
/// How long the deliveries may trail the last send.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Plan {
    /// Rooms with a webhook (and as many without).
    pub rooms: usize,
    /// Messages per second offered, across the rooms.
    pub rate: u64,
    /// Seconds of sending per phase.
    pub seconds: u64,
}

/// One phase of paced sends.
pub struct Sends {
    pub sent: usize,
    pub errors: usize,
    /// Milliseconds, request to response.
    pub latency: Latencies,
}

pub struct WebhookRun {
    pub label: String,
    pub without: Sends,
    pub with: Sends,
    pub delivered: usize,
    /// Deliveries per second, from the first send of the phase to the last arrival.
    pub deliveries_per_sec: f64,
    /// Milliseconds from commit to arrival.
    pub delay: Latencies,
    /// Messages that never arrived, arrived twice, or arrived before an earlier seq of their room.
    pub missing: usize,
    pub duplicates: usize,
    pub out_of_order: usize,
}

impl WebhookRun {
    pub fn verified(&self) -> bool {
        self.missing == 0 && self.duplicates == 0 && self.out_of_order == 0
    }
}

/// Runs the part on one node (SQLite, or PostgreSQL at `database_url`).
pub async fn run(server_bin: &std::path::Path, database_url: Option<&str>, plan: &Plan) -> Result<WebhookRun> {
    let label = if database_url.is_some() { "PostgreSQL" } else { "SQLite" }.to_string();
    let receiver = Receiver::start().await?;
    let data_dir = tempfile::Builder::new().prefix("chat-bench-webhooks-").tempdir().context("creating DATA_DIR")?;
    let mut env = vec![("WEBHOOK_ALLOW_HOSTS", "127.0.0.1".to_string())];
    if let Some(url) = database_url {
        env.push(("DATABASE_URL", url.to_string()));
    }
    let server = Server::launch(Launch { bin: server_bin, args: &[], data_dir: data_dir.path(), env }).await?;
    let result = measure(server.base_url(), &receiver, plan).await;
    server.stop().await?;
    let run = result?;
    Ok(WebhookRun { label, ..run })
}

async fn measure(base_url: &str, receiver: &Receiver, plan: &Plan) -> Result<WebhookRun> {
    let api = Api::new(base_url).await?;
    let owner = api.register("bench_webhooks").await?;
    let mut plain = Vec::new();
    let mut hooked = Vec::new();
    for i in 0..plan.rooms {
        plain.push(api.create_room(&owner, &format!("plain {i}")).await?);
        let room = api.create_room(&owner, &format!("hooked {i}")).await?;
        api.create_webhook(&owner, room, &receiver.url).await?;
        hooked.push(room);
    }
    eprintln!("chat-bench: webhooks: {} rooms with a webhook, {} without", hooked.len(), plain.len());
    let sender = Sender {
        client: Client::builder().no_proxy().timeout(Duration::from_secs(30)).build()?,
        base_url: base_url.to_string(),
        token: owner.access_token,
    };
    let without = sender.paced(&plain, plan).await?;
    eprintln!("chat-bench: webhooks: {} sends without webhooks", without.sent);
    let started = Instant::now();
    let with = sender.paced(&hooked, plan).await?;
    eprintln!("chat-bench: webhooks: {} sends with webhooks; waiting for the deliveries", with.sent);
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while receiver.count() < with.sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let arrivals = receiver.arrivals();
    let last = arrivals.iter().map(|a| a.at).max().unwrap_or(started);
    let check = Check::of(&arrivals, &hooked, with.sent)?;
    Ok(WebhookRun {
        label: String::new(),
        without,
        with,
        delivered: arrivals.len(),
        deliveries_per_sec: arrivals.len() as f64 / last.duration_since(started).as_secs_f64().max(0.001),
        delay: check.delay,
        missing: check.missing,
        duplicates: check.duplicates,
        out_of_order: check.out_of_order,
    })
}

/// What the arrivals say.
struct Check {
    delay: Latencies,
    missing: usize,
    duplicates: usize,
    out_of_order: usize,
}

impl Check {
    fn of(arrivals: &[Arrival], rooms: &[i64], sent: usize) -> Result<Check> {
        let mut last_seq: HashMap<i64, i64> = rooms.iter().map(|r| (*r, 0)).collect();
        let mut seen = std::collections::HashSet::new();
        let (mut duplicates, mut out_of_order, mut delays) = (0, 0, Vec::with_capacity(arrivals.len()));
        for arrival in arrivals {
            let payload: Value = serde_json::from_str(&arrival.body).context("a delivery that is not JSON")?;
            let room = payload["room_id"].as_i64().context("room_id")?;
            let seq = payload["data"]["seq"].as_i64().context("data.seq")?;
            let committed: DateTime<Utc> = payload["timestamp"].as_str().context("timestamp")?.parse()?;
            delays.push((arrival.wall - committed).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            if !seen.insert((room, seq)) {
                duplicates += 1;
                continue;
            }
            let last = last_seq.entry(room).or_default();
            if seq != *last + 1 {
                out_of_order += 1;
            }
            *last = seq;
        }
        let missing = sent.saturating_sub(seen.len());
        Ok(Check { delay: Latencies::new(delays), missing, duplicates, out_of_order })
    }
}

/// The paced sends, as one user.
struct Sender {
    client: Client,
    base_url: String,
    token: String,
}

impl Sender {
    /// Sends `plan.rate` messages a second for `plan.seconds` into `rooms` in turn, each on time whatever the
    /// answers before it.
    async fn paced(&self, rooms: &[i64], plan: &Plan) -> Result<Sends> {
        let total = (plan.rate * plan.seconds) as usize;
        let interval = Duration::from_secs_f64(1.0 / plan.rate as f64);
        let started = tokio::time::Instant::now();
        let mut tasks = JoinSet::new();
        let mut latencies = Vec::with_capacity(total);
        let mut errors = 0;
        for i in 0..total {
            tokio::time::sleep_until(started + interval * i as u32).await;
            while tasks.len() >= MAX_IN_FLIGHT {
                collect(tasks.join_next().await, &mut latencies, &mut errors);
            }
            let request = self
                .client
                .post(format!("{}/api/v1/rooms/{}/messages", self.base_url, rooms[i % rooms.len()]))
                .bearer_auth(&self.token)
                .json(&json!({"body": format!("webhook bench message {i}")}));
            tasks.spawn(async move {
                let sent = Instant::now();
                let ok = request.send().await.is_ok_and(|r| r.status().is_success());
                (ok, sent.elapsed())
            });
        }
        while let Some(done) = tasks.join_next().await {
            collect(Some(done), &mut latencies, &mut errors);
        }
        Ok(Sends { sent: latencies.len(), errors, latency: Latencies::new(latencies) })
    }
}

fn collect(
    done: Option<Result<(bool, Duration), tokio::task::JoinError>>,
    latencies: &mut Vec<f64>,
    errors: &mut usize,
) {
    match done {
        Some(Ok((true, took))) => latencies.push(took.as_secs_f64() * 1000.0),
        Some(_) => *errors += 1,
        None => {}
    }
}

/// One request the receiver got: when, and its body.
#[derive(Clone)]
struct Arrival {
    at: Instant,
    wall: DateTime<Utc>,
    body: String,
}

/// A webhook receiver: HTTP/1.1 with keep-alive on 127.0.0.1, answering 200 to every POST at once.
struct Receiver {
    url: String,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
}

impl Receiver {
    async fn start() -> Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the webhook receiver")?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&arrivals);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, Arc::clone(&kept)));
            }
        });
        Ok(Receiver { url, arrivals })
    }

    fn count(&self) -> usize {
        self.arrivals.lock().map_or(0, |a| a.len())
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

/// One connection: requests one after the other (keep-alive), each read whole (`Content-Length`).
async fn serve(stream: tokio::net::TcpStream, arrivals: Arc<Mutex<Vec<Arrival>>>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let arrival =
            Arrival { at: Instant::now(), wall: Utc::now(), body: String::from_utf8_lossy(&body).into_owned() };
        if let Ok(mut list) = arrivals.lock() {
            list.push(arrival);
        }
        if write.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.is_err() {
            return;
        }
    }
}
