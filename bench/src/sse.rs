//! Idle server-sent-event streams (`GET /rooms/{id}/events`), for the idle part: N streams opened (each until
//! its `subscribed` event), held doing nothing, the servers' memory read before and after.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::{Client, StatusCode};
use tokio::sync::Semaphore;

use crate::deploy::Deployment;
use crate::idle::{Holder, Reading, hold_all, total_rss};

/// Streams being opened at once.
const OPENS_IN_FLIGHT: usize = 64;
/// Before each reading, the server gets this long to finish what the last step started.
const SETTLE: Duration = Duration::from_secs(2);
/// How long a stream may take to say `subscribed`.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Streams opened and closed before the "before" reading (one-time set-up, as for sockets).
const WARM_UP_STREAMS: usize = 100;

/// On servers just restarted (so that the memory the sockets before them left to the allocator does not
/// hide the streams' own): opens `streams` streams (round robin over the users' rooms and the nodes), reads
/// the memory once all are subscribed, then drops them.
pub async fn hold(deployment: &Deployment, streams: usize, tokens: &[String], rooms: &[i64]) -> Result<Reading> {
    // One connection per stream: a stream holds its connection for as long as it is open.
    let client = Client::builder().no_proxy().pool_max_idle_per_host(0).build()?;
    batch(&client, deployment, streams.min(WARM_UP_STREAMS), tokens, rooms, None).await.context("warm-up streams")?;
    tokio::time::sleep(SETTLE).await;
    let pids = deployment.pids();
    let rss_before_kib = total_rss(&pids)?;
    eprintln!("chat-bench: idle on {}: {} KiB before, opening {streams} SSE streams", deployment.label, rss_before_kib);
    let (open_secs, closed, rss_after_kib) = batch(&client, deployment, streams, tokens, rooms, Some(&pids)).await?;
    Ok(Reading { connections: streams, rss_before_kib, rss_after_kib: rss_after_kib.unwrap_or(0), open_secs, closed })
}

/// Opens `streams` streams and (with `pids`) reads the memory once all are open; then drops them all.
/// Returns the time to open them, how many the server ended, the memory.
async fn batch(
    client: &Client,
    deployment: &Deployment,
    streams: usize,
    tokens: &[String],
    rooms: &[i64],
    pids: Option<&[u32]>,
) -> Result<(f64, u64, Option<u64>)> {
    let opens = Arc::new(Semaphore::new(OPENS_IN_FLIGHT));
    hold_all(streams, pids, "streams", |index, holder| {
        let user = index % tokens.len();
        let node = &deployment.nodes[index % deployment.nodes.len()];
        let url = format!("{}/api/v1/rooms/{}/events", node.base_url, rooms[user]);
        idle_stream(client.clone(), url, tokens[user].clone(), Arc::clone(&opens), holder)
    })
    .await
}

async fn idle_stream(client: Client, url: String, token: String, opens: Arc<Semaphore>, holder: Holder) {
    let Holder { ready, closed, mut stop } = holder;
    let opened = async {
        // `expect`: the semaphore is never closed.
        let _permit = opens.acquire().await.expect("semaphore open");
        tokio::time::timeout(OPEN_TIMEOUT, open(&client, &url, &token)).await.context("opening a stream")?
    }
    .await;
    let mut response = match opened {
        Ok(response) => {
            let _ = ready.send(Ok(()));
            response
        }
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    drop(ready);
    let stopped = stop.wait_for(|stop| *stop);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            chunk = response.chunk() => match chunk {
                // Keep-alive comments, presence.
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
        }
    }
}

/// A stream, read up to its `subscribed` event.
async fn open(client: &Client, url: &str, token: &str) -> Result<reqwest::Response> {
    let mut response = client.get(url).bearer_auth(token).header("accept", "text/event-stream").send().await?;
    if response.status() != StatusCode::OK {
        bail!("GET {url}: {}", response.status());
    }
    let mut seen = String::new();
    while !seen.contains("event: subscribed") {
        match response.chunk().await? {
            Some(bytes) => seen.push_str(&String::from_utf8_lossy(&bytes)),
            None => bail!("the stream ended before `subscribed`: {seen}"),
        }
    }
    Ok(response)
}
