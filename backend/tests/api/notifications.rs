//! Notifications (CONTRACT-2 "Notifications"): who gets one and why, `mention_count`, reading them (by
//! id and with the room), the `notification` frame on every socket of the user, and the abuse cases.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, expect_json, expect_problem, expect_status, items};
use crate::ws_frames::QUIET;

db_tests!(
    mentions_replies_and_direct_messages_notify_the_right_people,
    reading_the_room_or_by_id_reads_them,
    every_socket_of_the_user_hears_of_a_notification_and_it_survives_a_reconnect,
    notifications_hold_against_abuse,
);

async fn notifications(app: &TestApp, user: &TestUser, query: &str) -> Value {
    expect_json(app.get(&format!("/api/v1/notifications{query}"), Some(&user.token)).await, StatusCode::OK).await
}

fn kinds(page: &Value) -> Vec<(String, i64)> {
    items(page)
        .iter()
        .map(|n| (n["kind"].as_str().unwrap().to_owned(), n["message"]["seq"].as_i64().unwrap()))
        .collect()
}

async fn mention_count(app: &TestApp, user: &TestUser, room_id: i64) -> i64 {
    let room = expect_json(app.get(&format!("/api/v1/rooms/{room_id}"), Some(&user.token)).await, StatusCode::OK).await;
    room["mention_count"].as_i64().unwrap()
}

async fn mentions_replies_and_direct_messages_notify_the_right_people(app: TestApp) {
    let (alice, bob, carol) = (app.new_user().await, app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&alice, "public").await;
    for user in [&bob, &carol] {
        expect_status(app.join_room(&user.token, room_id).await, StatusCode::OK).await;
    }
    let outsider = app.new_user().await;
    app.send(&alice, room_id, &format!("hey @{} and @{}", bob.username, outsider.username)).await; // 1
    app.send(&bob, room_id, "plain").await; // 2
    expect_status(
        app.post_message(&alice.token, room_id, &json!({"body": "re", "reply_to": 2})).await,
        StatusCode::CREATED,
    )
    .await; // 3
    // Replying to oneself, and mentioning oneself, notify nobody.
    expect_status(
        app.post_message(&bob.token, room_id, &json!({"body": format!("@{} me", bob.username), "reply_to": 2})).await,
        StatusCode::CREATED,
    )
    .await; // 4
    // @room from a plain member is text; from the owner it reaches everyone.
    app.send(&carol, room_id, "@room hello").await; // 5
    app.send(&alice, room_id, "@room meeting").await; // 6

    let page = notifications(&app, &bob, "").await;
    assert_eq!(kinds(&page), [("mention".into(), 6), ("reply".into(), 3), ("mention".into(), 1)], "{page}");
    let first = &items(&page)[2];
    assert_eq!((first["room_id"].as_i64(), first["read"].as_bool()), (Some(room_id), Some(false)));
    assert_eq!(first["message"]["body"], format!("hey @{} and @{}", bob.username, outsider.username));
    assert_eq!(kinds(&notifications(&app, &carol, "").await), [("mention".into(), 6)]);
    assert!(items(&notifications(&app, &alice, "").await).is_empty(), "nobody notified alice");
    assert!(items(&notifications(&app, &outsider, "").await).is_empty(), "a non-member is not mentioned");
    assert_eq!(mention_count(&app, &bob, room_id).await, 3);

    // Every message of a direct room, except from someone blocked.
    let resp = app.post("/api/v1/direct", Some(&alice.token), &json!({"username": carol.username})).await;
    let direct = expect_json(resp, StatusCode::OK).await;
    let direct_id = direct["id"].as_i64().unwrap();
    app.send(&alice, direct_id, "psst").await;
    assert_eq!(kinds(&notifications(&app, &carol, "?limit=1").await), [("direct".into(), 1)]);
    expect_status(
        app.post("/api/v1/me/blocks", Some(&bob.token), &json!({"username": alice.username})).await,
        StatusCode::CREATED,
    )
    .await;
    app.send(&alice, room_id, &format!("@{} again", bob.username)).await;
    assert_eq!(kinds(&notifications(&app, &bob, "?limit=1").await)[0].1, 6, "a blocked user's mention makes none");
}

async fn reading_the_room_or_by_id_reads_them(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;
    for i in 1..=3 {
        app.send(&alice, room_id, &format!("@{} {i}", bob.username)).await;
    }
    assert_eq!(mention_count(&app, &bob, room_id).await, 3);
    expect_status(app.mark_read(&bob.token, room_id, 2).await, StatusCode::NO_CONTENT).await;
    assert_eq!(mention_count(&app, &bob, room_id).await, 1);
    let unread = notifications(&app, &bob, "?unread=true").await;
    assert_eq!(kinds(&unread), [("mention".into(), 3)]);
    let all = notifications(&app, &bob, "").await;
    assert_eq!(items(&all).iter().map(|n| n["read"].as_bool().unwrap()).collect::<Vec<_>>(), [false, true, true]);

    let newest = items(&unread)[0]["id"].as_i64().unwrap();
    let resp = app.post("/api/v1/notifications/read", Some(&bob.token), &json!({"up_to_id": newest})).await;
    expect_status(resp, StatusCode::NO_CONTENT).await;
    assert_eq!(mention_count(&app, &bob, room_id).await, 0);
    assert!(items(&notifications(&app, &bob, "?unread=true").await).is_empty());

    // Paging: newest first, by cursor.
    let first = notifications(&app, &bob, "?limit=2").await;
    assert_eq!(kinds(&first).iter().map(|k| k.1).collect::<Vec<_>>(), [3, 2]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = notifications(&app, &bob, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(kinds(&rest).iter().map(|k| k.1).collect::<Vec<_>>(), [1]);
    assert_eq!(rest["next_cursor"], Value::Null);
}

async fn every_socket_of_the_user_hears_of_a_notification_and_it_survives_a_reconnect(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;
    // One socket subscribed to the room, one to nothing at all.
    let mut subscribed = app.ws(&bob.token).await;
    subscribed.subscribe(room_id, None).await;
    let mut idle = app.ws(&bob.token).await;
    let mut alice_ws = app.ws(&alice.token).await;

    let m = app.send(&alice, room_id, &format!("@{} look", bob.username)).await;
    for ws in [&mut subscribed, &mut idle] {
        let f = ws.expect("notification").await;
        assert_eq!(f["notification"]["kind"], "mention", "{f}");
        assert_eq!(f["notification"]["message"], m);
    }
    alice_ws.expect_silence(QUIET, "a notification for someone else", |f| f["type"] == "notification").await;

    // Away and back: it is still there, unread.
    drop(idle);
    let page = notifications(&app, &bob, "?unread=true").await;
    assert_eq!(items(&page).len(), 1);
}

async fn notifications_hold_against_abuse(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&alice, "private").await;
    expect_status(app.add_member(&alice.token, room_id, &bob.username).await, StatusCode::CREATED).await;
    app.send(&alice, room_id, &format!("@{} secret plan", bob.username)).await;
    let id = items(&notifications(&app, &bob, "").await)[0]["id"].as_i64().unwrap();

    // Marking someone else's read does nothing to theirs.
    let resp = app.post("/api/v1/notifications/read", Some(&alice.token), &json!({"up_to_id": id})).await;
    expect_status(resp, StatusCode::NO_CONTENT).await;
    assert_eq!(items(&notifications(&app, &bob, "?unread=true").await).len(), 1);

    // Removed from the room: its notifications are not shown any more.
    let path = format!("/api/v1/rooms/{room_id}/members/{}", bob.id);
    expect_status(app.request(reqwest::Method::DELETE, &path, Some(&alice.token), None).await, StatusCode::NO_CONTENT)
        .await;
    assert!(items(&notifications(&app, &bob, "").await).is_empty());

    for query in ["?limit=0", "?limit=101", "?cursor=abc", "?unread=maybe"] {
        let resp = app.get(&format!("/api/v1/notifications{query}"), Some(&bob.token)).await;
        expect_problem(resp, StatusCode::BAD_REQUEST).await;
    }
    let resp = app.post("/api/v1/notifications/read", Some(&bob.token), &json!({"up_to_id": "all"})).await;
    expect_problem(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    expect_problem(app.get("/api/v1/notifications", None).await, StatusCode::UNAUTHORIZED).await;
    let writer = app.api_token(&bob, &["messages:write"]).await;
    let resp = app.get("/api/v1/notifications", Some(writer["token"].as_str().unwrap())).await;
    assert_eq!(expect_problem(resp, StatusCode::FORBIDDEN).await["code"], "insufficient_scope");
}
