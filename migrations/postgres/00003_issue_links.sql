-- Development entities (branches, commits, pull requests, builds, ...)
-- linked to a Jira issue key. Filled by the DevOps ingestion; keyed by issue
-- key rather than id because that is what commit messages and branch names carry.

-- +goose Up
CREATE TABLE issue_links (
    tenant_id   bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    issue_key   text        NOT NULL,
    entity_type text        NOT NULL,
    entity_id   text        NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, issue_key, entity_type, entity_id)
);

-- +goose Down
DROP TABLE issue_links;
