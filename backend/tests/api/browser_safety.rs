//! Browser safety: CORS on `/api/v1` for the server's own origin and `ALLOWED_ORIGINS` (bearer
//! tokens, so no credentials mode), and the security headers on every response, with the SPA's
//! `index.html` keeping its own nonce policy and Swagger UI getting one that lets it run.

use reqwest::{Method, Response, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, TestDb, expect_json};

const ALLOWED: &str = "https://app.example";

async fn app_with_origins() -> TestApp {
    TestApp::spawn_with(TestDb::Sqlite, |config| config.allowed_origins = vec![ALLOWED.to_owned()]).await
}

fn header<'r>(resp: &'r Response, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
        .send()
        .await
        .expect("send the preflight")
}

#[tokio::test]
async fn preflights_are_answered_for_allowed_origins_only() {
    let app = app_with_origins().await;
    let resp = preflight(&app, "/api/v1/rooms/1/messages", ALLOWED, "POST").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(ALLOWED));
    let methods = header(&resp, "access-control-allow-methods").unwrap_or_default().to_owned();
    for m in ["GET", "POST", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "{m} in {methods}");
    }
    let headers = header(&resp, "access-control-allow-headers").unwrap_or_default().to_lowercase();
    for h in ["authorization", "content-type", "idempotency-key"] {
        assert!(headers.contains(h), "{h} in {headers}");
    }
    assert!(header(&resp, "access-control-allow-credentials").is_none(), "bearer tokens: no credentials mode");
    assert!(header(&resp, "access-control-max-age").is_some());
    // Preflights are not counted against the rate limit, nor limited.
    assert!(header(&resp, "ratelimit-limit").is_none());

    // The server's own origin, as a browser on the served SPA sends it.
    let own = app.address.clone();
    let resp = preflight(&app, "/api/v1/auth/login", &own, "POST").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(own.as_str()));

    // Anyone else: refused, and told nothing.
    let resp = preflight(&app, "/api/v1/rooms", "https://evil.example", "POST").await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert!(header(&resp, "access-control-allow-origin").is_none());
}

#[tokio::test]
async fn cross_origin_responses_are_readable_by_allowed_origins_only() {
    let app = app_with_origins().await;
    let alice = app.new_user().await;
    let get_me = |origin: &str| {
        app.client.get(app.url("/api/v1/me")).bearer_auth(&alice.token).header("Origin", origin.to_owned()).send()
    };
    let resp = get_me(ALLOWED).await.unwrap();
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(ALLOWED));
    let exposed = header(&resp, "access-control-expose-headers").unwrap_or_default().to_lowercase();
    for h in ["ratelimit-remaining", "retry-after", "x-request-id"] {
        assert!(exposed.contains(h), "{h} exposed: {exposed}");
    }
    assert!(header(&resp, "access-control-allow-credentials").is_none());
    expect_json(resp, StatusCode::OK).await;

    // Another origin is served as curl would be, but its page cannot read the answer.
    let resp = get_me("https://evil.example").await.unwrap();
    assert!(header(&resp, "access-control-allow-origin").is_none());

    // The own origin on a same-origin POST (browsers send Origin there): works as usual.
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("Origin", app.address.clone())
        .json(&json!({"username": alice.username, "password": alice.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "access-control-allow-origin"), Some(app.address.as_str()));
    expect_json(resp, StatusCode::OK).await;
}

fn assert_security_headers(resp: &Response, what: &str) {
    assert_eq!(header(resp, "x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(header(resp, "referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(header(resp, "x-frame-options"), Some("DENY"), "{what}");
    let csp = header(resp, "content-security-policy").unwrap_or_else(|| panic!("{what}: a CSP"));
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let alice = app.new_user().await;
    let responses = [
        ("GET /api/v1/me", app.me(&alice.token).await),
        ("401", app.me("nope").await),
        ("404", app.get("/api/v1/nothing", None).await),
        ("405", app.request(Method::DELETE, "/healthz", None, None).await),
        ("/healthz", app.get("/healthz", None).await),
        ("/metrics", app.get("/metrics", None).await),
        ("/api/v1/openapi.json", app.get("/api/v1/openapi.json", None).await),
    ];
    for (what, resp) in &responses {
        assert_security_headers(resp, what);
        let csp = header(resp, "content-security-policy").unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{what}: nothing may load from an API response: {csp}");
    }

    // Swagger UI: its own scripts (no inline ones), its inline styles, the document from here.
    let docs = app.get("/docs/", None).await;
    assert_eq!(docs.status(), StatusCode::OK);
    assert_security_headers(&docs, "/docs/");
    let csp = header(&docs, "content-security-policy").unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("script-src 'self' 'unsafe"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let page = docs.text().await.unwrap();
    assert!(!page.contains("<script>"), "an inline script the policy would block: {page}");
}

#[tokio::test]
async fn the_spa_keeps_its_own_policy() {
    let dist = tempfile::tempdir().unwrap();
    let index = r#"<!doctype html><html><head><script type="module" nonce="{{__TRUNK NONCE__}}">import init from '/app.js'; init();</script></head><body></body></html>"#;
    std::fs::write(dist.path().join("index.html"), index).unwrap();
    let dir = dist.path().to_path_buf();
    let app = TestApp::spawn_with(TestDb::Sqlite, move |config| config.static_dir = Some(dir)).await;
    for path in ["/", "/rooms/5"] {
        let resp = app.get(path, None).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_security_headers(&resp, path);
        let csp = header(&resp, "content-security-policy").unwrap();
        assert!(csp.contains("'nonce-"), "{path}: the SPA's nonce policy is kept: {csp}");
    }
}
