-- Audit trail (sql/sqlite/V2__audit.sql translated).
CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT  NOT NULL,
    event     TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    client_id TEXT,
    remote    TEXT,
    detail    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_client ON audit (client_id, at);
