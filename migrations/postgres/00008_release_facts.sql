-- What the release metrics and release notes read, kept up to date as
-- deployments are linked, so that a site with a million deployments still
-- answers in a few hundred milliseconds:
--
-- change_first_deployments holds, per environment type, the first
-- successful deployment of each change: a merged pull request (with the
-- commits of its branch folded in) or a commit that reached the
-- environment without one. Its lead time is stored with it.
--
-- issue_first_deployments holds, per environment type, the first
-- successful deployment linked to each issue key: where cycle time ends and
-- what release notes list.
--
-- Both are derived data: the store rewrites a deployment's rows whenever it
-- re-links the deployment, keeping for each change or issue the earliest.
--
-- commits.branch is the branch of the first push that carried a commit;
-- with it a deployment can tell a pull request's branch commits from
-- commits pushed straight to the trunk. jira_issues.issue_type groups
-- release notes.

-- +goose Up
ALTER TABLE commits ADD COLUMN branch text NOT NULL DEFAULT '';
ALTER TABLE jira_issues ADD COLUMN issue_type text NOT NULL DEFAULT '';

CREATE TABLE change_first_deployments (
    tenant_id        bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    environment_type text        NOT NULL,
    -- 'pullrequest' with the pull request's id, or 'commit' with the sha.
    change_kind      text        NOT NULL,
    change_id        text        NOT NULL,
    deployment_id    text        NOT NULL,
    service          text        NOT NULL,
    environment_name text        NOT NULL,
    deployed_at      timestamptz NOT NULL,
    -- NULL when no commit time of the change is known.
    first_commit_at  timestamptz,
    lead_seconds     bigint,
    issue_keys       text        NOT NULL,
    PRIMARY KEY (tenant_id, environment_type, change_kind, change_id)
);
-- The metrics scan one window of one environment type; the included
-- columns let that be an index-only scan.
CREATE INDEX change_first_deployments_time_idx
    ON change_first_deployments (tenant_id, environment_type, deployed_at)
    INCLUDE (lead_seconds, service, environment_name);
CREATE INDEX change_first_deployments_deployment_idx ON change_first_deployments (tenant_id, deployment_id);

CREATE TABLE issue_first_deployments (
    tenant_id        bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    environment_type text        NOT NULL,
    issue_key        text        NOT NULL,
    deployment_id    text        NOT NULL,
    service          text        NOT NULL,
    environment_name text        NOT NULL,
    deployed_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, environment_type, issue_key)
);
CREATE INDEX issue_first_deployments_time_idx ON issue_first_deployments (tenant_id, environment_type, deployed_at);
CREATE INDEX issue_first_deployments_deployment_idx ON issue_first_deployments (tenant_id, deployment_id);

-- +goose Down
DROP TABLE issue_first_deployments;
DROP TABLE change_first_deployments;
ALTER TABLE jira_issues DROP COLUMN issue_type;
ALTER TABLE commits DROP COLUMN branch;
