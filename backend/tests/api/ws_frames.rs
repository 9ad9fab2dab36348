//! The WebSocket frames one by one, on one node: every client frame and the server's answer,
//! `ready`, and the error frames (which never close the socket).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::ws_client::{Connect, WsClient};

db_tests!(
    ready_is_the_first_frame,
    subscribe_with_since_replays_then_subscribed_then_presence,
    subscribe_without_since_replays_nothing,
    unsubscribe_stops_delivery,
    send_reaches_every_subscriber_once_and_no_one_else,
    resend_with_same_client_id_is_acked_with_the_first_message,
    typing_reaches_others_not_the_sender,
    read_moves_the_read_marker,
    ping_gets_pong,
    invalid_frames_get_an_error_and_the_socket_stays_open,
    extreme_numbers_in_frames_are_answered_and_the_socket_stays_open,
    send_to_a_room_not_visible_is_room_not_found,
    subscribe_to_a_room_not_visible_is_room_not_found,
    send_without_messages_write_scope_is_insufficient_scope,
    send_with_an_empty_body_is_validation_failed,
);

/// How long a test listens to be sure something does not arrive.
pub const QUIET: Duration = Duration::from_millis(500);

/// Asserts an `error` frame: `code`, a non-empty `message`, and `client_id` when one is expected.
pub fn assert_error_frame(f: &Value, code: &str, client_id: Option<&str>) {
    assert_eq!(f["type"], "error", "an error frame: {f}");
    assert_eq!(f["code"], code, "error code: {f}");
    assert!(f["message"].as_str().is_some_and(|m| !m.is_empty()), "error.message is a non-empty string: {f}");
    if let Some(client_id) = client_id {
        assert_eq!(f["client_id"], client_id, "the error names the send's client_id: {f}");
    }
}

fn is_message(f: &Value) -> bool {
    f["type"] == "message"
}

/// Alice owns a public room that Bob has joined.
async fn two_members(app: &TestApp) -> (TestUser, TestUser, i64) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;
    (alice, bob, room_id)
}

async fn ready_is_the_first_frame(app: TestApp) {
    let alice = app.new_user().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let Connect::Open(mut ws) = app.ws_connect(&app.ws_url(""), Some(&alice.token), None).await else {
            panic!("the upgrade with a valid token was refused");
        };
        let ready = ws.next_frame().await.expect("a first frame");
        assert_eq!(ready["type"], "ready", "the first frame is ready: {ready}");
        assert_user(&ready["user"]);
        assert_eq!(ready["user"]["id"], alice.id, "{ready}");
        assert_eq!(ready["user"]["username"], alice.user["username"], "{ready}");
        assert_eq!(ready["user"]["display_name"], alice.user["display_name"], "{ready}");
        let id = ready["connection_id"].as_str().unwrap_or_else(|| panic!("connection_id is a string: {ready}"));
        assert!(!id.is_empty(), "connection_id is not empty: {ready}");
        ids.push(id.to_owned());
        ws.close().await;
    }
    assert_ne!(ids[0], ids[1], "each connection has its own id");
}

async fn subscribe_with_since_replays_then_subscribed_then_presence(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    app.send_many(&alice, room_id, 3).await;
    let history = app.history_page(&alice.token, room_id, "").await;

    let mut ws = app.ws(&alice.token).await;
    let (replayed, subscribed, presence) = ws.subscribe_with_presence(room_id, Some(1)).await;
    let replayed: Vec<&Value> = replayed.iter().map(|f| &f["message"]).collect();
    assert_eq!(replayed, items(&history)[1..].iter().collect::<Vec<_>>(), "the replay is seqs 2 and 3, as stored");
    assert_eq!(subscribed, json!({"type": "subscribed", "room_id": room_id, "last_seq": 3, "truncated": false}));
    assert_eq!(presence["type"], "presence");
    assert_eq!(presence["room_id"], room_id);
    let online = presence["online"].as_array().unwrap_or_else(|| panic!("presence.online is an array: {presence}"));
    assert_eq!(online.len(), 1, "only alice is online: {presence}");
    assert_user(&online[0]);
    assert_eq!(online[0]["id"], alice.id);

    // Then live.
    let m = app.send(&alice, room_id, "live").await;
    assert_eq!(ws.expect("message").await["message"], m);
}

async fn subscribe_without_since_replays_nothing(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    app.send_many(&alice, room_id, 2).await;

    let mut ws = app.ws(&alice.token).await;
    let (replayed, subscribed, _) = ws.subscribe_with_presence(room_id, None).await;
    assert!(replayed.is_empty(), "no replay without since: {replayed:?}");
    assert_eq!(subscribed["last_seq"], 2, "{subscribed}");
    assert_eq!(subscribed["truncated"], false, "{subscribed}");

    let m = app.send(&alice, room_id, "third").await;
    let f = ws.expect("message").await;
    assert_eq!(f["message"], m);
    assert_eq!(f["message"]["seq"], 3);
}

async fn unsubscribe_stops_delivery(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app).await;
    let mut a = app.ws(&alice.token).await;
    let mut b = app.ws(&bob.token).await;
    a.subscribe(room_id, None).await;
    b.subscribe(room_id, None).await;

    a.send(json!({"type": "unsubscribe", "room_id": room_id})).await;
    a.ping_pong().await;
    let m = app.send(&bob, room_id, "after alice left").await;
    assert_eq!(b.expect("message").await["message"], m, "bob still gets messages");
    a.expect_silence(QUIET, "message after unsubscribe", is_message).await;

    // Subscribing again with since brings what was missed.
    let (replayed, subscribed) = a.subscribe(room_id, Some(0)).await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0]["message"], m);
    assert_eq!(subscribed["last_seq"], 1);
}

async fn send_reaches_every_subscriber_once_and_no_one_else(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app).await;
    let carol = app.new_user().await;
    expect_status(app.join_room(&carol.token, room_id).await, StatusCode::OK).await;
    let mut a = app.ws(&alice.token).await;
    let mut b = app.ws(&bob.token).await;
    // Carol is a member with a socket, but not subscribed.
    let mut c = app.ws(&carol.token).await;
    a.subscribe(room_id, None).await;
    b.subscribe(room_id, None).await;

    a.send(json!({"type": "send", "room_id": room_id, "body": "hello all", "client_id": "k-1"})).await;
    let ack = a.expect("ack").await;
    assert_eq!(ack["client_id"], "k-1");
    let m = &ack["message"];
    assert_message(m);
    assert_eq!(m["room_id"], room_id);
    assert_eq!(m["seq"], 1);
    assert_eq!(m["body"], "hello all");
    assert_eq!(m["client_id"], "k-1");
    assert_eq!(m["author"]["id"], alice.id);
    // Committed before the ack.
    assert_eq!(items(&app.history_page(&bob.token, room_id, "").await), &vec![m.clone()]);

    for ws in [&mut a, &mut b] {
        assert_eq!(&ws.expect("message").await["message"], m);
    }
    for ws in [&mut a, &mut b, &mut c] {
        ws.expect_silence(QUIET, "a second message frame", is_message).await;
    }
}

async fn resend_with_same_client_id_is_acked_with_the_first_message(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app).await;
    let mut a = app.ws(&alice.token).await;
    let mut b = app.ws(&bob.token).await;
    a.subscribe(room_id, None).await;
    b.subscribe(room_id, None).await;

    a.send(json!({"type": "send", "room_id": room_id, "body": "first", "client_id": "dup-1"})).await;
    a.send(json!({"type": "send", "room_id": room_id, "body": "retried", "client_id": "dup-1"})).await;
    let (mut acks, mut messages) = (Vec::new(), Vec::new());
    while acks.len() < 2 {
        let f = a.next_frame().await.expect("the socket stays open");
        match f["type"].as_str() {
            Some("ack") => acks.push(f),
            Some("message") => messages.push(f),
            Some("error") => panic!("a resend is not an error: {f}"),
            _ => {}
        }
    }
    for ack in &acks {
        assert_eq!(ack["client_id"], "dup-1", "{ack}");
    }
    assert_eq!(acks[1]["message"], acks[0]["message"], "the resend is acked with the first message");
    assert_eq!(acks[0]["message"]["seq"], 1);
    assert_eq!(acks[0]["message"]["body"], "first");

    messages.extend(a.expect_silence(QUIET, "", |_| false).await.into_iter().filter(is_message));
    assert_eq!(messages.len(), 1, "the sender gets one message frame: {messages:?}");
    assert_eq!(b.expect("message").await["message"], acks[0]["message"]);
    b.expect_silence(QUIET, "a second message frame", is_message).await;
    let page = app.history_page(&alice.token, room_id, "").await;
    assert_eq!(seqs(&page), [1], "one message stored: {page}");

    // No seq was spent on the duplicate.
    a.send(json!({"type": "send", "room_id": room_id, "body": "next", "client_id": "dup-2"})).await;
    assert_eq!(a.expect("ack").await["message"]["seq"], 2);
}

async fn typing_reaches_others_not_the_sender(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app).await;
    let mut a = app.ws(&alice.token).await;
    let mut b = app.ws(&bob.token).await;
    a.subscribe(room_id, None).await;
    b.subscribe(room_id, None).await;

    a.send(json!({"type": "typing", "room_id": room_id})).await;
    let t = b.expect("typing").await;
    assert_eq!(t["room_id"], room_id, "{t}");
    assert_user(&t["user"]);
    assert_eq!(t["user"]["id"], alice.id, "{t}");

    let before_pong = a.ping_pong().await;
    assert!(before_pong.iter().all(|f| f["type"] != "typing"), "the typist does not see it: {before_pong:?}");
    a.expect_silence(QUIET, "typing for the typist", |f| f["type"] == "typing").await;
    // Typing is not stored.
    assert!(items(&app.history_page(&alice.token, room_id, "").await).is_empty());
}

async fn read_moves_the_read_marker(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app).await;
    app.send_many(&bob, room_id, 3).await;
    let mut a = app.ws(&alice.token).await;
    a.subscribe(room_id, None).await;

    a.send(json!({"type": "read", "room_id": room_id, "seq": 2})).await;
    a.ping_pong().await;
    let room = app.room_view(&alice.token, room_id).await;
    assert_eq!(room["last_read_seq"], 2, "{room}");
    assert_eq!(room["unread_count"], 1, "{room}");

    // Never backwards.
    a.send(json!({"type": "read", "room_id": room_id, "seq": 1})).await;
    a.ping_pong().await;
    assert_eq!(app.room_view(&alice.token, room_id).await["last_read_seq"], 2);

    a.send(json!({"type": "read", "room_id": room_id, "seq": 3})).await;
    a.ping_pong().await;
    let room = app.room_view(&alice.token, room_id).await;
    assert_eq!(room["last_read_seq"], 3, "{room}");
    assert_eq!(room["unread_count"], 0, "{room}");
}

async fn ping_gets_pong(app: TestApp) {
    let alice = app.new_user().await;
    let mut ws = app.ws(&alice.token).await;
    for _ in 0..3 {
        ws.send(json!({"type": "ping"})).await;
        assert_eq!(ws.next_frame().await, Some(json!({"type": "pong"})));
    }
}

async fn invalid_frames_get_an_error_and_the_socket_stays_open(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let mut ws = app.ws(&alice.token).await;
    for bad in [
        json!({"type": "dance"}),
        json!({"no_type": 1}),
        json!([1, 2]),
        json!("subscribe"),
        json!({"type": "send", "room_id": room_id}),
        json!({"type": "subscribe", "room_id": "not a number"}),
        json!({"type": "read", "room_id": room_id}),
    ] {
        ws.send(bad.clone()).await;
        let f = ws.next_frame().await.unwrap_or_else(|| panic!("the socket closed after {bad}"));
        assert_error_frame(&f, "invalid_frame", None);
    }
    // Still fully usable.
    assert!(ws.ping_pong().await.is_empty());
    ws.subscribe(room_id, None).await;
    ws.send(json!({"type": "send", "room_id": room_id, "body": "still here", "client_id": "ok-1"})).await;
    assert_eq!(ws.expect("ack").await["message"]["body"], "still here");
}

/// Every integer field of every frame, set to the ends of its range and around zero, on a room the
/// caller owns, one of someone else's and one that does not exist: each frame is answered (or
/// silently applied) and the socket stays open. Found this way: `subscribe` with
/// `since: i64::MIN` overflowed `last_seq - since` and killed the session (a panic in a debug
/// build; in a release build the subtraction wrapped).
async fn extreme_numbers_in_frames_are_answered_and_the_socket_stays_open(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let own = app.room_id(&alice, "public").await;
    let others = app.room_id(&bob, "private").await;
    app.send_many(&alice, own, 3).await;
    let numbers = [i64::MIN, i64::MIN + 1, -1, 0, 1, 2, 3, 4, 1000, 1001, i64::MAX - 1, i64::MAX];
    let mut sends = 0;
    // A fresh socket for every 6 numbers of a room: each stays within a connection's budget (40 frames in
    // a burst, 10 replays per 10 s), so that every frame here is answered for what it holds.
    for (room_id, chunk) in [own, others, 987_654_321, i64::MIN, i64::MAX, 0, -1]
        .into_iter()
        .flat_map(|room_id| numbers.chunks(6).map(move |chunk| (room_id, chunk)))
    {
        let mut ws = app.ws(&alice.token).await;
        for &n in chunk {
            let mut frames = vec![
                json!({"type": "subscribe", "room_id": room_id, "since": n}),
                json!({"type": "read", "room_id": room_id, "seq": n}),
            ];
            if n == 0 {
                frames.extend([
                    json!({"type": "subscribe", "room_id": room_id}),
                    json!({"type": "typing", "room_id": room_id}),
                    json!({"type": "unsubscribe", "room_id": room_id}),
                    json!({"type": "send", "room_id": room_id, "body": "edge", "client_id": format!("edge-{room_id}")}),
                ]);
                sends += 1;
            }
            for frame in frames {
                ws.send(frame.clone()).await;
                // `ping_pong` panics if the socket closed; whatever came before the pong is the answer.
                for f in ws.ping_pong().await {
                    assert_ne!(f["code"], "internal_error", "{frame} -> {f}");
                }
            }
        }
    }
    assert!(sends < 20, "well under the per-connection send rate");
    // The server is fine, and so is the room whose read marker went to the ends.
    let room = app.room_view(&alice.token, own).await;
    assert_room(&room);
    assert_eq!(items(&app.history_page(&bob.token, others, "").await).len(), 0, "nothing reached bob's room");
    app.ws(&alice.token).await.subscribe(own, Some(0)).await;
}

async fn send_to_a_room_not_visible_is_room_not_found(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let private = app.room_id(&bob, "private").await;
    let mut ws = app.ws(&alice.token).await;

    ws.send(json!({"type": "send", "room_id": private, "body": "let me in", "client_id": "nf-1"})).await;
    assert_error_frame(&ws.expect("error").await, "room_not_found", Some("nf-1"));
    ws.send(json!({"type": "send", "room_id": 987_654_321, "body": "anyone?", "client_id": "nf-2"})).await;
    assert_error_frame(&ws.expect("error").await, "room_not_found", Some("nf-2"));

    assert!(ws.ping_pong().await.is_empty(), "the socket stays open");
    assert!(items(&app.history_page(&bob.token, private, "").await).is_empty(), "nothing was stored");
}

async fn subscribe_to_a_room_not_visible_is_room_not_found(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let private = app.room_id(&bob, "private").await;
    app.send(&bob, private, "secret").await;
    let mut ws = app.ws(&alice.token).await;

    ws.send(json!({"type": "subscribe", "room_id": private, "since": 0})).await;
    let f = ws.next_frame().await.expect("an answer");
    assert_error_frame(&f, "room_not_found", None);
    assert!(ws.ping_pong().await.is_empty(), "the socket stays open");
    app.send(&bob, private, "still secret").await;
    ws.expect_silence(QUIET, "a message of a private room", is_message).await;
}

async fn send_without_messages_write_scope_is_insufficient_scope(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let reader = app.api_token(&alice, &["messages:read", "rooms:read"]).await;
    let mut ws = app.ws(reader["token"].as_str().unwrap()).await;
    ws.subscribe(room_id, None).await;

    ws.send(json!({"type": "send", "room_id": room_id, "body": "hi", "client_id": "sc-1"})).await;
    assert_error_frame(&ws.expect("error").await, "insufficient_scope", Some("sc-1"));
    ws.ping_pong().await; // the socket stays open
    assert!(items(&app.history_page(&alice.token, room_id, "").await).is_empty(), "nothing was stored");

    // A token with the scope may send.
    let writer = app.api_token(&alice, &["messages:read", "messages:write"]).await;
    let mut ws = app.ws(writer["token"].as_str().unwrap()).await;
    ws.send(json!({"type": "send", "room_id": room_id, "body": "hi", "client_id": "sc-2"})).await;
    assert_eq!(ws.expect("ack").await["message"]["seq"], 1);
}

async fn send_with_an_empty_body_is_validation_failed(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let mut ws: WsClient = app.ws(&alice.token).await;
    ws.subscribe(room_id, None).await;

    let too_long = "x".repeat(4001);
    for (i, body) in ["", "   \n\t ", too_long.as_str()].into_iter().enumerate() {
        let client_id = format!("v-{i}");
        ws.send(json!({"type": "send", "room_id": room_id, "body": body, "client_id": client_id})).await;
        assert_error_frame(&ws.expect("error").await, "validation_failed", Some(&client_id));
    }
    ws.ping_pong().await; // the socket stays open
    assert!(items(&app.history_page(&alice.token, room_id, "").await).is_empty(), "nothing was stored");
}
