//! The OpenAPI document, generated from the handlers' annotations. The committed
//! `openapi/openapi.json` must equal [`ApiDoc::json`]; `make openapi` rewrites it.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::{auth, messages, ops, rooms, tokens};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chat API",
        version = "1.0.0",
        description = "REST API of the chat service. Every error is `application/problem+json` (RFC 9457) \
with a stable `code`. Authenticate with `Authorization: Bearer <token>`: a user's access token (JWT) \
from `/auth/login`, or an API token from `/tokens` limited to its scopes. The WebSocket gateway \
is described in `openapi/asyncapi.yaml`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    servers((url = "/", description = "This server")),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout, auth::me,
        tokens::create, tokens::list, tokens::revoke,
        rooms::create, rooms::list, rooms::get, rooms::join, rooms::leave, rooms::members, rooms::add_member,
        rooms::direct,
        messages::send_message, messages::history, messages::edit, messages::delete, messages::mark_read,
        crate::ws::issue_ticket, crate::ws::connect,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi_json,
    ),
    // utoipa collects the schemas of bodies and responses by itself, but not those that only a query
    // parameter (`IntoParams`) refers to: without this the `$ref` of `GET /rooms?scope=` dangles, and
    // openapi-typescript refuses the document.
    components(schemas(crate::domain::rooms::ListScope)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "tokens", description = "API tokens for external systems"),
        (name = "rooms", description = "Rooms and membership"),
        (name = "messages", description = "Sending and reading messages"),
        (name = "realtime", description = "The WebSocket gateway (frames: openapi/asyncapi.yaml)"),
        (name = "operations", description = "Health, readiness, metrics"),
    ),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some(
            "A user's access token (JWT, from /auth/login or /auth/register) or an API token \
(`chat_pat_...`, from /tokens) limited to its scopes: rooms:read, messages:read, messages:write."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

impl ApiDoc {
    pub fn spec() -> utoipa::openapi::OpenApi {
        ApiDoc::openapi()
    }

    /// The document as committed: pretty JSON with a final newline.
    pub fn json() -> String {
        // Unwrap: serialising a utoipa document to JSON cannot fail.
        let mut text = ApiDoc::spec().to_pretty_json().unwrap();
        text.push('\n');
        text
    }
}
