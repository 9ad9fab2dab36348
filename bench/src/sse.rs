//! Idle server-sent-event streams (`GET /rooms/{id}/events`), for the idle part: N streams opened (each until
//! its `subscribed` event), held doing nothing, the servers' memory read before and after.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::{Client, StatusCode};
use tokio::sync::Semaphore;

use crate::deploy::Deployment;
use crate::idle::{Holder, Reading, measure};

/// Streams being opened at once.
const OPENS_IN_FLIGHT: usize = 64;
/// How long a stream may take to say `subscribed`.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens `streams` streams (round robin over the users' rooms and the nodes), reads the memory once all are
/// subscribed, then drops them (see [`measure`]).
pub async fn hold(deployment: &Deployment, streams: usize, tokens: &[String], rooms: &[i64]) -> Result<Reading> {
    // One connection per stream: a stream holds its connection for as long as it is open.
    let client = Client::builder().no_proxy().pool_max_idle_per_host(0).build()?;
    let opens = Arc::new(Semaphore::new(OPENS_IN_FLIGHT));
    measure(deployment, streams, "SSE streams", |index, holder| {
        let user = index % tokens.len();
        let node = &deployment.nodes[index % deployment.nodes.len()];
        let url = format!("{}/api/v1/rooms/{}/events", node.base_url, rooms[user]);
        idle_stream(client.clone(), url, tokens[user].clone(), Arc::clone(&opens), holder)
    })
    .await
}

async fn idle_stream(client: Client, url: String, token: String, opens: Arc<Semaphore>, holder: Holder) {
    let opened = async {
        // `expect`: the semaphore is never closed.
        let _permit = opens.acquire().await.expect("semaphore open");
        tokio::time::timeout(OPEN_TIMEOUT, open(&client, &url, &token)).await.context("opening a stream")?
    }
    .await;
    let Some((response, held)) = holder.opened(opened) else { return };
    // Keep-alive comments and presence while it is open; an error or the end when the server ended it.
    let chunks = futures_util::stream::unfold(response, |mut response| async move {
        match response.chunk().await {
            Ok(Some(_)) => Some((true, response)),
            Ok(None) => None,
            Err(_) => Some((false, response)),
        }
    });
    held.until_stopped(Box::pin(chunks)).await;
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
