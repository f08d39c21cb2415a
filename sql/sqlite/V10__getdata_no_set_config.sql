-- The revocation of set_config (sql/postgres/V10__getdata_no_set_config.sql) is
-- PostgreSQL's; SQLite has no such function. This version keeps the histories the same.
CREATE TABLE IF NOT EXISTS refinery_schema_history_v10_noop (x INTEGER);
DROP TABLE refinery_schema_history_v10_noop;
