//! The Redis side of the broker: a deadpool pool for commands (PUBLISH, tickets, presence) and one
//! dedicated pub/sub connection per node for receiving, which reconnects with backoff for ever.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::{Config as PoolConfig, Pool, Runtime};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::events::{Event, Sink};

/// Every node publishes to and listens on this one channel; hubs ignore rooms they do not serve.
const CHANNEL: &str = "chat:events";
/// Reconnect backoff bounds for the subscriber.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a failed PUBLISH is retried before the event is left to gap filling.
const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(30);

/// What travels on the channel: the event and the node that published it. Sent borrowed,
/// received owned ([`Received`]): the same JSON.
#[derive(Serialize)]
struct Envelope<'a> {
    node: &'a str,
    event: &'a Event,
}

#[derive(Deserialize)]
struct Received {
    node: String,
    event: Event,
}

pub struct RedisLink {
    pool: Pool,
    node_id: String,
}

impl RedisLink {
    /// Opens the pool and starts the subscriber task. Fails only on a malformed URL: an unreachable
    /// Redis is retried in the background, so a node can start before Redis does.
    pub fn start(url: &str, node_id: String, sink: Arc<dyn Sink>) -> Result<Arc<RedisLink>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let pool = PoolConfig::from_url(url).create_pool(Some(Runtime::Tokio1)).map_err(|e| {
            redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "cannot create the Redis pool",
                e.to_string(),
            ))
        })?;
        let link = Arc::new(RedisLink { pool, node_id });
        tokio::spawn(subscribe_forever(client, link.node_id.clone(), sink));
        Ok(link)
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub async fn ping(&self) -> bool {
        let Ok(mut conn) = self.pool.get().await else { return false };
        redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
    }

    /// Publishes `events` in order, in one round trip (a pipeline of PUBLISHes on one connection,
    /// which Redis runs in order). Published one by one, a node's messages could leave no faster
    /// than one per round trip, and under load they queued up behind each other.
    pub async fn publish_all(self: &Arc<Self>, events: &[Event]) {
        let payloads: Vec<String> = events
            .iter()
            .filter_map(|event| match serde_json::to_string(&Envelope { node: &self.node_id, event }) {
                Ok(payload) => Some(payload),
                Err(e) => {
                    tracing::error!("cannot encode an event: {e}");
                    None
                }
            })
            .collect();
        if payloads.is_empty() || self.try_publish(&payloads).await.is_ok() {
            return;
        }
        // Retry in the background: the caller's messages are committed and acknowledged already.
        let link = Arc::clone(self);
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + PUBLISH_RETRY_FOR;
            let mut backoff = BACKOFF_MIN;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(backoff).await;
                if link.try_publish(&payloads).await.is_ok() {
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            tracing::warn!("gave up publishing events to Redis; other nodes will fill the gaps from the database");
        });
    }

    async fn try_publish(&self, payloads: &[String]) -> Result<(), ()> {
        let result = async {
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            let mut pipe = redis::pipe();
            for payload in payloads {
                pipe.publish(CHANNEL, payload).ignore();
            }
            pipe.query_async::<()>(&mut conn).await.map_err(|e| e.to_string())
        }
        .await;
        result.map_err(|e| {
            metrics::counter!("broker_publish_failures_total").increment(1);
            tracing::warn!("cannot publish to Redis: {e}");
        })
    }
}

/// Receives other nodes' events for as long as the process lives.
async fn subscribe_forever(client: redis::Client, node_id: String, sink: Arc<dyn Sink>) {
    let mut backoff = BACKOFF_MIN;
    let mut connected_before = false;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(CHANNEL).await {
                Ok(()) => {
                    if connected_before {
                        metrics::counter!("broker_reconnects_total").increment(1);
                        tracing::info!("resubscribed to Redis; checking every socket for missed messages");
                    }
                    // Whatever was published while we were away is in the database: look for gaps.
                    sink.resync();
                    connected_before = true;
                    backoff = BACKOFF_MIN;
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        match serde_json::from_slice::<Received>(msg.get_payload_bytes()) {
                            Ok(envelope) if envelope.node != node_id => sink.dispatch(&envelope.event),
                            Ok(_) => {} // our own event: the hub had it first-hand
                            Err(e) => tracing::warn!("ignoring an unreadable event from Redis: {e}"),
                        }
                    }
                    tracing::warn!("lost the Redis subscription; reconnecting");
                }
                Err(e) => tracing::warn!("cannot subscribe on Redis: {e}"),
            },
            Err(e) => tracing::warn!("cannot reach Redis for pub/sub: {e}"),
        }
        // Full jitter, so that many nodes do not reconnect in step.
        tokio::time::sleep(backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
