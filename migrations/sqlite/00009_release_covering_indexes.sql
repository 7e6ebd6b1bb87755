-- Covering indexes for cycle time (see the PostgreSQL migration). SQLite
-- has no INCLUDE, so the covered columns follow the key columns.

-- +goose Up
CREATE INDEX issue_first_deployments_window_idx
    ON issue_first_deployments (tenant_id, environment_type, deployed_at, issue_key, service, environment_name);
DROP INDEX issue_first_deployments_time_idx;
CREATE INDEX jira_issues_live_started_idx
    ON jira_issues (tenant_id, issue_key, started_at)
    WHERE deleted_at IS NULL;

-- +goose Down
DROP INDEX jira_issues_live_started_idx;
CREATE INDEX issue_first_deployments_time_idx ON issue_first_deployments (tenant_id, environment_type, deployed_at);
DROP INDEX issue_first_deployments_window_idx;
