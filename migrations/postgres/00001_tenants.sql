-- One row per installation of one of Keyline's apps on one Atlassian site.
-- The row survives uninstall (installed = false) so a reinstall keeps its id
-- and therefore its site data.

-- +goose Up
CREATE TABLE tenants (
    id                bigserial   PRIMARY KEY,
    app_key           text        NOT NULL,
    client_key        text        NOT NULL,
    base_url          text        NOT NULL,
    -- Lower-case host of base_url, so "other app on the same site" is an
    -- indexed equality instead of URL parsing in SQL.
    base_host         text        NOT NULL,
    display_url       text        NOT NULL DEFAULT '',
    product_type      text        NOT NULL,
    description       text        NOT NULL DEFAULT '',
    -- secret.Sealer output; the plaintext never reaches the database.
    shared_secret_enc bytea       NOT NULL,
    oauth_client_id   text        NOT NULL DEFAULT '',
    installation_id   text        NOT NULL DEFAULT '',
    cloud_id          text        NOT NULL DEFAULT '',
    installed         boolean     NOT NULL,
    enabled           boolean     NOT NULL,
    installed_at      timestamptz NOT NULL,
    uninstalled_at    timestamptz,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT tenants_app_key_client_key_key UNIQUE (app_key, client_key)
);

CREATE INDEX tenants_base_host_idx ON tenants (base_host, product_type);

-- +goose Down
DROP TABLE tenants;
