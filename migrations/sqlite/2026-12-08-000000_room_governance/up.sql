-- Rooms people can run (CONTRACT-2 "Rooms: roles, settings, moderation, invites"): admins, mutes, bans and the
-- audit log of what moderators did. SQLite cannot change a CHECK constraint: room_members is rebuilt (no
-- table refers to it).
CREATE TABLE room_members_new (
    room_id       BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at     TIMESTAMP NOT NULL,
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    -- A muted member reads but cannot send until then.
    muted_until   TIMESTAMP,
    PRIMARY KEY (room_id, user_id)
);
INSERT INTO room_members_new (room_id, user_id, role, joined_at, last_read_seq)
    SELECT room_id, user_id, role, joined_at, last_read_seq FROM room_members;
DROP TABLE room_members;
ALTER TABLE room_members_new RENAME TO room_members;
CREATE INDEX room_members_user ON room_members (user_id);

CREATE TABLE room_bans (
    room_id    BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reason     TEXT,
    banned_by  BIGINT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE room_audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
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
