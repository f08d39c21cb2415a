-- Signing keys for JWT access tokens (API.md §10). The newest key without
-- retired_at signs; a retired key stays published until the tokens it signed have
-- expired. GetData never reads this table (its sandbox names the tables it may).
CREATE TABLE signing_keys (
    id          INTEGER PRIMARY KEY,
    kid         TEXT    NOT NULL UNIQUE,
    alg         TEXT    NOT NULL CHECK (alg = 'ES256'),
    private_key BLOB    NOT NULL,
    public_x    TEXT    NOT NULL,
    public_y    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);
-- At most one key signs at a time, even when two instances make the first at once.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (alg) WHERE retired_at IS NULL;
