//! Outgoing webhooks (CONTRACT-2 "Webhooks"): made, listed, changed and deleted by a room's owner and admins
//! with URLs checked against SSRF; each event POSTed to a real receiver on 127.0.0.1, signed (verified with
//! the Standard Webhooks reference library, npm `standardwebhooks`), at least once and in order per webhook;
//! a failing receiver retried with backoff, then the webhook disabled and the owner notified; across two
//! nodes each event sent by one of them, and a node killed mid-delivery losing nothing.

use std::collections::VecDeque;
use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::cluster::{Cluster, NodeOptions};
use crate::helpers::{
    RoomWithRoles, TestApp, TestUser, expect_json, expect_problem, expect_status, expect_validation_error, items,
    private_room_with_roles,
};

db_tests!(webhooks_are_managed_by_moderators_only_and_urls_are_checked);

db_tests_configured!(local_receivers =>
    room_events_are_delivered_signed_in_order_once,
    a_failing_receiver_is_retried_then_the_webhook_disabled_and_the_owner_notified,
    a_receiver_that_does_not_answer_times_out_and_never_holds_up_sends,
    a_webhook_deleted_mid_delivery_costs_the_others_nothing,
);

/// Receivers on 127.0.0.1 are allowed (plain http, loopback); retries come fast and give up after 3 s.
fn local_receivers(config: &mut backend::config::Config) {
    config.webhooks.allow_hosts = vec!["127.0.0.1".into()];
    config.webhooks.retry_delays = vec![Duration::from_millis(300), Duration::from_millis(600)];
    config.webhooks.give_up_after = Duration::from_secs(3);
    config.webhooks.timeout = Duration::from_secs(1);
}

// ---- a receiver ----

/// What the receiver does with a request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// Never answers (until the test ends).
    Hang,
    /// Answers 200 when the test calls `release`.
    Held,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Delivery {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    answered: Option<u16>,
}

impl Delivery {
    fn payload(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Script {
    released: Arc<tokio::sync::Notify>,
    got: Vec<Delivery>,
    /// Answers for the next requests, then `otherwise`.
    next: VecDeque<Answer>,
    otherwise: Option<Answer>,
}

/// A webhook receiver: a real HTTP server on 127.0.0.1:0 that records what it is sent.
#[derive(Clone)]
struct Receiver {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let script = Arc::new(Mutex::new(Script::default()));
        let shared = web::Data::from(Arc::clone(&script));
        let server = HttpServer::new(move || App::new().app_data(shared.clone()).default_service(web::to(receive)))
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .expect("bind the receiver");
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Receiver { url: format!("http://127.0.0.1:{port}/hook"), script }
    }

    fn answer_next(&self, answers: &[Answer]) {
        self.script.lock().unwrap().next.extend(answers);
    }

    fn answer_always(&self, answer: Answer) {
        self.script.lock().unwrap().otherwise = Some(answer);
    }

    fn got(&self) -> Vec<Delivery> {
        self.script.lock().unwrap().got.clone()
    }

    /// Answers the requests held (`Answer::Held`).
    fn release(&self) {
        self.script.lock().unwrap().released.notify_waiters();
    }

    /// The requests, once at least `n` came (panics after `within`).
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "the receiver got {} of {n} requests: {got:#?}", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The requests it answered with 2xx, in order.
    fn delivered(&self) -> Vec<Delivery> {
        self.got().into_iter().filter(|d| d.answered.is_some_and(|s| (200..300).contains(&s))).collect()
    }
}

async fn receive(req: HttpRequest, body: String, script: web::Data<Mutex<Script>>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let answer = {
        let mut script = script.lock().unwrap();
        let answer = script.next.pop_front().or(script.otherwise).unwrap_or(Answer::Status(200));
        script.got.push(Delivery {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body,
            answered: match answer {
                Answer::Status(s) => Some(s),
                Answer::Held => Some(200),
                Answer::Hang => None,
            },
        });
        (answer, Arc::clone(&script.released))
    };
    match answer {
        (Answer::Status(status), _) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).body("ok")
        }
        (Answer::Held, released) => {
            released.notified().await;
            HttpResponse::Ok().finish()
        }
        (Answer::Hang, _) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
    }
}

// ---- verification with the reference library ----

/// The repository's `node_modules`, when node and `standardwebhooks` are installed (`npm ci`); otherwise
/// fails under `CI` and warns once elsewhere.
fn reference_library() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
        let found = root.join("node_modules/standardwebhooks/package.json").exists()
            && std::process::Command::new("node").arg("--version").output().is_ok();
        assert!(found || std::env::var_os("CI").is_none(), "CI is set but node or npm's standardwebhooks is missing");
        if !found {
            let _ = writeln!(
                std::io::stderr(),
                "WARNING: node or standardwebhooks missing (npm ci): signatures NOT VERIFIED"
            );
        }
        found
    })
}

/// Verifies every delivery's signature with `standardwebhooks` (and that a changed body fails); returns the
/// payloads the library accepted.
async fn verified(secret: &str, deliveries: &[Delivery]) -> Vec<Value> {
    if !reference_library() {
        return deliveries.iter().map(Delivery::payload).collect();
    }
    let input = json!({
        "secret": secret,
        "deliveries": deliveries.iter().map(|d| json!({
            "headers": {"webhook-id": d.id, "webhook-timestamp": d.timestamp, "webhook-signature": d.signature},
            "body": d.body,
        })).collect::<Vec<_>>(),
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/verify_webhooks.mjs");
    let mut child = tokio::process::Command::new("node")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "standardwebhooks refused a delivery: {stderr}");
    let payloads: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(payloads.len(), deliveries.len());
    payloads
}

// ---- helpers ----

const ALL_EVENTS: [&str; 7] = [
    "message.created",
    "message.updated",
    "message.deleted",
    "reaction.added",
    "reaction.removed",
    "member.joined",
    "member.left",
];

async fn create_webhook(app: &TestApp, token: &str, room_id: i64, body: &Value) -> reqwest::Response {
    app.post(&format!("/api/v1/rooms/{room_id}/webhooks"), Some(token), body).await
}

async fn make_webhook(app: &TestApp, user: &TestUser, room_id: i64, url: &str, events: &[&str]) -> Value {
    let made = expect_json(
        create_webhook(app, &user.token, room_id, &json!({"url": url, "events": events})).await,
        StatusCode::CREATED,
    )
    .await;
    assert!(made["secret"].as_str().unwrap().starts_with("whsec_"), "{made}");
    assert_eq!(made["enabled"], true);
    made
}

async fn deliveries(app: &TestApp, user: &TestUser, room_id: i64, webhook_id: i64) -> Vec<Value> {
    let path = format!("/api/v1/rooms/{room_id}/webhooks/{webhook_id}/deliveries");
    items(&expect_json(app.get(&path, Some(&user.token)).await, StatusCode::OK).await).clone()
}

async fn webhooks_of(app: &TestApp, user: &TestUser, room_id: i64) -> Vec<Value> {
    let path = format!("/api/v1/rooms/{room_id}/webhooks");
    items(&expect_json(app.get(&path, Some(&user.token)).await, StatusCode::OK).await).clone()
}

async fn patch_webhook(
    app: &TestApp,
    user: &TestUser,
    room_id: i64,
    webhook_id: i64,
    body: &Value,
) -> reqwest::Response {
    let path = format!("/api/v1/rooms/{room_id}/webhooks/{webhook_id}");
    app.request(Method::PATCH, &path, Some(&user.token), Some(body)).await
}

/// Waits until `check` holds of the webhook's deliveries list (panics after `within`).
async fn deliveries_until(
    app: &TestApp,
    user: &TestUser,
    room_id: i64,
    webhook_id: i64,
    within: Duration,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let list = deliveries(app, user, room_id, webhook_id).await;
        if check(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "deliveries never came to the expected state: {list:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn types_of(payloads: &[Value]) -> Vec<String> {
    payloads.iter().map(|p| p["type"].as_str().unwrap().to_owned()).collect()
}

// ---- tests ----

async fn room_events_are_delivered_signed_in_order_once(app: TestApp) {
    let receiver = Receiver::start().await;
    let RoomWithRoles { id, alice, bob, carol } = private_room_with_roles(&app).await;
    let made = make_webhook(&app, &bob, id, &receiver.url, &ALL_EVENTS).await;
    let only_messages = Receiver::start().await;
    make_webhook(&app, &alice, id, &only_messages.url, &["message.created"]).await;

    for i in 1..=10 {
        app.send(&alice, id, &format!("msg {i}")).await;
    }
    let edited = app.edit_message(&alice.token, id, 2, &json!({"body": "msg 2, edited"})).await;
    expect_status(edited, StatusCode::OK).await;
    expect_status(app.delete_message(&alice.token, id, 3).await, StatusCode::NO_CONTENT).await;
    let reaction = format!("/api/v1/rooms/{id}/messages/1/reactions/%F0%9F%91%8D");
    let added = app.request(Method::PUT, &reaction, Some(&carol.token), None).await;
    assert!(added.status().is_success(), "{}", added.status());
    let removed = app.request(Method::DELETE, &reaction, Some(&carol.token), None).await;
    assert!(removed.status().is_success(), "{}", removed.status());
    let dave = app.new_user().await;
    expect_status(app.add_member(&alice.token, id, &dave.username).await, StatusCode::CREATED).await;
    expect_status(app.leave_room(&dave.token, id).await, StatusCode::NO_CONTENT).await;

    let got = receiver.wait_for(16, Duration::from_secs(20)).await;
    let payloads = verified(made["secret"].as_str().unwrap(), &got).await;
    let mut expected: Vec<&str> = vec!["message.created"; 10];
    expected.extend([
        "message.updated",
        "message.deleted",
        "reaction.added",
        "reaction.removed",
        "member.joined",
        "member.left",
    ]);
    assert_eq!(types_of(&payloads), expected, "every event, once, in commit order");
    let seqs: Vec<i64> = payloads[..10].iter().map(|p| p["data"]["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    for p in &payloads {
        assert_eq!(p["room_id"], id, "{p}");
        assert!(p["timestamp"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().is_ok(), "{p}");
    }
    assert_eq!(payloads[0]["data"]["body"], "msg 1");
    assert_eq!(payloads[0]["data"]["author"]["id"], alice.id);
    assert_eq!(payloads[10]["data"]["body"], "msg 2, edited");
    assert_eq!(payloads[11]["data"], json!({"room_id": id, "seq": 3}));
    assert_eq!(payloads[12]["data"]["emoji"], "👍");
    assert_eq!(payloads[12]["data"]["user"]["id"], carol.id);
    assert_eq!(payloads[14]["data"]["user"]["id"], dave.id);
    assert_eq!(payloads[15]["data"]["user"]["id"], dave.id);
    assert_eq!(payloads[15]["data"]["reason"], "left");
    let mut ids: Vec<&str> = got.iter().map(|d| d.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "one webhook-id per event");

    // The other webhook wanted only new messages, and has its own secret.
    let other = only_messages.wait_for(10, Duration::from_secs(20)).await;
    assert_eq!(other.len(), 10);
    assert!(other.iter().all(|d| d.payload()["type"] == "message.created"));
    assert!(!got.iter().any(|d| other.iter().any(|o| o.signature == d.signature)));

    // The deliveries list shows each attempt; the list never shows the secret.
    let list =
        deliveries_until(&app, &bob, id, made["id"].as_i64().unwrap(), Duration::from_secs(10), |l| l.len() == 16)
            .await;
    assert!(list.iter().all(|d| d["status_code"] == 200 && d["error"].is_null() && d["attempt"] == 1), "{list:#?}");
    assert_eq!(list[0]["event_type"], "member.left", "newest first");
    let hooks = webhooks_of(&app, &alice, id).await;
    assert_eq!(hooks.len(), 2);
    assert!(hooks.iter().all(|h| h.get("secret").is_none() && h["pending"] == 0), "{hooks:#?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), 16, "nothing delivered twice");
}

async fn webhooks_are_managed_by_moderators_only_and_urls_are_checked(app: TestApp) {
    let RoomWithRoles { id, alice, bob, carol } = private_room_with_roles(&app).await;
    // Names must resolve when a webhook is made; this machine may have no DNS, so addresses are used
    // where a public one is needed.
    let public = json!({"url": "https://93.184.216.34/hook", "events": ["message.created"]});

    // A member, an outsider and an API token may not; the owner and an admin may.
    let refused = expect_problem(create_webhook(&app, &carol.token, id, &public).await, StatusCode::FORBIDDEN).await;
    assert_eq!(refused["code"], "not_a_moderator");
    let outsider = app.new_user().await;
    expect_problem(create_webhook(&app, &outsider.token, id, &public).await, StatusCode::NOT_FOUND).await;
    let token = app.api_token(&alice, &["messages:write", "rooms:read"]).await;
    let scoped = create_webhook(&app, token["token"].as_str().unwrap(), id, &public).await;
    assert_eq!(expect_problem(scoped, StatusCode::FORBIDDEN).await["code"], "insufficient_scope");
    let made = expect_json(create_webhook(&app, &bob.token, id, &public).await, StatusCode::CREATED).await;
    let webhook_id = made["id"].as_i64().unwrap();
    let path = format!("/api/v1/rooms/{id}/webhooks/{webhook_id}");
    for (method, p) in [
        (Method::GET, format!("/api/v1/rooms/{id}/webhooks")),
        (Method::PATCH, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::GET, format!("{path}/deliveries")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"enabled": false}));
        let resp = app.request(method.clone(), &p, Some(&carol.token), body.as_ref()).await;
        assert_eq!(expect_problem(resp, StatusCode::FORBIDDEN).await["code"], "not_a_moderator", "{method} {p}");
    }

    // URLs: https only (no host listed here), never this host, a private network, link-local or loopback
    // by name, no credentials, not too long; at least one known event.
    for url in [
        "http://93.184.216.34/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
        "ftp://93.184.216.34/",
        "not a url",
        "https://user:secret@93.184.216.34/",
        &format!("https://93.184.216.34/{}", "a".repeat(2100)),
    ] {
        let resp = create_webhook(&app, &alice.token, id, &json!({"url": url, "events": ["message.created"]})).await;
        expect_validation_error(resp, "url").await;
    }
    let none = create_webhook(&app, &alice.token, id, &json!({"url": "https://93.184.216.34/", "events": []})).await;
    expect_validation_error(none, "events").await;
    let unknown =
        create_webhook(&app, &alice.token, id, &json!({"url": "https://93.184.216.34/", "events": ["everything"]}))
            .await;
    let status = unknown.status();
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    expect_problem(unknown, status).await;
    let malformed = app
        .client
        .post(app.url(&format!("/api/v1/rooms/{id}/webhooks")))
        .bearer_auth(&alice.token)
        .header("content-type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    expect_problem(malformed, StatusCode::BAD_REQUEST).await;

    // PATCH checks a new URL the same way, and changes what it is given.
    let bad = patch_webhook(&app, &alice, id, webhook_id, &json!({"url": "https://127.0.0.1/"})).await;
    expect_validation_error(bad, "url").await;
    let changed = patch_webhook(
        &app,
        &alice,
        id,
        webhook_id,
        &json!({"events": ["member.joined", "member.left"], "enabled": false}),
    )
    .await;
    let changed = expect_json(changed, StatusCode::OK).await;
    assert_eq!(changed["events"], json!(["member.joined", "member.left"]));
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["url"], "https://93.184.216.34/hook");

    // Another room's webhook is not found through this room; at most 10 per room.
    let other_room = app.room_id(&alice, "public").await;
    let elsewhere = patch_webhook(&app, &alice, other_room, webhook_id, &json!({"enabled": true})).await;
    assert_eq!(expect_problem(elsewhere, StatusCode::NOT_FOUND).await["code"], "webhook_not_found");
    let deliveries_elsewhere =
        app.get(&format!("/api/v1/rooms/{other_room}/webhooks/{webhook_id}/deliveries"), Some(&alice.token)).await;
    expect_problem(deliveries_elsewhere, StatusCode::NOT_FOUND).await;
    for _ in 0..9 {
        expect_status(create_webhook(&app, &alice.token, id, &public).await, StatusCode::CREATED).await;
    }
    expect_validation_error(create_webhook(&app, &alice.token, id, &public).await, "url").await;

    // Deleted: gone from the list, and a second delete is 404.
    let del = app.request(Method::DELETE, &path, Some(&alice.token), None).await;
    expect_status(del, StatusCode::NO_CONTENT).await;
    let again = app.request(Method::DELETE, &path, Some(&alice.token), None).await;
    assert_eq!(expect_problem(again, StatusCode::NOT_FOUND).await["code"], "webhook_not_found");
    let listed = webhooks_of(&app, &alice, id).await;
    assert_eq!(listed.len(), 9);
    assert!(listed.iter().all(|h| h["id"] != webhook_id && h.get("secret").is_none()));

    // Each making and the deletion are in the room's audit log, by whom, with the URL.
    let audit =
        expect_json(app.get(&format!("/api/v1/rooms/{id}/audit?limit=100"), Some(&alice.token)).await, StatusCode::OK)
            .await;
    let logged: Vec<(&str, i64, &str)> = items(&audit)
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("webhook_")))
        .map(|e| (e["action"].as_str().unwrap(), e["actor"]["id"].as_i64().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(logged.len(), 11, "{logged:?}");
    assert_eq!(logged[0], ("webhook_deleted", alice.id, "https://93.184.216.34/hook"));
    assert_eq!(logged[10], ("webhook_created", bob.id, "https://93.184.216.34/hook"));
}

async fn a_failing_receiver_is_retried_then_the_webhook_disabled_and_the_owner_notified(app: TestApp) {
    let receiver = Receiver::start().await;
    let RoomWithRoles { id, alice, bob, .. } = private_room_with_roles(&app).await;
    let made = make_webhook(&app, &bob, id, &receiver.url, &["message.created"]).await;
    let webhook_id = made["id"].as_i64().unwrap();

    // Fails twice, then takes it: the same event (same webhook-id) comes again, and the next after it.
    receiver.answer_next(&[Answer::Status(500), Answer::Status(302)]);
    app.send(&alice, id, "first").await;
    app.send(&alice, id, "second").await;
    let got = receiver.wait_for(4, Duration::from_secs(20)).await;
    let bodies: Vec<Value> = got.iter().map(|d| d.payload()["data"]["body"].clone()).collect();
    assert_eq!(bodies, [json!("first"), json!("first"), json!("first"), json!("second")], "redirects are not followed");
    assert!(got[0].id == got[1].id && got[1].id == got[2].id && got[2].id != got[3].id);
    verified(made["secret"].as_str().unwrap(), &got).await;
    let list = deliveries_until(&app, &alice, id, webhook_id, Duration::from_secs(10), |l| l.len() == 4).await;
    let attempts: Vec<(Value, Value)> =
        list.iter().rev().map(|d| (d["attempt"].clone(), d["status_code"].clone())).collect();
    assert_eq!(
        attempts,
        [(json!(1), json!(500)), (json!(2), json!(302)), (json!(3), json!(200)), (json!(1), json!(200))]
    );

    // Failing for longer than the configured 3 s: disabled, and the owner (not the admin who made it) hears.
    receiver.answer_always(Answer::Status(503));
    app.send(&alice, id, "third").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let hooks = webhooks_of(&app, &alice, id).await;
        if hooks[0]["enabled"] == false {
            assert_eq!(hooks[0]["pending"], 1, "the event stays queued: {hooks:#?}");
            break;
        }
        assert!(Instant::now() < deadline, "never disabled: {hooks:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tries = receiver.got().len();
    assert!(tries >= 6, "retried with backoff before giving up: {tries} requests");
    let page = expect_json(app.get("/api/v1/notifications", Some(&alice.token)).await, StatusCode::OK).await;
    let note = items(&page).iter().find(|n| n["kind"] == "webhook_disabled").cloned();
    let note = note.unwrap_or_else(|| panic!("no webhook_disabled notification: {page}"));
    assert_eq!(note["webhook"], json!({"id": webhook_id, "url": receiver.url}));
    assert_eq!(note["room_id"], id);
    assert!(note["message"].is_null());
    let bobs = expect_json(app.get("/api/v1/notifications", Some(&bob.token)).await, StatusCode::OK).await;
    assert!(items(&bobs).iter().all(|n| n["kind"] != "webhook_disabled"), "{bobs}");

    // Disabled: nothing is sent, nothing new is queued. Enabled again: the waiting event comes at once.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = receiver.got().len();
    app.send(&alice, id, "while disabled").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.got().len(), before, "a disabled webhook gets nothing");
    receiver.answer_always(Answer::Status(204));
    let enabled =
        expect_json(patch_webhook(&app, &alice, id, webhook_id, &json!({"enabled": true})).await, StatusCode::OK).await;
    assert_eq!(enabled["enabled"], true);
    let got = receiver.wait_for(before + 1, Duration::from_secs(10)).await;
    assert_eq!(got.last().unwrap().payload()["data"]["body"], "third");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.delivered().last().unwrap().payload()["data"]["body"],
        "third",
        "not the one sent while disabled"
    );
}

async fn a_receiver_that_does_not_answer_times_out_and_never_holds_up_sends(app: TestApp) {
    let receiver = Receiver::start().await;
    let RoomWithRoles { id, alice, .. } = private_room_with_roles(&app).await;
    let made = make_webhook(&app, &alice, id, &receiver.url, &["message.created"]).await;
    receiver.answer_next(&[Answer::Hang]);
    // The receiver holds the first delivery; every send is still answered, and one delivery is in flight.
    for i in 1..=30 {
        app.send(&alice, id, &format!("msg {i}")).await;
    }
    let list =
        deliveries_until(&app, &alice, id, made["id"].as_i64().unwrap(), Duration::from_secs(15), |l| !l.is_empty())
            .await;
    let first = list.last().unwrap();
    assert!(first["status_code"].is_null());
    assert_eq!(first["error"], "no answer in 1 s", "{first}");
    let got = receiver.wait_for(31, Duration::from_secs(20)).await;
    let bodies: Vec<String> =
        receiver.delivered().iter().map(|d| d.payload()["data"]["body"].as_str().unwrap().to_owned()).collect();
    assert_eq!(bodies, (1..=30).map(|i| format!("msg {i}")).collect::<Vec<_>>(), "in order after the timeout");
    assert_eq!(got[0].id, got[1].id, "the timed-out event was sent again first");
}

async fn a_webhook_deleted_mid_delivery_costs_the_others_nothing(app: TestApp) {
    let (doomed_receiver, other) = (Receiver::start().await, Receiver::start().await);
    let RoomWithRoles { id, alice, .. } = private_room_with_roles(&app).await;
    let doomed = make_webhook(&app, &alice, id, &doomed_receiver.url, &["message.created"]).await;
    make_webhook(&app, &alice, id, &other.url, &["message.created"]).await;
    // Both receivers hold the first event; the first webhook is deleted meanwhile; both then answer at
    // once, so both outcomes are recorded in one round, which must not fail for the deleted one's sake.
    doomed_receiver.answer_next(&[Answer::Held]);
    other.answer_next(&[Answer::Held]);
    app.send(&alice, id, "first").await;
    doomed_receiver.wait_for(1, Duration::from_secs(10)).await;
    other.wait_for(1, Duration::from_secs(10)).await;
    let path = format!("/api/v1/rooms/{id}/webhooks/{}", doomed["id"]);
    expect_status(app.request(Method::DELETE, &path, Some(&alice.token), None).await, StatusCode::NO_CONTENT).await;
    doomed_receiver.release();
    other.release();
    for i in 2..=3 {
        app.send(&alice, id, &format!("msg {i}")).await;
    }
    other.wait_for(3, Duration::from_secs(10)).await;
    // Past the lease a lost round would leave (2 x 1 s + 5 s): nothing came twice.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let bodies: Vec<Value> = other.got().iter().map(|d| d.payload()["data"]["body"].clone()).collect();
    assert_eq!(bodies, [json!("first"), json!("msg 2"), json!("msg 3")]);
    assert_eq!(doomed_receiver.got().len(), 1, "nothing more for a deleted webhook");
}

/// Two nodes on PostgreSQL and Redis: each event is delivered by one node, in order; a node killed while a
/// delivery is out loses nothing: the other node sends it again when the lease ends.
#[tokio::test]
async fn across_two_nodes_each_event_is_sent_once_and_a_dead_node_loses_nothing() {
    let receiver = Receiver::start().await;
    let env = vec![("WEBHOOK_ALLOW_HOSTS", "127.0.0.1".to_owned()), ("WEBHOOK_TIMEOUT_SECONDS", "1".to_owned())];
    let Some(mut cluster) = Cluster::start(2, NodeOptions { env, ..NodeOptions::default() }).await else { return };
    let (a, b) = (TestApp::at(cluster.app(0).address.clone()), TestApp::at(cluster.app(1).address.clone()));
    let alice = a.new_user().await;
    let id = a.room_id(&alice, "public").await;
    let made = make_webhook(&a, &alice, id, &receiver.url, &["message.created"]).await;
    for i in 1..=40 {
        let node = if i % 2 == 0 { &a } else { &b };
        node.send(&alice, id, &format!("msg {i}")).await;
    }
    receiver.wait_for(40, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = receiver.got();
    let payloads = verified(made["secret"].as_str().unwrap(), &got).await;
    let seqs: Vec<i64> = payloads.iter().map(|p| p["data"]["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>(), "each once, in order: {}", cluster.logs());

    // The receiver holds the next delivery; both nodes die and one comes back: the event arrives again.
    receiver.answer_next(&[Answer::Hang]);
    a.send(&alice, id, "held").await;
    receiver.wait_for(41, Duration::from_secs(10)).await;
    cluster.nodes.clear();
    cluster.add_node().await;
    let got = receiver.wait_for(42, Duration::from_secs(30)).await;
    assert_eq!(got[41].id, got[40].id, "the same event, after the lease: {}", cluster.logs());
    assert_eq!(got[41].payload()["data"]["body"], "held");
}
