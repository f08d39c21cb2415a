-- An upper bound of the licence seats held, kept in the licence row: every
-- licensed session inserted adds to it (this trigger, so that every writer keeps
-- it, whatever its version), and since sessions only leave (expire, are revoked)
-- it never falls below the seats really held. A licensed grant that fits under
-- it needs no count of the sessions; one that does not counts them exactly under
-- the licence row's lock and makes that count the new bound.
ALTER TABLE licence ADD COLUMN held_bound BIGINT NOT NULL DEFAULT 0;
UPDATE licence SET held_bound = (
    SELECT count(*) FROM sessions WHERE licensed = 1 AND revoked_at IS NULL
);

CREATE FUNCTION tollgate_seat_bound() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
BEGIN
    SELECT count(*) INTO n FROM new_sessions WHERE licensed = 1;
    -- A view grant's batch leaves the licence row alone (and unlocked).
    IF n > 0 THEN
        UPDATE licence SET held_bound = held_bound + n WHERE id = 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_seat_bound
    AFTER INSERT ON sessions
    REFERENCING NEW TABLE AS new_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_seat_bound();
