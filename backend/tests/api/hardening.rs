//! The holes found when the service was attacked from outside (issue 11), each with the test that
//! proved it open: text no client means, bodies of another type or shape, scopes, metric labels, the
//! race of two joins, the race of a refresh with the reuse detection, and a weak `JWT_SECRET`.

use std::process::{Command, Stdio};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use backend::config::{Config, RateLimits};

use crate::helpers::{TestApp, expect_json, expect_problem, expect_status, id_of};

db_tests!(
    nul_and_control_characters_are_refused_as_invalid_text,
    line_breaks_and_tabs_stay_in_a_body,
    one_senders_bad_bodies_never_fail_anothers,
    a_body_declared_as_another_type_is_refused,
    a_body_that_is_not_an_object_is_refused,
    a_token_without_messages_read_sees_no_last_message,
    invented_methods_do_not_grow_the_metrics,
    concurrent_joins_and_direct_rooms_all_succeed,
);

db_tests_configured!(no_rate_limits => a_refresh_racing_the_reuse_detection_never_escapes_it);

/// The race test logs in every round, more often than the login limit allows.
fn no_rate_limits(config: &mut Config) {
    config.rate_limits = RateLimits::off();
}

/// Asserts a 422 `invalid_text` naming `field`.
async fn expect_invalid_text(resp: reqwest::Response, field: &str) {
    let body = expect_problem(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["code"], "invalid_text", "{body}");
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("an `errors` array: {body}"));
    assert!(errors.iter().any(|e| e["field"] == field), "`errors` names {field:?}: {body}");
}

async fn nul_and_control_characters_are_refused_as_invalid_text(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let send = |body: Value| {
        let app = &app;
        let token = alice.token.clone();
        async move { app.post_message(&token, room_id, &body).await }
    };
    expect_invalid_text(send(json!({"body": "a\u{0}b"})).await, "body").await;
    expect_invalid_text(send(json!({"body": "bell\u{7}"})).await, "body").await;
    expect_invalid_text(send(json!({"body": "del\u{7f}"})).await, "body").await;
    expect_invalid_text(send(json!({"body": "fine", "client_id": "c\u{0}1"})).await, "client_id").await;
    // Any string of any request, read by the handler or not.
    expect_invalid_text(send(json!({"body": "fine", "extra": {"deep": ["x\u{0}"]}})).await, "extra.deep.0").await;

    let room = |name: &str| json!({"name": name, "visibility": "public"});
    expect_invalid_text(app.create_room(&alice.token, &room("x\u{1}y")).await, "name").await;
    expect_invalid_text(app.create_room(&alice.token, &room("two\nlines")).await, "name").await;
    let topic = json!({"name": "ok", "topic": "a\u{0}"});
    expect_invalid_text(app.create_room(&alice.token, &topic).await, "topic").await;
    let registration = json!({"username": "nul_user", "password": "long enough", "display_name": "x\u{1b}[31m"});
    expect_invalid_text(app.register(&registration).await, "display_name").await;
    let password = json!({"username": "nul_user", "password": "long\u{0}enough"});
    expect_invalid_text(app.register(&password).await, "password").await;
    let token = json!({"name": "bot\u{0}", "scopes": ["messages:write"]});
    expect_invalid_text(app.create_token(&alice.token, &token).await, "name").await;

    // Nothing of it was stored.
    let page = app.history_page(&alice.token, room_id, "").await;
    assert_eq!(page["items"], json!([]), "no refused message stored: {page}");
    expect_status(app.login("nul_user", "long enough").await, StatusCode::UNAUTHORIZED).await;
}

async fn line_breaks_and_tabs_stay_in_a_body(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let text = "first line\r\n\tsecond, indented 👋";
    let m =
        expect_json(app.post_message(&alice.token, room_id, &json!({"body": text})).await, StatusCode::CREATED).await;
    assert_eq!(m["body"], text);
    let room = json!({"name": "Café ☕", "topic": "line one\nline two"});
    let created = expect_json(app.create_room(&alice.token, &room).await, StatusCode::CREATED).await;
    assert_eq!(created["name"], "Café ☕");
}

/// On PostgreSQL a NUL once reached the database inside the writer's batch, and the whole batch rolled
/// back: 92 of another user's 200 sends failed with 500.
async fn one_senders_bad_bodies_never_fail_anothers(app: TestApp) {
    let (alice, mallory) = (app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&mallory.token, room_id).await, StatusCode::OK).await;
    let good = (0..100).map(|i| {
        let (app, token) = (&app, alice.token.clone());
        async move { app.post_message(&token, room_id, &json!({"body": format!("good {i}")})).await.status() }
    });
    let bad = (0..100).map(|i| {
        let (app, token) = (&app, mallory.token.clone());
        async move { app.post_message(&token, room_id, &json!({"body": format!("bad\u{0}{i}")})).await.status() }
    });
    let (good, bad) = tokio::join!(futures_util::future::join_all(good), futures_util::future::join_all(bad));
    assert!(good.iter().all(|s| *s == StatusCode::CREATED), "every good send stored: {good:?}");
    assert!(bad.iter().all(|s| *s == StatusCode::UNPROCESSABLE_ENTITY), "every bad send refused: {bad:?}");
    let page = app.history_page(&alice.token, room_id, "limit=100").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 100);
    assert_eq!(page["items"][99]["seq"], 100, "seqs 1-100, no gap: {}", page["items"][99]);
}

async fn a_body_declared_as_another_type_is_refused(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let url = app.url(&format!("/api/v1/rooms/{room_id}/messages"));
    for content_type in ["text/plain", "text/html", "application/x-www-form-urlencoded", "not a type"] {
        let resp = app
            .client
            .post(&url)
            .bearer_auth(&alice.token)
            .header("content-type", content_type)
            .body(r#"{"body": "sneaked in"}"#)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
        assert_eq!(problem["code"], "unsupported_media_type", "{content_type}: {problem}");
    }
    // JSON declared with parameters, as a `+json` type, or not declared at all is read.
    for content_type in [Some("application/json; charset=utf-8"), Some("application/merge-patch+json"), None] {
        let mut req = app.client.post(&url).bearer_auth(&alice.token).body(r#"{"body": "fine"}"#);
        if let Some(content_type) = content_type {
            req = req.header("content-type", content_type);
        }
        expect_status(req.send().await.unwrap(), StatusCode::CREATED).await;
    }
    let page = app.history_page(&alice.token, room_id, "").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "only the JSON sends were stored: {page}");
}

/// serde reads a struct from a JSON array: `[null, null]` passed as a request whose fields are all
/// optional (found by the contract fuzzer).
async fn a_body_that_is_not_an_object_is_refused(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    for body in [json!([null, null]), json!(["hello"]), json!("hello"), json!(42), Value::Null] {
        let resp = app.post_message(&alice.token, room_id, &body).await;
        let problem = expect_problem(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["field"], "body", "{body}: {problem}");
    }
    let resp = app.create_token(&alice.token, &json!([["bot"], ["messages:write"]])).await;
    expect_problem(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
}

async fn a_token_without_messages_read_sees_no_last_message(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "private").await;
    app.send(&alice, room_id, "the secret plan").await;
    let rooms_only = app.api_token(&alice, &["rooms:read"]).await;
    let rooms_only = rooms_only["token"].as_str().unwrap();
    let list = expect_json(app.list_rooms(rooms_only, "").await, StatusCode::OK).await;
    assert_eq!(list["items"][0]["id"], room_id);
    assert_eq!(list["items"][0]["last_message"], Value::Null, "no body through the room list: {list}");
    let room = expect_json(app.get_room(rooms_only, room_id).await, StatusCode::OK).await;
    assert_eq!(room["last_message"], Value::Null, "{room}");
    expect_status(app.history(rooms_only, room_id, "").await, StatusCode::FORBIDDEN).await;

    // With the scope, the same list shows it.
    let reader = app.api_token(&alice, &["rooms:read", "messages:read"]).await;
    let list = expect_json(app.list_rooms(reader["token"].as_str().unwrap(), "").await, StatusCode::OK).await;
    assert_eq!(list["items"][0]["last_message"]["body"], "the secret plan");
}

async fn invented_methods_do_not_grow_the_metrics(app: TestApp) {
    for i in 0..20 {
        let method = Method::from_bytes(format!("X{i:05}").as_bytes()).unwrap();
        app.request(method, "/healthz", None, None).await;
    }
    let metrics = expect_status(app.get("/metrics", None).await, StatusCode::OK).await;
    assert!(!metrics.contains("X00001"), "no series per invented method");
    assert!(metrics.contains(r#"method="other""#), "counted as `other`");
}

/// Check-then-insert answered 409 to the second of two joins arriving together on PostgreSQL.
async fn concurrent_joins_and_direct_rooms_all_succeed(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&alice, "public").await;
    let joins = (0..10).map(|_| app.join_room(&bob.token, room_id));
    for resp in futures_util::future::join_all(joins).await {
        expect_status(resp, StatusCode::OK).await;
    }
    let directs = (0..10).map(|i| {
        let (token, other) = if i % 2 == 0 { (&alice.token, &bob.username) } else { (&bob.token, &alice.username) };
        app.direct(token, other)
    });
    let mut rooms = Vec::new();
    for resp in futures_util::future::join_all(directs).await {
        rooms.push(id_of(&expect_json(resp, StatusCode::OK).await));
    }
    rooms.dedup();
    assert_eq!(rooms.len(), 1, "one direct room for the two of them: {rooms:?}");
}

/// A thief holding the newest refresh token and the victim presenting an older one at the same moment:
/// the whole family must end up revoked, including whatever the thief's refresh produced. Many rounds,
/// since a race shows only sometimes.
async fn a_refresh_racing_the_reuse_detection_never_escapes_it(app: TestApp) {
    let user = app.new_user().await;
    for round in 0..25 {
        let login = expect_json(app.login(&user.username, &user.password).await, StatusCode::OK).await;
        let stolen_old = login["refresh_token"].as_str().unwrap().to_owned();
        let next = expect_json(app.refresh(&stolen_old).await, StatusCode::OK).await;
        let live = next["refresh_token"].as_str().unwrap().to_owned();
        let (thief, victim) = tokio::join!(app.refresh(&live), app.refresh(&stolen_old));
        expect_status(victim, StatusCode::UNAUTHORIZED).await;
        if thief.status() == StatusCode::OK {
            let stolen: Value = thief.json().await.unwrap();
            let escaped = app.refresh(stolen["refresh_token"].as_str().unwrap()).await;
            assert_eq!(escaped.status(), StatusCode::UNAUTHORIZED, "round {round}: the thief's new token survived");
        }
    }
}

/// A short `JWT_SECRET` can be brute-forced from one token: the server refuses to start and says why.
#[test]
fn a_short_jwt_secret_keeps_the_server_from_starting() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("DATA_DIR", data_dir.path())
        .env("JWT_SECRET", "abc")
        .current_dir(data_dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run chat-server");
    assert!(!output.status.success(), "it must not start");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(said.contains("JWT_SECRET") && said.contains("32"), "it names the variable and the minimum: {said}");
}
