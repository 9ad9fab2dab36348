//! The REST transport: routes, extractors and the mapping of every bad input to problem+json.
//! Handlers check the caller and the input, call one domain function, and shape the response.

pub mod accounts;
pub mod auth;
pub mod browser_safety;
pub mod hooks;
pub mod invites;
pub mod json;
pub mod messages;
pub mod moderation;
pub mod notifications;
pub mod ops;
pub mod rate_limit;
pub mod rooms;
pub mod search;
pub mod sessions;
pub mod spa;
pub mod tokens;
pub mod webhooks;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, ResponseError, web};
use chat_api::FieldError;

use crate::error::ApiError;

/// The largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route of the API, under `/api/v1`.
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .app_data(web::QueryConfig::default().error_handler(|e, _| query_error(e).into()))
        .app_data(web::PathConfig::default().error_handler(|e, _| path_error(e).into()))
        .configure(auth::configure)
        .configure(accounts::configure)
        .configure(sessions::configure)
        .configure(tokens::configure)
        .configure(rooms::configure)
        .configure(messages::configure)
        .configure(moderation::configure)
        .configure(invites::configure)
        .configure(notifications::configure)
        .configure(search::configure)
        .configure(hooks::configure)
        .configure(webhooks::configure)
        .configure(crate::ws::configure);
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        // The declared type is checked by `json::JsonBody` (415 for another type, JSON when none is declared).
        .content_type_required(false)
        .error_handler(|e, _| json_error(e).into())
}

pub(crate) fn json_error(e: JsonPayloadError) -> ApiError {
    match e {
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        // Well-formed JSON of the wrong shape breaks a rule of the request: 422 naming the field.
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::Validation(vec![FieldError { field: field_of(&e.to_string()), message: e.to_string() }])
        }
        JsonPayloadError::Deserialize(e) => {
            ApiError::bad_request("malformed_json", format!("The body is not valid JSON: {e}"))
        }
        other => ApiError::bad_request("malformed_request", format!("The body could not be read: {other}")),
    }
}

/// The field a serde error names ("missing field `username`"); `body` when it names none. Type
/// errors put the offending *value* in backticks, so only these messages are read.
fn field_of(message: &str) -> String {
    let names_a_field = ["missing field", "unknown field", "duplicate field"].iter().any(|p| message.starts_with(p));
    let field = message.split('`').nth(1).filter(|_| names_a_field);
    field.unwrap_or("body").to_owned()
}

fn query_error(e: QueryPayloadError) -> ApiError {
    ApiError::bad_request("invalid_query", format!("The query string is not valid: {e}"))
}

fn path_error(_: PathError) -> ApiError {
    ApiError::not_found("not_found", "Nothing is at this path.")
}

/// Unknown routes.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found("not_found", format!("Nothing is at {}.", req.path())))
}

/// Turns any error response that is not already problem+json (actix's own 405, 413, ...) into one,
/// so that no client ever gets an HTML page or an empty error body.
pub fn ensure_problem<B: MessageBody + 'static>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem =
        res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let error = match res.status().as_u16() {
        405 => ApiError::MethodNotAllowed,
        413 => ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES },
        404 => ApiError::not_found("not_found", "Nothing is at this path."),
        s if s < 500 => ApiError::bad_request("bad_request", "The request could not be understood."),
        _ => ApiError::internal(std::io::Error::other(format!("unhandled status {}", res.status()))),
    };
    let (req, original) = res.into_parts();
    let mut response: actix_web::HttpResponse<BoxBody> = error.error_response();
    // Keep what the middlewares inside added (RateLimit-*, CORS, security headers); the body is new.
    let own: Vec<header::HeaderName> = response.headers().keys().cloned().collect();
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && !own.contains(name) {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    // A 405 names the methods the route does answer (RFC 9110 requires `Allow`; found by `make contract-test`).
    if matches!(error, ApiError::MethodNotAllowed)
        && let Some(allow) = req.match_pattern().as_deref().and_then(crate::openapi::ApiDoc::allowed_methods)
    {
        response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, response).map_into_right_body::<B>()))
}

/// The body type `ensure_problem` produces.
pub type ProblemBody<B> = EitherBody<B, BoxBody>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_serde_messages() {
        assert_eq!(field_of("missing field `username` at line 1 column 2"), "username");
        assert_eq!(field_of("invalid type: integer `5`, expected a string"), "body");
        assert_eq!(field_of("unknown variant `x y`, expected one of `public`"), "body");
        assert_eq!(field_of("unknown field `nmae`, expected `name`"), "nmae");
    }
}
