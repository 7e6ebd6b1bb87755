package ingest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// batchSpy is the real store, noting every batch of entities the receiver
// asks it to record.
type batchSpy struct {
	*store.Store
	batches []*devops.Batch
}

func (s *batchSpy) RecordEvent(ctx context.Context, t *tenant.Tenant, sourceID string, d store.Delivery, b *devops.Batch) error {
	s.batches = append(s.batches, b)
	return s.Store.RecordEvent(ctx, t, sourceID, d, b)
}

// TestTestDeliveries sends each kind's test delivery through the receiver
// as the configure page does: it must verify with the source's secret, be
// parsed and logged as ignored with a fresh Keyline id, and carry nothing to
// store. Signed with any other secret it is refused like a forgery.
func TestTestDeliveries(t *testing.T) {
	tests := []struct {
		kind, event, reason string
	}{
		{ingest.KindGitHub, "ping", "ping: the webhook is set up"},
		{ingest.KindGitLab, "Keyline Test Hook", "keyline_test"},
		{ingest.KindBitbucket, "keyline:test", "keyline:test"},
		{ingest.KindPagerDuty, "pagey.ping", "only incident events are recorded"},
		{ingest.KindOpsgenie, "KeylineTest", "does not change an incident"},
		{ingest.KindGeneric, "ping", "ping: the source is set up"},
	}
	if len(tests) != len(ingest.Kinds()) {
		t.Fatalf("%d kinds tested, want all %d", len(tests), len(ingest.Kinds()))
	}
	dbtest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		tn, err := st.UpsertTenant(ctx, tenant.Install{AppKey: "test.jira", ClientKey: "acme",
			BaseURL: "https://acme.atlassian.net", ProductType: "jira",
			SharedSecret: []byte("acme-shared-secret-0123456789abcdef"), At: at})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			t.Run(tt.kind, func(t *testing.T) {
				created, _, _, err := st.CreateSource(ctx, tn, tt.kind, "")
				if err != nil {
					t.Fatal(err)
				}
				src, err := st.SourceWithSecrets(ctx, tn, created.ID)
				if err != nil {
					t.Fatal(err)
				}
				spy := &batchSpy{Store: st}
				rcv := ingest.NewReceiver(spy, nil)
				ids := map[string]bool{}
				for range 2 {
					td, err := ingest.NewTestDelivery(tt.kind, src.Secrets[0], at)
					if err != nil {
						t.Fatal(err)
					}
					res, err := rcv.ReceiveSource(ctx, tn, src, td.Delivery)
					if err != nil {
						t.Fatal(err)
					}
					if res.Status != http.StatusAccepted || res.Outcome != store.DeliveryIgnored || res.Event != tt.event ||
						!strings.Contains(res.Reason, tt.reason) || res.Refusal != "" {
						t.Errorf("result %+v, want 202 ignored %q because %q", res, tt.event, tt.reason)
					}
					if !strings.HasPrefix(res.DeliveryID, ingest.TestDeliveryPrefix) || ids[res.DeliveryID] {
						t.Errorf("delivery id %q: want a fresh one starting with %s", res.DeliveryID, ingest.TestDeliveryPrefix)
					}
					ids[res.DeliveryID] = true
					if td.What == "" {
						t.Error("no description of what was sent")
					}
				}
				for _, b := range spy.batches {
					if b != nil {
						t.Errorf("a test delivery carried entities to store: %+v", b)
					}
				}
				log, err := st.ListDeliveries(ctx, tn, src.ID, 0)
				if err != nil {
					t.Fatal(err)
				}
				if len(log) != 2 || !ids[log[0].DeliveryID] || !ids[log[1].DeliveryID] || log[0].Outcome != store.DeliveryIgnored ||
					log[0].Status != http.StatusAccepted || log[0].Event != tt.event {
					t.Errorf("delivery log %+v, want both test lines, ignored with 202", log)
				}

				// Signed with a secret the source does not have, the same
				// delivery is refused and logged as rejected.
				forged, err := ingest.NewTestDelivery(tt.kind, []byte("not-this-source's-secret-0123"), at)
				if err != nil {
					t.Fatal(err)
				}
				res, err := rcv.ReceiveSource(ctx, tn, src, forged.Delivery)
				if err != nil || res.Status != http.StatusUnauthorized || res.Outcome != store.DeliveryRejected ||
					res.Refusal != ingest.RefusedBadSignature {
					t.Errorf("forged test delivery: %+v, %v; want 401 rejected for its signature", res, err)
				}
			})
		}
	})
}

func TestNewTestDeliveryRefuses(t *testing.T) {
	if _, err := ingest.NewTestDelivery("jenkins", []byte("secret-0123456789"), time.Now()); !errors.Is(err, ingest.ErrUnknownKind) {
		t.Errorf("unknown kind: %v, want ErrUnknownKind", err)
	}
	if _, err := ingest.NewTestDelivery(ingest.KindGitHub, nil, time.Now()); err == nil {
		t.Error("no secret: accepted")
	}
}
