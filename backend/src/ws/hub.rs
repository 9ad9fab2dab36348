//! `RoomHub`: which local sessions are subscribed to which room, and the fan-out to them.
//!
//! The hub owns its maps behind one std `Mutex`, never held across an `.await`: every operation
//! is a few map lookups and non-blocking offers to session inboxes. Each event is serialised once;
//! its bytes are shared by every session that receives it. A session whose inbox is full is told to
//! close with 4008 ("too slow, reconnect with since"), and gets nothing more: one slow reader
//! never holds back a room.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytestring::ByteString;
use chat_api::{Message, ServerFrame, UnsubscribeReason, close};
use tokio::sync::Notify;

use super::inbox::Inbox;
use super::reorder::{self, Reorder};
use crate::events::member_checks::MemberChecks;
use crate::events::waiters::RoomWaiters;
use crate::events::{Event, Sink};
use crate::revocations::EndedSessions;

/// Identifies one socket on this node.
pub type ConnectionId = u64;

/// What the hub hands a session, in order: shared by every session that gets it. One pointer wide on
/// purpose: a session's inbox holds as many of these as it was ever behind by.
pub type Outbound = Arc<Queued>;

#[derive(Debug)]
pub enum Queued {
    /// A frame for a subscribed room.
    Room(RoomFrame),
    /// A frame for the user, whatever the socket is subscribed to (a notification).
    Personal(ByteString),
    /// The broker may have dropped events (it reconnected): check every subscribed room for gaps.
    Resync,
}

/// A frame for the subscribers of one room, encoded once.
#[derive(Debug)]
pub struct RoomFrame {
    pub room_id: i64,
    /// Set for new messages, which the session delivers in seq order, once, filling any gap from
    /// the database.
    pub seq: Option<i64>,
    /// New messages only: times the send-to-delivery latency.
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// True for `unsubscribed`: the session forgets the room once it has written this frame.
    pub ends_subscription: bool,
    pub text: ByteString,
}

/// Why the server closes a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseOrder {
    pub code: u16,
    pub reason: &'static str,
}

impl CloseOrder {
    pub const TOO_SLOW: CloseOrder = CloseOrder { code: close::TOO_SLOW, reason: "too slow: reconnect with since" };
    pub const TOKEN_REVOKED: CloseOrder = CloseOrder { code: close::TOKEN_EXPIRED, reason: "token revoked" };
    pub const SESSION_ENDED: CloseOrder = CloseOrder { code: close::TOKEN_EXPIRED, reason: "session ended" };
    pub const RESTARTING: CloseOrder = CloseOrder { code: 1012, reason: "server restarting: reconnect" };
}

/// The hub's side of one session.
pub struct SessionHandle {
    pub user_id: i64,
    /// The API token behind the socket, so that revoking it closes the socket.
    pub api_token_id: Option<i64>,
    /// The session behind the socket, so that ending it closes the socket.
    pub session: Option<String>,
    pub inbox: Arc<Inbox>,
    pub close: Arc<CloseSignal>,
}

impl SessionHandle {
    /// Queues a frame for the session without waiting: a session whose inbox is full is too slow, and is
    /// ordered closed (it stays registered until its task ends, which unregisters it and announces its
    /// departure like any other; counted as `ws_closes_total{code="4008"}` as it closes).
    fn offer(&self, item: &Outbound) {
        if self.inbox.offer(item).is_err() {
            self.close.order(CloseOrder::TOO_SLOW);
        }
    }
}

/// How the hub orders one session closed, the first order winning: the session waits for it beside
/// everything else. (A watch channel did this at about 450 bytes a socket, most of them the eight
/// `Notify`s it spreads its receivers over, where a session is the one receiver.)
#[derive(Debug, Default)]
pub struct CloseSignal {
    order: Mutex<Option<CloseOrder>>,
    notify: Notify,
}

impl CloseSignal {
    /// Orders the close unless it was ordered already (then returns false: a session flooded with frames
    /// is ordered closed once, not once per frame).
    pub fn order(&self, order: CloseOrder) -> bool {
        {
            let mut current = self.order.lock().unwrap_or_else(PoisonError::into_inner);
            if current.is_some() {
                return false;
            }
            *current = Some(order);
        }
        self.notify.notify_waiters();
        true
    }

    /// The order, once given.
    pub fn ordered(&self) -> Option<CloseOrder> {
        *self.order.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the order. Any number of waits may be out at once; all of them end.
    pub async fn wait(&self) -> CloseOrder {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so an order given between the two still ends this wait.
            notified.as_mut().enable();
            if let Some(order) = self.ordered() {
                return order;
            }
            notified.await;
        }
    }
}

#[derive(Default)]
struct HubState {
    sessions: HashMap<ConnectionId, SessionHandle>,
    rooms: HashMap<i64, HashSet<ConnectionId>>,
}

pub struct RoomHub {
    /// The node's passed membership checks for sends. Here because every node's events arrive
    /// here: a leave on any node forgets the leaver's entry on this one.
    pub member_checks: MemberChecks,
    /// The sessions that ended, whose access tokens are refused: here for the same reason.
    pub ended_sessions: EndedSessions,
    /// Long polls held on this node, woken by every message this hub hears of (any node's).
    pub waiters: RoomWaiters,
    /// When each (room, user) last had a `typing` passed on from this node.
    typing: Mutex<HashMap<(i64, i64), Instant>>,
    state: Mutex<HubState>,
    /// New messages of the rooms with local subscribers, put back in seq order (see `reorder`).
    order: Mutex<Reorder>,
    /// Wakes [`RoomHub::release_held`] when a message is held.
    held: Notify,
}

impl RoomHub {
    /// `token_lifetime`: how long an access token lives (an ended session is remembered that long).
    pub fn new(token_lifetime: std::time::Duration) -> RoomHub {
        RoomHub {
            member_checks: MemberChecks::default(),
            ended_sessions: EndedSessions::new(token_lifetime),
            waiters: RoomWaiters::default(),
            typing: Mutex::default(),
            state: Mutex::default(),
            order: Mutex::default(),
            held: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, HubState> {
        // A panic under this lock leaves the maps consistent (no multi-step updates), so poison is ignored.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn order(&self) -> MutexGuard<'_, Reorder> {
        // Each operation leaves the order consistent, so poison is ignored here too.
        self.order.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn register(&self, id: ConnectionId, handle: SessionHandle) {
        self.state().sessions.insert(id, handle);
    }

    /// Forgets a session and its subscriptions. Returns the rooms it was subscribed to.
    pub fn unregister(&self, id: ConnectionId) -> Vec<i64> {
        let mut state = self.state();
        state.sessions.remove(&id);
        let mut left = Vec::new();
        let mut emptied = Vec::new();
        state.rooms.retain(|room_id, members| {
            if members.remove(&id) {
                left.push(*room_id);
            }
            if members.is_empty() {
                emptied.push(*room_id);
            }
            !members.is_empty()
        });
        drop(state);
        let mut order = self.order();
        for room_id in emptied {
            order.forget(room_id);
        }
        left
    }

    /// True when `user_id`'s `typing` in `room_id` may be passed on now: at most once per
    /// `TYPING_INTERVAL` per user and room, whichever of their sockets it comes from.
    pub fn typing_allowed(&self, room_id: i64, user_id: i64, now: Instant) -> bool {
        let interval = super::session::TYPING_INTERVAL;
        let mut typing = self.typing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if typing.len() >= 4096 {
            typing.retain(|_, at| now.duration_since(*at) < interval);
        }
        match typing.get(&(room_id, user_id)) {
            Some(at) if now.duration_since(*at) < interval => false,
            _ => {
                typing.insert((room_id, user_id), now);
                true
            }
        }
    }

    /// How many sockets `user_id` holds on this node.
    pub fn sockets_of(&self, user_id: i64) -> usize {
        self.state().sessions.values().filter(|s| s.user_id == user_id).count()
    }

    /// Returns false when the session was already subscribed.
    pub fn subscribe(&self, id: ConnectionId, room_id: i64) -> bool {
        self.state().rooms.entry(room_id).or_default().insert(id)
    }

    /// Returns false when the session was not subscribed.
    pub fn unsubscribe(&self, id: ConnectionId, room_id: i64) -> bool {
        let mut state = self.state();
        let Some(members) = state.rooms.get_mut(&room_id) else { return false };
        let removed = members.remove(&id);
        if members.is_empty() {
            state.rooms.remove(&room_id);
            drop(state);
            self.order().forget(room_id);
        }
        removed
    }

    /// How many of `user_id`'s sockets on this node are subscribed to `room_id`.
    pub fn local_subscriptions(&self, room_id: i64, user_id: i64) -> usize {
        let state = self.state();
        let Some(members) = state.rooms.get(&room_id) else { return 0 };
        members.iter().filter(|id| state.sessions.get(id).is_some_and(|s| s.user_id == user_id)).count()
    }

    /// Every (room, user) with a subscribed socket on this node: what presence keeps alive.
    pub fn local_presence(&self) -> Vec<(i64, i64)> {
        let state = self.state();
        let mut pairs: Vec<(i64, i64)> = state
            .rooms
            .iter()
            .flat_map(|(room_id, members)| {
                members.iter().filter_map(|id| state.sessions.get(id)).map(move |s| (*room_id, s.user_id))
            })
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    }

    /// The users with a socket on this node subscribed to `room_id`, in any order, maybe repeated.
    /// Only that room's subscribers are looked at: it runs at every subscribe.
    pub fn local_users_in(&self, room_id: i64) -> Vec<i64> {
        let state = self.state();
        let Some(members) = state.rooms.get(&room_id) else { return Vec::new() };
        members.iter().filter_map(|id| state.sessions.get(id)).map(|s| s.user_id).collect()
    }

    /// Delivers held messages whose wait is over, for as long as the hub lives: run it in a task.
    pub async fn release_held(self: Arc<Self>) {
        loop {
            self.held.notified().await;
            while self.order().holds_any() {
                tokio::time::sleep(reorder::HOLD / 5).await;
                let mut order = self.order();
                for message in order.release_overdue(Instant::now()) {
                    self.to_room_message(message);
                }
            }
        }
    }

    fn to_room_message(&self, message: Message) {
        let (room_id, seq, created_at) = (message.room_id, message.seq, message.created_at);
        self.to_room(room_id, Some((seq, created_at)), &[], &ServerFrame::Message { message });
    }

    /// Serialises `frame` once and queues it for the room's sessions, except those of the users in `except`.
    fn to_room(
        &self,
        room_id: i64,
        new_message: Option<(i64, chrono::DateTime<chrono::Utc>)>,
        except: &[i64],
        frame: &ServerFrame,
    ) {
        let (seq, created_at) = (new_message.map(|m| m.0), new_message.map(|m| m.1));
        let text = ByteString::from(encode(frame));
        let shared = Arc::new(Queued::Room(RoomFrame { room_id, seq, created_at, ends_subscription: false, text }));
        let state = self.state();
        let Some(members) = state.rooms.get(&room_id) else { return };
        for id in members {
            let Some(session) = state.sessions.get(id) else { continue };
            if except.contains(&session.user_id) {
                continue;
            }
            session.offer(&shared);
        }
    }

    /// Queues `frame` for every socket of one user on this node, subscribed to anything or not.
    fn to_user(&self, user_id: i64, frame: &ServerFrame) {
        let item = Arc::new(Queued::Personal(ByteString::from(encode(frame))));
        let state = self.state();
        for session in state.sessions.values().filter(|s| s.user_id == user_id) {
            session.offer(&item);
        }
    }

    /// Queues `frame` once for every session subscribed to any of `rooms` (a frame about a person, not a
    /// room: a socket in two of their rooms gets it once).
    fn to_rooms_once(&self, rooms: &[i64], frame: &ServerFrame) {
        let state = self.state();
        // Each socket once, under one of the rooms it is subscribed to (it delivers a room's frames only).
        let mut once: HashMap<ConnectionId, i64> = HashMap::new();
        for room_id in rooms {
            for id in state.rooms.get(room_id).into_iter().flatten() {
                once.entry(*id).or_insert(*room_id);
            }
        }
        if once.is_empty() {
            return;
        }
        let text = ByteString::from(encode(frame));
        for (id, room_id) in once {
            let Some(session) = state.sessions.get(&id) else { continue };
            session.offer(&Arc::new(Queued::Room(RoomFrame {
                room_id,
                seq: None,
                created_at: None,
                ends_subscription: false,
                text: text.clone(),
            })));
        }
    }

    /// Takes `user_id`'s sockets out of the room at once, so that nothing dispatched from now on reaches
    /// them, and queues them `unsubscribed` behind what they were already sent.
    fn end_subscriptions(&self, room_id: i64, user_id: i64, reason: UnsubscribeReason) {
        let text = ByteString::from(encode(&ServerFrame::Unsubscribed { room_id, reason }));
        let frame =
            Arc::new(Queued::Room(RoomFrame { room_id, seq: None, created_at: None, ends_subscription: true, text }));
        let mut state = self.state();
        let HubState { sessions, rooms } = &mut *state;
        let Some(members) = rooms.get_mut(&room_id) else { return };
        members.retain(|id| {
            let Some(session) = sessions.get(id).filter(|s| s.user_id == user_id) else { return true };
            session.offer(&frame);
            false
        });
        if members.is_empty() {
            rooms.remove(&room_id);
            drop(state);
            self.order().forget(room_id);
        }
    }

    /// Takes every socket out of a deleted room, each told `unsubscribed` (`room_deleted`).
    fn end_room(&self, room_id: i64) {
        let users: HashSet<i64> = {
            let state = self.state();
            let Some(members) = state.rooms.get(&room_id) else { return };
            members.iter().filter_map(|id| state.sessions.get(id)).map(|s| s.user_id).collect()
        };
        for user_id in users {
            self.end_subscriptions(room_id, user_id, UnsubscribeReason::RoomDeleted);
        }
    }

    /// Orders one session closed.
    pub fn close_now(&self, id: ConnectionId, order: CloseOrder) {
        if let Some(session) = self.state().sessions.get(&id) {
            session.close.order(order);
        }
    }

    /// Closes every session with `order`, one at a time over `window` (spread with jitter, so that
    /// clients do not all reconnect in the same second).
    pub async fn close_all_spread(&self, order: CloseOrder, window: std::time::Duration) {
        let ids: Vec<ConnectionId> = self.state().sessions.keys().copied().collect();
        if ids.is_empty() {
            return;
        }
        let mut delays: Vec<std::time::Duration> = ids.iter().map(|_| window.mul_f64(rand::random::<f64>())).collect();
        delays.sort();
        let started = tokio::time::Instant::now();
        for (id, delay) in ids.into_iter().zip(delays) {
            tokio::time::sleep_until(started + delay).await;
            if let Some(session) = self.state().sessions.get(&id) {
                session.close.order(order);
            }
        }
    }
}

impl Sink for RoomHub {
    /// Hands an event to every local session it concerns.
    fn dispatch(&self, event: &Event) {
        match event {
            Event::Message { message } => {
                self.waiters.wake(message.room_id);
                if !self.state().rooms.contains_key(&message.room_id) {
                    return;
                }
                // Held while queueing too: two threads dispatching at once must not swap what
                // the order just put right. (Lock order: `order`, then `state`.)
                let mut order = self.order();
                let ready = order.admit(message, Instant::now());
                if ready.is_empty() {
                    self.held.notify_one();
                }
                for message in ready {
                    self.to_room_message(message);
                }
            }
            Event::MessageUpdated { message } => {
                self.to_room(message.room_id, None, &[], &ServerFrame::MessageUpdated { message: message.clone() });
            }
            Event::MessageDeleted { room_id, seq } => {
                self.to_room(*room_id, None, &[], &ServerFrame::MessageDeleted { room_id: *room_id, seq: *seq });
            }
            Event::Notification { user_id, notification } => {
                self.to_user(*user_id, &ServerFrame::Notification { notification: notification.clone() });
            }
            Event::Reaction { room_id, seq, emoji, user, added } => {
                let frame = ServerFrame::Reaction {
                    room_id: *room_id,
                    seq: *seq,
                    emoji: emoji.clone(),
                    user: user.clone(),
                    added: *added,
                };
                self.to_room(*room_id, None, &[], &frame);
            }
            Event::Typing { room_id, user, blocked_by } => {
                let frame = ServerFrame::Typing { room_id: *room_id, user: user.clone() };
                // Not to the typist, nor to those who blocked them.
                let except: Vec<i64> = std::iter::once(user.id).chain(blocked_by.iter().copied()).collect();
                self.to_room(*room_id, None, &except, &frame);
            }
            Event::Blocked { blocked } => self.member_checks.forget_user(*blocked),
            Event::PresenceChanged { room_id, user, online } => {
                // Not to the user it is about: their own sockets know they are there.
                let frame = ServerFrame::PresenceChanged { room_id: *room_id, user: user.clone(), online: *online };
                self.to_room(*room_id, None, &[user.id], &frame);
            }
            Event::RoomUpdated { room } => {
                self.to_room(room.id, None, &[], &ServerFrame::RoomUpdated { room: room.clone() });
            }
            Event::RoomDeleted { room_id } => {
                self.member_checks.forget_room(*room_id);
                self.end_room(*room_id);
            }
            Event::UserUpdated { user, rooms } => {
                self.to_rooms_once(rooms, &ServerFrame::UserUpdated { user: user.clone() })
            }
            Event::MemberJoined { room_id, member } => {
                let frame = ServerFrame::MemberJoined { room_id: *room_id, member: member.clone() };
                self.to_room(*room_id, None, &[], &frame);
            }
            Event::MemberUpdated { room_id, member } => {
                self.member_checks.forget(*room_id, member.user.id);
                let frame = ServerFrame::MemberUpdated { room_id: *room_id, member: member.clone() };
                self.to_room(*room_id, None, &[], &frame);
            }
            Event::MemberLeft { room_id, user, reason } => {
                self.member_checks.forget(*room_id, user.id);
                self.end_subscriptions(*room_id, user.id, reason.unsubscribe_reason());
                let frame = ServerFrame::MemberLeft { room_id: *room_id, user: user.clone(), reason: *reason };
                self.to_room(*room_id, None, &[], &frame);
            }
            Event::TokenRevoked { token_id } => {
                for session in self.state().sessions.values().filter(|s| s.api_token_id == Some(*token_id)) {
                    session.close.order(CloseOrder::TOKEN_REVOKED);
                }
            }
            Event::SessionEnded { session: ended } => {
                if self.ended_sessions.end(ended) {
                    for session in self.state().sessions.values().filter(|s| s.session.as_ref() == Some(ended)) {
                        session.close.order(CloseOrder::SESSION_ENDED);
                    }
                }
            }
        }
    }

    /// Tells every session to look for missed messages (after a broker reconnect).
    fn resync(&self) {
        let resync = Arc::new(Queued::Resync);
        for session in self.state().sessions.values() {
            // A full inbox will produce a gap check with its next message anyway.
            let _ = session.inbox.offer(&resync);
        }
    }
}

/// A server frame as JSON text.
pub fn encode(frame: &ServerFrame) -> String {
    // Unwrap: these frames hold only strings, numbers and booleans, which always serialise.
    serde_json::to_string(frame).expect("server frames serialise")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{CloseOrder, CloseSignal};

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn every_wait_ends_with_the_first_order() {
        let signal = std::sync::Arc::new(CloseSignal::default());
        // Two waits out at once, as a session has (its loop's, and a write blocked on a slow client).
        let waits: Vec<_> = (0..2)
            .map(|_| {
                let signal = std::sync::Arc::clone(&signal);
                tokio::spawn(async move { signal.wait().await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(signal.order(CloseOrder::TOO_SLOW));
        assert!(!signal.order(CloseOrder::RESTARTING), "a second order is refused");
        for wait in waits {
            let order = tokio::time::timeout(WAIT, wait).await.expect("the wait ends").unwrap();
            assert_eq!(order, CloseOrder::TOO_SLOW, "the first order wins");
        }
        // A wait that starts after the order ends at once.
        assert_eq!(tokio::time::timeout(WAIT, signal.wait()).await.unwrap(), CloseOrder::TOO_SLOW);
        assert_eq!(signal.ordered(), Some(CloseOrder::TOO_SLOW));
    }

    #[tokio::test]
    async fn a_wait_without_an_order_goes_on() {
        let signal = CloseSignal::default();
        assert!(tokio::time::timeout(Duration::from_millis(50), signal.wait()).await.is_err());
        assert_eq!(signal.ordered(), None);
    }
}
