//! The error body: RFC 9457 problem details with a stable `code`.

use serde::{Deserialize, Serialize};

/// Every error response, as `application/problem+json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(example = "urn:chat:problem:room_not_found"))]
    pub type_: String,
    /// A short summary of the kind of problem.
    #[cfg_attr(feature = "openapi", schema(example = "Not found"))]
    pub title: String,
    /// The HTTP status.
    #[cfg_attr(feature = "openapi", schema(example = 404))]
    pub status: u16,
    /// What went wrong this time, for a person.
    #[cfg_attr(feature = "openapi", schema(example = "No room 42 is visible to you."))]
    pub detail: String,
    /// Stable and machine-readable: match on this, not on the text.
    #[cfg_attr(feature = "openapi", schema(example = "room_not_found"))]
    pub code: String,
    /// Present on validation errors (422): one entry per bad field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FieldError {
    /// The field, as named in the request (`body` for the message text).
    pub field: String,
    pub message: String,
}
