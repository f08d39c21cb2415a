-- Sessions without a foreign key to their user (sql/postgres/V14__sessions_unlinked_from_users.sql)
-- is PostgreSQL's: SQLite's single writer adds sessions and removes users one at a
-- time. This version keeps the histories the same.
CREATE TABLE IF NOT EXISTS refinery_schema_history_v14_noop (x INTEGER);
DROP TABLE refinery_schema_history_v14_noop;
