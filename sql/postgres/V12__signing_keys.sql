-- Signing keys for JWT access tokens (API.md §10). The newest key without
-- retired_at signs; a retired key stays published until the tokens it signed have
-- expired. The GetData role is never granted this table.
CREATE TABLE signing_keys (
    id          BIGSERIAL PRIMARY KEY,
    kid         TEXT   NOT NULL UNIQUE,
    alg         TEXT   NOT NULL CHECK (alg = 'ES256'),
    private_key BYTEA  NOT NULL,
    public_x    TEXT   NOT NULL,
    public_y    TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
-- At most one key signs at a time, even when two instances make the first at once.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (alg) WHERE retired_at IS NULL;
