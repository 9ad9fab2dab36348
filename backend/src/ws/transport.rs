//! Where a session's frames go: a WebSocket, or a stream of server-sent events (`GET /rooms/{id}/events`,
//! CONTRACT-2 "Without a WebSocket"). Everything else about delivery (the replay on subscribe, seq order,
//! gap fills, close orders, presence) is the session's, the same for both.

use std::fmt::Write as _;

use actix_web::web::Bytes;
use actix_ws::{CloseCode, CloseReason};
use bytestring::ByteString;
use tokio::sync::mpsc;

use super::hub::CloseOrder;
use super::outgoing::WsWriter;

pub enum Transport {
    Ws(WsWriter),
    /// The response body's side: a closed receiver means the client went away.
    Sse(mpsc::Sender<Bytes>),
}

/// The client went away.
pub struct Gone;

/// What a server-sent-events heartbeat writes: a comment line, which keeps proxies from closing an idle stream.
const SSE_COMMENT: &[u8] = b": keep-alive\n\n";

impl Transport {
    pub fn is_sse(&self) -> bool {
        matches!(self, Transport::Sse(_))
    }

    /// One frame (JSON text). `seq`: the message's, for new messages: SSE's `id:`, which a reconnecting
    /// client sends back as `Last-Event-ID`.
    pub async fn frame(&mut self, text: ByteString, seq: Option<i64>) -> Result<(), Gone> {
        match self {
            Transport::Ws(ws) => ws.text(text).await.map_err(|_| Gone),
            Transport::Sse(events) => events.send(sse_event(&text, seq)).await.map_err(|_| Gone),
        }
    }

    /// The heartbeat: a ping, or an SSE comment.
    pub async fn heartbeat(&mut self) -> Result<(), Gone> {
        match self {
            Transport::Ws(ws) => ws.ping(b"").await.map_err(|_| Gone),
            Transport::Sse(events) => events.send(Bytes::from_static(SSE_COMMENT)).await.map_err(|_| Gone),
        }
    }

    pub async fn pong(&mut self, bytes: &[u8]) -> Result<(), Gone> {
        match self {
            Transport::Ws(ws) => ws.pong(bytes).await.map_err(|_| Gone),
            Transport::Sse(_) => Ok(()),
        }
    }

    /// A close frame with the order's code; an SSE stream just ends (`EventSource` reconnects by itself,
    /// with `Last-Event-ID`).
    pub fn close(self, order: CloseOrder) {
        if let Transport::Ws(ws) = self {
            ws.close(CloseReason { code: CloseCode::Other(order.code), description: Some(order.reason.into()) });
        }
    }
}

/// A frame as an SSE event: `event:` its type, `id:` the seq of a message, `data:` the frame. Frames are
/// compact JSON (no newline inside), and serde writes an internally tagged enum's tag first.
fn sse_event(text: &str, seq: Option<i64>) -> Bytes {
    let kind = text.strip_prefix("{\"type\":\"").and_then(|rest| rest.split('"').next()).unwrap_or("message");
    let mut event = String::with_capacity(text.len() + 40);
    let _ = writeln!(event, "event: {kind}");
    if let Some(seq) = seq {
        let _ = writeln!(event, "id: {seq}");
    }
    let _ = write!(event, "data: {text}\n\n");
    Bytes::from(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::hub::encode;

    #[test]
    fn frames_become_events_named_by_type_and_messages_carry_their_seq() {
        let frame = chat_api::ServerFrame::Pong;
        assert_eq!(sse_event(&encode(&frame), None), "event: pong\ndata: {\"type\":\"pong\"}\n\n");
        let typed = "{\"type\":\"message\",\"message\":{\"body\":\"a\\nb\"}}";
        assert_eq!(
            sse_event(typed, Some(7)),
            "event: message\nid: 7\ndata: {\"type\":\"message\",\"message\":{\"body\":\"a\\nb\"}}\n\n"
        );
    }
}
