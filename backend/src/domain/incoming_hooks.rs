//! Incoming hooks (CONTRACT-2 "Webhooks"): a secret URL that posts into one room as the hook's creator.
//! Made, listed and deleted by the room's owner and admins; the secret is shown once and only its hash
//! is stored, as for API tokens.

use chat_api::{CreateIncomingHookRequest, CreatedIncomingHook, IncomingHook};
use diesel::prelude::*;

use super::credentials::{hash_secret, new_secret};
use super::moderation;
use crate::db::models::{IncomingHookRow, NewIncomingHook, UserRow};
use crate::db::schema::{incoming_hooks, users};
use crate::db::{DbConnection, now, utc};
use crate::error::ApiError;

/// Every hook URL's secret starts with this (so a leaked one is recognisable, as with API tokens).
pub const HOOK_SECRET_PREFIX: &str = "chat_hook_";
/// Where hooks are posted to, under `/api/v1`.
pub const HOOKS_PATH: &str = "/hooks/";
/// `last_used_at` is refreshed at most this often: posting is not a write per message.
const LAST_USED_PRECISION: chrono::Duration = chrono::Duration::minutes(1);

/// A hook's or a poster's name: 1-64 characters, no control characters.
pub fn checked_name(field: &str, name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if !(1..=64).contains(&name.chars().count()) {
        return Err(ApiError::invalid(field, "must be 1 to 64 characters"));
    }
    super::text::check_name(field, name)?;
    Ok(name.to_owned())
}

pub fn create(
    conn: &mut DbConnection,
    room_id: i64,
    actor: i64,
    req: CreateIncomingHookRequest,
) -> Result<CreatedIncomingHook, ApiError> {
    let name = checked_name("name", &req.name)?;
    let secret = new_secret(HOOK_SECRET_PREFIX);
    let created_at = now();
    let id = conn.transaction(|conn| {
        moderation::moderator(conn, room_id, actor)?;
        moderation::record(conn, room_id, actor, "webhook_created", None, None, Some(&audit_detail(&name)))?;
        let id: i64 = diesel::insert_into(incoming_hooks::table)
            .values(NewIncomingHook {
                room_id,
                created_by: actor,
                name: &name,
                secret_hash: &hash_secret(&secret),
                created_at,
            })
            .returning(incoming_hooks::id)
            .get_result(conn)?;
        Ok::<_, ApiError>(id)
    })?;
    Ok(CreatedIncomingHook { id, name, url: format!("/api/v1{HOOKS_PATH}{secret}"), created_at: utc(created_at) })
}

/// The room's hooks, newest first (the owner or an admin).
pub fn list(conn: &mut DbConnection, room_id: i64, actor: i64) -> Result<Vec<IncomingHook>, ApiError> {
    moderation::moderator(conn, room_id, actor)?;
    let rows: Vec<(IncomingHookRow, UserRow)> = incoming_hooks::table
        .inner_join(users::table)
        .filter(incoming_hooks::room_id.eq(room_id))
        .order(incoming_hooks::id.desc())
        .select((IncomingHookRow::as_select(), UserRow::as_select()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(hook, creator)| IncomingHook {
            id: hook.id,
            name: hook.name,
            created_by: creator.into(),
            created_at: utc(hook.created_at),
            last_used_at: hook.last_used_at.map(utc),
        })
        .collect())
}

/// Deletes a hook (the owner or an admin): its URL stops working at once, on every node.
pub fn delete(conn: &mut DbConnection, room_id: i64, actor: i64, hook_id: i64) -> Result<(), ApiError> {
    conn.transaction(|conn| {
        moderation::moderator(conn, room_id, actor)?;
        let name: String =
            diesel::delete(incoming_hooks::table.find(hook_id).filter(incoming_hooks::room_id.eq(room_id)))
                .returning(incoming_hooks::name)
                .get_result(conn)
                .optional()?
                .ok_or_else(|| {
                    ApiError::not_found("hook_not_found", format!("This room has no incoming hook {hook_id}."))
                })?;
        moderation::record(conn, room_id, actor, "webhook_deleted", None, None, Some(&audit_detail(&name)))
    })
}

/// How a hook is named in the room's audit log, beside the outgoing webhooks' URLs.
fn audit_detail(name: &str) -> String {
    format!("incoming hook “{name}”")
}

/// The hook a secret opens; 404 for a secret that is unknown or deleted (one answer for both, so it tells
/// nothing about other hooks).
pub fn open(conn: &mut DbConnection, secret: &str) -> Result<IncomingHookRow, ApiError> {
    incoming_hooks::table
        .filter(incoming_hooks::secret_hash.eq(hash_secret(secret)))
        .select(IncomingHookRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found("hook_not_found", "No incoming hook has this URL."))
}

/// Whether the hook's `last_used_at` is worth a write now.
pub fn needs_touch(hook: &IncomingHookRow) -> bool {
    hook.last_used_at.is_none_or(|used| now() - used >= LAST_USED_PRECISION)
}

pub fn touch(conn: &mut DbConnection, hook_id: i64) -> Result<(), ApiError> {
    diesel::update(incoming_hooks::table.find(hook_id)).set(incoming_hooks::last_used_at.eq(now())).execute(conn)?;
    Ok(())
}
