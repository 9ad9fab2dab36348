-- Search indexing leaves the send's transaction. The writer commits new messages without indexing them,
-- and indexes every message above `indexed_upto` in one transaction of its own: after a few hundred
-- sends, and before any search reads the index (so a search still finds every message sent before it).
-- Indexing each send's batch in its commit wrote a new FTS5 segment (and merged segments) every commit:
-- about 5 % of a node's CPU under fan-out. Ids are never reused (AUTOINCREMENT), so a message is indexed
-- exactly when its id is at most `indexed_upto`; an edit or a delete changes the index only then (FTS5
-- must never be told to delete what it does not hold).
CREATE TABLE messages_fts_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto BIGINT NOT NULL
);
INSERT INTO messages_fts_state (id, indexed_upto) SELECT 1, COALESCE(MAX(id), 0) FROM messages;
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.id <= (SELECT indexed_upto FROM messages_fts_state) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages
WHEN old.id <= (SELECT indexed_upto FROM messages_fts_state) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;
