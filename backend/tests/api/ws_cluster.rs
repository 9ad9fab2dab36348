//! Several `chat-server` processes sharing PostgreSQL and Redis (see `cluster.rs`): delivery,
//! presence, tickets and revocation across nodes; Redis killed and restarted mid-stream; SIGTERM.
//! PostgreSQL only, hence the `postgres` in every test's path.

mod postgres {
    use std::time::{Duration, Instant};

    use reqwest::StatusCode;
    use serde_json::{Value, json};

    use crate::cluster::{Cluster, NodeOptions};
    use crate::helpers::*;
    use crate::ws_client::{Connect, Event, WsClient};
    use crate::ws_delivery::{assert_exact_seqs, messages_until, seqs_of};
    use crate::ws_frames::QUIET;
    use crate::ws_presence::{assert_presence_changed, next_presence_of, online_ids, presence_of};

    /// Alice owns a public room that Bob has joined (through node 0).
    async fn two_members(app: &TestApp) -> (TestUser, TestUser, i64) {
        let alice = app.new_user().await;
        let bob = app.new_user().await;
        let room_id = app.room_id(&alice, "public").await;
        expect_status(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;
        (alice, bob, room_id)
    }

    fn is_message(f: &Value) -> bool {
        f["type"] == "message"
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_a_mute_and_a_removal_made_on_one_node_hold_at_once_on_the_other() {
        let Some(cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (a, b) = (cluster.app(0), cluster.app(1));
        let (alice, bob, room_id) = two_members(a).await;
        // Bob sends through B first: B remembers for a few seconds that he may send there.
        b.send(&bob, room_id, "first").await;
        let mut bob_on_b = b.ws(&bob.token).await;
        bob_on_b.subscribe(room_id, None).await;

        let member_path = format!("/api/v1/rooms/{room_id}/members/{}", bob.id);
        let mute = json!({"muted_until": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()});
        let resp = a.request(reqwest::Method::PATCH, &member_path, Some(&alice.token), Some(&mute)).await;
        expect_status(resp, StatusCode::OK).await;
        let updated = bob_on_b.expect("member_updated").await;
        assert!(updated["member"]["muted_until"].is_string(), "{updated}");
        let problem =
            expect_problem(b.post_message(&bob.token, room_id, &json!({"body": "x"})).await, StatusCode::FORBIDDEN)
                .await;
        assert_eq!(problem["code"], "muted", "the mute made on A holds on B at once: {problem}");

        expect_status(
            a.request(reqwest::Method::DELETE, &member_path, Some(&alice.token), None).await,
            StatusCode::NO_CONTENT,
        )
        .await;
        let f = bob_on_b.expect("unsubscribed").await;
        assert_eq!(f, json!({"type": "unsubscribed", "room_id": room_id, "reason": "removed"}));
    }

    /// CONTRACT-2 "Rooms": a role change, a room change, a ban and an account deletion made through node A
    /// reach the sockets on node B at once, and B enforces them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_a_role_a_room_change_a_ban_and_an_account_deletion_made_on_one_node_reach_the_other() {
        let Some(cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (a, b) = (cluster.app(0), cluster.app(1));
        let (alice, bob, room_id) = two_members(a).await;
        let (carol, dave) = (a.new_user().await, a.new_user().await);
        for user in [&carol, &dave] {
            expect_status(a.join_room(&user.token, room_id).await, StatusCode::OK).await;
        }
        let mut bob_on_b = b.ws(&bob.token).await;
        let mut carol_on_b = b.ws(&carol.token).await;
        let mut dave_on_b = b.ws(&dave.token).await;
        for ws in [&mut bob_on_b, &mut carol_on_b, &mut dave_on_b] {
            ws.subscribe(room_id, None).await;
        }

        // A role given on A: B's socket hears it, and B lets the new admin moderate.
        let bob_path = format!("/api/v1/rooms/{room_id}/members/{}", bob.id);
        let resp =
            a.request(reqwest::Method::PATCH, &bob_path, Some(&alice.token), Some(&json!({"role": "admin"}))).await;
        expect_status(resp, StatusCode::OK).await;
        let f = bob_on_b.expect("member_updated").await;
        assert_eq!((f["member"]["user"]["id"].as_i64(), f["member"]["role"].as_str()), (Some(bob.id), Some("admin")));
        let mute = json!({"muted_until": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()});
        let carol_path = format!("/api/v1/rooms/{room_id}/members/{}", carol.id);
        expect_status(
            b.request(reqwest::Method::PATCH, &carol_path, Some(&bob.token), Some(&mute)).await,
            StatusCode::OK,
        )
        .await;

        // A room renamed on A.
        let patch = json!({"name": "renamed on A"});
        let resp = a
            .request(reqwest::Method::PATCH, &format!("/api/v1/rooms/{room_id}"), Some(&alice.token), Some(&patch))
            .await;
        expect_status(resp, StatusCode::OK).await;
        assert_eq!(bob_on_b.expect("room_updated").await["room"]["name"], "renamed on A");

        // A ban made on A: carol's socket on B is unsubscribed and hears nothing more; B keeps her out.
        let banned =
            a.post(&format!("/api/v1/rooms/{room_id}/bans"), Some(&alice.token), &json!({"user_id": carol.id})).await;
        expect_status(banned, StatusCode::CREATED).await;
        let f = carol_on_b.expect("unsubscribed").await;
        assert_eq!(f, json!({"type": "unsubscribed", "room_id": room_id, "reason": "banned"}));
        let left = bob_on_b.expect("member_left").await;
        assert_eq!((left["user"]["id"].as_i64(), left["reason"].as_str()), (Some(carol.id), Some("banned")));
        a.send(&alice, room_id, "after the ban").await;
        carol_on_b.expect_silence(QUIET, "a message of a room she is banned from", is_message).await;
        let problem = expect_problem(b.join_room(&carol.token, room_id).await, StatusCode::FORBIDDEN).await;
        assert_eq!(problem["code"], "banned");

        // An account deleted on A: its socket on B closes (4001), the others on B see it leave.
        let body = json!({"password": dave.password});
        expect_status(
            a.request(reqwest::Method::DELETE, "/api/v1/me", Some(&dave.token), Some(&body)).await,
            StatusCode::NO_CONTENT,
        )
        .await;
        let (_, code) = dave_on_b.read_to_close(Duration::from_secs(5)).await;
        assert_eq!(code, Some(4001), "the deleted account's socket on B closes");
        loop {
            let f = bob_on_b.expect("member_left").await;
            if f["user"]["id"] == dave.id {
                assert_eq!(f["reason"], "left", "{f}");
                break;
            }
        }
        expect_status(b.get("/api/v1/me", Some(&dave.token)).await, StatusCode::UNAUTHORIZED).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_message_sent_on_one_node_is_delivered_once_on_the_other() {
        let Some(cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (a, b) = (cluster.app(0), cluster.app(1));
        let (alice, bob, room_id) = two_members(a).await;
        let mut on_a = a.ws(&alice.token).await;
        let mut on_b = b.ws(&bob.token).await;
        on_a.subscribe(room_id, None).await;
        on_b.subscribe(room_id, None).await;

        // REST on B.
        let m = b.send(&bob, room_id, "over REST on B").await;
        assert_eq!(on_a.expect("message").await["message"], m, "node A's socket gets B's message");
        assert_eq!(on_b.expect("message").await["message"], m);

        // WebSocket send on B, then on A.
        on_b.send(json!({"type": "send", "room_id": room_id, "body": "ws on B", "client_id": "b-1"})).await;
        let ack = on_b.expect("ack").await;
        assert_eq!(on_a.expect("message").await["message"], ack["message"]);
        on_a.send(json!({"type": "send", "room_id": room_id, "body": "ws on A", "client_id": "a-1"})).await;
        let ack = on_a.expect("ack").await;
        assert_eq!(ack["message"]["seq"], 3);
        let f = on_b.expect("message").await;
        assert_eq!(f["message"]["seq"], 2, "B's own message first: {f}");
        assert_eq!(on_b.expect("message").await["message"], ack["message"]);

        // Edits, deletes and typing cross too.
        let edited =
            expect_json(b.edit_message(&bob.token, room_id, 1, &json!({"body": "edited on B"})).await, StatusCode::OK)
                .await;
        expect_status(b.delete_message(&bob.token, room_id, 2).await, StatusCode::NO_CONTENT).await;
        for ws in [&mut on_a, &mut on_b] {
            assert_eq!(ws.expect("message_updated").await["message"], edited);
            assert_eq!(
                ws.expect("message_deleted").await,
                json!({"type": "message_deleted", "room_id": room_id, "seq": 2})
            );
        }
        on_b.send(json!({"type": "typing", "room_id": room_id})).await;
        assert_eq!(on_a.expect("typing").await["user"]["id"], bob.id);
        // A reaction made through A (CONTRACT-2 "Messages") shows on B.
        let path = format!("/api/v1/rooms/{room_id}/messages/3/reactions/%F0%9F%91%8D");
        expect_status(a.request(reqwest::Method::PUT, &path, Some(&alice.token), None).await, StatusCode::NO_CONTENT)
            .await;
        for ws in [&mut on_a, &mut on_b] {
            let f = ws.expect("reaction").await;
            assert_eq!(
                (f["seq"].as_i64(), f["emoji"].as_str(), f["added"].as_bool()),
                (Some(3), Some("👍"), Some(true))
            );
        }

        // A mention sent through A notifies Bob's socket on B (CONTRACT-2 "Notifications").
        let mention = a.send(&alice, room_id, &format!("@{} see this", bob.username)).await;
        assert_eq!(on_a.expect("message").await["message"], mention);
        // The message (room path) and the notification (user path) may come in either order.
        let (mut message, mut notification) = (None, None);
        while message.is_none() || notification.is_none() {
            let f = on_b.next_frame().await.expect("a frame");
            match f["type"].as_str() {
                Some("message") => message = Some(f["message"].clone()),
                Some("notification") => notification = Some(f["notification"]["message"].clone()),
                _ => {}
            }
        }
        assert_eq!((message, notification), (Some(mention.clone()), Some(mention)));

        // Once: nothing repeated on either node.
        for ws in [&mut on_a, &mut on_b] {
            ws.expect_silence(Duration::from_secs(1), "a repeated event", |f| {
                ["message", "message_updated", "message_deleted", "typing", "reaction", "notification"]
                    .contains(&f["type"].as_str().unwrap_or(""))
            })
            .await;
        }
    }

    /// The value of `ws_gaps_filled_total` on a node (0 before its first gap).
    async fn gaps_filled(app: &TestApp) -> u64 {
        let metrics = expect_status(app.get("/metrics", None).await, StatusCode::OK).await;
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("ws_gaps_filled_total "))
            .map_or(0, |value| value.trim().parse().expect("a counter"))
    }

    async fn post_many(app: &TestApp, user: &TestUser, room_id: i64, count: i64) {
        for i in 0..count {
            app.send(user, room_id, &format!("message {i} of user {}", user.id)).await;
        }
    }

    /// Both nodes post to one room at once, so each node hears its own messages at once and the
    /// other's a little later through Redis: out of seq order. Every socket, on either node, gets
    /// every message once and in order, and the node puts them back in order itself rather than
    /// having each socket read what looked missing from the database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_concurrent_sends_on_both_nodes_arrive_once_in_order() {
        const EACH: i64 = 60;
        let Some(cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (a, b) = (cluster.app(0), cluster.app(1));
        let (alice, bob, room_id) = two_members(a).await;
        let mut sockets = Vec::new();
        for (app, user) in [(a, &alice), (a, &bob), (b, &alice), (b, &bob)] {
            let mut ws = app.ws(&user.token).await;
            ws.subscribe(room_id, None).await;
            sockets.push(ws);
        }
        let gaps_before = gaps_filled(a).await + gaps_filled(b).await;

        tokio::join!(post_many(a, &alice, room_id, EACH), post_many(b, &bob, room_id, EACH));

        for (i, ws) in sockets.iter_mut().enumerate() {
            let got = messages_until(ws, room_id, 2 * EACH, Duration::from_secs(20)).await;
            assert_exact_seqs(&seqs_of(&got), 1, 2 * EACH, &format!("socket {i}"));
        }
        let gaps = gaps_filled(a).await + gaps_filled(b).await - gaps_before;
        // Without the node's reordering every socket fills gaps: 18 to 26 times in this test. A
        // margin for one Redis stall longer than the hold on a busy machine (a gap per socket).
        assert!(gaps <= sockets.len() as u64, "sockets filled {gaps} gaps from the database");
    }

    /// Bob posts through node B, which then trusts his membership for a few seconds, and leaves
    /// the room through node A: B refuses his next post straight away, not seconds later.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_leaving_through_one_node_stops_posting_through_the_other() {
        let Some(cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (a, b) = (cluster.app(0), cluster.app(1));
        let (_alice, bob, room_id) = two_members(a).await;
        b.send(&bob, room_id, "through B").await;

        expect_status(a.leave_room(&bob.token, room_id).await, StatusCode::NO_CONTENT).await;
        // The leave reaches B through Redis: a moment, far less than the 5 s B would trust it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let refused = b.post_message(&bob.token, room_id, &json!({"body": "after leaving"})).await;
        assert_eq!(expect_problem(refused, StatusCode::FORBIDDEN).await["code"], "not_a_member");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_presence_is_seen_on_both_nodes() {
        let Some(cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (a, b) = (cluster.app(0), cluster.app(1));
        let (alice, bob, room_id) = two_members(a).await;
        let mut alice_a = a.ws(&alice.token).await;
        let (_, _, presence) = alice_a.subscribe_with_presence(room_id, None).await;
        assert_eq!(online_ids(&presence), [alice.id], "{presence}");

        let mut bob_b = b.ws(&bob.token).await;
        let (_, _, presence) = bob_b.subscribe_with_presence(room_id, None).await;
        let mut both = vec![alice.id, bob.id];
        both.sort_unstable();
        assert_eq!(online_ids(&presence), both, "B lists alice, who is on A: {presence}");
        assert_presence_changed(&next_presence_of(&mut alice_a, &bob).await, room_id, &bob, true);

        // A second tab of bob's, on the other node: no change; closing either tab keeps him online.
        let mut bob_a = a.ws(&bob.token).await;
        bob_a.subscribe(room_id, None).await;
        alice_a.expect_silence(QUIET, "a change for bob's second tab", |f| presence_of(f, bob.id)).await;
        bob_b.close().await;
        alice_a.expect_silence(Duration::from_secs(1), "bob offline with a tab open", |f| presence_of(f, bob.id)).await;
        let mut alice_b = b.ws(&alice.token).await;
        let (_, _, presence) = alice_b.subscribe_with_presence(room_id, None).await;
        assert_eq!(online_ids(&presence), both, "B still lists bob (his tab is on A): {presence}");

        bob_a.close().await;
        assert_presence_changed(&next_presence_of(&mut alice_a, &bob).await, room_id, &bob, false);
        assert_presence_changed(&next_presence_of(&mut alice_b, &bob).await, room_id, &bob, false);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_ticket_from_one_node_is_accepted_by_the_other_once() {
        let Some(cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (a, b) = (cluster.app(0), cluster.app(1));
        let alice = a.new_user().await;
        let ticket = a.ticket(&alice.token).await;
        let Connect::Open(mut ws) = b.ws_connect(&b.ticket_url(&ticket), None, None).await else {
            panic!("node B refused node A's ticket");
        };
        let ready = ws.expect("ready").await;
        assert_eq!(ready["user"]["id"], alice.id, "{ready}");
        for (node, name) in [(a, "A"), (b, "B")] {
            match node.ws_connect(&node.ticket_url(&ticket), None, None).await {
                Connect::Refused(401, _) => {}
                Connect::Refused(status, body) => panic!("a spent ticket on {name}: {status} {body}, expected 401"),
                Connect::Open(_) => panic!("a spent ticket opened a second socket on node {name}"),
            }
        }
        // No secret reaches a log line: not the ticket (it travels in the URL), not the tokens.
        let logs: String = cluster.nodes.iter().map(|n| n.logs()).collect();
        for (secret, what) in [
            (ticket.as_str(), "the ticket"),
            (&alice.token, "the access token"),
            (&alice.refresh_token, "the refresh token"),
        ] {
            assert!(!logs.contains(secret), "{what} appears in a node's log");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_revoked_token_closes_its_sockets_on_every_node() {
        let Some(cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (a, b) = (cluster.app(0), cluster.app(1));
        let alice = a.new_user().await;
        let bot = a.api_token(&alice, &["messages:read"]).await;
        let token = bot["token"].as_str().unwrap();
        let mut on_a = a.ws(token).await;
        let mut on_b = b.ws(token).await;

        let revoked_at = Instant::now();
        expect_status(b.delete_token(&alice.token, id_of(&bot)).await, StatusCode::NO_CONTENT).await;
        for (ws, name) in [(&mut on_a, "A"), (&mut on_b, "B")] {
            let (_, code) = ws.read_to_close(Duration::from_secs(5)).await;
            assert_eq!(code, Some(4001), "the socket on node {name} closes with 4001");
        }
        assert!(revoked_at.elapsed() < Duration::from_secs(2), "at once: {:?}", revoked_at.elapsed());
    }

    /// With Redis dead, nothing crosses by pub/sub: the other node learns of a revoked token and of an
    /// ended session from the database, and closes their sockets (4001) and refuses the access token within
    /// 5 seconds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_revocations_reach_the_other_node_while_redis_is_down() {
        let Some(mut cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let alice = cluster.app(0).new_user().await;
        let bot = cluster.app(0).api_token(&alice, &["messages:read"]).await;
        let mut bot_on_b = cluster.app(1).ws(bot["token"].as_str().unwrap()).await;
        let mut alice_on_b = cluster.app(1).ws(&alice.token).await;
        expect_status(cluster.app(1).me(&alice.token).await, StatusCode::OK).await;

        cluster.redis.kill();
        let (a, b) = (cluster.app(0), cluster.app(1));
        let revoked_at = Instant::now();
        expect_status(a.delete_token(&alice.token, id_of(&bot)).await, StatusCode::NO_CONTENT).await;
        expect_status(a.logout(&alice.token, &alice.refresh_token).await, StatusCode::NO_CONTENT).await;
        for (ws, what) in [(&mut bot_on_b, "the revoked token's"), (&mut alice_on_b, "the ended session's")] {
            let (_, code) = ws.read_to_close(Duration::from_secs(6)).await;
            assert_eq!(code, Some(4001), "{what} socket on node B closes with 4001");
        }
        assert!(revoked_at.elapsed() < Duration::from_secs(6), "within 5 s: {:?}", revoked_at.elapsed());
        expect_problem(b.me(&alice.token).await, StatusCode::UNAUTHORIZED).await;
    }

    /// Issue 11: a removal and a leave made through node A while Redis is down, A dying before it could
    /// publish them, reach the sockets on node B when Redis is back (B's resync checks each subscription
    /// against the database): `unsubscribed` with the right reason, and nothing the room says afterwards.
    /// Before, they stayed subscribed and kept receiving the private room's messages.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_a_removal_and_a_leave_made_while_redis_is_down_end_the_subscriptions_when_it_is_back() {
        let Some(mut cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (alice, bob, carol, dave) = {
            let a = cluster.app(0);
            (a.new_user().await, a.new_user().await, a.new_user().await, a.new_user().await)
        };
        let room_id = cluster.app(0).room_id(&alice, "private").await;
        for user in [&bob, &carol, &dave] {
            expect_status(cluster.app(0).add_member(&alice.token, room_id, &user.username).await, StatusCode::CREATED)
                .await;
        }
        let mut sockets = Vec::new();
        for user in [&bob, &carol, &dave] {
            let mut ws = cluster.app(1).ws(&user.token).await;
            ws.subscribe(room_id, None).await;
            sockets.push(ws);
        }
        let [mut bob_on_b, mut carol_on_b, mut dave_on_b] = sockets.try_into().unwrap_or_else(|_| unreachable!());

        cluster.redis.kill();
        let a = cluster.app(0);
        let bob_path = format!("/api/v1/rooms/{room_id}/members/{}", bob.id);
        expect_status(
            a.request(reqwest::Method::DELETE, &bob_path, Some(&alice.token), None).await,
            StatusCode::NO_CONTENT,
        )
        .await;
        expect_status(a.leave_room(&carol.token, room_id).await, StatusCode::NO_CONTENT).await;
        // Node A dies before Redis is back: the events it had not published yet are gone with it.
        cluster.nodes.remove(0);
        cluster.redis.restart().await;

        for (ws, reason) in [(&mut bob_on_b, "removed"), (&mut carol_on_b, "left")] {
            let f = ws.expect("unsubscribed").await;
            assert_eq!(f, json!({"type": "unsubscribed", "room_id": room_id, "reason": reason}), "{}", cluster.logs());
        }
        cluster.app(0).send(&alice, room_id, "after the outage").await; // node B, now the only one
        let got = dave_on_b.expect("message").await;
        assert_eq!(got["message"]["body"], "after the outage", "a member still there keeps receiving");
        for ws in [&mut bob_on_b, &mut carol_on_b] {
            ws.expect_silence(QUIET * 4, "a message of a room they are no longer in", is_message).await;
        }
    }

    /// Reads `message` frames of `room_id` up to seq `last`, each with the moment it arrived.
    async fn timed_messages_until(ws: &mut WsClient, room_id: i64, last: i64, wait: Duration) -> Vec<(Value, Instant)> {
        let deadline = Instant::now() + wait;
        let mut got: Vec<(Value, Instant)> = Vec::new();
        while got.last().is_none_or(|(m, _)| m["seq"].as_i64() < Some(last)) {
            let left = deadline.saturating_duration_since(Instant::now());
            let seen: Vec<i64> = got.iter().filter_map(|(m, _)| m["seq"].as_i64()).collect();
            match ws.next_event_within(left).await {
                Some(Event::Frame(f)) if is_message(&f) && f["message"]["room_id"] == room_id => {
                    got.push((f["message"].clone(), Instant::now()));
                }
                Some(Event::Frame(_)) => {}
                Some(Event::Closed(code)) => {
                    panic!("the socket closed ({code:?}) before seq {last}; seqs seen: {seen:?}")
                }
                None => panic!("no seq {last} within {wait:?}; seqs seen: {seen:?}"),
            }
        }
        got
    }

    /// Redis killed (SIGKILL) under load and started again about 2 s later, with a socket on each
    /// node and REST sends going to both nodes in turn. REST answers 2xx throughout; a socket gets
    /// the messages sent through its own node promptly even while Redis is down (the node's hub is
    /// fed directly, and what came through the other node is read from the database as a gap);
    /// once Redis is back, cross-node delivery resumes, and each socket has had every message
    /// exactly once, in seq order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_redis_killed_and_restarted_mid_stream_loses_nothing() {
        const N: usize = 160;
        /// How late a message may reach a socket on the node it was sent through, Redis or not.
        const SAME_NODE_LAG: Duration = Duration::from_secs(2);
        let Some(mut cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (alice, bob, room_id) = two_members(cluster.app(0)).await;
        let carol = cluster.app(0).new_user().await;
        expect_status(cluster.app(0).join_room(&carol.token, room_id).await, StatusCode::OK).await;
        // A listener on each node.
        let mut on_a = cluster.app(0).ws(&alice.token).await;
        let mut on_b = cluster.app(1).ws(&carol.token).await;
        on_a.subscribe(room_id, None).await;
        on_b.subscribe(room_id, None).await;

        let Cluster { nodes, redis, .. } = &mut cluster;
        // (seq, the node it went through, when its 201 came); when Redis died and came back.
        let mut sent: Vec<(i64, usize, Instant)> = Vec::with_capacity(N);
        let (mut killed_at, mut restarted_at) = (None, None);
        let producer = async {
            for i in 1..=N {
                // Bob posts to both nodes in turn; Redis dies after 40 messages and is back 80 later
                // (about 2 s); the nodes keep serving REST meanwhile.
                let node = i % 2;
                let resp = nodes[node].app.post_message(&bob.token, room_id, &json!({"body": format!("m{i}")})).await;
                let m = expect_json(resp, StatusCode::CREATED).await;
                assert_eq!(m["seq"], i as i64);
                sent.push((i as i64, node, Instant::now()));
                if i == 40 {
                    redis.kill();
                    killed_at = Some(Instant::now());
                }
                if i == 120 {
                    redis.restart().await;
                    restarted_at = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        };
        let readers = async {
            let a = timed_messages_until(&mut on_a, room_id, N as i64, Duration::from_secs(25));
            let b = timed_messages_until(&mut on_b, room_id, N as i64, Duration::from_secs(25));
            tokio::join!(a, b)
        };
        let (_, (got_a, got_b)) = tokio::join!(producer, readers);
        let (killed_at, restarted_at) = (killed_at.unwrap(), restarted_at.unwrap());
        for (got, name) in [(&got_a, "the socket on node A"), (&got_b, "the socket on node B")] {
            let messages: Vec<Value> = got.iter().map(|(m, _)| m.clone()).collect();
            assert_exact_seqs(&seqs_of(&messages), 1, N as i64, name);
        }
        // Same-node delivery went on while Redis was down (and before, and after).
        let mut during = 0;
        for &(seq, node, acked_at) in &sent {
            let got = if node == 0 { &got_a } else { &got_b };
            let arrived = got[(seq - 1) as usize].1;
            let lag = arrived.saturating_duration_since(acked_at);
            assert!(
                lag < SAME_NODE_LAG,
                "seq {seq}, sent through node {node}, reached the socket on that node {lag:?} after its 201 \
                 (Redis down from {:?} to {:?} after the first send)",
                killed_at - sent[0].2,
                restarted_at - sent[0].2
            );
            if acked_at > killed_at && arrived < restarted_at {
                during += 1;
            }
        }
        assert!(during >= 40, "only {during} messages were delivered on their own node while Redis was down");
        for ws in [&mut on_a, &mut on_b] {
            ws.expect_silence(Duration::from_secs(1), "a repeated message", is_message).await;
        }
        // Live traffic works across nodes after the outage, both ways.
        let m = cluster.app(1).send(&bob, room_id, "after, through B").await;
        assert_eq!(on_a.expect("message").await["message"], m);
        assert_eq!(on_b.expect("message").await["message"], m);
        let m = cluster.app(0).send(&bob, room_id, "after, through A").await;
        assert_eq!(on_b.expect("message").await["message"], m);
        assert_eq!(on_a.expect("message").await["message"], m);
    }

    /// A client on a draining node: reads until the close, then reconnects to `other` with `since`.
    /// Returns every message seen, the close code and when it came.
    async fn ride_out_the_drain(
        mut ws: WsClient,
        other: &TestApp,
        token: &str,
        room_id: i64,
        last: i64,
    ) -> (Vec<Value>, Option<u16>, Instant) {
        let mut got = Vec::new();
        let (code, closed_at) = loop {
            match ws.next_event_within(Duration::from_secs(15)).await {
                Some(Event::Frame(f)) if f["type"] == "message" => got.push(f["message"].clone()),
                Some(Event::Frame(_)) => {}
                Some(Event::Closed(code)) => break (code, Instant::now()),
                None => panic!("the socket on the draining node was not closed within 15 s"),
            }
        };
        let since = got.last().map_or(0, |m: &Value| m["seq"].as_i64().unwrap());
        let mut ws = other.ws(token).await;
        let (replayed, _) = ws.subscribe(room_id, Some(since)).await;
        got.extend(replayed.into_iter().map(|f| f["message"].clone()));
        if got.last().is_none_or(|m| m["seq"].as_i64() < Some(last)) {
            got.extend(messages_until(&mut ws, room_id, last, Duration::from_secs(15)).await);
        }
        ws.expect_silence(QUIET, "a repeated message", is_message).await;
        (got, code, closed_at)
    }

    /// The process exits 0 after SIGTERM with sends in flight, every time: the writer commits what is
    /// queued and its thread ends before the process does (a node once aborted at exit, "double free or
    /// corruption", when the writer's last handle on the PostgreSQL pool was dropped while it exited).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_sigterm_with_sends_in_flight_exits_0_every_time() {
        for round in 0..3 {
            let Some(mut cluster) =
                Cluster::start(1, NodeOptions { drain_seconds: Some(1), ..NodeOptions::default() }).await
            else {
                return;
            };
            let (alice, _bob, room_id) = two_members(cluster.app(0)).await;
            // Plain requests: once the node is gone they fail, which the helpers would take for a bug.
            let url = format!("{}/api/v1/rooms/{room_id}/messages", cluster.app(0).address);
            let sender = tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut acknowledged = 0;
                for i in 0..200 {
                    let sent = client.post(&url).bearer_auth(&alice.token).json(&json!({ "body": format!("m{i}") }));
                    if sent.send().await.is_ok_and(|r| r.status() == StatusCode::CREATED) {
                        acknowledged += 1;
                    }
                }
                acknowledged
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            cluster.nodes[0].sigterm();
            let status = cluster.nodes[0].wait_exit(Duration::from_secs(20)).await;
            let logs = cluster.nodes[0].logs();
            let status = status.unwrap_or_else(|| panic!("round {round}: still running 20 s after SIGTERM:\n{logs}"));
            assert!(status.success(), "round {round}: exit 0 after SIGTERM, got {status}; its log:\n{logs}");
            assert!(sender.await.unwrap() > 0, "round {round}: sends were acknowledged before the stop");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_sigterm_closes_with_1012_and_clients_reconnect_without_loss() {
        const N: i64 = 100;
        const DRAIN: u64 = 2;
        let Some(mut cluster) =
            Cluster::start(2, NodeOptions { drain_seconds: Some(DRAIN), ..NodeOptions::default() }).await
        else {
            return;
        };
        let (alice, bob, room_id) = two_members(cluster.app(0)).await;
        let carol = cluster.app(0).new_user().await;
        expect_status(cluster.app(0).join_room(&carol.token, room_id).await, StatusCode::OK).await;
        let (a, b) = (cluster.app(0), cluster.app(1));
        let mut clients = Vec::new();
        for user in [&alice, &alice, &carol] {
            let mut ws = a.ws(&user.token).await;
            ws.subscribe(room_id, None).await;
            clients.push((ws, user.token.clone()));
        }

        let node_a = &cluster.nodes[0];
        let mut sigterm_at = None;
        let producer = async {
            for i in 1..=N {
                b.send(&bob, room_id, &format!("m{i}")).await;
                if i == 20 {
                    node_a.sigterm();
                    sigterm_at = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        };
        let riders = futures_util::future::join_all(
            clients.into_iter().map(|(ws, token)| async move { ride_out_the_drain(ws, b, &token, room_id, N).await }),
        );
        let ((), outcomes) = tokio::join!(producer, riders);
        let sigterm_at = sigterm_at.expect("SIGTERM was sent");
        for (i, (got, code, closed_at)) in outcomes.iter().enumerate() {
            assert_eq!(*code, Some(1012), "client {i} is closed with 1012 (server restarting)");
            let after = closed_at.saturating_duration_since(sigterm_at);
            assert!(
                after <= Duration::from_secs(DRAIN) + Duration::from_millis(1500),
                "client {i} closed {after:?} after SIGTERM, past the {DRAIN} s drain window"
            );
            assert_exact_seqs(&seqs_of(got), 1, N, &format!("client {i}, across the reconnect"));
        }

        let status = cluster.nodes[0].wait_exit(Duration::from_secs(15)).await;
        let logs = cluster.nodes[0].logs();
        let status = status.unwrap_or_else(|| panic!("node A still runs 15 s after SIGTERM; its log:\n{logs}"));
        assert!(status.success(), "node A exits 0 after SIGTERM, got {status}; its log:\n{logs}");
        assert!(
            sigterm_at.elapsed() < Duration::from_secs(DRAIN + 12),
            "node A took {:?} to exit after SIGTERM",
            sigterm_at.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_sigterm_stops_accepting_sockets() {
        const DRAIN: u64 = 3;
        const BEFORE: usize = 6;
        let Some(cluster) =
            Cluster::start(1, NodeOptions { drain_seconds: Some(DRAIN), ..NodeOptions::default() }).await
        else {
            return;
        };
        let a = cluster.app(0);
        let alice = a.new_user().await;
        // Sockets open before SIGTERM; the first one closed shows the drain has begun.
        let (tx, mut closes) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..BEFORE {
            let mut ws = a.ws(&alice.token).await;
            let tx = tx.clone();
            tokio::spawn(async move {
                let (_, code) = ws.read_to_close(Duration::from_secs(DRAIN + 5)).await;
                let _ = tx.send(code);
            });
        }
        cluster.nodes[0].sigterm();
        let first = tokio::time::timeout(Duration::from_secs(DRAIN + 2), closes.recv()).await;
        assert_eq!(first.ok().flatten(), Some(Some(1012)), "the drain closes open sockets with 1012");

        // Draining now: a socket asked for is refused, or else closed with 1012 too.
        let asked_at = Instant::now();
        match a.ws_try_connect(&a.ws_url(""), Some(&alice.token), None).await {
            Err(e) => eprintln!("the connection during the drain failed: {e}"),
            Ok(Connect::Refused(status, body)) => {
                eprintln!("the upgrade during the drain was refused: {status} {body}")
            }
            Ok(Connect::Open(mut late)) => {
                let wait = Duration::from_secs(DRAIN + 5);
                let code = loop {
                    match late.next_event_within(wait).await {
                        Some(Event::Frame(_)) => {}
                        Some(Event::Closed(code)) => break code,
                        None => panic!(
                            "a socket asked for during the drain (after the first 1012) was accepted and is still \
                             open {wait:?} later (DRAIN_SECONDS={DRAIN}): the node keeps accepting sockets while \
                             draining and never closes them"
                        ),
                    }
                };
                assert_eq!(
                    code,
                    Some(1012),
                    "a socket accepted during the drain is closed with 1012 (after {:?})",
                    asked_at.elapsed()
                );
            }
        }
        for _ in 1..BEFORE {
            let code = tokio::time::timeout(Duration::from_secs(DRAIN + 5), closes.recv()).await;
            assert_eq!(code.ok().flatten(), Some(Some(1012)), "every socket open at SIGTERM is closed with 1012");
        }
    }
}
