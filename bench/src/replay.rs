//! Recovery: a room holds N messages posted over REST; a client that saw none of them subscribes with
//! `since: 0`. Timed from sending `subscribe` to receiving `subscribed`, after the N replayed `message`
//! frames, which must be seqs 1..N in order. One warm-up run first (not counted), then the runs, each on
//! a fresh socket (on alternate nodes when there are two).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::deploy::Deployment;
use crate::ws::{self, Api, Frame, MessageFrame};

const POSTS_IN_FLIGHT: usize = 16;
const READ_BUFFER: usize = 64 * 1024;
/// The target for a 1,000-message replay.
pub const TARGET_MS: f64 = 50.0;
/// One replay that takes longer than this fails the run.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct Plan {
    pub messages: usize,
    pub runs: usize,
}

pub struct ReplayRun {
    pub label: String,
    pub messages: usize,
    /// Milliseconds, in run order (the warm-up excluded).
    pub runs_ms: Vec<f64>,
    pub warmup_ms: f64,
}

impl ReplayRun {
    fn sorted(&self) -> Vec<f64> {
        let mut sorted = self.runs_ms.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
    }

    pub fn median_ms(&self) -> f64 {
        let sorted = self.sorted();
        match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }

    pub fn min_ms(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(0.0)
    }

    pub fn max_ms(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(0.0)
    }
}

pub async fn run(deployment: &Deployment, plan: &Plan) -> Result<ReplayRun> {
    let api = Api::new(&deployment.nodes[0].base_url).await?;
    let tag = std::process::id();
    let user = api.register(&format!("bench_replay_{tag}")).await?;
    let room_id = api.create_room(&user, "replay").await?;
    let (api_ref, user_ref) = (&api, &user);
    let seqs: Vec<i64> = ws::bounded(
        POSTS_IN_FLIGHT,
        (0..plan.messages).map(|n| async move {
            let body = format!("replayed message {n}: the quick brown fox jumps over the lazy dog");
            api_ref.post_message(user_ref, room_id, &body, &format!("replay-{n}")).await
        }),
    )
    .await
    .context("posting the messages")?;
    let last = seqs.iter().copied().max().unwrap_or(0);
    if last != plan.messages as i64 {
        bail!("posted {} messages, the room's last seq is {last}", plan.messages);
    }
    eprintln!("chat-bench: replay on {}: {} messages posted", deployment.label, plan.messages);

    let mut runs_ms = Vec::with_capacity(plan.runs);
    let mut warmup_ms = 0.0;
    for run in 0..=plan.runs {
        let node = &deployment.nodes[run % deployment.nodes.len()];
        let elapsed =
            tokio::time::timeout(REPLAY_TIMEOUT, replay_once(&node.ws_url, &user.access_token, room_id, last))
                .await
                .map_err(|_| anyhow::anyhow!("no `subscribed` within {}s", REPLAY_TIMEOUT.as_secs()))??;
        let ms = elapsed.as_secs_f64() * 1000.0;
        if run == 0 {
            warmup_ms = ms;
        } else {
            runs_ms.push(ms);
        }
    }
    let run = ReplayRun { label: deployment.label.clone(), messages: plan.messages, runs_ms, warmup_ms };
    eprintln!("chat-bench:   {}", describe(&run));
    Ok(run)
}

pub fn describe(run: &ReplayRun) -> String {
    format!(
        "{} messages: median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs (warm-up {:.1} ms)",
        run.messages,
        run.median_ms(),
        run.min_ms(),
        run.max_ms(),
        run.runs_ms.len(),
        run.warmup_ms
    )
}

/// One timed replay on a fresh socket; checks the frames are seqs 1..=last in order.
async fn replay_once(ws_url: &str, token: &str, room_id: i64, last: i64) -> Result<Duration> {
    let mut socket = ws::connect(ws_url, token, READ_BUFFER).await?;
    let subscribe = serde_json::json!({"type": "subscribe", "room_id": room_id, "since": 0}).to_string();
    let started = Instant::now();
    socket.send(Message::text(subscribe)).await.context("sending subscribe")?;
    let mut expected = 1;
    let elapsed = loop {
        let Some(text) = ws::next_text(&mut socket).await? else { bail!("the socket closed during the replay") };
        if let Some(frame) = MessageFrame::parse(&text)? {
            if frame.message.room_id != room_id || frame.message.seq != expected {
                bail!("replay: expected seq {expected}, got {} in room {}", frame.message.seq, frame.message.room_id);
            }
            expected += 1;
            continue;
        }
        let frame = Frame::parse(&text)?;
        match frame.kind.as_ref() {
            "subscribed" => {
                let elapsed = started.elapsed();
                if frame.truncated == Some(true) {
                    bail!("subscribed with truncated: true for a {last}-message gap");
                }
                if expected - 1 != last || frame.last_seq != Some(last) {
                    bail!(
                        "replay: {} messages before `subscribed` (last_seq {:?}), expected {last}",
                        expected - 1,
                        frame.last_seq
                    );
                }
                break elapsed;
            }
            "error" => bail!("replay: {}", ws::shorten(&text)),
            _ => {}
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.close(None)).await;
    Ok(elapsed)
}
