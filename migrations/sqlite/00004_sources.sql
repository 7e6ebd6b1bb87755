-- Sources are the webhook endpoints of a site (GitHub, GitLab, Bitbucket,
-- PagerDuty, Opsgenie, or Keyline's generic API), and deliveries the per-source
-- log of what each one sent. A deleted source keeps its row (deleted_at set,
-- secrets wiped) so its delivery log and the entities it delivered still name it.

-- +goose Up
CREATE TABLE sources (
    tenant_id             integer   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- Random opaque id ("src_…"), unique on its own in practice.
    id                    text      NOT NULL,
    kind                  text      NOT NULL,
    name                  text      NOT NULL,
    -- SHA-256 of the webhook URL token. The token itself is never stored; it
    -- is the only lookup not scoped by tenant, since it is how the tenant is found.
    token_hash            blob      NOT NULL,
    -- secret.Sealer output of the signing secret, and of the one it replaced
    -- while that one still verifies (rotation overlap).
    secret_enc            blob      NOT NULL,
    previous_secret_enc   blob,
    previous_secret_until timestamp,
    -- JSON object of environment glob rules; the app writes '{}' by default.
    environment_rules     text      NOT NULL,
    created_at            timestamp NOT NULL,
    updated_at            timestamp NOT NULL,
    deleted_at            timestamp,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT sources_token_hash_key UNIQUE (token_hash)
);

CREATE TABLE deliveries (
    tenant_id   integer   NOT NULL,
    source_id   text      NOT NULL,
    -- Assigned by the insert as the source's highest id + 1 (SQLite has no
    -- sequences outside a single-column key; its single writer makes this
    -- safe): insertion order, which is what "the last 200" means.
    id          integer   NOT NULL,
    -- The provider's delivery id; '' when it sends none.
    delivery_id text      NOT NULL,
    event       text      NOT NULL,
    -- accepted, ignored, duplicate or rejected.
    outcome     text      NOT NULL,
    status      integer   NOT NULL,
    reason      text      NOT NULL,
    received_at timestamp NOT NULL,
    PRIMARY KEY (tenant_id, source_id, id),
    FOREIGN KEY (tenant_id, source_id) REFERENCES sources (tenant_id, id) ON DELETE CASCADE
);

-- Idempotency: a delivery id is claimed once per source by a delivery that was
-- processed. Rejected and duplicate lines do not claim it, so a redelivery
-- after a rejected attempt (say, before a secret was fixed) is still processed.
CREATE UNIQUE INDEX deliveries_delivery_id_key ON deliveries (tenant_id, source_id, delivery_id)
    WHERE delivery_id <> '' AND outcome IN ('accepted', 'ignored');

-- +goose Down
DROP TABLE deliveries;
DROP TABLE sources;
