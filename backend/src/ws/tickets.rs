//! WebSocket tickets: a browser cannot set headers on a WebSocket, so it trades its bearer token
//! for a ticket (`POST /ws/ticket`) and puts that in the URL. A ticket works once, for 30 seconds,
//! on any node (kept in Redis when configured). Only its hash is stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_redis::Pool;
use redis::AsyncCommands;

use crate::caller::Caller;
use crate::domain::credentials::{hash_secret, new_secret};
use crate::error::ApiError;

pub const TICKET_TTL: Duration = Duration::from_secs(30);
const TICKET_PREFIX: &str = "chat_wst_";

pub enum TicketStore {
    Memory(Mutex<HashMap<String, (Caller, Instant)>>),
    Redis(Pool),
}

impl TicketStore {
    pub fn in_process() -> TicketStore {
        TicketStore::Memory(Mutex::new(HashMap::new()))
    }

    /// A new ticket for `caller`.
    pub async fn issue(&self, caller: Caller) -> Result<String, ApiError> {
        let ticket = new_secret(TICKET_PREFIX);
        let key = hash_secret(&ticket);
        match self {
            TicketStore::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                // Expired tickets are swept here, so the map stays as small as the last 30 seconds.
                map.retain(|_, (_, expires)| *expires > now);
                map.insert(key, (caller, now + TICKET_TTL));
            }
            TicketStore::Redis(pool) => {
                let value = serde_json::to_string(&caller).map_err(ApiError::internal)?;
                let mut conn = pool.get().await.map_err(redis_down)?;
                conn.set_ex::<_, _, ()>(redis_key(&key), value, TICKET_TTL.as_secs()).await.map_err(redis_down)?;
            }
        }
        Ok(ticket)
    }

    /// The caller of a live ticket, spending it; `None` for an unknown, used or expired one.
    pub async fn redeem(&self, ticket: &str) -> Result<Option<Caller>, ApiError> {
        let key = hash_secret(ticket);
        match self {
            TicketStore::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                Ok(map.remove(&key).filter(|(_, expires)| *expires > Instant::now()).map(|(caller, _)| caller))
            }
            TicketStore::Redis(pool) => {
                let mut conn = pool.get().await.map_err(redis_down)?;
                // GETDEL: two nodes cannot both spend one ticket.
                let value: Option<String> = conn.get_del(redis_key(&key)).await.map_err(redis_down)?;
                Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
            }
        }
    }
}

fn redis_key(hash: &str) -> String {
    format!("chat:ticket:{hash}")
}

fn redis_down(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!("Redis unavailable for tickets: {e}");
    ApiError::Unavailable { detail: "Redis is unavailable; retry shortly.".into() }
}
