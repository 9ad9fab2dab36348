//! Server-sent events (CONTRACT-2 "Without a WebSocket"): `GET /rooms/{id}/events` streams the room as a
//! socket subscribed to it would, `id:` the seq of each message; `Last-Event-ID` or `since` resumes without
//! loss; the same credentials, scopes, visibility and connection limit as the socket; across nodes.
//! (A real `EventSource` through a server restart: `e2e/sse.test.mjs`.)

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, expect_problem, expect_status};

db_tests!(
    a_stream_carries_the_room_as_a_socket_would,
    last_event_id_or_since_resume_without_loss,
    streams_refuse_bad_credentials_outsiders_and_bad_resume_points,
    a_removed_members_stream_says_so_and_ends,
);

db_tests_configured!(two_connections_per_user => streams_count_against_the_users_connections);

fn two_connections_per_user(config: &mut backend::config::Config) {
    config.max_sockets_per_user = 2;
}

/// One event as parsed from the stream.
#[derive(Debug)]
pub struct SseEvent {
    pub kind: String,
    pub id: Option<String>,
    pub data: Value,
}

/// A client of one event stream, parsing as an `EventSource` does (comment lines skipped).
pub struct SseStream {
    response: reqwest::Response,
    buffer: String,
}

impl SseStream {
    /// Opens `GET /rooms/{room_id}/events?{query}`; `None` for the response when the status is not 200.
    pub async fn open(
        app: &TestApp,
        token: Option<&str>,
        room_id: i64,
        query: &str,
        last_event_id: Option<&str>,
    ) -> Result<SseStream, reqwest::Response> {
        let mut request = app.client.get(app.url(&format!("/api/v1/rooms/{room_id}/events?{query}")));
        request = request.header("accept", "text/event-stream");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("the stream request gets an answer");
        if response.status() != StatusCode::OK {
            return Err(response);
        }
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        Ok(SseStream { response, buffer: String::new() })
    }

    pub async fn opened(app: &TestApp, user: &TestUser, room_id: i64, last_event_id: Option<&str>) -> SseStream {
        match SseStream::open(app, Some(&user.token), room_id, "", last_event_id).await {
            Ok(stream) => stream,
            Err(response) => panic!("the stream opens: {} {}", response.status(), response.text().await.unwrap()),
        }
    }

    /// The next event; `None` when the server ended the stream. Panics after 10 s of silence.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut kind, mut id, mut data) = (String::from("message"), None, None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        kind = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).expect("data is JSON"));
                    }
                }
                match data {
                    Some(data) => return Some(SseEvent { kind, id, data }),
                    None => continue, // a comment (the keep-alive)
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
                None => return None,
            }
        }
    }

    /// The next event of `kind`, skipping `ready`, presence and typing (which come as they come).
    pub async fn expect(&mut self, kind: &str) -> SseEvent {
        loop {
            let event = self.next().await.unwrap_or_else(|| panic!("the stream ended before a {kind} event"));
            if event.kind == kind {
                return event;
            }
            assert!(["ready", "presence", "typing"].contains(&event.kind.as_str()), "expected {kind}, got {event:?}");
        }
    }

    /// The seqs of the next `n` message events, checking each event's `id:` is its seq.
    pub async fn messages(&mut self, n: usize) -> Vec<i64> {
        let mut seqs = Vec::new();
        for _ in 0..n {
            let event = self.expect("message").await;
            let seq = event.data["message"]["seq"].as_i64().unwrap();
            assert_eq!(event.id.as_deref(), Some(seq.to_string().as_str()), "id: is the seq");
            seqs.push(seq);
        }
        seqs
    }
}

/// A room of Alice's that Bob has joined.
async fn two_members(app: &TestApp, visibility: &str) -> (TestUser, TestUser, i64) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&alice, visibility).await;
    expect_status(app.add_member(&alice.token, room_id, &bob.username).await, StatusCode::CREATED).await;
    (alice, bob, room_id)
}

async fn a_stream_carries_the_room_as_a_socket_would(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app, "private").await;
    let mut stream = SseStream::opened(&app, &bob, room_id, None).await;
    assert_eq!(stream.expect("ready").await.data["user"]["id"], bob.id);
    let subscribed = stream.expect("subscribed").await;
    assert_eq!(subscribed.data, json!({"type": "subscribed", "room_id": room_id, "last_seq": 0, "truncated": false}));
    assert_eq!(subscribed.id, None);

    app.send(&alice, room_id, "one").await;
    app.send(&alice, room_id, "two").await;
    assert_eq!(stream.messages(2).await, [1, 2]);
    let edit = app.edit_message(&alice.token, room_id, 2, &json!({"body": "two, edited"})).await;
    expect_status(edit, StatusCode::OK).await;
    let updated = stream.expect("message_updated").await;
    assert_eq!(updated.data["message"]["body"], "two, edited");
    expect_status(app.delete_message(&alice.token, room_id, 1).await, StatusCode::NO_CONTENT).await;
    assert_eq!(
        stream.expect("message_deleted").await.data,
        json!({"type": "message_deleted", "room_id": room_id, "seq": 1})
    );
}

async fn last_event_id_or_since_resume_without_loss(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app, "public").await;
    for i in 1..=3 {
        app.send(&alice, room_id, &format!("m{i}")).await;
    }
    let mut stream = SseStream::opened(&app, &bob, room_id, Some("1")).await;
    assert_eq!(stream.messages(2).await, [2, 3], "replayed after Last-Event-ID");
    assert_eq!(stream.expect("subscribed").await.data["last_seq"], 3);
    drop(stream);

    // Missed while away, then resumed from the last id seen; `since` does the same for clients that
    // cannot set the header.
    app.send(&alice, room_id, "m4").await;
    app.send(&alice, room_id, "m5").await;
    let mut resumed = SseStream::opened(&app, &bob, room_id, Some("3")).await;
    assert_eq!(resumed.messages(2).await, [4, 5]);
    assert_eq!(resumed.expect("subscribed").await.data["last_seq"], 5);
    app.send(&alice, room_id, "m6").await;
    assert_eq!(resumed.messages(1).await, [6], "and live after the replay");
    let by_query = SseStream::open(&app, Some(&bob.token), room_id, "since=5", None).await;
    assert_eq!(by_query.ok().unwrap().messages(1).await, [6]);
    // The header wins over the query.
    let both = SseStream::open(&app, Some(&bob.token), room_id, "since=0", Some("5")).await;
    assert_eq!(both.ok().unwrap().messages(1).await, [6]);
}

async fn streams_refuse_bad_credentials_outsiders_and_bad_resume_points(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app, "private").await;
    let refused = |resp: Result<SseStream, reqwest::Response>| match resp {
        Ok(_) => panic!("the stream should be refused"),
        Err(response) => response,
    };
    let problem =
        expect_problem(refused(SseStream::open(&app, None, room_id, "", None).await), StatusCode::UNAUTHORIZED).await;
    assert!(problem["code"].is_string());
    expect_problem(refused(SseStream::open(&app, Some("forged"), room_id, "", None).await), StatusCode::UNAUTHORIZED)
        .await;
    // Someone outside a private room learns nothing of it.
    let outsider = app.new_user().await;
    let problem = expect_problem(
        refused(SseStream::open(&app, Some(&outsider.token), room_id, "", None).await),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(problem["code"], "room_not_found");
    expect_problem(refused(SseStream::open(&app, Some(&bob.token), 987_654, "", None).await), StatusCode::NOT_FOUND)
        .await;
    // A resume point that is not a seq.
    for bad in ["abc", "1.5", ""] {
        let resp = refused(SseStream::open(&app, Some(&bob.token), room_id, "", Some(bad)).await);
        assert_eq!(expect_problem(resp, StatusCode::BAD_REQUEST).await["code"], "invalid_query", "{bad:?}");
    }
    let resp = refused(SseStream::open(&app, Some(&bob.token), room_id, "since=x", None).await);
    expect_problem(resp, StatusCode::BAD_REQUEST).await;
    // API tokens: messages:read is needed.
    let writer = app.api_token(&bob, &["messages:write"]).await;
    let resp = refused(SseStream::open(&app, writer["token"].as_str(), room_id, "", None).await);
    assert_eq!(expect_problem(resp, StatusCode::FORBIDDEN).await["code"], "insufficient_scope");
    let reader = app.api_token(&bob, &["messages:read"]).await;
    let mut stream = SseStream::open(&app, reader["token"].as_str(), room_id, "", None).await.ok().unwrap();
    stream.expect("subscribed").await;
    // A ticket (what a browser's EventSource uses) works once.
    let ticket = app.ticket(&alice.token).await;
    let query = format!("ticket={}", crate::helpers::percent_encode(&ticket));
    let mut by_ticket = SseStream::open(&app, None, room_id, &query, None).await.ok().unwrap();
    assert_eq!(by_ticket.expect("ready").await.data["user"]["id"], alice.id);
    let again = refused(SseStream::open(&app, None, room_id, &query, None).await);
    assert_eq!(expect_problem(again, StatusCode::UNAUTHORIZED).await["code"], "invalid_ticket");
}

async fn a_removed_members_stream_says_so_and_ends(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app, "private").await;
    let mut stream = SseStream::opened(&app, &bob, room_id, None).await;
    stream.expect("subscribed").await;
    let path = format!("/api/v1/rooms/{room_id}/members/{}", bob.id);
    expect_status(app.request(Method::DELETE, &path, Some(&alice.token), None).await, StatusCode::NO_CONTENT).await;
    let event = stream.expect("unsubscribed").await;
    assert_eq!(event.data, json!({"type": "unsubscribed", "room_id": room_id, "reason": "removed"}));
    app.send(&alice, room_id, "after bob left").await;
    assert!(stream.next().await.is_none(), "the stream ends: nothing of the room reaches him any more");
    // Reconnecting (as an EventSource would) is refused with a status, so it stops trying.
    let again = SseStream::open(&app, Some(&bob.token), room_id, "", Some("0")).await;
    assert_eq!(expect_problem(again.err().unwrap(), StatusCode::NOT_FOUND).await["code"], "room_not_found");
}

async fn streams_count_against_the_users_connections(app: TestApp) {
    let (alice, bob, room_id) = two_members(&app, "public").await;
    let mut socket = app.ws(&bob.token).await;
    socket.subscribe(room_id, None).await;
    let mut stream = SseStream::opened(&app, &bob, room_id, None).await;
    stream.expect("subscribed").await;
    let third = SseStream::open(&app, Some(&bob.token), room_id, "", None).await;
    assert_eq!(expect_problem(third.err().unwrap(), StatusCode::TOO_MANY_REQUESTS).await["code"], "rate_limited");
    // A closed stream frees its place, noticed when writing to it fails (on the room's next messages, or
    // the 20 s keep-alive at the latest).
    drop(stream);
    let mut reopened = None;
    for i in 0..50 {
        app.send(&alice, room_id, &format!("activity {i}")).await;
        if let Ok(stream) = SseStream::open(&app, Some(&bob.token), room_id, "", None).await {
            reopened = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reopened.expect("the place is free again").expect("subscribed").await;
}

/// Across nodes: a stream on one node carries what is sent through the other.
mod postgres_cluster {
    use super::SseStream;
    use crate::cluster::{Cluster, NodeOptions};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_a_stream_on_one_node_carries_messages_sent_through_the_other() {
        let Some(cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (a, b) = (cluster.app(0), cluster.app(1));
        let (alice, bob, room_id) = super::two_members(a, "private").await;
        let mut on_b = SseStream::opened(b, &bob, room_id, None).await;
        on_b.expect("subscribed").await;
        for i in 1..=5 {
            a.send(&alice, room_id, &format!("through A {i}")).await;
        }
        assert_eq!(on_b.messages(5).await, [1, 2, 3, 4, 5]);
    }
}
