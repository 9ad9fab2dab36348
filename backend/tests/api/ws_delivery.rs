//! Delivery on one node: every subscriber sees the same messages in the same order, once; a client
//! that was away catches up with `since` (from the database, exactly once, also while messages keep
//! coming); past 1000 missed messages it is told to page over REST; edits and deletes are pushed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::ws_client::WsClient;
use crate::ws_frames::QUIET;

db_tests!(
    subscribers_see_the_same_order_under_concurrent_senders,
    reconnect_with_since_gets_what_was_missed_exactly_once,
    reconnect_with_since_while_messages_keep_coming_loses_and_repeats_nothing,
    more_than_1000_missed_is_truncated_and_rest_pages_the_gap,
    edits_and_deletes_reach_subscribers,
);

/// Posts `n` messages over REST, `concurrency` at a time, bodies from `body(i)` for i in 1..=n;
/// asserts each is created and returns them in completion order.
pub async fn post_concurrently(
    app: &TestApp,
    token: &str,
    room_id: i64,
    n: usize,
    concurrency: usize,
    body: impl Fn(usize) -> String,
) -> Vec<Value> {
    futures_util::stream::iter(1..=n)
        .map(|i| {
            let text = body(i);
            async move {
                expect_json(app.post_message(token, room_id, &json!({"body": text})).await, StatusCode::CREATED).await
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// Reads `message` frames of `room_id` until one with seq `last` arrives (or `wait` passes, then
/// panics); returns every message seen, in arrival order.
pub async fn messages_until(ws: &mut WsClient, room_id: i64, last: i64, wait: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut got: Vec<Value> = Vec::new();
    while got.last().is_none_or(|m| m["seq"].as_i64() < Some(last)) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let seen: Vec<i64> = got.iter().filter_map(|m| m["seq"].as_i64()).collect();
        match ws.next_event_within(left).await {
            Some(crate::ws_client::Event::Frame(f)) if f["type"] == "message" && f["message"]["room_id"] == room_id => {
                got.push(f["message"].clone());
            }
            Some(crate::ws_client::Event::Frame(_)) => {}
            Some(crate::ws_client::Event::Closed(code)) => {
                panic!("the socket closed ({code:?}) before seq {last}; seqs seen: {}", compact(&seen))
            }
            None => panic!("no seq {last} within {wait:?}; seqs seen: {}", compact(&seen)),
        }
    }
    got
}

/// The seqs of messages.
pub fn seqs_of(messages: &[Value]) -> Vec<i64> {
    messages.iter().map(|m| m["seq"].as_i64().expect("seq")).collect()
}

/// `1..=5, 7, 9..=10` for a list of seqs, so that failures stay readable.
pub fn compact(seqs: &[i64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let start = seqs[i];
        let mut j = i;
        while j + 1 < seqs.len() && seqs[j + 1] == seqs[j] + 1 {
            j += 1;
        }
        parts.push(if j == i { start.to_string() } else { format!("{start}..={}", seqs[j]) });
        i = j + 1;
    }
    format!("[{}]", parts.join(", "))
}

/// Asserts `got` is exactly `from..=to`, in order.
pub fn assert_exact_seqs(got: &[i64], from: i64, to: i64, who: &str) {
    let want: Vec<i64> = (from..=to).collect();
    assert!(got == want.as_slice(), "{who}: expected seqs {}, got {}", compact(&want), compact(got));
}

async fn subscribers_see_the_same_order_under_concurrent_senders(app: TestApp) {
    const SENDERS: usize = 3;
    const EACH: usize = 30;
    const TOTAL: i64 = (SENDERS * EACH) as i64;
    let owner = app.new_user().await;
    let room_id = app.room_id(&owner, "public").await;
    let mut senders = Vec::new();
    let mut sockets = Vec::new();
    for _ in 0..SENDERS + 2 {
        let user = app.new_user().await;
        expect_status(app.join_room(&user.token, room_id).await, StatusCode::OK).await;
        let mut ws = app.ws(&user.token).await;
        ws.subscribe(room_id, None).await;
        sockets.push(ws);
        senders.push(user);
    }

    // The first three sockets send, all at once; every socket (senders included) listens.
    let (sending, observers) = sockets.split_at_mut(SENDERS);
    let sends = sending.iter_mut().enumerate().map(|(s, ws)| async move {
        for i in 0..EACH {
            ws.send(json!({"type": "send", "room_id": room_id, "body": format!("s{s} m{i}"), "client_id": format!("s{s}-{i}")}))
                .await;
        }
    });
    futures_util::future::join_all(sends).await;

    let mut orders: Vec<Vec<Value>> = Vec::new();
    let mut acks_per_sender = Vec::new();
    for ws in sending.iter_mut().chain(observers.iter_mut()) {
        let mut messages = Vec::new();
        let mut acks = Vec::new();
        while messages.len() < TOTAL as usize || (orders.len() < SENDERS && acks.len() < EACH) {
            let f = ws.next_frame().await.expect("the socket stays open");
            match f["type"].as_str() {
                Some("message") => messages.push(f["message"].clone()),
                Some("ack") => acks.push(f),
                Some("error") => panic!("a send failed: {f}"),
                _ => {}
            }
        }
        if orders.len() < SENDERS {
            acks_per_sender.push(acks);
        }
        orders.push(messages);
    }
    for (i, messages) in orders.iter().enumerate() {
        assert_exact_seqs(&seqs_of(messages), 1, TOTAL, &format!("socket {i}"));
        assert_eq!(messages, &orders[0], "socket {i} saw the same messages as socket 0");
    }
    // Each sender's acks name its own client_ids and the very messages everyone saw.
    for (s, acks) in acks_per_sender.iter().enumerate() {
        assert_eq!(acks.len(), EACH, "sender {s} got one ack per send");
        for ack in acks {
            let m = &ack["message"];
            assert_eq!(ack["client_id"], m["client_id"], "{ack}");
            assert!(m["client_id"].as_str().unwrap().starts_with(&format!("s{s}-")), "{ack}");
            assert_eq!(
                &orders[0][m["seq"].as_i64().unwrap() as usize - 1],
                m,
                "the ack's message is the delivered one"
            );
        }
    }
    let page = app.history_page(&owner.token, room_id, "limit=100").await;
    assert_eq!(items(&page), &orders[0], "the stored order is the delivered order");
    for ws in sockets.iter_mut() {
        ws.expect_silence(QUIET, "a repeated message", |f| f["type"] == "message").await;
    }
}

async fn reconnect_with_since_gets_what_was_missed_exactly_once(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let room_id = app.room_id(&bob, "public").await;
    expect_status(app.join_room(&alice.token, room_id).await, StatusCode::OK).await;

    let mut ws = app.ws(&alice.token).await;
    ws.subscribe(room_id, None).await;
    app.send_many(&bob, room_id, 3).await;
    assert_eq!(ws.message_seqs(room_id, 3).await, [1, 2, 3]);
    ws.close().await;

    // Away: five messages.
    for i in 4..=8 {
        app.send(&bob, room_id, &format!("while away {i}")).await;
    }
    let mut ws = app.ws(&alice.token).await;
    let (replayed, subscribed) = ws.subscribe(room_id, Some(3)).await;
    let replayed: Vec<Value> = replayed.iter().map(|f| f["message"].clone()).collect();
    assert_exact_seqs(&seqs_of(&replayed), 4, 8, "replay");
    let stored = app.history_page(&alice.token, room_id, "after=3").await;
    assert_eq!(&replayed, items(&stored), "the replay is what is stored");
    assert_eq!(subscribed["last_seq"], 8, "{subscribed}");
    assert_eq!(subscribed["truncated"], false, "{subscribed}");

    // Then live, once.
    let m = app.send(&bob, room_id, "back").await;
    let live = ws.expect("message").await;
    assert_eq!(live["message"], m);
    assert_eq!(live["message"]["seq"], 9);
    ws.expect_silence(QUIET, "a repeated message", |f| f["type"] == "message").await;
}

async fn reconnect_with_since_while_messages_keep_coming_loses_and_repeats_nothing(app: TestApp) {
    const BEFORE: i64 = 10;
    const DURING: usize = 150;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let room_id = app.room_id(&bob, "public").await;
    expect_status(app.join_room(&alice.token, room_id).await, StatusCode::OK).await;
    app.send_many(&bob, room_id, BEFORE as usize).await;
    let last = BEFORE + DURING as i64;

    let posted = AtomicUsize::new(0);
    let producer = async {
        for i in 1..=DURING {
            app.send(&bob, room_id, &format!("during {i}")).await;
            posted.fetch_add(1, Ordering::Relaxed);
        }
    };
    // Alice comes back with since=10 while Bob is in the middle of posting.
    let consumer = async {
        while posted.load(Ordering::Relaxed) < 30 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut ws = app.ws(&alice.token).await;
        let (replayed, subscribed) = ws.subscribe(room_id, Some(BEFORE)).await;
        let mut got: Vec<Value> = replayed.iter().map(|f| f["message"].clone()).collect();
        let replay_end = got.last().map_or(BEFORE, |m| m["seq"].as_i64().unwrap());
        assert_eq!(subscribed["last_seq"], replay_end, "last_seq is where the replay ended: {subscribed}");
        if replay_end < last {
            got.extend(messages_until(&mut ws, room_id, last, Duration::from_secs(20)).await);
        }
        (ws, got)
    };
    let ((), (mut ws, got)) = tokio::join!(producer, consumer);
    assert_exact_seqs(&seqs_of(&got), BEFORE + 1, last, "alice");
    ws.expect_silence(QUIET, "a repeated message", |f| f["type"] == "message").await;
}

async fn more_than_1000_missed_is_truncated_and_rest_pages_the_gap(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let room_id = app.room_id(&bob, "public").await;
    expect_status(app.join_room(&alice.token, room_id).await, StatusCode::OK).await;
    post_concurrently(&app, &bob.token, room_id, 1005, 8, |i| format!("backlog {i}")).await;

    // Exactly 1000 missed (since=5): all replayed.
    let mut full = app.ws(&alice.token).await;
    let (replayed, subscribed) = full.subscribe(room_id, Some(5)).await;
    let replayed: Vec<i64> = replayed.iter().map(|f| f["message"]["seq"].as_i64().unwrap()).collect();
    assert_exact_seqs(&replayed, 6, 1005, "a replay of exactly 1000");
    assert_eq!(subscribed["truncated"], false, "{subscribed}");
    assert_eq!(subscribed["last_seq"], 1005, "{subscribed}");

    // 1001 missed (since=4): none of them, and truncated.
    let mut ws = app.ws(&alice.token).await;
    let (replayed, subscribed) = ws.subscribe(room_id, Some(4)).await;
    assert!(replayed.is_empty(), "no messages when truncated, got {}", replayed.len());
    assert_eq!(subscribed["truncated"], true, "{subscribed}");
    assert_eq!(subscribed["last_seq"], 1005, "{subscribed}");

    // The client pages the gap over REST from `after=since`.
    let mut paged = Vec::new();
    let mut after = 4;
    loop {
        let page = app.history_page(&alice.token, room_id, &format!("after={after}&limit=100")).await;
        let s = seqs(&page);
        paged.extend(&s);
        if page["has_more"] == false {
            break;
        }
        after = *s.last().expect("a page with has_more is not empty");
        assert!(paged.len() <= 1001, "paging does not end");
    }
    assert_exact_seqs(&paged, 5, 1005, "the REST pages");

    // Both sockets are live afterwards.
    let m = app.send(&bob, room_id, "after the gap").await;
    for socket in [&mut full, &mut ws] {
        assert_eq!(socket.expect("message").await["message"], m);
    }
}

async fn edits_and_deletes_reach_subscribers(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;
    let mut a = app.ws(&alice.token).await;
    let mut b = app.ws(&bob.token).await;
    a.subscribe(room_id, None).await;
    b.subscribe(room_id, None).await;
    let m = app.send(&alice, room_id, "tpyo").await;
    app.send(&alice, room_id, "keep me").await;

    let edited =
        expect_json(app.edit_message(&alice.token, room_id, 1, &json!({"body": "typo"})).await, StatusCode::OK).await;
    for ws in [&mut a, &mut b] {
        let f = ws.expect("message_updated").await;
        assert_message(&f["message"]);
        assert_eq!(f["message"], edited, "{f}");
        assert_eq!(f["message"]["seq"], 1);
        assert_eq!(f["message"]["id"], m["id"]);
        assert_eq!(f["message"]["body"], "typo");
        assert!(f["message"]["edited_at"].is_string(), "edited_at is set: {f}");
    }

    expect_status(app.delete_message(&alice.token, room_id, 1).await, StatusCode::NO_CONTENT).await;
    for ws in [&mut a, &mut b] {
        let f = ws.expect("message_deleted").await;
        assert_eq!(f, json!({"type": "message_deleted", "room_id": room_id, "seq": 1}));
    }
    // The room owner (alice) deletes bob's message too: pushed as well.
    let theirs = app.send(&bob, room_id, "bob's").await;
    for ws in [&mut a, &mut b] {
        assert_eq!(ws.expect("message").await["message"]["seq"], 3);
    }
    expect_status(app.delete_message(&alice.token, room_id, 3).await, StatusCode::NO_CONTENT).await;
    assert_eq!(b.expect("message_deleted").await["seq"], theirs["seq"]);
}
