-- keyline_abort ends the statement that calls it with SQLSTATE KL001 and the
-- given reason. A push is written on PostgreSQL as one self-committing
-- statement (app/store/events.go); when its delivery turns out to be a
-- duplicate, or its commits belong to deployments that must be re-linked in
-- a transaction, the statement calls this so that none of its writes commit.
-- A plpgsql function is volatile, so the planner never evaluates it early.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION keyline_abort(reason text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'KL001', MESSAGE = reason;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION keyline_abort(text);
