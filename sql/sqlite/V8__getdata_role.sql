-- GetData's role (sql/postgres/V8__getdata_role.sql) is PostgreSQL's: SQLite runs
-- queries on read-only connections with an authorizer (store/sqlite/sandbox/), so
-- this version changes nothing here. It keeps the two histories the same.
CREATE TABLE IF NOT EXISTS refinery_schema_history_v8_noop (x INTEGER);
DROP TABLE refinery_schema_history_v8_noop;
