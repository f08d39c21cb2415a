-- tollgate schema on PostgreSQL: sql/sqlite/V1__initial.sql translated. Append-only.
-- Times are Unix seconds supplied by the application (its clock), never now().
-- Flags stay 0/1 integers, as on SQLite, so that iPIM/Jim2's query answers verbatim:
--   SELECT NICKNAME, "PASSWORD" FROM USERS WHERE APIUSER = 1;
-- (PostgreSQL folds the unquoted names: the table is users, its columns nickname,
-- apiuser, and the quoted upper-case "PASSWORD").
CREATE TABLE users (
    id         BIGSERIAL PRIMARY KEY,
    nickname   TEXT    NOT NULL UNIQUE,
    "PASSWORD" TEXT    NOT NULL,
    apiuser    INTEGER NOT NULL DEFAULT 1 CHECK (apiuser IN (0, 1)),
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at BIGINT  NOT NULL
);

CREATE TABLE scopes (
    name        TEXT    PRIMARY KEY,
    description TEXT    NOT NULL DEFAULT '',
    licensed    INTEGER NOT NULL CHECK (licensed IN (0, 1))
);

INSERT INTO scopes (name, description, licensed) VALUES
    ('view', 'Read-only access; takes no licence seat', 0),
    ('all',  'Full access; holds a licence seat',       1);

CREATE TABLE user_scopes (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope   TEXT   NOT NULL REFERENCES scopes (name) ON DELETE CASCADE,
    PRIMARY KEY (user_id, scope)
);

-- The licence pool: one row. A licensed grant locks it (SELECT ... FOR UPDATE), so
-- that counting held seats and inserting the session are one step across instances.
CREATE TABLE licence (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seats BIGINT  NOT NULL CHECK (seats >= 0)
);
INSERT INTO licence (id, seats) VALUES (1, 0);

CREATE TABLE sessions (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    licensed   INTEGER NOT NULL CHECK (licensed IN (0, 1)),
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_live_seats ON sessions (expires_at) WHERE licensed = 1 AND revoked_at IS NULL;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    hash       BYTEA   PRIMARY KEY,
    session_id BIGINT  NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  BIGINT  NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE access_tokens (
    hash       BYTEA   PRIMARY KEY,
    session_id BIGINT  NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    issued_at  BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX access_tokens_session ON access_tokens (session_id);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

CREATE TABLE products (
    sku         TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    price_cents BIGINT  NOT NULL CHECK (price_cents >= 0),
    stock       BIGINT  NOT NULL CHECK (stock >= 0),
    updated_at  BIGINT  NOT NULL
);
