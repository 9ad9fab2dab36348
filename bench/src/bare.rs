//! The yardstick: a bare broadcast server (`chat-bench bare-server`), what this machine can do with the
//! same frames and no product around them.
//!
//! No auth, no database, no presence, no rate limit: `subscribe` answers `subscribed` (and an empty
//! `presence`), `send` numbers the message in its room (a seq in memory), serialises the `message` frame
//! once and queues its bytes for every subscriber, then acks. Like the real server, each socket has a
//! bounded queue and a reader that lets it fill up is closed with 4008. The bench starts it as a child
//! process, as it starts `chat-server`, so both get the machine the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

/// Frames queued per socket before it counts as too slow; the same as the real server's.
const QUEUE: usize = 256;
/// The real server's close code for a reader that fell behind.
const TOO_SLOW: u16 = 4008;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Subscribe {
        room_id: i64,
    },
    Send {
        room_id: i64,
        body: String,
        client_id: String,
    },
    #[serde(other)]
    Other,
}

/// Server frames, serialised like the real server's (`type` first).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame<'a> {
    Ready { user: User, connection_id: String },
    Subscribed { room_id: i64, last_seq: i64, truncated: bool },
    Presence { room_id: i64, online: [User; 0] },
    Message { message: &'a BareMessage },
    Ack { client_id: &'a str, message: &'a BareMessage },
    Error { code: &'a str, message: &'a str },
}

impl ServerFrame<'_> {
    fn text(&self) -> Utf8Bytes {
        // `expect`: plain structs of strings and numbers always serialise.
        serde_json::to_string(self).expect("frames serialise").into()
    }
}

/// The real server's `Message`, with one author for every message.
#[derive(Serialize)]
struct BareMessage {
    id: i64,
    room_id: i64,
    seq: i64,
    author: User,
    body: String,
    client_id: String,
    created_at: String,
    edited_at: Option<String>,
    deleted: bool,
}

#[derive(Serialize)]
struct User {
    id: i64,
    username: &'static str,
    display_name: &'static str,
    created_at: &'static str,
}

const BARE_USER: User = User { id: 1, username: "bare", display_name: "bare", created_at: "2026-01-01T00:00:00Z" };

/// One socket, as the rooms see it.
struct Peer {
    queue: mpsc::Sender<Utf8Bytes>,
    /// Rung when the queue was full: the writer closes the socket with 4008.
    too_slow: Arc<Notify>,
}

#[derive(Default)]
struct Room {
    seq: i64,
    peers: Vec<(u64, Arc<Peer>)>,
}

#[derive(Default)]
struct Hub {
    rooms: Mutex<HashMap<i64, Room>>,
    next_id: AtomicU64,
}

/// Listens on `BIND_ADDR` (default `127.0.0.1:0`), says where, and serves until SIGTERM.
pub async fn serve() -> Result<()> {
    let addr = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:0".to_string());
    let listener = TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
    // The same line as chat-server's: the bench reads the port from it.
    println!("listening on http://{}", listener.local_addr()?);
    let hub = Arc::new(Hub::default());
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                tokio::spawn(connection(tcp, Arc::clone(&hub)));
            }
            _ = terminate.recv() => return Ok(()),
        }
    }
}

async fn connection(tcp: TcpStream, hub: Arc<Hub>) {
    // Small buffers: this server is also the yardstick of idle memory per socket.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await else { return };
    let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = ws.split();
    let (queue, mut outbound) = mpsc::channel::<Utf8Bytes>(QUEUE);
    let too_slow = Arc::new(Notify::new());
    let peer = Arc::new(Peer { queue, too_slow: Arc::clone(&too_slow) });

    // The writer: everything queued goes out in one flush. It ends when the reader has gone and the rooms
    // forgot the socket (every sender of the queue dropped), closing the socket.
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                next = outbound.recv() => {
                    let Some(first) = next else { break };
                    if sink.feed(Message::Text(first)).await.is_err() {
                        return;
                    }
                    while let Ok(more) = outbound.try_recv() {
                        if sink.feed(Message::Text(more)).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
                () = too_slow.notified() => {
                    let reason = CloseFrame { code: CloseCode::from(TOO_SLOW), reason: "too slow".into() };
                    let _ = sink.send(Message::Close(Some(reason))).await;
                    return;
                }
            }
        }
        let _ = sink.close().await;
    });

    let ready = ServerFrame::Ready { user: BARE_USER, connection_id: id.to_string() };
    let _ = peer.queue.send(ready.text()).await;
    while let Some(Ok(frame)) = stream.next().await {
        let Message::Text(text) = frame else {
            if matches!(frame, Message::Close(_)) {
                break;
            }
            continue;
        };
        match serde_json::from_str::<ClientFrame>(&text) {
            Ok(ClientFrame::Subscribe { room_id }) => {
                let last_seq = {
                    let mut rooms = hub.rooms.lock().unwrap_or_else(|p| p.into_inner());
                    let room = rooms.entry(room_id).or_default();
                    room.peers.push((id, Arc::clone(&peer)));
                    room.seq
                };
                let subscribed = ServerFrame::Subscribed { room_id, last_seq, truncated: false };
                let _ = peer.queue.send(subscribed.text()).await;
                let _ = peer.queue.send(ServerFrame::Presence { room_id, online: [] }.text()).await;
            }
            Ok(ClientFrame::Send { room_id, body, client_id }) => {
                let ack = hub.broadcast(room_id, body, client_id);
                let _ = peer.queue.send(ack).await;
            }
            Ok(ClientFrame::Other) | Err(_) => {
                let error = ServerFrame::Error { code: "invalid_frame", message: "not understood" };
                let _ = peer.queue.send(error.text()).await;
            }
        }
    }
    hub.leave(id);
    drop(peer);
    let _ = writer.await;
}

impl Hub {
    /// Numbers the message, queues its frame for every subscriber of the room, and returns the ack.
    fn broadcast(&self, room_id: i64, body: String, client_id: String) -> Utf8Bytes {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let room = rooms.entry(room_id).or_default();
        room.seq += 1;
        let message = BareMessage {
            id: room_id * 1_000_000_000 + room.seq,
            room_id,
            seq: room.seq,
            author: BARE_USER,
            body,
            client_id,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            edited_at: None,
            deleted: false,
        };
        let frame = ServerFrame::Message { message: &message }.text();
        room.peers.retain(|(_, peer)| match peer.queue.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                peer.too_slow.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        drop(rooms);
        ServerFrame::Ack { client_id: &message.client_id, message: &message }.text()
    }

    fn leave(&self, id: u64) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        for room in rooms.values_mut() {
            room.peers.retain(|(peer_id, _)| *peer_id != id);
        }
    }
}
