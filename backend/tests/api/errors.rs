//! Error responses: problem+json for malformed input, oversize bodies, validation, unknown resources and
//! bad credentials (forged, expired, `alg: none` JWTs).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{JWT_SECRET, TestApp, expect_json, expect_problem, expect_validation_error, random_username};

db_tests!(
    malformed_json_is_400,
    malformed_query_is_400,
    body_over_64_kib_is_413,
    register_validation_is_422,
    message_body_validation_is_422,
    message_body_limit_counts_characters,
    room_name_validation_is_422,
    unknown_room_is_404,
    unknown_route_is_404,
    wrong_method_is_405_with_allow,
    missing_or_garbage_token_is_401,
    forged_jwts_are_401,
);

async fn post_raw(app: &TestApp, path: &str, token: Option<&str>, body: impl Into<reqwest::Body>) -> reqwest::Response {
    let mut req = app.client.post(app.url(path)).header("content-type", "application/json").body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("send")
}

/// A method a route does not answer: 405 problem+json naming the ones it does (RFC 9110 requires
/// `Allow`; schemathesis's `unsupported_method` check found it missing).
async fn wrong_method_is_405_with_allow(app: TestApp) {
    let user = app.new_user().await;
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/api/v1/rooms", "GET, POST"),
        (reqwest::Method::PUT, "/api/v1/rooms/1/messages/1", "PATCH, DELETE"),
        (reqwest::Method::POST, "/healthz", "GET"),
        (reqwest::Method::TRACE, "/api/v1/me", "GET, PATCH, DELETE"),
    ] {
        let resp = app.request(method.clone(), path, Some(&user.token), None).await;
        let header = resp.headers().get("allow").and_then(|v| v.to_str().ok()).map(str::to_owned);
        // The problem replaces actix's empty 405 but keeps the headers the API's middlewares added.
        let rate_limited = path.starts_with("/api/v1/") && !resp.headers().contains_key("ratelimit-limit");
        let framing = resp.headers().get("x-frame-options").cloned();
        let body = expect_problem(resp, StatusCode::METHOD_NOT_ALLOWED).await;
        assert_eq!(body["code"], "method_not_allowed");
        assert_eq!(header.as_deref(), Some(allow), "{method} {path}");
        assert!(!rate_limited, "{method} {path}: the 405 lost its RateLimit-* headers");
        assert_eq!(framing.as_ref().map(|v| v.as_bytes()), Some(&b"DENY"[..]), "{method} {path}");
    }
}

async fn malformed_json_is_400(app: TestApp) {
    expect_problem(post_raw(&app, "/api/v1/auth/register", None, r#"{"username": "#).await, StatusCode::BAD_REQUEST)
        .await;
    let user = app.new_user().await;
    expect_problem(post_raw(&app, "/api/v1/rooms", Some(&user.token), "not json").await, StatusCode::BAD_REQUEST).await;
    let room_id = app.room_id(&user, "public").await;
    let path = format!("/api/v1/rooms/{room_id}/messages");
    expect_problem(
        post_raw(&app, &path, Some(&user.token), r#"{"body": "unterminated"#).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    // A body of the wrong JSON type is a bad request too, not a server error.
    let resp = app.post_message(&user.token, room_id, &json!({"body": 42})).await;
    let status = resp.status();
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
        "a number as body: 400 or 422, got {status}"
    );
    expect_problem(resp, status).await;
}

async fn malformed_query_is_400(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;
    expect_problem(app.history(&user.token, room_id, "limit=abc").await, StatusCode::BAD_REQUEST).await;
    expect_problem(app.history(&user.token, room_id, "before=not-a-seq").await, StatusCode::BAD_REQUEST).await;
}

async fn body_over_64_kib_is_413(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;
    let huge = json!({"body": "x".repeat(70 * 1024)});
    expect_problem(app.post_message(&user.token, room_id, &huge).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    let huge = json!({"username": random_username(), "password": "p".repeat(70 * 1024)});
    expect_problem(app.register(&huge).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    // Nothing was posted.
    let page = app.history_page(&user.token, room_id, "").await;
    assert_eq!(page["items"], json!([]));
}

async fn register_validation_is_422(app: TestApp) {
    let short_name = app.register(&json!({"username": "ab", "password": "long enough"})).await;
    expect_validation_error(short_name, "username").await;
    let long_name = app.register(&json!({"username": "a".repeat(33), "password": "long enough"})).await;
    expect_validation_error(long_name, "username").await;
    let bad_chars = app.register(&json!({"username": "no spaces here", "password": "long enough"})).await;
    expect_validation_error(bad_chars, "username").await;
    let short_password = app.register(&json!({"username": random_username(), "password": "7chars!"})).await;
    expect_validation_error(short_password, "password").await;
    let long_password = app.register(&json!({"username": random_username(), "password": "p".repeat(129)})).await;
    expect_validation_error(long_password, "password").await;

    // The limits themselves are fine.
    let ok =
        app.register(&json!({"username": format!("a_.-{}", &random_username()[..4]), "password": "8 chars!"})).await;
    expect_json(ok, StatusCode::CREATED).await;
    let ok = app.register(&json!({"username": "b".repeat(32), "password": "p".repeat(128)})).await;
    expect_json(ok, StatusCode::CREATED).await;
}

async fn message_body_validation_is_422(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;
    for (what, body) in [
        ("empty", json!({"body": ""})),
        ("white space only", json!({"body": " \n\t  "})),
        ("4001 characters", json!({"body": "x".repeat(4001)})),
        ("client_id over 64", json!({"body": "ok", "client_id": "c".repeat(65)})),
    ] {
        let field = if what.starts_with("client_id") { "client_id" } else { "body" };
        let problem = expect_validation_error(app.post_message(&user.token, room_id, &body).await, field).await;
        assert!(problem["code"].is_string(), "{what}");
    }
    // Nothing was stored; the 4000-character maximum is accepted.
    let page = app.history_page(&user.token, room_id, "").await;
    assert_eq!(page["items"], json!([]));
    let max = app.send(&user, room_id, &"x".repeat(4000)).await;
    assert_eq!(max["seq"], 1, "refused messages took no seq");
}

async fn message_body_limit_counts_characters(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;
    // 4000 characters but 8000 bytes: within the limit.
    let text = "é".repeat(4000);
    let m = app.send(&user, room_id, &text).await;
    assert_eq!(m["body"], text.as_str());
    expect_validation_error(app.post_message(&user.token, room_id, &json!({"body": "é".repeat(4001)})).await, "body")
        .await;
}

async fn room_name_validation_is_422(app: TestApp) {
    let user = app.new_user().await;
    expect_validation_error(app.create_room(&user.token, &json!({"name": "n".repeat(81)})).await, "name").await;
    expect_validation_error(app.create_room(&user.token, &json!({"name": ""})).await, "name").await;
    let ok = app.create_room(&user.token, &json!({"name": "n".repeat(80), "visibility": "public"})).await;
    expect_json(ok, StatusCode::CREATED).await;
    let rooms = expect_json(app.list_rooms(&user.token, "").await, StatusCode::OK).await;
    assert_eq!(rooms["items"].as_array().map(Vec::len), Some(1), "only the valid room was created");
}

async fn unknown_room_is_404(app: TestApp) {
    let user = app.new_user().await;
    let problem = expect_problem(app.get_room(&user.token, 987_654).await, StatusCode::NOT_FOUND).await;
    assert_eq!(problem["code"], "room_not_found");
    expect_problem(app.history(&user.token, 987_654, "").await, StatusCode::NOT_FOUND).await;
    expect_problem(app.post_message(&user.token, 987_654, &json!({"body": "hello?"})).await, StatusCode::NOT_FOUND)
        .await;
    expect_problem(app.join_room(&user.token, 987_654).await, StatusCode::NOT_FOUND).await;
}

async fn unknown_route_is_404(app: TestApp) {
    let user = app.new_user().await;
    expect_problem(app.get("/api/v1/no-such-thing", Some(&user.token)).await, StatusCode::NOT_FOUND).await;
    expect_problem(app.get("/api/v1/no-such-thing", None).await, StatusCode::NOT_FOUND).await;
}

async fn missing_or_garbage_token_is_401(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;
    expect_problem(app.get("/api/v1/me", None).await, StatusCode::UNAUTHORIZED).await;
    expect_problem(app.get("/api/v1/rooms", None).await, StatusCode::UNAUTHORIZED).await;
    expect_problem(
        app.post(&format!("/api/v1/rooms/{room_id}/messages"), None, &json!({"body": "anon"})).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect_problem(app.me("garbage").await, StatusCode::UNAUTHORIZED).await;
    expect_problem(app.me("chat_not_a_real_api_token").await, StatusCode::UNAUTHORIZED).await;
    // A refresh token is not an access token.
    expect_problem(app.me(&user.refresh_token).await, StatusCode::UNAUTHORIZED).await;
    let resp =
        app.client.get(app.url("/api/v1/me")).header("authorization", format!("Basic {}", user.token)).send().await;
    expect_problem(resp.expect("send"), StatusCode::UNAUTHORIZED).await;
}

fn claims(user_id: i64, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": user_id.to_string(), "iat": now, "exp": now + exp_offset, "sid": "a-session-of-the-test"})
}

fn sign(alg: Algorithm, claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).expect("sign a JWT")
}

async fn forged_jwts_are_401(app: TestApp) {
    let user = app.new_user().await;

    // Control: a token made like the server's is accepted, so the refusals below are about the one flaw each has.
    let good = sign(Algorithm::HS256, &claims(user.id, 600), JWT_SECRET.as_bytes());
    let me = expect_json(app.me(&good).await, StatusCode::OK).await;
    assert_eq!(me["id"], user.id);

    let wrong_key = sign(Algorithm::HS256, &claims(user.id, 600), b"some-other-secret-of-similar-length!!");
    expect_problem(app.me(&wrong_key).await, StatusCode::UNAUTHORIZED).await;

    let expired = sign(Algorithm::HS256, &claims(user.id, -3600), JWT_SECRET.as_bytes());
    expect_problem(app.me(&expired).await, StatusCode::UNAUTHORIZED).await;

    // The algorithm is pinned: the right key with another HMAC is refused.
    let other_alg = sign(Algorithm::HS512, &claims(user.id, 600), JWT_SECRET.as_bytes());
    expect_problem(app.me(&other_alg).await, StatusCode::UNAUTHORIZED).await;

    // `alg: none`, no signature.
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(user.id, 600).to_string());
    expect_problem(app.me(&format!("{header}.{payload}.")).await, StatusCode::UNAUTHORIZED).await;
    // `alg: none` with the real signature of another header kept.
    let real_sig = good.rsplit('.').next().unwrap();
    expect_problem(app.me(&format!("{header}.{payload}.{real_sig}")).await, StatusCode::UNAUTHORIZED).await;

    // A tampered payload (another user id) under the original signature.
    let other = app.new_user().await;
    let mut parts = good.split('.');
    let (h, _, s) = (parts.next().unwrap(), parts.next(), parts.next().unwrap());
    let tampered = URL_SAFE_NO_PAD.encode(claims(other.id, 600).to_string());
    expect_problem(app.me(&format!("{h}.{tampered}.{s}")).await, StatusCode::UNAUTHORIZED).await;
}
