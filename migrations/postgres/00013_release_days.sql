-- Per-day rollups of the lead and cycle times (app/store/release_days.go).
--
-- A site-wide year of release metrics read about 380,000 change facts and
-- 185,000 issue facts one row each, and two cores could not answer it in
-- 200 ms whatever the read's shape. release_days holds the same values
-- summarised by UTC day: for each environment type, project, service and
-- environment, the day's lead times (seconds; 0 where no commit time is
-- known) or cycle times (microseconds; 0 where no start of work is known),
-- as a sorted array. A year is then about 9,000 rows holding the same
-- values, and every figure computed from them is exactly the one computed
-- from the facts.
--
-- project '' holds every fact; a project's key holds the facts of its
-- issues (a change with issues of two projects is in both). So the rollup
-- answers the site and one project; reads of several projects or several
-- environment types, which must count a change once, read the facts.
--
-- Triggers keep the rows in step with change_first_deployments and
-- issue_first_deployments, in the writing transaction, whatever writes
-- them: a delivery's re-link, a fact moved to an earlier deployment, an
-- issue's start synchronised from Jira, a tenant deleted. They are
-- statement-level, so a bulk insert (the load tool's history) updates each
-- day's row once. Each statement queues the values it removed and wrote in
-- release_day_pending; at commit a deferred trigger applies the
-- transaction's queue as a delta to each row (values in, values out, as
-- multisets), which stays right under concurrent writers since PostgreSQL
-- re-reads a row it waited for. A busy site's deliveries all update the
-- same day's rows: updated during the transaction, those rows stayed
-- locked while it went on to lock others, and concurrent deployments
-- deadlocked on them in tests. Applied last, in key order, they are the
-- last locks a transaction takes, so waiting for them can form no cycle;
-- and a re-sent deployment's removal and re-insertion cancel out.

-- +goose Up
CREATE TABLE release_days (
    tenant_id        bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- 'lead' (change_first_deployments) or 'cycle' (issue_first_deployments).
    measure          text   NOT NULL,
    environment_type text   NOT NULL,
    project          text   NOT NULL,
    day              date   NOT NULL,
    service          text   NOT NULL,
    environment_name text   NOT NULL,
    vals             bigint[] NOT NULL,
    PRIMARY KEY (tenant_id, measure, environment_type, project, day, service, environment_name)
);

CREATE TYPE release_day_value AS (
    tenant_id        bigint,
    measure          text,
    environment_type text,
    project          text,
    day              date,
    service          text,
    environment_name text,
    v                bigint
);

-- +goose StatementBegin
-- The projects a fact counts under: '' and those of its space-separated
-- issue keys.
CREATE FUNCTION release_projects(keys text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT '' UNION
    SELECT split_part(k, '-', 1) FROM unnest(string_to_array(keys, ' ')) AS k WHERE k <> ''
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- vals without one occurrence of each of minus, sorted.
CREATE FUNCTION release_multiset(vals bigint[], minus bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(array_agg(v ORDER BY v), '{}')
    FROM (SELECT unnest(vals) EXCEPT ALL SELECT unnest(minus)) AS x (v)
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- Applies a statement's change to release_days: the values of the rows it
-- removed (gone) and of those it wrote (came). Values both gone and come
-- back to the same row cancel out.
CREATE FUNCTION release_days_apply(gone release_day_value[], came release_day_value[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d record;
BEGIN
    FOR d IN
        WITH g AS (SELECT * FROM unnest(gone)), c AS (SELECT * FROM unnest(came)),
        delta AS (
            SELECT *, 1 AS sign FROM (SELECT * FROM c EXCEPT ALL SELECT * FROM g) AS plus
            UNION ALL
            SELECT *, -1 FROM (SELECT * FROM g EXCEPT ALL SELECT * FROM c) AS minus)
        SELECT tenant_id, measure, environment_type, project, day, service, environment_name,
            COALESCE(array_agg(v) FILTER (WHERE sign > 0), '{}') AS plus,
            COALESCE(array_agg(v) FILTER (WHERE sign < 0), '{}') AS minus
        FROM delta
        GROUP BY tenant_id, measure, environment_type, project, day, service, environment_name
        ORDER BY tenant_id, measure, environment_type, project, day, service, environment_name
    LOOP
        IF cardinality(d.plus) > 0 THEN
            INSERT INTO release_days AS r (tenant_id, measure, environment_type, project, day, service,
                environment_name, vals)
            VALUES (d.tenant_id, d.measure, d.environment_type, d.project, d.day, d.service, d.environment_name,
                release_multiset(d.plus, d.minus))
            ON CONFLICT (tenant_id, measure, environment_type, project, day, service, environment_name)
            DO UPDATE SET vals = release_multiset(r.vals || d.plus, d.minus);
        ELSE
            UPDATE release_days SET vals = release_multiset(vals, d.minus)
            WHERE tenant_id = d.tenant_id AND measure = d.measure AND environment_type = d.environment_type
                AND project = d.project AND day = d.day AND service = d.service
                AND environment_name = d.environment_name;
        END IF;
        IF cardinality(d.minus) > 0 THEN
            DELETE FROM release_days
            WHERE tenant_id = d.tenant_id AND measure = d.measure AND environment_type = d.environment_type
                AND project = d.project AND day = d.day AND service = d.service
                AND environment_name = d.environment_name AND cardinality(vals) = 0;
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- One row per statement that changed facts, until its transaction
-- commits: release_days_flush deletes them.
CREATE TABLE release_day_pending (
    xact xid8                NOT NULL DEFAULT pg_current_xact_id(),
    gone release_day_value[] NOT NULL,
    came release_day_value[] NOT NULL
);
CREATE INDEX release_day_pending_xact_idx ON release_day_pending (xact);

-- +goose StatementBegin
-- Applies the queue of the committing transaction, once: the trigger
-- fires for each row queued, and the first firing takes them all.
CREATE FUNCTION release_days_flush() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    g release_day_value[];
    c release_day_value[];
BEGIN
    WITH p AS (DELETE FROM release_day_pending WHERE xact = pg_current_xact_id() RETURNING gone, came)
    SELECT COALESCE(array_agg(u.x) FILTER (WHERE u.k = 'g'), '{}'),
        COALESCE(array_agg(u.x) FILTER (WHERE u.k = 'c'), '{}')
    INTO g, c
    FROM (SELECT 'g' AS k, unnest(p.gone) AS x FROM p UNION ALL SELECT 'c', unnest(p.came) FROM p) AS u;
    IF cardinality(g) + cardinality(c) > 0 THEN
        PERFORM release_days_apply(g, c);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE CONSTRAINT TRIGGER release_day_pending_flush AFTER INSERT ON release_day_pending
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION release_days_flush();

-- +goose StatementBegin
-- What a change fact puts in the rollup: its lead time, under '' and
-- under each project of its issue keys.
CREATE FUNCTION release_day_values(f change_first_deployments) RETURNS SETOF release_day_value
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT f.tenant_id, 'lead', f.environment_type, p.project, (f.deployed_at AT TIME ZONE 'UTC')::date,
        f.service, f.environment_name, COALESCE(f.lead_seconds, 0)
    FROM release_projects(f.issue_keys) AS p (project)
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- What an issue fact puts in the rollup: its cycle time, under '' and
-- under its issue's project.
CREATE FUNCTION release_day_values(f issue_first_deployments) RETURNS SETOF release_day_value
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT f.tenant_id, 'cycle', f.environment_type, p.project, (f.deployed_at AT TIME ZONE 'UTC')::date,
        f.service, f.environment_name,
        COALESCE(((EXTRACT(EPOCH FROM f.deployed_at) - EXTRACT(EPOCH FROM f.issue_started_at)) * 1000000)::bigint, 0)
    FROM unnest(ARRAY['', split_part(f.issue_key, '-', 1)]) AS p (project)
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- The triggers of the fact tables, one for each since the rows of a
-- transition table are records that must be cast to the table's type.
-- Rows of a deleted tenant (its facts go by cascade) are skipped: its
-- release_days rows go the same way, and a large site's delete would
-- otherwise build the whole rollup's removal first.
CREATE FUNCTION change_first_deployments_days() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    g release_day_value[] := '{}';
    c release_day_value[] := '{}';
BEGIN
    IF TG_OP <> 'INSERT' THEN
        SELECT COALESCE(array_agg(x), '{}') INTO g
        FROM gone f CROSS JOIN LATERAL release_day_values(f::change_first_deployments) AS x
        WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = f.tenant_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        SELECT COALESCE(array_agg(x), '{}') INTO c
        FROM came f CROSS JOIN LATERAL release_day_values(f::change_first_deployments) AS x;
    END IF;
    IF cardinality(g) + cardinality(c) > 0 THEN
        INSERT INTO release_day_pending (gone, came) VALUES (g, c);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- As change_first_deployments_days.
CREATE FUNCTION issue_first_deployments_days() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    g release_day_value[] := '{}';
    c release_day_value[] := '{}';
BEGIN
    IF TG_OP <> 'INSERT' THEN
        SELECT COALESCE(array_agg(x), '{}') INTO g
        FROM gone f CROSS JOIN LATERAL release_day_values(f::issue_first_deployments) AS x
        WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = f.tenant_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        SELECT COALESCE(array_agg(x), '{}') INTO c
        FROM came f CROSS JOIN LATERAL release_day_values(f::issue_first_deployments) AS x;
    END IF;
    IF cardinality(g) + cardinality(c) > 0 THEN
        INSERT INTO release_day_pending (gone, came) VALUES (g, c);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER change_first_deployments_days_insert AFTER INSERT ON change_first_deployments
    REFERENCING NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION change_first_deployments_days();
CREATE TRIGGER change_first_deployments_days_update AFTER UPDATE ON change_first_deployments
    REFERENCING OLD TABLE AS gone NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION change_first_deployments_days();
CREATE TRIGGER change_first_deployments_days_delete AFTER DELETE ON change_first_deployments
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION change_first_deployments_days();
CREATE TRIGGER issue_first_deployments_days_insert AFTER INSERT ON issue_first_deployments
    REFERENCING NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION issue_first_deployments_days();
CREATE TRIGGER issue_first_deployments_days_update AFTER UPDATE ON issue_first_deployments
    REFERENCING OLD TABLE AS gone NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION issue_first_deployments_days();
CREATE TRIGGER issue_first_deployments_days_delete AFTER DELETE ON issue_first_deployments
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION issue_first_deployments_days();

-- The facts already stored.
INSERT INTO release_days (tenant_id, measure, environment_type, project, day, service, environment_name, vals)
SELECT v.tenant_id, v.measure, v.environment_type, v.project, v.day, v.service, v.environment_name,
    array_agg(v.v ORDER BY v.v)
FROM change_first_deployments f CROSS JOIN LATERAL release_day_values(f) AS v
GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO release_days (tenant_id, measure, environment_type, project, day, service, environment_name, vals)
SELECT v.tenant_id, v.measure, v.environment_type, v.project, v.day, v.service, v.environment_name,
    array_agg(v.v ORDER BY v.v)
FROM issue_first_deployments f CROSS JOIN LATERAL release_day_values(f) AS v
GROUP BY 1, 2, 3, 4, 5, 6, 7;

-- +goose Down
DROP TRIGGER issue_first_deployments_days_delete ON issue_first_deployments;
DROP TRIGGER issue_first_deployments_days_update ON issue_first_deployments;
DROP TRIGGER issue_first_deployments_days_insert ON issue_first_deployments;
DROP TRIGGER change_first_deployments_days_delete ON change_first_deployments;
DROP TRIGGER change_first_deployments_days_update ON change_first_deployments;
DROP TRIGGER change_first_deployments_days_insert ON change_first_deployments;
DROP FUNCTION issue_first_deployments_days();
DROP FUNCTION change_first_deployments_days();
DROP FUNCTION release_day_values(issue_first_deployments);
DROP FUNCTION release_day_values(change_first_deployments);
DROP TRIGGER release_day_pending_flush ON release_day_pending;
DROP FUNCTION release_days_flush();
DROP TABLE release_day_pending;
DROP FUNCTION release_days_apply(release_day_value[], release_day_value[]);
DROP FUNCTION release_multiset(bigint[], bigint[]);
DROP FUNCTION release_projects(text);
DROP TYPE release_day_value;
DROP TABLE release_days;
