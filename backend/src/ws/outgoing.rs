//! A WebSocket's outgoing half, without a channel: the session encodes each frame straight into the
//! buffer its connection's response body hands to actix's dispatcher.
//!
//! Why not actix-ws's `Session`: it passes every frame through a tokio channel to its response body (a
//! permit taken through a boxed future, a push, a pop, then the encoding), about 8 % of a node's CPU
//! under fan-out (perf, bench/results.md). Here a frame is encoded once, into a buffer the session and
//! the body share, and the body is woken only when that buffer was empty. The session's task and the
//! connection's dispatcher run on the same worker thread (the socket's halves are tied to it), so the
//! buffer is an `Rc<RefCell<_>>`, never contended.
//!
//! actix-ws still does the handshake and reads the client's frames: its `MessageStream` ends when the
//! connection's body is dropped, so [`take_over`] keeps actix-ws's own body inside this one, unpolled,
//! only for that signal.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use actix_codec::Encoder;
use actix_http::ws::{Codec, Message};
use actix_web::HttpResponse;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use actix_ws::CloseReason;
use bytestring::ByteString;

/// Bytes encoded ahead of the client before a write waits (past it, the session's queue fills, and a
/// reader that stays behind is closed with 4008). About as much as actix-ws's 32 queued frames.
const HIGH_WATER: usize = 16 * 1024;
/// RFC 6455: a control frame's payload is at most 125 bytes; a close frame's reason, after its 2-byte
/// code, at most 123.
const MAX_CONTROL_PAYLOAD: usize = 125;
const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// What the session and the body share.
#[derive(Default)]
struct Outbox {
    /// Encoded frames the body has not handed to the dispatcher yet.
    buf: BytesMut,
    codec: Codec,
    /// A close frame was written, or the session ended: the body ends once `buf` is out.
    closing: bool,
    /// The connection dropped its body: writes fail from now on.
    gone: bool,
    /// The body, waiting for frames.
    body: Option<Waker>,
    /// The session, waiting for room under `HIGH_WATER`.
    writer: Option<Waker>,
}

impl Outbox {
    fn encode(&mut self, message: Message) {
        let was_empty = self.buf.is_empty();
        // The server's codec never fails to encode (only a client's masking could).
        let _ = self.codec.encode(message, &mut self.buf);
        if was_empty && let Some(body) = self.body.take() {
            body.wake();
        }
    }
}

/// The session's side: writes frames.
pub struct WsWriter {
    outbox: Rc<RefCell<Outbox>>,
}

/// The client went away (or the socket was closed).
#[derive(Debug)]
pub struct Closed;

/// The connection's side: the response body, which hands the encoded frames to actix's dispatcher.
struct WsBody {
    outbox: Rc<RefCell<Outbox>>,
    /// actix-ws's own body, never polled: dropping it is what ends actix-ws's `MessageStream`.
    _reader_signal: BoxBody,
}

/// Replaces the body of actix-ws's handshake response with one the returned writer fills.
pub fn take_over(response: HttpResponse, session: actix_ws::Session) -> (HttpResponse, WsWriter) {
    // actix-ws's sender: its body is never polled, so nothing may be sent through it.
    drop(session);
    let (response, original) = response.into_parts();
    let outbox = Rc::new(RefCell::new(Outbox::default()));
    let body = WsBody { outbox: Rc::clone(&outbox), _reader_signal: original };
    (response.set_body(BoxBody::new(body)), WsWriter { outbox })
}

impl WsWriter {
    pub async fn text(&self, text: ByteString) -> Result<(), Closed> {
        self.write(Message::Text(text)).await
    }

    pub async fn ping(&self, bytes: &[u8]) -> Result<(), Closed> {
        self.write(Message::Ping(control_payload(bytes))).await
    }

    pub async fn pong(&self, bytes: &[u8]) -> Result<(), Closed> {
        self.write(Message::Pong(control_payload(bytes))).await
    }

    /// Writes the close frame (past `HIGH_WATER` too: it is the last) and ends the body after it.
    pub fn close(&self, mut reason: CloseReason) {
        if let Some(description) = reason.description.as_mut() {
            let mut end = description.len().min(MAX_CLOSE_REASON);
            while !description.is_char_boundary(end) {
                end -= 1;
            }
            description.truncate(end);
        }
        let mut outbox = self.outbox.borrow_mut();
        if outbox.closing || outbox.gone {
            return;
        }
        outbox.encode(Message::Close(Some(reason)));
        outbox.closing = true;
    }

    /// Encodes `message` once the buffer is under `HIGH_WATER` (at once unless the client stops reading).
    async fn write(&self, message: Message) -> Result<(), Closed> {
        let mut message = Some(message);
        poll_fn(|cx| {
            let mut outbox = self.outbox.borrow_mut();
            if outbox.gone || outbox.closing {
                return Poll::Ready(Err(Closed));
            }
            if outbox.buf.len() >= HIGH_WATER {
                outbox.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            if let Some(message) = message.take() {
                outbox.encode(message);
            }
            Poll::Ready(Ok(()))
        })
        .await
    }
}

impl Drop for WsWriter {
    /// The session ended: the body ends after what is buffered (the connection then closes).
    fn drop(&mut self) {
        let mut outbox = self.outbox.borrow_mut();
        outbox.closing = true;
        if let Some(body) = outbox.body.take() {
            body.wake();
        }
    }
}

impl MessageBody for WsBody {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        let mut outbox = self.outbox.borrow_mut();
        if !outbox.buf.is_empty() {
            // Taken whole, not split: a buffer that once held a large frame is not kept for ever.
            let bytes = std::mem::take(&mut outbox.buf).freeze();
            if let Some(writer) = outbox.writer.take() {
                writer.wake();
            }
            return Poll::Ready(Some(Ok(bytes)));
        }
        if outbox.closing {
            return Poll::Ready(None);
        }
        if !outbox.body.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            outbox.body = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for WsBody {
    /// The connection is gone: the session's next write fails.
    fn drop(&mut self) {
        let mut outbox = self.outbox.borrow_mut();
        outbox.gone = true;
        if let Some(writer) = outbox.writer.take() {
            writer.wake();
        }
    }
}

fn control_payload(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&bytes[..bytes.len().min(MAX_CONTROL_PAYLOAD)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_codec::Decoder;
    use actix_http::ws::Frame;
    use std::future::Future;
    use std::task::Waker;

    fn pair() -> (WsWriter, WsBody) {
        let outbox = Rc::new(RefCell::new(Outbox::default()));
        let body = WsBody { outbox: Rc::clone(&outbox), _reader_signal: BoxBody::new(()) };
        (WsWriter { outbox }, body)
    }

    fn next(body: &mut WsBody) -> Poll<Option<Bytes>> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(body).poll_next(&mut cx).map(|item| item.map(|bytes| bytes.unwrap()))
    }

    /// What a client decodes from `bytes`.
    fn frames(bytes: Bytes) -> Vec<Frame> {
        let mut codec = Codec::new().client_mode();
        let mut buf = BytesMut::from(&bytes[..]);
        std::iter::from_fn(|| codec.decode(&mut buf).unwrap()).collect()
    }

    fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
        let mut cx = Context::from_waker(Waker::noop());
        std::pin::pin!(future).poll(&mut cx)
    }

    #[test]
    fn frames_written_before_the_body_is_polled_go_out_together_in_order() {
        let (writer, mut body) = pair();
        assert!(next(&mut body).is_pending());
        assert!(poll_once(writer.text("one".into())).is_ready());
        assert!(poll_once(writer.text("two".into())).is_ready());
        let Poll::Ready(Some(bytes)) = next(&mut body) else { panic!("the frames are out") };
        let texts: Vec<_> = frames(bytes)
            .into_iter()
            .map(|f| match f {
                Frame::Text(t) => t,
                other => panic!("a text frame, not {other:?}"),
            })
            .collect();
        assert_eq!(texts, ["one", "two"]);
        assert!(next(&mut body).is_pending());
    }

    #[test]
    fn a_client_that_stops_reading_makes_writes_wait_and_the_close_still_goes_out() {
        let (writer, mut body) = pair();
        let big = ByteString::from("x".repeat(HIGH_WATER));
        assert!(poll_once(writer.text(big.clone())).is_ready());
        assert!(poll_once(writer.text(big)).is_pending(), "past the high-water mark a write waits");
        writer.close(CloseReason { code: actix_ws::CloseCode::Other(4008), description: Some("é".repeat(100)) });
        let Poll::Ready(Some(bytes)) = next(&mut body) else { panic!("the frames are out") };
        let frames = frames(bytes);
        assert_eq!(frames.len(), 2);
        let Frame::Close(Some(reason)) = &frames[1] else { panic!("a close frame last") };
        assert_eq!(reason.code, actix_ws::CloseCode::Other(4008));
        assert_eq!(reason.description.as_deref().map(str::len), Some(122), "cut at a char boundary under 123");
        assert_eq!(next(&mut body), Poll::Ready(None), "the body ends after the close frame");
        assert!(matches!(poll_once(writer.text("late".into())), Poll::Ready(Err(Closed))));
    }

    #[test]
    fn a_dropped_connection_fails_the_next_write_and_a_dropped_session_ends_the_body() {
        let (writer, body) = pair();
        drop(body);
        assert!(matches!(poll_once(writer.text("lost".into())), Poll::Ready(Err(Closed))));

        let (writer, mut body) = pair();
        assert!(poll_once(writer.ping(&[7; 200])).is_ready());
        drop(writer);
        let Poll::Ready(Some(bytes)) = next(&mut body) else { panic!("the ping is out") };
        let frames = frames(bytes);
        assert!(matches!(&frames[..], [Frame::Ping(p)] if p.len() == MAX_CONTROL_PAYLOAD));
        assert_eq!(next(&mut body), Poll::Ready(None));
    }
}
