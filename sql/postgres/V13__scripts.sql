-- Script URL handlers (API.md §11): Rhai source an administrator publishes under a
-- name of the GetData namespace. `version` grows with every change, so every
-- instance's compiled-script cache sees a replacement at its next request.
CREATE TABLE scripts (
    name        TEXT    PRIMARY KEY,
    source      TEXT    NOT NULL,
    method      TEXT    NOT NULL DEFAULT 'GET' CHECK (method IN ('GET', 'POST', 'PUT', 'DELETE')),
    scope       TEXT    NOT NULL DEFAULT 'view' REFERENCES scopes (name),
    writes      BOOLEAN NOT NULL DEFAULT FALSE,
    description TEXT    NOT NULL DEFAULT '',
    version     BIGINT  NOT NULL DEFAULT 1,
    created_at  BIGINT  NOT NULL
);

-- A name is a query or a script, never both; tollgate checks first and says so,
-- these keep it true when two administrators race (each locks the name's rows).
CREATE FUNCTION tollgate_name_is_free() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'scripts' AND EXISTS (SELECT 1 FROM queries WHERE name = NEW.name) THEN
        RAISE EXCEPTION 'the name is taken by a GetData query' USING ERRCODE = 'unique_violation';
    END IF;
    IF TG_TABLE_NAME = 'queries' AND EXISTS (SELECT 1 FROM scripts WHERE name = NEW.name) THEN
        RAISE EXCEPTION 'the name is taken by a script' USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER scripts_name_not_a_query BEFORE INSERT ON scripts
    FOR EACH ROW EXECUTE FUNCTION tollgate_name_is_free();
CREATE TRIGGER queries_name_not_a_script BEFORE INSERT ON queries
    FOR EACH ROW EXECUTE FUNCTION tollgate_name_is_free();

-- `execute()` of a `--writes` handler runs as tollgate_script, a NOLOGIN role that
-- may change the products table and nothing else (SET LOCAL ROLE, as GetData's).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tollgate_script') THEN
        BEGIN
            CREATE ROLE tollgate_script NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'tollgate needs the PostgreSQL role tollgate_script for script handlers, and % may not create roles: as a superuser, run CREATE ROLE tollgate_script NOLOGIN; GRANT tollgate_script TO %; then start again', current_user, current_user;
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'tollgate_script', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT tollgate_script TO %I', current_user);
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'tollgate runs script writes as role tollgate_script, and % is not a member of it: as a superuser, run GRANT tollgate_script TO %; then start again', current_user, current_user;
        END;
    END IF;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON products TO tollgate_script;
