//! Conversations (CONTRACT-2 "Messages"): replies, mentions and reactions, over REST and the socket,
//! with their rules, limits and abuse cases, and reactions missed while away delivered on resume.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, expect_json, expect_problem, expect_status, items};
use crate::ws_frames::QUIET;

db_tests!(
    a_reply_names_the_message_it_answers_as_it_now_is,
    a_reply_to_a_message_of_another_room_is_refused,
    mentions_name_members_and_at_room_only_from_moderators,
    reactions_are_idempotent_and_reach_every_subscriber_once,
    reactions_have_limits_and_permissions,
    a_resuming_client_learns_of_the_reactions_it_missed,
);

fn reaction_path(room_id: i64, seq: i64, emoji: &str) -> String {
    let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
    format!("/api/v1/rooms/{room_id}/messages/{seq}/reactions/{encoded}")
}

async fn react(app: &TestApp, token: &str, room_id: i64, seq: i64, emoji: &str, add: bool) -> reqwest::Response {
    let method = if add { Method::PUT } else { Method::DELETE };
    app.request(method, &reaction_path(room_id, seq, emoji), Some(token), None).await
}

async fn message(app: &TestApp, user: &TestUser, room_id: i64, seq: i64) -> Value {
    let page = app.history_page(&user.token, room_id, &format!("after={}&limit=1", seq - 1)).await;
    items(&page)[0].clone()
}

/// Alice owns a public room that Bob has joined.
async fn pair(app: &TestApp) -> (TestUser, TestUser, i64) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;
    (alice, bob, room_id)
}

async fn a_reply_names_the_message_it_answers_as_it_now_is(app: TestApp) {
    let (alice, bob, room_id) = pair(&app).await;
    let original = app.send(&alice, room_id, &"long question ".repeat(30)).await;
    let reply = expect_json(
        app.post_message(&bob.token, room_id, &json!({"body": "an answer", "reply_to": 1})).await,
        StatusCode::CREATED,
    )
    .await;
    let quoted = &reply["reply_to"];
    assert_eq!((quoted["seq"].as_i64(), quoted["author"]["id"].as_i64()), (Some(1), Some(alice.id)), "{reply}");
    let excerpt = quoted["excerpt"].as_str().unwrap();
    assert_eq!(excerpt.chars().count(), 200);
    assert!(original["body"].as_str().unwrap().starts_with(excerpt));
    assert_eq!(original["reply_to"], Value::Null);

    // Over the socket too: the ack and the subscribers' copy carry it.
    let mut alice_ws = app.ws(&alice.token).await;
    alice_ws.subscribe(room_id, None).await;
    let mut bob_ws = app.ws(&bob.token).await;
    bob_ws.send(json!({"type": "send", "room_id": room_id, "body": "again", "client_id": "r-1", "reply_to": 2})).await;
    let ack = bob_ws.expect("ack").await;
    assert_eq!(ack["message"]["reply_to"]["seq"], 2, "{ack}");
    assert_eq!(alice_ws.expect("message").await["message"], ack["message"]);

    // The excerpt follows the original: its edit, then its deletion.
    expect_status(app.edit_message(&alice.token, room_id, 1, &json!({"body": "short now"})).await, StatusCode::OK)
        .await;
    assert_eq!(message(&app, &bob, room_id, 2).await["reply_to"]["excerpt"], "short now");
    expect_status(app.delete_message(&alice.token, room_id, 1).await, StatusCode::NO_CONTENT).await;
    let after = message(&app, &bob, room_id, 2).await;
    assert_eq!((after["reply_to"]["seq"].as_i64(), after["reply_to"]["excerpt"].as_str()), (Some(1), Some("")));
}

async fn a_reply_to_a_message_of_another_room_is_refused(app: TestApp) {
    let (alice, bob, room_id) = pair(&app).await;
    let elsewhere = app.room_id(&alice, "public").await;
    app.send(&alice, elsewhere, "not here").await;
    for reply_to in [json!(1), json!(99), json!(-1)] {
        let resp = app.post_message(&bob.token, room_id, &json!({"body": "x", "reply_to": reply_to})).await;
        let problem = expect_problem(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["field"], "reply_to", "{problem}");
    }
    let resp = app.post_message(&bob.token, room_id, &json!({"body": "x", "reply_to": "one"})).await;
    expect_problem(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    // Refused over the socket too, with the client_id, and nothing stored.
    let mut ws = app.ws(&bob.token).await;
    ws.send(json!({"type": "send", "room_id": room_id, "body": "x", "client_id": "bad", "reply_to": 7})).await;
    let error = ws.expect("error").await;
    assert_eq!((error["code"].as_str(), error["client_id"].as_str()), (Some("validation_failed"), Some("bad")));
    let page = app.history_page(&bob.token, room_id, "").await;
    assert!(items(&page).is_empty(), "{page}");
}

async fn mentions_name_members_and_at_room_only_from_moderators(app: TestApp) {
    let (alice, bob, room_id) = pair(&app).await;
    let carol = app.new_user().await;
    expect_status(app.join_room(&carol.token, room_id).await, StatusCode::OK).await;
    let outsider = app.new_user().await;
    let ids = |m: &Value| m["mentions"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect::<Vec<_>>();

    let body = format!(
        "hi @{} and @{}. Not {}@example.org, not @{} (not a member), not @nobody_here",
        bob.username.to_uppercase(),
        carol.username,
        bob.username,
        outsider.username
    );
    let m = app.send(&alice, room_id, &body).await;
    let mut expected = vec![bob.id, carol.id];
    expected.sort_unstable();
    assert_eq!(ids(&m), expected, "{m}");
    assert_eq!(ids(&app.send(&alice, room_id, &format!("@{} me", alice.username)).await), Vec::<i64>::new());

    // @room: everyone from the owner, text from a plain member.
    assert_eq!(ids(&app.send(&bob, room_id, "@room look").await), Vec::<i64>::new());
    let everyone = app.send(&alice, room_id, "@room look").await;
    assert_eq!(ids(&everyone), {
        let mut v = vec![bob.id, carol.id];
        v.sort_unstable();
        v
    });

    // An edit recomputes them.
    let seq = m["seq"].as_i64().unwrap();
    let edited = expect_json(
        app.edit_message(&alice.token, room_id, seq, &json!({"body": format!("only @{}", carol.username)})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&edited), [carol.id]);
    assert_eq!(ids(&message(&app, &alice, room_id, seq).await), [carol.id]);
}

async fn reactions_are_idempotent_and_reach_every_subscriber_once(app: TestApp) {
    let (alice, bob, room_id) = pair(&app).await;
    app.send(&alice, room_id, "ship it?").await;
    let mut alice_ws = app.ws(&alice.token).await;
    alice_ws.subscribe(room_id, None).await;

    for _ in 0..2 {
        expect_status(react(&app, &bob.token, room_id, 1, "👍", true).await, StatusCode::NO_CONTENT).await;
    }
    let f = alice_ws.expect("reaction").await;
    assert_eq!(
        (f["room_id"].as_i64(), f["seq"].as_i64(), f["emoji"].as_str(), f["user"]["id"].as_i64(), f["added"].as_bool()),
        (Some(room_id), Some(1), Some("👍"), Some(bob.id), Some(true))
    );
    alice_ws.expect_silence(QUIET, "a second reaction frame for the same reaction", |f| f["type"] == "reaction").await;

    expect_status(react(&app, &alice.token, room_id, 1, "🎉", true).await, StatusCode::NO_CONTENT).await;
    expect_status(react(&app, &alice.token, room_id, 1, "👍", true).await, StatusCode::NO_CONTENT).await;
    let m = message(&app, &alice, room_id, 1).await;
    assert_eq!(
        m["reactions"],
        json!([
            {"emoji": "👍", "count": 2, "user_ids": [bob.id, alice.id]},
            {"emoji": "🎉", "count": 1, "user_ids": [alice.id]},
        ]),
        "ordered by first use"
    );

    for _ in 0..2 {
        expect_status(react(&app, &bob.token, room_id, 1, "👍", false).await, StatusCode::NO_CONTENT).await;
    }
    // Ordered by the first use among those left: Alice's 🎉 came before her 👍.
    let m = message(&app, &alice, room_id, 1).await;
    assert_eq!(
        m["reactions"],
        json!([
            {"emoji": "🎉", "count": 1, "user_ids": [alice.id]},
            {"emoji": "👍", "count": 1, "user_ids": [alice.id]},
        ])
    );
    // The room list's last message carries them too.
    let room = expect_json(app.get(&format!("/api/v1/rooms/{room_id}"), Some(&bob.token)).await, StatusCode::OK).await;
    assert_eq!(room["last_message"]["reactions"], m["reactions"]);
}

async fn reactions_have_limits_and_permissions(app: TestApp) {
    let (alice, bob, room_id) = pair(&app).await;
    app.send(&alice, room_id, "react to me").await;
    let stranger = app.new_user().await;
    let problem =
        expect_problem(react(&app, &stranger.token, room_id, 1, "👍", true).await, StatusCode::FORBIDDEN).await;
    assert_eq!(problem["code"], "not_a_member");
    let private = app.room_id(&alice, "private").await;
    app.send(&alice, private, "secret").await;
    expect_problem(react(&app, &bob.token, private, 1, "👍", true).await, StatusCode::NOT_FOUND).await;
    expect_problem(react(&app, &bob.token, room_id, 9, "👍", true).await, StatusCode::NOT_FOUND).await;

    let reader = app.api_token(&bob, &["messages:read"]).await;
    let problem = expect_problem(
        react(&app, reader["token"].as_str().unwrap(), room_id, 1, "👍", true).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(problem["code"], "insufficient_scope");

    for bad in ["a b", "x\u{0}", "\t", &"😀".repeat(9)] {
        let problem =
            expect_problem(react(&app, &bob.token, room_id, 1, bad, true).await, StatusCode::UNPROCESSABLE_ENTITY)
                .await;
        assert_eq!(problem["errors"][0]["field"], "emoji", "{bad:?}: {problem}");
    }

    // At most 20 different emoji; one already there can still be added by someone else.
    for i in 0..20 {
        expect_status(react(&app, &alice.token, room_id, 1, &format!("e{i}"), true).await, StatusCode::NO_CONTENT)
            .await;
    }
    let problem =
        expect_problem(react(&app, &bob.token, room_id, 1, "e20", true).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["code"], "too_many_reactions");
    expect_status(react(&app, &bob.token, room_id, 1, "e3", true).await, StatusCode::NO_CONTENT).await;
    assert_eq!(message(&app, &bob, room_id, 1).await["reactions"].as_array().unwrap().len(), 20);

    // A deleted message takes none, and loses those it had.
    expect_status(app.delete_message(&alice.token, room_id, 1).await, StatusCode::NO_CONTENT).await;
    let problem = expect_problem(react(&app, &bob.token, room_id, 1, "👍", true).await, StatusCode::CONFLICT).await;
    assert_eq!(problem["code"], "message_deleted");
    assert_eq!(message(&app, &bob, room_id, 1).await["reactions"], json!([]));
}

async fn a_resuming_client_learns_of_the_reactions_it_missed(app: TestApp) {
    let (alice, bob, room_id) = pair(&app).await;
    app.send(&alice, room_id, "one").await;
    app.send(&alice, room_id, "two").await;
    // Bob holds up to 2 and is away while Alice reacts to 1.
    expect_status(react(&app, &alice.token, room_id, 1, "👀", true).await, StatusCode::NO_CONTENT).await;
    let mut ws = app.ws(&bob.token).await;
    let (frames, _) = ws.resume(room_id, 2).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "message_updated");
    assert_eq!(frames[0]["message"]["reactions"], json!([{"emoji": "👀", "count": 1, "user_ids": [alice.id]}]));
}
