-- Paths for the release reads (app/store/release.go).
--
-- Cycle time reads, for every issue first deployed in a window, when work on
-- it started. Keeping that time on the fact row (copied from the issue's
-- live jira_issues row, and kept in step by the store whenever an issue
-- event or a new fact changes it) makes the read one index-only range scan
-- instead of a probe into jira_issues per issue: a site-wide quarter has
-- tens of thousands of issues. NULL when no live issue of that key has a
-- recorded start.
--
-- The release figures also read every deployment to production in the
-- window, in time order. deployments_type_idx finds them but leads to one
-- heap page per row, since a site's deployments to its environments
-- interleave; deployments_release_idx covers what the read needs so it is
-- an index-only scan. It is about 60 % of the size of the table (219 of
-- 357 MB for the 1,000,000 deployments of the seeded history), and
-- deployments are written far less often than pushes.
--
-- The slowest changes of a window were its top ten by lead time after
-- reading and sorting all of the window's changes: half a second for a
-- project's year, whose project filter also reads the heap.
-- change_first_deployments_slowest_idx walks changes from the slowest down,
-- and PostgreSQL picks it when enough of them fall in the window to stop
-- early, keeping the time index for short windows and rare filters.
--
-- A project's lead times filter the window's changes on their issue keys,
-- which change_first_deployments_time_idx did not hold: every change of
-- the window was read from the heap. change_first_deployments_window_idx
-- includes them and replaces it.
--
-- A project's deployments were found by probing issue_links once for each
-- deployment of the window. deployments.linked_projects keeps the projects
-- of a deployment's issue links (space-separated; the store keeps it in
-- step with the links), and deployments_release_idx includes it.

-- +goose Up
ALTER TABLE issue_first_deployments ADD COLUMN issue_started_at timestamptz;
UPDATE issue_first_deployments f SET issue_started_at = (SELECT MIN(j.started_at) FROM jira_issues j
    WHERE j.tenant_id = f.tenant_id AND j.issue_key = f.issue_key AND j.deleted_at IS NULL);
CREATE INDEX issue_first_deployments_cycle_idx
    ON issue_first_deployments (tenant_id, environment_type, deployed_at)
    INCLUDE (issue_key, service, environment_name, issue_started_at);
DROP INDEX issue_first_deployments_window_idx;
ALTER TABLE deployments ADD COLUMN linked_projects text NOT NULL DEFAULT '';
UPDATE deployments d SET linked_projects = COALESCE((SELECT string_agg(DISTINCT split_part(l.issue_key, '-', 1), ' ')
    FROM issue_links l WHERE l.tenant_id = d.tenant_id AND l.entity_type = 'deployment' AND l.entity_id = d.id), '');
CREATE INDEX deployments_release_idx
    ON deployments (tenant_id, environment_type, finished_at)
    INCLUDE (state, id, service, environment_name, environment_id, pipeline_name, sequence_number, url, commit_count,
        linked_projects);
CREATE INDEX change_first_deployments_slowest_idx
    ON change_first_deployments (tenant_id, environment_type, lead_seconds DESC, change_id)
    WHERE lead_seconds IS NOT NULL;
CREATE INDEX change_first_deployments_window_idx
    ON change_first_deployments (tenant_id, environment_type, deployed_at)
    INCLUDE (lead_seconds, service, environment_name, issue_keys);
DROP INDEX change_first_deployments_time_idx;

-- +goose Down
CREATE INDEX change_first_deployments_time_idx
    ON change_first_deployments (tenant_id, environment_type, deployed_at)
    INCLUDE (lead_seconds, service, environment_name);
DROP INDEX change_first_deployments_window_idx;
DROP INDEX change_first_deployments_slowest_idx;
DROP INDEX deployments_release_idx;
ALTER TABLE deployments DROP COLUMN linked_projects;
CREATE INDEX issue_first_deployments_window_idx
    ON issue_first_deployments (tenant_id, environment_type, deployed_at)
    INCLUDE (issue_key, service, environment_name);
DROP INDEX issue_first_deployments_cycle_idx;
ALTER TABLE issue_first_deployments DROP COLUMN issue_started_at;
