//! Logs and metrics. Every request gets a span with its own id, method, route and status, so each
//! log line it causes can be traced back to it; the id is echoed in the `X-Request-Id` response
//! header. Query strings are never logged: WebSocket tickets travel there, and no secret may reach
//! a log line.
//!
//! Metrics (`GET /metrics`): `http_requests_total{method,route,status}` and
//! `http_request_duration_seconds{method,route}` (route = the pattern, not the path),
//! `http_rate_limited_total{limit}`, `ws_connections_open`, `ws_closes_total{code}` and
//! `ws_closed_too_slow_total` (4008), `ws_delivery_latency_seconds` (message `created_at` to the
//! socket write), `ws_gaps_filled_total`, `chat_messages_sent_total{via}`, `message_batch_size`,
//! `broker_reconnects_total`, `broker_publish_failures_total`, `rate_limit_redis_failures_total`,
//! `db_pool_connections_in_use` (set at each scrape).

use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

/// Installs the global log subscriber once: human lines, or JSON with `json`. `RUST_LOG` filters.
pub fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // An error means a subscriber is already installed (a test harness did it): keep that one.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// How often recorded histogram samples are folded into their buckets and summaries.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The metrics recorder is global to the process; several apps in one test process share it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("seconds".into()),
                    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
                )
                // Unwrap: the bucket list above is not empty, the only way this can fail.
                .unwrap()
                .install_recorder()
                // Unwrap: nothing else in this process installs a metrics recorder.
                .expect("a metrics recorder is already installed");
            start_upkeep(handle.clone());
            handle
        })
        .clone()
}

/// Histogram samples (one per delivered message, for instance) pile up in the recorder until
/// they are folded in, which only a scrape or an upkeep does: with nobody scraping `/metrics`
/// they would grow without bound. A thread, not a task: the recorder outlives any runtime.
fn start_upkeep(handle: PrometheusHandle) {
    let upkeep = move || {
        loop {
            thread::sleep(METRICS_UPKEEP);
            handle.run_upkeep();
        }
    };
    // Without it metrics still work, folded at each scrape; so a failure to start is only logged.
    if let Err(e) = thread::Builder::new().name("metrics-upkeep".into()).spawn(upkeep) {
        tracing::warn!("cannot start the metrics upkeep thread: {e}");
    }
}

/// Request spans without query strings.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().map(|id| id.to_string()).unwrap_or_default();
        // A socket or an event stream is a response that lasts hours, and its span is entered at every
        // frame written (tracing-actix-web wraps the body): at debug level, so that it costs nothing unless
        // asked for (`ws_connections_open`, `sse_streams_open` and `ws_closes_total` count them meanwhile).
        if is_stream(request.path()) {
            return tracing::debug_span!(
                "request",
                request_id = %request_id,
                method = %request.method(),
                path = %request.path(),
                status = tracing::field::Empty,
            );
        }
        tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %request.method(),
            path = %logged_path(request.path()),
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let status = match outcome {
            Ok(response) => response.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        span.record("status", status);
        span.in_scope(|| tracing::debug!(status, "request finished"));
    }
}

/// The long-lived responses: the WebSocket and a room's server-sent events.
fn is_stream(path: &str) -> bool {
    path == "/api/v1/ws" || (path.starts_with("/api/v1/rooms/") && path.ends_with("/events"))
}

/// A path as logged: an incoming hook's secret (`/api/v1/hooks/{secret}`) never reaches a log line, however
/// the path is spelt (the router decodes `%68ooks` to `hooks` before matching, so this decodes too).
pub fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    const HOOKS: &str = "/api/v1/hooks/";
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    if decoded.get(..HOOKS.len()).is_some_and(|start| start.eq_ignore_ascii_case(HOOKS)) {
        return format!("{HOOKS}[redacted]").into();
    }
    path.into()
}

/// The method as a metric label: the standard ones by name, any other as `other`, so that a client
/// inventing methods (`X00001 /healthz`) cannot grow `/metrics` without bound.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN.iter().find(|(known, _)| known == method).map_or("other", |(_, name)| name)
}

/// Counts requests and times them by route pattern (not by path, which would explode the labels).
pub async fn record_request<B: MessageBody>(
    req: ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let mut response = next.call(req).await?;
    // The id every log line of this request carries, so a client's report can be found in the logs.
    let request_id = response.request().extensions().get::<RequestId>().map(|id| id.to_string());
    if let Some(value) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
    }
    let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".into());
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::logged_path;

    #[test]
    fn hook_secrets_are_not_logged_however_spelt() {
        for path in
            ["/api/v1/hooks/chat_hook_s3cret", "/api/v1/%68ooks/chat_hook_s3cret", "/API/v1/Hooks/chat_hook_s3cret"]
        {
            assert_eq!(logged_path(path), "/api/v1/hooks/[redacted]", "{path}");
        }
        assert_eq!(logged_path("/api/v1/rooms/1/hooks/2"), "/api/v1/rooms/1/hooks/2");
        assert_eq!(logged_path("/api/v1/hooké"), "/api/v1/hooké", "no panic on a multibyte character at the cut");
    }
}
