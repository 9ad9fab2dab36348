DROP TABLE reserved_usernames;
ALTER TABLE users DROP COLUMN deleted_at;
