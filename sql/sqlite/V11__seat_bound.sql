-- The seat bound (sql/postgres/V11__seat_bound.sql) is PostgreSQL's: on SQLite one
-- writer keeps the held seats in memory (store/sqlite/seats.rs). This version keeps
-- the histories the same.
CREATE TABLE IF NOT EXISTS refinery_schema_history_v11_noop (x INTEGER);
DROP TABLE refinery_schema_history_v11_noop;
