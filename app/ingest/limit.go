package ingest

import (
	"fmt"
	"sync"
	"time"

	"github.com/keyline/keyline/app/ratelimit"
)

// maxLimitedKeys bounds the buckets each limit keeps: sources and sites that
// sent a delivery recently. Buckets are made only for sources the store
// found, so the bound is reached only by that many real, busy sources; past
// it the least recently used bucket is dropped, which at worst gives that
// source a fresh burst.
const maxLimitedKeys = 100_000

// Which limit refused a delivery, as Refusal.Limit says it.
const (
	LimitSource = "source"
	LimitSite   = "site"
)

// LimitConfig is the rate of deliveries each source and each site may send
// to this replica: Rate per second on average, up to Burst at once. A zero
// Rate turns that limit off.
type LimitConfig struct {
	SourceRate  float64
	SourceBurst int
	SiteRate    float64
	SiteBurst   int
}

// Limits holds the per-source and per-site token buckets of one replica.
// It is safe for concurrent use.
type Limits struct {
	source *ratelimit.Keyed[string]
	site   *ratelimit.Keyed[int64]
	now    func() time.Time
	// mu makes taking both tokens, and giving one back when the other is
	// refused, one step: interleaved with another delivery's, a give-back
	// could be lost and leave a bucket in debt.
	mu sync.Mutex
}

// NewLimits returns the limits of cfg, reading the time from now (time.Now
// when nil), or nil when both limits are off.
func NewLimits(cfg LimitConfig, now func() time.Time) (*Limits, error) {
	if now == nil {
		now = time.Now
	}
	l := &Limits{now: now}
	var err error
	if cfg.SourceRate > 0 {
		if l.source, err = ratelimit.NewKeyed[string](cfg.SourceRate, cfg.SourceBurst, maxLimitedKeys); err != nil {
			return nil, fmt.Errorf("source limit: %w", err)
		}
	}
	if cfg.SiteRate > 0 {
		if l.site, err = ratelimit.NewKeyed[int64](cfg.SiteRate, cfg.SiteBurst, maxLimitedKeys); err != nil {
			return nil, fmt.Errorf("site limit: %w", err)
		}
	}
	if l.source == nil && l.site == nil {
		return nil, nil
	}
	return l, nil
}

// Refusal says which limit refused a delivery and when the sender may try
// again (at least one second, the unit of Retry-After).
type Refusal struct {
	Limit      string
	RetryAfter time.Duration
}

// Allow takes one token from the source's bucket and one from its site's.
// When either is empty it takes none, and says which limit was hit and how
// long until a token is free. A nil Limits allows everything.
func (l *Limits) Allow(tenantID int64, sourceID string) (Refusal, bool) {
	if l == nil {
		return Refusal{}, true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var src ratelimit.Reservation
	if l.source != nil {
		src = l.source.Reserve(sourceID, now)
		if d := src.Delay(); d > 0 {
			src.Cancel()
			return Refusal{Limit: LimitSource, RetryAfter: retryAfter(d)}, false
		}
	}
	if l.site != nil {
		site := l.site.Reserve(tenantID, now)
		if d := site.Delay(); d > 0 {
			site.Cancel()
			if l.source != nil {
				src.Cancel()
			}
			return Refusal{Limit: LimitSite, RetryAfter: retryAfter(d)}, false
		}
	}
	return Refusal{}, true
}

// Buckets is how many source and site buckets are held, for tests and for
// judging the memory bound.
func (l *Limits) Buckets() (sources, sites int) {
	if l == nil {
		return 0, 0
	}
	if l.source != nil {
		sources = l.source.Len()
	}
	if l.site != nil {
		sites = l.site.Len()
	}
	return sources, sites
}

// retryAfter rounds a wait up to whole seconds, Retry-After's unit: a
// sender told 0 would come straight back.
func retryAfter(d time.Duration) time.Duration {
	s := (d + time.Second - 1) / time.Second
	return max(s, 1) * time.Second
}
