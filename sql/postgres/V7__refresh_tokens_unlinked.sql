-- Refresh tokens without a foreign key to their session, and without the
-- session_id index (sql/sqlite/V7__refresh_tokens_unlinked.sql); the sweep deletes
-- the tokens of deleted sessions itself.
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_v4_session_id_fkey;
DROP INDEX refresh_tokens_session;
