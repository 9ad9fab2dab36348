//! Who may open a socket, and for how long: bearer tokens and single-use tickets, the `Origin`
//! check, and the 4001 close when the credential behind a socket expires or is revoked.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::ws_client::Connect;
use crate::ws_frames::assert_error_frame;

db_tests!(
    upgrade_without_a_credential_is_401,
    upgrade_with_a_bad_token_is_401,
    ticket_opens_a_socket_once,
    ticket_carries_the_api_tokens_scopes,
    revoked_api_token_socket_is_closed_with_4001_at_once,
);

db_tests_configured!(short_tokens_and_an_allowed_origin =>
    origin_not_allowed_is_403_and_allowed_ones_pass,
    expired_jwt_socket_is_closed_with_4001,
);

/// An origin listed in `ALLOWED_ORIGINS` for the configured tests.
const ALLOWED_ORIGIN: &str = "https://app.example.com";
/// The access-token lifetime of the configured tests.
const SHORT_TTL: Duration = Duration::from_secs(2);

fn short_tokens_and_an_allowed_origin(config: &mut backend::config::Config) {
    config.access_token_ttl = SHORT_TTL;
    config.allowed_origins = vec![ALLOWED_ORIGIN.to_owned()];
}

/// Asserts a refused upgrade: the status, and a problem+json body carrying it.
fn assert_refused(connect: Connect, status: u16, what: &str) -> Value {
    match connect {
        Connect::Open(_) => panic!("{what}: the upgrade was accepted, expected {status}"),
        Connect::Refused(got, body) => {
            assert_eq!(got, status, "{what}: status; body {body}");
            let problem: Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: the body is a problem ({e}): {body}"));
            assert_eq!(problem["status"], status, "{what}: {problem}");
            assert!(problem["code"].as_str().is_some_and(|c| !c.is_empty()), "{what}: a code: {problem}");
            problem
        }
    }
}

fn assert_opens(connect: Connect, what: &str) {
    if let Connect::Refused(status, body) = connect {
        panic!("{what}: the upgrade was refused with {status}: {body}");
    }
}

async fn upgrade_without_a_credential_is_401(app: TestApp) {
    assert_refused(app.ws_connect(&app.ws_url(""), None, None).await, 401, "no credential");
    // An empty ticket is no credential either.
    assert_refused(app.ws_connect(&app.ws_url("?ticket="), None, None).await, 401, "an empty ticket");
}

async fn upgrade_with_a_bad_token_is_401(app: TestApp) {
    let alice = app.new_user().await;
    // One character of the signature changed (not the last, whose low bits may be padding).
    let mut tampered: Vec<char> = alice.token.chars().collect();
    let at = tampered.len() - 8;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let api = app.api_token(&alice, &["messages:read"]).await;
    expect_status(app.delete_token(&alice.token, id_of(&api)).await, StatusCode::NO_CONTENT).await;
    let revoked = api["token"].as_str().unwrap();

    for (token, what) in [
        ("not-a-token", "garbage"),
        (tampered.as_str(), "a JWT with a bad signature"),
        ("chat_0000000000000000000000000000000000", "an unknown API token"),
        (revoked, "a revoked API token"),
    ] {
        assert_refused(app.ws_connect(&app.ws_url(""), Some(token), None).await, 401, what);
    }
    assert_refused(app.ws_connect(&app.ticket_url("chat_wst_bogus"), None, None).await, 401, "an unknown ticket");
}

async fn ticket_opens_a_socket_once(app: TestApp) {
    let alice = app.new_user().await;
    // The ticket endpoint itself needs the bearer token.
    expect_problem(app.request(reqwest::Method::POST, "/api/v1/ws/ticket", None, None).await, StatusCode::UNAUTHORIZED)
        .await;

    let resp = app.ws_ticket(&alice.token).await;
    let body = expect_json(resp, StatusCode::CREATED).await;
    assert_eq!(body["expires_in"], 30, "{body}");
    let ticket = body["ticket"].as_str().unwrap_or_else(|| panic!("ticket is a string: {body}"));
    assert!(!ticket.is_empty());
    assert!(!ticket.contains(&alice.token), "the ticket is not the long-lived token");

    // The ticket alone (no header) opens a socket as alice, which works.
    let Connect::Open(mut ws) = app.ws_connect(&app.ticket_url(ticket), None, None).await else {
        panic!("the ticket was refused");
    };
    let ready = ws.next_frame().await.expect("ready");
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["user"]["id"], alice.id, "{ready}");
    let room_id = app.room_id(&alice, "public").await;
    ws.subscribe(room_id, None).await;
    ws.send(json!({"type": "send", "room_id": room_id, "body": "via ticket", "client_id": "t-1"})).await;
    assert_eq!(ws.expect("ack").await["message"]["author"]["id"], alice.id);

    // Single use.
    assert_refused(app.ws_connect(&app.ticket_url(ticket), None, None).await, 401, "a spent ticket");
    // Every ticket is new.
    let (t1, t2) = (app.ticket(&alice.token).await, app.ticket(&alice.token).await);
    assert_ne!(t1, t2);
    app.ws_with_ticket(&t2).await;
    app.ws_with_ticket(&t1).await;
}

async fn ticket_carries_the_api_tokens_scopes(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let reader = app.api_token(&alice, &["messages:read"]).await;
    let ticket = app.ticket(reader["token"].as_str().unwrap()).await;
    let mut ws = app.ws_with_ticket(&ticket).await;
    ws.subscribe(room_id, None).await;
    ws.send(json!({"type": "send", "room_id": room_id, "body": "no", "client_id": "ts-1"})).await;
    assert_error_frame(&ws.expect("error").await, "insufficient_scope", Some("ts-1"));
}

async fn revoked_api_token_socket_is_closed_with_4001_at_once(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let bot = app.api_token(&alice, &["messages:read", "messages:write"]).await;
    let mut ws = app.ws(bot["token"].as_str().unwrap()).await;
    ws.subscribe(room_id, None).await;
    // Alice's own socket, and a socket of another token of hers, stay open.
    let mut own = app.ws(&alice.token).await;
    let other = app.api_token(&alice, &["messages:read"]).await;
    let mut other_ws = app.ws(other["token"].as_str().unwrap()).await;

    let revoked_at = Instant::now();
    expect_status(app.delete_token(&alice.token, id_of(&bot)).await, StatusCode::NO_CONTENT).await;
    let (_, code) = ws.read_to_close(Duration::from_secs(5)).await;
    let took = revoked_at.elapsed();
    assert_eq!(code, Some(4001), "the revoked token's socket closes with 4001");
    assert!(took < Duration::from_secs(2), "closed at once, not after {took:?}");

    own.ping_pong().await;
    other_ws.ping_pong().await;
    // And the revoked token cannot come back.
    let refused = app.ws_connect(&app.ws_url(""), bot["token"].as_str(), None).await;
    assert_refused(refused, 401, "the revoked token");
}

async fn origin_not_allowed_is_403_and_allowed_ones_pass(app: TestApp) {
    let alice = app.new_user().await;
    // API tokens do not expire, unlike this server's 2-second JWTs.
    let bot = app.api_token(&alice, &["messages:read"]).await;
    let token = bot["token"].as_str().unwrap();
    let url = app.ws_url("");

    for origin in ["http://evil.example", "https://app.example.com.evil.example", "null"] {
        assert_refused(app.ws_connect(&url, Some(token), Some(origin)).await, 403, origin);
    }
    // The server's own origin, a configured one, and none at all (not a browser) pass.
    assert_opens(app.ws_connect(&url, Some(token), Some(&app.address)).await, "the server's own origin");
    assert_opens(app.ws_connect(&url, Some(token), Some(ALLOWED_ORIGIN)).await, "an ALLOWED_ORIGINS origin");
    assert_opens(app.ws_connect(&url, Some(token), None).await, "no Origin");
    // A browser with a ticket is held to the same rule.
    let ticket = app.ticket(token).await;
    assert_refused(app.ws_connect(&app.ticket_url(&ticket), None, Some("http://evil.example")).await, 403, "ticket");
    let ticket = app.ticket(token).await;
    assert_opens(app.ws_connect(&app.ticket_url(&ticket), None, Some(ALLOWED_ORIGIN)).await, "ticket, allowed");
}

async fn expired_jwt_socket_is_closed_with_4001(app: TestApp) {
    let alice = app.new_user().await;
    let issued = Instant::now();
    let room_id = app.room_id(&alice, "public").await;
    let mut ws = app.ws(&alice.token).await;
    ws.subscribe(room_id, None).await;
    ws.ping_pong().await;

    let (_, code) = ws.read_to_close(SHORT_TTL + Duration::from_secs(4)).await;
    let lived = issued.elapsed();
    assert_eq!(code, Some(4001), "the socket closes with 4001 when its JWT expires");
    assert!(lived >= SHORT_TTL - Duration::from_secs(1), "not before the token expires: after {lived:?}");

    // The client refreshes and reconnects.
    let fresh = expect_json(app.refresh(&alice.refresh_token).await, StatusCode::OK).await;
    let mut ws = app.ws(fresh["access_token"].as_str().unwrap()).await;
    ws.subscribe(room_id, Some(0)).await;
}
