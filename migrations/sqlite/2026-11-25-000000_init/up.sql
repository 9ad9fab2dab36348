-- SQLite: INTEGER PRIMARY KEY is the 64-bit rowid. Times are UTC, stored as text by diesel.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

-- Refresh tokens rotate within a family; a spent one presented again revokes the family.
CREATE TABLE refresh_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family     TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL, -- space-separated scope names
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP,
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE rooms (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT NOT NULL,
    topic            TEXT,
    visibility       TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    kind             TEXT NOT NULL CHECK (kind IN ('room', 'direct')),
    direct_key       TEXT UNIQUE, -- 'low_user_id:high_user_id' for direct rooms
    created_by       BIGINT NOT NULL REFERENCES users (id),
    created_at       TIMESTAMP NOT NULL,
    last_seq         BIGINT NOT NULL DEFAULT 0, -- the seq of the newest message; the next one takes last_seq + 1
    last_activity_at TIMESTAMP NOT NULL
);
CREATE INDEX rooms_visibility ON rooms (visibility, id);

CREATE TABLE room_members (
    room_id       BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    joined_at     TIMESTAMP NOT NULL,
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members (user_id);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id         BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq             BIGINT NOT NULL,
    author_id       BIGINT NOT NULL REFERENCES users (id),
    body            TEXT NOT NULL,
    client_id       TEXT,
    idempotency_key TEXT,
    created_at      TIMESTAMP NOT NULL,
    edited_at       TIMESTAMP,
    deleted         BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (room_id, seq)
);
-- Retries deduplicate on either key, per author and room.
CREATE UNIQUE INDEX messages_client_id ON messages (room_id, author_id, client_id) WHERE client_id IS NOT NULL;
CREATE UNIQUE INDEX messages_idempotency_key ON messages (room_id, author_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
