-- Plain unique indexes instead of partial ones. A query plan that depends on a partial index's
-- condition depends on whether the bound key is NULL, so SQLite re-prepared the dedup lookup on
-- every send. UNIQUE already lets many rows hold NULL keys, on SQLite and PostgreSQL alike.
DROP INDEX messages_client_id;
DROP INDEX messages_idempotency_key;
CREATE UNIQUE INDEX messages_client_id ON messages (room_id, author_id, client_id);
CREATE UNIQUE INDEX messages_idempotency_key ON messages (room_id, author_id, idempotency_key);
