-- tollgate schema. Append-only: later changes go in V2__..., never here.
-- Times are Unix seconds supplied by the application (its clock), never unixepoch().

-- API users, named and shaped as iPIM/Jim2 users expect:
--   SELECT NICKNAME, "PASSWORD" FROM USERS WHERE APIUSER = 1;
-- PASSWORD is a PBKDF2-HMAC-SHA256 PHC string, never a secret.
CREATE TABLE USERS (
    ID         INTEGER PRIMARY KEY,
    NICKNAME   TEXT    NOT NULL UNIQUE,
    "PASSWORD" TEXT    NOT NULL,
    APIUSER    INTEGER NOT NULL DEFAULT 1 CHECK (APIUSER IN (0, 1)),
    ENABLED    INTEGER NOT NULL DEFAULT 1 CHECK (ENABLED IN (0, 1)),
    CREATED_AT INTEGER NOT NULL
);

CREATE TABLE scopes (
    name        TEXT    PRIMARY KEY,
    description TEXT    NOT NULL DEFAULT '',
    licensed    INTEGER NOT NULL CHECK (licensed IN (0, 1))
) WITHOUT ROWID;

INSERT INTO scopes (name, description, licensed) VALUES
    ('view', 'Read-only access; takes no licence seat', 0),
    ('all',  'Full access; holds a licence seat',       1);

CREATE TABLE user_scopes (
    user_id INTEGER NOT NULL REFERENCES USERS (ID) ON DELETE CASCADE,
    scope   TEXT    NOT NULL REFERENCES scopes (name) ON DELETE CASCADE,
    PRIMARY KEY (user_id, scope)
) WITHOUT ROWID;

-- The licence pool: one row.
CREATE TABLE licence (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seats INTEGER NOT NULL CHECK (seats >= 0)
);
INSERT INTO licence (id, seats) VALUES (1, 0);

-- One session per grant. A licensed session holds a seat while
-- revoked_at IS NULL AND expires_at > now; expires_at slides on refresh.
CREATE TABLE sessions (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES USERS (ID) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    licensed   INTEGER NOT NULL CHECK (licensed IN (0, 1)),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX sessions_live_seats ON sessions (expires_at) WHERE licensed = 1 AND revoked_at IS NULL;
CREATE INDEX sessions_user ON sessions (user_id);

-- Tokens are stored only as SHA-256 hashes.
-- A refresh token row stays after it is exchanged (used_at set) so that reuse is detected.
CREATE TABLE refresh_tokens (
    hash       BLOB    PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    used_at    INTEGER
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE access_tokens (
    hash       BLOB    PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX access_tokens_session ON access_tokens (session_id);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

CREATE TABLE products (
    sku         TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
