-- Notifications (CONTRACT-2 "Notifications"): one per mention of a user, reply to their message (by
-- someone else) and message in a direct room they are in; never for their own messages nor a blocker's
-- view of the blocked. Made in the transaction that stores the message.
CREATE TABLE notifications (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id    BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    read_at    TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
-- Newest first per user (GET /notifications), and unread per user and room (mention_count, /read).
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE INDEX notifications_unread ON notifications (user_id, room_id, seq) WHERE read_at IS NULL;
