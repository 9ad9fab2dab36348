//! Fan-out of room events to every node.
//!
//! An event is always handed to this node's hub first, directly, so local sockets keep working
//! whatever happens to Redis. With `REDIS_URL` set it is also published to Redis, and every other
//! node hands what it receives to its own hub. Redis pub/sub may drop events (a reconnect, a node
//! restart); that costs latency, never messages: sessions deliver by seq and fill gaps from the
//! database, and every resubscription to Redis asks all local sessions to check for gaps.

pub mod redis;

use std::sync::Arc;

use chat_api::{Message, User};
use serde::{Deserialize, Serialize};

use crate::ws::hub::RoomHub;

/// Something that happened in a room (or to a token) that connected clients must hear about.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Message {
        message: Message,
    },
    MessageUpdated {
        message: Message,
    },
    MessageDeleted {
        room_id: i64,
        seq: i64,
    },
    Typing {
        room_id: i64,
        user: User,
    },
    PresenceChanged {
        room_id: i64,
        user: User,
        online: bool,
    },
    /// An API token was revoked: its sockets close with 4001 on every node.
    TokenRevoked {
        token_id: i64,
    },
    /// A session (refresh-token family) ended: its access tokens are refused and its sockets close with
    /// 4001 on every node.
    SessionEnded {
        session: String,
    },
    /// A user left a room: every node checks their next send there again.
    MemberLeft {
        room_id: i64,
        user_id: i64,
    },
}

/// Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    hub: Arc<RoomHub>,
    redis: Option<Arc<redis::RedisLink>>,
}

impl Broker {
    /// Single-node fan-out.
    pub fn in_process(hub: Arc<RoomHub>) -> Broker {
        Broker { hub, redis: None }
    }

    /// Fan-out across nodes through Redis.
    pub fn with_redis(hub: Arc<RoomHub>, link: Arc<redis::RedisLink>) -> Broker {
        Broker { hub, redis: Some(link) }
    }

    /// Delivers `event` to this node's sockets now and to other nodes' through Redis.
    /// Never fails: a Redis outage is logged, retried in the background, and healed by gap filling.
    pub async fn publish(&self, event: Event) {
        self.publish_all(std::slice::from_ref(&event)).await;
    }

    /// [`Broker::publish`] for several events, in order; through Redis in one round trip.
    pub async fn publish_all(&self, events: &[Event]) {
        for event in events {
            self.hub.dispatch(event);
        }
        if let Some(redis) = &self.redis {
            redis.publish_all(events).await;
        }
    }

    /// True when Redis (if configured) answers.
    pub async fn is_ready(&self) -> bool {
        match &self.redis {
            Some(redis) => redis.ping().await,
            None => true,
        }
    }
}
