-- Refresh tokens without a foreign key to their session, and so without the
-- session_id index the key needed (as V6 did for access tokens). Nothing looks
-- refresh tokens up by session: a token is found by its id and checked against its
-- session row, and a used one is kept, for reuse detection, as long as its session
-- is. The index is in session order, so every refresh, which inserts the new
-- token's entry beside its session's older ones, wrote one more scattered page to
-- the WAL and to the database. The sweep now deletes the tokens of deleted sessions
-- itself instead of the key's cascade.
CREATE TABLE refresh_tokens_v7 (
    id         INTEGER PRIMARY KEY,
    hash       BLOB    NOT NULL,
    session_id INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL,
    used_at    INTEGER,
    legacy     INTEGER CHECK (legacy = 1)
);
INSERT INTO refresh_tokens_v7 (id, hash, session_id, issued_at, used_at, legacy)
    SELECT id, hash, session_id, issued_at, used_at, legacy FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_v7 RENAME TO refresh_tokens;
CREATE UNIQUE INDEX refresh_tokens_legacy ON refresh_tokens (hash) WHERE legacy = 1;
