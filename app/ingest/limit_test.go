package ingest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

var limitT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time for the limits: tests move it, never sleep.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestNewLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     LimitConfig
		wantNil bool
		wantErr bool
	}{
		{name: "both off", cfg: LimitConfig{}, wantNil: true},
		{name: "source only", cfg: LimitConfig{SourceRate: 1, SourceBurst: 1}},
		{name: "site only", cfg: LimitConfig{SiteRate: 1, SiteBurst: 1}},
		{name: "source without burst", cfg: LimitConfig{SourceRate: 1}, wantErr: true},
		{name: "site without burst", cfg: LimitConfig{SiteRate: 1}, wantErr: true},
	} {
		l, err := NewLimits(tc.cfg, nil)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: error %v", tc.name, err)
		}
		if !tc.wantErr && (l == nil) != tc.wantNil {
			t.Errorf("%s: limits %v", tc.name, l)
		}
	}
	var off *Limits
	if _, ok := off.Allow(1, "src"); !ok {
		t.Error("nil limits refused a delivery")
	}
}

// A table of deliveries, in order, at times the test sets: which are
// allowed, and which limit refuses the others with what Retry-After.
func TestLimitsAllow(t *testing.T) {
	type try struct {
		at     time.Duration // since limitT0
		site   int64
		source string
		limit  string        // "" allowed, else the limit that refuses
		retry  time.Duration // Retry-After of a refusal
	}
	for _, tc := range []struct {
		name  string
		cfg   LimitConfig
		tries []try
	}{
		{
			name: "a source's burst, then 429 until a token is back",
			cfg:  LimitConfig{SourceRate: 0.5, SourceBurst: 2, SiteRate: 100, SiteBurst: 100},
			tries: []try{
				{0, 1, "a", "", 0},
				{0, 1, "a", "", 0},
				{0, 1, "a", LimitSource, 2 * time.Second}, // 1 token at 0.5/s
				{0, 1, "b", "", 0},                        // another source of the site
				{0, 2, "c", "", 0},                        // another site
				{time.Second, 1, "a", LimitSource, time.Second},
				{2 * time.Second, 1, "a", "", 0},
			},
		},
		{
			name: "the site limit counts all of a site's sources",
			cfg:  LimitConfig{SourceRate: 100, SourceBurst: 100, SiteRate: 1, SiteBurst: 3},
			tries: []try{
				{0, 1, "a", "", 0},
				{0, 1, "b", "", 0},
				{0, 1, "a", "", 0},
				{0, 1, "b", LimitSite, time.Second},
				{0, 1, "c", LimitSite, time.Second},
				{0, 2, "d", "", 0}, // another site is untouched
				{time.Second, 1, "c", "", 0},
			},
		},
		{
			// A refusal by the site limit gives the source its token back:
			// the source's own budget is not spent by deliveries that were
			// never taken.
			name: "a site refusal costs the source nothing",
			// The source barely refills: its two tokens are all it has, so
			// had the refusals spent them, the delivery at 1 s would fail.
			cfg: LimitConfig{SourceRate: 0.001, SourceBurst: 2, SiteRate: 1, SiteBurst: 1},
			tries: []try{
				{0, 1, "other", "", 0},
				{0, 1, "a", LimitSite, time.Second},
				{0, 1, "a", LimitSite, time.Second},
				{time.Second, 1, "a", "", 0},
				{2 * time.Second, 1, "a", "", 0},
			},
		},
		{
			name: "sub-second waits round up to one second",
			cfg:  LimitConfig{SourceRate: 50, SourceBurst: 1},
			tries: []try{
				{0, 1, "a", "", 0},
				{0, 1, "a", LimitSource, time.Second}, // 20 ms is still Retry-After: 1
				{20 * time.Millisecond, 1, "a", "", 0},
			},
		},
		{
			name: "only the site limit set",
			cfg:  LimitConfig{SiteRate: 1, SiteBurst: 1},
			tries: []try{
				{0, 1, "a", "", 0},
				{0, 1, "b", LimitSite, time.Second},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: limitT0}
			l, err := NewLimits(tc.cfg, c.now)
			if err != nil {
				t.Fatal(err)
			}
			for i, tr := range tc.tries {
				c.t = limitT0.Add(tr.at)
				got, ok := l.Allow(tr.site, tr.source)
				if ok != (tr.limit == "") || got.Limit != tr.limit || got.RetryAfter != tr.retry {
					t.Errorf("delivery %d (site %d, source %s, +%s): allowed %v, %+v; want limit %q, retry %s",
						i+1, tr.site, tr.source, tr.at, ok, got, tr.limit, tr.retry)
				}
			}
		})
	}
}

// limitStore is a Store whose only source is "known"; it counts writes.
type limitStore struct {
	mu     sync.Mutex
	writes int
}

func (s *limitStore) SourceByToken(_ context.Context, token string) (*tenant.Tenant, *store.Source, error) {
	if token != "known" {
		return nil, nil, store.ErrNotFound
	}
	return &tenant.Tenant{ID: 7}, &store.Source{TenantID: 7, ID: "src_known", Kind: KindGitHub,
		Secrets: [][]byte{[]byte("secret")}, EnvironmentRules: []byte("{}")}, nil
}

func (s *limitStore) RecordEvent(context.Context, *tenant.Tenant, string, store.Delivery, *devops.Batch) error {
	s.mu.Lock()
	s.writes++
	s.mu.Unlock()
	return nil
}

func (s *limitStore) RecordDelivery(context.Context, *tenant.Tenant, string, store.Delivery) error {
	s.mu.Lock()
	s.writes++
	s.mu.Unlock()
	return nil
}

// unreadBody fails the test if the receiver reads it.
type unreadBody struct{ t *testing.T }

func (b unreadBody) Read([]byte) (int, error) {
	b.t.Error("the body of a rate-limited delivery was read")
	return 0, errors.New("must not be read")
}

// A refused delivery is answered before its body is read and writes
// nothing; unknown tokens never make a bucket.
func TestReceiveRateLimited(t *testing.T) {
	c := &clock{t: limitT0}
	lim, err := NewLimits(LimitConfig{SourceRate: 1, SourceBurst: 1, SiteRate: 10, SiteBurst: 10}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	st := &limitStore{}
	r := NewReceiver(st, nil, WithLimits(lim))
	ctx := context.Background()

	for range 1000 {
		res, err := r.Receive(ctx, Delivery{Token: "made-up", Header: http.Header{}, Body: strings.NewReader("{}")})
		if err != nil || res.Status != http.StatusNotFound {
			t.Fatalf("unknown token: %d %v", res.Status, err)
		}
	}
	if src, site := lim.Buckets(); src != 0 || site != 0 {
		t.Errorf("unknown tokens made %d source and %d site buckets", src, site)
	}

	// The first delivery takes the source's only token (it is refused
	// later for its signature, which is beside the point here).
	if res, _ := r.Receive(ctx, Delivery{Token: "known", Header: http.Header{}, Body: strings.NewReader("{}")}); res.Status == http.StatusTooManyRequests {
		t.Fatal("the first delivery was rate limited")
	}
	before := st.writes
	res, err := r.Receive(ctx, Delivery{Token: "known", Header: http.Header{}, Body: unreadBody{t}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusTooManyRequests || res.Refusal != RefusedRateLimited || res.RetryAfter != time.Second ||
		res.Kind != KindGitHub || res.TenantID != 7 || !strings.Contains(res.Reason, "rate limit of the source") {
		t.Errorf("second delivery: %+v", res)
	}
	if st.writes != before {
		t.Errorf("a rate-limited delivery wrote %d times to the store", st.writes-before)
	}
	if src, site := lim.Buckets(); src != 1 || site != 1 {
		t.Errorf("%d source and %d site buckets, want 1 and 1", src, site)
	}
	c.add(time.Second)
	if res, _ := r.Receive(ctx, Delivery{Token: "known", Header: http.Header{}, Body: strings.NewReader("{}")}); res.Status == http.StatusTooManyRequests {
		t.Error("a second later the source is still limited")
	}
}
