-- Sessions without a foreign key to their user. Every path that adds a session
-- holds its user's row (FOR SHARE) until it commits, and removing a user holds the
-- row FOR UPDATE and deletes the user's sessions itself, so the key checked nothing
-- those locks do not; it cost every grant batch a lookup of the user per session.
ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey;
