package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// waitLimit bounds how long a test waits for an asynchronous event; it is a
// hang guard, not a performance assertion.
const waitLimit = 10 * time.Second

type watchEvents struct {
	keys       chan [2]string
	reconnects chan struct{}
	pids       chan uint32
}

func startWatch(t *testing.T, s *store.Store) *watchEvents {
	t.Helper()
	ev := &watchEvents{
		keys:       make(chan [2]string, 100),
		reconnects: make(chan struct{}, 100),
		pids:       make(chan uint32, 100),
	}
	s.SetOnListen(func(pid uint32) { ev.pids <- pid })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.WatchTenants(ctx,
			func(a, c string) { ev.keys <- [2]string{a, c} },
			func() { ev.reconnects <- struct{}{} })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("WatchTenants returned %v after cancel, want nil", err)
			}
		case <-time.After(waitLimit):
			t.Error("WatchTenants did not return after cancel")
		}
	})
	return ev
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// uniqueKey makes a client key no other test or test process uses, because
// notifications reach every listener on the database.
func uniqueKey(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

// expectKey waits for a notification about key, skipping unrelated ones.
func expectKey(t *testing.T, ev *watchEvents, want [2]string) {
	t.Helper()
	expectKeyOn(t, ev.keys, want)
}

func TestWatchTenantsAcrossStores(t *testing.T) {
	url := dbtest.Postgres(t)
	ctx := context.Background()
	open := func() *store.Store {
		s, err := store.OpenPostgres(ctx, url, dbtest.Sealer(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	writer, watcher := open(), open()
	must(t, writer.Migrate(ctx))
	ev := startWatch(t, watcher)
	recv(t, ev.reconnects, "first listen")

	in := install(uniqueKey("acme"))
	tn := mustUpsert(t, writer, in)
	expectKey(t, ev, [2]string{in.AppKey, in.ClientKey})

	tests := []struct {
		name string
		do   func() error
	}{
		{"SetEnabled", func() error { return writer.SetEnabled(ctx, tn, false) }},
		{"MarkUninstalled", func() error {
			_, err := writer.MarkUninstalled(ctx, in.AppKey, in.ClientKey, oddTime)
			return err
		}},
		{"UpsertTenant again", func() error { _, err := writer.UpsertTenant(ctx, in); return err }},
	}
	for _, tt := range tests {
		must(t, tt.do())
		expectKey(t, ev, [2]string{in.AppKey, in.ClientKey})
	}
}

func TestWatchTenantsNoNotificationWithoutChange(t *testing.T) {
	url := dbtest.Postgres(t)
	ctx := context.Background()
	s, err := store.OpenPostgres(ctx, url, dbtest.Sealer(t), nil)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	must(t, s.Migrate(ctx))
	ev := startWatch(t, s)
	recv(t, ev.reconnects, "first listen")

	// Writes that match no row roll back, so they announce nothing...
	ghost := uniqueKey("ghost")
	if err := s.SetEnabled(ctx, &tenant.Tenant{ID: 12345, AppKey: "x", ClientKey: ghost}, true); err == nil {
		t.Fatal("SetEnabled on a missing tenant succeeded")
	}
	if found, err := s.MarkUninstalled(ctx, "x", ghost, oddTime); found || err != nil {
		t.Fatalf("MarkUninstalled(ghost) = %v, %v", found, err)
	}
	// ...so the first notification is the real write's (the server delivers
	// notifications in commit order on one channel).
	in := install(uniqueKey("real"))
	mustUpsert(t, s, in)
	// Other test processes may share the database (channels are per
	// database, not per schema), so skip keys this test did not use.
	deadline := time.After(waitLimit)
	for {
		select {
		case got := <-ev.keys:
			switch got[1] {
			case ghost:
				t.Fatalf("notification for a write that changed nothing: %v", got)
			case in.ClientKey:
				return
			}
		case <-deadline:
			t.Fatal("no notification for the real write")
		}
	}
}

func TestWatchTenantsReconnects(t *testing.T) {
	url := dbtest.Postgres(t)
	ctx := context.Background()
	s, err := store.OpenPostgres(ctx, url, dbtest.Sealer(t), nil)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	must(t, s.Migrate(ctx))
	ev := startWatch(t, s)
	recv(t, ev.reconnects, "first listen")
	pid := recv(t, ev.pids, "listener pid")

	// Kill the listening backend, as a server restart or failover would.
	killBackend(t, url, pid)

	recv(t, ev.reconnects, "onReconnect after the connection was killed")
	if newPID := recv(t, ev.pids, "new listener pid"); newPID == pid {
		t.Fatal("reconnected on the same backend")
	}
	in := install(uniqueKey("after-reconnect"))
	mustUpsert(t, s, in)
	expectKey(t, ev, [2]string{in.AppKey, in.ClientKey})
}

func TestWatchTenantsSQLiteReturnsAtOnce(t *testing.T) {
	s := dbtest.SQLiteStore(t)
	var mu sync.Mutex
	called := false
	err := s.WatchTenants(context.Background(), func(string, string) {}, func() {
		mu.Lock()
		called = true
		mu.Unlock()
	})
	if err != nil || called {
		t.Fatalf("WatchTenants on SQLite = %v (onReconnect called: %v), want nil at once", err, called)
	}
}

// killBackend terminates the PostgreSQL backend pid of the database at url.
func killBackend(t *testing.T, url string, pid uint32) {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, url)
	must(t, err)
	defer admin.Close(ctx)
	var killed bool
	must(t, admin.QueryRow(ctx, "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&killed))
	if !killed {
		t.Fatalf("could not terminate backend %d", pid)
	}
}
