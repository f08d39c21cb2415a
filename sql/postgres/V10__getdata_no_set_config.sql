-- GetData (API.md §7, §9): set_config('role', …) would let a query switch from
-- tollgate_getdata back to the session's own role (SET ROLE checks the session
-- user), and a query can reach it through functions that run SQL text of their
-- own (ts_stat, query_to_xml). So nobody in this database may call it but
-- tollgate's own user. Only the function's owner (a superuser) can revoke; for
-- anyone else these statements change nothing and warn, and tollgate then refuses
-- to run GetData queries and says what a superuser must run.
REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO %I', current_user);
END
$$;
