//! One error type for every handler: [`ApiError`] renders as `application/problem+json`
//! (RFC 9457) with a stable `code`. Causes go to the log, never to the client.

use std::fmt;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use chat_api::{FieldError, Problem};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Seconds a client should wait before retrying when a dependency is down.
const RETRY_AFTER_UNAVAILABLE: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: JSON, a query string or a path that cannot be parsed (`malformed_request`, `invalid_cursor`, ...).
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// 401: no credentials, or invalid, expired or revoked ones (`unauthorized`, `invalid_credentials`, ...).
    #[error("{detail}")]
    Unauthorized { code: &'static str, detail: String },
    /// 403: authenticated but not allowed (`insufficient_scope`, `not_a_member`, `not_the_author`, ...).
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// 404: no such thing, or one the caller may not see (`room_not_found`, `not_found`, ...).
    #[error("{detail}")]
    NotFound { code: &'static str, detail: String },
    /// 405 `method_not_allowed`.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with what exists (`username_taken`, `message_deleted`, ...).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// 413 `payload_too_large`: a body over the limit.
    #[error("request body over {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415 `unsupported_media_type`: a body that is not JSON.
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    /// 422 `validation_failed`: well-formed but breaking the rules, one entry per field.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 422 with a code of its own: well-formed, but over a limit of the thing it changes
    /// (`too_many_reactions`).
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    /// 422 `invalid_text`: a string holding U+0000 or a control character where none may be, one entry
    /// per field (CONTRACT-2 "Text, everywhere").
    #[error("invalid text")]
    InvalidText(Vec<FieldError>),
    /// 429 `rate_limited`: too many requests; `Retry-After` says when to try again (the
    /// `RateLimit-*` headers are added by `http::rate_limit`).
    #[error("rate limited for {retry_after:?}")]
    RateLimited { retry_after: std::time::Duration },
    /// 503 `service_unavailable`: the database is unreachable or saturated; retry shortly.
    #[error("{detail}")]
    Unavailable { detail: String },
    /// Any diesel error: mapped in `problem()` (NotFound 404, unique violation 409, lost connection 503, else 500).
    #[error("database error: {0}")]
    Database(#[from] DieselError),
    /// 503: no pooled connection in time.
    #[error("database pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// 500 `internal_error`: a bug or an unexpected failure; the cause is logged.
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest { code, detail: detail.into() }
    }
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Unauthorized { code, detail: detail.into() }
    }
    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Forbidden { code, detail: detail.into() }
    }
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::NotFound { code, detail: detail.into() }
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Conflict { code, detail: detail.into() }
    }
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Unprocessable { code, detail: detail.into() }
    }
    /// A 422 `invalid_text` for one field.
    pub fn invalid_text(field: &str, message: impl Into<String>) -> Self {
        ApiError::InvalidText(vec![FieldError { field: field.to_owned(), message: message.into() }])
    }
    /// A 422 for one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError { field: field.to_owned(), message: message.into() }])
    }
    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(Box::new(cause))
    }

    /// The same failure for each of several callers (a failed batch): what they need to know,
    /// without the cause, which went to the log once.
    pub fn for_each_caller(&self) -> ApiError {
        let problem = self.problem();
        match problem.status {
            503 => ApiError::Unavailable { detail: problem.detail },
            _ => ApiError::internal(std::io::Error::other(self.to_string())),
        }
    }

    /// True when a dependency is down (503): retrying later may succeed, retrying now will not.
    pub fn is_unavailable(&self) -> bool {
        self.problem().status == 503
    }

    /// True when a diesel unique constraint rejected the write.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, ApiError::Database(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)))
    }

    /// The response body. One place decides every status, code and text.
    pub fn problem(&self) -> Problem {
        let (status, code, detail): (StatusCode, &str, String) = match self {
            ApiError::BadRequest { code, detail } => (StatusCode::BAD_REQUEST, code, detail.clone()),
            ApiError::Unauthorized { code, detail } => (StatusCode::UNAUTHORIZED, code, detail.clone()),
            ApiError::Forbidden { code, detail } => (StatusCode::FORBIDDEN, code, detail.clone()),
            ApiError::NotFound { code, detail } => (StatusCode::NOT_FOUND, code, detail.clone()),
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "This method is not allowed here.".into())
            }
            ApiError::Conflict { code, detail } => (StatusCode::CONFLICT, code, detail.clone()),
            ApiError::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("The request body is larger than {limit} bytes."),
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as application/json.".into(),
            ),
            ApiError::Validation(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "The request breaks a rule: see errors.".into())
            }
            ApiError::Unprocessable { code, detail } => (StatusCode::UNPROCESSABLE_ENTITY, code, detail.clone()),
            ApiError::InvalidText(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_text",
                "The request holds a character that is not allowed there: see errors.".into(),
            ),
            ApiError::RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("Too many requests: retry in {} s.", retry_after.as_secs_f64().ceil().max(1.0)),
            ),
            ApiError::Unavailable { detail } => {
                (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", detail.clone())
            }
            ApiError::Database(e) => return database_problem(e),
            ApiError::Pool(_) => unavailable(),
            ApiError::Internal(_) => internal(),
        };
        let errors = match self {
            ApiError::Validation(errors) | ApiError::InvalidText(errors) => Some(errors.clone()),
            _ => None,
        };
        problem(status, code, detail, errors)
    }
}

fn database_problem(e: &DieselError) -> Problem {
    let (status, code, detail) = match e {
        DieselError::NotFound => (StatusCode::NOT_FOUND, "not_found", "Nothing was found here.".into()),
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            (StatusCode::CONFLICT, "conflict", "This conflicts with something that exists.".into())
        }
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _)
        | DieselError::BrokenTransactionManager => unavailable(),
        _ => internal(),
    };
    problem(status, code, detail, None)
}

fn unavailable() -> (StatusCode, &'static str, String) {
    (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", "The database is unavailable; retry shortly.".into())
}

fn internal() -> (StatusCode, &'static str, String) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "Something went wrong on our side; it has been logged.".into(),
    )
}

fn problem(status: StatusCode, code: &str, detail: String, errors: Option<Vec<FieldError>>) -> Problem {
    Problem {
        type_: format!("urn:chat:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        code: code.to_owned(),
        errors,
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.problem().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let body = self.problem();
        let status = StatusCode::from_u16(body.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %ErrorChain(self), code = %body.code, "request failed");
        } else {
            tracing::debug!(error = %self, code = %body.code, "request rejected");
        }
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, RETRY_AFTER_UNAVAILABLE.to_string()));
        }
        if let ApiError::RateLimited { retry_after } = self {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.insert_header((header::RETRY_AFTER, seconds.max(1).to_string()));
        }
        response.json(body)
    }
}

/// Formats an error with its whole `source()` chain, for the log.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diesel_errors_map_once() {
        let unique = DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, Box::new("dup".to_string()));
        assert_eq!(ApiError::from(unique).problem().status, 409);
        assert_eq!(ApiError::from(DieselError::NotFound).problem().status, 404);
        let closed = DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, Box::new("gone".to_string()));
        assert_eq!(ApiError::from(closed).problem().status, 503);
        assert_eq!(ApiError::from(DieselError::RollbackTransaction).problem().status, 500);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = ApiError::internal(std::io::Error::other("secret path /etc/x"));
        let body = serde_json::to_string(&err.problem()).unwrap();
        assert!(!body.contains("/etc/x"), "{body}");
        assert!(body.contains("internal_error"));
    }

    #[test]
    fn validation_lists_fields() {
        let p = ApiError::invalid("body", "must not be empty").problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors.unwrap()[0].field, "body");
    }
}
