//! Mentions (CONTRACT-2 "Messages"): `@username` in a body mentions that user when they are a member of
//! the room; `@room` mentions every member, from the owner or an admin only (from anyone else it is
//! text). Resolved when a message is sent or edited, stored with it (`messages.mentions`).

use std::collections::BTreeSet;

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{room_members, users};
use crate::error::ApiError;

/// The names a body may mention: lowercased, each candidate both as written and without trailing `.` or
/// `-` ("@bob." at the end of a sentence means bob, unless someone is called "bob."), plus whether
/// `@room` appears. Cheap when there is no `@` at all, which is most messages.
pub fn candidates(body: &str) -> (BTreeSet<String>, bool) {
    let mut names = BTreeSet::new();
    let mut everyone = false;
    if !body.contains('@') {
        return (names, everyone);
    }
    let mut previous: Option<char> = None;
    for (i, c) in body.char_indices() {
        let at_word_start = previous.is_none_or(|p| !(p.is_alphanumeric() || p == '_' || p == '@'));
        previous = Some(c);
        if c != '@' || !at_word_start {
            continue;
        }
        let rest = &body[i + 1..];
        let run: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c)).collect();
        let name = run.to_ascii_lowercase();
        let trimmed = name.trim_end_matches(['.', '-']);
        if trimmed == "room" {
            everyone = true;
        }
        for candidate in [name.as_str(), trimmed] {
            if (3..=32).contains(&candidate.len()) {
                names.insert(candidate.to_owned());
            }
        }
    }
    (names, everyone)
}

/// Who `body` mentions in `room_id`, sent by `author` (who is a member): ids in ascending order, never
/// the author. `@room` counts only from the owner or an admin.
pub fn resolve(conn: &mut DbConnection, room_id: i64, author: i64, body: &str) -> Result<Vec<i64>, ApiError> {
    let (names, everyone) = candidates(body);
    if names.is_empty() && !everyone {
        return Ok(Vec::new());
    }
    let members = room_members::table.filter(room_members::room_id.eq(room_id));
    let moderator = everyone && {
        let role: Option<String> =
            members.filter(room_members::user_id.eq(author)).select(room_members::role).first(conn).optional()?;
        matches!(role.as_deref(), Some("owner" | "admin"))
    };
    let mut ids: Vec<i64> = if moderator {
        members.select(room_members::user_id).load(conn)?
    } else {
        // "room" stays text for everyone else, even if someone is called that.
        let names: Vec<&String> = names.iter().filter(|n| !everyone || n.as_str() != "room").collect();
        members
            .inner_join(users::table)
            .filter(users::username.eq_any(names))
            .select(room_members::user_id)
            .load(conn)?
    };
    ids.retain(|id| *id != author);
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(body: &str) -> Vec<String> {
        candidates(body).0.into_iter().collect()
    }

    #[test]
    fn a_mention_starts_a_word() {
        assert_eq!(names("hi @Bob, and @carol."), ["bob", "carol", "carol."]);
        assert!(names("mail me at bob@example.org").is_empty());
        assert!(names("@@bob").is_empty());
        assert_eq!(names("(@dave_1)"), ["dave_1"]);
        assert!(names("@ab is too short").is_empty());
        assert!(names("no at sign").is_empty());
    }

    #[test]
    fn at_room_is_recognised() {
        assert!(candidates("heads up @room!").1);
        assert!(!candidates("heads up @roomy").1);
        assert!(!candidates("a@room").1);
    }
}
