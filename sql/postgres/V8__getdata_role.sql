-- GetData (API.md §7, §9): queries run as tollgate_getdata, a NOLOGIN role that
-- reads only the published tables, inside a READ ONLY transaction (SET LOCAL ROLE).
-- Roles belong to the cluster, not the database: the role may exist already (another
-- tollgate database, or one migrating at the same moment).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tollgate_getdata') THEN
        BEGIN
            CREATE ROLE tollgate_getdata NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'tollgate needs the PostgreSQL role tollgate_getdata for GetData queries, and % may not create roles: as a superuser, run CREATE ROLE tollgate_getdata NOLOGIN; GRANT tollgate_getdata TO %; then start again', current_user, current_user;
        END;
    END IF;
    IF NOT pg_has_role(current_user, 'tollgate_getdata', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT tollgate_getdata TO %I', current_user);
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'tollgate runs GetData queries as role tollgate_getdata, and % is not a member of it: as a superuser, run GRANT tollgate_getdata TO %; then start again', current_user, current_user;
        END;
    END IF;
END
$$;
GRANT SELECT ON products TO tollgate_getdata;
