//! Running a room (CONTRACT-2 "Rooms: roles, settings, moderation"): each role trying each action, mutes
//! and bans taking effect at once (REST and socket), the audit log.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, expect_json, expect_problem, expect_status, items};

db_tests!(
    only_moderators_moderate_and_only_those_they_outrank,
    a_muted_member_reads_but_cannot_send_until_unmuted,
    a_removed_member_is_unsubscribed_and_others_see_them_leave,
    a_ban_keeps_someone_out_until_it_is_lifted,
    ownership_is_handed_over_and_passes_on_when_the_owner_leaves,
    admins_delete_any_message_and_the_audit_log_records_every_action,
    direct_rooms_have_no_moderators,
    moderators_change_a_room_and_its_subscribers_see_it,
    only_the_owner_deletes_a_room_and_it_is_gone_for_everyone,
    an_invite_link_brings_people_into_a_private_room_until_used_up,
    invites_are_made_by_moderators_and_refuse_the_banned,
);

/// A room of `owner`'s with an admin and two plain members.
struct Cast {
    room_id: i64,
    owner: TestUser,
    admin: TestUser,
    member: TestUser,
    other: TestUser,
}

async fn cast(app: &TestApp, visibility: &str) -> Cast {
    let owner = app.new_user().await;
    let room_id = app.room_id(&owner, visibility).await;
    let (admin, member, other) = (app.new_user().await, app.new_user().await, app.new_user().await);
    for user in [&admin, &member, &other] {
        expect_status(app.add_member(&owner.token, room_id, &user.username).await, StatusCode::CREATED).await;
    }
    let made = update_member(app, &owner, room_id, admin.id, &json!({"role": "admin"})).await;
    assert_eq!(expect_json(made, StatusCode::OK).await["role"], "admin");
    Cast { room_id, owner, admin, member, other }
}

async fn update_member(app: &TestApp, actor: &TestUser, room_id: i64, user_id: i64, body: &Value) -> reqwest::Response {
    let path = format!("/api/v1/rooms/{room_id}/members/{user_id}");
    app.request(Method::PATCH, &path, Some(&actor.token), Some(body)).await
}

async fn remove_member(app: &TestApp, actor: &TestUser, room_id: i64, user_id: i64) -> reqwest::Response {
    app.request(Method::DELETE, &format!("/api/v1/rooms/{room_id}/members/{user_id}"), Some(&actor.token), None).await
}

async fn ban(app: &TestApp, actor: &TestUser, room_id: i64, body: &Value) -> reqwest::Response {
    app.post(&format!("/api/v1/rooms/{room_id}/bans"), Some(&actor.token), body).await
}

async fn audit(app: &TestApp, actor: &TestUser, room_id: i64, query: &str) -> reqwest::Response {
    app.get(&format!("/api/v1/rooms/{room_id}/audit{query}"), Some(&actor.token)).await
}

async fn expect_code(resp: reqwest::Response, status: StatusCode, code: &str) {
    let problem = expect_problem(resp, status).await;
    assert_eq!(problem["code"], code, "{problem}");
}

fn in_an_hour() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()
}

async fn only_moderators_moderate_and_only_those_they_outrank(app: TestApp) {
    let c = cast(&app, "private").await;
    let mute = json!({"muted_until": in_an_hour()});
    let (room, owner, admin, member, other) = (c.room_id, &c.owner, &c.admin, &c.member, &c.other);
    // A plain member moderates nobody.
    expect_code(update_member(&app, member, room, other.id, &mute).await, StatusCode::FORBIDDEN, "not_a_moderator")
        .await;
    expect_code(remove_member(&app, member, room, other.id).await, StatusCode::FORBIDDEN, "not_a_moderator").await;
    expect_code(ban(&app, member, room, &json!({"user_id": other.id})).await, StatusCode::FORBIDDEN, "not_a_moderator")
        .await;
    expect_code(audit(&app, member, room, "").await, StatusCode::FORBIDDEN, "not_a_moderator").await;
    // An admin sets no roles, and acts on nobody of their own rank or above, nor on themselves.
    let promote = json!({"role": "admin"});
    expect_code(update_member(&app, admin, room, member.id, &promote).await, StatusCode::FORBIDDEN, "not_the_owner")
        .await;
    for target in [owner.id, admin.id] {
        expect_code(update_member(&app, admin, room, target, &mute).await, StatusCode::FORBIDDEN, "outranked").await;
        expect_code(remove_member(&app, admin, room, target).await, StatusCode::FORBIDDEN, "outranked").await;
        expect_code(ban(&app, admin, room, &json!({"user_id": target})).await, StatusCode::FORBIDDEN, "outranked")
            .await;
    }
    // A second admin is out of the first one's reach too.
    expect_status(update_member(&app, owner, room, other.id, &promote).await, StatusCode::OK).await;
    expect_code(remove_member(&app, admin, room, other.id).await, StatusCode::FORBIDDEN, "outranked").await;
    // Someone who is not a member, and someone who does not exist.
    let stranger = app.new_user().await;
    expect_code(update_member(&app, owner, room, stranger.id, &mute).await, StatusCode::NOT_FOUND, "member_not_found")
        .await;
    expect_code(remove_member(&app, owner, room, 987_654).await, StatusCode::NOT_FOUND, "member_not_found").await;
    // Someone who cannot see the private room gets 404 for it, whatever they ask.
    expect_code(update_member(&app, &stranger, room, member.id, &mute).await, StatusCode::NOT_FOUND, "room_not_found")
        .await;
    // A mute in the past, and a body that is not the right shape.
    let past = json!({"muted_until": "2020-01-01T00:00:00Z"});
    expect_code(
        update_member(&app, admin, room, member.id, &past).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_problem(
        update_member(&app, admin, room, member.id, &json!({"role": "king"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // API tokens do not moderate, whatever their scopes.
    let bot = app.api_token(owner, &["rooms:read", "messages:read", "messages:write"]).await;
    let resp = app
        .request(Method::DELETE, &format!("/api/v1/rooms/{room}/members/{}", member.id), bot["token"].as_str(), None)
        .await;
    expect_code(resp, StatusCode::FORBIDDEN, "insufficient_scope").await;
    // The member list shows each role.
    let members = expect_json(app.members(&owner.token, room).await, StatusCode::OK).await;
    let role_of = |id: i64| items(&members).iter().find(|m| m["user"]["id"] == id).unwrap()["role"].clone();
    assert_eq!(
        (role_of(owner.id), role_of(admin.id), role_of(member.id)),
        (json!("owner"), json!("admin"), json!("member"))
    );
}

async fn a_muted_member_reads_but_cannot_send_until_unmuted(app: TestApp) {
    let c = cast(&app, "public").await;
    let room = c.room_id;
    let mut member_ws = app.ws(&c.member.token).await;
    member_ws.subscribe(room, None).await;
    let mut owner_ws = app.ws(&c.owner.token).await;
    owner_ws.subscribe(room, None).await;
    // Sent once before: the node remembers the member may send here.
    app.send(&c.member, room, "before").await;
    owner_ws.expect("message").await;

    let until = in_an_hour();
    let muted = expect_json(
        update_member(&app, &c.admin, room, c.member.id, &json!({"muted_until": until})).await,
        StatusCode::OK,
    )
    .await;
    assert!(muted["muted_until"].as_str().is_some(), "{muted}");
    let seen = owner_ws.expect("member_updated").await;
    assert_eq!(seen["member"]["user"]["id"], c.member.id, "{seen}");
    assert_eq!(seen["member"]["muted_until"], muted["muted_until"]);

    // Refused at once, over REST and over the socket; reading still works.
    let resp = app.post_message(&c.member.token, room, &json!({"body": "let me speak"})).await;
    expect_code(resp, StatusCode::FORBIDDEN, "muted").await;
    member_ws.send(json!({"type": "send", "room_id": room, "body": "ws", "client_id": "m-1"})).await;
    let refused = member_ws.expect("error").await;
    assert_eq!((refused["code"].as_str(), refused["client_id"].as_str()), (Some("muted"), Some("m-1")), "{refused}");
    expect_status(app.history(&c.member.token, room, "").await, StatusCode::OK).await;
    app.send(&c.owner, room, "others still talk").await;

    // Unmuted: sends again.
    expect_status(
        update_member(&app, &c.owner, room, c.member.id, &json!({"muted_until": null})).await,
        StatusCode::OK,
    )
    .await;
    let resp = app.post_message(&c.member.token, room, &json!({"body": "thanks"})).await;
    expect_status(resp, StatusCode::CREATED).await;
}

async fn a_removed_member_is_unsubscribed_and_others_see_them_leave(app: TestApp) {
    let c = cast(&app, "private").await;
    let room = c.room_id;
    let mut removed_ws = app.ws(&c.member.token).await;
    removed_ws.subscribe(room, None).await;
    let mut owner_ws = app.ws(&c.owner.token).await;
    owner_ws.subscribe(room, None).await;

    expect_status(remove_member(&app, &c.admin, room, c.member.id).await, StatusCode::NO_CONTENT).await;
    let f = removed_ws.expect("unsubscribed").await;
    assert_eq!(f, json!({"type": "unsubscribed", "room_id": room, "reason": "removed"}));
    let left = owner_ws.expect("member_left").await;
    assert_eq!((left["user"]["id"].as_i64(), left["reason"].as_str()), (Some(c.member.id), Some("removed")), "{left}");

    // Nothing more reaches them, and the private room is gone for them.
    app.send(&c.owner, room, "after").await;
    removed_ws
        .expect_silence(Duration::from_millis(400), "frame of the room", |f| f["message"]["room_id"] == room)
        .await;
    expect_code(app.history(&c.member.token, room, "").await, StatusCode::NOT_FOUND, "room_not_found").await;
}

async fn a_ban_keeps_someone_out_until_it_is_lifted(app: TestApp) {
    let c = cast(&app, "public").await;
    let room = c.room_id;
    let mut banned_ws = app.ws(&c.member.token).await;
    banned_ws.subscribe(room, None).await;

    let bad = ban(&app, &c.admin, room, &json!({"user_id": c.member.id, "reason": "spam\u{0}"})).await;
    expect_code(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_text").await;
    let long = ban(&app, &c.admin, room, &json!({"user_id": c.member.id, "reason": "x".repeat(501)})).await;
    let problem = expect_problem(long, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "reason", "{problem}");
    // Refused, and so not banned: still a member.
    let members = expect_json(app.members(&c.owner.token, room).await, StatusCode::OK).await;
    assert!(items(&members).iter().any(|m| m["user"]["id"] == c.member.id));
    let made = expect_json(
        ban(&app, &c.admin, room, &json!({"user_id": c.member.id, "reason": "spam"})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!((made["user"]["id"].as_i64(), made["reason"].as_str()), (Some(c.member.id), Some("spam")));
    assert_eq!(made["banned_by"]["id"], c.admin.id);
    let f = banned_ws.expect("unsubscribed").await;
    assert_eq!(f["reason"], "banned", "{f}");
    // Banning again changes nothing.
    let again =
        expect_json(ban(&app, &c.owner, room, &json!({"user_id": c.member.id})).await, StatusCode::CREATED).await;
    assert_eq!(again, made);

    // Cannot come back: not by joining, not by being added.
    expect_code(app.join_room(&c.member.token, room).await, StatusCode::FORBIDDEN, "banned").await;
    expect_code(app.add_member(&c.owner.token, room, &c.member.username).await, StatusCode::FORBIDDEN, "banned").await;
    // Someone never in the room can be banned ahead.
    let stranger = app.new_user().await;
    expect_status(ban(&app, &c.owner, room, &json!({"user_id": stranger.id})).await, StatusCode::CREATED).await;
    expect_code(app.join_room(&stranger.token, room).await, StatusCode::FORBIDDEN, "banned").await;
    expect_code(ban(&app, &c.owner, room, &json!({"user_id": 987_654})).await, StatusCode::NOT_FOUND, "user_not_found")
        .await;

    let listed =
        expect_json(app.get(&format!("/api/v1/rooms/{room}/bans"), Some(&c.admin.token)).await, StatusCode::OK).await;
    let ids: Vec<i64> = items(&listed).iter().map(|b| b["user"]["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [stranger.id, c.member.id], "newest first");
    expect_code(
        app.get(&format!("/api/v1/rooms/{room}/bans"), Some(&c.other.token)).await,
        StatusCode::FORBIDDEN,
        "not_a_moderator",
    )
    .await;

    let path = format!("/api/v1/rooms/{room}/bans/{}", c.member.id);
    expect_status(app.request(Method::DELETE, &path, Some(&c.admin.token), None).await, StatusCode::NO_CONTENT).await;
    expect_code(
        app.request(Method::DELETE, &path, Some(&c.admin.token), None).await,
        StatusCode::NOT_FOUND,
        "ban_not_found",
    )
    .await;
    expect_status(app.join_room(&c.member.token, room).await, StatusCode::OK).await;
}

async fn ownership_is_handed_over_and_passes_on_when_the_owner_leaves(app: TestApp) {
    let c = cast(&app, "public").await;
    let room = c.room_id;
    let given =
        expect_json(update_member(&app, &c.owner, room, c.admin.id, &json!({"role": "owner"})).await, StatusCode::OK)
            .await;
    assert_eq!(given["role"], "owner");
    // The old owner is an admin now, and sets no roles.
    let members = expect_json(app.members(&c.owner.token, room).await, StatusCode::OK).await;
    let role_of = |id: i64| items(&members).iter().find(|m| m["user"]["id"] == id).unwrap()["role"].clone();
    assert_eq!((role_of(c.owner.id), role_of(c.admin.id)), (json!("admin"), json!("owner")));
    // The room names its owner: the new one.
    let owner_of = |room: Value| room["created_by"].as_i64();
    let seen =
        expect_json(app.get(&format!("/api/v1/rooms/{room}"), Some(&c.member.token)).await, StatusCode::OK).await;
    assert_eq!(owner_of(seen), Some(c.admin.id));
    let resp = update_member(&app, &c.owner, room, c.member.id, &json!({"role": "admin"})).await;
    expect_code(resp, StatusCode::FORBIDDEN, "not_the_owner").await;

    // The new owner leaves: the longest-standing admin (the first owner) takes over.
    expect_status(app.leave_room(&c.admin.token, room).await, StatusCode::NO_CONTENT).await;
    let members = expect_json(app.members(&c.owner.token, room).await, StatusCode::OK).await;
    let owners: Vec<i64> =
        items(&members).iter().filter(|m| m["role"] == "owner").map(|m| m["user"]["id"].as_i64().unwrap()).collect();
    assert_eq!(owners, [c.owner.id]);
    let seen =
        expect_json(app.get(&format!("/api/v1/rooms/{room}"), Some(&c.member.token)).await, StatusCode::OK).await;
    assert_eq!(owner_of(seen), Some(c.owner.id));
    // No admin left: the longest-standing member takes over.
    expect_status(app.leave_room(&c.owner.token, room).await, StatusCode::NO_CONTENT).await;
    let members = expect_json(app.members(&c.member.token, room).await, StatusCode::OK).await;
    let owners: Vec<i64> =
        items(&members).iter().filter(|m| m["role"] == "owner").map(|m| m["user"]["id"].as_i64().unwrap()).collect();
    assert_eq!(owners, [c.member.id]);
}

async fn admins_delete_any_message_and_the_audit_log_records_every_action(app: TestApp) {
    let c = cast(&app, "public").await;
    let room = c.room_id;
    app.send(&c.member, room, "regrettable").await;
    app.send(&c.other, room, "mine").await;
    // A member deletes only their own.
    expect_code(app.delete_message(&c.member.token, room, 2).await, StatusCode::FORBIDDEN, "not_the_author").await;
    expect_status(app.delete_message(&c.admin.token, room, 1).await, StatusCode::NO_CONTENT).await;
    expect_status(app.delete_message(&c.other.token, room, 2).await, StatusCode::NO_CONTENT).await;
    expect_status(
        update_member(&app, &c.admin, room, c.member.id, &json!({"muted_until": in_an_hour()})).await,
        StatusCode::OK,
    )
    .await;
    expect_status(remove_member(&app, &c.admin, room, c.member.id).await, StatusCode::NO_CONTENT).await;
    expect_status(
        ban(&app, &c.owner, room, &json!({"user_id": c.other.id, "reason": "rude"})).await,
        StatusCode::CREATED,
    )
    .await;

    let page = expect_json(audit(&app, &c.admin, room, "").await, StatusCode::OK).await;
    let actions: Vec<(&str, i64, Value)> = items(&page)
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"]["id"].as_i64().unwrap(), e["target"]["id"].clone()))
        .collect();
    assert_eq!(
        actions,
        [
            ("member_banned", c.owner.id, json!(c.other.id)),
            ("member_removed", c.admin.id, json!(c.member.id)),
            ("member_muted", c.admin.id, json!(c.member.id)),
            ("message_deleted", c.admin.id, json!(c.member.id)),
            ("role_changed", c.owner.id, json!(c.admin.id)),
            ("member_added", c.owner.id, json!(c.other.id)),
            ("member_added", c.owner.id, json!(c.member.id)),
            ("member_added", c.owner.id, json!(c.admin.id)),
        ],
        "newest first; an author deleting their own message is not audited: {page}"
    );
    assert_eq!(items(&page)[0]["detail"], "rude");
    assert_eq!(items(&page)[3]["seq"], 1);
    assert_eq!(items(&page)[4]["detail"], "admin");

    // Paged by cursor.
    let first = expect_json(audit(&app, &c.owner, room, "?limit=3").await, StatusCode::OK).await;
    assert_eq!(items(&first).len(), 3);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let rest =
        expect_json(audit(&app, &c.owner, room, &format!("?limit=10&cursor={cursor}")).await, StatusCode::OK).await;
    assert_eq!(items(&rest).len(), 5);
    assert_eq!(rest["next_cursor"], Value::Null);
    expect_code(audit(&app, &c.owner, room, "?cursor=nonsense").await, StatusCode::BAD_REQUEST, "invalid_cursor").await;
}

async fn direct_rooms_have_no_moderators(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let direct = expect_json(app.direct(&alice.token, &bob.username).await, StatusCode::OK).await;
    let room = direct["id"].as_i64().unwrap();
    let resp = update_member(&app, &alice, room, bob.id, &json!({"muted_until": in_an_hour()})).await;
    expect_code(resp, StatusCode::FORBIDDEN, "not_a_moderator").await;
    expect_code(remove_member(&app, &alice, room, bob.id).await, StatusCode::FORBIDDEN, "not_a_moderator").await;
    expect_code(ban(&app, &bob, room, &json!({"user_id": alice.id})).await, StatusCode::FORBIDDEN, "not_a_moderator")
        .await;
}

async fn patch_room(app: &TestApp, actor: &TestUser, room_id: i64, body: &Value) -> reqwest::Response {
    app.request(Method::PATCH, &format!("/api/v1/rooms/{room_id}"), Some(&actor.token), Some(body)).await
}

async fn moderators_change_a_room_and_its_subscribers_see_it(app: TestApp) {
    let c = cast(&app, "private").await;
    let room = c.room_id;
    let mut member_ws = app.ws(&c.member.token).await;
    member_ws.subscribe(room, None).await;
    app.send(&c.owner, room, "unread for the member").await;
    member_ws.expect("message").await;

    let change = json!({"name": "  Renamed  ", "topic": "new topic", "visibility": "public"});
    let changed = expect_json(patch_room(&app, &c.admin, room, &change).await, StatusCode::OK).await;
    assert_eq!(
        (changed["name"].as_str(), changed["topic"].as_str(), changed["visibility"].as_str()),
        (Some("Renamed"), Some("new topic"), Some("public"))
    );
    let f = member_ws.expect("room_updated").await;
    assert_eq!(f["room"]["name"], "Renamed", "{f}");
    assert_eq!(
        (f["room"]["unread_count"].as_i64(), f["room"]["last_message"].clone()),
        (Some(0), Value::Null),
        "nobody's own: {f}"
    );
    // Absent fields stay; null clears the topic.
    let cleared = expect_json(patch_room(&app, &c.owner, room, &json!({"topic": null})).await, StatusCode::OK).await;
    assert_eq!((cleared["name"].as_str(), cleared["topic"].clone()), (Some("Renamed"), Value::Null));
    // Checked as at creation.
    expect_code(
        patch_room(&app, &c.owner, room, &json!({"name": "   "})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_code(
        patch_room(&app, &c.owner, room, &json!({"name": "a\u{1}b"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_text",
    )
    .await;
    expect_code(
        patch_room(&app, &c.member, room, &json!({"name": "mine"})).await,
        StatusCode::FORBIDDEN,
        "not_a_moderator",
    )
    .await;
    let stranger = app.new_user().await;
    let resp = patch_room(&app, &stranger, room, &json!({"name": "x"})).await;
    // Public now: the stranger sees it, and is still no moderator.
    expect_code(resp, StatusCode::FORBIDDEN, "not_a_moderator").await;
    let page = expect_json(audit(&app, &c.owner, room, "").await, StatusCode::OK).await;
    let first = &items(&page)[0];
    assert_eq!((first["action"].as_str(), first["detail"].as_str()), (Some("room_updated"), Some("topic")));
    assert_eq!(items(&page)[1]["detail"], "name, topic, visibility");
}

async fn only_the_owner_deletes_a_room_and_it_is_gone_for_everyone(app: TestApp) {
    let c = cast(&app, "public").await;
    let room = c.room_id;
    app.send(&c.member, room, "soon gone").await;
    let mut member_ws = app.ws(&c.member.token).await;
    member_ws.subscribe(room, None).await;
    let path = format!("/api/v1/rooms/{room}");
    let delete = |who: &TestUser| {
        let token = who.token.clone();
        let (app, path) = (&app, path.clone());
        async move { app.request(Method::DELETE, &path, Some(&token), None).await }
    };
    expect_code(delete(&c.admin).await, StatusCode::FORBIDDEN, "not_the_owner").await;
    expect_code(delete(&c.member).await, StatusCode::FORBIDDEN, "not_the_owner").await;
    expect_status(delete(&c.owner).await, StatusCode::NO_CONTENT).await;
    let f = member_ws.expect("unsubscribed").await;
    assert_eq!(f, json!({"type": "unsubscribed", "room_id": room, "reason": "room_deleted"}));
    for user in [&c.owner, &c.member] {
        expect_code(app.get_room(&user.token, room).await, StatusCode::NOT_FOUND, "room_not_found").await;
        let listed = expect_json(app.list_rooms(&user.token, "").await, StatusCode::OK).await;
        assert!(items(&listed).iter().all(|r| r["id"] != room), "{listed}");
    }
    expect_code(delete(&c.owner).await, StatusCode::NOT_FOUND, "room_not_found").await;
    // Direct rooms have no owner to delete them.
    let direct = expect_json(app.direct(&c.owner.token, &c.member.username).await, StatusCode::OK).await;
    let resp =
        app.request(Method::DELETE, &format!("/api/v1/rooms/{}", direct["id"]), Some(&c.owner.token), None).await;
    expect_code(resp, StatusCode::FORBIDDEN, "not_the_owner").await;
    let resp = patch_room(&app, &c.owner, direct["id"].as_i64().unwrap(), &json!({"name": "ours"})).await;
    expect_code(resp, StatusCode::FORBIDDEN, "not_a_moderator").await;
}

async fn create_invite(app: &TestApp, actor: &TestUser, room_id: i64, body: &Value) -> reqwest::Response {
    app.post(&format!("/api/v1/rooms/{room_id}/invites"), Some(&actor.token), body).await
}

async fn an_invite_link_brings_people_into_a_private_room_until_used_up(app: TestApp) {
    let c = cast(&app, "private").await;
    let room = c.room_id;
    let mut owner_ws = app.ws(&c.owner.token).await;
    owner_ws.subscribe(room, None).await;
    let invite = expect_json(
        create_invite(&app, &c.admin, room, &json!({"max_uses": 2, "expires_in_hours": 24})).await,
        StatusCode::CREATED,
    )
    .await;
    let code = invite["code"].as_str().unwrap().to_owned();
    assert!(code.len() >= 22, "at least 128 bits: {code}");
    assert_eq!((invite["max_uses"].as_i64(), invite["uses"].as_i64()), (Some(2), Some(0)));
    assert_eq!(invite["created_by"]["id"], c.admin.id);
    assert!(invite["expires_at"].is_string());

    // A stranger cannot see the private room, but the invite shows it, and joins them.
    let (first, second, third) = (app.new_user().await, app.new_user().await, app.new_user().await);
    expect_code(app.get_room(&first.token, room).await, StatusCode::NOT_FOUND, "room_not_found").await;
    let preview =
        expect_json(app.get(&format!("/api/v1/invites/{code}"), Some(&first.token)).await, StatusCode::OK).await;
    assert_eq!(preview["room"]["id"], room);
    assert_eq!(preview["room"]["member_count"], 4);
    let joined = expect_json(
        app.post(&format!("/api/v1/invites/{code}/accept"), Some(&first.token), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(joined["id"], room);
    let f = owner_ws.expect("member_joined").await;
    assert_eq!(f["member"]["user"]["id"], first.id, "{f}");
    // Accepting again uses nothing; the second use goes to the second person; then it is used up.
    expect_status(
        app.post(&format!("/api/v1/invites/{code}/accept"), Some(&first.token), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.post(&format!("/api/v1/invites/{code}/accept"), Some(&second.token), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let used_up = app.post(&format!("/api/v1/invites/{code}/accept"), Some(&third.token), &json!({})).await;
    expect_code(used_up, StatusCode::NOT_FOUND, "invite_not_found").await;
    expect_code(
        app.get(&format!("/api/v1/invites/{code}"), Some(&third.token)).await,
        StatusCode::NOT_FOUND,
        "invite_not_found",
    )
    .await;
    let listed =
        expect_json(app.get(&format!("/api/v1/rooms/{room}/invites"), Some(&c.owner.token)).await, StatusCode::OK)
            .await;
    assert!(items(&listed).is_empty(), "a used-up invite is not listed: {listed}");
    expect_code(
        app.get("/api/v1/invites/no-such-code", Some(&third.token)).await,
        StatusCode::NOT_FOUND,
        "invite_not_found",
    )
    .await;
}

async fn invites_are_made_by_moderators_and_refuse_the_banned(app: TestApp) {
    let c = cast(&app, "public").await;
    let room = c.room_id;
    expect_code(create_invite(&app, &c.member, room, &json!({})).await, StatusCode::FORBIDDEN, "not_a_moderator").await;
    for bad in [
        json!({"max_uses": 0}),
        json!({"max_uses": 1001}),
        json!({"expires_in_hours": 0}),
        json!({"expires_in_hours": 721}),
    ] {
        expect_code(
            create_invite(&app, &c.owner, room, &bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    let invite = expect_json(create_invite(&app, &c.owner, room, &json!({})).await, StatusCode::CREATED).await;
    let code = invite["code"].as_str().unwrap().to_owned();
    assert_eq!((invite["max_uses"].clone(), invite["expires_at"].clone()), (Value::Null, Value::Null));
    let listed =
        expect_json(app.get(&format!("/api/v1/rooms/{room}/invites"), Some(&c.admin.token)).await, StatusCode::OK)
            .await;
    assert_eq!(items(&listed)[0]["code"], code.as_str());
    expect_code(
        app.get(&format!("/api/v1/rooms/{room}/invites"), Some(&c.member.token)).await,
        StatusCode::FORBIDDEN,
        "not_a_moderator",
    )
    .await;

    // A banned user cannot come back through an invite.
    let outcast = app.new_user().await;
    expect_status(ban(&app, &c.owner, room, &json!({"user_id": outcast.id})).await, StatusCode::CREATED).await;
    let resp = app.post(&format!("/api/v1/invites/{code}/accept"), Some(&outcast.token), &json!({})).await;
    expect_code(resp, StatusCode::FORBIDDEN, "banned").await;

    // Deleted: stops working at once; a member cannot delete it.
    let path = format!("/api/v1/rooms/{room}/invites/{code}");
    expect_code(
        app.request(Method::DELETE, &path, Some(&c.member.token), None).await,
        StatusCode::FORBIDDEN,
        "not_a_moderator",
    )
    .await;
    expect_status(app.request(Method::DELETE, &path, Some(&c.admin.token), None).await, StatusCode::NO_CONTENT).await;
    let late = app.new_user().await;
    let resp = app.post(&format!("/api/v1/invites/{code}/accept"), Some(&late.token), &json!({})).await;
    expect_code(resp, StatusCode::NOT_FOUND, "invite_not_found").await;
    expect_code(
        app.request(Method::DELETE, &path, Some(&c.admin.token), None).await,
        StatusCode::NOT_FOUND,
        "invite_not_found",
    )
    .await;
    // The audit log names who made invites.
    let page = expect_json(audit(&app, &c.owner, room, "").await, StatusCode::OK).await;
    assert!(items(&page).iter().any(|e| e["action"] == "invite_created" && e["actor"]["id"] == c.owner.id), "{page}");
}
