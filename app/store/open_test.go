package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/secret"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

func TestOpenRejects(t *testing.T) {
	ctx := context.Background()
	sealer := dbtest.Sealer(t)
	tests := []struct {
		name string
		open func() (*store.Store, error)
	}{
		{"sqlite empty path", func() (*store.Store, error) { return store.OpenSQLite(ctx, "", sealer, nil) }},
		{"sqlite memory", func() (*store.Store, error) { return store.OpenSQLite(ctx, ":memory:", sealer, nil) }},
		{"sqlite nil sealer", func() (*store.Store, error) { return store.OpenSQLite(ctx, dbtest.SQLite(t), nil, nil) }},
		{"postgres nil sealer", func() (*store.Store, error) { return store.OpenPostgres(ctx, dbtest.DefaultPostgres, nil, nil) }},
		{"postgres bad url", func() (*store.Store, error) { return store.OpenPostgres(ctx, "postgres://%zz", sealer, nil) }},
		{"postgres nothing listening", func() (*store.Store, error) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return store.OpenPostgres(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", sealer, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.open()
			if err == nil {
				s.Close()
				t.Fatal("open succeeded")
			}
		})
	}
}

func TestDialectAndPing(t *testing.T) {
	for name, want := range map[string]string{"sqlite": store.DialectSQLite, "postgres": store.DialectPostgres} {
		t.Run(name, func(t *testing.T) {
			var s *store.Store
			if name == "sqlite" {
				s = dbtest.SQLiteStore(t)
			} else {
				s = dbtest.PostgresStore(t)
			}
			if got := s.Dialect(); got != want {
				t.Errorf("Dialect() = %q, want %q", got, want)
			}
			if err := s.Ping(context.Background()); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}

func TestSQLitePathNeedsEscaping(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dir with space", "we?ird#name%41.db")
	s, err := store.OpenSQLite(ctx, path, dbtest.Sealer(t), nil)
	must(t, err)
	defer s.Close()
	must(t, s.Migrate(ctx))
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "we*"))
	if len(matches) == 0 || filepath.Base(matches[0]) != "we?ird#name%41.db" {
		t.Fatalf("database file created as %v, want the literal path", matches)
	}
}

func TestSQLiteReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := dbtest.SQLite(t)
	key := make([]byte, secret.KeySize)
	sealer, _ := secret.NewSealer(key)
	s, err := store.OpenSQLite(ctx, path, sealer, nil)
	must(t, err)
	must(t, s.Migrate(ctx))
	in := install("acme")
	want := mustUpsert(t, s, in)
	must(t, s.Close())

	s, err = store.OpenSQLite(ctx, path, sealer, nil)
	must(t, err)
	defer s.Close()
	must(t, s.Migrate(ctx))
	got, err := s.TenantByClientKey(ctx, in.AppKey, in.ClientKey)
	must(t, err)
	diffTenant(t, got, wantTenant(in, want.ID))
}

// TestSQLiteTimeFormat pins the on-disk text so that hand-written SQL and
// future migrations can rely on it.
func TestSQLiteTimeFormat(t *testing.T) {
	s := dbtest.SQLiteStore(t)
	ctx := context.Background()
	mustUpsert(t, s, install("acme"))
	var got string
	must(t, s.ScanOne(ctx, `SELECT CAST(installed_at AS TEXT) FROM tenants`, &got))
	if want := "2025-03-09T08:45:16.123456Z"; got != want {
		t.Fatalf("installed_at stored as %q, want %q (layout %s)", got, want, store.SQLiteTimeLayout)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mustUpsert(t, s, install("acme"))
		must(t, s.Migrate(ctx))
		if _, err := s.TenantByClientKey(ctx, "dev.keyline.jira", "acme"); err != nil {
			t.Fatalf("data lost after second Migrate: %v", err)
		}
	})
}

// TestMigrateReplicasRace starts several replicas migrating one fresh schema
// at once; the advisory lock must let exactly one apply each migration.
func TestMigrateReplicasRace(t *testing.T) {
	url := dbtest.Postgres(t)
	ctx := context.Background()
	const replicas = 4
	stores := make([]*store.Store, replicas)
	for i := range stores {
		s, err := store.OpenPostgres(ctx, url, dbtest.Sealer(t), nil)
		must(t, err)
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate: %v", i, err)
		}
	}
	mustUpsert(t, stores[0], install("acme"))
}

// TestConcurrentWrites hammers one store from many goroutines: on SQLite this
// proves the pool, WAL and busy timeout serialise writers without
// SQLITE_BUSY errors.
func TestConcurrentWrites(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		const workers, each = 8, 25
		errs := make(chan error, workers*each*3)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					key := fmt.Sprintf("KL-%d", w*each+i)
					errs <- s.UpsertJiraIssue(ctx, tn, issue(fmt.Sprint(w*each+i), key, oddTime))
					errs <- s.AddIssueLink(ctx, tn, key, "commit", "c")
					_, err := s.UpsertTenant(ctx, install(fmt.Sprintf("site-%d", w), func(in *tenant.Install) { in.At = oddTime.Add(time.Duration(i)) }))
					errs <- err
					if _, err := s.CountIssueLinks(ctx, tn, key); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := range workers * each {
			if n, err := s.CountIssueLinks(ctx, tn, fmt.Sprintf("KL-%d", i)); err != nil || n["commit"] != 1 {
				t.Fatalf("KL-%d links = %v, %v", i, n, err)
			}
		}
	})
}

// TestPostgresSessionTurnsJITOff checks the setting reaches the server: the
// release reports rely on it (see withSessionDefaults).
func TestPostgresSessionTurnsJITOff(t *testing.T) {
	s := dbtest.PostgresStore(t)
	var jit string
	if err := s.ScanOne(context.Background(), `SHOW jit`, &jit); err != nil {
		t.Fatal(err)
	}
	if jit != "off" {
		t.Fatalf("jit = %q on a Keyline session, want off", jit)
	}
}
