//! The real-time gateway: the WebSocket, `GET /api/v1/ws`, and its ticket endpoint `POST /api/v1/ws/ticket`;
//! and the same stream of one room as server-sent events, `GET /api/v1/rooms/{room_id}/events`.
//!
//! Layout: `protocol.rs` parses frames, `session.rs` runs one connection, `transport.rs` writes its frames
//! to a socket (`outgoing.rs`) or an SSE stream, `hub.rs` fans out to local sessions' inboxes
//! (`inbox.rs`), `tickets.rs` and `presence.rs` keep what every node must share (in Redis when
//! configured). [`Realtime`] bundles them for the handlers.

pub mod hub;
mod inbox;
mod outgoing;
pub mod presence;
pub mod protocol;
mod reorder;
pub mod session;
pub mod tickets;
pub mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chat_api::{Problem, Scope, WsTicket};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use crate::broker::{Broker, redis::RedisLink};
use crate::caller::{Caller, authenticate_bearer, bearer_token, session_ended};
use crate::config::Config;
use crate::db::Database;
use crate::domain::credentials::new_secret;
use crate::domain::{api_tokens, rooms, users};
use crate::error::ApiError;
use crate::events::Event;
use crate::state::State;
use hub::{CloseOrder, CloseSignal, ConnectionId, RoomHub};
use inbox::Inbox;
use presence::Presence;
use session::Session;
use tickets::{TICKET_TTL, TicketStore};
use transport::Transport;

/// The largest frame a client may send; a larger one closes the socket with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Events written ahead of an SSE client; past it the session waits (and its inbox fills).
const SSE_BUFFER: usize = 64;

/// The real-time side of a node.
pub struct Realtime {
    pub hub: Arc<RoomHub>,
    pub broker: Broker,
    pub tickets: TicketStore,
    pub presence: Presence,
    /// The Redis command pool, when `REDIS_URL` is set (rate limits share their counters there).
    pub redis: Option<deadpool_redis::Pool>,
    next_connection: AtomicU64,
    /// Set on SIGTERM: new sockets are refused, `/readyz` answers 503.
    draining: AtomicBool,
}

impl Realtime {
    /// In-process when `REDIS_URL` is unset; shared through Redis otherwise.
    pub fn start(config: &Config, db: Database) -> Result<Arc<Realtime>, redis::RedisError> {
        let hub = Arc::new(RoomHub::new(config.access_token_ttl));
        let realtime = match &config.redis_url {
            None => Realtime {
                broker: Broker::in_process(hub.clone()),
                tickets: TicketStore::in_process(),
                presence: Presence::Local(Arc::clone(&hub)),
                hub,
                redis: None,
                next_connection: AtomicU64::new(1),
                draining: AtomicBool::new(false),
            },
            Some(url) => {
                // Tells this process apart from the others sharing Redis (its events, its presence entries).
                let node_id = new_secret("")[..12].to_owned();
                let link = RedisLink::start(url, node_id.clone(), hub.clone())?;
                Realtime {
                    broker: Broker::with_redis(hub.clone(), Arc::clone(&link)),
                    tickets: TicketStore::Redis(link.pool().clone()),
                    presence: Presence::Redis { hub: Arc::clone(&hub), pool: link.pool().clone(), node_id },
                    hub,
                    redis: Some(link.pool().clone()),
                    next_connection: AtomicU64::new(1),
                    draining: AtomicBool::new(false),
                }
            }
        };
        let realtime = Arc::new(realtime);
        tokio::spawn(crate::revocations::watch(realtime.hub.clone(), db.clone(), config.access_token_ttl));
        tokio::spawn(keep_presence(Arc::clone(&realtime), db));
        tokio::spawn(Arc::clone(&realtime.hub).release_held());
        Ok(realtime)
    }

    /// The first half of a graceful shutdown: refuses new sockets from now on, then closes every
    /// open one with 1012, spread over `window`; long polls answer at once.
    pub async fn drain(&self, window: Duration) {
        self.draining.store(true, Ordering::SeqCst);
        // Held long polls answer now (with what they have), so the node can stop.
        self.hub.waiters.wake_all();
        self.hub.close_all_spread(CloseOrder::RESTARTING, window).await;
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// Refreshes this node's presence entries and announces users of dead nodes as offline.
async fn keep_presence(realtime: Arc<Realtime>, db: Database) {
    let mut tick = tokio::time::interval(presence::HEARTBEAT);
    loop {
        tick.tick().await;
        for (room_id, user_id) in realtime.presence.heartbeat().await {
            let Ok(user) = db.read(move |c| users::find(c, user_id)).await else { continue };
            realtime.broker.publish(Event::PresenceChanged { room_id, user: user.into(), online: false }).await;
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/ws").get(connect))
        .service(web::resource("/ws/ticket").post(issue_ticket))
        .service(web::resource("/rooms/{room_id}/events").get(events));
}

/// Trade the bearer token for a single-use WebSocket ticket, valid 30 seconds on any node.
#[utoipa::path(post, path = "/api/v1/ws/ticket", tag = "realtime",
    responses(
        (status = 201, description = "A ticket for `GET /api/v1/ws?ticket=...`", body = WsTicket),
        (status = 503, description = "Redis is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn issue_ticket(state: State, caller: Caller) -> Result<HttpResponse, ApiError> {
    let ticket = state.realtime.tickets.issue(caller).await?;
    Ok(HttpResponse::Created().json(WsTicket { ticket, expires_in: TICKET_TTL.as_secs() as i64 }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectQuery {
    /// A ticket from `POST /api/v1/ws/ticket` (browsers); servers send `Authorization` instead.
    ticket: Option<String>,
}

/// Open the WebSocket. Frames are described in `openapi/asyncapi.yaml`.
#[utoipa::path(get, path = "/api/v1/ws", tag = "realtime", params(ConnectQuery),
    responses(
        (status = 101, description = "Switching protocols"),
        (status = 400, description = "`not_a_websocket`: a plain GET without the upgrade headers", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, used or expired credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`origin_not_allowed`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: the user holds `MAX_SOCKETS_PER_USER` sockets (default 20) already", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The node is shutting down: reconnect (to another node)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn connect(
    state: State,
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<ConnectQuery>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&req, &state.config)?;
    if state.realtime.is_draining() {
        return Err(shutting_down());
    }
    let caller = authenticate(&state, &req, query.ticket.as_deref()).await?;
    let user_id = caller.user_id;
    let user = state.db.read(move |c| users::find(c, user_id)).await?;
    let (response, ws, stream) = actix_ws::handle(&req, body)
        .map_err(|_| ApiError::bad_request("not_a_websocket", "This endpoint needs a WebSocket upgrade."))?;
    let (response, ws) = outgoing::take_over(response, ws);
    let stream =
        stream.max_frame_size(MAX_FRAME_BYTES).aggregate_continuations().max_continuation_size(MAX_FRAME_BYTES);
    let (id, inbox, close) = register(&state.realtime, &caller);
    let session = Session::new(id, user.into(), caller, state.clone(), Transport::Ws(ws), close);
    // The socket's halves are tied to this worker's thread; the task stays on it.
    actix_web::rt::spawn(session.run(Some(stream), inbox, None));
    Ok(response)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// A ticket from `POST /api/v1/ws/ticket` (a browser's `EventSource` cannot send headers); others send
    /// `Authorization`.
    ticket: Option<String>,
    /// Resume after this seq, as `subscribe` with `since` (`Last-Event-ID` wins when both are sent).
    since: Option<i64>,
}

/// Follow one room as server-sent events: what a socket subscribed to it receives (`ready`, `subscribed`,
/// `presence`, then `message`, `message_updated`, `typing`, ...), one event per frame, `event:` its type,
/// `data:` the frame, `id:` the seq of each message. `Last-Event-ID` (an `EventSource` sends it when it
/// reconnects) or `since` replays what was missed, as `subscribe` with `since`. A comment line every 20 s
/// keeps proxies from closing the stream. It ends when the node shuts down, the credential expires or the
/// room can no longer be followed (an `unsubscribed` or `error` event says why).
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}/events", tag = "realtime", operation_id = "room_events",
    params(
        ("room_id" = i64, Path, description = "The room's id"),
        EventsQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "The seq of the last message received: resume after it"),
    ),
    responses(
        (status = 200, description = "The stream (`text/event-stream`), open until the server ends it", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_query`: `Last-Event-ID` is not a seq", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid, used or expired credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope` (needs `messages:read`) or `origin_not_allowed`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: the user holds `MAX_SOCKETS_PER_USER` sockets and streams already", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The node is shutting down: reconnect (to another node)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn events(
    state: State,
    req: HttpRequest,
    path: web::Path<i64>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&req, &state.config)?;
    if state.realtime.is_draining() {
        return Err(shutting_down());
    }
    let room_id = path.into_inner();
    let since = resume_after(&req, query.since)?;
    let caller = authenticate(&state, &req, query.ticket.as_deref()).await?;
    caller.require(Scope::MessagesRead)?;
    let user_id = caller.user_id;
    // Refused with a status rather than in the stream: an `EventSource` gives up on one, instead of retrying.
    state.db.read(move |c| rooms::visible(c, room_id, user_id)).await?;
    let user = state.db.read(move |c| users::find(c, user_id)).await?;
    let (id, inbox, close) = register(&state.realtime, &caller);
    let (events_tx, events_rx) = mpsc::channel(SSE_BUFFER);
    let session = Session::new(id, user.into(), caller, state.clone(), Transport::Sse(events_tx), close);
    actix_web::rt::spawn(session.run(None, inbox, Some((room_id, since))));
    let body = futures_util::stream::unfold(events_rx, |mut events| async move {
        events.recv().await.map(|event| (Ok::<_, std::convert::Infallible>(event), events))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // nginx passes the events on as they come instead of buffering the response.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// Where a stream resumes: `Last-Event-ID`, else `since`, else from now.
fn resume_after(req: &HttpRequest, since: Option<i64>) -> Result<Option<i64>, ApiError> {
    match req.headers().get("last-event-id") {
        None => Ok(since),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("invalid_query", "Last-Event-ID must be the seq of a message.")),
    }
}

/// Who connects: a ticket's holder (checked again: the credential it was made from may have ended since) or
/// a bearer credential's; 429 when they hold `MAX_SOCKETS_PER_USER` sockets and streams already.
async fn authenticate(state: &State, req: &HttpRequest, ticket: Option<&str>) -> Result<Caller, ApiError> {
    let caller = match ticket {
        Some(ticket) => {
            let caller =
                state.realtime.tickets.redeem(ticket).await?.ok_or_else(|| {
                    ApiError::unauthorized("invalid_ticket", "The ticket is unknown, used or expired.")
                })?;
            still_valid(state, &caller).await?;
            caller
        }
        None => authenticate_bearer(state, bearer_token(req)?.to_owned()).await?,
    };
    if state.realtime.hub.sockets_of(caller.user_id) >= state.config.max_sockets_per_user {
        return Err(ApiError::RateLimited { retry_after: Duration::from_secs(10) });
    }
    Ok(caller)
}

/// A new connection in the hub: its id, the inbox the hub fills, and where close orders arrive.
fn register(realtime: &Realtime, caller: &Caller) -> (ConnectionId, Arc<Inbox>, Arc<CloseSignal>) {
    let id = realtime.next_connection.fetch_add(1, Ordering::Relaxed);
    let inbox = Inbox::new();
    let close = Arc::new(CloseSignal::default());
    realtime.hub.register(
        id,
        hub::SessionHandle {
            user_id: caller.user_id,
            api_token_id: caller.api_token_id,
            session: caller.session.clone(),
            inbox: Arc::clone(&inbox),
            close: Arc::clone(&close),
        },
    );
    // The drain may have started while this request was on its way: then the connection goes at once.
    if realtime.is_draining() {
        realtime.hub.close_now(id, CloseOrder::RESTARTING);
    }
    (id, inbox, close)
}

/// A ticket outlives nothing it was made from: a session ended or an API token revoked since it was
/// issued refuses it (401).
async fn still_valid(state: &State, caller: &Caller) -> Result<(), ApiError> {
    if caller.session.as_ref().is_some_and(|s| state.realtime.hub.ended_sessions.has_ended(s)) {
        return Err(session_ended());
    }
    if let Some(token_id) = caller.api_token_id {
        state.db.read(move |conn| api_tokens::check_live(conn, token_id)).await?;
    }
    Ok(())
}

fn shutting_down() -> ApiError {
    ApiError::Unavailable { detail: "This node is shutting down; reconnect to another one.".into() }
}

/// Browsers send `Origin`; only the server's own and the configured ones may open a socket.
/// Servers and bots send none and are let through (they authenticate with a bearer token).
fn check_origin(req: &HttpRequest, config: &Config) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
    let info = req.connection_info();
    let own = format!("{}://{}", info.scheme(), info.host());
    if origin == own || config.allowed_origins.iter().any(|o| o == origin) {
        Ok(())
    } else {
        Err(ApiError::forbidden("origin_not_allowed", format!("Origin {origin} may not open a socket here.")))
    }
}
