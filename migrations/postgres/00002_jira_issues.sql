-- The Jira issues of a site as last seen by the issue webhooks. Rows are soft
-- deleted so that a late "updated" event cannot bring a deleted issue back.

-- +goose Up
CREATE TABLE jira_issues (
    tenant_id       bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    issue_id        text        NOT NULL,
    issue_key       text        NOT NULL,
    project_key     text        NOT NULL,
    summary         text        NOT NULL DEFAULT '',
    status_name     text        NOT NULL DEFAULT '',
    status_category text        NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz,
    PRIMARY KEY (tenant_id, issue_id)
);

CREATE INDEX jira_issues_tenant_key_idx ON jira_issues (tenant_id, issue_key);
CREATE INDEX jira_issues_tenant_project_idx ON jira_issues (tenant_id, project_key);

-- +goose Down
DROP TABLE jira_issues;
