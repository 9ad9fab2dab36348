DROP INDEX messages_client_id;
DROP INDEX messages_idempotency_key;
CREATE UNIQUE INDEX messages_client_id ON messages (room_id, author_id, client_id) WHERE client_id IS NOT NULL;
CREATE UNIQUE INDEX messages_idempotency_key ON messages (room_id, author_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
