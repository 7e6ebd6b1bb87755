-- Covering indexes for cycle time. IssueCycles reads every issue first
-- deployed in a window and the time work on it started; with these both
-- sides are index-only scans, so a site-wide quarter no longer reads the
-- heap of issue_first_deployments nor scans all of a site's Jira issues.
-- The old time index is a prefix of the new one and goes.

-- +goose Up
CREATE INDEX issue_first_deployments_window_idx
    ON issue_first_deployments (tenant_id, environment_type, deployed_at)
    INCLUDE (issue_key, service, environment_name);
DROP INDEX issue_first_deployments_time_idx;
CREATE INDEX jira_issues_live_started_idx
    ON jira_issues (tenant_id, issue_key) INCLUDE (started_at)
    WHERE deleted_at IS NULL;

-- +goose Down
DROP INDEX jira_issues_live_started_idx;
CREATE INDEX issue_first_deployments_time_idx ON issue_first_deployments (tenant_id, environment_type, deployed_at);
DROP INDEX issue_first_deployments_window_idx;
