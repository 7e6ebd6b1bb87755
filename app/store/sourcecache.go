package store

import (
	"sync"
	"time"

	"github.com/keyline/keyline/app/tenant"
)

// Every webhook delivery starts with SourceByToken; under load that lookup
// (a query and two decryptions) is a sizeable share of a delivery's cost,
// and it answers the same few hundred tokens over and over. sourceCache
// keeps answers briefly. A change made through this store (rotation,
// deletion, new rules, a tenant's install or uninstall) drops the affected
// entries at once; a change made by another process (a replica, the CLI)
// is seen within sourceCacheTTL.

// sourceCacheTTL bounds how long another process's change to a source may
// go unseen: a secret rotated with no overlap elsewhere stops verifying
// here within this time.
const sourceCacheTTL = 5 * time.Second

// maxCachedSources bounds the cache; when full it is emptied, which costs
// one lookup per token and keeps the code free of eviction order.
const maxCachedSources = 10000

type cachedSource struct {
	t       tenant.Tenant
	src     Source
	expires time.Time
}

type sourceCache struct {
	mu      sync.Mutex
	entries map[string]cachedSource // by token hash
}

func (c *sourceCache) get(key string, now time.Time) (*tenant.Tenant, *Source, bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || now.After(e.expires) {
		return nil, nil, false
	}
	t, src := e.t, e.src
	if src.PreviousSecretUntil != nil && !src.PreviousSecretUntil.After(now) {
		// The rotation overlap ended while cached: only the current secret verifies.
		src.PreviousSecretUntil = nil
		src.Secrets = src.Secrets[:1]
	}
	return &t, &src, true
}

func (c *sourceCache) put(key string, t *tenant.Tenant, src *Source, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCachedSources {
		c.entries = make(map[string]cachedSource)
	}
	c.entries[key] = cachedSource{t: *t, src: *src, expires: now.Add(sourceCacheTTL)}
}

// forgetSource drops the entries of t's source sourceID; a nil t (a call
// that will fail its tenant check) drops nothing.
func (c *sourceCache) forgetSource(t *tenant.Tenant, sourceID string) {
	if t == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.src.TenantID == t.ID && e.src.ID == sourceID {
			delete(c.entries, k)
		}
	}
}

// flush drops every entry; tenant changes are rare enough for that.
func (c *sourceCache) flush() {
	c.mu.Lock()
	c.entries = nil
	c.mu.Unlock()
}
