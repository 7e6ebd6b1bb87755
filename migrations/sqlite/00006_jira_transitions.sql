-- Status changes of Jira issues, from the issue webhooks, for cycle-time
-- metrics; the claims that make a redelivered Jira webhook a no-op; and the
-- two issue times the metrics read, derived from the transitions.

-- +goose Up
CREATE TABLE jira_transitions (
    tenant_id       integer   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    issue_id        text      NOT NULL,
    transitioned_at timestamp NOT NULL,
    -- '' for the status an issue was created in.
    from_status     text      NOT NULL,
    to_status       text      NOT NULL,
    -- Status ids survive a status being renamed; '' when Jira sent none.
    from_status_id  text      NOT NULL,
    to_status_id    text      NOT NULL,
    -- new, indeterminate or done as Jira reported it with the event; '' when
    -- the event did not tell (its issue snapshot showed another status).
    to_category     text      NOT NULL,
    -- The key at the time: keys change when an issue moves project.
    issue_key       text      NOT NULL,
    -- The time and the two names identify a change, so a webhook processed
    -- twice (a redelivery after its claim expired, or one without an
    -- identifier) records it once.
    PRIMARY KEY (tenant_id, issue_id, transitioned_at, from_status, to_status)
);

-- X-Atlassian-Webhook-Identifier of each Jira webhook processed, kept for a
-- week (pruned by the store on insert), which is far longer than Jira retries.
CREATE TABLE jira_webhook_claims (
    tenant_id  integer   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    webhook_id text      NOT NULL,
    claimed_at timestamp NOT NULL,
    PRIMARY KEY (tenant_id, webhook_id)
);

CREATE INDEX jira_webhook_claims_tenant_claimed_idx ON jira_webhook_claims (tenant_id, claimed_at);

-- Recomputed from jira_transitions on every status change, so the order in
-- which webhooks arrive does not matter.
ALTER TABLE jira_issues ADD COLUMN started_at timestamp;
ALTER TABLE jira_issues ADD COLUMN done_at timestamp;

-- +goose Down
ALTER TABLE jira_issues DROP COLUMN done_at;
ALTER TABLE jira_issues DROP COLUMN started_at;
DROP TABLE jira_webhook_claims;
DROP TABLE jira_transitions;
