-- The DevOps entities of a site: what its sources delivered, in Keyline's
-- terms (app/devops), and the tables that tie them together.
--
-- Entities delivered by a source are keyed by an id the store derives from
-- the provider's identity ("<source>/<repository>/<name>", path-escaped), so
-- a redelivery finds its row and issue_links can name any entity by
-- (entity_type, entity_id). Commits are keyed by hash alone: a hash names the
-- same content whichever source reported it, which is what lets a deployment
-- reported by a CI tool reach the commits a code host pushed.
--
-- Lists of issue keys are stored space-separated; the links themselves live
-- in issue_links. Optional times are NULL when the provider did not say.

-- +goose Up
CREATE TABLE repositories (
    tenant_id      integer     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source_id      text        NOT NULL,
    id             text        NOT NULL,
    name           text        NOT NULL,
    url            text        NOT NULL,
    default_branch text        NOT NULL,
    updated_at     timestamp   NOT NULL,
    PRIMARY KEY (tenant_id, source_id, id)
);

CREATE TABLE commits (
    tenant_id       integer     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sha             text        NOT NULL,
    source_id       text        NOT NULL,
    repository_id   text        NOT NULL,
    message         text        NOT NULL,
    author_name     text        NOT NULL,
    author_email    text        NOT NULL,
    author_username text        NOT NULL,
    authored_at     timestamp,
    url             text        NOT NULL,
    merge           boolean     NOT NULL,
    -- The commit's predecessor in the first push that carried it ('' when
    -- not known), and whether that edge crosses commits a truncated push
    -- left out; see commit_parents.
    parent_sha      text        NOT NULL,
    parent_gap      boolean     NOT NULL,
    issue_keys      text        NOT NULL,
    first_seen_at   timestamp   NOT NULL,
    PRIMARY KEY (tenant_id, sha)
);

-- The commit order pushes reported: each pushed commit follows its
-- predecessor in its push, the first one the push's "before". The first
-- such edge of a commit is kept in its row (commits.parent_sha), which
-- covers nearly every commit without an index entry of its own; this table
-- holds the others, when a later push shows the commit after a different
-- one. gap marks an edge across commits the provider left out of a
-- truncated push: walking it reaches the right ancestor, but the commits in
-- between are unknown.
CREATE TABLE commit_parents (
    tenant_id  integer NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sha        text    NOT NULL,
    parent_sha text    NOT NULL,
    gap        boolean NOT NULL,
    PRIMARY KEY (tenant_id, sha, parent_sha)
);

-- One row per push. The key leads with the push's time (the provider's, or
-- its newest commit's, so a redelivery finds the same row) because keys
-- made of commit hashes land on random index pages, and at thousands of
-- pushes a second those page writes are most of the database's work.
CREATE TABLE pushes (
    tenant_id     integer     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source_id     text        NOT NULL,
    repository_id text        NOT NULL,
    ref           text        NOT NULL,
    before_sha    text        NOT NULL,
    after_sha     text        NOT NULL,
    commit_count  integer     NOT NULL,
    total_commits integer     NOT NULL,
    truncated     boolean     NOT NULL,
    forced        boolean     NOT NULL,
    created       boolean     NOT NULL,
    deleted       boolean     NOT NULL,
    pushed_at     timestamp   NOT NULL,
    PRIMARY KEY (tenant_id, source_id, pushed_at, ref, after_sha)
);

CREATE TABLE branches (
    tenant_id       integer     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              text        NOT NULL,
    source_id       text        NOT NULL,
    repository_id   text        NOT NULL,
    name            text        NOT NULL,
    url             text        NOT NULL,
    last_commit_sha text        NOT NULL,
    issue_keys      text        NOT NULL,
    deleted         boolean     NOT NULL,
    updated_at      timestamp   NOT NULL,
    -- When the earliest commit pushed to the branch was authored, as far as
    -- Keyline saw: the start of a pull request from it, which squash
    -- merging hides from the trunk.
    first_commit_at timestamp,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE pull_requests (
    tenant_id          integer     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                 text        NOT NULL,
    source_id          text        NOT NULL,
    repository_id      text        NOT NULL,
    provider_id        text        NOT NULL,
    number             integer     NOT NULL,
    title              text        NOT NULL,
    body_excerpt       text        NOT NULL,
    state              text        NOT NULL,
    source_branch      text        NOT NULL,
    destination_branch text        NOT NULL,
    author_name        text        NOT NULL,
    author_email       text        NOT NULL,
    author_username    text        NOT NULL,
    -- JSON array of devops.Reviewer, merged across review events.
    reviewers          text        NOT NULL,
    url                text        NOT NULL,
    merge_commit_sha   text        NOT NULL,
    issue_keys         text        NOT NULL,
    created_at         timestamp,
    merged_at          timestamp,
    closed_at          timestamp,
    -- The provider's time of the event the row reflects; decides which of
    -- two events is newer.
    updated_at         timestamp,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX pull_requests_merge_commit_idx ON pull_requests (tenant_id, merge_commit_sha);

CREATE TABLE builds (
    tenant_id     integer     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            text        NOT NULL,
    source_id     text        NOT NULL,
    pipeline_id   text        NOT NULL,
    pipeline_name text        NOT NULL,
    build_number  integer     NOT NULL,
    state         text        NOT NULL,
    repository_id text        NOT NULL,
    commit_sha    text        NOT NULL,
    ref           text        NOT NULL,
    url           text        NOT NULL,
    -- Test counts; NULL when the provider reported none.
    tests_total   integer,
    tests_passed  integer,
    tests_failed  integer,
    tests_skipped integer,
    issue_keys    text        NOT NULL,
    started_at    timestamp,
    finished_at   timestamp,
    updated_at    timestamp,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX builds_commit_idx ON builds (tenant_id, commit_sha);

CREATE TABLE deployments (
    tenant_id          integer     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                 text        NOT NULL,
    source_id          text        NOT NULL,
    pipeline_id        text        NOT NULL,
    pipeline_name      text        NOT NULL,
    environment_id     text        NOT NULL,
    environment_name   text        NOT NULL,
    environment_type   text        NOT NULL,
    environment_basis  text        NOT NULL,
    environment_url    text        NOT NULL,
    sequence_number    integer     NOT NULL,
    state              text        NOT NULL,
    repository_id      text        NOT NULL,
    commit_sha         text        NOT NULL,
    ref                text        NOT NULL,
    service            text        NOT NULL,
    url                text        NOT NULL,
    -- Keys the deployment names itself; keys reached through its commits
    -- are derived into issue_links.
    issue_keys         text        NOT NULL,
    -- Size of the commit range (deployment_commits) and whether it was
    -- closed: walked back to the previous successful deployment to the same
    -- environment (or through all known history for the first one) without
    -- crossing a truncated push or hitting the walk's bound.
    commit_count       integer     NOT NULL,
    commits_complete   boolean     NOT NULL,
    started_at         timestamp,
    finished_at        timestamp,
    updated_at         timestamp,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX deployments_environment_idx
    ON deployments (tenant_id, source_id, pipeline_id, environment_id, sequence_number);
CREATE INDEX deployments_commit_idx ON deployments (tenant_id, commit_sha);
CREATE INDEX deployments_type_idx ON deployments (tenant_id, environment_type, state, finished_at);
CREATE INDEX deployments_service_idx ON deployments (tenant_id, service, environment_type, finished_at);

-- The commits each deployment brought to its environment.
CREATE TABLE deployment_commits (
    tenant_id     integer NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    deployment_id text   NOT NULL,
    sha           text   NOT NULL,
    PRIMARY KEY (tenant_id, deployment_id, sha)
);
CREATE INDEX deployment_commits_sha_idx ON deployment_commits (tenant_id, sha);

CREATE TABLE incidents (
    tenant_id             integer     NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                    text        NOT NULL,
    source_id             text        NOT NULL,
    provider_id           text        NOT NULL,
    title                 text        NOT NULL,
    severity              text        NOT NULL,
    status                text        NOT NULL,
    service               text        NOT NULL,
    url                   text        NOT NULL,
    -- Explicit references to the cause, as the incident gave them.
    ref_pipeline_id       text        NOT NULL,
    ref_environment_id    text        NOT NULL,
    ref_sequence_number   integer     NOT NULL,
    commit_sha            text        NOT NULL,
    issue_keys            text        NOT NULL,
    -- The deployment that most likely caused it ('' when none is known) and
    -- how it was found: explicit, commit or service.
    suspect_deployment_id text        NOT NULL,
    suspect_basis         text        NOT NULL,
    opened_at             timestamp   NOT NULL,
    resolved_at           timestamp,
    updated_at            timestamp,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX incidents_opened_idx ON incidents (tenant_id, opened_at);
CREATE INDEX incidents_suspect_idx ON incidents (tenant_id, suspect_deployment_id);

-- Replacing an entity's links looks them up by entity. Commits' links are
-- only ever added, never replaced, so they stay out of the index: at ten
-- commits a push that is most of its writes.
CREATE INDEX issue_links_entity_idx ON issue_links (tenant_id, entity_type, entity_id)
    WHERE entity_type <> 'commit';

-- +goose Down
DROP INDEX issue_links_entity_idx;
DROP TABLE incidents;
DROP TABLE deployment_commits;
DROP TABLE deployments;
DROP TABLE builds;
DROP TABLE pull_requests;
DROP TABLE branches;
DROP TABLE pushes;
DROP TABLE commit_parents;
DROP TABLE commits;
DROP TABLE repositories;
