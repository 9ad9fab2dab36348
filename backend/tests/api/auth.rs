//! `/auth/register`, `/auth/login`, `/auth/refresh`, `/auth/logout`, `/me`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    JWT_SECRET, TestApp, assert_token_response, assert_user, expect_json, expect_problem, expect_status,
    random_username,
};

db_tests!(
    register_returns_token_response,
    register_without_display_name,
    register_lowercases_username,
    login_returns_token_response,
    login_failure_does_not_say_which_part_was_wrong,
    me_returns_the_user,
    refresh_rotates_the_pair,
    reusing_a_spent_refresh_token_revokes_the_family,
    logout_ends_the_refresh_token,
    garbage_refresh_token_is_401,
);

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    iat: i64,
}

async fn register_returns_token_response(app: TestApp) {
    let username = random_username();
    let body = json!({"username": username, "password": "correct horse", "display_name": "Alice Liddell"});
    let t = expect_json(app.register(&body).await, StatusCode::CREATED).await;
    assert_token_response(&t);
    assert_eq!(t["user"]["username"], username.as_str());
    assert_eq!(t["user"]["display_name"], "Alice Liddell");

    // The access token is an HS256 JWT for this user, valid for expires_in seconds.
    let access = t["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(access).expect("a JWT header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    let claims = jsonwebtoken::decode::<Claims>(
        access,
        &jsonwebtoken::DecodingKey::from_secret(JWT_SECRET.as_bytes()),
        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
    )
    .expect("the access token verifies with the server's key")
    .claims;
    assert_eq!(claims.sub, t["user"]["id"].as_i64().unwrap().to_string(), "sub is the user id");
    assert!((890..=910).contains(&(claims.exp - claims.iat)), "exp - iat is about 900 s: {}", claims.exp - claims.iat);
    let now = chrono::Utc::now().timestamp();
    assert!((claims.iat - now).abs() <= 60, "iat is now");

    // The access token works at once.
    let me = expect_json(app.me(access).await, StatusCode::OK).await;
    assert_eq!(me, t["user"]);
}

async fn register_without_display_name(app: TestApp) {
    let username = random_username();
    let t =
        expect_json(app.register(&json!({"username": username, "password": "password1"})).await, StatusCode::CREATED)
            .await;
    assert_token_response(&t);
    assert_eq!(t["user"]["username"], username.as_str());
}

async fn register_lowercases_username(app: TestApp) {
    let mixed = format!("Al_{}", &random_username()[1..]).to_uppercase().replacen("AL_", "Al_", 1);
    let lower = mixed.to_lowercase();
    assert_ne!(mixed, lower);
    let t = expect_json(app.register(&json!({"username": mixed, "password": "password1"})).await, StatusCode::CREATED)
        .await;
    assert_eq!(t["user"]["username"], lower.as_str(), "stored lowercased");

    // The lowercase name is the same user: taken.
    let conflict =
        expect_problem(app.register(&json!({"username": lower, "password": "password2"})).await, StatusCode::CONFLICT)
            .await;
    assert!(!conflict["code"].as_str().unwrap().is_empty());
    // And so is any other casing.
    expect_problem(
        app.register(&json!({"username": lower.to_uppercase(), "password": "password2"})).await,
        StatusCode::CONFLICT,
    )
    .await;

    // Logging in with either casing finds the one user; the conflicting registrations changed nothing.
    for name in [&lower, &mixed] {
        let l = expect_json(app.login(name, "password1").await, StatusCode::OK).await;
        assert_eq!(l["user"]["id"], t["user"]["id"]);
    }
    expect_problem(app.login(&lower, "password2").await, StatusCode::UNAUTHORIZED).await;
}

async fn login_returns_token_response(app: TestApp) {
    let user = app.new_user().await;
    let t = expect_json(app.login(&user.username, &user.password).await, StatusCode::OK).await;
    assert_token_response(&t);
    assert_eq!(t["user"], user.user);
    assert_ne!(t["refresh_token"], user.refresh_token.as_str(), "each login gets its own refresh token");
    let me = expect_json(app.me(t["access_token"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(me["id"], user.id);
    // The refresh token from the login works.
    expect_json(app.refresh(t["refresh_token"].as_str().unwrap()).await, StatusCode::OK).await;
}

async fn login_failure_does_not_say_which_part_was_wrong(app: TestApp) {
    let user = app.new_user().await;
    let wrong_password =
        expect_problem(app.login(&user.username, "not-the-password").await, StatusCode::UNAUTHORIZED).await;
    let unknown_user =
        expect_problem(app.login(&random_username(), "not-the-password").await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(wrong_password, unknown_user, "the same body for a wrong password and an unknown user");
}

async fn me_returns_the_user(app: TestApp) {
    let user = app.new_user().await;
    let me = expect_json(app.me(&user.token).await, StatusCode::OK).await;
    assert_user(&me);
    assert_eq!(me["id"], user.id);
    assert_eq!(me["username"], user.username.as_str());
    assert_eq!(me, user.user, "/me is the User returned at registration");
}

async fn refresh_rotates_the_pair(app: TestApp) {
    let user = app.new_user().await;
    let t = expect_json(app.refresh(&user.refresh_token).await, StatusCode::OK).await;
    assert_token_response(&t);
    assert_eq!(t["user"]["id"], user.id);
    let new_refresh = t["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, user.refresh_token, "a new refresh token");

    // The new access token works.
    let me = expect_json(app.me(t["access_token"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(me["id"], user.id);

    // The old refresh token is spent.
    expect_problem(app.refresh(&user.refresh_token).await, StatusCode::UNAUTHORIZED).await;

    // A fresh login starts a separate family, untouched by the reuse above.
    let login = expect_json(app.login(&user.username, &user.password).await, StatusCode::OK).await;
    let again = expect_json(app.refresh(login["refresh_token"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_token_response(&again);
}

async fn reusing_a_spent_refresh_token_revokes_the_family(app: TestApp) {
    let user = app.new_user().await;
    let second: Value = expect_json(app.refresh(&user.refresh_token).await, StatusCode::OK).await;
    let second_refresh = second["refresh_token"].as_str().unwrap();

    // Someone replays the first (spent) token: refused, and the whole family is revoked...
    expect_problem(app.refresh(&user.refresh_token).await, StatusCode::UNAUTHORIZED).await;
    // ...so the legitimate newer token no longer works either.
    expect_problem(app.refresh(second_refresh).await, StatusCode::UNAUTHORIZED).await;
}

async fn logout_ends_the_refresh_token(app: TestApp) {
    let user = app.new_user().await;
    expect_status(app.logout(&user.token, &user.refresh_token).await, StatusCode::NO_CONTENT).await;
    expect_problem(app.refresh(&user.refresh_token).await, StatusCode::UNAUTHORIZED).await;
    // Logging in again works.
    expect_json(app.login(&user.username, &user.password).await, StatusCode::OK).await;
}

async fn garbage_refresh_token_is_401(app: TestApp) {
    expect_problem(app.refresh("not-a-refresh-token").await, StatusCode::UNAUTHORIZED).await;
}
