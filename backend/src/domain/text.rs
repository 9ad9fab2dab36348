//! Which characters a string from outside may hold (CONTRACT-2 "Text, everywhere").
//!
//! U+0000 is refused everywhere: PostgreSQL cannot store it in `text`, and no client means it. A message
//! body keeps line breaks and tabs but no other C0 control character and no U+007F; a name (room name,
//! display name, token name) holds no control character at all, so it cannot break a line or a terminal.

use serde_json::Value;

use crate::error::ApiError;

/// What is wrong with a string, for the `errors` entry of a 422 `invalid_text`.
const NUL: &str = "must not contain U+0000";
const BODY_CONTROL: &str = "must not contain control characters other than line breaks and tabs";
const NAME_CONTROL: &str = "must not contain control characters";

/// 422 `invalid_text` when a message body (or a topic) holds a control character other than a line break
/// or a tab.
pub fn check_body(field: &str, text: &str) -> Result<(), ApiError> {
    let refused = |c: char| (c.is_ascii_control() && !matches!(c, '\n' | '\r' | '\t')) || c == '\u{7f}';
    match text.chars().find(|&c| refused(c)) {
        Some('\0') => Err(ApiError::invalid_text(field, NUL)),
        Some(_) => Err(ApiError::invalid_text(field, BODY_CONTROL)),
        None => Ok(()),
    }
}

/// 422 `invalid_text` when a name holds any control character (C0, U+007F or C1).
pub fn check_name(field: &str, text: &str) -> Result<(), ApiError> {
    match text.chars().find(|c| c.is_control()) {
        Some('\0') => Err(ApiError::invalid_text(field, NUL)),
        Some(_) => Err(ApiError::invalid_text(field, NAME_CONTROL)),
        None => Ok(()),
    }
}

/// 422 `invalid_text` naming the first string of a JSON document (a key or a value, at any depth) that
/// holds U+0000. Runs on every JSON body before it is read into its request type, so that no field, named
/// or not yet, lets one through.
pub fn check_json(value: &Value) -> Result<(), ApiError> {
    let Some(mut path) = find_nul(value) else { return Ok(()) };
    path.reverse();
    let field = if path.is_empty() { "body".to_owned() } else { path.join(".") };
    Err(ApiError::invalid_text(&field, NUL))
}

/// The path to the first string holding U+0000 (`["b", "1", "list"]` for `list.1.b`: innermost first,
/// built on the way back, so that a clean document, every request's case, allocates nothing). A key
/// holding it names the object it is in.
fn find_nul(value: &Value) -> Option<Vec<String>> {
    let inside = |segment: String, found: Option<Vec<String>>| {
        found.map(|mut path| {
            path.push(segment);
            path
        })
    };
    match value {
        Value::String(s) => s.contains('\0').then(Vec::new),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| inside(i.to_string(), find_nul(v))),
        Value::Object(fields) => fields
            .iter()
            .find_map(|(k, v)| if k.contains('\0') { Some(Vec::new()) } else { inside(k.clone(), find_nul(v)) }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ApiError) -> String {
        e.problem().errors.unwrap()[0].field.clone()
    }

    #[test]
    fn bodies_keep_line_breaks_and_tabs_only() {
        assert!(check_body("body", "line one\nline two\r\n\tindented, emoji 👋").is_ok());
        for bad in ["a\0b", "a\u{1}b", "a\u{b}b", "a\u{c}b", "a\u{1f}b", "a\u{7f}b"] {
            let e = check_body("body", bad).unwrap_err();
            assert_eq!(e.problem().code, "invalid_text", "{bad:?}");
        }
    }

    #[test]
    fn names_hold_no_control_character() {
        assert!(check_name("name", "général 🎉").is_ok());
        for bad in ["x\u{1}y", "x\ny", "x\ty", "x\u{85}y", "x\0"] {
            assert!(check_name("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nul_is_found_at_any_depth_and_named() {
        let ok = serde_json::json!({"body": "fine", "list": ["a", {"b": "c"}]});
        assert!(check_json(&ok).is_ok());
        let deep = serde_json::json!({"body": "fine", "list": ["a", {"b": "c\u{0}"}]});
        assert_eq!(field(check_json(&deep).unwrap_err()), "list.1.b");
        assert_eq!(field(check_json(&serde_json::json!("\u{0}")).unwrap_err()), "body");
    }
}
