ALTER TABLE messages DROP COLUMN via;
DROP TABLE incoming_hooks;
