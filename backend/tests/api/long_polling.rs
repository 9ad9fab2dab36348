//! Long polling (CONTRACT-2 "Without a WebSocket"): `GET /rooms/{id}/messages?after=N&wait=S` answers at
//! once when there is a message after N, else holds the request until one arrives or S seconds pass.
//! Membership and scopes as for any history read; a bounded number held per user; across nodes.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, expect_json, expect_problem, expect_status, items, seqs};

db_tests!(
    a_waiting_poll_answers_at_once_when_there_is_a_message_after,
    a_held_poll_answers_with_the_message_that_arrives,
    a_poll_with_nothing_new_answers_empty_after_wait,
    long_polls_refuse_bad_queries_outsiders_and_missing_scopes,
    a_user_holds_a_bounded_number_of_polls_and_one_message_answers_them_all,
);

/// A room of Alice's that Bob has joined.
async fn two_members(app: &TestApp) -> (TestUser, TestUser, i64) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;
    (alice, bob, room_id)
}

/// Starts `GET .../messages?{query}` in the background.
fn poll(app: &TestApp, token: &str, room_id: i64, query: &str) -> tokio::task::JoinHandle<reqwest::Response> {
    let (client, url, token) =
        (app.client.clone(), app.url(&format!("/api/v1/rooms/{room_id}/messages?{query}")), token.to_owned());
    tokio::spawn(async move { client.get(url).bearer_auth(token).send().await.expect("the poll gets an answer") })
}

/// Whether the background request is still held after a moment.
async fn still_held(request: &tokio::task::JoinHandle<reqwest::Response>) -> bool {
    tokio::time::sleep(Duration::from_millis(300)).await;
    !request.is_finished()
}

async fn answer(request: tokio::task::JoinHandle<reqwest::Response>) -> Value {
    let response = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("the held poll answers once a message arrives")
        .expect("the poll task");
    expect_json(response, StatusCode::OK).await
}

async fn a_waiting_poll_answers_at_once_when_there_is_a_message_after(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app).await;
    app.send(&alice, room_id, "one").await;
    app.send(&alice, room_id, "two").await;
    let request = poll(&app, &bob.token, room_id, "after=1&wait=30");
    let page = answer(request).await;
    assert_eq!(seqs(&page), [2], "{page}");
    assert_eq!(items(&page)[0]["body"], "two");
}

async fn a_held_poll_answers_with_the_message_that_arrives(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app).await;
    app.send(&alice, room_id, "before the poll").await;
    let request = poll(&app, &bob.token, room_id, "after=1&wait=30");
    assert!(still_held(&request).await, "nothing after seq 1 yet: the request is held");
    let sent = Instant::now();
    app.send(&alice, room_id, "while held").await;
    let page = answer(request).await;
    assert!(sent.elapsed() < Duration::from_secs(4), "woken by the message, not by the periodic re-read");
    assert_eq!(seqs(&page), [2], "{page}");
    assert_eq!(items(&page)[0]["body"], "while held");
    assert_eq!(page["has_more"], false);

    // The next poll from where this one ended catches what came in between: nothing is lost.
    app.send(&alice, room_id, "between polls").await;
    let page = answer(poll(&app, &bob.token, room_id, "after=2&wait=30")).await;
    assert_eq!(seqs(&page), [3]);
}

async fn a_poll_with_nothing_new_answers_empty_after_wait(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app).await;
    app.send(&alice, room_id, "the only one").await;
    let started = Instant::now();
    let page = answer(poll(&app, &bob.token, room_id, "after=1&wait=1")).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "held for the whole wait");
    assert_eq!(page, json!({"items": [], "has_more": false}));
    // Another room's message does not wake a poll on this one.
    let other = app.room_id(&alice, "public").await;
    let request = poll(&app, &alice.token, room_id, "after=1&wait=2");
    app.send(&alice, other, "elsewhere").await;
    assert!(still_held(&request).await, "a message in another room does not answer the poll");
    assert_eq!(answer(request).await["items"], json!([]));
}

async fn long_polls_refuse_bad_queries_outsiders_and_missing_scopes(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app).await;
    for query in ["after=0&wait=0", "after=0&wait=31", "after=0&wait=soon", "wait=5", "after=0&before=5&wait=5"] {
        let path = format!("/api/v1/rooms/{room_id}/messages?{query}");
        let problem = expect_problem(app.get(&path, Some(&bob.token)).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["code"], "invalid_query", "{query}: {problem}");
    }
    let path = format!("/api/v1/rooms/{room_id}/messages?after=0&wait=5");
    expect_problem(app.get(&path, None).await, StatusCode::UNAUTHORIZED).await;
    // Someone outside a private room learns nothing, not even that it exists.
    let private = app.room_id(&alice, "private").await;
    let outsider = app.new_user().await;
    let private_path = format!("/api/v1/rooms/{private}/messages?after=0&wait=5");
    let problem = expect_problem(app.get(&private_path, Some(&outsider.token)).await, StatusCode::NOT_FOUND).await;
    assert_eq!(problem["code"], "room_not_found");
    // An API token needs messages:read.
    let write_only = app.api_token(&bob, &["messages:write"]).await;
    let write_only = write_only["token"].as_str().unwrap();
    let problem = expect_problem(app.get(&path, Some(write_only)).await, StatusCode::FORBIDDEN).await;
    assert_eq!(problem["code"], "insufficient_scope");
    let reader = app.api_token(&bob, &["messages:read"]).await;
    app.send(&alice, room_id, "for the bot").await;
    let page = answer(poll(&app, reader["token"].as_str().unwrap(), room_id, "after=0&wait=5")).await;
    assert_eq!(seqs(&page), [1]);
}

async fn a_user_holds_a_bounded_number_of_polls_and_one_message_answers_them_all(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app).await;
    let held: Vec<_> = (0..20).map(|_| poll(&app, &bob.token, room_id, "after=0&wait=30")).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(held.iter().all(|r| !r.is_finished()), "twenty polls are held");
    let path = format!("/api/v1/rooms/{room_id}/messages?after=0&wait=30");
    let problem = expect_problem(app.get(&path, Some(&bob.token)).await, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(problem["code"], "rate_limited", "the 21st is refused: {problem}");
    // Someone else is not affected.
    let alices = poll(&app, &alice.token, room_id, "after=0&wait=30");
    assert!(still_held(&alices).await);

    app.send(&alice, room_id, "wake up").await;
    for request in held.into_iter().chain([alices]) {
        assert_eq!(seqs(&answer(request).await), [1]);
    }
    // Answered polls free their places.
    let page = answer(poll(&app, &bob.token, room_id, "after=0&wait=30")).await;
    assert_eq!(seqs(&page), [1]);
}

/// Across nodes: a poll held on one node is answered by a message sent through the other.
mod postgres_cluster {
    use std::time::Duration;

    use reqwest::StatusCode;

    use super::{answer, poll, still_held, two_members};
    use crate::cluster::{Cluster, NodeOptions};
    use crate::helpers::{expect_status, seqs};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_a_poll_held_on_one_node_answers_a_message_sent_through_the_other() {
        let Some(mut cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (a, b) = (cluster.app(0), cluster.app(1));
        let (alice, bob, room_id) = two_members(a).await;
        let request = poll(b, &bob.token, room_id, "after=0&wait=30");
        assert!(still_held(&request).await);
        let started = std::time::Instant::now();
        a.send(&alice, room_id, "through A").await;
        let page = answer(request).await;
        assert_eq!(seqs(&page), [1]);
        assert!(started.elapsed() < Duration::from_secs(4), "woken by the event, not by the periodic re-read");

        // While Redis is down no wake-up crosses, but the poll still answers from the database.
        cluster.redis.kill();
        let (a, b) = (cluster.app(0), cluster.app(1));
        let request = poll(b, &bob.token, room_id, "after=1&wait=30");
        assert!(still_held(&request).await);
        expect_status(
            a.post_message(&alice.token, room_id, &serde_json::json!({"body": "no redis"})).await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(seqs(&answer(request).await), [2]);
    }
}
