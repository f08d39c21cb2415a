-- The batch expectation function (sql/postgres/V15__expectations.sql) is
-- PostgreSQL's: SQLite's single writer reads and writes in one place. This version
-- keeps the histories the same.
CREATE TABLE IF NOT EXISTS refinery_schema_history_v15_noop (x INTEGER);
DROP TABLE refinery_schema_history_v15_noop;
