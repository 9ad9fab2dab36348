-- Invite links to a room (CONTRACT-2 "invites"): the code is the link's secret (at least 128 bits of
-- randomness) and is shown again to the room's moderators, so it is kept as it is.
CREATE TABLE room_invites (
    code       TEXT PRIMARY KEY,
    room_id    BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    created_by BIGINT NOT NULL REFERENCES users (id),
    max_uses   INTEGER,
    uses       INTEGER NOT NULL DEFAULT 0,
    expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX room_invites_room ON room_invites (room_id, created_at);
