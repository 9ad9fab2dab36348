-- Deleted accounts (CONTRACT-2 "Accounts"): the row stays (so conversations keep their authors) under the
-- name `deleted-<id>`, and the old username stays taken for 30 days, so that nobody can pose as its owner.
ALTER TABLE users ADD COLUMN deleted_at TIMESTAMP;
CREATE TABLE reserved_usernames (
    username TEXT PRIMARY KEY,
    until    TIMESTAMP NOT NULL
);
