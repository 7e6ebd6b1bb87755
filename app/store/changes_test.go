package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
)

// TestDataVersionFollowsWrites holds every write to a site's DevOps data to
// changing the version of what it changed: a write that forgot to would
// leave cached issue panels stale. Deliveries change the whole site; Jira
// issue events and links only the issues they name (both keys of a move),
// and never another site's issues.
func TestDataVersionFollowsWrites(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "versions")
		other := newSite(t, s, "versions-other")
		version := func(id int64, key string) store.DataVersion {
			t.Helper()
			v, ok := s.DataVersion(id, key)
			if !ok {
				t.Fatal("DataVersion not usable without a watcher")
			}
			return v
		}
		// Keys on stripes of their own, so that a write to one cannot
		// change another's version by sharing its counter.
		used := map[int]bool{store.KeyStripe(x.tn.ID, "KL-1"): true}
		pick := func(id int64, candidates ...string) string {
			t.Helper()
			for _, k := range candidates {
				if st := store.KeyStripe(id, k); !used[st] {
					used[st] = true
					return k
				}
			}
			t.Fatal("no candidate key on a stripe of its own")
			return ""
		}
		k2, k3 := pick(x.tn.ID, "KL-2", "KL-4", "KL-6"), pick(x.tn.ID, "KL-3", "KL-5", "KL-7")
		otherKey := pick(other.tn.ID, "KL-9", "KL-8", "KL-10")
		moved := event(3)
		moved.Issue.IssueKey = k3
		push := pushOf("", "c1 KL-1 start")
		all := []string{"KL-1", k2, k3}
		writes := []struct {
			name string
			do   func() error
			// changed are the keys of x whose version must change; the
			// others' must not.
			changed []string
		}{
			{"RecordEvent accepted", func() error { return s.RecordEvent(ctx, x.tn, x.src, accepted("d1"), &push) }, all},
			{"RecordEvent ignored", func() error {
				d := accepted("d2")
				d.Outcome = store.DeliveryIgnored
				return s.RecordEvent(ctx, x.tn, x.src, d, nil)
			}, nil},
			{"RecordDelivery", func() error {
				d := accepted("d3")
				d.Outcome, d.Status = store.DeliveryRejected, 401
				return s.RecordDelivery(ctx, x.tn, x.src, d)
			}, nil},
			{"UpsertJiraIssue", func() error { return s.UpsertJiraIssue(ctx, x.tn, issue("10001", "KL-1", oddTime)) }, []string{"KL-1"}},
			{"ApplyJiraIssueEvent", func() error {
				return s.ApplyJiraIssueEvent(ctx, x.tn, event(2, move("To Do", "In Progress", "indeterminate", 2)))
			}, []string{"KL-1"}},
			{"ApplyJiraIssueEvent moving KL-1", func() error { return s.ApplyJiraIssueEvent(ctx, x.tn, moved) },
				[]string{"KL-1", k3}},
			{"AddIssueLink", func() error { return s.AddIssueLink(ctx, x.tn, k2, store.EntityCommit, sha("c1 KL-1 start")) },
				[]string{k2}},
			{"DeleteJiraIssue", func() error { return s.DeleteJiraIssue(ctx, x.tn, "10001", oddTime.Add(time.Hour)) }, []string{k3}},
			{"DeleteTenant", func() error { return s.DeleteTenant(ctx, x.tn) }, all},
		}
		for _, w := range writes {
			before := map[string]store.DataVersion{}
			for _, k := range all {
				before[k] = version(x.tn.ID, k)
			}
			otherBefore := version(other.tn.ID, otherKey)
			// The same key on another site: its own counter, unless (one
			// chance in 65,536) the two share a stripe.
			sameKey := store.KeyStripe(other.tn.ID, "KL-1") != store.KeyStripe(x.tn.ID, "KL-1")
			otherKL1 := version(other.tn.ID, "KL-1")
			must(t, w.do())
			for _, k := range all {
				want := slices.Contains(w.changed, k)
				if got := version(x.tn.ID, k) != before[k]; got != want {
					t.Errorf("%s: version of %s changed = %v, want %v", w.name, k, got, want)
				}
			}
			if version(other.tn.ID, otherKey) != otherBefore {
				t.Errorf("%s: another site's version changed", w.name)
			}
			if sameKey && version(other.tn.ID, "KL-1") != otherKL1 {
				t.Errorf("%s: another site's KL-1 changed", w.name)
			}
		}
	})
}

// TestDataChangesReachOtherReplicas checks, on PostgreSQL, that a write on
// one replica changes the version another replica reports, through
// AnnounceChanges and the watcher, and that a replica whose watcher lost
// its connection reports no usable version until it listens again, then a
// version unlike any before.
func TestDataChangesReachOtherReplicas(t *testing.T) {
	url := dbtest.Postgres(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() *store.Store {
		s, err := store.OpenPostgres(ctx, url, dbtest.Sealer(t), nil)
		must(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	writer, reader := open(), open()
	must(t, writer.Migrate(ctx))
	announced := make(chan error, 1)
	go func() { announced <- writer.AnnounceChanges(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-announced; err != nil {
			t.Errorf("AnnounceChanges returned %v after cancel, want nil", err)
		}
	})
	ev := startWatch(t, reader)
	recv(t, ev.reconnects, "first listen")
	pid := recv(t, ev.pids, "listener pid")

	x := newSite(t, writer, uniqueKey("replicas"))
	v0 := waitVersion(t, reader, x.tn.ID, "KL-1", func(store.DataVersion, bool) bool { return true })
	must(t, writer.AddIssueLink(ctx, x.tn, "KL-1", store.EntityCommit, sha("c1")))
	v1 := waitVersion(t, reader, x.tn.ID, "KL-1", func(v store.DataVersion, ok bool) bool { return ok && v != v0 })

	// While the watcher is away, nothing the reader reads may be cached.
	killBackend(t, url, pid)
	recv(t, ev.reconnects, "onReconnect after the connection was killed")
	// Whatever happened in between, the version after the reconnect is new.
	v2 := waitVersion(t, reader, x.tn.ID, "KL-1", func(_ store.DataVersion, ok bool) bool { return ok })
	if v2 == v1 || v2 == v0 {
		t.Fatal("the version after a reconnect equals one from before it")
	}
	// A delivery changes every issue of the site.
	w0 := waitVersion(t, reader, x.tn.ID, "KL-2", func(_ store.DataVersion, ok bool) bool { return ok })
	push := pushOf("", "c2 KL-7 other work")
	must(t, writer.RecordEvent(ctx, x.tn, x.src, accepted("after-reconnect"), &push))
	waitVersion(t, reader, x.tn.ID, "KL-2", func(v store.DataVersion, ok bool) bool { return ok && v != w0 })
}

// waitVersion polls s's version of issue key of tenant id until done
// accepts it.
func waitVersion(t *testing.T, s *store.Store, id int64, key string, done func(store.DataVersion, bool) bool) store.DataVersion {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		v, ok := s.DataVersion(id, key)
		if done(v, ok) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("version of tenant %d never reached the expected state (last %+v, usable %v)", id, v, ok)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDataVersionUnusableWithoutWatcher: once a replica has watched for
// other replicas' changes, it must not vouch for any version while it is
// not listening, or a cache would keep serving what they changed.
func TestDataVersionUnusableWithoutWatcher(t *testing.T) {
	s := dbtest.PostgresStore(t)
	if _, ok := s.DataVersion(1, "KL-1"); !ok {
		t.Fatal("a replica that never watched has no usable version; it is the only writer it knows of")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	listening := make(chan struct{}, 1)
	go func() {
		done <- s.WatchTenants(ctx, func(string, string) {}, func() { listening <- struct{}{} })
	}()
	recv(t, listening, "watcher listening")
	if _, ok := s.DataVersion(1, "KL-1"); !ok {
		t.Fatal("DataVersion is not usable while the watcher listens")
	}
	cancel()
	if err := recv(t, done, "WatchTenants to return"); err != nil {
		t.Fatalf("WatchTenants = %v after cancel, want nil", err)
	}
	if _, ok := s.DataVersion(1, "KL-1"); ok {
		t.Fatal("DataVersion is usable after the watcher stopped")
	}
}
