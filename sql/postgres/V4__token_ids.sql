-- Tokens carry their row id (sql/sqlite/V4__token_ids.sql translated): the text a
-- client holds is base64url(id as 8 bytes big-endian || 32 random bytes), and
-- `hash` is the SHA-256 of the random part. Rows from before keep legacy = 1.
CREATE TABLE access_tokens_v4 (
    id         BIGSERIAL PRIMARY KEY,
    hash       BYTEA   NOT NULL,
    session_id BIGINT  NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    issued_at  BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    revoked_at BIGINT,
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
    id         BIGSERIAL PRIMARY KEY,
    hash       BYTEA   NOT NULL,
    session_id BIGINT  NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  BIGINT  NOT NULL,
    used_at    BIGINT,
    legacy     INTEGER CHECK (legacy = 1)
);
INSERT INTO refresh_tokens_v4 (hash, session_id, issued_at, used_at, legacy)
    SELECT hash, session_id, issued_at, used_at, 1
    FROM refresh_tokens ORDER BY issued_at;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_v4 RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
CREATE UNIQUE INDEX refresh_tokens_legacy ON refresh_tokens (hash) WHERE legacy = 1;
