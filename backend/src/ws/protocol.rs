//! Parsing client frames at the edge. Framing stays apart from meaning: the session only ever
//! sees a typed `ClientFrame` or a reason to answer with an error frame.

use chat_api::ClientFrame;

/// Why a text frame could not be used.
#[derive(Debug, PartialEq)]
pub enum Rejected {
    /// Not JSON at all: the client is not speaking this protocol, and the socket is closed.
    NotJson,
    /// JSON, but not a frame we know: answered with an error frame, the socket stays open.
    Invalid(String),
}

pub fn decode(text: &str) -> Result<ClientFrame, Rejected> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| Rejected::NotJson)?;
    serde_json::from_value(value).map_err(|e| Rejected::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_by_type() {
        assert_eq!(decode(r#"{"type":"ping"}"#), Ok(ClientFrame::Ping));
        assert_eq!(
            decode(r#"{"type":"subscribe","room_id":3,"since":7}"#),
            Ok(ClientFrame::Subscribe { room_id: 3, since: Some(7) })
        );
        assert_eq!(
            decode(r#"{"type":"subscribe","room_id":3}"#),
            Ok(ClientFrame::Subscribe { room_id: 3, since: None })
        );
    }

    #[test]
    fn bad_frames_are_told_apart() {
        assert_eq!(decode("hello"), Err(Rejected::NotJson));
        assert!(matches!(decode(r#"{"type":"dance"}"#), Err(Rejected::Invalid(_))));
        assert!(matches!(decode(r#"{"type":"send","room_id":1}"#), Err(Rejected::Invalid(_))));
        assert!(matches!(decode("[1,2]"), Err(Rejected::Invalid(_))));
    }

    proptest::proptest! {
        /// Whatever arrives, decoding answers; it never panics.
        #[test]
        fn decoding_never_panics(text in ".{0,200}") {
            let _ = decode(&text);
        }
    }
}
