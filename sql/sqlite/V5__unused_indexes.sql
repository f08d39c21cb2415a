-- Indexes nothing reads any more; each cost every grant one more b-tree insert.
-- access_tokens_expiry: the sweep reads access tokens in id order (store::sweep).
-- audit_client: `tollgate audit --client` reads by time through audit_at, filtering
-- on the client as it goes.
DROP INDEX access_tokens_expiry;
DROP INDEX audit_client;
