//! `/rooms`, `/rooms/{id}`, join, leave, members, `/direct`, and the privacy of private rooms.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, TestUser, assert_room, assert_room_page, assert_time, assert_user, expect_json, expect_problem,
    expect_status, id_of, items, percent_encode,
};

db_tests!(
    create_room_makes_creator_owner,
    list_joined_orders_by_latest_activity,
    list_public_scope,
    cursor_pagination_walks_every_room_once,
    get_room,
    join_public_room_twice_is_fine,
    leave_room,
    members_list_shows_roles,
    owner_adds_member_to_private_room,
    direct_room_is_the_same_both_ways,
    private_room_is_404_to_a_stranger,
);

async fn create_room_makes_creator_owner(app: TestApp) {
    let user = app.new_user().await;
    let body = json!({"name": "general", "topic": "anything goes", "visibility": "public"});
    let room = expect_json(app.create_room(&user.token, &body).await, StatusCode::CREATED).await;
    assert_room(&room);
    assert_eq!(room["name"], "general");
    assert_eq!(room["topic"], "anything goes");
    assert_eq!(room["visibility"], "public");
    assert_eq!(room["kind"], "room");
    assert_eq!(room["created_by"], user.id);
    assert_eq!(room["member_count"], 1);
    assert_eq!(room["last_message"], Value::Null);
    assert_eq!(room["unread_count"], 0);
    assert_eq!(room["last_read_seq"], 0);

    let private = expect_json(
        app.create_room(&user.token, &json!({"name": "secret", "visibility": "private"})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_room(&private);
    assert_eq!(private["visibility"], "private");
    assert_ne!(id_of(&private), id_of(&room));

    let members = expect_json(app.members(&user.token, id_of(&room)).await, StatusCode::OK).await;
    let members = items(&members);
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["user"]["id"], user.id);
    assert_eq!(members[0]["role"], "owner");
}

/// The ids of a rooms page, in order.
fn room_ids(page: &Value) -> Vec<i64> {
    items(page).iter().map(id_of).collect()
}

async fn list_joined_orders_by_latest_activity(app: TestApp) {
    let user = app.new_user().await;
    let older = app.room_id(&user, "public").await;
    let newer = app.room_id(&user, "private").await;
    let other = app.new_user().await;
    let not_joined = app.room_id(&other, "public").await;

    app.send(&user, newer, "first").await;
    app.send(&user, older, "second").await;
    let page = expect_json(app.list_rooms(&user.token, "").await, StatusCode::OK).await;
    assert_room_page(&page);
    assert_eq!(room_ids(&page), [older, newer], "the room with the latest message first; joined is the default scope");
    assert_eq!(items(&page)[0]["last_message"]["body"], "second");

    app.send(&user, newer, "third").await;
    let page = expect_json(app.list_rooms(&user.token, "scope=joined").await, StatusCode::OK).await;
    assert_room_page(&page);
    assert_eq!(room_ids(&page), [newer, older], "posting in a room moves it first");
    assert!(!room_ids(&page).contains(&not_joined));
    assert_eq!(page["next_cursor"], Value::Null, "one page: {page}");
}

async fn list_public_scope(app: TestApp) {
    let owner = app.new_user().await;
    let public = app.room_id(&owner, "public").await;
    let private = app.room_id(&owner, "private").await;
    let stranger = app.new_user().await;

    let page = expect_json(app.list_rooms(&stranger.token, "scope=public").await, StatusCode::OK).await;
    assert_room_page(&page);
    let ids = room_ids(&page);
    assert!(ids.contains(&public), "the public room is listed: {page}");
    assert!(!ids.contains(&private), "a private room is never listed to a stranger: {page}");
    assert!(items(&page).iter().all(|r| r["visibility"] == "public"), "{page}");

    // Not joined yet: the stranger's joined list is empty.
    let joined = expect_json(app.list_rooms(&stranger.token, "scope=joined").await, StatusCode::OK).await;
    assert!(items(&joined).is_empty(), "{joined}");
}

/// Follows `next_cursor` from the first page of `query` and returns every id seen, in order.
async fn walk_rooms(app: &TestApp, user: &TestUser, query: &str, limit: usize) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let q = match &cursor {
            Some(c) => format!("{query}&limit={limit}&cursor={}", percent_encode(c)),
            None => format!("{query}&limit={limit}"),
        };
        let page = expect_json(app.list_rooms(&user.token, &q).await, StatusCode::OK).await;
        assert_room_page(&page);
        assert!(items(&page).len() <= limit, "at most `limit` rooms per page: {page}");
        seen.extend(room_ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return seen,
        }
    }
    panic!("next_cursor never ended; seen {seen:?}");
}

async fn cursor_pagination_walks_every_room_once(app: TestApp) {
    let user = app.new_user().await;
    let mut created = Vec::new();
    for i in 0..7 {
        let visibility = if i % 3 == 2 { "private" } else { "public" };
        created.push(app.room_id(&user, visibility).await);
    }
    // Some activity so the order mixes creation and message times.
    app.send(&user, created[1], "hello").await;
    app.send(&user, created[4], "hello").await;

    for limit in [1, 2, 3] {
        let seen = walk_rooms(&app, &user, "scope=joined", limit).await;
        let unique: HashSet<i64> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "no room repeated (limit {limit}): {seen:?}");
        assert_eq!(unique, created.iter().copied().collect(), "every joined room (limit {limit}): {seen:?}");
        assert_eq!(&seen[..2], [created[4], created[1]], "latest activity first (limit {limit}): {seen:?}");
    }

    let public: HashSet<i64> = created.iter().enumerate().filter(|(i, _)| i % 3 != 2).map(|(_, id)| *id).collect();
    let stranger = app.new_user().await;
    let seen = walk_rooms(&app, &stranger, "scope=public", 2).await;
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no public room repeated: {seen:?}");
    assert_eq!(unique, public, "every public room, no private one: {seen:?}");
}

async fn get_room(app: TestApp) {
    let owner = app.new_user().await;
    let created = app.room(&owner, "public").await;
    let room_id = id_of(&created);
    let room = app.room_view(&owner.token, room_id).await;
    assert_room(&room);
    assert_eq!(room["name"], created["name"]);
    assert_eq!(room["created_by"], owner.id);
    assert_eq!(room["created_at"], created["created_at"]);

    // A public room is visible to anyone signed in.
    let stranger = app.new_user().await;
    let seen = app.room_view(&stranger.token, room_id).await;
    assert_eq!(id_of(&seen), room_id);
    assert_eq!(seen["member_count"], 1);

    let message = app.send(&owner, room_id, "latest").await;
    let room = app.room_view(&owner.token, room_id).await;
    assert_eq!(room["last_message"]["id"], message["id"]);
    assert_eq!(room["last_message"]["body"], "latest");
}

async fn join_public_room_twice_is_fine(app: TestApp) {
    let owner = app.new_user().await;
    let room_id = app.room_id(&owner, "public").await;
    let joiner = app.new_user().await;

    let room = expect_json(app.join_room(&joiner.token, room_id).await, StatusCode::OK).await;
    assert_room(&room);
    assert_eq!(id_of(&room), room_id);
    assert_eq!(room["member_count"], 2);
    let again = expect_json(app.join_room(&joiner.token, room_id).await, StatusCode::OK).await;
    assert_eq!(again["member_count"], 2, "joining twice adds no member");

    let joined = expect_json(app.list_rooms(&joiner.token, "scope=joined").await, StatusCode::OK).await;
    assert_eq!(room_ids(&joined), [room_id]);
    let members = expect_json(app.members(&owner.token, room_id).await, StatusCode::OK).await;
    assert_eq!(items(&members).len(), 2, "{members}");

    // Now a member, the joiner can post.
    let m = app.send(&joiner, room_id, "hi all").await;
    assert_eq!(m["author"]["id"], joiner.id);
}

async fn leave_room(app: TestApp) {
    let owner = app.new_user().await;
    let room_id = app.room_id(&owner, "public").await;
    let member = app.new_user().await;
    expect_json(app.join_room(&member.token, room_id).await, StatusCode::OK).await;
    // A member who has just posted (the server remembers their membership check for a while)...
    app.send(&member, room_id, "bye").await;

    expect_status(app.leave_room(&member.token, room_id).await, StatusCode::NO_CONTENT).await;

    // ...can post no more, at once.
    let refused = app.post_message(&member.token, room_id, &json!({"body": "still here?"})).await;
    assert_eq!(expect_problem(refused, StatusCode::FORBIDDEN).await["code"], "not_a_member");
    let joined = expect_json(app.list_rooms(&member.token, "scope=joined").await, StatusCode::OK).await;
    assert!(items(&joined).is_empty(), "left rooms are not listed: {joined}");
    let members = expect_json(app.members(&owner.token, room_id).await, StatusCode::OK).await;
    assert!(items(&members).iter().all(|m| m["user"]["id"] != member.id), "{members}");
    assert_eq!(app.room_view(&owner.token, room_id).await["member_count"], 1);
}

async fn members_list_shows_roles(app: TestApp) {
    let owner = app.new_user().await;
    let room_id = app.room_id(&owner, "public").await;
    let member = app.new_user().await;
    expect_json(app.join_room(&member.token, room_id).await, StatusCode::OK).await;

    let page = expect_json(app.members(&member.token, room_id).await, StatusCode::OK).await;
    let members = items(&page);
    assert_eq!(members.len(), 2, "{page}");
    for m in members {
        assert_user(&m["user"]);
        assert_time(&m["joined_at"], "joined_at");
    }
    let role_of = |id: i64| members.iter().find(|m| m["user"]["id"] == id).map(|m| m["role"].clone());
    assert_eq!(role_of(owner.id), Some(json!("owner")), "{page}");
    assert_eq!(role_of(member.id), Some(json!("member")), "{page}");
    let listed = members.iter().find(|m| m["user"]["id"] == member.id).unwrap();
    assert_eq!(listed["user"], member.user, "members carry the full User");
}

async fn owner_adds_member_to_private_room(app: TestApp) {
    let owner = app.new_user().await;
    let room_id = app.room_id(&owner, "private").await;
    let friend = app.new_user().await;
    let third = app.new_user().await;

    // Before being added, the friend cannot see it.
    expect_problem(app.get_room(&friend.token, room_id).await, StatusCode::NOT_FOUND).await;

    expect_status(app.add_member(&owner.token, room_id, &friend.username).await, StatusCode::CREATED).await;
    let room = app.room_view(&friend.token, room_id).await;
    assert_eq!(room["member_count"], 2);
    app.send(&friend, room_id, "thanks for the invite").await;
    let joined = expect_json(app.list_rooms(&friend.token, "").await, StatusCode::OK).await;
    assert_eq!(room_ids(&joined), [room_id]);

    // A plain member cannot add people.
    expect_problem(app.add_member(&friend.token, room_id, &third.username).await, StatusCode::FORBIDDEN).await;
    // Nor can a stranger, who does not even see the room.
    expect_problem(app.add_member(&third.token, room_id, &third.username).await, StatusCode::NOT_FOUND).await;
    expect_problem(app.get_room(&third.token, room_id).await, StatusCode::NOT_FOUND).await;
    let members = expect_json(app.members(&owner.token, room_id).await, StatusCode::OK).await;
    assert_eq!(items(&members).len(), 2, "{members}");

    // An unknown user cannot be added.
    expect_problem(app.add_member(&owner.token, room_id, "nobody_by_this_name").await, StatusCode::NOT_FOUND).await;
}

async fn direct_room_is_the_same_both_ways(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;

    let room = expect_json(app.direct(&alice.token, &bob.username).await, StatusCode::OK).await;
    assert_room(&room);
    assert_eq!(room["kind"], "direct");
    assert_eq!(room["visibility"], "private");
    assert_eq!(room["member_count"], 2);
    let room_id = id_of(&room);

    let from_bob = expect_json(app.direct(&bob.token, &alice.username).await, StatusCode::OK).await;
    assert_eq!(id_of(&from_bob), room_id, "the same room both ways");
    let again = expect_json(app.direct(&alice.token, &bob.username).await, StatusCode::OK).await;
    assert_eq!(id_of(&again), room_id, "the same room every time");

    // Both can talk in it; nobody else can see it.
    app.send(&alice, room_id, "hi bob").await;
    app.send(&bob, room_id, "hi alice").await;
    let members = expect_json(app.members(&bob.token, room_id).await, StatusCode::OK).await;
    let ids: HashSet<i64> = items(&members).iter().map(|m| m["user"]["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, HashSet::from([alice.id, bob.id]));
    let eve = app.new_user().await;
    expect_problem(app.get_room(&eve.token, room_id).await, StatusCode::NOT_FOUND).await;
    let public = expect_json(app.list_rooms(&eve.token, "scope=public").await, StatusCode::OK).await;
    assert!(!room_ids(&public).contains(&room_id));

    // A third person's direct room with Bob is another room.
    let eve_bob = expect_json(app.direct(&eve.token, &bob.username).await, StatusCode::OK).await;
    assert_ne!(id_of(&eve_bob), room_id);

    expect_problem(app.direct(&alice.token, "nobody_by_this_name").await, StatusCode::NOT_FOUND).await;
}

async fn private_room_is_404_to_a_stranger(app: TestApp) {
    let owner = app.new_user().await;
    let room_id = app.room_id(&owner, "private").await;
    app.send(&owner, room_id, "secret").await;
    let stranger = app.new_user().await;
    let t = stranger.token.as_str();

    // What a room that does not exist at all answers: the private room must look the same.
    let missing = expect_problem(app.get_room(t, room_id + 1000).await, StatusCode::NOT_FOUND).await;

    let answers = [
        ("get", app.get_room(t, room_id).await),
        ("history", app.history(t, room_id, "").await),
        ("post", app.post_message(t, room_id, &json!({"body": "let me in"})).await),
        ("members", app.members(t, room_id).await),
        ("edit", app.edit_message(t, room_id, 1, &json!({"body": "changed"})).await),
        ("delete", app.delete_message(t, room_id, 1).await),
        ("join", app.join_room(t, room_id).await),
    ];
    for (what, resp) in answers {
        let problem = expect_problem(resp, StatusCode::NOT_FOUND).await;
        assert_eq!(problem["code"], missing["code"], "{what}: same code as a room that does not exist");
    }

    // Nothing changed: one message, untouched, one member.
    let page = app.history_page(&owner.token, room_id, "").await;
    assert_eq!(items(&page).len(), 1);
    assert_eq!(items(&page)[0]["body"], "secret");
    assert_eq!(app.room_view(&owner.token, room_id).await["member_count"], 1);
}
