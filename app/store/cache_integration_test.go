package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// TestCacheFollowsOtherReplica wires a tenant.Cache to WatchTenants the way
// the server does, and checks that a reinstall with a new secret on another
// replica reaches this replica's cache well before the TTL.
func TestCacheFollowsOtherReplica(t *testing.T) {
	url := dbtest.Postgres(t)
	ctx := context.Background()
	sealerKey := dbtest.Sealer(t) // replicas share the sealing key
	open := func() *store.Store {
		s, err := store.OpenPostgres(ctx, url, sealerKey, nil)
		must(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	replicaA, replicaB := open(), open()
	must(t, replicaA.Migrate(ctx))

	cache := tenant.NewCache(replicaB, tenant.WithTTL(time.Hour))
	invalidated := make(chan [2]string, 100)
	wctx, cancel := context.WithCancel(ctx)
	listening := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		replicaB.WatchTenants(wctx, func(a, c string) {
			cache.Invalidate(a, c)
			invalidated <- [2]string{a, c}
		}, func() {
			cache.Flush()
			listening <- struct{}{}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	recv(t, listening, "watcher listening")

	in := install(uniqueKey("acme"))
	mustUpsert(t, replicaA, in)
	expectKeyOn(t, invalidated, [2]string{in.AppKey, in.ClientKey})
	got, err := cache.Tenant(ctx, in.AppKey, in.ClientKey, false)
	if err != nil || string(got.SharedSecret) != string(in.SharedSecret) {
		t.Fatalf("first lookup: %v, %v", got, err)
	}

	in.SharedSecret = []byte("rotated on reinstall")
	mustUpsert(t, replicaA, in)
	expectKeyOn(t, invalidated, [2]string{in.AppKey, in.ClientKey})
	got, err = cache.Tenant(ctx, in.AppKey, in.ClientKey, false)
	if err != nil || string(got.SharedSecret) != "rotated on reinstall" {
		t.Fatalf("after reinstall elsewhere the cache serves %q, %v", got.SharedSecret, err)
	}

	if _, err := replicaA.MarkUninstalled(ctx, in.AppKey, in.ClientKey, oddTime); err != nil {
		t.Fatal(err)
	}
	expectKeyOn(t, invalidated, [2]string{in.AppKey, in.ClientKey})
	if got, err := cache.Tenant(ctx, in.AppKey, in.ClientKey, false); err == nil {
		t.Fatalf("uninstalled tenant still served: %+v", got)
	}
}

func expectKeyOn(t *testing.T, ch <-chan [2]string, want [2]string) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("no notification for %v", want)
		}
	}
}
