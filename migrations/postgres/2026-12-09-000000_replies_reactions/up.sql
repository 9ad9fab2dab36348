-- Replies, mentions and reactions (CONTRACT-2 "Messages"). A reply names the seq of the message it answers
-- in the same room; `mentions` holds the mentioned members' ids, comma-separated (an edit recomputes it).
ALTER TABLE messages ADD COLUMN reply_to_seq BIGINT;
ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '';

-- One row per person per emoji per message. A reaction stamps the message's `changed_at_seq`, so a
-- client resuming with `since` gets the message again with its reactions.
CREATE TABLE message_reactions (
    room_id BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    emoji TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (room_id, seq, emoji, user_id)
);
