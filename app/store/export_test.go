package store

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/secret"
	"github.com/keyline/keyline/app/tenant"
)

// Test hooks; compiled only into this package's tests.

// KeyStripe is keyStripe, so tests can pick issue keys that share no
// counter with the ones a write changes.
func KeyStripe(tenantID int64, issueKey string) int { return keyStripe(tenantID, issueKey) }

// SetOnListen reports the backend pid of every new watcher connection.
func (s *Store) SetOnListen(f func(pid uint32)) { s.onListen = f }

// SetClock replaces time.Now for writes that have no caller-supplied time.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// RawSharedSecret returns the stored (sealed) secret column.
func (s *Store) RawSharedSecret(ctx context.Context, appKey, clientKey string) ([]byte, error) {
	var b []byte
	err := queryRow(s.db.WithContext(ctx),
		`SELECT shared_secret_enc FROM tenants WHERE app_key = ? AND client_key = ?`,
		appKey, clientKey).Scan(&b)
	return b, err
}

// Exec runs raw SQL, for tests that corrupt or inspect rows.
func (s *Store) Exec(ctx context.Context, q string, args ...any) error {
	return s.db.WithContext(ctx).Exec(q, args...).Error
}

// OpenSQLitePool is OpenSQLite with a chosen pool size, for the pool benchmark.
func OpenSQLitePool(ctx context.Context, path string, sealer *secret.Sealer, logger *slog.Logger, n int) (*Store, error) {
	return openSQLite(ctx, path, sealer, logger, n)
}

// SQLiteTimeLayout exposes the on-disk time format.
const SQLiteTimeLayout = sqliteTimeLayout

// DumpTenant renders every row that belongs to tenant id, in every table, as
// sorted text, so a test can tell whether anything of that tenant changed.
func (s *Store) DumpTenant(ctx context.Context, id int64) ([]string, error) {
	var out []string
	for _, q := range []string{
		`SELECT * FROM tenants WHERE id = ?`,
		`SELECT * FROM jira_issues WHERE tenant_id = ? ORDER BY issue_id`,
		`SELECT * FROM issue_links WHERE tenant_id = ? ORDER BY issue_key, entity_type, entity_id`,
		`SELECT * FROM sources WHERE tenant_id = ? ORDER BY id`,
		`SELECT * FROM deliveries WHERE tenant_id = ? ORDER BY source_id, id`,
		`SELECT * FROM jira_transitions WHERE tenant_id = ? ORDER BY issue_id, transitioned_at, from_status, to_status`,
		`SELECT * FROM jira_webhook_claims WHERE tenant_id = ? ORDER BY webhook_id`,
		`SELECT * FROM repositories WHERE tenant_id = ? ORDER BY source_id, id`,
		`SELECT * FROM commits WHERE tenant_id = ? ORDER BY sha`,
		`SELECT * FROM commit_parents WHERE tenant_id = ? ORDER BY sha, parent_sha`,
		`SELECT * FROM pushes WHERE tenant_id = ? ORDER BY source_id, repository_id, ref, before_sha, after_sha`,
		`SELECT * FROM branches WHERE tenant_id = ? ORDER BY id`,
		`SELECT * FROM pull_requests WHERE tenant_id = ? ORDER BY id`,
		`SELECT * FROM builds WHERE tenant_id = ? ORDER BY id`,
		`SELECT * FROM deployments WHERE tenant_id = ? ORDER BY id`,
		`SELECT * FROM deployment_commits WHERE tenant_id = ? ORDER BY deployment_id, sha`,
		`SELECT * FROM incidents WHERE tenant_id = ? ORDER BY id`,
	} {
		rows, err := s.db.WithContext(ctx).Raw(q, id).Rows()
		if err != nil {
			return nil, err
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, err
			}
			line := q[:30]
			for i, c := range cols {
				line += fmt.Sprintf(" %s=%v", c, vals[i])
			}
			out = append(out, line)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ScanOne runs a single-row query.
func (s *Store) ScanOne(ctx context.Context, q string, dest ...any) error {
	return queryRow(s.db.WithContext(ctx), q).Scan(dest...)
}

// RecordEventInTransaction is RecordEvent on its general path only, never
// PostgreSQL's one-statement write (writeCodeAtOnce), so a test can hold the
// two to the same result. d.ReceivedAt must be set.
func (s *Store) RecordEventInTransaction(ctx context.Context, t *tenant.Tenant, sourceID string, d Delivery, b *devops.Batch) error {
	_, err := s.recordInTransaction(ctx, t, sourceID, d, b)
	return err
}

// DollarPlaceholders exposes the "?" to "$n" rewrite of the PostgreSQL
// statements that bypass gorm.
var DollarPlaceholders = dollarPlaceholders

// TrimEvery exposes how often delivery logs are trimmed.
const TrimEvery = trimEvery

// LinkedProjectsDrift returns the ids of t's deployments whose
// linked_projects copy differs from the projects of their issue links.
func (s *Store) LinkedProjectsDrift(ctx context.Context, t *tenant.Tenant) ([]string, error) {
	stored := map[string]string{}
	rows, err := s.db.WithContext(ctx).Raw(`SELECT id, linked_projects FROM deployments WHERE tenant_id = ?`, t.ID).Rows()
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id, p string
		if err := rows.Scan(&id, &p); err != nil {
			rows.Close()
			return nil, err
		}
		stored[id] = p
	}
	rows.Close()
	keys := map[string][]string{}
	rows, err = s.db.WithContext(ctx).Raw(`SELECT entity_id, issue_key FROM issue_links
		WHERE tenant_id = ? AND entity_type = 'deployment'`, t.ID).Rows()
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id, k string
		if err := rows.Scan(&id, &k); err != nil {
			rows.Close()
			return nil, err
		}
		keys[id] = append(keys[id], k)
	}
	rows.Close()
	var drift []string
	for id, p := range stored {
		got := strings.Fields(p)
		slices.Sort(got)
		if !slices.Equal(got, projectsOf(keys[id])) {
			drift = append(drift, fmt.Sprintf("%s: %q, links %v", id, p, keys[id]))
		}
	}
	return drift, nil
}
