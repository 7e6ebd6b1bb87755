package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/keyline/keyline/app/tenant"
)

// tenantColumns is the select list that scanTenant reads, in order.
const tenantColumns = `id, app_key, client_key, base_url, display_url, product_type, description,
	shared_secret_enc, oauth_client_id, installation_id, cloud_id, installed, enabled,
	installed_at, uninstalled_at, updated_at`

// A reinstall overwrites every field of the existing row and keeps its id, so
// the site's data stays attached to it.
const upsertTenantSQL = `INSERT INTO tenants (app_key, client_key, base_url, base_host, display_url,
	product_type, description, shared_secret_enc, oauth_client_id, installation_id, cloud_id,
	installed, enabled, installed_at, uninstalled_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, TRUE, TRUE, ?, NULL, ?)
ON CONFLICT (app_key, client_key) DO UPDATE SET
	base_url = excluded.base_url,
	base_host = excluded.base_host,
	display_url = excluded.display_url,
	product_type = excluded.product_type,
	description = excluded.description,
	shared_secret_enc = excluded.shared_secret_enc,
	oauth_client_id = excluded.oauth_client_id,
	installation_id = excluded.installation_id,
	cloud_id = excluded.cloud_id,
	installed = TRUE,
	enabled = TRUE,
	installed_at = excluded.installed_at,
	uninstalled_at = NULL,
	updated_at = excluded.updated_at
RETURNING id`

// UpsertTenant records an install: a new row, or every field of the existing
// (app key, client key) row overwritten, installed and enabled, with a freshly
// sealed secret. in.At zero means now. On PostgreSQL the change is announced
// to WatchTenants on every replica when the transaction commits.
func (s *Store) UpsertTenant(ctx context.Context, in tenant.Install) (*tenant.Tenant, error) {
	defer s.sources.flush() // cached source lookups carry the tenant
	if in.AppKey == "" || in.ClientKey == "" {
		return nil, errors.New("store: upsert tenant: app key and client key are required")
	}
	if len(in.SharedSecret) == 0 {
		return nil, errors.New("store: upsert tenant: empty shared secret")
	}
	host, err := baseHost(in.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: upsert tenant: %w", err)
	}
	sealed, err := s.sealer.Seal(in.SharedSecret)
	if err != nil {
		return nil, fmt.Errorf("store: upsert tenant: %w", err)
	}
	at := in.At
	if at.IsZero() {
		at = s.now()
	}
	at = normTime(at)
	var id int64
	err = s.writeTenant(ctx, in.AppKey, in.ClientKey, func(tx *gorm.DB) error {
		return queryRow(tx, upsertTenantSQL,
			in.AppKey, in.ClientKey, in.BaseURL, host, in.DisplayURL,
			in.ProductType, in.Description, sealed, in.OAuthClientID, in.InstallationID, in.CloudID,
			s.ts(at), s.ts(at),
		).Scan(&id)
	})
	if err != nil {
		return nil, fmt.Errorf("store: upsert tenant: %w", err)
	}
	return &tenant.Tenant{
		ID:             id,
		AppKey:         in.AppKey,
		ClientKey:      in.ClientKey,
		BaseURL:        in.BaseURL,
		DisplayURL:     in.DisplayURL,
		ProductType:    in.ProductType,
		Description:    in.Description,
		SharedSecret:   append([]byte(nil), in.SharedSecret...),
		OAuthClientID:  in.OAuthClientID,
		InstallationID: in.InstallationID,
		CloudID:        in.CloudID,
		Installed:      true,
		Enabled:        true,
		InstalledAt:    at,
		UpdatedAt:      at,
	}, nil
}

// TenantByClientKey returns the tenant for (appKey, clientKey) in any state,
// installed or not, with its secret opened. No such row gives an error
// wrapping tenant.ErrNotFound. It is the tenant.Cache's Loader.
func (s *Store) TenantByClientKey(ctx context.Context, appKey, clientKey string) (*tenant.Tenant, error) {
	t, err := s.scanTenant(queryRow(s.db.WithContext(ctx),
		`SELECT `+tenantColumns+` FROM tenants WHERE app_key = ? AND client_key = ?`,
		appKey, clientKey))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: tenant by client key: %w", tenant.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: tenant by client key: %w", err)
	}
	return t, nil
}

// MarkUninstalled records an uninstall: installed and enabled become false and
// uninstalled_at is set to at. Repeating it changes nothing (the first
// uninstall time is kept). found is false when no such tenant exists.
func (s *Store) MarkUninstalled(ctx context.Context, appKey, clientKey string, at time.Time) (found bool, err error) {
	defer s.sources.flush() // cached source lookups carry the tenant
	at = normTime(at)
	err = s.writeTenant(ctx, appKey, clientKey, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE tenants SET
				installed = FALSE,
				enabled = FALSE,
				uninstalled_at = COALESCE(uninstalled_at, ?),
				updated_at = CASE WHEN installed THEN ? ELSE updated_at END
			WHERE app_key = ? AND client_key = ?`,
			s.ts(at), s.ts(at), appKey, clientKey)
		if res.Error == nil && res.RowsAffected == 0 {
			return errNoRow
		}
		return res.Error
	})
	if errors.Is(err, errNoRow) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: mark uninstalled: %w", err)
	}
	return true, nil
}

// SetEnabled records an enabled or disabled callback for t. The row is
// matched by id and by keys, so a stale or forged Tenant value cannot flip
// another site. Enabling an uninstalled tenant matches nothing and reports
// tenant.ErrNotFound: "enabled" and "uninstalled" can race, and uninstall
// wins. It does not modify t (it may be shared by the cache).
func (s *Store) SetEnabled(ctx context.Context, t *tenant.Tenant, enabled bool) error {
	defer s.sources.flush() // cached source lookups carry the tenant
	if err := checkTenant(t); err != nil {
		return fmt.Errorf("store: set enabled: %w", err)
	}
	q := `UPDATE tenants SET enabled = ?, updated_at = ?
		WHERE id = ? AND app_key = ? AND client_key = ?`
	if enabled {
		q += ` AND installed`
	}
	err := s.writeTenant(ctx, t.AppKey, t.ClientKey, func(tx *gorm.DB) error {
		res := tx.Exec(q, enabled, s.ts(s.now()), t.ID, t.AppKey, t.ClientKey)
		if res.Error == nil && res.RowsAffected == 0 {
			return errNoRow
		}
		return res.Error
	})
	if errors.Is(err, errNoRow) {
		return fmt.Errorf("store: set enabled: %w", tenant.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: set enabled: %w", err)
	}
	return nil
}

// uncascadedTables hold site data without a foreign key to tenants on
// PostgreSQL (migration 00012: checking the key for every inserted row was
// about a seventh of the database's CPU per push), so deleting a tenant's
// row does not delete theirs. SQLite keeps the keys; there the deletes
// find nothing left.
var uncascadedTables = []string{"repositories", "commits", "commit_parents", "pushes", "branches", "issue_links"}

// DeleteTenant deletes t's row and all of its site's data, in one
// transaction: the tables that still have a key to tenants by cascade, and
// uncascadedTables explicitly. It is the only correct way to delete a
// tenant. The row is matched by id and by keys, as in SetEnabled; no such
// row gives an error wrapping tenant.ErrNotFound and deletes nothing.
// Whether a site may be deleted (say, after KEYLINE_RETENTION_DAYS
// uninstalled) is the caller's decision.
//
// The tenant's row goes first, and its cascade deletes the site's sources.
// Every write of a delivery happens in one transaction with its log line,
// whose key to its source locks the source's row. So a delivery being
// written meanwhile either locked that row first, and the cascade waits
// for it to commit, or finds the row deleted and fails, writing nothing.
// The deletes that follow, each seeing what committed before it started,
// then leave nothing behind.
func (s *Store) DeleteTenant(ctx context.Context, t *tenant.Tenant) error {
	if err := s.deleteTenant(ctx, t, ""); err != nil {
		return fmt.Errorf("store: delete tenant: %w", err)
	}
	return nil
}

// PurgeUninstalledTenant is DeleteTenant for the retention purge: it
// deletes t only if its row still says uninstalled before the cutoff, in the
// same statement, so a site that reinstalls while the purge runs keeps its
// data. A row that no longer qualifies gives an error wrapping
// tenant.ErrNotFound and deletes nothing.
func (s *Store) PurgeUninstalledTenant(ctx context.Context, t *tenant.Tenant, before time.Time) error {
	err := s.deleteTenant(ctx, t, ` AND installed = FALSE AND uninstalled_at IS NOT NULL AND uninstalled_at < ?`,
		s.ts(normTime(before)))
	if err != nil {
		return fmt.Errorf("store: purge tenant: %w", err)
	}
	return nil
}

// UninstalledBefore returns the tenants, of every app, uninstalled before
// the cutoff and not installed again: what the retention purge deletes.
// It is an operator's query, across sites, oldest uninstall first.
func (s *Store) UninstalledBefore(ctx context.Context, before time.Time) ([]*tenant.Tenant, error) {
	rows, err := s.db.WithContext(ctx).Raw(`SELECT `+tenantColumns+` FROM tenants
		WHERE installed = FALSE AND uninstalled_at IS NOT NULL AND uninstalled_at < ?
		ORDER BY uninstalled_at, id`, s.ts(normTime(before))).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: uninstalled before: %w", err)
	}
	defer rows.Close()
	var out []*tenant.Tenant
	for rows.Next() {
		t, err := s.scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("store: uninstalled before: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: uninstalled before: %w", err)
	}
	return out, nil
}

// deleteTenant deletes t's row, when it also meets cond (SQL on tenants'
// columns, starting with AND), and the site's data with it.
func (s *Store) deleteTenant(ctx context.Context, t *tenant.Tenant, cond string, cargs ...any) error {
	defer s.sources.flush() // cached source lookups carry the tenant
	if err := checkTenant(t); err != nil {
		return err
	}
	defer s.changed(t.ID)
	err := s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec(`DELETE FROM tenants WHERE id = ? AND app_key = ? AND client_key = ?`+cond,
			append([]any{t.ID, t.AppKey, t.ClientKey}, cargs...)...)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errNoRow
		}
		for _, table := range uncascadedTables {
			if err := tx.Exec(`DELETE FROM `+table+` WHERE tenant_id = ?`, t.ID).Error; err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		if s.dialect != DialectPostgres {
			return nil
		}
		// As writeTenant does: replicas drop the tenant from their caches
		// when the delete commits.
		return tx.Exec(`SELECT pg_notify(?, ?)`, tenantChannel, t.AppKey+" "+t.ClientKey).Error
	})
	if errors.Is(err, errNoRow) {
		return tenant.ErrNotFound
	}
	return err
}

// TenantsOnHost returns the installed tenants of productType ("jira",
// "confluence") on the same Atlassian site as t, t itself excluded. The
// Confluence app uses it to find the Jira app on its site. The site is the
// base URL host that t's own row has in the database.
func (s *Store) TenantsOnHost(ctx context.Context, t *tenant.Tenant, productType string) ([]tenant.Tenant, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: tenants on host: %w", err)
	}
	rows, err := s.db.WithContext(ctx).Raw(
		`SELECT `+tenantColumns+` FROM tenants
		WHERE base_host = (SELECT base_host FROM tenants WHERE id = ?)
			AND product_type = ? AND installed AND id <> ?
		ORDER BY id`,
		t.ID, productType, t.ID,
	).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: tenants on host: %w", err)
	}
	defer rows.Close()
	var out []tenant.Tenant
	for rows.Next() {
		other, err := s.scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("store: tenants on host: %w", err)
		}
		out = append(out, *other)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: tenants on host: %w", err)
	}
	return out, nil
}

type rowScanner interface{ Scan(dest ...any) error }

func (s *Store) scanTenant(r rowScanner) (*tenant.Tenant, error) {
	var tr tenantRow
	if err := r.Scan(tr.dest()...); err != nil {
		return nil, err
	}
	return s.finishTenant(&tr)
}

// tenantRow receives tenantColumns; finishTenant turns it into a tenant.
// The two halves let a query that joins tenants scan them with other columns.
type tenantRow struct {
	t           tenant.Tenant
	enc         []byte
	uninstalled sql.NullTime
}

func (tr *tenantRow) dest() []any {
	t := &tr.t
	return []any{&t.ID, &t.AppKey, &t.ClientKey, &t.BaseURL, &t.DisplayURL, &t.ProductType,
		&t.Description, &tr.enc, &t.OAuthClientID, &t.InstallationID, &t.CloudID, &t.Installed,
		&t.Enabled, &t.InstalledAt, &tr.uninstalled, &t.UpdatedAt}
}

func (s *Store) finishTenant(tr *tenantRow) (*tenant.Tenant, error) {
	t := tr.t
	var err error
	t.SharedSecret, err = s.sealer.Open(tr.enc)
	if err != nil {
		return nil, fmt.Errorf("open shared secret of tenant %d: %w", t.ID, err)
	}
	t.InstalledAt = fromDB(t.InstalledAt)
	t.UpdatedAt = fromDB(t.UpdatedAt)
	if tr.uninstalled.Valid {
		u := fromDB(tr.uninstalled.Time)
		t.UninstalledAt = &u
	}
	return &t, nil
}

// baseHost is the lower-case host[:port] of a product base URL, the key by
// which the Jira and Confluence tenants of one site find each other.
func baseHost(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return "", fmt.Errorf("parse base url: %w", err)
	}
	if u.Host == "" {
		return "", errors.New("base url has no host")
	}
	return strings.ToLower(u.Host), nil
}
