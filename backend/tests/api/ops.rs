//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`, the served OpenAPI document and `/docs`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, expect_json, expect_status};

db_tests!(
    healthz_is_200,
    readyz_is_200,
    metrics_are_prometheus_text,
    openapi_json_is_the_committed_document,
    docs_render_html
);

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

async fn healthz_is_200(app: TestApp) {
    expect_status(app.get("/healthz", None).await, StatusCode::OK).await;
}

async fn readyz_is_200(app: TestApp) {
    expect_status(app.get("/readyz", None).await, StatusCode::OK).await;
}

/// Whether `line` is a Prometheus sample: `name{labels} value` or `name value`.
fn is_sample(line: &str) -> bool {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..name_end];
    let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    let value = line.rsplit(' ').find(|s| !s.is_empty()).unwrap_or("");
    let value_ok = value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value);
    valid_name && value_ok && line[name_end..].contains(' ')
}

async fn metrics_are_prometheus_text(app: TestApp) {
    // Some traffic first, so request metrics exist.
    let user = app.new_user().await;
    expect_json(app.me(&user.token).await, StatusCode::OK).await;

    let resp = app.get("/metrics", None).await;
    let ct = header(&resp, "content-type");
    let text = expect_status(resp, StatusCode::OK).await;
    assert!(ct.starts_with("text/plain"), "Prometheus text format, got content-type {ct:?}");
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect();
    assert!(!samples.is_empty(), "at least one metric: {text}");
    for line in &samples {
        assert!(is_sample(line), "not a Prometheus sample line: {line:?}");
    }
    assert!(text.lines().any(|l| l.starts_with("# TYPE ")), "metrics declare their TYPE: {text}");
}

async fn openapi_json_is_the_committed_document(app: TestApp) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read the committed {path}: {e}"));
    let committed: Value = serde_json::from_str(&committed).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
    let served = expect_json(app.get("/api/v1/openapi.json", None).await, StatusCode::OK).await;
    assert!(served["openapi"].is_string(), "an OpenAPI document: {served}");
    assert!(
        served == committed,
        "GET /api/v1/openapi.json differs from the committed openapi/openapi.json; regenerate and commit it"
    );
}

async fn docs_render_html(app: TestApp) {
    // reqwest follows redirects (e.g. /docs -> /docs/).
    let resp = app.get("/docs", None).await;
    let ct = header(&resp, "content-type");
    let html = expect_status(resp, StatusCode::OK).await;
    assert!(ct.starts_with("text/html"), "content-type {ct:?}");
    assert!(html.to_ascii_lowercase().contains("<html"), "an HTML page: {html}");
    // No request to any other host: scripts and styles are served locally.
    let lower = html.to_ascii_lowercase().replace(' ', "");
    for remote in ["src=\"http", "src='http", "src=\"//", "src='//", "href=\"//", "@import\"http", "@importurl(http"] {
        assert!(!lower.contains(remote), "the docs page loads nothing from another host ({remote}): {html}");
    }
    for line in lower.lines().filter(|l| l.contains("<link") && l.contains("stylesheet")) {
        assert!(!line.contains("href=\"http"), "stylesheet from another host: {line}");
    }
}
