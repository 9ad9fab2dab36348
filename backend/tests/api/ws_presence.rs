//! Presence on one node: `presence` on subscribe, `presence_changed` when a user's first socket
//! subscribes and when the last one leaves; several tabs of one user are one presence.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::ws_frames::QUIET;

db_tests!(
    subscribe_gets_presence_listing_online_users,
    another_user_coming_and_going_is_announced,
    two_tabs_of_one_user_stay_online_until_the_last_closes,
);

/// The ids in a `presence` frame's `online`, sorted.
pub fn online_ids(presence: &Value) -> Vec<i64> {
    let online = presence["online"].as_array().unwrap_or_else(|| panic!("presence.online is an array: {presence}"));
    let mut ids: Vec<i64> = online
        .iter()
        .map(|u| {
            assert_user(u);
            u["id"].as_i64().unwrap()
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// Whether `f` is a `presence_changed` about `user_id`.
pub fn presence_of(f: &Value, user_id: i64) -> bool {
    f["type"] == "presence_changed" && f["user"]["id"] == user_id
}

/// Reads until a `presence_changed` about `user` arrives (skipping others, e.g. about oneself).
pub async fn next_presence_of(ws: &mut crate::ws_client::WsClient, user: &TestUser) -> Value {
    loop {
        let f = ws.expect("presence_changed").await;
        if presence_of(&f, user.id) {
            return f;
        }
    }
}

/// Asserts a `presence_changed` frame.
pub fn assert_presence_changed(f: &Value, room_id: i64, user: &TestUser, online: bool) {
    assert_eq!(f["type"], "presence_changed", "{f}");
    assert_eq!(f["room_id"], room_id, "{f}");
    assert_user(&f["user"]);
    assert_eq!(f["user"]["id"], user.id, "{f}");
    assert_eq!(f["online"], online, "{f}");
}

async fn subscribe_gets_presence_listing_online_users(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let carol = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    for u in [&bob, &carol] {
        expect_status(app.join_room(&u.token, room_id).await, StatusCode::OK).await;
    }
    // Carol has a socket subscribed to another room (and no longer to this one): not online here.
    let mut c = app.ws(&carol.token).await;
    c.subscribe(room_id, None).await;
    c.send(serde_json::json!({"type": "unsubscribe", "room_id": room_id})).await;
    c.ping_pong().await;
    let other_room = app.room_id(&carol, "public").await;
    c.subscribe(other_room, None).await;

    let mut a = app.ws(&alice.token).await;
    let (_, _, presence) = a.subscribe_with_presence(room_id, None).await;
    assert_eq!(online_ids(&presence), [alice.id], "alone at first: {presence}");

    let mut b = app.ws(&bob.token).await;
    let (_, _, presence) = b.subscribe_with_presence(room_id, None).await;
    let mut want = vec![alice.id, bob.id];
    want.sort_unstable();
    assert_eq!(online_ids(&presence), want, "bob sees alice and himself: {presence}");
}

async fn another_user_coming_and_going_is_announced(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;
    let mut a = app.ws(&alice.token).await;
    a.subscribe_with_presence(room_id, None).await;

    let mut b = app.ws(&bob.token).await;
    b.subscribe_with_presence(room_id, None).await;
    assert_presence_changed(&next_presence_of(&mut a, &bob).await, room_id, &bob, true);

    // Unsubscribing is leaving.
    b.send(serde_json::json!({"type": "unsubscribe", "room_id": room_id})).await;
    assert_presence_changed(&next_presence_of(&mut a, &bob).await, room_id, &bob, false);
    b.subscribe(room_id, None).await;
    assert_presence_changed(&next_presence_of(&mut a, &bob).await, room_id, &bob, true);

    // So is closing the socket.
    b.close().await;
    assert_presence_changed(&next_presence_of(&mut a, &bob).await, room_id, &bob, false);
    a.expect_silence(QUIET, "another presence change for bob", |f| presence_of(f, bob.id)).await;
}

async fn two_tabs_of_one_user_stay_online_until_the_last_closes(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;
    let mut a = app.ws(&alice.token).await;
    a.subscribe_with_presence(room_id, None).await;

    let mut tab1 = app.ws(&bob.token).await;
    tab1.subscribe(room_id, None).await;
    assert_presence_changed(&next_presence_of(&mut a, &bob).await, room_id, &bob, true);
    let mut tab2 = app.ws(&bob.token).await;
    tab2.subscribe(room_id, None).await;
    a.expect_silence(QUIET, "a presence change for bob's second tab", |f| presence_of(f, bob.id)).await;

    tab1.close().await;
    a.expect_silence(QUIET, "bob going offline while a tab is open", |f| presence_of(f, bob.id)).await;
    // A newcomer still sees bob online.
    let mut a2 = app.ws(&alice.token).await;
    let (_, _, presence) = a2.subscribe_with_presence(room_id, None).await;
    assert!(online_ids(&presence).contains(&bob.id), "bob is online with one tab: {presence}");

    tab2.close().await;
    assert_presence_changed(&next_presence_of(&mut a, &bob).await, room_id, &bob, false);
    let mut a3 = app.ws(&alice.token).await;
    let (_, _, presence) = a3.subscribe_with_presence(room_id, None).await;
    assert_eq!(online_ids(&presence), [alice.id], "bob is gone: {presence}");
}
