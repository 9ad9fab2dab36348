//! The JSON body extractor of every request type: [`JsonBody<T>`] in place of actix's `web::Json<T>`.
//!
//! On top of actix's size limit and parse errors (see `json_config`), it refuses what actix lets through:
//! - a body declared as another media type (`text/plain`, `text/html`, a form): 415. A body with no
//!   `Content-Type` at all is still read as JSON, as clients such as `fetch` without headers send it;
//! - a body that is not a JSON object: serde reads a struct from an array too (`[null, null]` passed as an
//!   empty update), so the shape is checked before the fields;
//! - U+0000 in any string of the document: 422 `invalid_text` (CONTRACT-2 "Text, everywhere").

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, mime, web};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::json_error;
use crate::domain::text;
use crate::error::ApiError;

/// A request body, read as JSON and checked as above.
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    // actix's error: the size and syntax errors come from `json_config`'s handler already converted.
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<JsonBody<T>, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared_json = declares_json(req);
        let document = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            declared_json?;
            let value = document.await?.into_inner();
            Ok(parse(value).map(JsonBody)?)
        })
    }
}

/// A body as Slack's incoming webhooks take it: JSON, or a form (`application/x-www-form-urlencoded`) whose
/// `payload` field holds the JSON, which older tools send. Either way with [`JsonBody`]'s checks.
pub struct SlackBody<T>(pub T);

#[derive(serde::Deserialize)]
struct SlackForm {
    payload: String,
}

impl<T: DeserializeOwned + 'static> FromRequest for SlackBody<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<SlackBody<T>, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let form = req.mime_type().ok().flatten().is_some_and(|m| m == mime::APPLICATION_WWW_FORM_URLENCODED);
        if !form {
            let json = JsonBody::<T>::from_request(req, payload);
            return Box::pin(async move { Ok(SlackBody(json.await?.0)) });
        }
        let form = web::Form::<SlackForm>::from_request(req, payload);
        Box::pin(async move {
            let SlackForm { payload } = form
                .await
                .map_err(|_| ApiError::bad_request("malformed_request", "The form has no readable `payload` field."))?
                .into_inner();
            let value: Value = serde_json::from_str(&payload)
                .map_err(|e| json_error(actix_web::error::JsonPayloadError::Deserialize(e)))?;
            Ok(parse(value).map(SlackBody)?)
        })
    }
}

/// Reads a JSON document into its request type.
fn parse<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    }
    text::check_json(&value)?;
    serde_json::from_value(value).map_err(|e| json_error(actix_web::error::JsonPayloadError::Deserialize(e)))
}

/// 415 unless the body is declared as JSON (`application/json`, `application/*+json`) or not declared.
fn declares_json(req: &HttpRequest) -> Result<(), ApiError> {
    match req.mime_type() {
        Ok(None) => Ok(()),
        Ok(Some(mime)) if mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON) => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Update {
        name: Option<String>,
    }

    #[test]
    fn only_objects_are_read_into_request_types() {
        assert!(parse::<Update>(serde_json::json!({"name": "x"})).is_ok());
        for not_an_object in [serde_json::json!([null]), serde_json::json!("x"), serde_json::json!(null)] {
            let e = parse::<Update>(not_an_object).unwrap_err();
            assert_eq!(e.problem().status, 422);
        }
    }
}
