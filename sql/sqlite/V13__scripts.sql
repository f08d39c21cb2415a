-- Script URL handlers (API.md §11): Rhai source an administrator publishes under a
-- name of the GetData namespace. `version` grows with every change, so every
-- instance's compiled-script cache sees a replacement at its next request.
CREATE TABLE scripts (
    name        TEXT    PRIMARY KEY,
    source      TEXT    NOT NULL,
    method      TEXT    NOT NULL DEFAULT 'GET' CHECK (method IN ('GET', 'POST', 'PUT', 'DELETE')),
    scope       TEXT    NOT NULL DEFAULT 'view' REFERENCES scopes (name),
    writes      INTEGER NOT NULL DEFAULT 0 CHECK (writes IN (0, 1)),
    description TEXT    NOT NULL DEFAULT '',
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- A name is a query or a script, never both; tollgate checks first and says so,
-- these keep it true when two administrators race.
CREATE TRIGGER scripts_name_not_a_query BEFORE INSERT ON scripts
WHEN EXISTS (SELECT 1 FROM queries WHERE name = NEW.name)
BEGIN
    SELECT RAISE(ABORT, 'the name is taken by a GetData query');
END;
CREATE TRIGGER queries_name_not_a_script BEFORE INSERT ON queries
WHEN EXISTS (SELECT 1 FROM scripts WHERE name = NEW.name)
BEGIN
    SELECT RAISE(ABORT, 'the name is taken by a script');
END;
