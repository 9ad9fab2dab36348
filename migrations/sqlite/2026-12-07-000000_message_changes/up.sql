-- The room's last seq when a message was last changed (edited or deleted; reacted to, later): a client
-- resuming with `since` learns of every change to a message it already had whose changed_at_seq >= since.
-- NULL: never changed since it was sent.
ALTER TABLE messages ADD COLUMN changed_at_seq BIGINT;
CREATE INDEX messages_changed_at_seq ON messages (room_id, changed_at_seq) WHERE changed_at_seq IS NOT NULL;
