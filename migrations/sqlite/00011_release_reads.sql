-- The issue's start time on its fact rows, for cycle time (see the
-- PostgreSQL migration). SQLite has no INCLUDE, so the covered columns
-- follow the key columns. The covering deployments index is left out: SQLite
-- reads the release window from deployments_type_idx well enough at the sizes
-- it serves. deployments.linked_projects is kept on both, as the store
-- filters on it.

-- +goose Up
ALTER TABLE issue_first_deployments ADD COLUMN issue_started_at timestamp;
UPDATE issue_first_deployments SET issue_started_at = (SELECT MIN(j.started_at) FROM jira_issues j
    WHERE j.tenant_id = issue_first_deployments.tenant_id AND j.issue_key = issue_first_deployments.issue_key
        AND j.deleted_at IS NULL);
ALTER TABLE deployments ADD COLUMN linked_projects text NOT NULL DEFAULT '';
UPDATE deployments SET linked_projects = COALESCE((SELECT replace(group_concat(DISTINCT
        substr(l.issue_key, 1, instr(l.issue_key, '-') - 1)), ',', ' ')
    FROM issue_links l WHERE l.tenant_id = deployments.tenant_id AND l.entity_type = 'deployment'
        AND l.entity_id = deployments.id), '');
CREATE INDEX issue_first_deployments_cycle_idx
    ON issue_first_deployments (tenant_id, environment_type, deployed_at, issue_key, service, environment_name,
        issue_started_at);
DROP INDEX issue_first_deployments_window_idx;

-- +goose Down
CREATE INDEX issue_first_deployments_window_idx
    ON issue_first_deployments (tenant_id, environment_type, deployed_at, issue_key, service, environment_name);
DROP INDEX issue_first_deployments_cycle_idx;
ALTER TABLE issue_first_deployments DROP COLUMN issue_started_at;
ALTER TABLE deployments DROP COLUMN linked_projects;
