//! The socket's side of the hardening issue (11): who stops receiving when they leave, which credentials
//! still open or keep a socket, and what a token's scopes allow over the socket.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use backend::config::Config;

use crate::helpers::{TestApp, expect_json, expect_problem, expect_status, id_of};
use crate::ws_client::Connect;
use crate::ws_frames::assert_error_frame;

db_tests!(
    a_leaver_gets_unsubscribed_and_nothing_more_from_the_room,
    logout_ends_the_sessions_tokens_and_sockets,
    a_ticket_outlives_no_revoked_token_and_no_ended_session,
    socket_frames_need_the_tokens_scopes,
    every_frame_type_counts_against_the_connections_budget,
    replays_are_limited_per_connection,
    typing_is_passed_on_once_per_3_seconds_and_needs_membership,
    a_resuming_client_learns_of_the_edits_and_deletes_it_missed,
);

db_tests_configured!(three_sockets_per_user => a_user_holds_at_most_max_sockets_per_user);

fn three_sockets_per_user(config: &mut Config) {
    config.max_sockets_per_user = 3;
}

async fn a_leaver_gets_unsubscribed_and_nothing_more_from_the_room(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&alice, "public").await;
    let other_room = app.room_id(&alice, "public").await;
    for room in [room_id, other_room] {
        expect_status(app.join_room(&bob.token, room).await, StatusCode::OK).await;
    }
    let mut bob_ws = app.ws(&bob.token).await;
    let mut bob_second = app.ws(&bob.token).await;
    for ws in [&mut bob_ws, &mut bob_second] {
        ws.subscribe(room_id, None).await;
        ws.subscribe(other_room, None).await;
    }
    let mut alice_ws = app.ws(&alice.token).await;
    alice_ws.subscribe(room_id, None).await;

    expect_status(app.leave_room(&bob.token, room_id).await, StatusCode::NO_CONTENT).await;
    for ws in [&mut bob_ws, &mut bob_second] {
        let f = ws.expect("unsubscribed").await;
        assert_eq!(f, json!({"type": "unsubscribed", "room_id": room_id, "reason": "left"}));
    }
    // Nothing more from that room: no message, edit, delete or typing; the other room still flows.
    app.send(&alice, room_id, "after bob left").await;
    expect_status(app.edit_message(&alice.token, room_id, 1, &json!({"body": "edited after"})).await, StatusCode::OK)
        .await;
    alice_ws.send(json!({"type": "typing", "room_id": room_id})).await;
    let still = app.send(&alice, other_room, "elsewhere").await;
    for ws in [&mut bob_ws, &mut bob_second] {
        let f = ws.expect("message").await;
        assert_eq!(f["message"], still, "the next frame is the other room's message: {f}");
        let later = ws.expect_silence(Duration::from_millis(500), "frame of the left room", |f| {
            f["room_id"] == room_id || f["message"]["room_id"] == room_id
        });
        later.await;
    }
    // And a send there is refused.
    bob_ws.send(json!({"type": "send", "room_id": room_id, "body": "hi?", "client_id": "l-1"})).await;
    let refused = bob_ws.expect("error").await;
    assert_eq!(refused["client_id"], "l-1", "{refused}");
}

async fn logout_ends_the_sessions_tokens_and_sockets(app: TestApp) {
    let alice = app.new_user().await;
    // A second session of hers, which must survive.
    let other = expect_json(app.login(&alice.username, &alice.password).await, StatusCode::OK).await;
    let other_token = other["access_token"].as_str().unwrap();
    let mut ws = app.ws(&alice.token).await;
    let mut other_ws = app.ws(other_token).await;

    let started = Instant::now();
    expect_status(app.logout(&alice.token, &alice.refresh_token).await, StatusCode::NO_CONTENT).await;
    let problem = expect_problem(app.me(&alice.token).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(problem["code"], "session_ended", "{problem}");
    let (_, code) = ws.read_to_close(Duration::from_secs(5)).await;
    assert_eq!(code, Some(4001), "the session's socket closes with 4001");
    assert!(started.elapsed() < Duration::from_secs(5));
    expect_problem(app.ws_ticket(&alice.token).await, StatusCode::UNAUTHORIZED).await;
    expect_problem(app.refresh(&alice.refresh_token).await, StatusCode::UNAUTHORIZED).await;

    // The other session is untouched.
    expect_status(app.me(other_token).await, StatusCode::OK).await;
    other_ws.ping_pong().await;
}

async fn a_ticket_outlives_no_revoked_token_and_no_ended_session(app: TestApp) {
    let alice = app.new_user().await;
    let bot = app.api_token(&alice, &["messages:read"]).await;
    let ticket = app.ticket(bot["token"].as_str().unwrap()).await;
    expect_status(app.delete_token(&alice.token, id_of(&bot)).await, StatusCode::NO_CONTENT).await;
    match app.ws_connect(&app.ticket_url(&ticket), None, None).await {
        Connect::Open(_) => panic!("a ticket of a revoked token opened a socket"),
        Connect::Refused(status, body) => assert_eq!(status, 401, "{body}"),
    }

    let ticket = app.ticket(&alice.token).await;
    expect_status(app.logout(&alice.token, &alice.refresh_token).await, StatusCode::NO_CONTENT).await;
    match app.ws_connect(&app.ticket_url(&ticket), None, None).await {
        Connect::Open(_) => panic!("a ticket of an ended session opened a socket"),
        Connect::Refused(status, body) => assert_eq!(status, 401, "{body}"),
    }
}

async fn socket_frames_need_the_tokens_scopes(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let reader = app.api_token(&alice, &["messages:read"]).await;
    let mut ws = app.ws(reader["token"].as_str().unwrap()).await;
    ws.subscribe(room_id, None).await;
    for frame in [json!({"type": "typing", "room_id": room_id}), json!({"type": "read", "room_id": room_id, "seq": 1})]
    {
        ws.send(frame.clone()).await;
        assert_error_frame(&ws.expect("error").await, "insufficient_scope", None);
    }
    let writer = app.api_token(&alice, &["messages:write"]).await;
    let mut ws = app.ws(writer["token"].as_str().unwrap()).await;
    ws.send(json!({"type": "subscribe", "room_id": room_id, "since": 0})).await;
    assert_error_frame(&ws.expect("error").await, "insufficient_scope", None);
}

/// Pings are frames too: a burst of them gets `rate_limited` errors and, kept up, the socket closes 1008.
async fn every_frame_type_counts_against_the_connections_budget(app: TestApp) {
    let alice = app.new_user().await;
    let mut ws = app.ws(&alice.token).await;
    for _ in 0..100 {
        if !ws.try_send(json!({"type": "ping"})).await {
            break;
        }
    }
    let (frames, code) = ws.read_to_close(Duration::from_secs(5)).await;
    assert!(frames.iter().any(|f| f["type"] == "error" && f["code"] == "rate_limited"), "told to slow down");
    let pongs = frames.iter().filter(|f| f["type"] == "pong").count();
    assert!((40..=45).contains(&pongs), "the burst of 40 (and what refilled meanwhile) answered: {pongs}");
    assert_eq!(code, Some(1008), "a flood of any frame type closes the socket");
}

async fn replays_are_limited_per_connection(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    app.send_many(&alice, room_id, 5).await;
    let mut ws = app.ws(&alice.token).await;
    for _ in 0..10 {
        let (replayed, _) = ws.subscribe(room_id, Some(0)).await;
        assert_eq!(replayed.len(), 5);
    }
    ws.send(json!({"type": "subscribe", "room_id": room_id, "since": 0})).await;
    assert_error_frame(&ws.expect("error").await, "rate_limited", None);
    // A subscribe without a replay is still served.
    ws.subscribe(room_id, None).await;
}

async fn typing_is_passed_on_once_per_3_seconds_and_needs_membership(app: TestApp) {
    let (alice, bob, carol) = (app.new_user().await, app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;
    let mut bob_ws = app.ws(&bob.token).await;
    bob_ws.subscribe(room_id, None).await;
    let mut alice_ws = app.ws(&alice.token).await;
    let mut alice_second = app.ws(&alice.token).await;
    alice_ws.subscribe(room_id, None).await;
    alice_second.subscribe(room_id, None).await;
    let typing = json!({"type": "typing", "room_id": room_id});
    alice_ws.send(typing.clone()).await;
    alice_second.send(typing.clone()).await;
    alice_ws.send(typing).await;
    let typing = bob_ws.expect("typing").await;
    assert_eq!(typing["user"]["id"], alice.id);
    bob_ws.expect_silence(Duration::from_millis(800), "second typing", |f| f["type"] == "typing").await;

    // Carol may watch the public room, but not type in it without joining.
    let mut carol_ws = app.ws(&carol.token).await;
    carol_ws.subscribe(room_id, None).await;
    carol_ws.send(json!({"type": "typing", "room_id": room_id})).await;
    assert_error_frame(&carol_ws.expect("error").await, "not_a_member", None);
    bob_ws.expect_silence(Duration::from_millis(300), "carol's typing", |f| f["type"] == "typing").await;
}

async fn a_user_holds_at_most_max_sockets_per_user(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app.ws(&alice.token).await);
    }
    match app.ws_connect(&app.ws_url(""), Some(&alice.token), None).await {
        Connect::Open(_) => panic!("a fourth socket was opened"),
        Connect::Refused(status, body) => assert_eq!(status, 429, "{body}"),
    }
    // Someone else is not affected, and closing one makes room.
    app.ws(&bob.token).await;
    open.pop().unwrap().close().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match app.ws_connect(&app.ws_url(""), Some(&alice.token), None).await {
            Connect::Open(_) => break,
            Connect::Refused(..) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Connect::Refused(status, body) => panic!("still refused after a socket closed: {status} {body}"),
        }
    }
}

async fn a_resuming_client_learns_of_the_edits_and_deletes_it_missed(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;
    let other_room = app.room_id(&alice, "public").await;
    app.send(&alice, room_id, "one").await;
    app.send(&alice, room_id, "two").await;
    // Changed before message 3 was sent: Bob, who had 3, had this edit too; it is not replayed.
    expect_status(
        app.edit_message(&alice.token, room_id, 1, &json!({"body": "one, early edit"})).await,
        StatusCode::OK,
    )
    .await;
    app.send(&alice, room_id, "three").await;

    // Bob has read up to 3 and is away while 2 is edited, 3 deleted, 4 sent and edited, and another
    // room's message changed.
    expect_status(app.edit_message(&alice.token, room_id, 2, &json!({"body": "two, edited"})).await, StatusCode::OK)
        .await;
    expect_status(app.delete_message(&alice.token, room_id, 3).await, StatusCode::NO_CONTENT).await;
    app.send(&alice, room_id, "four").await;
    expect_status(app.edit_message(&alice.token, room_id, 4, &json!({"body": "four, edited"})).await, StatusCode::OK)
        .await;
    app.send(&alice, other_room, "elsewhere").await;
    expect_status(app.edit_message(&alice.token, other_room, 1, &json!({"body": "x"})).await, StatusCode::OK).await;

    let mut ws = app.ws(&bob.token).await;
    let (frames, subscribed) = ws.resume(room_id, 3).await;
    let kinds: Vec<(&str, i64)> = frames
        .iter()
        .map(|f| (f["type"].as_str().unwrap(), f["seq"].as_i64().or(f["message"]["seq"].as_i64()).unwrap()))
        .collect();
    assert_eq!(kinds, [("message_updated", 2), ("message_deleted", 3), ("message", 4)], "{frames:?}");
    assert_eq!(frames[0]["message"]["body"], "two, edited");
    assert_eq!(frames[1], json!({"type": "message_deleted", "room_id": room_id, "seq": 3}));
    // A missed message comes as it is now.
    assert_eq!(frames[2]["message"]["body"], "four, edited");
    assert_eq!(subscribed, json!({"type": "subscribed", "room_id": room_id, "last_seq": 4, "truncated": false}));

    // Resuming from the newest seq: the edit of 4 happened after 4 was sent, so it comes again (a client
    // applies it idempotently); nothing older does.
    let mut again = app.ws(&bob.token).await;
    let (frames, _) = again.resume(room_id, 4).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(
        (frames[0]["type"].as_str(), frames[0]["message"]["body"].as_str()),
        (Some("message_updated"), Some("four, edited"))
    );
}
