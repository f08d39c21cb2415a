-- An expectation a grant batch sends ahead of its writes: when `ok` is not true it
-- raises SQLSTATE TG001, which aborts the transaction, so that the writes and the
-- COMMIT sent with it in the same flight do nothing; the batch then runs again the
-- long way, reading first (src/store/postgres/batch/one_flight.rs).
CREATE FUNCTION tollgate_expect(ok BOOLEAN, what TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = 'TG001', MESSAGE = 'changed since cached: ' || what;
    END IF;
    RETURN true;
END
$$;
