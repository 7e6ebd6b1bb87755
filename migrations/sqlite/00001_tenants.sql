-- One row per installation of one of Keyline's apps on one Atlassian site.
-- The row survives uninstall (installed = 0) so a reinstall keeps its id
-- and therefore its site data.
-- Column types boolean and timestamp matter: the ncruces driver uses the
-- declared type to scan 0/1 as bool and text as time.Time. No STRICT tables
-- for that reason.

-- +goose Up
CREATE TABLE tenants (
    id                integer   PRIMARY KEY AUTOINCREMENT,
    app_key           text      NOT NULL,
    client_key        text      NOT NULL,
    base_url          text      NOT NULL,
    -- Lower-case host of base_url, so "other app on the same site" is an
    -- indexed equality instead of URL parsing in SQL.
    base_host         text      NOT NULL,
    display_url       text      NOT NULL DEFAULT '',
    product_type      text      NOT NULL,
    description       text      NOT NULL DEFAULT '',
    -- secret.Sealer output; the plaintext never reaches the database.
    shared_secret_enc blob      NOT NULL,
    oauth_client_id   text      NOT NULL DEFAULT '',
    installation_id   text      NOT NULL DEFAULT '',
    cloud_id          text      NOT NULL DEFAULT '',
    installed         boolean   NOT NULL,
    enabled           boolean   NOT NULL,
    installed_at      timestamp NOT NULL,
    uninstalled_at    timestamp,
    updated_at        timestamp NOT NULL,
    CONSTRAINT tenants_app_key_client_key_key UNIQUE (app_key, client_key)
);

CREATE INDEX tenants_base_host_idx ON tenants (base_host, product_type);

-- +goose Down
DROP TABLE tenants;
