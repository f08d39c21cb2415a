-- Access tokens without a foreign key to their session, and so without the
-- session_id index the key needed. Nothing looks access tokens up by session: a
-- token is found by its id and checked against its session row (a revoked, expired
-- or deleted session ends it), and the sweep deletes tokens by their own expiry.
-- The key cost every grant and refresh a lookup of the session when inserting the
-- token and one b-tree insert more (a scattered one: the index is in session
-- order), and every deleted session a lookup of its tokens.
CREATE TABLE access_tokens_v6 (
    id         INTEGER PRIMARY KEY,
    hash       BLOB    NOT NULL,
    session_id INTEGER NOT NULL,
    scope      TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    legacy     INTEGER CHECK (legacy = 1)
);
INSERT INTO access_tokens_v6 (id, hash, session_id, scope, issued_at, expires_at, revoked_at, legacy)
    SELECT id, hash, session_id, scope, issued_at, expires_at, revoked_at, legacy FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_v6 RENAME TO access_tokens;
CREATE UNIQUE INDEX access_tokens_legacy ON access_tokens (hash) WHERE legacy = 1;
