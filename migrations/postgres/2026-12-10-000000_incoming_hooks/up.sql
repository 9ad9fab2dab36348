-- Incoming hooks (CONTRACT-2 "Webhooks"): Slack-compatible URLs that post into one room as the hook's
-- creator. Only the secret's hash is stored, as for API tokens. A message posted through one names it in
-- `via` (kept when the hook is deleted).
CREATE TABLE incoming_hooks (
    id           BIGSERIAL PRIMARY KEY,
    room_id      BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    created_by   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP
);
CREATE INDEX incoming_hooks_room ON incoming_hooks (room_id);
ALTER TABLE messages ADD COLUMN via TEXT;
