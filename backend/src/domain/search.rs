//! Search (CONTRACT-2 "Search"): the messages of the caller's rooms containing every word of a query
//! (case-insensitive, the last word also as a prefix), newest first, with the matched words' offsets.
//! PostgreSQL answers from a GIN index over a generated `tsvector`, SQLite from an FTS5 index. Both change
//! in the transaction that edits or deletes a body, so an edit is found by its new text only and a deleted
//! message (body emptied) not at all; SQLite indexes new messages in batches after they are stored, and
//! always before a search reads the index ([`index_pending`]), so a search finds every message sent
//! before it.

use chat_api::{SearchHit, SearchPage};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use crate::db::DbConnection;
use crate::db::models::{MessageRow, UserRow};
use crate::db::schema::{messages, users};
use crate::domain::{self, messages::assemble};
use crate::error::ApiError;

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// A query's words: runs of letters and digits, lowercased (what both indexes call words).
pub fn words(text: &str) -> Vec<String> {
    tokens(text).into_iter().map(|(_, _, word)| word).collect()
}

/// The words of `text` with their `[start, end)` character offsets.
fn tokens(text: &str) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, c) in text.chars().enumerate() {
        if c.is_alphanumeric() {
            current.get_or_insert_with(|| (i, String::new())).1.extend(c.to_lowercase());
        } else if let Some((start, word)) = current.take() {
            found.push((start, i, word));
        }
    }
    if let Some((start, word)) = current {
        found.push((start, text.chars().count(), word));
    }
    found
}

/// Where the query's words are in `body`: every word equal to one of the query's, or starting with its
/// last word.
pub fn highlights(body: &str, query: &[String]) -> Vec<[i64; 2]> {
    let Some((last, whole)) = query.split_last() else { return Vec::new() };
    tokens(body)
        .into_iter()
        .filter(|(_, _, word)| whole.contains(word) || word.starts_with(last.as_str()))
        .map(|(start, end, _)| [start as i64, end as i64])
        .collect()
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// `GET /search`: `room_id` narrows to one room (which the caller must be able to see: 404 otherwise);
/// `before` is the id to continue below (the cursor).
pub fn search(
    conn: &mut DbConnection,
    user_id: i64,
    q: &str,
    room_id: Option<i64>,
    limit: i64,
    before: Option<i64>,
) -> Result<SearchPage, ApiError> {
    if q.trim().is_empty() || q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::invalid("q", "must be 1-200 characters"));
    }
    // One room: it must be one of the caller's (a public room they are not in is not found either).
    if let Some(room_id) = room_id
        && domain::rooms::visible(conn, room_id, user_id)?.membership.is_none()
    {
        return Err(domain::rooms::room_not_found(room_id));
    }
    let query = words(q);
    if query.is_empty() {
        return Ok(SearchPage { items: Vec::new(), next_cursor: None });
    }
    let ids = matching_ids(conn, user_id, &query, room_id, limit + 1, before)?;
    let more = ids.len() as i64 > limit;
    let ids: Vec<i64> = ids.into_iter().take(limit as usize).collect();
    let next_cursor = if more { ids.last().map(i64::to_string) } else { None };
    let rows: Vec<(MessageRow, UserRow)> = messages::table
        .inner_join(users::table)
        .filter(messages::id.eq_any(&ids))
        .order(messages::id.desc())
        .select((MessageRow::as_select(), UserRow::as_select()))
        .load(conn)?;
    let items = assemble(conn, rows)?
        .into_iter()
        .map(|message| {
            let highlights = highlights(&message.body, &query);
            SearchHit { message, highlights }
        })
        .collect();
    Ok(SearchPage { items, next_cursor })
}

/// SQLite: indexes the messages sent since the last time, in the caller's transaction, and returns how
/// many. New messages are not indexed in the transaction that stores them (the migration
/// `search_catch_up` says why); the message writer calls this after a few hundred sends and before a
/// search. PostgreSQL's index is a generated column, always current: nothing to do.
pub fn index_pending(conn: &mut DbConnection) -> Result<usize, ApiError> {
    let DbConnection::Sqlite(lite) = conn else { return Ok(0) };
    let indexed = diesel::sql_query(
        "INSERT INTO messages_fts (rowid, body) SELECT id, body FROM messages \
         WHERE id > (SELECT indexed_upto FROM messages_fts_state) ORDER BY id",
    )
    .execute(lite)?;
    if indexed > 0 {
        diesel::sql_query(
            "UPDATE messages_fts_state \
             SET indexed_upto = (SELECT MAX(indexed_upto, COALESCE(MAX(id), 0)) FROM messages)",
        )
        .execute(lite)?;
    }
    Ok(indexed)
}

/// The ids of the matching messages of the user's rooms, newest first. The words are letters and
/// digits only, so they cannot change the meaning of either index's query syntax.
fn matching_ids(
    conn: &mut DbConnection,
    user_id: i64,
    query: &[String],
    room_id: Option<i64>,
    limit: i64,
    before: Option<i64>,
) -> Result<Vec<i64>, ApiError> {
    let found: Vec<Found> = match conn {
        DbConnection::Postgresql(pg) => {
            let tsquery = prefix_last(query, " & ", |w| w.to_owned(), ":*");
            diesel::sql_query(
                "SELECT m.id FROM messages m \
                 JOIN room_members rm ON rm.room_id = m.room_id AND rm.user_id = $1 \
                 WHERE m.search @@ to_tsquery('simple', $2) AND NOT m.deleted \
                 AND ($3::BIGINT IS NULL OR m.room_id = $3) AND ($4::BIGINT IS NULL OR m.id < $4) \
                 ORDER BY m.id DESC LIMIT $5",
            )
            .bind::<BigInt, _>(user_id)
            .bind::<Text, _>(tsquery)
            .bind::<Nullable<BigInt>, _>(room_id)
            .bind::<Nullable<BigInt>, _>(before)
            .bind::<BigInt, _>(limit)
            .load(pg)?
        }
        DbConnection::Sqlite(lite) => {
            let fts = prefix_last(query, " ", |w| format!("\"{w}\""), "*");
            diesel::sql_query(
                "SELECT m.id FROM messages_fts f JOIN messages m ON m.id = f.rowid \
                 JOIN room_members rm ON rm.room_id = m.room_id AND rm.user_id = ?1 \
                 WHERE messages_fts MATCH ?2 AND m.deleted = 0 \
                 AND (?3 IS NULL OR m.room_id = ?3) AND (?4 IS NULL OR m.id < ?4) \
                 ORDER BY m.id DESC LIMIT ?5",
            )
            .bind::<BigInt, _>(user_id)
            .bind::<Text, _>(fts)
            .bind::<Nullable<BigInt>, _>(room_id)
            .bind::<Nullable<BigInt>, _>(before)
            .bind::<BigInt, _>(limit)
            .load(lite)?
        }
    };
    Ok(found.into_iter().map(|f| f.id).collect())
}

/// The words joined by `sep`, each quoted by `quote`, the last one marked as a prefix by `prefix`.
fn prefix_last(words: &[String], sep: &str, quote: impl Fn(&str) -> String, prefix: &str) -> String {
    let mut parts: Vec<String> = words.iter().map(|w| quote(w)).collect();
    if let Some(last) = parts.last_mut() {
        last.push_str(prefix);
    }
    parts.join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_letters_and_digits_lowercased() {
        assert_eq!(words("Deploy, v2 'done'!"), ["deploy", "v2", "done"]);
        assert_eq!(words("Über straße"), ["über", "straße"]);
        assert!(words("&|!:*()\"").is_empty());
    }

    #[test]
    fn highlights_are_character_offsets_of_whole_words_and_the_last_as_prefix() {
        let query = words("blue log");
        assert_eq!(highlights("Blue logo, bluer LOGS", &query), [[0, 4], [5, 9], [17, 21]]);
        assert_eq!(highlights("é blue", &words("blue")), [[2, 6]]);
    }

    #[test]
    fn queries_quote_every_word() {
        let query = words("a b");
        assert_eq!(prefix_last(&query, " & ", |w| w.to_owned(), ":*"), "a & b:*");
        assert_eq!(prefix_last(&query, " ", |w| format!("\"{w}\""), "*"), "\"a\" \"b\"*");
    }
}
