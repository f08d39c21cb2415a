-- Tokens carry their row id: the text a client holds is
-- base64url(id as 8 bytes big-endian || 32 random bytes), and `hash` is the SHA-256
-- of the random part. New tokens are appended at the end of their tables instead of
-- being scattered over them by a random key, so a grant writes a few pages, not one
-- per table and index at random.
--
-- Tokens issued before this migration keep working until they expire: their rows
-- are copied with legacy = 1 and found by the SHA-256 of their whole text through a
-- partial index that holds only them (and so stays empty once they are swept).

CREATE TABLE access_tokens_v4 (
    id         INTEGER PRIMARY KEY,
    hash       BLOB    NOT NULL,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    legacy     INTEGER CHECK (legacy = 1)
);
INSERT INTO access_tokens_v4 (hash, session_id, scope, issued_at, expires_at, revoked_at, legacy)
    SELECT hash, session_id, scope, issued_at, expires_at, revoked_at, 1
    FROM access_tokens ORDER BY issued_at;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_v4 RENAME TO access_tokens;
CREATE INDEX access_tokens_session ON access_tokens (session_id);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);
CREATE UNIQUE INDEX access_tokens_legacy ON access_tokens (hash) WHERE legacy = 1;

CREATE TABLE refresh_tokens_v4 (
    id         INTEGER PRIMARY KEY,
    hash       BLOB    NOT NULL,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    used_at    INTEGER,
    legacy     INTEGER CHECK (legacy = 1)
);
INSERT INTO refresh_tokens_v4 (hash, session_id, issued_at, used_at, legacy)
    SELECT hash, session_id, issued_at, used_at, 1
    FROM refresh_tokens ORDER BY issued_at;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_v4 RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE UNIQUE INDEX refresh_tokens_legacy ON refresh_tokens (hash) WHERE legacy = 1;
