package connect

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyServer is an httptest install-key server on 127.0.0.1 that counts
// requests per escaped path.
type keyServer struct {
	*httptest.Server
	mu     sync.Mutex
	hits   map[string]int
	bodies map[string]string // escaped path -> body (200)
	status map[string]int    // escaped path -> status (overrides bodies)
	block  chan struct{}     // when set, every request waits for it or cancellation
}

func newKeyServer(t *testing.T) *keyServer {
	t.Helper()
	ks := &keyServer{hits: map[string]int{}, bodies: map[string]string{}, status: map[string]int{}}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		ks.mu.Lock()
		ks.hits[p]++
		body, ok := ks.bodies[p]
		code := ks.status[p]
		block := ks.block
		ks.mu.Unlock()
		if block != nil {
			select {
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		switch {
		case code != 0:
			w.WriteHeader(code)
		case ok:
			w.Header().Set("Content-Type", "application/x-pem-file")
			_, _ = w.Write([]byte(body))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) set(path, body string) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.bodies[path] = body
}

func (ks *keyServer) setStatus(path string, code int) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.status[path] = code
}

func (ks *keyServer) setBlock(ch chan struct{}) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.block = ch
}

func (ks *keyServer) count(path string) int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.hits[path]
}

func (ks *keyServer) total() int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	n := 0
	for _, c := range ks.hits {
		n += c
	}
	return n
}

func TestKeyFetcherCachesByKid(t *testing.T) {
	ks := newKeyServer(t)
	priv := loadPrivateKey(t, "install_key.pem")
	ks.set("/kid-1", string(publicPEM(t, &priv.PublicKey)))
	f := NewKeyFetcher(ks.URL+"/", ks.Client())

	for i := range 3 {
		key, err := f.Key(context.Background(), "kid-1")
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if !key.Equal(&priv.PublicKey) {
			t.Fatal("wrong key")
		}
	}
	if got := ks.count("/kid-1"); got != 1 {
		t.Fatalf("key server hit %d times, want 1", got)
	}
}

func TestKeyFetcherKeyTTL(t *testing.T) {
	ks := newKeyServer(t)
	priv := loadPrivateKey(t, "install_key.pem")
	ks.set("/kid-1", string(publicPEM(t, &priv.PublicKey)))
	now := fixedClock()
	f := NewKeyFetcher(ks.URL, ks.Client(), WithClock(func() time.Time { return now }))
	if _, err := f.Key(context.Background(), "kid-1"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(keyTTL + time.Second)
	if _, err := f.Key(context.Background(), "kid-1"); err != nil {
		t.Fatal(err)
	}
	if got := ks.count("/kid-1"); got != 2 {
		t.Fatalf("key server hit %d times, want 2 after the TTL", got)
	}
}

func TestKeyFetcherCoalescesConcurrentFetches(t *testing.T) {
	ks := newKeyServer(t)
	priv := loadPrivateKey(t, "install_key.pem")
	ks.set("/kid-1", string(publicPEM(t, &priv.PublicKey)))
	release := make(chan struct{})
	ks.setBlock(release)
	f := NewKeyFetcher(ks.URL, ks.Client())

	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := f.Key(context.Background(), "kid-1")
			errs <- err
		}()
	}
	// Let the single flight finish; latecomers find the cache.
	for ks.count("/kid-1") == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := ks.count("/kid-1"); got != 1 {
		t.Fatalf("key server hit %d times, want 1", got)
	}
}

func TestKeyFetcherTimeout(t *testing.T) {
	ks := newKeyServer(t)
	ks.setBlock(make(chan struct{})) // never released
	f := NewKeyFetcher(ks.URL, ks.Client(), WithFetchTimeout(50*time.Millisecond))
	_, err := f.Key(context.Background(), "slow")
	var kse *KeyServerError
	if !errors.As(err, &kse) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want KeyServerError wrapping DeadlineExceeded", err)
	}
	// Outages are not cached: the next call asks again.
	_, _ = f.Key(context.Background(), "slow")
	if got := ks.count("/slow"); got != 2 {
		t.Fatalf("key server hit %d times, want 2", got)
	}
}

func TestKeyFetcherCallerCancellation(t *testing.T) {
	ks := newKeyServer(t)
	release := make(chan struct{})
	ks.setBlock(release)
	defer close(release)
	f := NewKeyFetcher(ks.URL, ks.Client())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.Key(ctx, "kid-1")
		done <- err
	}()
	for ks.count("/kid-1") == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestKeyFetcherFailures(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	good := string(publicPEM(t, &loadPrivateKey(t, "install_key.pem").PublicKey))

	tests := []struct {
		name      string
		kid       string
		body      string // served at /<kid> with 200 unless status is set
		status    int
		wantIs    error
		wantKSE   bool
		wantNoHit bool // rejected before any request
	}{
		{name: "unknown kid 404", kid: "missing", wantIs: ErrKeyNotFound},
		{name: "403 from CDN", kid: "forbidden", status: http.StatusForbidden, wantIs: ErrKeyNotFound},
		{name: "500", kid: "broken", status: http.StatusInternalServerError, wantKSE: true},
		{name: "429", kid: "busy", status: http.StatusTooManyRequests, wantKSE: true},
		{name: "oversized body", kid: "big", body: strings.Repeat("A", maxKeyBytes+1)},
		{name: "bad PEM", kid: "junk", body: "not a key"},
		{name: "private key PEM", kid: "priv", body: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
		{name: "trailing data", kid: "trail", body: good + "extra"},
		{name: "EC key", kid: "ec", body: string(publicPEM(t, &ec.PublicKey))},
		{name: "RSA 1024", kid: "small", body: string(publicPEM(t, &small.PublicKey))},
		{name: "kid with ..", kid: "../admin", wantIs: ErrInvalidKeyID, wantNoHit: true},
		{name: "kid with .. inside", kid: "a..b", wantIs: ErrInvalidKeyID, wantNoHit: true},
		{name: "kid with %", kid: "a%2Fb", wantIs: ErrInvalidKeyID, wantNoHit: true},
		{name: "kid with space", kid: "a b", wantIs: ErrInvalidKeyID, wantNoHit: true},
		{name: "kid with ?", kid: "a?x=1", wantIs: ErrInvalidKeyID, wantNoHit: true},
		{name: "kid with #", kid: "a#b", wantIs: ErrInvalidKeyID, wantNoHit: true},
		{name: "kid with backslash", kid: `a\b`, wantIs: ErrInvalidKeyID, wantNoHit: true},
		{name: "empty kid", kid: "", wantIs: ErrInvalidKeyID, wantNoHit: true},
		{name: "long kid", kid: strings.Repeat("a", maxKidLen+1), wantIs: ErrInvalidKeyID, wantNoHit: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := newKeyServer(t)
			if tt.body != "" {
				ks.set("/"+tt.kid, tt.body)
			}
			if tt.status != 0 {
				ks.setStatus("/"+tt.kid, tt.status)
			}
			key, err := NewKeyFetcher(ks.URL, ks.Client()).Key(context.Background(), tt.kid)
			if err == nil || key != nil {
				t.Fatalf("Key = %v, %v; want error", key, err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
			var kse *KeyServerError
			if errors.As(err, &kse) != tt.wantKSE {
				t.Fatalf("KeyServerError = %v, want %v (%v)", !tt.wantKSE, tt.wantKSE, err)
			}
			if tt.wantNoHit && ks.total() != 0 {
				t.Fatalf("invalid kid reached the key server")
			}
		})
	}
}

func TestKeyFetcherEscapesKidAsOneSegment(t *testing.T) {
	ks := newKeyServer(t)
	priv := loadPrivateKey(t, "install_key.pem")
	ks.set("/jira%2Fabc-123", string(publicPEM(t, &priv.PublicKey)))
	if _, err := NewKeyFetcher(ks.URL, ks.Client()).Key(context.Background(), "jira/abc-123"); err != nil {
		t.Fatalf("Key: %v", err)
	}
	if got := ks.count("/jira%2Fabc-123"); got != 1 {
		t.Fatalf("escaped path hit %d times, want 1", got)
	}
}

func TestKeyFetcherNegativeCache(t *testing.T) {
	ks := newKeyServer(t)
	now := fixedClock()
	f := NewKeyFetcher(ks.URL, ks.Client(), WithClock(func() time.Time { return now }), WithFailureTTL(2*time.Second))
	for range 3 {
		if _, err := f.Key(context.Background(), "nope"); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("err = %v", err)
		}
	}
	if got := ks.count("/nope"); got != 1 {
		t.Fatalf("hits = %d within the failure TTL, want 1", got)
	}
	now = now.Add(3 * time.Second)
	_, _ = f.Key(context.Background(), "nope")
	if got := ks.count("/nope"); got != 2 {
		t.Fatalf("hits = %d after the failure TTL, want 2", got)
	}
}

func TestKeyFetcherNegativeCacheBounded(t *testing.T) {
	m := map[string]cachedFailure{}
	now := fixedClock()
	for i := range maxCacheEntries + 10 {
		putBounded(m, strings.Repeat("k", i+1), cachedFailure{expires: now.Add(time.Second)}, now,
			func(e cachedFailure) time.Time { return e.expires })
	}
	if len(m) != maxCacheEntries {
		t.Fatalf("len = %d, want %d", len(m), maxCacheEntries)
	}
	// Once entries expire, room is made again.
	later := now.Add(2 * time.Second)
	putBounded(m, "fresh", cachedFailure{expires: later.Add(time.Second)}, later,
		func(e cachedFailure) time.Time { return e.expires })
	if _, ok := m["fresh"]; !ok || len(m) != 1 {
		t.Fatalf("expired entries not pruned: len %d", len(m))
	}
}
