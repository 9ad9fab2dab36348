//! API tokens for external systems: `POST /tokens`, `GET /tokens`, `DELETE /tokens/{id}`, scopes.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_time, expect_json, expect_problem, expect_status, id_of, items};

db_tests!(
    create_token_shows_the_secret_once,
    token_with_expiry_has_expires_at,
    list_tokens_has_no_secret,
    token_acts_as_its_user,
    token_without_scope_gets_403,
    revoked_token_is_refused_at_once,
    cannot_revoke_another_users_token,
);

async fn create_token_shows_the_secret_once(app: TestApp) {
    let user = app.new_user().await;
    let body = json!({"name": "ci bot", "scopes": ["messages:write", "rooms:read"]});
    let t = expect_json(app.create_token(&user.token, &body).await, StatusCode::CREATED).await;
    assert!(t["id"].is_i64(), "id is an integer: {t}");
    assert_eq!(t["name"], "ci bot");
    let mut scopes: Vec<&str> =
        t["scopes"].as_array().expect("scopes array").iter().map(|s| s.as_str().unwrap()).collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["messages:write", "rooms:read"]);
    let secret = t["token"].as_str().expect("token is a string");
    assert!(secret.starts_with("chat_") && secret.len() > 20, "an opaque chat_ token: {secret}");
    assert_time(&t["created_at"], "created_at");
    assert!(t.get("expires_at").is_some_and(|e| e.is_null() || e.is_string()), "expires_at is present: {t}");

    // Each token is its own secret.
    let other = app.api_token(&user, &["messages:write"]).await;
    assert_ne!(other["token"], t["token"]);
    assert_ne!(other["id"], t["id"]);
}

async fn token_with_expiry_has_expires_at(app: TestApp) {
    let user = app.new_user().await;
    let body = json!({"name": "short", "scopes": ["messages:read"], "expires_in_days": 30});
    let t = expect_json(app.create_token(&user.token, &body).await, StatusCode::CREATED).await;
    assert_time(&t["expires_at"], "expires_at");
    let created = chrono::DateTime::parse_from_rfc3339(t["created_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(t["expires_at"].as_str().unwrap()).unwrap();
    let days = (expires - created).num_hours() as f64 / 24.0;
    assert!((29.9..=30.1).contains(&days), "expires 30 days after creation, got {days} days");
}

async fn list_tokens_has_no_secret(app: TestApp) {
    let user = app.new_user().await;
    let created = app.api_token(&user, &["messages:read"]).await;
    let secret = created["token"].as_str().unwrap();

    let resp = app.list_tokens(&user.token).await;
    let text = expect_status(resp, StatusCode::OK).await;
    assert!(!text.contains(secret), "the list never shows the secret: {text}");
    let page: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let listed = items(&page);
    assert_eq!(listed.len(), 1, "{page}");
    let t = &listed[0];
    assert_eq!(t["id"], created["id"]);
    assert_eq!(t["name"], created["name"]);
    assert_eq!(t["scopes"], json!(["messages:read"]));
    assert_time(&t["created_at"], "created_at");
    assert!(t.get("token").is_none_or(|v| v.is_null()), "no `token` in the list: {t}");

    // Another user sees none of them.
    let other = app.new_user().await;
    let theirs = expect_json(app.list_tokens(&other.token).await, StatusCode::OK).await;
    assert!(items(&theirs).is_empty(), "{theirs}");
}

async fn token_acts_as_its_user(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "private").await;
    let t = app.api_token(&user, &["rooms:read", "messages:read", "messages:write"]).await;
    let secret = t["token"].as_str().unwrap();

    // It sees the user's private room, and posts as the user.
    let rooms = expect_json(app.list_rooms(secret, "").await, StatusCode::OK).await;
    assert!(items(&rooms).iter().any(|r| id_of(r) == room_id), "the user's room is listed: {rooms}");
    let msg =
        expect_json(app.post_message(secret, room_id, &json!({"body": "from the bot"})).await, StatusCode::CREATED)
            .await;
    assert_eq!(msg["author"]["id"], user.id);
    let page = app.history_page(secret, room_id, "").await;
    assert_eq!(items(&page).len(), 1);
    assert_eq!(items(&page)[0]["body"], "from the bot");
}

async fn token_without_scope_gets_403(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;
    let read_only = app.api_token(&user, &["messages:read", "rooms:read"]).await;
    let secret = read_only["token"].as_str().unwrap();

    let problem = expect_problem(
        app.post_message(secret, room_id, &json!({"body": "should not be posted"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(problem["code"], "insufficient_scope");
    // What the scopes allow still works, and nothing was posted.
    let page = app.history_page(secret, room_id, "").await;
    assert!(items(&page).is_empty(), "{page}");

    // A write-only token cannot read history.
    let write_only = app.api_token(&user, &["messages:write"]).await;
    let problem =
        expect_problem(app.history(write_only["token"].as_str().unwrap(), room_id, "").await, StatusCode::FORBIDDEN)
            .await;
    assert_eq!(problem["code"], "insufficient_scope");
}

async fn revoked_token_is_refused_at_once(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;
    let t = app.api_token(&user, &["messages:read", "messages:write"]).await;
    let secret = t["token"].as_str().unwrap();
    expect_json(app.history(secret, room_id, "").await, StatusCode::OK).await;

    expect_status(app.delete_token(&user.token, id_of(&t)).await, StatusCode::NO_CONTENT).await;

    expect_problem(app.history(secret, room_id, "").await, StatusCode::UNAUTHORIZED).await;
    expect_problem(app.post_message(secret, room_id, &json!({"body": "after revoke"})).await, StatusCode::UNAUTHORIZED)
        .await;
    // The user's own session is unaffected.
    expect_json(app.me(&user.token).await, StatusCode::OK).await;
}

async fn cannot_revoke_another_users_token(app: TestApp) {
    let owner = app.new_user().await;
    let room_id = app.room_id(&owner, "public").await;
    let t = app.api_token(&owner, &["messages:read"]).await;
    let mallory = app.new_user().await;

    let resp = app.delete_token(&mallory.token, id_of(&t)).await;
    assert!(resp.status().is_client_error(), "another user's token cannot be revoked: {}", resp.status());
    // Still works.
    expect_json(app.history(t["token"].as_str().unwrap(), room_id, "").await, StatusCode::OK).await;
}
