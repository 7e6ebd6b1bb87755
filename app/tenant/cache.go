package tenant

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// ErrNotFound means no installed tenant has the given app key and client key.
// Uninstalled tenants are reported the same way: for authentication they do
// not exist.
var ErrNotFound = errors.New("tenant not found")

// Loader reads one tenant from the database, in any state. It returns an
// error wrapping ErrNotFound when there is no such tenant.
type Loader interface {
	TenantByClientKey(ctx context.Context, appKey, clientKey string) (*Tenant, error)
}

// Cache defaults.
const (
	DefaultTTL          = 30 * time.Second
	DefaultNegativeTTL  = 2 * time.Second
	DefaultFreshGap     = time.Second
	DefaultMaxEntries   = 10_000
	defaultLoadTimeout  = 5 * time.Second
	flightKeySeparator  = "\x00"
	flightKeyFreshLabel = "fresh"
)

// Cache answers tenant lookups from memory. Entries live for a TTL (shorter
// for misses, which blunts floods of requests naming unknown issuers);
// concurrent misses for one key share a single database query; Invalidate
// and Flush drop entries when another replica or this one changes a tenant.
//
// Tenant returns a pointer shared by every caller until the entry expires:
// callers must not modify the Tenant or its SharedSecret. A Cache is safe for
// concurrent use.
type Cache struct {
	loader      Loader
	ttl         time.Duration
	negTTL      time.Duration
	freshGap    time.Duration
	maxEntries  int
	loadTimeout time.Duration
	now         func() time.Time

	mu      sync.RWMutex
	entries map[cacheKey]*cacheEntry
	// epoch counts invalidations. A load that started in an older epoch may
	// have read a row that has since changed, so its result is not stored
	// and later callers do not join it.
	epoch uint64
	group singleflight.Group
}

type cacheKey struct{ appKey, clientKey string }

type cacheEntry struct {
	tenant   *Tenant // nil for a negative entry
	loadedAt time.Time
	expires  time.Time
}

// CacheOption configures a Cache.
type CacheOption func(*Cache)

// WithTTL sets how long a found, installed tenant is served from memory.
func WithTTL(d time.Duration) CacheOption { return func(c *Cache) { c.ttl = d } }

// WithNegativeTTL sets how long "not found" and "uninstalled" are served from memory.
func WithNegativeTTL(d time.Duration) CacheOption { return func(c *Cache) { c.negTTL = d } }

// WithFreshGap sets the minimum age of an entry before a fresh lookup reloads
// it. The verifier asks for a fresh lookup whenever a signature fails, so
// without this a flood of forged tokens naming a real client key would turn
// into one query each.
func WithFreshGap(d time.Duration) CacheOption { return func(c *Cache) { c.freshGap = d } }

// WithMaxEntries bounds the number of cached keys, so random issuers cannot
// grow memory without limit.
func WithMaxEntries(n int) CacheOption { return func(c *Cache) { c.maxEntries = n } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) CacheOption { return func(c *Cache) { c.now = now } }

// NewCache returns a Cache over loader.
func NewCache(loader Loader, opts ...CacheOption) *Cache {
	c := &Cache{
		loader:      loader,
		ttl:         DefaultTTL,
		negTTL:      DefaultNegativeTTL,
		freshGap:    DefaultFreshGap,
		maxEntries:  DefaultMaxEntries,
		loadTimeout: defaultLoadTimeout,
		now:         time.Now,
		entries:     make(map[cacheKey]*cacheEntry),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Tenant returns the installed tenant for (appKey, clientKey), or an error
// wrapping ErrNotFound. With fresh set it skips the cached entry (unless that
// entry is younger than the fresh gap) and reloads from the database; the
// verifier does so when a signature fails, in case the tenant reinstalled
// with a new secret through another replica.
func (c *Cache) Tenant(ctx context.Context, appKey, clientKey string, fresh bool) (*Tenant, error) {
	now := c.now()
	k := cacheKey{appKey, clientKey}
	c.mu.RLock()
	e, ok := c.entries[k]
	epoch := c.epoch
	c.mu.RUnlock()
	if ok && now.Before(e.expires) && (!fresh || now.Sub(e.loadedAt) < c.freshGap) {
		return e.result()
	}
	return c.load(ctx, k, epoch, fresh)
}

func (e *cacheEntry) result() (*Tenant, error) {
	if e.tenant == nil {
		return nil, ErrNotFound
	}
	return e.tenant, nil
}

// load queries the database once per key and epoch, however many callers
// miss at the same time. Fresh lookups form their own flight so they never
// join a plain load that may have started before the change they look for.
func (c *Cache) load(ctx context.Context, k cacheKey, epoch uint64, fresh bool) (*Tenant, error) {
	fk := k.appKey + flightKeySeparator + k.clientKey + flightKeySeparator + strconv.FormatUint(epoch, 10)
	if fresh {
		fk += flightKeySeparator + flightKeyFreshLabel
	}
	ch := c.group.DoChan(fk, func() (any, error) {
		// The shared load must not die with the first caller's context,
		// since others may be waiting on it; it gets its own deadline.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.loadTimeout)
		defer cancel()
		t, err := c.loader.TenantByClientKey(lctx, k.appKey, k.clientKey)
		switch {
		case errors.Is(err, ErrNotFound):
			c.store(k, epoch, nil)
			return nil, ErrNotFound
		case err != nil:
			// Database trouble is not cached: the next request retries.
			return nil, fmt.Errorf("tenant cache: load: %w", err)
		case t == nil || !t.Installed:
			c.store(k, epoch, nil)
			return nil, ErrNotFound
		}
		c.store(k, epoch, t)
		return t, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Tenant), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("tenant cache: %w", ctx.Err())
	}
}

// store records a load result unless an invalidation happened since the load
// began.
func (c *Cache) store(k cacheKey, epoch uint64, t *Tenant) {
	now := c.now()
	ttl := c.ttl
	if t == nil {
		ttl = c.negTTL
	}
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if _, exists := c.entries[k]; !exists && len(c.entries) >= c.maxEntries {
		c.evictLocked(now)
		if len(c.entries) >= c.maxEntries {
			if t == nil {
				// Full of live entries: keep them rather than make room
				// for a miss, which is the cheap thing to recompute.
				return
			}
			c.evictOneLocked()
		}
	}
	c.entries[k] = &cacheEntry{tenant: t, loadedAt: now, expires: now.Add(ttl)}
}

// evictLocked removes expired entries.
func (c *Cache) evictLocked(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
}

// evictOneLocked removes one entry, preferring a negative one. Map iteration
// order is random, which makes this a random eviction.
func (c *Cache) evictOneLocked() {
	var victim cacheKey
	found := false
	for k, e := range c.entries {
		victim, found = k, true
		if e.tenant == nil {
			break
		}
	}
	if found {
		delete(c.entries, victim)
	}
}

// Invalidate drops the entry for one tenant, and makes any load already in
// flight for it not be cached. Call it after changing a tenant and when a
// change notification arrives from another replica.
func (c *Cache) Invalidate(appKey, clientKey string) {
	c.mu.Lock()
	delete(c.entries, cacheKey{appKey, clientKey})
	c.epoch++
	c.mu.Unlock()
}

// Flush drops every entry. Call it when change notifications may have been
// missed, e.g. after the watcher reconnects.
func (c *Cache) Flush() {
	c.mu.Lock()
	clear(c.entries)
	c.epoch++
	c.mu.Unlock()
}

// Len reports the number of cached keys, expired ones included until they
// are evicted.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
