//! The limits a socket lives under, and the close codes that enforce them: 1009 for a frame over
//! 64 KiB, 1008 for binary or non-JSON frames and for flooding `send`, and 4008 for a reader that
//! falls too far behind (while the room's other readers get everything, at full speed).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::helpers::*;
use crate::ws_client::Event;
use crate::ws_delivery::{assert_exact_seqs, compact, seqs_of};
use crate::ws_frames::assert_error_frame;
use crate::ws_presence::presence_of;

db_tests!(
    frame_over_64_kib_closes_with_1009,
    binary_frame_closes_with_1008,
    text_that_is_not_json_closes_with_1008,
    flooding_sends_get_rate_limited_then_1008,
);

// The slow-reader tests post thousands of messages as fast as one user can: far above the REST
// rate a user gets by default. They measure the socket, so the per-user and per-address limits are
// lifted for them (and only for them).
db_tests_configured!(
    without_api_rate_limits =>
    reader_that_never_reads_is_closed_with_4008_while_others_get_everything,
    reader_closed_as_too_slow_goes_offline_for_the_others,
);

fn without_api_rate_limits(config: &mut backend::config::Config) {
    config.rate_limits.per_user = None;
    config.rate_limits.per_address = None;
    config.rate_limits.sends = None;
}

/// How long a test waits for the server to close a socket.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

async fn frame_over_64_kib_closes_with_1009(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let mut ws = app.ws(&alice.token).await;

    // Just under the limit is a frame like any other (here: a body too long for a message).
    let under = json!({"type": "send", "room_id": room_id, "body": "x".repeat(60 * 1024), "client_id": "big-1"});
    assert!(under.to_string().len() < 64 * 1024);
    ws.send(under).await;
    assert_error_frame(&ws.expect("error").await, "validation_failed", Some("big-1"));

    let over = json!({"type": "send", "room_id": room_id, "body": "x".repeat(70 * 1024), "client_id": "big-2"});
    ws.send(over).await;
    let (frames, code) = ws.read_to_close(CLOSE_WAIT).await;
    assert_eq!(code, Some(1009), "a frame over 64 KiB closes with 1009 (frames before: {frames:?})");
    assert!(items(&app.history_page(&alice.token, room_id, "").await).is_empty(), "nothing was stored");
}

async fn binary_frame_closes_with_1008(app: TestApp) {
    let alice = app.new_user().await;
    let mut ws = app.ws(&alice.token).await;
    ws.send_raw(WsMessage::binary(br#"{"type":"ping"}"#.to_vec())).await;
    assert_eq!(ws.expect_close().await, Some(1008), "a binary frame closes with 1008");
}

async fn text_that_is_not_json_closes_with_1008(app: TestApp) {
    let alice = app.new_user().await;
    for text in ["hello", "{\"type\": \"ping\"", ""] {
        let mut ws = app.ws(&alice.token).await;
        ws.send_raw(WsMessage::text(text)).await;
        let (frames, code) = ws.read_to_close(CLOSE_WAIT).await;
        assert_eq!(code, Some(1008), "{text:?} closes with 1008 (frames before: {frames:?})");
    }
}

async fn flooding_sends_get_rate_limited_then_1008(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let mut ws = app.ws(&alice.token).await;

    // Send in bursts of 10 as fast as the socket takes them, looking for the close in between.
    let (mut acks, mut limited, mut others) = (Vec::new(), Vec::new(), Vec::new());
    let mut code = None;
    let mut sent = 0;
    'flood: while sent < 400 {
        for _ in 0..10 {
            let frame = json!({"type": "send", "room_id": room_id, "body": format!("flood {sent}"), "client_id": format!("f-{sent}")});
            if !ws.try_send(frame).await {
                break;
            }
            sent += 1;
        }
        while let Some(event) = ws.next_event_within(Duration::from_millis(2)).await {
            match event {
                Event::Frame(f) if f["type"] == "ack" => acks.push(f),
                Event::Frame(f) if f["type"] == "error" => limited.push(f),
                Event::Frame(f) => others.push(f),
                Event::Closed(c) => {
                    code = Some(c);
                    break 'flood;
                }
            }
        }
    }
    if code.is_none() {
        let (frames, c) = ws.read_to_close(CLOSE_WAIT).await;
        for f in frames {
            match f["type"].as_str() {
                Some("ack") => acks.push(f),
                Some("error") => limited.push(f),
                _ => others.push(f),
            }
        }
        code = Some(c);
    }
    assert_eq!(
        code,
        Some(Some(1008)),
        "a flood ends with 1008 after {sent} sends, {} acks, {} errors",
        acks.len(),
        limited.len()
    );
    assert!(!limited.is_empty(), "rate_limited error frames come before the close ({} acks)", acks.len());
    for f in &limited {
        let client_id = f["client_id"].as_str().unwrap_or_else(|| panic!("the error names the send: {f}"));
        assert!(client_id.starts_with("f-"), "{f}");
        assert_error_frame(f, "rate_limited", Some(client_id));
    }
    // A burst of 40 is allowed before limiting starts.
    assert!(acks.len() >= 40, "the first 40 sends are accepted, got {} acks", acks.len());
    let stored = app.history_page(&alice.token, room_id, "limit=1").await;
    assert_eq!(seqs(&stored), [acks.len() as i64], "exactly the acked sends are stored");
}

/// What happened in `slow_reader_scenario`.
struct SlowReaderOutcome {
    /// Messages posted (seqs 1..=total).
    total: i64,
    /// What the fast reader got, in order.
    fast: Vec<Value>,
    /// How long posting took, and how long until the fast reader had everything.
    produced_in: Duration,
    read_in: Duration,
    /// How many messages the fast reader had when it saw the slow reader's user go offline.
    offline_seen_after: Option<usize>,
    /// The seqs the slow reader found buffered when it finally read, and its close code.
    slow_seqs: Vec<i64>,
    slow_close: Option<u16>,
}

/// Three users in a room: alice posts ~1 KiB messages over REST, 8 at a time; `fast` reads as they
/// come; `slow` (another user, over a small TCP buffer) never reads until the end. Posting stops
/// 200 messages after the fast reader sees the slow user go offline, or after 5000.
async fn slow_reader_scenario(app: &TestApp) -> (SlowReaderOutcome, TestUser) {
    /// The most messages the test posts; it stops earlier once the slow reader is gone.
    const MAX_MESSAGES: usize = 5000;
    /// Messages posted after the slow reader was dropped, to see the room go on at full speed.
    const AFTER_DROP: usize = 200;
    let alice = app.new_user().await;
    let fast_user = app.new_user().await;
    let slow_user = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    for u in [&fast_user, &slow_user] {
        expect_status(app.join_room(&u.token, room_id).await, StatusCode::OK).await;
    }
    let mut fast = app.ws(&fast_user.token).await;
    fast.subscribe(room_id, None).await;
    let mut slow = app.ws_small_buffer(&slow_user.token).await;
    slow.subscribe(room_id, None).await;
    // From here on, `slow` is not read until the end.

    let padding = "p".repeat(1000);
    let posted = AtomicUsize::new(0);
    let stop_after = AtomicUsize::new(MAX_MESSAGES);
    let producing = AtomicBool::new(true);
    let started = Instant::now();
    let producer = async {
        futures_util::stream::iter(1..=MAX_MESSAGES)
            .take_while(|i| std::future::ready(*i <= stop_after.load(Ordering::Relaxed)))
            .map(|i| {
                let body = json!({"body": format!("{i} {padding}")});
                let (token, posted) = (&alice.token, &posted);
                async move {
                    expect_json(app.post_message(token, room_id, &body).await, StatusCode::CREATED).await;
                    posted.fetch_add(1, Ordering::Relaxed);
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<()>>()
            .await;
        producing.store(false, Ordering::Relaxed);
        started.elapsed()
    };
    let reader = async {
        let mut got: Vec<Value> = Vec::new();
        let mut offline_seen_after = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while producing.load(Ordering::Relaxed) || got.len() < posted.load(Ordering::Relaxed) {
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "the fast reader got {} of {} messages in time (posting done: {}); seqs {}",
                    got.len(),
                    posted.load(Ordering::Relaxed),
                    !producing.load(Ordering::Relaxed),
                    compact(&seqs_of(&got))
                );
            }
            // Short waits: the loop must also notice when the producer is done.
            match fast.next_event_within(Duration::from_millis(100)).await {
                Some(Event::Frame(f)) if f["type"] == "message" => got.push(f["message"].clone()),
                // The slow reader's socket is gone: its user went offline. Finish with a last stretch.
                Some(Event::Frame(f)) if presence_of(&f, slow_user.id) && f["online"] == false => {
                    offline_seen_after.get_or_insert(got.len());
                    stop_after.fetch_min(posted.load(Ordering::Relaxed) + AFTER_DROP, Ordering::Relaxed);
                }
                Some(Event::Frame(_)) | None => {}
                Some(Event::Closed(code)) => {
                    panic!("the fast reader was closed ({code:?}) after {} messages", got.len())
                }
            }
        }
        (got, offline_seen_after, started.elapsed())
    };
    let (produced_in, (fast_got, mut offline_seen_after, read_in)) = tokio::join!(producer, reader);
    let total = posted.load(Ordering::Relaxed) as i64;
    if offline_seen_after.is_none() {
        // It may come just after the last message.
        let seen = fast.expect_silence(Duration::from_millis(500), "", |_| false).await;
        if seen.iter().any(|f| presence_of(f, slow_user.id) && f["online"] == false) {
            offline_seen_after = Some(fast_got.len());
        }
    }

    // Now the slow reader reads what was buffered for it, then finds the close.
    let (frames, slow_close) = slow.read_to_close(Duration::from_secs(20)).await;
    let slow_seqs: Vec<i64> =
        frames.iter().filter(|f| f["type"] == "message").map(|f| f["message"]["seq"].as_i64().unwrap()).collect();
    eprintln!(
        "slow reader scenario: posted {total} in {produced_in:?}, fast done {read_in:?}, offline seen {offline_seen_after:?}, slow {} then {slow_close:?}",
        slow_seqs.len()
    );
    let outcome =
        SlowReaderOutcome { total, fast: fast_got, produced_in, read_in, offline_seen_after, slow_seqs, slow_close };
    (outcome, slow_user)
}

async fn reader_that_never_reads_is_closed_with_4008_while_others_get_everything(app: TestApp) {
    let (o, _) = slow_reader_scenario(&app).await;
    assert_exact_seqs(&seqs_of(&o.fast), 1, o.total, "the fast reader");
    assert!(
        o.read_in <= o.produced_in + Duration::from_secs(3),
        "the fast reader keeps up: it had all {} messages {:?} after the last was posted",
        o.total,
        o.read_in.saturating_sub(o.produced_in)
    );
    assert_eq!(
        o.slow_close,
        Some(4008),
        "the reader that never read is closed with 4008 (it had {} of {} messages: {})",
        o.slow_seqs.len(),
        o.total,
        compact(&o.slow_seqs)
    );
    assert!((o.slow_seqs.len() as i64) < o.total, "the slow reader was cut off before the end");
    assert_exact_seqs(&o.slow_seqs, 1, o.slow_seqs.len() as i64, "what the slow reader got before the close");
}

async fn reader_closed_as_too_slow_goes_offline_for_the_others(app: TestApp) {
    let (o, slow_user) = slow_reader_scenario(&app).await;
    assert_eq!(o.slow_close, Some(4008), "the slow reader is closed with 4008");
    assert!(
        o.offline_seen_after.is_some(),
        "the room sees presence_changed {{user: {}, online: false}} when the slow reader's only socket is \
         closed with 4008; the fast reader got all {} messages and no such frame",
        slow_user.id,
        o.total
    );
    // And a newcomer does not list the slow user as online.
    let newcomer = app.new_user().await;
    let mut ws = app.ws(&newcomer.token).await;
    let room_id = o.fast[0]["room_id"].as_i64().unwrap();
    let (_, _, presence) = ws.subscribe_with_presence(room_id, None).await;
    assert!(!crate::ws_presence::online_ids(&presence).contains(&slow_user.id), "{presence}");
}
