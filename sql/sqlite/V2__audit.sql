-- Audit trail: token grants, refusals, refreshes, revocations and admin changes.
-- Never holds secrets or tokens; pruned after the configured retention.
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    event     TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    client_id TEXT,
    remote    TEXT,
    detail    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_client ON audit (client_id, at);
