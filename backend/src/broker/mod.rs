//! Fan-out of room events to every node.
//!
//! An event is always handed to this node's sink (the hub) first, directly, so local sockets keep working
//! whatever happens to Redis. With `REDIS_URL` set it is also published to Redis, and every other
//! node hands what it receives to its own hub. Redis pub/sub may drop events (a reconnect, a node
//! restart); that costs latency, never messages: sessions deliver by seq and fill gaps from the
//! database, and every resubscription to Redis asks all local sessions to check for gaps.

pub mod redis;

use std::sync::Arc;

use crate::events::{Event, Sink};

/// Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    /// This node's listeners (the hub), wired by `Realtime::start`.
    sink: Arc<dyn Sink>,
    redis: Option<Arc<redis::RedisLink>>,
}

impl Broker {
    /// Single-node fan-out.
    pub fn in_process(sink: Arc<dyn Sink>) -> Broker {
        Broker { sink, redis: None }
    }

    /// Fan-out across nodes through Redis.
    pub fn with_redis(sink: Arc<dyn Sink>, link: Arc<redis::RedisLink>) -> Broker {
        Broker { sink, redis: Some(link) }
    }

    /// Delivers `event` to this node's sockets now and to other nodes' through Redis.
    /// Never fails: a Redis outage is logged, retried in the background, and healed by gap filling.
    pub async fn publish(&self, event: Event) {
        self.publish_all(std::slice::from_ref(&event)).await;
    }

    /// [`Broker::publish`] for several events, in order; through Redis in one round trip.
    pub async fn publish_all(&self, events: &[Event]) {
        for event in events {
            self.sink.dispatch(event);
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
