// What `diesel print-schema` prints for a database migrated with migrations/postgres (diesel.toml);
// regenerate it after a migration rather than edit it. The SQLite migrations create the same tables
// with the same SQL types, so one schema serves both.

diesel::table! {
    api_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        name -> Text,
        token_hash -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    incoming_hooks (id) {
        id -> Int8,
        room_id -> Int8,
        created_by -> Int8,
        name -> Text,
        secret_hash -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    messages (id) {
        id -> Int8,
        room_id -> Int8,
        seq -> Int8,
        author_id -> Int8,
        body -> Text,
        client_id -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        created_at -> Timestamp,
        edited_at -> Nullable<Timestamp>,
        deleted -> Bool,
        changed_at_seq -> Nullable<Int8>,
        reply_to_seq -> Nullable<Int8>,
        mentions -> Text,
        via -> Nullable<Text>,
        // Not listed: `search` (PostgreSQL's generated tsvector), read only by `domain::search` in SQL.
    }
}

diesel::table! {
    notifications (id) {
        id -> Int8,
        user_id -> Int8,
        room_id -> Int8,
        seq -> Int8,
        kind -> Text,
        read_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        webhook_id -> Nullable<Int8>,
    }
}

diesel::table! {
    message_reactions (room_id, seq, emoji, user_id) {
        room_id -> Int8,
        seq -> Int8,
        emoji -> Text,
        user_id -> Int8,
        created_at -> Timestamp,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        family -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    room_members (room_id, user_id) {
        room_id -> Int8,
        user_id -> Int8,
        role -> Text,
        joined_at -> Timestamp,
        last_read_seq -> Int8,
        muted_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    room_invites (code) {
        code -> Text,
        room_id -> Int8,
        created_by -> Int8,
        max_uses -> Nullable<Int4>,
        uses -> Int4,
        expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    room_bans (room_id, user_id) {
        room_id -> Int8,
        user_id -> Int8,
        reason -> Nullable<Text>,
        banned_by -> Int8,
        created_at -> Timestamp,
    }
}

diesel::table! {
    room_audit (id) {
        id -> Int8,
        room_id -> Int8,
        actor_id -> Int8,
        action -> Text,
        target_id -> Nullable<Int8>,
        seq -> Nullable<Int8>,
        detail -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    rooms (id) {
        id -> Int8,
        name -> Text,
        topic -> Nullable<Text>,
        visibility -> Text,
        kind -> Text,
        direct_key -> Nullable<Text>,
        created_by -> Int8,
        created_at -> Timestamp,
        last_seq -> Int8,
        last_activity_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        username -> Text,
        display_name -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    user_blocks (blocker_id, blocked_id) {
        blocker_id -> Int8,
        blocked_id -> Int8,
        created_at -> Timestamp,
    }
}

diesel::table! {
    reserved_usernames (username) {
        username -> Text,
        until -> Timestamp,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Int8,
        room_id -> Int8,
        created_by -> Int8,
        url -> Text,
        events -> Text,
        secret -> Text,
        enabled -> Bool,
        created_at -> Timestamp,
        not_before -> Nullable<Timestamp>,
        failures -> Int4,
        failing_since -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_events (id) {
        id -> Int8,
        webhook_id -> Int8,
        event_id -> Text,
        event_type -> Text,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Int8,
        webhook_id -> Int8,
        event_id -> Text,
        event_type -> Text,
        attempt -> Int4,
        status_code -> Nullable<Int4>,
        duration_ms -> Int8,
        error -> Nullable<Text>,
        attempted_at -> Timestamp,
    }
}

diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(incoming_hooks -> rooms (room_id));
diesel::joinable!(incoming_hooks -> users (created_by));
diesel::joinable!(messages -> rooms (room_id));
diesel::joinable!(messages -> users (author_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(room_invites -> rooms (room_id));
diesel::joinable!(room_members -> rooms (room_id));
diesel::joinable!(room_members -> users (user_id));
diesel::joinable!(rooms -> users (created_by));
diesel::joinable!(webhooks -> rooms (room_id));
diesel::joinable!(webhooks -> users (created_by));
diesel::joinable!(webhook_events -> webhooks (webhook_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));

diesel::allow_tables_to_appear_in_same_query!(
    message_reactions,
    notifications,
    user_blocks,
    reserved_usernames,
    room_invites,
    room_audit,
    room_bans,
    api_tokens,
    incoming_hooks,
    webhooks,
    webhook_events,
    webhook_deliveries,
    messages,
    refresh_tokens,
    room_members,
    rooms,
    users,
);
