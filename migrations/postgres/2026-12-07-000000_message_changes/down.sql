DROP INDEX messages_changed_at_seq;
ALTER TABLE messages DROP COLUMN changed_at_seq;
