// Package ratelimit holds token buckets by key (one per webhook source, one
// per site), built on golang.org/x/time/rate, in a set whose memory stays
// bounded however many keys pass through it.
package ratelimit

import (
	"container/list"
	"errors"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Keyed is a set of token buckets of one rate and burst, one per key. A key
// gets its bucket, full, on first use. Buckets are kept in least-recently-used
// order: a bucket that has refilled completely is dropped, since a new one
// would be the same, and past MaxKeys the least recently used bucket is
// dropped even if it has not, so the set never holds more than MaxKeys
// buckets. It is safe for concurrent use.
type Keyed[K comparable] struct {
	limit   rate.Limit
	burst   int
	maxKeys int

	mu      sync.Mutex
	entries map[K]*list.Element
	order   *list.List // of *entry[K], most recently used at the front
}

type entry[K comparable] struct {
	key K
	lim *rate.Limiter
}

// NewKeyed returns buckets that refill at perSecond tokens a second and hold
// at most burst, keeping at most maxKeys of them.
func NewKeyed[K comparable](perSecond float64, burst, maxKeys int) (*Keyed[K], error) {
	switch {
	case perSecond <= 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0):
		return nil, errors.New("ratelimit: the rate must be a positive number")
	case burst < 1:
		return nil, errors.New("ratelimit: the burst must be at least 1")
	case maxKeys < 1:
		return nil, errors.New("ratelimit: at least one key must fit")
	}
	return &Keyed[K]{limit: rate.Limit(perSecond), burst: burst, maxKeys: maxKeys,
		entries: map[K]*list.Element{}, order: list.New()}, nil
}

// Reservation is one token taken from a key's bucket at a given time.
type Reservation struct {
	r  *rate.Reservation
	at time.Time
}

// Delay is how long after the reservation's time the token is available:
// 0 when the bucket had one, more when the caller would have to wait.
func (r Reservation) Delay() time.Duration {
	if !r.r.OK() {
		return rate.InfDuration
	}
	return r.r.DelayFrom(r.at)
}

// Cancel gives the token back, for a caller that will not act on it (it
// was refused by this bucket or another). Tokens that later reservations of
// the same bucket have already counted on are not given back.
func (r Reservation) Cancel() { r.r.CancelAt(r.at) }

// Reserve takes one token from key's bucket at now. A caller that is not
// going to wait out a positive Delay must Cancel the reservation, or the
// bucket stays in debt for it.
func (k *Keyed[K]) Reserve(key K, now time.Time) Reservation {
	k.mu.Lock()
	lim := k.touch(key, now)
	k.mu.Unlock()
	return Reservation{r: lim.ReserveN(now, 1), at: now}
}

// touch returns key's limiter, made most recently used, and drops buckets
// from the least recently used end that are full or beyond maxKeys. Each
// bucket is dropped at most once, so the work is constant per call on
// average. k.mu must be held.
func (k *Keyed[K]) touch(key K, now time.Time) *rate.Limiter {
	el, ok := k.entries[key]
	if ok {
		k.order.MoveToFront(el)
	} else {
		el = k.order.PushFront(&entry[K]{key: key, lim: rate.NewLimiter(k.limit, k.burst)})
		k.entries[key] = el
	}
	for back := k.order.Back(); back != nil && back != el; back = k.order.Back() {
		e := back.Value.(*entry[K])
		if k.order.Len() <= k.maxKeys && e.lim.TokensAt(now) < float64(k.burst) {
			break
		}
		k.order.Remove(back)
		delete(k.entries, e.key)
	}
	return el.Value.(*entry[K]).lim
}

// Len is the number of buckets held.
func (k *Keyed[K]) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.order.Len()
}
