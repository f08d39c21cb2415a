-- Indexes nothing reads any more (sql/sqlite/V5__unused_indexes.sql).
DROP INDEX access_tokens_expiry;
DROP INDEX audit_client;
