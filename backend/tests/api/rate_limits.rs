//! Rate limits (`CONTRACT.md`, Errors): 429 problem+json `rate_limited` with `Retry-After`, and
//! `RateLimit-Limit` / `-Remaining` / `-Reset` on every response of a limited endpoint. Login is
//! held to 10 a minute per client address and 100 per username by default (so one address cannot
//! lock a name's owner out); the API per user and per address; the client address is the peer, or
//! `X-Forwarded-For` from a trusted proxy only. Shared by every node through Redis, and still
//! enforced (per node) while Redis is down.

use std::time::Duration;

use backend::config::{Config, Rate, RateLimits};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::cluster::{Cluster, NodeOptions};
use crate::helpers::{TestApp, TestDb, expect_json, expect_problem, items};
use crate::ws_client::WsClient;
use crate::ws_frames::assert_error_frame;

db_tests!(login_brute_force_is_refused_with_429_and_the_headers, rate_limit_headers_are_on_every_api_response);
db_tests_configured!(six_sends_a_minute => a_users_sends_share_one_budget_over_rest_and_every_socket);

/// The user's send budget for the tests of it (CONTRACT-2 "Socket limits").
const SENDS_PER_MINUTE: u64 = 6;

fn six_sends_a_minute(config: &mut Config) {
    config.rate_limits.sends = Some(Rate::per_minute(SENDS_PER_MINUTE as u32));
}

/// The default login limit, as documented.
const LOGIN_PER_MINUTE: u64 = 10;

fn header(resp: &Response, name: &str) -> Option<u64> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

/// Asserts a 429 `rate_limited` problem with `Retry-After` and the `RateLimit-*` headers.
async fn expect_rate_limited(resp: Response, limit: u64) -> Value {
    let retry_after = header(&resp, "retry-after").expect("Retry-After on a 429");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after} is a wait in seconds");
    assert_eq!(header(&resp, "ratelimit-limit"), Some(limit));
    assert_eq!(header(&resp, "ratelimit-remaining"), Some(0));
    let reset = header(&resp, "ratelimit-reset").expect("RateLimit-Reset on a 429");
    assert!((1..=60).contains(&reset), "RateLimit-Reset {reset}");
    let body = expect_problem(resp, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["code"], "rate_limited", "{body}");
    body
}

async fn login_from(app: &TestApp, address: Option<&str>, username: &str, password: &str) -> Response {
    let mut req =
        app.client.post(app.url("/api/v1/auth/login")).json(&json!({"username": username, "password": password}));
    if let Some(address) = address {
        req = req.header("X-Forwarded-For", address);
    }
    req.send().await.expect("send the login")
}

async fn login_brute_force_is_refused_with_429_and_the_headers(app: TestApp) {
    let alice = app.new_user().await;
    for attempt in 1..=LOGIN_PER_MINUTE {
        let resp = app.login(&alice.username, "wrong password").await;
        assert_eq!(header(&resp, "ratelimit-limit"), Some(LOGIN_PER_MINUTE), "attempt {attempt}");
        assert_eq!(header(&resp, "ratelimit-remaining"), Some(LOGIN_PER_MINUTE - attempt), "attempt {attempt}");
        assert!(header(&resp, "ratelimit-reset").is_some(), "attempt {attempt}");
        expect_problem(resp, StatusCode::UNAUTHORIZED).await;
    }
    // The next guess, and even the right password, wait.
    expect_rate_limited(app.login(&alice.username, "wrong password").await, LOGIN_PER_MINUTE).await;
    expect_rate_limited(app.login(&alice.username, &alice.password).await, LOGIN_PER_MINUTE).await;
    // X-Forwarded-For from an untrusted peer (the default: no trusted proxies) changes nothing.
    let spoofed = login_from(&app, Some("198.51.100.77"), &alice.username, &alice.password).await;
    expect_rate_limited(spoofed, LOGIN_PER_MINUTE).await;
    // The rest of the API is not the login limit: alice's session still works.
    expect_json(app.me(&alice.token).await, StatusCode::OK).await;
}

async fn rate_limit_headers_are_on_every_api_response(app: TestApp) {
    let alice = app.new_user().await;
    let me = app.me(&alice.token).await;
    let limit = header(&me, "ratelimit-limit").expect("RateLimit-Limit on GET /me");
    let remaining = header(&me, "ratelimit-remaining").expect("RateLimit-Remaining on GET /me");
    assert!(remaining < limit, "{remaining} < {limit}");
    assert!(header(&me, "ratelimit-reset").is_some());
    assert!(me.headers().get("retry-after").is_none(), "Retry-After only on a 429");
    // Errors too: an unknown route, a bad token.
    for resp in [app.get("/api/v1/nothing-here", None).await, app.me("not-a-token").await] {
        assert!(header(&resp, "ratelimit-limit").is_some(), "{}", resp.status());
    }
}

fn behind_a_proxy(config: &mut Config) {
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

/// One address guessing at a name spends its own attempts, not the name's owner's: she still signs
/// in from her own address. Guesses at one name from many addresses meet the per-username ceiling.
#[tokio::test]
async fn login_limits_are_per_address_and_per_username() {
    const PER_USERNAME: u64 = 15;
    let app = TestApp::spawn_with(TestDb::Sqlite, |config| {
        behind_a_proxy(config);
        // Per 10 minutes: no attempt comes back (one every 40 s) while the test runs on a busy machine.
        let period = Duration::from_secs(600);
        config.rate_limits.login_username = Some(Rate { limit: PER_USERNAME as u32, period });
    })
    .await;
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let (attacker, home) = ("198.51.100.1", "198.51.100.2");
    for _ in 0..LOGIN_PER_MINUTE {
        let resp = login_from(&app, Some(attacker), &alice.username, "guess").await;
        expect_problem(resp, StatusCode::UNAUTHORIZED).await;
    }
    // The attacker's address is spent, for any name.
    expect_rate_limited(login_from(&app, Some(attacker), &bob.username, &bob.password).await, LOGIN_PER_MINUTE).await;
    // alice is not locked out: from her own address she signs in (her name has 4 of 15 left, her
    // address 9 of 10: the headers tell the tighter).
    let resp = login_from(&app, Some(home), &alice.username, &alice.password).await;
    assert_eq!(header(&resp, "ratelimit-remaining"), Some(PER_USERNAME - LOGIN_PER_MINUTE - 1));
    expect_json(resp, StatusCode::OK).await;

    // A second and third address guessing at alice's name reach its ceiling (11 of 15 used so far);
    // names are one user whatever their case.
    for i in 0..(PER_USERNAME - LOGIN_PER_MINUTE - 1) {
        let (address, name) = if i % 2 == 0 {
            ("198.51.100.3", alice.username.clone())
        } else {
            ("198.51.100.4", alice.username.to_uppercase())
        };
        expect_problem(login_from(&app, Some(address), &name, "guess").await, StatusCode::UNAUTHORIZED).await;
    }
    // Now alice's name is spent from any address, hers included; bob, from there, is not.
    expect_rate_limited(login_from(&app, Some(home), &alice.username, &alice.password).await, PER_USERNAME).await;
    let resp = login_from(&app, Some("198.51.100.5"), &alice.username, &alice.password).await;
    expect_rate_limited(resp, PER_USERNAME).await;
    expect_json(login_from(&app, Some(home), &bob.username, &bob.password).await, StatusCode::OK).await;
}

/// Registration per address, the API per user (whichever credential) and per address.
#[tokio::test]
async fn register_user_and_address_limits() {
    let app = TestApp::spawn_with(TestDb::Sqlite, |config| {
        behind_a_proxy(config);
        config.rate_limits = RateLimits {
            register: Some(Rate::per_minute(3)),
            per_user: Some(Rate::per_minute(6)),
            per_address: Some(Rate::per_minute(12)),
            ..RateLimits::default()
        };
    })
    .await;
    let register = |address: &'static str| {
        let body = json!({"username": crate::helpers::random_username(), "password": "long enough password"});
        app.client.post(app.url("/api/v1/auth/register")).header("X-Forwarded-For", address).json(&body).send()
    };
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let body = expect_json(register("192.0.2.1").await.unwrap(), StatusCode::CREATED).await;
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
    }
    expect_rate_limited(register("192.0.2.1").await.unwrap(), 3).await;
    expect_json(register("192.0.2.2").await.unwrap(), StatusCode::CREATED).await;

    // Per user: 6 a minute (after registering, which is not an authenticated request).
    let me = |token: &str, address: &str| {
        app.client.get(app.url("/api/v1/me")).bearer_auth(token).header("X-Forwarded-For", address).send()
    };
    for i in 1..=6u64 {
        let resp = me(&tokens[0], "192.0.2.10").await.unwrap();
        assert_eq!(header(&resp, "ratelimit-remaining"), Some(6 - i), "the user's is the tightest");
        expect_json(resp, StatusCode::OK).await;
    }
    // From another address the same user is still limited; another user is not.
    expect_rate_limited(me(&tokens[0], "192.0.2.11").await.unwrap(), 6).await;
    expect_json(me(&tokens[1], "192.0.2.10").await.unwrap(), StatusCode::OK).await;

    // Per address: 12 a minute, whoever asks; 192.0.2.10 has used 7, and 5 more make 12.
    for _ in 0..5 {
        expect_json(me(&tokens[2], "192.0.2.10").await.unwrap(), StatusCode::OK).await;
    }
    let resp = app.client.get(app.url("/api/v1/rooms")).header("X-Forwarded-For", "192.0.2.10").send().await.unwrap();
    expect_rate_limited(resp, 12).await;
}

/// Two processes on one Redis share the login limit; with Redis gone each still limits alone.
#[tokio::test]
async fn the_login_limit_is_shared_by_the_nodes_through_redis() {
    let Some(mut cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
    let alice = cluster.app(0).new_user().await;
    for attempt in 0..LOGIN_PER_MINUTE {
        let node = cluster.app((attempt % 2) as usize);
        let resp = node.login(&alice.username, "guess").await;
        assert_eq!(header(&resp, "ratelimit-remaining"), Some(LOGIN_PER_MINUTE - attempt - 1), "{}", cluster.logs());
        expect_problem(resp, StatusCode::UNAUTHORIZED).await;
    }
    for i in 0..2 {
        expect_rate_limited(cluster.app(i).login(&alice.username, &alice.password).await, LOGIN_PER_MINUTE).await;
    }

    // Redis down: logins are answered (not 503), counted by each node on its own.
    cluster.redis.kill();
    let bob = "nobody-like-bob";
    let mut statuses = Vec::new();
    for _ in 0..=LOGIN_PER_MINUTE {
        let resp = tokio::time::timeout(Duration::from_secs(5), cluster.app(1).login(bob, "guess"))
            .await
            .expect("a login is answered while Redis is down");
        statuses.push(resp.status().as_u16());
    }
    assert!(statuses[..LOGIN_PER_MINUTE as usize].iter().all(|&s| s == 401), "{statuses:?}\n{}", cluster.logs());
    assert_eq!(statuses[LOGIN_PER_MINUTE as usize], 429, "{statuses:?}");
    cluster.redis.restart().await;
}

/// A send frame; the ack's seq, or the error frame when it is refused.
async fn send_over(ws: &mut WsClient, room_id: i64, client_id: &str) -> Result<i64, Value> {
    ws.send(json!({"type": "send", "room_id": room_id, "body": client_id, "client_id": client_id})).await;
    loop {
        let frame = ws.next_frame().await.expect("an answer to the send");
        match frame["type"].as_str() {
            Some("ack") if frame["client_id"] == client_id => return Ok(frame["message"]["seq"].as_i64().unwrap()),
            Some("error") if frame["client_id"] == client_id => return Err(frame),
            _ => {}
        }
    }
}

/// A send over `ws` refused by the send budget: an error frame `rate_limited` naming its client_id.
async fn expect_send_refused(ws: &mut WsClient, room_id: i64, client_id: &str) {
    let refused = send_over(ws, room_id, client_id).await.expect_err("over the budget");
    assert_error_frame(&refused, "rate_limited", Some(client_id));
}

fn send_body(client_id: &str) -> Value {
    json!({"body": client_id, "client_id": client_id})
}

/// Two sockets and REST draw on one budget: a user cannot multiply their sends by opening sockets.
/// Past it each path refuses (`rate_limited`), nothing refused is stored, the sockets stay open, and
/// another user of the room is not affected.
async fn a_users_sends_share_one_budget_over_rest_and_every_socket(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    expect_json(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;
    let (mut first, mut second) = (app.ws(&alice.token).await, app.ws(&alice.token).await);

    for i in 0..2 {
        send_over(&mut first, room_id, &format!("first-{i}")).await.expect("within the budget");
        send_over(&mut second, room_id, &format!("second-{i}")).await.expect("within the budget");
        let resp = app.post_message(&alice.token, room_id, &send_body(&format!("rest-{i}"))).await;
        expect_json(resp, StatusCode::CREATED).await;
    }
    // Six sent: the seventh is refused on every path.
    expect_send_refused(&mut first, room_id, "first-over").await;
    expect_send_refused(&mut second, room_id, "second-over").await;
    let resp = app.post_message(&alice.token, room_id, &send_body("rest-over")).await;
    expect_rate_limited(resp, SENDS_PER_MINUTE).await;
    // Bob's budget is his own; alice's sockets are still open.
    expect_json(app.post_message(&bob.token, room_id, &send_body("bob")).await, StatusCode::CREATED).await;
    first.ping_pong().await;
    second.ping_pong().await;

    let page = app.history_page(&bob.token, room_id, "").await;
    let mut bodies: Vec<&str> = items(&page).iter().map(|m| m["body"].as_str().unwrap()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["bob", "first-0", "first-1", "rest-0", "rest-1", "second-0", "second-1"], "{page}");
}

/// Across nodes through Redis: sends over a socket on one node and REST on the other share the budget.
#[tokio::test]
async fn the_send_budget_is_shared_by_the_nodes() {
    let options =
        NodeOptions { env: vec![("RATE_LIMIT_SENDS", format!("{SENDS_PER_MINUTE}/min"))], ..NodeOptions::default() };
    let Some(cluster) = Cluster::start(2, options).await else { return };
    let (a, b) = (cluster.app(0), cluster.app(1));
    let alice = a.new_user().await;
    let room_id = a.room_id(&alice, "public").await;
    let mut ws = b.ws(&alice.token).await;
    for i in 0..SENDS_PER_MINUTE / 2 {
        send_over(&mut ws, room_id, &format!("socket-{i}")).await.expect("within the budget");
        let resp = a.post_message(&alice.token, room_id, &send_body(&format!("rest-{i}"))).await;
        expect_json(resp, StatusCode::CREATED).await;
    }
    expect_send_refused(&mut ws, room_id, "socket-over").await;
    expect_rate_limited(a.post_message(&alice.token, room_id, &send_body("rest-over")).await, SENDS_PER_MINUTE).await;
    let page = a.history_page(&alice.token, room_id, "").await;
    assert_eq!(items(&page).len() as u64, SENDS_PER_MINUTE, "{page}\n{}", cluster.logs());
}
