-- Rooms people can run (CONTRACT-2 "Rooms: roles, settings, moderation, invites"): admins, mutes, bans and the
-- audit log of what moderators did.
ALTER TABLE room_members DROP CONSTRAINT room_members_role_check;
ALTER TABLE room_members ADD CONSTRAINT room_members_role_check CHECK (role IN ('owner', 'admin', 'member'));
-- A muted member reads but cannot send until then.
ALTER TABLE room_members ADD COLUMN muted_until TIMESTAMP;

CREATE TABLE room_bans (
    room_id    BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reason     TEXT,
    banned_by  BIGINT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE room_audit (
    id         BIGSERIAL PRIMARY KEY,
    room_id    BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    actor_id   BIGINT NOT NULL REFERENCES users (id),
    action     TEXT NOT NULL,
    target_id  BIGINT REFERENCES users (id),
    seq        BIGINT,
    detail     TEXT,
    created_at TIMESTAMP NOT NULL
);
-- Newest first, per room (`GET /rooms/{id}/audit`).
CREATE INDEX room_audit_room ON room_audit (room_id, id);
