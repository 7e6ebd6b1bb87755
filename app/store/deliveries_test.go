package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

func accepted(id string) store.Delivery {
	return store.Delivery{DeliveryID: id, Event: "push", Outcome: store.DeliveryAccepted, Status: 202}
}

func mustDeliveries(t *testing.T, s *store.Store, tn *tenant.Tenant, sourceID string, limit int) []store.Delivery {
	t.Helper()
	got, err := s.ListDeliveries(context.Background(), tn, sourceID, limit)
	if err != nil {
		t.Fatalf("ListDeliveries: %v", err)
	}
	return got
}

func TestRecordAndListDeliveries(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clk := useClock(s, oddTime)
		tn := mustUpsert(t, s, install("acme"))
		src := mustCreateSource(t, s, tn, store.SourceGitHub, "").src
		if got := mustDeliveries(t, s, tn, src.ID, 0); got == nil || len(got) != 0 {
			t.Fatalf("empty log = %#v, want empty, non-nil", got)
		}
		in := []store.Delivery{
			{DeliveryID: "d1", Event: "push", Outcome: store.DeliveryAccepted, Status: 202, ReceivedAt: oddTime.Add(time.Second)},
			{DeliveryID: "d2", Event: "star", Outcome: store.DeliveryIgnored, Status: 202, Reason: "event not used", ReceivedAt: oddTime.Add(2 * time.Second)},
			{DeliveryID: "d3", Event: "push", Outcome: store.DeliveryRejected, Status: 401, Reason: "bad signature"},
			{Event: "push", Outcome: store.DeliveryRejected, Status: 413, Reason: "body over 5 MiB"},
		}
		clk.add(time.Hour) // for the line without a time
		for _, d := range in {
			must(t, s.RecordDelivery(ctx, tn, src.ID, d))
		}
		got := mustDeliveries(t, s, tn, src.ID, 0)
		if len(got) != len(in) {
			t.Fatalf("%d lines, want %d", len(got), len(in))
		}
		for i, g := range got {
			w := in[len(in)-1-i] // newest first
			if w.ReceivedAt.IsZero() {
				w.ReceivedAt = clk.t
			}
			if g.DeliveryID != w.DeliveryID || g.Event != w.Event || g.Outcome != w.Outcome ||
				g.Status != w.Status || g.Reason != w.Reason ||
				!g.ReceivedAt.Equal(w.ReceivedAt.UTC().Truncate(time.Microsecond)) || g.ReceivedAt.Location() != time.UTC {
				t.Errorf("line %d = %+v, want %+v", i, g, w)
			}
			if i > 0 && g.ID >= got[i-1].ID {
				t.Errorf("ids not decreasing: %d then %d", got[i-1].ID, g.ID)
			}
		}
		if got := mustDeliveries(t, s, tn, src.ID, 2); len(got) != 2 || got[0].DeliveryID != "" || got[1].DeliveryID != "d3" {
			t.Errorf("limit 2 = %+v", got)
		}
	})
}

func TestRecordDeliveryRejects(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		src := mustCreateSource(t, s, tn, store.SourceGitHub, "").src
		tests := []struct {
			name     string
			tn       *tenant.Tenant
			sourceID string
			d        store.Delivery
			notFound bool
		}{
			{"unknown outcome", tn, src.ID, store.Delivery{Outcome: "failed", Status: 500}, false},
			{"empty outcome", tn, src.ID, store.Delivery{Status: 200}, false},
			{"status 0", tn, src.ID, store.Delivery{Outcome: store.DeliveryAccepted}, false},
			{"status 600", tn, src.ID, store.Delivery{Outcome: store.DeliveryAccepted, Status: 600}, false},
			{"no tenant", nil, src.ID, accepted("x"), false},
			{"unknown source", tn, "src_unknown", accepted("x"), true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := s.RecordDelivery(ctx, tt.tn, tt.sourceID, tt.d)
				if err == nil || errors.Is(err, store.ErrNotFound) != tt.notFound {
					t.Fatalf("RecordDelivery = %v (want not found: %v)", err, tt.notFound)
				}
			})
		}
		if got := mustDeliveries(t, s, tn, src.ID, 0); len(got) != 0 {
			t.Errorf("rejected calls wrote %+v", got)
		}
		if _, err := s.ListDeliveries(ctx, tn, "src_unknown", 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ListDeliveries of an unknown source: %v", err)
		}
		must(t, s.DeleteSource(ctx, tn, src.ID))
		if err := s.RecordDelivery(ctx, tn, src.ID, accepted("late")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RecordDelivery to a deleted source: %v", err)
		}
	})
}

func TestDuplicateDelivery(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		other := mustUpsert(t, s, install("other"))
		src := mustCreateSource(t, s, tn, store.SourceGitHub, "").src
		src2 := mustCreateSource(t, s, tn, store.SourceGitHub, "").src
		otherSrc := mustCreateSource(t, s, other, store.SourceGitHub, "").src
		with := func(d store.Delivery, o store.DeliveryOutcome, status int) store.Delivery {
			d.Outcome, d.Status = o, status
			return d
		}
		steps := []struct {
			name     string
			tn       *tenant.Tenant
			sourceID string
			d        store.Delivery
			dup      bool
		}{
			{"first", tn, src.ID, accepted("d1"), false},
			{"redelivery", tn, src.ID, accepted("d1"), true},
			{"redelivery as ignored", tn, src.ID, with(accepted("d1"), store.DeliveryIgnored, 202), true},
			{"duplicate line", tn, src.ID, with(accepted("d1"), store.DeliveryDuplicate, 200), false},
			{"forged copy rejected", tn, src.ID, with(accepted("d1"), store.DeliveryRejected, 401), false},
			{"rejected first", tn, src.ID, with(accepted("d2"), store.DeliveryRejected, 401), false},
			{"retry after rejection", tn, src.ID, accepted("d2"), false},
			{"ignored claims", tn, src.ID, with(accepted("d3"), store.DeliveryIgnored, 202), false},
			{"then accepted", tn, src.ID, accepted("d3"), true},
			{"no id", tn, src.ID, accepted(""), false},
			{"no id again", tn, src.ID, accepted(""), false},
			{"same id, other source", tn, src2.ID, accepted("d1"), false},
			{"same id, other site", other, otherSrc.ID, accepted("d1"), false},
		}
		for _, st := range steps {
			err := s.RecordDelivery(ctx, st.tn, st.sourceID, st.d)
			if st.dup != errors.Is(err, store.ErrDuplicate) || (!st.dup && err != nil) {
				t.Errorf("%s: RecordDelivery = %v, want duplicate %v", st.name, err, st.dup)
			}
		}
		var outcomes []string
		for _, d := range mustDeliveries(t, s, tn, src.ID, 0) {
			outcomes = append(outcomes, d.DeliveryID+":"+string(d.Outcome))
		}
		want := ":accepted :accepted d3:ignored d2:accepted d2:rejected d1:rejected d1:duplicate d1:accepted"
		if got := strings.Join(outcomes, " "); got != want {
			t.Errorf("log = %s\nwant  %s", got, want)
		}
	})
}

func TestDeliveryLogTrimmed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		src := mustCreateSource(t, s, tn, store.SourceGitHub, "").src
		quiet := mustCreateSource(t, s, tn, store.SourceGitLab, "").src
		for i := range 3 {
			must(t, s.RecordDelivery(ctx, tn, quiet.ID, accepted(fmt.Sprint("q", i))))
		}
		// Enough lines past the limit that a trim has certainly run since.
		total := store.MaxDeliveriesPerSource + 2*store.TrimEvery
		for i := range total {
			must(t, s.RecordDelivery(ctx, tn, src.ID, accepted(fmt.Sprint("d", i))))
		}
		got := mustDeliveries(t, s, tn, src.ID, 0)
		if len(got) != store.MaxDeliveriesPerSource {
			t.Fatalf("%d lines kept, want %d", len(got), store.MaxDeliveriesPerSource)
		}
		if got[0].DeliveryID != fmt.Sprint("d", total-1) || got[len(got)-1].DeliveryID != fmt.Sprint("d", total-store.MaxDeliveriesPerSource) {
			t.Errorf("kept %s..%s, want the newest", got[len(got)-1].DeliveryID, got[0].DeliveryID)
		}
		var n int
		must(t, s.ScanOne(ctx, `SELECT COUNT(*) FROM deliveries WHERE source_id = '`+src.ID+`'`, &n))
		if n < store.MaxDeliveriesPerSource || n >= store.MaxDeliveriesPerSource+2*store.TrimEvery {
			t.Errorf("%d rows in the table, want %d and at most a trim interval more", n, store.MaxDeliveriesPerSource)
		}
		if q := mustDeliveries(t, s, tn, quiet.ID, 0); len(q) != 3 {
			t.Errorf("another source's log has %d lines, want its 3", len(q))
		}
		// The idempotency window is the kept log: a trimmed id can be claimed again.
		if err := s.RecordDelivery(ctx, tn, src.ID, accepted("d0")); err != nil {
			t.Errorf("trimmed id: %v, want accepted", err)
		}
		if err := s.RecordDelivery(ctx, tn, src.ID, accepted(fmt.Sprint("d", total-1))); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("kept id: %v, want ErrDuplicate", err)
		}
	})
}

func TestDeliveryTextCleaned(t *testing.T) {
	longID := strings.Repeat("x", 200)
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		src := mustCreateSource(t, s, tn, store.SourceGeneric, "").src
		hostile := store.Delivery{
			DeliveryID: "id\x00with\nnul",
			Event:      "push\x00\xff\xfe<script>",
			Outcome:    store.DeliveryRejected,
			Status:     401,
			Reason:     strings.Repeat("é", 400) + "\x00",
		}
		must(t, s.RecordDelivery(ctx, tn, src.ID, hostile))
		// Two long ids sharing their first 128 bytes must stay distinct.
		must(t, s.RecordDelivery(ctx, tn, src.ID, accepted(longID+"a")))
		must(t, s.RecordDelivery(ctx, tn, src.ID, accepted(longID+"b")))
		if err := s.RecordDelivery(ctx, tn, src.ID, accepted(longID+"a")); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("same long id again: %v, want ErrDuplicate", err)
		}
		got := mustDeliveries(t, s, tn, src.ID, 0)
		if len(got) != 3 {
			t.Fatalf("%d lines, want 3", len(got))
		}
		h := got[2]
		if strings.ContainsAny(h.DeliveryID+h.Event+h.Reason, "\x00\n") || !utf8.ValidString(h.Event) || !utf8.ValidString(h.Reason) {
			t.Errorf("control characters or invalid UTF-8 kept: %#v", h)
		}
		if !strings.HasPrefix(h.DeliveryID, "sha256:") || !strings.HasPrefix(h.Event, "push") || len(h.Reason) > 500 {
			t.Errorf("cleaned line = %#v", h)
		}
		if got[0].DeliveryID == got[1].DeliveryID || !strings.HasPrefix(got[0].DeliveryID, "sha256:") || len(got[0].DeliveryID) != 7+64 {
			t.Errorf("long ids stored as %q and %q", got[0].DeliveryID, got[1].DeliveryID)
		}
		uuid := "72d3162e-cc78-11e3-81ab-4c9367dc0958"
		must(t, s.RecordDelivery(ctx, tn, src.ID, accepted(uuid)))
		if got := mustDeliveries(t, s, tn, src.ID, 1); got[0].DeliveryID != uuid {
			t.Errorf("ordinary id stored as %q", got[0].DeliveryID)
		}
	})
}

// TestRecordDeliveryConcurrent records from many goroutines into one source,
// as replicas under load do: no insert may fail (no id clash on SQLite, no
// deadlock between trims on PostgreSQL), every claim holds once, and the
// log ends at its limit.
func TestRecordDeliveryConcurrent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		src := mustCreateSource(t, s, tn, store.SourceGitHub, "").src
		// 96 accepted lines fit in the log, so every claim lives until its twin
		// arrives, however the workers are scheduled; the fill that follows
		// pushes the log past its limit while workers still race.
		const workers, each, fill = 8, 24, 20
		errs := make(chan error, workers*(each+fill))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					// Every id is sent by two workers: one must win, one must see a duplicate.
					id := fmt.Sprint("d", (w/2)*each+i)
					errs <- s.RecordDelivery(ctx, tn, src.ID, accepted(id))
				}
			})
		}
		wg.Wait()
		for w := range workers {
			wg.Go(func() {
				for i := range fill {
					errs <- s.RecordDelivery(ctx, tn, src.ID, accepted(fmt.Sprint("f", w, "-", i)))
				}
			})
		}
		wg.Wait()
		close(errs)
		var dups int
		for err := range errs {
			switch {
			case errors.Is(err, store.ErrDuplicate):
				dups++
			case err != nil:
				t.Fatalf("RecordDelivery: %v", err)
			}
		}
		if dups != workers*each/2 {
			t.Errorf("%d duplicates, want %d", dups, workers*each/2)
		}
		var n int
		must(t, s.ScanOne(ctx, `SELECT COUNT(*) FROM deliveries WHERE source_id = '`+src.ID+`'`, &n))
		if n < store.MaxDeliveriesPerSource || n > store.MaxDeliveriesPerSource+4*store.TrimEvery {
			t.Errorf("%d rows after concurrent recording, want %d and at most a few trim intervals more", n, store.MaxDeliveriesPerSource)
		}
	})
}
