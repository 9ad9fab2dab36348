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

    /// Every value of a `type` property's enum anywhere in a schema: the tags of a tagged enum.
    fn tags(schema: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match schema {
            serde_json::Value::Object(map) => {
                if let Some(values) = map.get("properties").and_then(|p| p["type"]["enum"].as_array()) {
                    out.extend(values.iter().filter_map(|v| v.as_str().map(str::to_owned)));
                }
                map.values().for_each(|v| tags(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| tags(v, out)),
            _ => {}
        }
    }

    /// The frame types an AsyncAPI operation lists, following its `$ref`s.
    fn described(doc: &serde_json::Value, operation: &str) -> std::collections::BTreeSet<String> {
        let resolve = |r: &str| doc.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling $ref {r}"));
        doc["operations"][operation]["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("operation {operation} lists no messages"))
            .iter()
            .map(|m| {
                let in_channel = resolve(m["$ref"].as_str().expect("a $ref"));
                let message = resolve(in_channel["$ref"].as_str().expect("a $ref"));
                message["payload"]["properties"]["type"]["const"].as_str().expect("a type const").to_owned()
            })
            .collect()
    }

    /// `openapi/asyncapi.yaml` describes exactly the frames the code knows, each in its direction:
    /// a new frame variant without its description fails here.
    #[test]
    fn asyncapi_describes_every_frame() {
        use utoipa::PartialSchema;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/asyncapi.yaml");
        let text = std::fs::read_to_string(path).expect("openapi/asyncapi.yaml exists");
        let doc: serde_json::Value = serde_norway::from_str(&text).expect("asyncapi.yaml is valid YAML");
        assert_eq!(doc["asyncapi"], "3.0.0");
        for (schema, operation) in [
            (serde_json::to_value(chat_api::ClientFrame::schema()).unwrap(), "receiveClientFrames"),
            (serde_json::to_value(chat_api::ServerFrame::schema()).unwrap(), "sendServerFrames"),
        ] {
            let mut variants = std::collections::BTreeSet::new();
            tags(&schema, &mut variants);
            assert!(variants.len() >= 6, "no frame tags found in {schema}");
            assert_eq!(described(&doc, operation), variants, "asyncapi.yaml {operation} differs from the code");
        }
    }

    proptest::proptest! {
        /// Whatever arrives, decoding answers; it never panics.
        #[test]
        fn decoding_never_panics(text in ".{0,200}") {
            let _ = decode(&text);
        }
    }
}
