-- Blocks (CONTRACT-2 "Accounts"): a blocked user cannot open a direct room with the blocker nor send into
-- one, and the blocker no longer receives their typing.
CREATE TABLE user_blocks (
    blocker_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
-- Who blocked a given user (checked on their sends into direct rooms and their typing).
CREATE INDEX user_blocks_blocked ON user_blocks (blocked_id);
