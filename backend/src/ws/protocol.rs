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
    // serde reads an internally tagged enum from an array too, taking the first element as the tag
    // (`["ping"]` would be a ping, `["read", 1, 2]` a read): the contract's frames are objects.
    if !value.is_object() {
        return Err(Rejected::Invalid("a frame is a JSON object with a `type`".into()));
    }
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
        // Found by the fuzzing below: serde takes an array's first element as the tag.
        assert!(matches!(decode(r#"["ping"]"#), Err(Rejected::Invalid(_))));
        assert!(matches!(decode(r#"["read", 1, 2]"#), Err(Rejected::Invalid(_))));
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

    mod fuzz {
        //! The decoder under proptest: arbitrary text, arbitrary JSON, and valid frames mutated one
        //! field, one key or one byte at a time. Whatever arrives, `decode` answers (never panics):
        //! text that is not JSON is `NotJson` (the socket closes), any JSON is a frame or `Invalid`
        //! (an error frame, the socket stays open), and a frame decoded is the frame that was meant.
        //! Bounded: `CASES` cases per property (about a second in all, debug build).

        use proptest::prelude::*;
        use serde_json::{Value, json};

        use super::super::{Rejected, decode};
        use chat_api::ClientFrame;

        const CASES: u32 = 2000;

        /// Any JSON value, up to a few levels deep.
        fn any_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
                ".{0,20}".prop_map(Value::from),
                prop::sample::select(vec!["ping", "subscribe", "send", "typing", "read", "unsubscribe"])
                    .prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                    prop::collection::btree_map(
                        prop_oneof![
                            Just("type".to_owned()),
                            Just("room_id".to_owned()),
                            Just("body".to_owned()),
                            "[a-z_]{1,8}"
                        ],
                        inner,
                        0..6
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// Any well-formed client frame.
        fn any_frame() -> impl Strategy<Value = ClientFrame> {
            prop_oneof![
                (any::<i64>(), any::<Option<i64>>())
                    .prop_map(|(room_id, since)| ClientFrame::Subscribe { room_id, since }),
                any::<i64>().prop_map(|room_id| ClientFrame::Unsubscribe { room_id }),
                (any::<i64>(), ".{0,40}", ".{0,20}", any::<Option<i64>>()).prop_map(
                    |(room_id, body, client_id, reply_to)| ClientFrame::Send { room_id, body, client_id, reply_to }
                ),
                any::<i64>().prop_map(|room_id| ClientFrame::Typing { room_id }),
                (any::<i64>(), any::<i64>()).prop_map(|(room_id, seq)| ClientFrame::Read { room_id, seq }),
                Just(ClientFrame::Ping),
            ]
        }

        /// One change to a frame's JSON object.
        #[derive(Debug, Clone)]
        enum Mutation {
            /// Drop the key at this index (of the sorted keys).
            Remove(usize),
            /// Give the key at this index another value.
            Replace(usize, Value),
            /// Add a key (maybe one the frame has, maybe `type`).
            Insert(String, Value),
        }

        fn any_mutation() -> impl Strategy<Value = Mutation> {
            prop_oneof![
                any::<usize>().prop_map(Mutation::Remove),
                (any::<usize>(), any_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
                (prop_oneof![Just("type".to_owned()), Just("since".to_owned()), "[a-z_]{1,8}"], any_json())
                    .prop_map(|(k, v)| Mutation::Insert(k, v)),
            ]
        }

        fn mutate(frame: &ClientFrame, mutation: &Mutation) -> Value {
            let mut value = serde_json::to_value(frame).expect("a frame serialises");
            let map = value.as_object_mut().expect("a frame is an object");
            let keys: Vec<String> = map.keys().cloned().collect();
            match mutation {
                Mutation::Remove(i) => {
                    map.remove(&keys[i % keys.len()]);
                }
                Mutation::Replace(i, v) => {
                    map.insert(keys[i % keys.len()].clone(), v.clone());
                }
                Mutation::Insert(k, v) => {
                    map.insert(k.clone(), v.clone());
                }
            }
            value
        }

        /// Whatever is JSON is never `NotJson`; a frame decoded re-encodes to what it came from
        /// (modulo keys the frame does not have, and `since: null`).
        fn check_json(value: &Value) -> Result<(), TestCaseError> {
            match decode(&value.to_string()) {
                Err(Rejected::NotJson) => Err(TestCaseError::fail(format!("valid JSON taken for not JSON: {value}"))),
                Err(Rejected::Invalid(detail)) => {
                    prop_assert!(!detail.is_empty(), "an Invalid carries a reason");
                    Ok(())
                }
                Ok(frame) => {
                    let again = serde_json::to_value(&frame).expect("a frame serialises");
                    for (k, v) in again.as_object().expect("an object") {
                        let sent = value.get(k).unwrap_or(&Value::Null);
                        prop_assert_eq!(sent, v, "field {} of {} decoded as {:?}", k, value, frame);
                    }
                    Ok(())
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

            /// Any text at all: an answer, never a panic; not JSON is `NotJson`.
            #[test]
            fn any_text_is_answered(text in ".{0,200}") {
                let is_json = serde_json::from_str::<Value>(&text).is_ok();
                match decode(&text) {
                    Err(Rejected::NotJson) => prop_assert!(!is_json, "JSON taken for not JSON: {:?}", text),
                    _ => prop_assert!(is_json, "not JSON accepted: {:?}", text),
                }
            }

            /// Any JSON value: a frame or `Invalid`, never `NotJson`, never a panic.
            #[test]
            fn any_json_is_a_frame_or_invalid(value in any_json()) {
                check_json(&value)?;
            }

            /// Valid frames survive the round trip exactly.
            #[test]
            fn valid_frames_decode_to_themselves(frame in any_frame()) {
                let text = serde_json::to_string(&frame).expect("a frame serialises");
                prop_assert_eq!(decode(&text), Ok(frame));
            }

            /// A valid frame with one field dropped, changed or added.
            #[test]
            fn mutated_frames_are_a_frame_or_invalid(frame in any_frame(), mutation in any_mutation()) {
                check_json(&mutate(&frame, &mutation))?;
            }

            /// A valid frame's text cut short or with a byte changed: answered, never a panic.
            #[test]
            fn damaged_frame_text_is_answered(frame in any_frame(), at in any::<usize>(), byte in any::<u8>(), cut in any::<bool>()) {
                let mut bytes = serde_json::to_vec(&frame).expect("a frame serialises");
                let at = at % bytes.len();
                if cut { bytes.truncate(at) } else { bytes[at] = byte }
                // The socket only ever hands over valid UTF-8 text.
                let text = String::from_utf8_lossy(&bytes);
                let _ = decode(&text);
            }
        }

        /// Edge cases written out: a number where a string goes and the reverse, floats and
        /// out-of-range integers for ids, nested frames, a missing or empty tag.
        #[test]
        fn edge_cases_are_invalid_not_panics() {
            for value in [
                json!({"type": "subscribe", "room_id": 1.5}),
                json!({"type": "subscribe", "room_id": 1e300}),
                json!({"type": "subscribe", "room_id": 18446744073709551615u64}),
                json!({"type": "subscribe", "room_id": "1"}),
                json!({"type": "read", "room_id": 1, "seq": null}),
                json!({"type": "send", "room_id": 1, "body": 5, "client_id": "c"}),
                json!({"type": "send", "room_id": 1, "body": "b", "client_id": null}),
                json!({"type": "", "room_id": 1}),
                json!({"type": null}),
                json!({"type": {"type": "ping"}}),
                json!({"room_id": 1}),
                json!([{"type": "ping"}]),
                json!("ping"),
                json!(null),
            ] {
                assert!(matches!(decode(&value.to_string()), Err(Rejected::Invalid(_))), "{value}");
            }
            // Deep nesting: serde_json's recursion limit answers, the stack does not overflow.
            let deep = "[".repeat(100_000);
            assert_eq!(decode(&deep), Err(Rejected::NotJson));
            let deep_object = format!(r#"{{"type":"ping","x":{}"#, "[".repeat(10_000));
            assert_eq!(decode(&deep_object), Err(Rejected::NotJson));
        }
    }
}
