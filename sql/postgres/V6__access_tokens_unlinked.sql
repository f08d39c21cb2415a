-- Access tokens without a foreign key to their session, and without the session_id
-- index the key needed (sql/sqlite/V6__access_tokens_unlinked.sql). PostgreSQL
-- drops a constraint and an index in place; the rows stay.
ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_v4_session_id_fkey;
DROP INDEX access_tokens_session;
