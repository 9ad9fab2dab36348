//! `GET /me/sessions`, `DELETE /me/sessions/{id}`, `POST /auth/logout-all` (CONTRACT-2 "Credentials"):
//! a user sees where they are signed in and signs out one device or all of them.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, expect_json, expect_problem, expect_status, items};

db_tests!(
    sessions_are_listed_with_their_device_and_the_current_one_marked,
    ending_a_session_signs_out_that_device_only,
    sign_out_everywhere_ends_every_session_and_socket,
    sessions_are_the_users_own_and_need_the_users_own_token,
);

/// Signs `user` in again with `agent` as its `User-Agent`; returns the new access and refresh tokens.
async fn sign_in_from(app: &TestApp, user: &TestUser, agent: &str) -> (String, String) {
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("User-Agent", agent)
        .json(&json!({"username": user.username, "password": user.password}))
        .send()
        .await
        .unwrap();
    let body = expect_json(resp, StatusCode::OK).await;
    (body["access_token"].as_str().unwrap().to_owned(), body["refresh_token"].as_str().unwrap().to_owned())
}

async fn sessions_of(app: &TestApp, token: &str) -> Vec<Value> {
    items(&expect_json(app.get("/api/v1/me/sessions", Some(token)).await, StatusCode::OK).await).clone()
}

async fn end_session(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.request(Method::DELETE, &format!("/api/v1/me/sessions/{id}"), Some(token), None).await
}

async fn sessions_are_listed_with_their_device_and_the_current_one_marked(app: TestApp) {
    let alice = app.new_user().await;
    let (phone, _) = sign_in_from(&app, &alice, "Phone/1.0").await;
    // Control characters are dropped and a long agent is cut at 256 characters.
    let (_, laptop_refresh) = sign_in_from(&app, &alice, &format!("Laptop\t{}", "x".repeat(400))).await;

    let listed = sessions_of(&app, &phone).await;
    assert_eq!(listed.len(), 3, "registration, phone and laptop: {listed:?}");
    let agents: Vec<&Value> = listed.iter().map(|s| &s["user_agent"]).collect();
    let laptop_agent = format!("Laptop{}", "x".repeat(250));
    assert_eq!(agents, [&json!(laptop_agent), &json!("Phone/1.0"), &Value::Null], "newest activity first");
    let current: Vec<bool> = listed.iter().map(|s| s["current"].as_bool().unwrap()).collect();
    assert_eq!(current, [false, true, false]);
    for s in &listed {
        assert!(s["id"].as_str().is_some_and(|id| !id.is_empty()), "{s}");
        assert_eq!(s["created_at"], s["last_used_at"], "not refreshed yet: {s}");
    }

    // A refresh keeps the session (same id, same start) and moves its last use.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let laptop_id = listed[0]["id"].clone();
    expect_status(app.refresh(&laptop_refresh).await, StatusCode::OK).await;
    let after = sessions_of(&app, &phone).await;
    assert_eq!(after.len(), 3, "{after:?}");
    let laptop = after.iter().find(|s| s["id"] == laptop_id).expect("the laptop's session is still listed");
    assert_eq!(laptop["created_at"], listed[0]["created_at"]);
    assert!(laptop["last_used_at"].as_str() > listed[0]["last_used_at"].as_str(), "{laptop}");
    assert_eq!(laptop["user_agent"], Value::Null, "this refresh sent no User-Agent");
}

async fn ending_a_session_signs_out_that_device_only(app: TestApp) {
    let alice = app.new_user().await;
    let (phone, phone_refresh) = sign_in_from(&app, &alice, "Phone/1.0").await;
    let mut phone_ws = app.ws(&phone).await;
    let listed = sessions_of(&app, &alice.token).await;
    let phone_id = listed.iter().find(|s| s["user_agent"] == "Phone/1.0").unwrap()["id"].as_str().unwrap().to_owned();

    expect_status(end_session(&app, &alice.token, &phone_id).await, StatusCode::NO_CONTENT).await;
    let problem = expect_problem(app.me(&phone).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(problem["code"], "session_ended", "{problem}");
    expect_problem(app.refresh(&phone_refresh).await, StatusCode::UNAUTHORIZED).await;
    let (_, code) = phone_ws.read_to_close(Duration::from_secs(5)).await;
    assert_eq!(code, Some(4001), "the ended session's socket closes with 4001");

    // This device is still signed in, and the ended session is no longer listed nor can be ended again.
    let left = sessions_of(&app, &alice.token).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["current"], true);
    let again = expect_problem(end_session(&app, &alice.token, &phone_id).await, StatusCode::NOT_FOUND).await;
    assert_eq!(again["code"], "session_not_found");
}

async fn sign_out_everywhere_ends_every_session_and_socket(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let (phone, phone_refresh) = sign_in_from(&app, &alice, "Phone/1.0").await;
    let mut sockets = vec![app.ws(&alice.token).await, app.ws(&phone).await];

    let resp = app.request(Method::POST, "/api/v1/auth/logout-all", Some(&phone), None).await;
    expect_status(resp, StatusCode::NO_CONTENT).await;
    for token in [&alice.token, &phone] {
        let problem = expect_problem(app.me(token).await, StatusCode::UNAUTHORIZED).await;
        assert_eq!(problem["code"], "session_ended", "{problem}");
    }
    for refresh in [&alice.refresh_token, &phone_refresh] {
        expect_problem(app.refresh(refresh).await, StatusCode::UNAUTHORIZED).await;
    }
    for ws in &mut sockets {
        let (_, code) = ws.read_to_close(Duration::from_secs(5)).await;
        assert_eq!(code, Some(4001));
    }
    // Someone else's sessions are untouched; signing in again works and starts a fresh list.
    expect_status(app.me(&bob.token).await, StatusCode::OK).await;
    let (fresh, _) = sign_in_from(&app, &alice, "Phone/2.0").await;
    let listed = sessions_of(&app, &fresh).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
}

async fn sessions_are_the_users_own_and_need_the_users_own_token(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let bobs = sessions_of(&app, &bob.token).await;
    let bobs_id = bobs[0]["id"].as_str().unwrap();
    // Alice cannot end Bob's session, nor learn whether an id exists: the same 404 for both.
    for id in [bobs_id, "no-such-session", &"x".repeat(2000)] {
        let problem = expect_problem(end_session(&app, &alice.token, id).await, StatusCode::NOT_FOUND).await;
        assert_eq!(problem["code"], "session_not_found", "{problem}");
    }
    expect_status(app.me(&bob.token).await, StatusCode::OK).await;

    // API tokens cannot see or end sessions, even with every scope.
    let bot = app.api_token(&alice, &["rooms:read", "messages:read", "messages:write"]).await;
    let bot = bot["token"].as_str().unwrap();
    for resp in [
        app.get("/api/v1/me/sessions", Some(bot)).await,
        end_session(&app, bot, bobs_id).await,
        app.request(Method::POST, "/api/v1/auth/logout-all", Some(bot), None).await,
    ] {
        let problem = expect_problem(resp, StatusCode::FORBIDDEN).await;
        assert_eq!(problem["code"], "insufficient_scope", "{problem}");
    }
    // Without a token: 401.
    expect_problem(app.get("/api/v1/me/sessions", None).await, StatusCode::UNAUTHORIZED).await;
    expect_problem(app.request(Method::POST, "/api/v1/auth/logout-all", None, None).await, StatusCode::UNAUTHORIZED)
        .await;
    expect_status(app.me(&alice.token).await, StatusCode::OK).await;
}
