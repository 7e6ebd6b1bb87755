package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyline/keyline/app/tenant"
)

// fakeLoader is an in-memory Loader that counts queries and can block them.
type fakeLoader struct {
	mu      sync.Mutex
	tenants map[[2]string]*tenant.Tenant
	err     error
	calls   atomic.Int64
	gate    chan struct{} // when non-nil, loads block until it is closed
	started chan struct{} // when non-nil, receives one value per load start
}

func newLoader(ts ...*tenant.Tenant) *fakeLoader {
	l := &fakeLoader{tenants: map[[2]string]*tenant.Tenant{}}
	for _, t := range ts {
		l.put(t)
	}
	return l
}

func (l *fakeLoader) put(t *tenant.Tenant) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tenants[[2]string{t.AppKey, t.ClientKey}] = t
}

func (l *fakeLoader) TenantByClientKey(ctx context.Context, appKey, clientKey string) (*tenant.Tenant, error) {
	l.calls.Add(1)
	if l.started != nil {
		l.started <- struct{}{}
	}
	if l.gate != nil {
		select {
		case <-l.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	t, ok := l.tenants[[2]string{appKey, clientKey}]
	if !ok {
		return nil, fmt.Errorf("fake: %w", tenant.ErrNotFound)
	}
	c := *t
	return &c, nil
}

// clock is a manual clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTenant(client, secret string, installed bool) *tenant.Tenant {
	return &tenant.Tenant{ID: 1, AppKey: "app", ClientKey: client, SharedSecret: []byte(secret), Installed: installed, Enabled: installed}
}

func TestCacheLookups(t *testing.T) {
	type step struct {
		advance   time.Duration
		client    string
		fresh     bool
		change    *tenant.Tenant // loader content replaced before the lookup
		wantErr   error
		wantSec   string
		wantCalls int64 // cumulative loader calls after this step
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"hit within ttl", []step{
			{client: "a", wantSec: "s1", wantCalls: 1},
			{advance: 29 * time.Second, client: "a", wantSec: "s1", wantCalls: 1},
		}},
		{"reload after ttl", []step{
			{client: "a", wantSec: "s1", wantCalls: 1},
			{advance: 30 * time.Second, change: newTenant("a", "s2", true), client: "a", wantSec: "s2", wantCalls: 2},
		}},
		{"stale secret until ttl without invalidation", []step{
			{client: "a", wantSec: "s1", wantCalls: 1},
			{advance: time.Second, change: newTenant("a", "s2", true), client: "a", wantSec: "s1", wantCalls: 1},
		}},
		{"fresh reloads", []step{
			{client: "a", wantSec: "s1", wantCalls: 1},
			{advance: 2 * time.Second, change: newTenant("a", "s2", true), client: "a", fresh: true, wantSec: "s2", wantCalls: 2},
		}},
		{"fresh within gap served from cache", []step{
			{client: "a", wantSec: "s1", wantCalls: 1},
			{advance: 500 * time.Millisecond, client: "a", fresh: true, wantSec: "s1", wantCalls: 1},
			{advance: 500 * time.Millisecond, client: "a", fresh: true, wantSec: "s1", wantCalls: 2},
		}},
		{"unknown cached briefly", []step{
			{client: "zz", wantErr: tenant.ErrNotFound, wantCalls: 1},
			{advance: 1999 * time.Millisecond, client: "zz", wantErr: tenant.ErrNotFound, wantCalls: 1},
			{advance: time.Millisecond, client: "zz", wantErr: tenant.ErrNotFound, wantCalls: 2},
		}},
		{"unknown then installed after negative ttl", []step{
			{client: "new", wantErr: tenant.ErrNotFound, wantCalls: 1},
			{advance: 2 * time.Second, change: newTenant("new", "n1", true), client: "new", wantSec: "n1", wantCalls: 2},
		}},
		{"uninstalled is not found and cached briefly", []step{
			{change: newTenant("a", "s1", false), client: "a", wantErr: tenant.ErrNotFound, wantCalls: 1},
			{advance: time.Second, client: "a", wantErr: tenant.ErrNotFound, wantCalls: 1},
			{advance: time.Second, change: newTenant("a", "s3", true), client: "a", wantSec: "s3", wantCalls: 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: time.Unix(1_700_000_000, 0)}
			l := newLoader(newTenant("a", "s1", true))
			c := tenant.NewCache(l, tenant.WithClock(clk.Now))
			for i, s := range tt.steps {
				clk.Add(s.advance)
				if s.change != nil {
					l.put(s.change)
				}
				got, err := c.Tenant(context.Background(), "app", s.client, s.fresh)
				if s.wantErr != nil {
					if !errors.Is(err, s.wantErr) || got != nil {
						t.Fatalf("step %d: got %v, %v; want %v", i, got, err, s.wantErr)
					}
				} else if err != nil || string(got.SharedSecret) != s.wantSec {
					t.Fatalf("step %d: got %v, %v; want secret %q", i, got, err, s.wantSec)
				}
				if n := l.calls.Load(); n != s.wantCalls {
					t.Fatalf("step %d: loader calls = %d, want %d", i, n, s.wantCalls)
				}
			}
		})
	}
}

func TestCacheInvalidateAndFlush(t *testing.T) {
	tests := []struct {
		name      string
		drop      func(c *tenant.Cache)
		wantA     string
		wantB     string
		wantCalls int64
	}{
		{"invalidate one", func(c *tenant.Cache) { c.Invalidate("app", "a") }, "a2", "b1", 3},
		{"invalidate other key", func(c *tenant.Cache) { c.Invalidate("app", "zz") }, "a1", "b1", 2},
		{"invalidate other app", func(c *tenant.Cache) { c.Invalidate("app2", "a") }, "a1", "b1", 2},
		{"flush", func(c *tenant.Cache) { c.Flush() }, "a2", "b2", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLoader(newTenant("a", "a1", true), newTenant("b", "b1", true))
			c := tenant.NewCache(l)
			ctx := context.Background()
			for _, k := range []string{"a", "b"} {
				if _, err := c.Tenant(ctx, "app", k, false); err != nil {
					t.Fatal(err)
				}
			}
			l.put(newTenant("a", "a2", true))
			l.put(newTenant("b", "b2", true))
			tt.drop(c)
			for k, want := range map[string]string{"a": tt.wantA, "b": tt.wantB} {
				got, err := c.Tenant(ctx, "app", k, false)
				if err != nil || string(got.SharedSecret) != want {
					t.Errorf("%s: got %v, %v; want %q", k, got, err, want)
				}
			}
			if n := l.calls.Load(); n != tt.wantCalls {
				t.Errorf("loader calls = %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestCacheDoesNotCacheErrors(t *testing.T) {
	l := newLoader(newTenant("a", "s1", true))
	l.err = errors.New("connection refused")
	c := tenant.NewCache(l)
	ctx := context.Background()
	if _, err := c.Tenant(ctx, "app", "a", false); err == nil || errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("got %v, want the database error (not ErrNotFound)", err)
	}
	l.mu.Lock()
	l.err = nil
	l.mu.Unlock()
	if got, err := c.Tenant(ctx, "app", "a", false); err != nil || string(got.SharedSecret) != "s1" {
		t.Fatalf("after recovery: %v, %v", got, err)
	}
}

func TestCacheCoalescesConcurrentMisses(t *testing.T) {
	l := newLoader(newTenant("a", "s1", true))
	l.gate = make(chan struct{})
	l.started = make(chan struct{}, 100)
	c := tenant.NewCache(l)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			got, err := c.Tenant(context.Background(), "app", "a", false)
			if err == nil && string(got.SharedSecret) != "s1" {
				err = fmt.Errorf("secret %q", got.SharedSecret)
			}
			errs <- err
		})
	}
	<-l.started
	// Give the other goroutines time to join the flight; calls==1 below is
	// the assertion, this only makes the test meaningful.
	time.Sleep(50 * time.Millisecond)
	close(l.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := l.calls.Load(); got != 1 {
		t.Fatalf("loader calls = %d, want 1", got)
	}
}

// TestCacheInvalidateDuringLoad: a load that began before an invalidation
// may have read the old row; its result must not be cached, and a lookup
// after the invalidation must not join it.
func TestCacheInvalidateDuringLoad(t *testing.T) {
	l := newLoader(newTenant("a", "old", true))
	l.gate = make(chan struct{})
	l.started = make(chan struct{}, 10)
	c := tenant.NewCache(l)
	ctx := context.Background()

	first := make(chan *tenant.Tenant, 1)
	go func() {
		got, _ := c.Tenant(ctx, "app", "a", false)
		first <- got
	}()
	<-l.started // the old read is in flight
	l.put(newTenant("a", "new", true))
	c.Invalidate("app", "a")

	second := make(chan *tenant.Tenant, 1)
	go func() {
		got, _ := c.Tenant(ctx, "app", "a", false)
		second <- got
	}()
	<-l.started // a second, separate load started: it did not join the old one
	close(l.gate)
	if got := <-second; string(got.SharedSecret) != "new" {
		t.Fatalf("lookup after Invalidate got %q", got.SharedSecret)
	}
	<-first
	if got, _ := c.Tenant(ctx, "app", "a", false); string(got.SharedSecret) != "new" {
		t.Fatalf("cache holds %q after invalidation, want new", got.SharedSecret)
	}
}

func TestCacheCallerCancelDoesNotFailOthers(t *testing.T) {
	l := newLoader(newTenant("a", "s1", true))
	l.gate = make(chan struct{})
	l.started = make(chan struct{}, 10)
	c := tenant.NewCache(l)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Tenant(ctx, "app", "a", false)
		errc <- err
	}()
	<-l.started
	other := make(chan error, 1)
	go func() {
		_, err := c.Tenant(context.Background(), "app", "a", false)
		other <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v", err)
	}
	close(l.gate)
	if err := <-other; err != nil {
		t.Fatalf("the other caller failed with the first caller's cancellation: %v", err)
	}
	if n := l.calls.Load(); n != 1 {
		t.Fatalf("loader calls = %d, want 1", n)
	}
}

func TestCacheBounded(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	l := newLoader(newTenant("a", "s1", true))
	c := tenant.NewCache(l, tenant.WithMaxEntries(10), tenant.WithClock(clk.Now))
	ctx := context.Background()
	if _, err := c.Tenant(ctx, "app", "a", false); err != nil {
		t.Fatal(err)
	}
	for i := range 100 { // a flood of unknown issuers
		c.Tenant(ctx, "app", fmt.Sprint("unknown-", i), false)
	}
	if n := c.Len(); n > 10 {
		t.Fatalf("cache grew to %d entries, limit 10", n)
	}
	before := l.calls.Load()
	if _, err := c.Tenant(ctx, "app", "a", false); err != nil || l.calls.Load() != before {
		t.Fatalf("the real tenant was evicted by misses (err %v)", err)
	}
	clk.Add(3 * time.Second) // negatives expire
	for i := range 20 {
		l.put(newTenant(fmt.Sprint("real-", i), "x", true))
		if _, err := c.Tenant(ctx, "app", fmt.Sprint("real-", i), false); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n > 10 {
		t.Fatalf("cache grew to %d entries, limit 10", n)
	}
}

func TestCacheConcurrentUse(t *testing.T) {
	// For the race detector: lookups, invalidations and flushes at once.
	l := newLoader(newTenant("a", "s1", true), newTenant("b", "s2", true))
	c := tenant.NewCache(l, tenant.WithTTL(time.Millisecond))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 500 {
				switch (i + j) % 10 {
				case 0:
					c.Invalidate("app", "a")
				case 1:
					c.Flush()
				default:
					k := []string{"a", "b", "c"}[j%3]
					got, err := c.Tenant(context.Background(), "app", k, j%7 == 0)
					if k == "c" && !errors.Is(err, tenant.ErrNotFound) || k != "c" && (err != nil || got.ClientKey != k) {
						t.Errorf("lookup %s: %v, %v", k, got, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkCacheHit(b *testing.B) {
	ctx := context.Background()
	const key = "8b0a1c7e-2f4d-4a8e-9c3b-5d6e7f8a9b0c" // client keys look like this
	c := tenant.NewCache(newLoader(&tenant.Tenant{AppKey: "dev.keyline.jira", ClientKey: key, Installed: true}))
	if _, err := c.Tenant(ctx, "dev.keyline.jira", key, false); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Tenant(ctx, "dev.keyline.jira", key, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Tenant(ctx, "dev.keyline.jira", key, false); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
