//! Incoming hooks (CONTRACT-2 "Webhooks", incoming): made, listed and deleted by a room's owner and admins;
//! a POST of Slack's `{"text", "username"?}` to the secret URL posts into the room as the hook's creator,
//! `via` the hook, under the rules and limits of any send; a deleted hook stops at once.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, expect_json, expect_problem, expect_status, items, private_room_with_roles};

db_tests!(
    a_moderators_hook_posts_slack_style_messages_into_the_room,
    hooks_are_made_listed_and_deleted_by_moderators_only,
    bad_posts_are_refused_and_a_deleted_hook_stops_at_once,
    a_hook_posts_under_its_creators_membership,
);

db_tests_configured!(tight_user_limit => a_hook_shares_its_creators_rate_limit);

fn tight_user_limit(config: &mut backend::config::Config) {
    config.rate_limits.per_user = Some(backend::config::Rate::per_minute(20));
}

async fn create_hook(app: &TestApp, token: &str, room_id: i64, name: &str) -> reqwest::Response {
    app.post(&format!("/api/v1/rooms/{room_id}/hooks"), Some(token), &json!({"name": name})).await
}

async fn make_hook(app: &TestApp, user: &TestUser, room_id: i64, name: &str) -> Value {
    expect_json(create_hook(app, &user.token, room_id, name).await, StatusCode::CREATED).await
}

async fn post_to(app: &TestApp, hook: &Value, body: &Value) -> reqwest::Response {
    app.post(hook["url"].as_str().unwrap(), None, body).await
}

async fn latest(app: &TestApp, user: &TestUser, room_id: i64) -> Value {
    let page = app.history_page(&user.token, room_id, "limit=1").await;
    items(&page).last().cloned().unwrap_or(Value::Null)
}

async fn a_moderators_hook_posts_slack_style_messages_into_the_room(app: TestApp) {
    let r = private_room_with_roles(&app).await;
    let mut carols_socket = app.ws(&r.carol.token).await;
    carols_socket.subscribe(r.id, None).await;

    let hook = make_hook(&app, &r.bob, r.id, "CI").await;
    let url = hook["url"].as_str().unwrap();
    assert!(url.starts_with("/api/v1/hooks/chat_hook_") && url.len() > 50, "{hook}");
    assert_eq!(hook["name"], "CI");

    // What Slack's clients send: text, an optional username, and fields we ignore.
    let slack = json!({"text": "Build #42 passed", "username": "ci-bot", "icon_emoji": ":ok:"});
    assert_eq!(expect_json(post_to(&app, &hook, &slack).await, StatusCode::OK).await, json!({"ok": true}));
    let message = carols_socket.expect("message").await["message"].clone();
    assert_eq!(
        (&message["body"], &message["via"], &message["author"]["id"]),
        (&json!("Build #42 passed"), &json!("ci-bot"), &json!(r.bob.id))
    );
    expect_json(post_to(&app, &hook, &json!({"text": "Deploy done"})).await, StatusCode::OK).await;
    let stored = latest(&app, &r.alice, r.id).await;
    assert_eq!((&stored["body"], &stored["via"], &stored["seq"]), (&json!("Deploy done"), &json!("CI"), &json!(2)));
    // Slack's form style: the JSON in a `payload` field.
    let form = app.client.post(app.url(url)).header("content-type", "application/x-www-form-urlencoded");
    let sent = form.body("payload=%7B%22text%22%3A%22Tests%20green%22%2C%22username%22%3A%22jenkins%22%7D").send();
    assert_eq!(expect_json(sent.await.unwrap(), StatusCode::OK).await, json!({"ok": true}));
    let stored = latest(&app, &r.alice, r.id).await;
    assert_eq!((&stored["body"], &stored["via"]), (&json!("Tests green"), &json!("jenkins")));
    // A message written by a person says so.
    app.send(&r.carol, r.id, "thanks, CI").await;
    assert_eq!(latest(&app, &r.alice, r.id).await["via"], Value::Null);

    // Listed without the secret, with its creator and last use.
    let list =
        expect_json(app.get(&format!("/api/v1/rooms/{}/hooks", r.id), Some(&r.alice.token)).await, StatusCode::OK)
            .await;
    let listed = &items(&list)[0];
    assert_eq!(
        (&listed["id"], &listed["name"], &listed["created_by"]["id"]),
        (&hook["id"], &json!("CI"), &json!(r.bob.id))
    );
    assert!(listed["last_used_at"].is_string() && listed.get("url").is_none(), "{listed}");
    assert!(!list.to_string().contains(url.trim_start_matches("/api/v1/hooks/")), "the secret is shown once");
}

async fn hooks_are_made_listed_and_deleted_by_moderators_only(app: TestApp) {
    let r = private_room_with_roles(&app).await;
    let outsider = app.new_user().await;
    let hooks = format!("/api/v1/rooms/{}/hooks", r.id);
    // A member may not; an outsider does not see the room; no token, no hook; an API token is not a session.
    let problem = expect_problem(create_hook(&app, &r.carol.token, r.id, "mine").await, StatusCode::FORBIDDEN).await;
    assert_eq!(problem["code"], "not_a_moderator");
    expect_problem(app.get(&hooks, Some(&r.carol.token)).await, StatusCode::FORBIDDEN).await;
    let problem = expect_problem(create_hook(&app, &outsider.token, r.id, "x").await, StatusCode::NOT_FOUND).await;
    assert_eq!(problem["code"], "room_not_found");
    expect_problem(app.post(&hooks, None, &json!({"name": "x"})).await, StatusCode::UNAUTHORIZED).await;
    let bot = app.api_token(&r.alice, &["rooms:read", "messages:read", "messages:write"]).await;
    let problem =
        expect_problem(create_hook(&app, bot["token"].as_str().unwrap(), r.id, "x").await, StatusCode::FORBIDDEN).await;
    assert_eq!(problem["code"], "insufficient_scope");
    // Names: 1-64 characters, no control characters.
    for name in ["", "   ", &"n".repeat(65)] {
        let problem =
            expect_problem(create_hook(&app, &r.alice.token, r.id, name).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["field"], "name", "{problem}");
    }
    expect_problem(create_hook(&app, &r.alice.token, r.id, "a\u{7}b").await, StatusCode::UNPROCESSABLE_ENTITY).await;

    // The owner and an admin may, and delete each other's.
    let owners = make_hook(&app, &r.alice, r.id, "alerts").await;
    let admins = make_hook(&app, &r.bob, r.id, "CI").await;
    let list = expect_json(app.get(&hooks, Some(&r.bob.token)).await, StatusCode::OK).await;
    assert_eq!(items(&list).iter().map(|h| h["name"].as_str().unwrap()).collect::<Vec<_>>(), ["CI", "alerts"]);
    let delete = |who: &TestUser, hook: &Value| {
        let path = format!("{hooks}/{}", hook["id"]);
        let token = who.token.clone();
        let app = &app;
        async move { app.request(Method::DELETE, &path, Some(&token), None).await }
    };
    expect_problem(delete(&r.carol, &owners).await, StatusCode::FORBIDDEN).await;
    expect_status(delete(&r.bob, &owners).await, StatusCode::NO_CONTENT).await;
    expect_status(delete(&r.alice, &admins).await, StatusCode::NO_CONTENT).await;
    let problem = expect_problem(delete(&r.alice, &admins).await, StatusCode::NOT_FOUND).await;
    assert_eq!(problem["code"], "hook_not_found");
    // Another room's hook cannot be deleted through this room.
    let other = app.room_id(&r.alice, "public").await;
    let elsewhere = make_hook(&app, &r.alice, other, "elsewhere").await;
    expect_problem(delete(&r.alice, &elsewhere).await, StatusCode::NOT_FOUND).await;
    expect_json(post_to(&app, &elsewhere, &json!({"text": "still works"})).await, StatusCode::OK).await;

    // The room's audit log names each hook made and deleted, and who did it.
    let audit = app.get(&format!("/api/v1/rooms/{}/audit?limit=100", r.id), Some(&r.alice.token)).await;
    let audit = expect_json(audit, StatusCode::OK).await;
    let logged: Vec<(String, i64, String)> = items(&audit)
        .iter()
        .filter(|e| e["action"].as_str().is_some_and(|a| a.starts_with("webhook_")))
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"]["id"].as_i64().unwrap(),
                e["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("webhook_deleted", r.alice.id, "incoming hook “CI”"),
        ("webhook_deleted", r.bob.id, "incoming hook “alerts”"),
        ("webhook_created", r.bob.id, "incoming hook “CI”"),
        ("webhook_created", r.alice.id, "incoming hook “alerts”"),
    ];
    let expected: Vec<(String, i64, String)> =
        expected.iter().map(|(a, id, d)| (a.to_string(), *id, d.to_string())).collect();
    assert_eq!(logged, expected);
}

async fn bad_posts_are_refused_and_a_deleted_hook_stops_at_once(app: TestApp) {
    let r = private_room_with_roles(&app).await;
    let hook = make_hook(&app, &r.alice, r.id, "CI").await;
    let url = hook["url"].as_str().unwrap();
    for (body, field) in [
        (json!({"text": ""}), "text"),
        (json!({"text": " \n "}), "text"),
        (json!({"text": "x".repeat(4001)}), "text"),
        (json!({"text": "ok", "username": "u".repeat(65)}), "username"),
        (json!({"blocks": []}), "text"),
    ] {
        let problem = expect_problem(post_to(&app, &hook, &body).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(problem.to_string().contains(field), "{field}: {problem}");
    }
    let problem =
        expect_problem(post_to(&app, &hook, &json!({"text": "a\u{0}b"})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["code"], "invalid_text");
    let malformed = app.client.post(app.url(url)).header("content-type", "application/json").body("{\"text\":").send();
    expect_problem(malformed.await.unwrap(), StatusCode::BAD_REQUEST).await;
    // Forms (Slack's older `payload=` style): without the field, or with something else than JSON in it.
    for form in ["text=hi", "payload=%7B%22text%22%3A", "payload=%5B%5D"] {
        let resp = app.client.post(app.url(url)).header("content-type", "application/x-www-form-urlencoded").body(form);
        let status = resp.send().await.unwrap().status();
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY, "{form}: {status}");
    }
    let plain = app.client.post(app.url(url)).header("content-type", "text/plain").body("{\"text\": \"hi\"}");
    expect_problem(plain.send().await.unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert_eq!(latest(&app, &r.alice, r.id).await, Value::Null, "nothing was posted");

    // Guessed and mangled secrets.
    for bad in ["/api/v1/hooks/chat_hook_guess", &format!("{url}x"), &url[..url.len() - 1]] {
        let problem = expect_problem(app.post(bad, None, &json!({"text": "hi"})).await, StatusCode::NOT_FOUND).await;
        assert_eq!(problem["code"], "hook_not_found");
    }

    expect_json(post_to(&app, &hook, &json!({"text": "before"})).await, StatusCode::OK).await;
    let path = format!("/api/v1/rooms/{}/hooks/{}", r.id, hook["id"]);
    expect_status(app.request(Method::DELETE, &path, Some(&r.alice.token), None).await, StatusCode::NO_CONTENT).await;
    let problem = expect_problem(post_to(&app, &hook, &json!({"text": "after"})).await, StatusCode::NOT_FOUND).await;
    assert_eq!(problem["code"], "hook_not_found");
    assert_eq!(latest(&app, &r.alice, r.id).await["body"], "before", "the message stays, via the deleted hook");
}

async fn a_hook_posts_under_its_creators_membership(app: TestApp) {
    let r = private_room_with_roles(&app).await;
    let hook = make_hook(&app, &r.bob, r.id, "CI").await;
    // Bob removed from the (private) room: his hook cannot post there, as he could not.
    let path = format!("/api/v1/rooms/{}/members/{}", r.id, r.bob.id);
    expect_status(app.request(Method::DELETE, &path, Some(&r.alice.token), None).await, StatusCode::NO_CONTENT).await;
    let problem = expect_problem(post_to(&app, &hook, &json!({"text": "hi"})).await, StatusCode::NOT_FOUND).await;
    assert_eq!(problem["code"], "room_not_found");
    let resp = app.post_message(&r.bob.token, r.id, &json!({"body": "hi"})).await;
    assert_eq!(
        expect_problem(resp, StatusCode::NOT_FOUND).await["code"],
        "room_not_found",
        "the same answer as his own send"
    );
    // An account deleted takes its hooks with it.
    let alices = make_hook(&app, &r.alice, r.id, "alerts").await;
    let deleted = app
        .request(Method::DELETE, "/api/v1/me", Some(&r.alice.token), Some(&json!({"password": r.alice.password})))
        .await;
    expect_status(deleted, StatusCode::NO_CONTENT).await;
    let problem = expect_problem(post_to(&app, &alices, &json!({"text": "hi"})).await, StatusCode::NOT_FOUND).await;
    assert_eq!(problem["code"], "hook_not_found");
}

async fn a_hook_shares_its_creators_rate_limit(app: TestApp) {
    let r = private_room_with_roles(&app).await;
    let hook = make_hook(&app, &r.alice, r.id, "alerts").await;
    let mut statuses = Vec::new();
    for i in 0..20 {
        statuses.push(post_to(&app, &hook, &json!({"text": format!("alert {i}")})).await.status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "a flood through the hook is limited: {statuses:?}");
    // The creator's own requests count in the same budget.
    let resp = app.history(&r.alice.token, r.id, "").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Across nodes: a post through node B reaches a socket on node A.
mod postgres_cluster {
    use reqwest::StatusCode;
    use serde_json::json;

    use super::{make_hook, post_to};
    use crate::cluster::{Cluster, NodeOptions};
    use crate::helpers::{expect_json, private_room_with_roles};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster_a_post_through_one_node_reaches_sockets_on_the_other() {
        let Some(cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let (a, b) = (cluster.app(0), cluster.app(1));
        let r = private_room_with_roles(a).await;
        let mut on_a = a.ws(&r.carol.token).await;
        on_a.subscribe(r.id, None).await;
        let hook = make_hook(a, &r.alice, r.id, "CI").await;
        expect_json(post_to(b, &hook, &json!({"text": "through B"})).await, StatusCode::OK).await;
        let message = on_a.expect("message").await["message"].clone();
        assert_eq!((&message["body"], &message["via"]), (&json!("through B"), &json!("CI")));
    }
}
