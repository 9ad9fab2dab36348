//! The OpenAPI document, generated from the handlers' annotations. The committed
//! `openapi/openapi.json` must equal [`ApiDoc::json`]; `make openapi` rewrites it.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Object, Ref, RefOr, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};

use crate::http::{
    accounts, auth, hooks, invites, messages, moderation, notifications, ops, rooms, search, sessions, tokens, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chat API",
        version = "1.0.0",
        description = "REST API of the chat service. Every error is `application/problem+json` (RFC 9457) \
with a stable `code`. Authenticate with `Authorization: Bearer <token>`: a user's access token (JWT) \
from `/auth/login`, or an API token from `/tokens` limited to its scopes. The WebSocket gateway \
is described in `openapi/asyncapi.yaml`. Every `/api/v1` request counts against rate limits (per client \
address, per user, and tighter ones for login and registration): responses carry `RateLimit-Limit`, \
`RateLimit-Remaining` and `RateLimit-Reset` (seconds) for the tightest one, and a request over a limit \
gets 429 `rate_limited` with `Retry-After`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    servers((url = "/", description = "This server")),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout, auth::me,
        sessions::list, sessions::end, sessions::end_all,
        accounts::update_me, accounts::change_password, accounts::search, accounts::delete_me, accounts::export,
        accounts::block, accounts::blocked, accounts::unblock,
        tokens::create, tokens::list, tokens::revoke,
        rooms::create, rooms::list, rooms::get, rooms::join, rooms::leave, rooms::members, rooms::add_member,
        rooms::direct,
        moderation::update_room, moderation::delete_room, moderation::update_member, moderation::remove_member, moderation::ban, moderation::bans, moderation::unban,
        moderation::audit,
        invites::create, invites::list, invites::delete, invites::preview, invites::accept,
        messages::send_message, messages::history, messages::edit, messages::delete, messages::add_reaction,
        messages::remove_reaction, messages::mark_read,
        notifications::list, notifications::read, search::find,
        hooks::create, hooks::list, hooks::delete, hooks::post,
        webhooks::create, webhooks::list, webhooks::update, webhooks::delete, webhooks::deliveries,
        crate::ws::issue_ticket, crate::ws::connect, crate::ws::events,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi_json,
    ),
    // utoipa collects the schemas of bodies and responses by itself, but not those that only a query
    // parameter (`IntoParams`) refers to: without this the `$ref` of `GET /rooms?scope=` dangles, and
    // openapi-typescript refuses the document.
    components(schemas(crate::domain::rooms::ListScope)),
    modifiers(&BearerAuth, &RateLimited, &CommonErrors),
    security(("bearer" = [])),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "tokens", description = "API tokens for external systems"),
        (name = "rooms", description = "Rooms and membership"),
        (name = "moderation", description = "Roles, mutes, removals, bans and the audit log of a room"),
        (name = "messages", description = "Sending and reading messages"),
        (name = "integrations", description = "Incoming hooks: Slack-compatible URLs that post into a room. \
Outgoing webhooks: each event of the chosen types is POSTed as JSON `{\"type\", \"room_id\", \"timestamp\", \"data\"}`, \
signed the Standard Webhooks way (headers `webhook-id`, the same on every retry; `webhook-timestamp`, seconds; \
`webhook-signature: v1,<base64 HMAC-SHA256 of \"id.timestamp.body\" with the secret's key>`), at least once and \
in order per webhook. A non-2xx answer or none within 10 s is retried after about 5 s, 30 s, 2 min, 10 min, 1 h, \
then every 4 h; after 3 days of failure the webhook is disabled and the room's owner notified."),
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

/// The 429 of every rate-limited operation (all of `/api/v1`), defined once in
/// `components.responses` and referred to from each operation.
struct RateLimited;

impl Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let seconds = |text: &str| {
            HeaderBuilder::new().schema(Object::with_type(Type::Integer)).description(Some(text.to_owned())).build()
        };
        let response = ResponseBuilder::new()
            .description("`rate_limited`: too many requests; retry after `Retry-After` seconds")
            .header("Retry-After", seconds("Seconds to wait before retrying"))
            .header("RateLimit-Limit", seconds("Requests allowed in the window of the tightest limit"))
            .header("RateLimit-Remaining", seconds("Requests left in it (0 here)"))
            .header("RateLimit-Reset", seconds("Seconds until it allows requests again"))
            .content(
                "application/problem+json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
            )
            .build();
        let components = openapi.components.get_or_insert_with(Default::default);
        components.responses.insert("RateLimited".into(), RefOr::T(response));
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") || path == "/api/v1/openapi.json" {
                continue;
            }
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                operation.responses.responses.insert("429".into(), RefOr::Ref(Ref::from_response_name("RateLimited")));
            }
        }
    }
}

/// The errors every operation of a kind can answer with, added where a handler's annotation does not
/// list them already: the extractors and the database produce them whatever the handler does, and a
/// client (and the contract test, `make contract-test`) must find every status it can get in the document.
/// Handlers list only their own errors (403, 404, 409, a 422 of their own): the shared ones are here once.
/// - a JSON body: 400 `malformed_json`, 413, 415, 422 (well-formed JSON of the wrong shape);
/// - a query string: 400 `invalid_query`;
/// - a bearer token: 401;
/// - every `/api/v1` operation that reads or writes the database: 503 with `Retry-After`.
struct CommonErrors;

impl CommonErrors {
    fn problem(description: &str, retry_after: bool) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, header::HeaderBuilder};
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
        let mut response = ResponseBuilder::new().description(description).content("application/problem+json", content);
        if retry_after {
            let seconds = utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Integer);
            let header = HeaderBuilder::new().schema(seconds).description(Some("Seconds to wait before retrying"));
            response = response.header("Retry-After", header.build());
        }
        response.build().into()
    }

    fn complete(path: &str, op: &mut utoipa::openapi::path::Operation) {
        use utoipa::openapi::path::ParameterIn;
        let public = op.security.as_ref().is_some_and(|s| s.contains(&Default::default()));
        let has_query =
            op.parameters.as_ref().is_some_and(|ps| ps.iter().any(|p| p.parameter_in == ParameterIn::Query));
        let mut add = |status: &str, description: &str, retry_after: bool| {
            op.responses.responses.entry(status.to_owned()).or_insert_with(|| Self::problem(description, retry_after));
        };
        if op.request_body.is_some() {
            add("400", "`malformed_json`: the body is not JSON", false);
            add("413", "`payload_too_large`: a body over 64 KiB", false);
            add("415", "`unsupported_media_type`: a body declared as something other than JSON", false);
            add(
                "422",
                "`validation_failed`: JSON of the wrong shape, or breaking a rule; `errors` names the fields. \
`invalid_text`: U+0000 in any string, or a control character where none may be",
                false,
            );
        }
        if has_query {
            add("400", "`invalid_query`: the query string cannot be parsed", false);
        }
        if !public {
            add("401", "Missing, invalid, expired or revoked token", false);
        }
        if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
            add("503", "`service_unavailable`: the database (or Redis) is down; retry after `Retry-After`", true);
        }
    }
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ];
            for op in ops.into_iter().flatten() {
                CommonErrors::complete(path, op);
            }
        }
    }
}

impl ApiDoc {
    pub fn spec() -> utoipa::openapi::OpenApi {
        ApiDoc::openapi()
    }

    /// The methods the document lists for a route pattern (`/api/v1/rooms/{room_id}`), as an
    /// `Allow` header value (`GET, POST`): a 405 must carry one (RFC 9110), and the document is the
    /// one list of what each route answers. `None` for a pattern it does not describe.
    pub fn allowed_methods(pattern: &str) -> Option<&'static str> {
        static ALLOWED: std::sync::OnceLock<std::collections::HashMap<String, &'static str>> =
            std::sync::OnceLock::new();
        let allowed = ALLOWED.get_or_init(|| {
            ApiDoc::spec()
                .paths
                .paths
                .into_iter()
                .map(|(path, item)| {
                    let methods: Vec<&str> = [
                        ("GET", item.get.is_some()),
                        ("HEAD", item.head.is_some()),
                        ("POST", item.post.is_some()),
                        ("PUT", item.put.is_some()),
                        ("PATCH", item.patch.is_some()),
                        ("DELETE", item.delete.is_some()),
                        ("OPTIONS", item.options.is_some()),
                    ]
                    .into_iter()
                    .filter_map(|(method, present)| present.then_some(method))
                    .collect();
                    // Leaked once per route for the life of the process, so headers can borrow it.
                    (path, &*methods.join(", ").leak())
                })
                .collect()
        });
        allowed.get(pattern).copied()
    }

    /// The document as committed: pretty JSON with a final newline.
    pub fn json() -> String {
        // Unwrap: serialising a utoipa document to JSON cannot fail.
        let mut text = ApiDoc::spec().to_pretty_json().unwrap();
        text.push('\n');
        text
    }
}
