-- Outgoing webhooks (CONTRACT-2 "Webhooks"): a room's events POSTed to a URL, signed the Standard Webhooks
-- way, at least once and in order per webhook, from a queue kept here so that a node dying mid-delivery loses
-- nothing and, with several nodes, each event is sent by one of them.
CREATE TABLE webhooks (
    id            BIGSERIAL PRIMARY KEY,
    room_id       BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    created_by    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    -- The event types it wants, comma-separated.
    events        TEXT NOT NULL,
    -- The signing key (whsec_...): kept in the clear, since every delivery is signed with it.
    secret        TEXT NOT NULL,
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMP NOT NULL,
    -- No node takes this webhook's next event before this time: one is delivering it (a lease, so that a
    -- node that dies mid-delivery only delays it), or the backoff after a failure.
    not_before    TIMESTAMP,
    -- Consecutive failures of the event at the head of its queue, and since when it has been failing.
    failures      INTEGER NOT NULL DEFAULT 0,
    failing_since TIMESTAMP
);
CREATE INDEX webhooks_room ON webhooks (room_id);

-- The queue: events committed for a webhook and not yet delivered; delivered oldest first (by id).
CREATE TABLE webhook_events (
    id          BIGSERIAL PRIMARY KEY,
    webhook_id  BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The webhook-id header: the same on every retry.
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    -- The JSON posted, fixed when the event was committed.
    body        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX webhook_events_queue ON webhook_events (webhook_id, id);

-- Every delivery attempt, kept for the last 100 per webhook.
CREATE TABLE webhook_deliveries (
    id           BIGSERIAL PRIMARY KEY,
    webhook_id   BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    status_code  INTEGER,
    duration_ms  BIGINT NOT NULL,
    error        TEXT,
    attempted_at TIMESTAMP NOT NULL
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);

-- A webhook disabled after failing for too long notifies the room's owner: such a notification names the
-- webhook instead of a message (its seq is 0).
ALTER TABLE notifications ADD COLUMN webhook_id BIGINT;
