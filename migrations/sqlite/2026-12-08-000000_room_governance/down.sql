DROP TABLE room_audit;
DROP TABLE room_bans;
CREATE TABLE room_members_old (
    room_id       BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    joined_at     TIMESTAMP NOT NULL,
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
INSERT INTO room_members_old (room_id, user_id, role, joined_at, last_read_seq)
    SELECT room_id, user_id, CASE role WHEN 'admin' THEN 'member' ELSE role END, joined_at, last_read_seq FROM room_members;
DROP TABLE room_members;
ALTER TABLE room_members_old RENAME TO room_members;
CREATE INDEX room_members_user ON room_members (user_id);
