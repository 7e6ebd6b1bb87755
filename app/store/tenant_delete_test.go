package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// tenantTables lists every table with a tenant_id column, from the
// catalog, so a table added later is covered without editing the test.
func tenantTables(t *testing.T, s *store.Store) []string {
	t.Helper()
	q := `SELECT string_agg(table_name, ' ' ORDER BY table_name) FROM information_schema.columns
		WHERE table_schema = current_schema() AND column_name = 'tenant_id'`
	if s.Dialect() == store.DialectSQLite {
		q = `SELECT group_concat(name, ' ') FROM (SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) p
			WHERE m.type = 'table' AND p.name = 'tenant_id' ORDER BY m.name)`
	}
	var names string
	must(t, s.ScanOne(context.Background(), q, &names))
	return strings.Fields(names)
}

// siteRows counts tenant id's rows in each table, tenants included.
func siteRows(t *testing.T, s *store.Store, tables []string, id int64) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range append([]string{"tenants"}, tables...) {
		col := "tenant_id"
		if table == "tenants" {
			col = "id"
		}
		var n int
		must(t, s.ScanOne(context.Background(), fmt.Sprintf(`SELECT COUNT(*) FROM %s WHERE %s = %d`, table, col, id), &n))
		out[table] = n
	}
	return out
}

// seedSite gives x a row in every table that holds site data.
func seedSite(t *testing.T, x *site) {
	t.Helper()
	ctx := context.Background()
	must(t, x.s.UpsertJiraIssue(ctx, x.tn, issue("10001", "KL-1", oddTime)))
	seedTransition(t, x.s, x.tn, "KL-1", "10001", "In Progress", "wh-1")
	releaseHistory(x)
	// m0 was first pushed as a new branch's first commit; here it follows
	// another commit, which only commit_parents can hold.
	x.record(pushOf("c0", "m0"))
	x.record(releaseBuild(1, devops.BuildSuccessful, t0, "KL-1"))
	x.record(devops.Batch{Incidents: []devops.Incident{{SourceID: "i1", Title: "Checkout down",
		Status: devops.IncidentOpen, OpenedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)}}})
}

// TestDeleteTenantLeavesNoRows holds DeleteTenant to deleting every row of
// the site, in the tables whose key to tenants cascades and in those that
// lost it (migration 00012), and nothing of another site.
func TestDeleteTenantLeavesNoRows(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x, other := newSite(t, s, "site-a"), newSite(t, s, "site-b")
		seedSite(t, x)
		seedSite(t, other)
		tables := tenantTables(t, s)
		if len(tables) < 10 {
			t.Fatalf("found only tables %v", tables)
		}
		for table, n := range siteRows(t, s, tables, x.tn.ID) {
			if n == 0 {
				t.Errorf("seed left %s without a row of the site; the test would not cover it", table)
			}
		}
		others := siteRows(t, s, tables, other.tn.ID)

		stale := *x.tn
		stale.ClientKey = "someone-else"
		if err := s.DeleteTenant(ctx, &stale); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("delete with another site's keys: %v, want tenant.ErrNotFound", err)
		}
		if got := siteRows(t, s, tables, x.tn.ID); got["commits"] == 0 || got["tenants"] != 1 {
			t.Fatalf("a refused delete deleted rows: %v", got)
		}

		must(t, s.DeleteTenant(ctx, x.tn))
		for table, n := range siteRows(t, s, tables, x.tn.ID) {
			if n != 0 {
				t.Errorf("%s: %d rows of the deleted site left", table, n)
			}
		}
		for table, n := range siteRows(t, s, tables, other.tn.ID) {
			if n != others[table] {
				t.Errorf("%s: the other site's rows went from %d to %d", table, others[table], n)
			}
		}
		if _, err := s.TenantByClientKey(ctx, x.tn.AppKey, x.tn.ClientKey); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("deleted tenant still found: %v", err)
		}
		if err := s.DeleteTenant(ctx, x.tn); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("second delete: %v, want tenant.ErrNotFound", err)
		}
		if err := s.DeleteTenant(ctx, nil); err == nil {
			t.Error("delete of no tenant succeeded")
		}
	})
}

// TestDeleteTenantRacesADelivery holds DeleteTenant to leaving nothing of
// the site when one of its deliveries is being written at the same time,
// on PostgreSQL, where the tables a push writes have no key to tenants.
// (SQLite's single writer runs the two one after the other.) The delivery
// is a statement shaped like the push's one statement: an issue link, the
// log line (which sleeps after reading its source, to let the delete run
// in between), and keyline_abort when there is no log line.
func TestDeleteTenantRacesADelivery(t *testing.T) {
	url := dbtest.Postgres(t)
	ctx := context.Background()
	s, err := store.OpenPostgres(ctx, url, dbtest.Sealer(t), nil)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	must(t, s.Migrate(ctx))

	const delivery = `WITH l AS (INSERT INTO issue_links (tenant_id, issue_key, entity_type, entity_id, created_at)
			VALUES ($1, 'KL-1', 'commit', 'abc', now())),
		d AS (INSERT INTO deliveries (tenant_id, source_id, delivery_id, event, outcome, status, reason, received_at)
			SELECT tenant_id, id, 'd-1', 'push', 'accepted', 200, '', now() FROM sources
			WHERE tenant_id = $1 AND id = $2 AND pg_sleep($3)::text = '' RETURNING id)
		SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM d) THEN keyline_abort('duplicate') ELSE (SELECT id FROM d) END`
	for _, tt := range []struct {
		name string
		// race runs the delivery on conn around deleteSite, and returns
		// the error that ended the delivery, if any.
		race    func(t *testing.T, conn *pgx.Conn, x *site, deleteSite func() error) error
		wantErr bool
	}{
		{"delivery first: the delete waits for it to commit, then deletes its rows",
			func(t *testing.T, conn *pgx.Conn, x *site, deleteSite func() error) error {
				tx, err := conn.Begin(ctx)
				must(t, err)
				defer tx.Rollback(ctx)
				if _, err := tx.Exec(ctx, delivery, x.tn.ID, x.src, 0); err != nil {
					return err
				}
				done := make(chan error, 1)
				go func() { done <- deleteSite() }()
				select {
				case err := <-done:
					t.Fatalf("DeleteTenant returned (%v) while a delivery of the site was uncommitted", err)
				case <-time.After(200 * time.Millisecond):
				}
				if err := tx.Commit(ctx); err != nil {
					return err
				}
				must(t, <-done)
				return nil
			}, false},
		{"delete during the delivery: its log line fails, and it writes nothing",
			func(t *testing.T, conn *pgx.Conn, x *site, deleteSite func() error) error {
				done := make(chan error, 1)
				go func() {
					_, err := conn.Exec(ctx, delivery, x.tn.ID, x.src, 0.5)
					done <- err
				}()
				time.Sleep(100 * time.Millisecond) // the delivery has read its source
				must(t, deleteSite())
				return <-done
			}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := newSite(t, s, uniqueKey("site"))
			conn, err := pgx.Connect(ctx, url)
			must(t, err)
			defer conn.Close(ctx)
			err = tt.race(t, conn, x, func() error { return s.DeleteTenant(ctx, x.tn) })
			if (err != nil) != tt.wantErr {
				t.Fatalf("the delivery ended with %v, want an error: %v", err, tt.wantErr)
			}
			t.Logf("the delivery ended with %v", err)
			var n int
			must(t, s.ScanOne(ctx, fmt.Sprintf(`SELECT (SELECT COUNT(*) FROM issue_links WHERE tenant_id = %[1]d)
				+ (SELECT COUNT(*) FROM deliveries WHERE tenant_id = %[1]d)`, x.tn.ID), &n))
			if n != 0 {
				t.Errorf("%d rows of the deleted site left", n)
			}
		})
	}
}

// TestPurgeUninstalled checks the retention purge's two steps: the list
// holds only sites uninstalled before the cutoff and not installed since,
// and the delete skips a site that reinstalled after it was listed.
func TestPurgeUninstalled(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		cutoff := t0.Add(-30 * 24 * time.Hour)
		old := newSite(t, s, "purge-old")
		seedSite(t, old)
		recent := newSite(t, s, "purge-recent")
		back := newSite(t, s, "purge-back")
		seedSite(t, back)
		live := newSite(t, s, "purge-live")
		for _, u := range []struct {
			x  *site
			at time.Time
		}{{old, cutoff.Add(-time.Hour)}, {recent, cutoff.Add(time.Hour)}, {back, cutoff.Add(-48 * time.Hour)}} {
			if _, err := s.MarkUninstalled(ctx, u.x.tn.AppKey, u.x.tn.ClientKey, u.at); err != nil {
				t.Fatal(err)
			}
		}
		listed, err := s.UninstalledBefore(ctx, cutoff)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, tn := range listed {
			keys = append(keys, tn.ClientKey)
		}
		if strings.Join(keys, " ") != "purge-back purge-old" {
			t.Fatalf("listed %v, want purge-back then purge-old", keys)
		}

		// purge-back reinstalls between the list and the delete.
		mustUpsert(t, s, install("purge-back"))
		tables := tenantTables(t, s)
		kept := siteRows(t, s, tables, back.tn.ID)
		if err := s.PurgeUninstalledTenant(ctx, listed[0], cutoff); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("purging the reinstalled site: %v, want tenant.ErrNotFound", err)
		}
		if got := siteRows(t, s, tables, back.tn.ID); fmt.Sprint(got) != fmt.Sprint(kept) {
			t.Errorf("the reinstalled site's rows changed: %v, were %v", got, kept)
		}

		liveBefore := siteRows(t, s, tables, live.tn.ID)
		if err := s.PurgeUninstalledTenant(ctx, listed[1], cutoff); err != nil {
			t.Fatal(err)
		}
		for table, n := range siteRows(t, s, tables, old.tn.ID) {
			if n != 0 {
				t.Errorf("purged site still has %d rows in %s", n, table)
			}
		}
		if got := siteRows(t, s, tables, live.tn.ID); fmt.Sprint(got) != fmt.Sprint(liveBefore) {
			t.Errorf("an installed site's rows changed: %v, were %v", got, liveBefore)
		}
		if err := s.PurgeUninstalledTenant(ctx, recent.tn, cutoff); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("purging a site uninstalled after the cutoff: %v, want tenant.ErrNotFound", err)
		}
	})
}
