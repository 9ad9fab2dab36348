//! What keeps browsers safe around this server: CORS on the API for the configured origins, and
//! the security headers on every response.
//!
//! - CORS ([`cors`]): the server's own origin and `ALLOWED_ORIGINS` may call `/api/v1` from a page
//!   (preflights answered, `RateLimit-*`, `Retry-After` and `X-Request-Id` readable). No credentials
//!   mode: the API takes bearer tokens, never cookies, so a foreign page gains nothing from a
//!   user's browser session. A simple request from another origin is handled as one from curl
//!   would be, but without `Access-Control-Allow-Origin` its page cannot read the answer; a
//!   preflight from it is refused (400), so nothing with `Authorization` is ever sent.
//! - Headers ([`security_headers`]): `nosniff`, `Referrer-Policy: no-referrer`, no framing
//!   (`X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`) everywhere. A response that brings
//!   its own Content-Security-Policy keeps it (the SPA's `index.html`, with its per-response
//!   nonce, `http/spa.rs`); Swagger UI at `/docs` gets one that lets its own scripts run; every
//!   other response (JSON, problem+json, metrics, assets) gets `default-src 'none'`: nothing in
//!   it may load or run anything, should a browser ever render it.

use actix_cors::Cors;
use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{RequestHead, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE_SECONDS: usize = 3600;

/// For API responses and anything else that is not a page.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// Swagger UI (`/docs/`): its page loads its scripts and styles from this server only (no inline
/// script: checked against utoipa-swagger-ui 9's `index.html`), sets inline styles from React, uses
/// `data:` images, and fetches the document (and "try it out") from this origin.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The CORS middleware for `/api/v1`.
pub fn cors(allowed_origins: &[String]) -> Cors {
    let allowed = allowed_origins.to_vec();
    Cors::default()
        .allowed_origin_fn(move |origin, head| {
            let Ok(origin) = origin.to_str() else { return false };
            let origin = origin.trim_end_matches('/');
            own_origin(head).is_some_and(|own| own == origin) || allowed.iter().any(|o| o == origin)
        })
        .allowed_methods(["GET", "POST", "PATCH", "PUT", "DELETE"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, HeaderName::from_static("idempotency-key")])
        .expose_headers([
            header::RETRY_AFTER,
            header::LOCATION,
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(PREFLIGHT_MAX_AGE_SECONDS)
}

/// `scheme://host` of the server as the browser reached it: through a proxy, what it says in
/// `X-Forwarded-Proto` / `X-Forwarded-Host` (as actix's `ConnectionInfo`, which the WebSocket's
/// Origin check uses, reads them); otherwise plain HTTP and `Host`.
fn own_origin(head: &RequestHead) -> Option<String> {
    let first = |name: &str| {
        head.headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.split(',').next()).map(str::trim)
    };
    let scheme = first("x-forwarded-proto").or(head.uri.scheme_str()).unwrap_or("http");
    let host = first("x-forwarded-host").or_else(|| first("host")).or(head.uri.host())?;
    Some(format!("{scheme}://{host}"))
}

/// Adds the security headers to every response (see the module doc).
pub async fn security_headers<B: MessageBody>(req: ServiceRequest, next: Next<B>) -> Result<ServiceResponse<B>, Error> {
    let docs = req.path() == "/docs" || req.path().starts_with("/docs/");
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    let mut set_default = |name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set_default(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(header::REFERRER_POLICY, "no-referrer");
    set_default(header::X_FRAME_OPTIONS, "DENY");
    set_default(header::CONTENT_SECURITY_POLICY, if docs { DOCS_CSP } else { API_CSP });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn own_origin_follows_the_proxy_headers() {
        let direct = TestRequest::default().insert_header(("host", "127.0.0.1:8080")).to_srv_request();
        assert_eq!(own_origin(direct.head()).as_deref(), Some("http://127.0.0.1:8080"));
        let proxied = TestRequest::default()
            .insert_header(("host", "backend:8080"))
            .insert_header(("x-forwarded-proto", "https"))
            .insert_header(("x-forwarded-host", "chat.example"))
            .to_srv_request();
        assert_eq!(own_origin(proxied.head()).as_deref(), Some("https://chat.example"));
    }
}
