//! Presence: a user is online in a room while any of their sockets, on any node, is subscribed to it.
//!
//! Without Redis the hub already knows everything. With Redis, each node records its (room, user)
//! pairs in a sorted set per room, `chat:presence:{room}`, member `{user}:{node}`, scored by an
//! expiry time that the node pushes forward every `HEARTBEAT`. A node that dies stops doing so; the
//! survivors' sweeps find its entries expired within `ENTRY_TTL + SWEEP` and announce those users
//! offline, well inside the contract's 60 seconds.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::Pool;
use redis::AsyncCommands;

use crate::ws::hub::RoomHub;

/// How long a node's presence entry lives without being refreshed.
pub const ENTRY_TTL: Duration = Duration::from_secs(40);
/// How often a node refreshes its entries and sweeps expired ones.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

pub enum Presence {
    Local(Arc<RoomHub>),
    Redis { hub: Arc<RoomHub>, pool: Pool, node_id: String },
}

fn key(room_id: i64) -> String {
    format!("chat:presence:{room_id}")
}

fn member(user_id: i64, node_id: &str) -> String {
    format!("{user_id}:{node_id}")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn user_of(member: &str) -> Option<i64> {
    member.split_once(':').and_then(|(user, _)| user.parse().ok())
}

impl Presence {
    /// Records that a socket of `user_id` subscribed to `room_id` here. True when that made the user
    /// newly online in the room (to be announced).
    pub async fn joined(&self, room_id: i64, user_id: i64) -> bool {
        match self {
            Presence::Local(hub) => hub.local_subscriptions(room_id, user_id) == 1,
            Presence::Redis { hub, pool, node_id } => {
                if hub.local_subscriptions(room_id, user_id) != 1 {
                    return false;
                }
                let Ok(mut conn) = pool.get().await else { return false };
                let elsewhere = online_elsewhere(&mut conn, room_id, user_id, node_id).await;
                let expires = now_ms() + ENTRY_TTL.as_millis() as i64;
                let _: Result<(), _> = conn.zadd(key(room_id), member(user_id, node_id), expires).await;
                !elsewhere
            }
        }
    }

    /// Records that a socket of `user_id` left `room_id` here. True when the user is now offline in
    /// the room everywhere (to be announced).
    pub async fn left(&self, room_id: i64, user_id: i64) -> bool {
        match self {
            Presence::Local(hub) => hub.local_subscriptions(room_id, user_id) == 0,
            Presence::Redis { hub, pool, node_id } => {
                if hub.local_subscriptions(room_id, user_id) != 0 {
                    return false;
                }
                let Ok(mut conn) = pool.get().await else { return false };
                let _: Result<(), _> = conn.zrem(key(room_id), member(user_id, node_id)).await;
                !online_elsewhere(&mut conn, room_id, user_id, node_id).await
            }
        }
    }

    /// The users online in `room_id`.
    pub async fn online(&self, room_id: i64) -> Vec<i64> {
        let mut users: Vec<i64> = match self {
            Presence::Local(hub) => hub.local_users_in(room_id),
            Presence::Redis { hub, pool, .. } => {
                let mut users = hub.local_users_in(room_id);
                if let Ok(mut conn) = pool.get().await {
                    let live: Vec<String> =
                        conn.zrangebyscore(key(room_id), now_ms(), "+inf").await.unwrap_or_default();
                    users.extend(live.iter().filter_map(|m| user_of(m)));
                }
                users
            }
        };
        users.sort_unstable();
        users.dedup();
        users
    }

    /// Refreshes this node's entries and removes expired ones of dead nodes. Returns the
    /// (room, user) pairs that thereby went offline, for the caller to announce.
    pub async fn heartbeat(&self) -> Vec<(i64, i64)> {
        let Presence::Redis { hub, pool, node_id } = self else { return Vec::new() };
        let Ok(mut conn) = pool.get().await else { return Vec::new() };
        let expires = now_ms() + ENTRY_TTL.as_millis() as i64;
        let pairs = hub.local_presence();
        for (room_id, user_id) in &pairs {
            let _: Result<(), _> = conn.zadd(key(*room_id), member(*user_id, node_id), expires).await;
        }
        let mut rooms: Vec<i64> = pairs.iter().map(|(r, _)| *r).collect();
        rooms.dedup();
        let mut gone = Vec::new();
        for room_id in rooms {
            let expired: Vec<String> = conn.zrangebyscore(key(room_id), "-inf", now_ms()).await.unwrap_or_default();
            for m in expired {
                // Only the node whose ZREM removes the entry announces it, so it is announced once.
                let removed: i64 = conn.zrem(key(room_id), &m).await.unwrap_or(0);
                if let (1, Some(user_id)) = (removed, user_of(&m))
                    && hub.local_subscriptions(room_id, user_id) == 0
                    && !online_elsewhere(&mut conn, room_id, user_id, node_id).await
                {
                    gone.push((room_id, user_id));
                }
            }
        }
        gone
    }
}

/// True when another node holds a live entry for the user in the room.
async fn online_elsewhere(conn: &mut deadpool_redis::Connection, room_id: i64, user_id: i64, node_id: &str) -> bool {
    let live: Vec<String> = conn.zrangebyscore(key(room_id), now_ms(), "+inf").await.unwrap_or_default();
    let mine = member(user_id, node_id);
    live.iter().any(|m| *m != mine && user_of(m) == Some(user_id))
}
