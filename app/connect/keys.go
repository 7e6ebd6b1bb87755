package connect

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

const (
	defaultFetchTimeout = 5 * time.Second
	defaultFailureTTL   = 2 * time.Second
	// keyTTL lets a key the server has since withdrawn age out; rotation
	// always brings a new kid, so this is not what picks up new keys.
	keyTTL = 24 * time.Hour
	// maxKeyBytes is far above a 4096-bit PEM key (~800 bytes).
	maxKeyBytes = 16 << 10
	// maxCacheEntries bounds both caches; kids in failed lookups come from
	// unauthenticated requests and must not grow memory without limit.
	maxCacheEntries = 1024
	maxKidLen       = 256
	minRSABits      = 2048
)

var (
	// ErrInvalidKeyID means a kid outside the accepted charset, or with "..".
	ErrInvalidKeyID = errors.New("invalid key id")
	// ErrKeyNotFound means the key server does not know the kid.
	ErrKeyNotFound = errors.New("install key not found")
)

// KeyFetcher downloads and caches the RSA public keys Atlassian signs install
// callbacks with (spec §3.2): GET <keysURL>/<kid>, a PEM SPKI RSA key. Keys
// are cached by kid; definite failures for a short time only; concurrent
// fetches of one kid are coalesced. It is safe for concurrent use.
type KeyFetcher struct {
	base       string
	client     *http.Client
	timeout    time.Duration
	failureTTL time.Duration
	now        func() time.Time

	group singleflight.Group

	mu       sync.Mutex
	keys     map[string]cachedKey
	failures map[string]cachedFailure
}

type cachedKey struct {
	key     *rsa.PublicKey
	expires time.Time
}

type cachedFailure struct {
	err     error
	expires time.Time
}

// NewKeyFetcher returns a fetcher for the key server at keysURL, e.g.
// https://connect-install-keys.atlassian.com. A nil client means a fresh
// http.Client; each fetch is bounded by WithFetchTimeout either way.
func NewKeyFetcher(keysURL string, client *http.Client, opts ...KeyFetcherOption) *KeyFetcher {
	if client == nil {
		client = &http.Client{}
	}
	f := &KeyFetcher{
		base:       strings.TrimRight(keysURL, "/"),
		client:     client,
		timeout:    defaultFetchTimeout,
		failureTTL: defaultFailureTTL,
		now:        time.Now,
		keys:       make(map[string]cachedKey),
		failures:   make(map[string]cachedFailure),
	}
	for _, o := range opts {
		o.applyKeyFetcher(f)
	}
	return f
}

// Key returns the public key for kid. Errors: ErrInvalidKeyID, ErrKeyNotFound
// (also for other 4xx answers), *KeyServerError when the server could not be
// asked, or a wrapped parse error for a body that is not an RSA key.
func (f *KeyFetcher) Key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if err := validateKid(kid); err != nil {
		return nil, err
	}
	if key, hit, err := f.cached(kid); hit {
		return key, err
	}
	// The fetch must not die with the first caller's context: others may be
	// waiting on the same flight. It keeps the values, drops the cancel, and
	// is bounded by the fetcher's own timeout.
	fctx := context.WithoutCancel(ctx)
	ch := f.group.DoChan(kid, func() (any, error) {
		if key, hit, err := f.cached(kid); hit {
			return key, err
		}
		return f.fetchAndCache(fctx, kid)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("fetch install key %q: %w", kid, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*rsa.PublicKey), nil
	}
}

// validateKid admits the characters seen in key ids and refuses anything that
// could change the request path; the kid is escaped as one segment anyway.
func validateKid(kid string) error {
	if kid == "" || len(kid) > maxKidLen || strings.Contains(kid, "..") {
		return fmt.Errorf("%w: %q", ErrInvalidKeyID, kid)
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '/'
		if !ok {
			return fmt.Errorf("%w: %q", ErrInvalidKeyID, kid)
		}
	}
	return nil
}

// cached reports a live cache entry for kid, positive or negative.
func (f *KeyFetcher) cached(kid string) (key *rsa.PublicKey, hit bool, err error) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.keys[kid]; ok && now.Before(e.expires) {
		return e.key, true, nil
	}
	if e, ok := f.failures[kid]; ok && now.Before(e.expires) {
		return nil, true, e.err
	}
	return nil, false, nil
}

func (f *KeyFetcher) fetchAndCache(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	key, err := f.fetch(ctx, kid)
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		putBounded(f.keys, kid, cachedKey{key: key, expires: now.Add(keyTTL)}, now, func(e cachedKey) time.Time { return e.expires })
		return key, nil
	}
	// Outages are not remembered: the next install attempt should try again.
	var kse *KeyServerError
	if !errors.As(err, &kse) && f.failureTTL > 0 {
		putBounded(f.failures, kid, cachedFailure{err: err, expires: now.Add(f.failureTTL)}, now, func(e cachedFailure) time.Time { return e.expires })
	}
	return nil, err
}

// putBounded stores v unless the map is full of live entries.
func putBounded[V any](m map[string]V, k string, v V, now time.Time, expires func(V) time.Time) {
	if len(m) >= maxCacheEntries {
		for key, e := range m {
			if !now.Before(expires(e)) {
				delete(m, key)
			}
		}
		if len(m) >= maxCacheEntries {
			return
		}
	}
	m[k] = v
}

func (f *KeyFetcher) fetch(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	u := f.base + "/" + url.PathEscape(kid)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch install key %q: %w", kid, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, &KeyServerError{Err: fmt.Errorf("fetch install key %q: %w", kid, err)}
	}
	defer resp.Body.Close()

	switch code := resp.StatusCode; {
	case code == http.StatusOK:
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		return nil, &KeyServerError{Err: fmt.Errorf("fetch install key %q: status %d", kid, code)}
	default:
		// A CDN in front of a bucket answers 403 as readily as 404 for a
		// missing object; either way the kid is not one we can trust.
		return nil, fmt.Errorf("fetch install key %q: status %d: %w", kid, code, ErrKeyNotFound)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyBytes+1))
	if err != nil {
		return nil, &KeyServerError{Err: fmt.Errorf("read install key %q: %w", kid, err)}
	}
	if len(body) > maxKeyBytes {
		return nil, fmt.Errorf("install key %q: body larger than %d bytes", kid, maxKeyBytes)
	}
	key, err := parseRSAPublicKeyPEM(body)
	if err != nil {
		return nil, fmt.Errorf("install key %q: %w", kid, err)
	}
	return key, nil
}

// parseRSAPublicKeyPEM accepts exactly one "PUBLIC KEY" PEM block holding an
// RSA key of at least 2048 bits, and nothing else but whitespace.
func parseRSAPublicKeyPEM(b []byte) (*rsa.PublicKey, error) {
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM PUBLIC KEY")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("trailing data after PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	key, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, not RSA", pub)
	}
	if key.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key has %d bits, want at least %d", key.N.BitLen(), minRSABits)
	}
	return key, nil
}
