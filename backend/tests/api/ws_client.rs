//! A real WebSocket client for the tests (tokio-tungstenite): connect with a bearer token or a
//! ticket, send frames, and wait for the frame of a given type with a deadline.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::TestApp;

/// How long a test waits for a frame it expects.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection attempt ended.
// One value per connection attempt in a test: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Connect {
    Open(WsClient),
    /// The upgrade was refused with this HTTP status and body.
    Refused(u16, String),
}

impl TestApp {
    pub fn ws_url(&self, query: &str) -> String {
        format!("{}/api/v1/ws{query}", self.address.replacen("http://", "ws://", 1))
    }

    /// Connects with `Authorization: Bearer <token>` and reads the `ready` frame.
    pub async fn ws(&self, token: &str) -> WsClient {
        match self.ws_connect(&self.ws_url(""), Some(token), None).await {
            Connect::Open(mut client) => {
                client.expect("ready").await;
                client
            }
            Connect::Refused(status, body) => panic!("the upgrade was refused: {status} {body}"),
        }
    }

    /// Connects with a ticket (`?ticket=`, no header), as a browser does, and reads the `ready` frame.
    pub async fn ws_with_ticket(&self, ticket: &str) -> WsClient {
        match self.ws_connect(&self.ticket_url(ticket), None, None).await {
            Connect::Open(mut client) => {
                client.expect("ready").await;
                client
            }
            Connect::Refused(status, body) => panic!("the upgrade with a ticket was refused: {status} {body}"),
        }
    }

    /// Connects like `ws`, over a TCP socket with a small fixed receive buffer (no autotuning): a
    /// client that stops reading backs up into the server after a few hundred KiB, whatever the
    /// machine's TCP settings.
    pub async fn ws_small_buffer(&self, token: &str) -> WsClient {
        let addr: std::net::SocketAddr =
            self.address.trim_start_matches("http://").parse().expect("the server address is host:port");
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket.set_recv_buffer_size(4096).expect("set SO_RCVBUF");
        let tcp = socket.connect(addr).await.expect("connect to the server");
        let mut request = self.ws_url("").into_client_request().expect("a valid ws url");
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
            .await
            .unwrap_or_else(|e| panic!("cannot open the websocket: {e}"));
        let mut client = WsClient { stream };
        client.expect("ready").await;
        client
    }

    /// The socket URL carrying `ticket`.
    pub fn ticket_url(&self, ticket: &str) -> String {
        self.ws_url(&format!("?ticket={}", crate::helpers::percent_encode(ticket)))
    }

    /// Connects without reading anything.
    pub async fn ws_connect(&self, url: &str, token: Option<&str>, origin: Option<&str>) -> Connect {
        self.ws_try_connect(url, token, origin).await.unwrap_or_else(|e| panic!("cannot connect the websocket: {e}"))
    }

    /// Like `ws_connect`, but a failure below HTTP (refused connection, reset) is an `Err`.
    pub async fn ws_try_connect(
        &self,
        url: &str,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Connect, tungstenite::Error> {
        let mut request = url.into_client_request().expect("a valid ws url");
        if let Some(token) = token {
            request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _)) => Ok(Connect::Open(WsClient { stream })),
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body =
                    response.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                Ok(Connect::Refused(status, body))
            }
            Err(e) => Err(e),
        }
    }
}

impl WsClient {
    pub async fn send(&mut self, frame: Value) {
        self.stream.send(WsMessage::text(frame.to_string())).await.expect("send a frame");
    }

    pub async fn send_raw(&mut self, message: WsMessage) {
        self.stream.send(message).await.expect("send a raw frame");
    }

    /// Sends a frame; false when the socket is already closed (a flood test keeps sending until then).
    pub async fn try_send(&mut self, frame: Value) -> bool {
        self.stream.send(WsMessage::text(frame.to_string())).await.is_ok()
    }

    /// The next frame or close within `wait`; `None` when nothing came in that time.
    pub async fn next_event_within(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()?;
            match next {
                Some(Ok(WsMessage::Text(text))) => {
                    return Some(Event::Frame(serde_json::from_str(&text).expect("server frames are JSON")));
                }
                Some(Ok(WsMessage::Close(frame))) => return Some(Event::Closed(frame.map(|f| u16::from(f.code)))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Event::Closed(None)),
            }
        }
    }

    /// Reads for `wait` and panics if a frame matching `unwanted` arrives (or the socket closes);
    /// returns the other frames read meanwhile.
    pub async fn expect_silence(
        &mut self,
        wait: Duration,
        what: &str,
        unwanted: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut others = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return others;
            }
            match self.next_event_within(left).await {
                None => return others,
                Some(Event::Frame(f)) if unwanted(&f) => panic!("expected no {what}, got {f}"),
                Some(Event::Frame(f)) => others.push(f),
                Some(Event::Closed(code)) => panic!("socket closed ({code:?}) while expecting no {what}"),
            }
        }
    }

    /// Sends `ping` and reads up to the `pong`; returns the frames that came before it. The server
    /// handles a socket's frames in order, so whatever the client sent before is handled by then.
    pub async fn ping_pong(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"})).await;
        let mut before = Vec::new();
        loop {
            match self.next_event().await {
                Event::Frame(f) if f["type"] == "pong" => return before,
                Event::Frame(f) => before.push(f),
                Event::Closed(code) => panic!("socket closed ({code:?}) while waiting for pong"),
            }
        }
    }

    /// Reads until the socket closes, within `wait`; returns the frames read and the close code.
    /// Panics if the socket is still open after `wait`.
    pub async fn read_to_close(&mut self, wait: Duration) -> (Vec<Value>, Option<u16>) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event_within(left).await {
                Some(Event::Frame(f)) => frames.push(f),
                Some(Event::Closed(code)) => return (frames, code),
                None => panic!(
                    "the socket is still open after {wait:?} ({} frames read, last {:?})",
                    frames.len(),
                    frames.last()
                ),
            }
        }
    }

    /// The next JSON frame, or `None` when the socket closed (with its close code, see `next_event`).
    pub async fn next_frame(&mut self) -> Option<Value> {
        match self.next_event().await {
            Event::Frame(v) => Some(v),
            Event::Closed(_) => None,
        }
    }

    /// The next frame or the close, whichever comes; panics after `FRAME_TIMEOUT`.
    pub async fn next_event(&mut self) -> Event {
        loop {
            let next = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next()).await.expect("a frame in time");
            match next {
                Some(Ok(WsMessage::Text(text))) => {
                    return Event::Frame(serde_json::from_str(&text).expect("server frames are JSON"));
                }
                Some(Ok(WsMessage::Close(frame))) => return Event::Closed(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue, // ping/pong
                Some(Err(_)) | None => return Event::Closed(None),
            }
        }
    }

    /// Reads until a frame of `kind` arrives and returns it; panics if the socket closes first.
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            match self.next_event().await {
                Event::Frame(f) if f["type"] == kind => return f,
                Event::Frame(_) => continue,
                Event::Closed(code) => panic!("socket closed ({code:?}) while waiting for {kind}"),
            }
        }
    }

    /// Reads until the socket closes and returns the close code; panics on a timeout.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            if let Event::Closed(code) = self.next_event().await {
                return code;
            }
        }
    }

    /// Subscribes and returns the `message` frames replayed before `subscribed`, and `subscribed`.
    pub async fn subscribe(&mut self, room_id: i64, since: Option<i64>) -> (Vec<Value>, Value) {
        let mut frame = json!({"type": "subscribe", "room_id": room_id});
        if let Some(since) = since {
            frame["since"] = json!(since);
        }
        self.send(frame).await;
        let mut replayed = Vec::new();
        loop {
            let f = self.next_frame().await.expect("the socket stays open while subscribing");
            match f["type"].as_str() {
                Some("message") if f["message"]["room_id"] == room_id => replayed.push(f),
                Some("subscribed") if f["room_id"] == room_id => return (replayed, f),
                Some("error") => panic!("subscribe failed: {f}"),
                _ => {}
            }
        }
    }

    /// Subscribes with `since` and returns every frame of `room_id` before `subscribed` (messages, edits,
    /// deletes, in the order they came), and `subscribed`.
    pub async fn resume(&mut self, room_id: i64, since: i64) -> (Vec<Value>, Value) {
        self.send(json!({"type": "subscribe", "room_id": room_id, "since": since})).await;
        let mut replayed = Vec::new();
        loop {
            let f = self.next_frame().await.expect("the socket stays open while subscribing");
            let of_room = f["room_id"] == room_id || f["message"]["room_id"] == room_id;
            match f["type"].as_str() {
                Some("subscribed") if of_room => return (replayed, f),
                Some("error") => panic!("subscribe failed: {f}"),
                Some("presence" | "presence_changed" | "typing") => {}
                Some(_) if of_room => replayed.push(f),
                _ => {}
            }
        }
    }

    /// Subscribes and reads until both `subscribed` and `presence` of `room_id` arrived. Returns the
    /// `message` frames replayed (asserting none comes after `subscribed`), `subscribed` and `presence`.
    pub async fn subscribe_with_presence(&mut self, room_id: i64, since: Option<i64>) -> (Vec<Value>, Value, Value) {
        let mut frame = json!({"type": "subscribe", "room_id": room_id});
        if let Some(since) = since {
            frame["since"] = json!(since);
        }
        self.send(frame).await;
        let (mut replayed, mut subscribed, mut presence) = (Vec::new(), None, None);
        while subscribed.is_none() || presence.is_none() {
            let f = self.next_frame().await.expect("the socket stays open while subscribing");
            match f["type"].as_str() {
                Some("message") if f["message"]["room_id"] == room_id => {
                    assert!(subscribed.is_none(), "a replayed message came after `subscribed`: {f}");
                    replayed.push(f);
                }
                Some("subscribed") if f["room_id"] == room_id => subscribed = Some(f),
                Some("presence") if f["room_id"] == room_id => presence = Some(f),
                Some("error") => panic!("subscribe failed: {f}"),
                _ => {}
            }
        }
        (replayed, subscribed.unwrap(), presence.unwrap())
    }

    /// The seqs of the next `n` `message` frames of `room_id`, ignoring other frames.
    pub async fn message_seqs(&mut self, room_id: i64, n: usize) -> Vec<i64> {
        let mut seqs = Vec::with_capacity(n);
        while seqs.len() < n {
            let f = self.expect("message").await;
            if f["message"]["room_id"] == room_id {
                seqs.push(f["message"]["seq"].as_i64().expect("seq"));
            }
        }
        seqs
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

pub enum Event {
    Frame(Value),
    Closed(Option<u16>),
}
