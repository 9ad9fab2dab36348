//! What the server logs: JSON lines with `LOG_FORMAT=json`, each line logged while handling a
//! request carrying that request's id (echoed as `X-Request-Id`), and never a secret: the real
//! `chat-server` binary at its most verbose level goes through register, a wrong password, login,
//! refresh, an API token, an incoming hook's URL, a ticket and a socket opened with it, and its whole output is searched
//! for every password, token and ticket used. Also the metrics those requests leave behind.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cluster::Node;
use crate::helpers::{expect_json, expect_problem, expect_status, random_username};

#[tokio::test]
async fn logs_are_json_with_request_ids_and_no_secrets() {
    let mut node = Node::start_with_env(&[("RUST_LOG", "trace".into()), ("LOG_FORMAT", "json".into())]).await;
    let app = &node.app;
    let mut secrets: Vec<String> = Vec::new();

    let username = random_username();
    let password = format!("pw-{:016x}-secret", rand::random::<u64>());
    secrets.push(password.clone());
    let registered =
        expect_json(app.register(&json!({"username": username, "password": password})).await, StatusCode::CREATED)
            .await;
    let wrong = format!("wrong-{:016x}", rand::random::<u64>());
    secrets.push(wrong.clone());
    let refused = app.login(&username, &wrong).await;
    let refused_id = refused.headers().get("x-request-id").expect("X-Request-Id").to_str().unwrap().to_owned();
    expect_problem(refused, StatusCode::UNAUTHORIZED).await;
    let login = expect_json(app.login(&username, &password).await, StatusCode::OK).await;
    let refreshed = expect_json(app.refresh(login["refresh_token"].as_str().unwrap()).await, StatusCode::OK).await;
    // A spent refresh token presented again (a theft, for the server): logged as such, without it.
    expect_problem(app.refresh(login["refresh_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED).await;
    for session in [&registered, &login, &refreshed] {
        secrets.push(session["access_token"].as_str().unwrap().to_owned());
        secrets.push(session["refresh_token"].as_str().unwrap().to_owned());
    }
    let access = refreshed["access_token"].as_str().unwrap().to_owned();
    let api_token = expect_json(
        app.create_token(&access, &json!({"name": "bot", "scopes": ["rooms:read", "messages:read", "messages:write"]}))
            .await,
        StatusCode::CREATED,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(api_token.clone());
    let room = expect_json(app.create_room(&access, &json!({"name": "logged"})).await, StatusCode::CREATED).await;
    let room_id = room["id"].as_i64().unwrap();
    // The API token at work, and a bad one.
    expect_json(app.post_message(&api_token, room_id, &json!({"body": "by the bot"})).await, StatusCode::CREATED).await;
    // An incoming hook: its URL is the secret, and the path is what request logs show.
    let hooks = format!("/api/v1/rooms/{room_id}/hooks");
    let hook = expect_json(app.post(&hooks, Some(&access), &json!({"name": "CI"})).await, StatusCode::CREATED).await;
    let hook_url = hook["url"].as_str().unwrap().to_owned();
    let hook_secret = hook_url.trim_start_matches("/api/v1/hooks/").to_owned();
    secrets.push(hook_secret.trim_start_matches("chat_hook_").to_owned());
    secrets.push(hook_secret);
    expect_json(app.post(&hook_url, None, &json!({"text": "through the hook"})).await, StatusCode::OK).await;
    let mistyped = format!("{}x", hook_url.replace("/hooks/", "/%68ooks/"));
    secrets.push(mistyped.trim_start_matches("/api/v1/%68ooks/").to_owned());
    expect_problem(app.post(&mistyped, None, &json!({"text": "lost"})).await, StatusCode::NOT_FOUND).await;
    let forged = format!("{api_token}x");
    secrets.push(forged.clone());
    expect_problem(app.me(&forged).await, StatusCode::UNAUTHORIZED).await;

    let ticket = app.ticket(&access).await;
    secrets.push(ticket.clone());
    secrets.push(crate::helpers::percent_encode(&ticket));
    let mut ws = app.ws_with_ticket(&ticket).await;
    ws.subscribe(room_id, Some(0)).await;
    ws.send(json!({"type": "send", "room_id": room_id, "body": "over the socket", "client_id": "c1"})).await;
    ws.expect("ack").await;
    ws.expect("message").await;
    // The same ticket again: refused (single use), and still not logged.
    let again = app.ws_connect(&app.ticket_url(&ticket), None, None).await;
    assert!(matches!(again, crate::ws_client::Connect::Refused(..)), "a used ticket is refused");
    drop(ws);

    // The metrics these requests left behind.
    let metrics = expect_status(app.get("/metrics", None).await, StatusCode::OK).await;
    for name in [
        "http_requests_total{method=\"POST\",route=\"/api/v1/auth/login\",status=\"401\"}",
        "http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/rooms/{room_id}/messages\"",
        "ws_connections_open",
        "chat_messages_sent_total{via=\"ws\"}",
        "chat_messages_sent_total{via=\"rest\"}",
        "chat_messages_sent_total{via=\"hook\"}",
        "ws_delivery_latency_seconds_bucket",
        "db_pool_connections_in_use",
    ] {
        assert!(metrics.contains(name), "{name} in /metrics:\n{metrics}");
    }

    tokio::time::sleep(Duration::from_millis(300)).await; // the last lines through the pipes
    node.sigterm();
    node.wait_exit(Duration::from_secs(20)).await.expect("the node stops on SIGTERM");
    let logs = node.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 50, "trace logging says a lot: {} lines", lines.len());

    for secret in &secrets {
        // Also the parts a careless log line might keep: the JWT's signature, a prefix-less token.
        let needles =
            [secret.as_str(), secret.rsplit('.').next().unwrap_or(secret), secret.trim_start_matches("chat_pat_")];
        for needle in needles.iter().filter(|n| n.len() >= 12) {
            let leaked: Vec<&&str> = lines.iter().filter(|l| l.contains(needle)).collect();
            assert!(leaked.is_empty(), "a secret ({}...) is in the logs:\n{leaked:#?}", &needle[..6]);
        }
    }

    let mut in_requests = 0;
    let mut ids = std::collections::HashSet::new();
    for line in &lines {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        let spans = entry["spans"].as_array().cloned().unwrap_or_default();
        if let Some(request) = spans.iter().find(|s| s["name"] == "request") {
            let id = request["request_id"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "a line logged in a request carries its id: {line}");
            assert!(!request["path"].as_str().unwrap_or_default().contains('?'), "no query strings: {line}");
            ids.insert(id.to_owned());
            in_requests += 1;
        }
    }
    assert!(in_requests > 20 && ids.len() > 10, "{in_requests} lines in {} requests", ids.len());
    assert!(ids.contains(&refused_id), "the refused login's lines carry the id it was answered with");
}
