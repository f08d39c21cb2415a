-- GetData: named read-only queries an administrator publishes (API.md §7).
CREATE TABLE queries (
    name        TEXT    PRIMARY KEY,
    sql         TEXT    NOT NULL,
    scope       TEXT    NOT NULL DEFAULT 'view' REFERENCES scopes (name),
    description TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
