//! `PATCH /me`, `POST /me/password`, `GET /users` (CONTRACT-2 "Accounts").

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use backend::config::{Config, Rate};

use crate::helpers::{TestApp, expect_json, expect_problem, expect_status, items, percent_encode};

db_tests!(
    a_display_name_change_reaches_everyone_in_a_room_with_them,
    a_password_change_ends_every_other_session,
    a_deleted_account_is_gone_but_its_conversations_stay_readable,
    an_export_holds_what_the_caller_wrote_and_where,
    a_blocked_user_cannot_reach_the_blocker,
);

db_tests_configured!(
    lookups_limited_registrations_not =>
    people_are_found_by_the_start_of_their_names,
    finding_people_is_rate_limited,
    guessing_invite_codes_is_rate_limited,
);

/// Searches held to `LOOKUPS` a minute; registrations not limited (a search test needs more than 20 people).
fn lookups_limited_registrations_not(config: &mut Config) {
    config.rate_limits.lookups = Some(Rate::per_minute(LOOKUPS as u32));
    config.rate_limits.register = None;
}

const LOOKUPS: usize = 15;

async fn patch_me(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.request(Method::PATCH, "/api/v1/me", Some(token), Some(body)).await
}

async fn a_display_name_change_reaches_everyone_in_a_room_with_them(app: TestApp) {
    let (alice, bob, carol) = (app.new_user().await, app.new_user().await, app.new_user().await);
    let (one, two) = (app.room_id(&alice, "public").await, app.room_id(&alice, "public").await);
    for room in [one, two] {
        expect_status(app.join_room(&bob.token, room).await, StatusCode::OK).await;
    }
    let mut bob_ws = app.ws(&bob.token).await;
    bob_ws.subscribe(one, None).await;
    bob_ws.subscribe(two, None).await;
    let elsewhere = app.room_id(&carol, "public").await;
    let mut carol_ws = app.ws(&carol.token).await;
    carol_ws.subscribe(elsewhere, None).await;

    let me =
        expect_json(patch_me(&app, &alice.token, &json!({"display_name": "  Alice Liddell "})).await, StatusCode::OK)
            .await;
    assert_eq!(me["display_name"], "Alice Liddell");
    let f = bob_ws.expect("user_updated").await;
    assert_eq!(f["user"], me, "{f}");
    // Once per socket, though Bob shares two rooms with her; nobody else hears of it.
    bob_ws.expect_silence(Duration::from_millis(300), "a second user_updated", |f| f["type"] == "user_updated").await;
    carol_ws.expect_silence(Duration::from_millis(100), "user_updated", |f| f["type"] == "user_updated").await;
    assert_eq!(expect_json(app.me(&alice.token).await, StatusCode::OK).await["display_name"], "Alice Liddell");

    // Null goes back to the username; an absent field changes nothing.
    let back = expect_json(patch_me(&app, &alice.token, &json!({"display_name": null})).await, StatusCode::OK).await;
    assert_eq!(back["display_name"], alice.username);
    let same = expect_json(patch_me(&app, &alice.token, &json!({})).await, StatusCode::OK).await;
    assert_eq!(same, back);
    // Checked like at registration.
    let bad = expect_problem(
        patch_me(&app, &alice.token, &json!({"display_name": "a\u{7}b"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(bad["code"], "invalid_text");
    let long = expect_problem(
        patch_me(&app, &alice.token, &json!({"display_name": "x".repeat(65)})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(long["code"], "validation_failed");
    let bot = app.api_token(&alice, &["rooms:read", "messages:read", "messages:write"]).await;
    let refused = expect_problem(
        patch_me(&app, bot["token"].as_str().unwrap(), &json!({"display_name": "bot"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(refused["code"], "insufficient_scope");
}

async fn a_password_change_ends_every_other_session(app: TestApp) {
    let alice = app.new_user().await;
    let other = expect_json(app.login(&alice.username, &alice.password).await, StatusCode::OK).await;
    let other_token = other["access_token"].as_str().unwrap();
    let mut other_ws = app.ws(other_token).await;
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    let wrong = app.post("/api/v1/me/password", Some(&alice.token), &change("not-my-password", "brand new pw")).await;
    assert_eq!(expect_problem(wrong, StatusCode::FORBIDDEN).await["code"], "invalid_credentials");
    let short = app.post("/api/v1/me/password", Some(&alice.token), &change(&alice.password, "short")).await;
    assert_eq!(expect_problem(short, StatusCode::UNPROCESSABLE_ENTITY).await["code"], "validation_failed");
    expect_status(app.me(other_token).await, StatusCode::OK).await;

    let done = app.post("/api/v1/me/password", Some(&alice.token), &change(&alice.password, "brand new pw")).await;
    expect_status(done, StatusCode::NO_CONTENT).await;
    // This session stays; the other ends, socket and all.
    expect_status(app.me(&alice.token).await, StatusCode::OK).await;
    assert_eq!(expect_problem(app.me(other_token).await, StatusCode::UNAUTHORIZED).await["code"], "session_ended");
    let (_, code) = other_ws.read_to_close(Duration::from_secs(5)).await;
    assert_eq!(code, Some(4001));
    expect_problem(app.login(&alice.username, &alice.password).await, StatusCode::UNAUTHORIZED).await;
    expect_status(app.login(&alice.username, "brand new pw").await, StatusCode::OK).await;
}

async fn find(app: &TestApp, token: &str, query: &str) -> reqwest::Response {
    app.get(&format!("/api/v1/users?{query}"), Some(token)).await
}

async fn people_are_found_by_the_start_of_their_names(app: TestApp) {
    let tag = format!("z{}", rand::random::<u32>());
    let mut made = Vec::new();
    for i in 0..22 {
        let username = format!("{tag}_{i:02}");
        let body = json!({"username": username, "password": "long enough pw", "display_name": format!("Person {i}")});
        expect_status(app.register(&body).await, StatusCode::CREATED).await;
        made.push(username);
    }
    let display =
        json!({"username": format!("x{tag}"), "password": "long enough pw", "display_name": format!("{tag} Display")});
    expect_status(app.register(&display).await, StatusCode::CREATED).await;
    let searcher = app.new_user().await;

    let found =
        expect_json(find(&app, &searcher.token, &format!("q={}", tag.to_uppercase())).await, StatusCode::OK).await;
    let names: Vec<&str> = items(&found).iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 20, "at most 20: {names:?}");
    // By username, the one found by display name among them (its username is `x<tag>`).
    let display_user = format!("x{tag}");
    let expected: Vec<&str> =
        std::iter::once(display_user.as_str()).chain(made[..19].iter().map(String::as_str)).collect();
    assert_eq!(names, expected);
    // By display name too (any case), and only at the start.
    let by_display = expect_json(find(&app, &searcher.token, &format!("q={}%20disp", tag)).await, StatusCode::OK).await;
    assert_eq!(items(&by_display).len(), 1, "{by_display}");
    let middle = expect_json(find(&app, &searcher.token, &format!("q={}", &tag[1..])).await, StatusCode::OK).await;
    assert!(items(&middle).iter().all(|u| !u["username"].as_str().unwrap().starts_with(&tag)), "{middle}");
    // `%` and `_` are text, not patterns.
    let pattern =
        expect_json(find(&app, &searcher.token, &format!("q={}", percent_encode("%"))).await, StatusCode::OK).await;
    assert!(items(&pattern).is_empty(), "{pattern}");
    let limited = expect_json(find(&app, &searcher.token, &format!("q={tag}&limit=5")).await, StatusCode::OK).await;
    assert_eq!(items(&limited).len(), 5);
    for bad in [
        "q=",
        "limit=5",
        &format!("q={tag}&limit=21"),
        &format!("q={tag}&limit=0"),
        &format!("q={}", "a".repeat(65)),
        "q=%00",
    ] {
        let problem = expect_problem(find(&app, &searcher.token, bad).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["code"], "invalid_query", "{bad}: {problem}");
    }
    expect_problem(app.get(&format!("/api/v1/users?q={tag}"), None).await, StatusCode::UNAUTHORIZED).await;
}

async fn finding_people_is_rate_limited(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    for _ in 0..LOOKUPS {
        expect_status(find(&app, &alice.token, "q=a").await, StatusCode::OK).await;
    }
    let refused = find(&app, &alice.token, "q=a").await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(expect_problem(refused, StatusCode::TOO_MANY_REQUESTS).await["code"], "rate_limited");
    // Per user: Bob is not held back by Alice's searches.
    expect_status(find(&app, &bob.token, "q=a").await, StatusCode::OK).await;
}

/// CONTRACT-2 "Rooms": invite codes carry 128 bits and guessing is rate-limited (per user, with the
/// lookups): a guesser gets 404s, then 429, while an honest invitee is not held back.
async fn guessing_invite_codes_is_rate_limited(app: TestApp) {
    let (owner, guesser, invitee) = (app.new_user().await, app.new_user().await, app.new_user().await);
    let room = app.room_id(&owner, "private").await;
    let made = app.post(&format!("/api/v1/rooms/{room}/invites"), Some(&owner.token), &json!({})).await;
    let code = expect_json(made, StatusCode::CREATED).await["code"].as_str().unwrap().to_owned();
    for i in 0..LOOKUPS {
        let path = if i % 2 == 0 {
            format!("/api/v1/invites/guess{i:017}")
        } else {
            format!("/api/v1/invites/guess{i:017}/accept")
        };
        let resp = if i % 2 == 0 {
            app.get(&path, Some(&guesser.token)).await
        } else {
            app.post(&path, Some(&guesser.token), &json!({})).await
        };
        assert_eq!(expect_problem(resp, StatusCode::NOT_FOUND).await["code"], "invite_not_found");
    }
    let refused = app.get(&format!("/api/v1/invites/{code}"), Some(&guesser.token)).await;
    assert_eq!(
        expect_problem(refused, StatusCode::TOO_MANY_REQUESTS).await["code"],
        "rate_limited",
        "even a right guess"
    );
    let accepted = app.post(&format!("/api/v1/invites/{code}/accept"), Some(&invitee.token), &json!({})).await;
    assert_eq!(expect_json(accepted, StatusCode::OK).await["id"], room);
}

async fn a_deleted_account_is_gone_but_its_conversations_stay_readable(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let room = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room).await, StatusCode::OK).await;
    app.send(&alice, room, "remember me").await;
    let bot = app.api_token(&alice, &["messages:write"]).await;
    let other = expect_json(app.login(&alice.username, &alice.password).await, StatusCode::OK).await;
    let mut alice_ws = app.ws(other["access_token"].as_str().unwrap()).await;
    let mut bob_ws = app.ws(&bob.token).await;
    bob_ws.subscribe(room, None).await;

    let wrong =
        app.request(Method::DELETE, "/api/v1/me", Some(&alice.token), Some(&json!({"password": "not it"}))).await;
    assert_eq!(expect_problem(wrong, StatusCode::FORBIDDEN).await["code"], "invalid_credentials");
    let done =
        app.request(Method::DELETE, "/api/v1/me", Some(&alice.token), Some(&json!({"password": alice.password}))).await;
    expect_status(done, StatusCode::NO_CONTENT).await;

    // Every credential ends at once: sessions, sockets, API tokens; the password no longer signs in.
    expect_problem(app.me(&alice.token).await, StatusCode::UNAUTHORIZED).await;
    expect_problem(app.me(bot["token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED).await;
    let (_, code) = alice_ws.read_to_close(Duration::from_secs(5)).await;
    assert_eq!(code, Some(4001));
    expect_problem(app.login(&alice.username, &alice.password).await, StatusCode::UNAUTHORIZED).await;
    // Her room passed to Bob, who saw her leave; her message stays, under a name nobody can take.
    let left = bob_ws.expect("member_left").await;
    assert_eq!(left["user"]["id"], alice.id, "{left}");
    let members = expect_json(app.members(&bob.token, room).await, StatusCode::OK).await;
    let roles: Vec<(i64, String)> = items(&members)
        .iter()
        .map(|m| (m["user"]["id"].as_i64().unwrap(), m["role"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(roles, [(bob.id, "owner".to_owned())]);
    let history = expect_json(app.history(&bob.token, room, "").await, StatusCode::OK).await;
    let author = &items(&history)[0]["author"];
    assert_eq!(
        (author["id"].as_i64(), author["username"].clone(), author["display_name"].clone(), author["deleted"].clone()),
        (Some(alice.id), json!(format!("deleted-{}", alice.id)), Value::Null, json!(true))
    );
    assert_eq!(items(&history)[0]["body"], "remember me");
    // Her name stays taken (30 days), and she is not found any more.
    let again = app.register(&json!({"username": alice.username, "password": "long enough pw"})).await;
    assert_eq!(expect_problem(again, StatusCode::CONFLICT).await["code"], "username_taken");
    let found =
        expect_json(app.get(&format!("/api/v1/users?q={}", alice.username), Some(&bob.token)).await, StatusCode::OK)
            .await;
    assert!(items(&found).is_empty(), "{found}");
    let found = expect_json(app.get("/api/v1/users?q=deleted-", Some(&bob.token)).await, StatusCode::OK).await;
    assert!(items(&found).is_empty(), "{found}");
    // Everyone else shows as not deleted.
    assert_eq!(expect_json(app.me(&bob.token).await, StatusCode::OK).await["deleted"], false);
}

async fn an_export_holds_what_the_caller_wrote_and_where(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let room = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room).await, StatusCode::OK).await;
    app.send(&alice, room, "mine").await;
    app.send(&bob, room, "not hers").await;
    app.send(&alice, room, "mine too").await;
    let resp = app.get("/api/v1/me/export", Some(&alice.token)).await;
    let disposition =
        resp.headers().get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let data = expect_json(resp, StatusCode::OK).await;
    assert_eq!(data["user"]["id"], alice.id);
    let bodies: Vec<&str> = data["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["mine", "mine too"]);
    assert_eq!(data["rooms"][0]["id"], room);
    assert_eq!(
        (data["memberships"][0]["room_id"].as_i64(), data["memberships"][0]["member"]["role"].as_str()),
        (Some(room), Some("owner"))
    );
    let bot = app.api_token(&alice, &["rooms:read", "messages:read"]).await;
    let refused =
        expect_problem(app.get("/api/v1/me/export", bot["token"].as_str()).await, StatusCode::FORBIDDEN).await;
    assert_eq!(refused["code"], "insufficient_scope");
}

async fn a_blocked_user_cannot_reach_the_blocker(app: TestApp) {
    let (alice, bob, carol) = (app.new_user().await, app.new_user().await, app.new_user().await);
    // A direct room exists already, and a shared public room.
    let direct = expect_json(app.direct(&bob.token, &alice.username).await, StatusCode::OK).await;
    let direct_id = direct["id"].as_i64().unwrap();
    app.send(&bob, direct_id, "hello before").await;
    let shared = app.room_id(&carol, "public").await;
    for user in [&alice, &bob] {
        expect_status(app.join_room(&user.token, shared).await, StatusCode::OK).await;
    }
    let mut alice_ws = app.ws(&alice.token).await;
    alice_ws.subscribe(shared, None).await;
    let mut carol_ws = app.ws(&carol.token).await;
    carol_ws.subscribe(shared, None).await;
    let mut bob_ws = app.ws(&bob.token).await;
    bob_ws.subscribe(shared, None).await;

    let blocked = expect_json(
        app.post("/api/v1/me/blocks", Some(&alice.token), &json!({"username": bob.username})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(blocked["id"], bob.id);
    let again = app.post("/api/v1/me/blocks", Some(&alice.token), &json!({"username": bob.username})).await;
    expect_status(again, StatusCode::CREATED).await;
    let me = app.post("/api/v1/me/blocks", Some(&alice.token), &json!({"username": alice.username})).await;
    assert_eq!(expect_problem(me, StatusCode::UNPROCESSABLE_ENTITY).await["code"], "validation_failed");
    let listed = expect_json(app.get("/api/v1/me/blocks", Some(&alice.token)).await, StatusCode::OK).await;
    assert_eq!(items(&listed).len(), 1);

    // Bob cannot send into their direct room (REST or socket), nor open it again; Alice still can.
    let refused = app.post_message(&bob.token, direct_id, &json!({"body": "are you there?"})).await;
    assert_eq!(expect_problem(refused, StatusCode::FORBIDDEN).await["code"], "blocked");
    bob_ws.send(json!({"type": "send", "room_id": direct_id, "body": "hi", "client_id": "b-1"})).await;
    let frame = bob_ws.expect("error").await;
    assert_eq!(frame["code"], "blocked", "{frame}");
    let reopen = app.direct(&bob.token, &alice.username).await;
    assert_eq!(expect_problem(reopen, StatusCode::NOT_FOUND).await["code"], "user_not_found");
    expect_status(app.post_message(&alice.token, direct_id, &json!({"body": "I can"})).await, StatusCode::CREATED)
        .await;

    // In a shared room, Bob's typing reaches Carol but not Alice; his messages still reach both.
    bob_ws.send(json!({"type": "typing", "room_id": shared})).await;
    let typing = carol_ws.expect("typing").await;
    assert_eq!(typing["user"]["id"], bob.id);
    alice_ws.expect_silence(Duration::from_millis(400), "Bob's typing", |f| f["type"] == "typing").await;

    // Unblocked: everything works again.
    let path = format!("/api/v1/me/blocks/{}", bob.id);
    expect_status(app.request(Method::DELETE, &path, Some(&alice.token), None).await, StatusCode::NO_CONTENT).await;
    let gone = app.request(Method::DELETE, &path, Some(&alice.token), None).await;
    assert_eq!(expect_problem(gone, StatusCode::NOT_FOUND).await["code"], "block_not_found");
    expect_status(app.post_message(&bob.token, direct_id, &json!({"body": "thanks"})).await, StatusCode::CREATED).await;
}
