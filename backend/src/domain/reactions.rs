//! Reactions (CONTRACT-2 "Messages"): an emoji per person per message, added and taken back idempotently,
//! at most 20 distinct emoji on a message. A change stamps the message's `changed_at_seq`, so that a
//! client resuming with `since` receives the message again, with its reactions as they now are.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::models::ReactionRow;
use crate::db::schema::message_reactions;
use crate::db::{DbConnection, now};
use crate::domain::{self, messages};
use crate::error::ApiError;
use crate::events::Event;

/// Distinct emoji one message may carry.
pub const MAX_DISTINCT: i64 = 20;
/// The longest emoji, in bytes of UTF-8 (a family with skin tones is about 25).
const MAX_EMOJI_BYTES: usize = 32;

/// An emoji as the path gave it: 1-32 bytes, no white space, no control character.
pub fn check_emoji(emoji: &str) -> Result<(), ApiError> {
    if emoji.is_empty() || emoji.len() > MAX_EMOJI_BYTES {
        return Err(ApiError::invalid("emoji", "must be 1-32 bytes of UTF-8"));
    }
    if emoji.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid("emoji", "must not contain white space or control characters"));
    }
    Ok(())
}

/// `PUT` (`added`) or `DELETE` `/rooms/{room_id}/messages/{seq}/reactions/{emoji}` by a member. Changing
/// nothing (adding twice, removing what is not there) is not an error and publishes nothing.
pub fn set(
    conn: &mut DbConnection,
    room_id: i64,
    seq: i64,
    user_id: i64,
    emoji: &str,
    added: bool,
) -> Result<Vec<Event>, ApiError> {
    check_emoji(emoji)?;
    let visible = domain::rooms::visible(conn, room_id, user_id)?;
    visible.require_member()?;
    let (message, _) = messages::load(conn, room_id, seq)?;
    if message.deleted {
        return Err(ApiError::conflict("message_deleted", "A deleted message takes no reactions."));
    }
    let this =
        message_reactions::table.filter(message_reactions::room_id.eq(room_id)).filter(message_reactions::seq.eq(seq));
    let changed = if added {
        let present: i64 = this.filter(message_reactions::emoji.eq(emoji)).count().get_result(conn)?;
        let distinct: i64 = this.select(message_reactions::emoji).distinct().count().get_result(conn)?;
        if present == 0 && distinct >= MAX_DISTINCT {
            return Err(ApiError::unprocessable(
                "too_many_reactions",
                format!("A message carries at most {MAX_DISTINCT} different emoji."),
            ));
        }
        insert(conn, &row(room_id, seq, user_id, emoji, now()))?
    } else {
        diesel::delete(this.filter(message_reactions::emoji.eq(emoji)).filter(message_reactions::user_id.eq(user_id)))
            .execute(conn)?
    };
    if changed == 0 {
        return Ok(Vec::new());
    }
    let changed_at_seq = messages::room_changing(conn, room_id)?;
    diesel::update(crate::db::schema::messages::table.find(message.id))
        .set(crate::db::schema::messages::changed_at_seq.eq(changed_at_seq))
        .execute(conn)?;
    let user = domain::users::find(conn, user_id)?.into();
    Ok(vec![Event::Reaction { room_id, seq, emoji: emoji.to_owned(), user, added }])
}

fn row(room_id: i64, seq: i64, user_id: i64, emoji: &str, created_at: NaiveDateTime) -> ReactionRow {
    ReactionRow { room_id, seq, emoji: emoji.to_owned(), user_id, created_at }
}

/// Inserts unless present (a retry, or the same reaction racing on another node); the rows inserted.
fn insert(conn: &mut DbConnection, row: &ReactionRow) -> QueryResult<usize> {
    crate::per_backend!(conn, c => diesel::insert_into(message_reactions::table).values(row).on_conflict_do_nothing().execute(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_have_limits() {
        assert!(check_emoji("👍").is_ok());
        assert!(check_emoji("👨‍👩‍👧‍👦").is_ok());
        assert!(check_emoji(":tada:").is_ok());
        assert!(check_emoji("").is_err());
        assert!(check_emoji("a b").is_err());
        assert!(check_emoji("x\u{0}").is_err());
        assert!(check_emoji(&"👍".repeat(9)).is_err());
    }
}
