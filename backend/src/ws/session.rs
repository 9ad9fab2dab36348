//! One connection, a WebSocket or a server-sent-event stream of one room (`transport.rs`): a plain async
//! task (no actors) running one loop over the frames the hub queues in its inbox (`inbox.rs`), the
//! client's frames (a socket's only), the heartbeat, the credential's expiry and close orders. Cleanup
//! (hub, presence) always runs after the loop, whatever ended it.
//!
//! Delivery is by seq: the session remembers the last seq it delivered per room. A message at
//! `last + 1` is written; one at or below `last` was already delivered (by the replay or a gap
//! fill) and is skipped; one further ahead means something was missed, and the gap is read from
//! the database first. So a lost pub/sub event costs latency, never a message.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_ws::{AggregatedMessage, AggregatedMessageStream};
use bytestring::ByteString;
use chat_api::{ClientFrame, Message, Scope, ServerFrame, UnsubscribeReason, User};
use futures_util::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::{Instant, Interval, Sleep, interval, sleep_until};

use super::hub::{CloseOrder, CloseSignal, ConnectionId, Outbound, Queued, RoomFrame, encode};
use super::inbox::{Inbox, Next};
use super::protocol::{self, Rejected};
use super::transport::{Gone, Transport};
use crate::caller::Caller;
use crate::domain::messages::{self, DedupKeys, MessageBody, Window};
use crate::domain::rooms::Standing;
use crate::domain::{blocks, rooms};
use crate::error::ApiError;
use crate::events::Event;
use crate::http::rate_limit::Limit;
use crate::state::State;

/// The server pings this often...
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// ...and closes a socket it has heard nothing from for this long.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// The most missed messages replayed over the socket; past it the client pages over REST.
pub const MAX_REPLAY: i64 = 1000;
/// Frames of any type allowed per second per connection, and the burst above it (CONTRACT-2 "Socket
/// limits": part 1's budget for `send` covers every frame).
const FRAME_RATE: u32 = 20;
const FRAME_BURST: u32 = 40;
/// Rate-limited frames in a row before the connection is closed with 1008.
const FLOOD_LIMIT: u32 = 20;
/// Replays (`subscribe` with `since`) allowed per connection in any 10 seconds: each reads up to 1000
/// messages from the database.
const REPLAYS_PER_10_S: u32 = 10;
/// A `typing` frame is passed on at most this often per user and room.
pub const TYPING_INTERVAL: Duration = Duration::from_secs(3);

/// Everything one connection needs, owned by its task.
pub struct Session {
    pub id: ConnectionId,
    pub user: User,
    /// The credential the socket was opened with: what it may do.
    pub caller: Caller,
    /// When the credential behind the socket expires.
    pub expires_at: Option<Instant>,
    /// The node's shared state: database, message writer, hub and broker.
    state: State,
    /// A WebSocket, or a stream of server-sent events (one room, no client frames).
    transport: Transport,
    pub close: Arc<CloseSignal>,
    /// Last seq delivered, per subscribed room.
    delivered: HashMap<i64, i64>,
    /// Public rooms followed without being a member (usually none): a resync ends only a member's
    /// subscription for want of membership.
    visitors: Vec<i64>,
    /// When the connection opened (a removal logged after it ended a membership it followed).
    opened_at: chrono::NaiveDateTime,
    limiter: DefaultDirectRateLimiter,
    replays: DefaultDirectRateLimiter,
    rate_limited_in_a_row: u32,
}

/// `ws_delivery_latency_seconds`, recorded at every delivery: the handle is looked up once, not in the
/// registry at each of them. (The recorder is installed at start-up, before any socket opens.)
static DELIVERY_LATENCY: std::sync::LazyLock<metrics::Histogram> =
    std::sync::LazyLock::new(|| metrics::histogram!("ws_delivery_latency_seconds"));

/// Why the loop ended.
enum End {
    /// The client closed or vanished: nothing more to send.
    ClientGone,
    /// The server closes with this code.
    Close(CloseOrder),
}

const NOT_JSON: CloseOrder = CloseOrder { code: 1008, reason: "frames must be JSON text" };
const FLOODING: CloseOrder = CloseOrder { code: 1008, reason: "rate limit exceeded" };
const TOO_BIG: CloseOrder = CloseOrder { code: 1009, reason: "frame over 64 KiB" };
const EXPIRED: CloseOrder = CloseOrder { code: chat_api::close::TOKEN_EXPIRED, reason: "token expired" };
const IDLE: CloseOrder = CloseOrder { code: 1000, reason: "no traffic for 60 seconds" };
const SERVER_ERROR: CloseOrder = CloseOrder { code: 1011, reason: "server error" };
/// An SSE stream whose room cannot be (or is no longer) followed: it ends, and says why in an event first.
const REFUSED: CloseOrder = CloseOrder { code: 1008, reason: "the room cannot be followed" };

impl Session {
    pub fn new(
        id: ConnectionId,
        user: User,
        caller: Caller,
        state: State,
        transport: Transport,
        close: Arc<CloseSignal>,
    ) -> Session {
        // Unwrap: the constants are non-zero.
        let quota =
            Quota::per_second(NonZeroU32::new(FRAME_RATE).unwrap()).allow_burst(NonZeroU32::new(FRAME_BURST).unwrap());
        let replays = Quota::with_period(Duration::from_secs(10) / REPLAYS_PER_10_S)
            .unwrap()
            .allow_burst(NonZeroU32::new(REPLAYS_PER_10_S).unwrap());
        let expires_at = caller.expires_at.map(|exp| {
            let left = (exp - chrono::Utc::now().timestamp()).max(0) as u64;
            Instant::now() + Duration::from_secs(left)
        });
        Session {
            id,
            user,
            caller,
            expires_at,
            state,
            transport,
            close,
            delivered: HashMap::new(),
            visitors: Vec::new(),
            opened_at: crate::db::now(),
            limiter: RateLimiter::direct(quota),
            replays: RateLimiter::direct(replays),
            rate_limited_in_a_row: 0,
        }
    }

    /// Runs the connection to its end, then cleans up. A WebSocket has its client's frames in `stream`; an
    /// SSE stream has none, and is subscribed to its one room (`first`: the room and `since`) at once.
    pub async fn run(
        mut self,
        mut stream: Option<AggregatedMessageStream>,
        inbox: Arc<Inbox>,
        first: Option<(i64, Option<i64>)>,
    ) {
        let gauge = if self.transport.is_sse() { "sse_streams_open" } else { "ws_connections_open" };
        metrics::gauge!(gauge).increment(1.0);
        let end = self.serve(stream.as_mut(), &inbox, first).await;
        let rooms = self.state.realtime.hub.unregister(self.id);
        for room_id in rooms {
            // Boxed: presence goes through the broker, and a Redis publish is a future of over
            // 7 KiB. Inline, it would set the size of every connection's task, idle or not (it
            // did: 8.6 KiB of each idle socket's 33).
            Box::pin(self.announce_left(room_id)).await;
        }
        metrics::gauge!(gauge).decrement(1.0);
        if let End::Close(order) = end {
            metrics::counter!("ws_closes_total", "code" => order.code.to_string()).increment(1);
            if order.code == chat_api::close::TOO_SLOW {
                metrics::counter!("ws_closed_too_slow_total").increment(1);
            }
            // Queued behind what the client has not read yet, never waited for: a client that does not read
            // may never take it.
            self.transport.close(order);
        }
    }

    async fn serve(
        &mut self,
        mut stream: Option<&mut AggregatedMessageStream>,
        inbox: &Arc<Inbox>,
        first: Option<(i64, Option<i64>)>,
    ) -> End {
        // Boxed: it runs once, and its frames and errors would otherwise be part of the task all its life.
        if let Err(end) = Box::pin(self.start(first)).await {
            return end;
        }
        let mut heartbeat = interval(PING_INTERVAL);
        let mut last_heard = Instant::now();
        // A far-future deadline stands in for "never expires", keeping one branch.
        let expiry =
            sleep_until(self.expires_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86400)));
        tokio::pin!(expiry);
        // One wait for a close order for the whole connection, rather than one made and dropped at every
        // turn of the loop (each joins, and leaves, the signal's list of waiters under its lock).
        let signal = Arc::clone(&self.close);
        let close_ordered = async move { signal.wait().await };
        tokio::pin!(close_ordered);
        // What the futures below wake: the inbox remembers it (see `inbox`).
        let others = inbox.waker();
        loop {
            // Frames first: a delivery (the hot path, one per subscriber and message) polls nothing else.
            // What comes after waits only while frames are queued (at most `inbox::CAPACITY`), each a write
            // that does not wait unless the client stops reading, and then the write itself watches for
            // close orders.
            let next = poll_fn(|cx| {
                inbox.poll_next(cx, &others, |cx| {
                    poll_control(cx, close_ordered.as_mut(), &mut stream, &mut heartbeat, expiry.as_mut())
                })
            })
            .await;
            let step = match next {
                Next::Frame(item) => self.deliver(item).await,
                Next::Other(Control::Close(order)) => Err(End::Close(order)),
                Next::Other(Control::Frame(frame)) => {
                    last_heard = Instant::now();
                    // Boxed: a client's frame is rare beside deliveries, and its handling (a refusal, an
                    // error frame, a pong) is the largest state of the loop: inline, it set the size of
                    // every idle connection's task.
                    Box::pin(self.on_client_frame(frame)).await
                }
                // An SSE client sends nothing: a write to a client that went away fails instead.
                Next::Other(Control::Heartbeat) if stream.is_some() && last_heard.elapsed() > CLIENT_TIMEOUT => {
                    Err(End::Close(IDLE))
                }
                Next::Other(Control::Heartbeat) => self.transport.heartbeat().await.map_err(gone),
                Next::Other(Control::Expired) => Err(End::Close(EXPIRED)),
            };
            if let Err(end) = step {
                return end;
            }
            // An SSE stream serves one room: once it is unsubscribed (removed, banned, deleted), it ends.
            if first.is_some() && self.delivered.is_empty() {
                return End::Close(REFUSED);
            }
        }
    }

    /// `ready`, then an SSE stream's one subscription (`first`); a room it cannot follow ends it.
    async fn start(&mut self, first: Option<(i64, Option<i64>)>) -> Result<(), End> {
        let ready = ServerFrame::Ready { user: self.user.clone(), connection_id: self.id.to_string() };
        self.write(encode(&ready)).await?;
        let Some((room_id, since)) = first else { return Ok(()) };
        match self.subscribe(room_id, since).await? {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = self.write_frame(&api_error_frame(&e, None)).await;
                Err(End::Close(REFUSED))
            }
        }
    }

    /// Writes a text frame, unless a close order arrives first (a client that does not read
    /// blocks writes, and must still be closed).
    async fn write(&mut self, text: impl Into<ByteString>) -> Result<(), End> {
        self.write_seq(text.into(), None).await
    }

    /// [`Session::write`] for a new message: its seq goes with it (SSE's `id:`).
    async fn write_seq(&mut self, text: ByteString, seq: Option<i64>) -> Result<(), End> {
        // The write first: it is ready at once unless the client stops reading, and then the close order
        // is not even waited for (a wait joins the signal's waiters under its lock: once per frame).
        tokio::select! {
            biased;
            sent = self.transport.frame(text, seq) => sent.map_err(gone),
            order = self.close.wait() => Err(End::Close(order)),
        }
    }

    async fn write_frame(&mut self, frame: &ServerFrame) -> Result<(), End> {
        self.write(encode(frame)).await
    }

    async fn on_client_frame(
        &mut self,
        frame: Option<Result<AggregatedMessage, actix_ws::ProtocolError>>,
    ) -> Result<(), End> {
        match frame {
            None | Some(Ok(AggregatedMessage::Close(_))) => Err(End::ClientGone),
            Some(Err(actix_ws::ProtocolError::Overflow)) => Err(End::Close(TOO_BIG)),
            Some(Err(_)) => Err(End::ClientGone),
            Some(Ok(AggregatedMessage::Ping(bytes))) => self.transport.pong(&bytes).await.map_err(gone),
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
            Some(Ok(AggregatedMessage::Binary(_))) => Err(End::Close(NOT_JSON)),
            Some(Ok(AggregatedMessage::Text(text))) => match protocol::decode(&text) {
                Ok(frame) if self.limiter.check().is_err() => self.refuse_flood(frame).await,
                // Boxed, like the gap fills: an idle connection's task is as large as the largest
                // state of its loop, and these heavy, rare paths would otherwise set that size.
                Ok(frame) => {
                    self.rate_limited_in_a_row = 0;
                    Box::pin(self.on_frame(frame)).await
                }
                Err(Rejected::NotJson) => Err(End::Close(NOT_JSON)),
                Err(Rejected::Invalid(detail)) => {
                    self.write_frame(&error_frame(
                        "invalid_frame",
                        format!("Unknown or malformed frame: {detail}"),
                        None,
                    ))
                    .await
                }
            },
        }
    }

    async fn on_frame(&mut self, frame: ClientFrame) -> Result<(), End> {
        let outcome = match frame {
            ClientFrame::Subscribe { room_id, since } => self.subscribe(room_id, since).await,
            ClientFrame::Unsubscribe { room_id } => {
                self.unsubscribe(room_id).await;
                Ok(Ok(()))
            }
            ClientFrame::Send { room_id, body, client_id, reply_to } => {
                return self.send(room_id, body, client_id, reply_to).await;
            }
            ClientFrame::Typing { room_id } => match self.require(Scope::MessagesWrite) {
                Ok(()) => self.typing(room_id).await,
                Err(e) => Ok(Err(e)),
            },
            // Moving the read marker changes the user's state: the token must be allowed to write.
            ClientFrame::Read { room_id, seq } => {
                if let Err(e) = self.require(Scope::MessagesWrite) {
                    return self.write_frame(&api_error_frame(&e, None)).await;
                }
                let user_id = self.user.id;
                let result = self.state.db.write(move |c| messages::mark_read(c, room_id, user_id, seq)).await;
                Ok(result)
            }
            ClientFrame::Ping => return self.write_frame(&ServerFrame::Pong).await,
        };
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => self.write_frame(&api_error_frame(&e, None)).await,
            Err(end) => Err(end),
        }
    }

    fn require(&self, scope: Scope) -> Result<(), ApiError> {
        self.caller.require(scope)
    }

    /// Registers with the hub first, then replays from the database, so nothing falls between the
    /// two: anything published meanwhile waits in the inbox and is skipped if the replay had it.
    async fn subscribe(&mut self, room_id: i64, since: Option<i64>) -> Result<Result<(), ApiError>, End> {
        if let Err(e) = self.require(Scope::MessagesRead) {
            return Ok(Err(e));
        }
        if since.is_some() && self.replays.check().is_err() {
            let retry_after = Duration::from_secs(10) / REPLAYS_PER_10_S;
            return Ok(Err(ApiError::RateLimited { retry_after }));
        }
        let newly = self.state.realtime.hub.subscribe(self.id, room_id);
        let user_id = self.user.id;
        let room = match self.state.db.read(move |c| rooms::visible(c, room_id, user_id)).await {
            Ok(visible) => {
                self.visitors.retain(|r| *r != room_id);
                if visible.membership.is_none() {
                    self.visitors.push(room_id);
                }
                visible.room
            }
            Err(e) => {
                if newly {
                    self.state.realtime.hub.unsubscribe(self.id, room_id);
                }
                return Ok(Err(e));
            }
        };
        let (delivered, truncated) = match since {
            Some(since) => {
                // Clamped: `since` is the client's number, and `i64::MIN` must not overflow (it did:
                // the session's task panicked and the socket dropped without a close frame).
                let since = since.clamp(0, room.last_seq);
                let changes_truncated = match self.replay_changes(room_id, since).await? {
                    Ok(truncated) => truncated,
                    Err(e) => return Ok(Err(e)),
                };
                if room.last_seq - since > MAX_REPLAY {
                    (room.last_seq, true)
                } else {
                    self.delivered.insert(room_id, since);
                    if let Err(e) = self.replay(room_id, since, room.last_seq).await? {
                        return Ok(Err(e));
                    }
                    (self.delivered[&room_id], changes_truncated)
                }
            }
            None => (room.last_seq, false),
        };
        self.delivered.insert(room_id, delivered);
        self.write_frame(&ServerFrame::Subscribed { room_id, last_seq: delivered, truncated }).await?;
        if newly {
            self.announce_joined(room_id).await;
        }
        let online = self.online_users(room_id).await;
        self.write_frame(&ServerFrame::Presence { room_id, online }).await?;
        Ok(Ok(()))
    }

    async fn unsubscribe(&mut self, room_id: i64) {
        self.delivered.remove(&room_id);
        self.visitors.retain(|r| *r != room_id);
        if self.state.realtime.hub.unsubscribe(self.id, room_id) {
            self.announce_left(room_id).await;
        }
    }

    /// Writes the messages of `room_id` with `after < seq <= upto` from the database, in order.
    async fn replay(&mut self, room_id: i64, after: i64, upto: i64) -> Result<Result<(), ApiError>, End> {
        if upto <= after {
            return Ok(Ok(()));
        }
        let user_id = self.user.id;
        let window = Window { before: Some(upto + 1), after: Some(after), limit: upto - after };
        let page = match self.state.db.read(move |c| messages::history(c, room_id, user_id, window)).await {
            Ok(page) => page,
            Err(e) => return Ok(Err(e)),
        };
        for message in page.items {
            self.write_message(message).await?;
        }
        Ok(Ok(()))
    }

    /// Writes a `message_updated` or `message_deleted` frame for every message up to `since` changed
    /// after message `since` was sent (CONTRACT-2 "Resuming"), in the order of the changes. More than
    /// `MAX_REPLAY`: none, and `Ok(true)` (the subscription is then `truncated`, as for messages).
    async fn replay_changes(&mut self, room_id: i64, since: i64) -> Result<Result<bool, ApiError>, End> {
        let read = move |c: &mut _| messages::changed_since(c, room_id, since, MAX_REPLAY + 1);
        let changed = match self.state.db.read(read).await {
            Ok(changed) => changed,
            Err(e) => return Ok(Err(e)),
        };
        if changed.len() as i64 > MAX_REPLAY {
            return Ok(Ok(true));
        }
        for message in changed {
            let frame = if message.deleted {
                ServerFrame::MessageDeleted { room_id, seq: message.seq }
            } else {
                ServerFrame::MessageUpdated { message }
            };
            self.write_frame(&frame).await?;
        }
        Ok(Ok(false))
    }

    async fn write_message(&mut self, message: Message) -> Result<(), End> {
        let (room_id, seq) = (message.room_id, message.seq);
        self.write_seq(encode(&ServerFrame::Message { message }).into(), Some(seq)).await?;
        self.delivered.insert(room_id, seq);
        Ok(())
    }

    /// Delivers what the hub queued.
    async fn deliver(&mut self, item: Outbound) -> Result<(), End> {
        match &*item {
            Queued::Room(frame) => self.deliver_room_frame(frame).await,
            Queued::Personal(text) => self.write(text.clone()).await,
            // Boxed, like every rare path here: an idle connection's task is as large as the largest state
            // of its loop, and these would set that size (see `serve`).
            Queued::Resync => Box::pin(self.resync()).await,
        }
    }

    /// Events may have been lost: each subscription is checked against the database (a membership ended
    /// meanwhile ends it; missed messages are filled in).
    async fn resync(&mut self) -> Result<(), End> {
        let rooms: Vec<(i64, i64)> = self.delivered.iter().map(|(r, s)| (*r, *s)).collect();
        for (room_id, last) in rooms {
            let (user_id, as_member, since) = (self.user.id, !self.visitors.contains(&room_id), self.opened_at);
            let standing = self.state.db.read(move |c| rooms::standing(c, room_id, user_id, as_member, since)).await;
            match standing {
                Ok(Standing::Following { last_seq }) if last_seq > last => {
                    Box::pin(self.fill_gap(room_id, last, last_seq)).await?
                }
                Ok(Standing::Following { .. }) => {}
                Ok(Standing::Ended(reason)) => self.end_subscription(room_id, reason).await?,
                Err(_) => return Err(End::Close(SERVER_ERROR)),
            }
        }
        Ok(())
    }

    /// A subscription that ended while its event was lost: leaves the room here and says so, as the hub's
    /// `unsubscribed` would have.
    async fn end_subscription(&mut self, room_id: i64, reason: UnsubscribeReason) -> Result<(), End> {
        self.delivered.remove(&room_id);
        self.visitors.retain(|r| *r != room_id);
        let last_here = self.state.realtime.hub.unsubscribe(self.id, room_id);
        self.write_frame(&ServerFrame::Unsubscribed { room_id, reason }).await?;
        if last_here {
            Box::pin(self.announce_left(room_id)).await;
        }
        Ok(())
    }

    /// A room's frame: typing and presence as they come, new messages once and in seq order.
    async fn deliver_room_frame(&mut self, frame: &RoomFrame) -> Result<(), End> {
        let room_id = frame.room_id;
        match frame.seq {
            None if frame.ends_subscription => {
                // The hub has taken this socket out of the room already; what remains is to say so.
                if self.delivered.remove(&room_id).is_some() {
                    self.write(frame.text.clone()).await?;
                    Box::pin(self.announce_left(room_id)).await;
                }
                Ok(())
            }
            None if self.delivered.contains_key(&room_id) => self.write(frame.text.clone()).await,
            None => Ok(()),
            Some(seq) => {
                let Some(&last) = self.delivered.get(&room_id) else { return Ok(()) };
                if seq <= last {
                    return Ok(());
                }
                if seq > last + 1 {
                    Box::pin(self.fill_gap(room_id, last, seq - 1)).await?;
                }
                self.write_seq(frame.text.clone(), Some(seq)).await?;
                self.delivered.insert(room_id, seq);
                // From the sender's request (the writer stamps `created_at` before committing) to
                // this socket's write: commit, publish, Redis, fan-out and this inbox.
                if let Some(created_at) = frame.created_at {
                    let latency = (chrono::Utc::now() - created_at).to_std().unwrap_or_default();
                    DELIVERY_LATENCY.record(latency.as_secs_f64());
                }
                Ok(())
            }
        }
    }

    /// Reads missed messages from the database. Too many: the client is told to reconnect with
    /// `since` (and page over REST), which is also what a slow reader is told.
    async fn fill_gap(&mut self, room_id: i64, after: i64, upto: i64) -> Result<(), End> {
        if upto - after > MAX_REPLAY {
            return Err(End::Close(CloseOrder::TOO_SLOW));
        }
        metrics::counter!("ws_gaps_filled_total").increment(1);
        match self.replay(room_id, after, upto).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(End::Close(SERVER_ERROR)),
        }
    }

    /// A frame over the connection's budget: an error frame (naming the send it refuses), and after
    /// `FLOOD_LIMIT` of them in a row, the socket closes with 1008.
    async fn refuse_flood(&mut self, frame: ClientFrame) -> Result<(), End> {
        self.rate_limited_in_a_row += 1;
        if self.rate_limited_in_a_row > FLOOD_LIMIT {
            return Err(End::Close(FLOODING));
        }
        let client_id = match frame {
            ClientFrame::Send { client_id, .. } => Some(client_id),
            _ => None,
        };
        self.write_frame(&error_frame("rate_limited", "Too many frames: slow down.".into(), client_id)).await
    }

    /// The one send path shared with REST: stored, then published, then acknowledged.
    async fn send(&mut self, room_id: i64, body: String, client_id: String, reply_to: Option<i64>) -> Result<(), End> {
        let posted = match self.post(room_id, body, &client_id, reply_to).await {
            Ok(posted) => posted,
            Err(e) => return self.write_frame(&api_error_frame(&e, Some(client_id))).await,
        };
        if posted.created {
            // Committed, and published by the writer in seq order; this session reads its inbox
            // only after this returns, so the sender sees its ack before the message.
            metrics::counter!("chat_messages_sent_total", "via" => "ws").increment(1);
        }
        self.write_frame(&ServerFrame::Ack { client_id, message: posted.message }).await
    }

    async fn post(
        &self,
        room_id: i64,
        body: String,
        client_id: &str,
        reply_to: Option<i64>,
    ) -> Result<messages::Posted, ApiError> {
        self.require(Scope::MessagesWrite)?;
        // The user's one budget for sends, shared with REST and their other sockets (on every node, through
        // Redis when configured); this socket's own frame budget was counted before.
        if let Some(verdict) = self.state.limits.check(Limit::Sends, &self.user.id.to_string()).await {
            verdict.refusal()?;
        }
        let body = MessageBody::parse(body)?;
        let keys = DedupKeys::parse(Some(client_id.to_owned()), None)?;
        self.state.writer.send(room_id, self.user.id, body, keys, reply_to, None).await
    }

    async fn typing(&mut self, room_id: i64) -> Result<Result<(), ApiError>, End> {
        if !self.delivered.contains_key(&room_id) {
            return Ok(Err(ApiError::bad_request("not_subscribed", "Subscribe to the room first.")));
        }
        // A subscriber of a public room need not be a member; typing there needs membership.
        if let Err(e) = self.state.writer.member(room_id, self.user.id).await {
            return Ok(Err(e));
        }
        if self.state.realtime.hub.typing_allowed(room_id, self.user.id, std::time::Instant::now()) {
            // Read at most once per 3 s per user and room (the throttle above).
            let user_id = self.user.id;
            let blocked_by = match self.state.db.read(move |c| blocks::blockers_in(c, room_id, user_id)).await {
                Ok(blockers) => blockers,
                Err(e) => return Ok(Err(e)),
            };
            self.state.realtime.broker.publish(Event::Typing { room_id, user: self.user.clone(), blocked_by }).await;
        }
        Ok(Ok(()))
    }

    async fn announce_joined(&self, room_id: i64) {
        if self.state.realtime.presence.joined(room_id, self.user.id).await {
            let event = Event::PresenceChanged { room_id, user: self.user.clone(), online: true };
            self.state.realtime.broker.publish(event).await;
        }
    }

    async fn announce_left(&self, room_id: i64) {
        if self.state.realtime.presence.left(room_id, self.user.id).await {
            let event = Event::PresenceChanged { room_id, user: self.user.clone(), online: false };
            self.state.realtime.broker.publish(event).await;
        }
    }

    async fn online_users(&self, room_id: i64) -> Vec<User> {
        let ids = self.state.realtime.presence.online(room_id).await;
        self.state.db.read(move |c| crate::domain::users::find_many(c, &ids)).await.unwrap_or_default()
    }
}

fn gone(_: Gone) -> End {
    End::ClientGone
}

/// What the session's loop waits for beside its inbox's frames.
enum Control {
    Close(CloseOrder),
    /// The client's next frame (a WebSocket's only), or `None` when it went away.
    Frame(Option<Result<AggregatedMessage, actix_ws::ProtocolError>>),
    Heartbeat,
    Expired,
}

/// Polls what [`Control`] names, in that order of precedence.
fn poll_control(
    cx: &mut Context<'_>,
    close_ordered: Pin<&mut impl Future<Output = CloseOrder>>,
    stream: &mut Option<&mut AggregatedMessageStream>,
    heartbeat: &mut Interval,
    expiry: Pin<&mut Sleep>,
) -> Poll<Control> {
    if let Poll::Ready(order) = close_ordered.poll(cx) {
        return Poll::Ready(Control::Close(order));
    }
    if let Some(stream) = stream
        && let Poll::Ready(frame) = stream.poll_next_unpin(cx)
    {
        return Poll::Ready(Control::Frame(frame));
    }
    if heartbeat.poll_tick(cx).is_ready() {
        return Poll::Ready(Control::Heartbeat);
    }
    if expiry.poll(cx).is_ready() {
        return Poll::Ready(Control::Expired);
    }
    Poll::Pending
}

fn error_frame(code: &str, message: String, client_id: Option<String>) -> ServerFrame {
    ServerFrame::Error { code: code.into(), message, client_id }
}

fn api_error_frame(e: &ApiError, client_id: Option<String>) -> ServerFrame {
    let problem = e.problem();
    error_frame(&problem.code, problem.detail, client_id)
}
