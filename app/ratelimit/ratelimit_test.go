package ratelimit

import (
	"fmt"
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustKeyed(t *testing.T, perSecond float64, burst, maxKeys int) *Keyed[string] {
	t.Helper()
	k, err := NewKeyed[string](perSecond, burst, maxKeys)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewKeyedRefusesBadSettings(t *testing.T) {
	for _, tc := range []struct {
		name           string
		rate           float64
		burst, maxKeys int
	}{
		{"zero rate", 0, 1, 1},
		{"negative rate", -1, 1, 1},
		{"NaN rate", math.NaN(), 1, 1},
		{"infinite rate", math.Inf(1), 1, 1},
		{"zero burst", 1, 0, 1},
		{"no keys", 1, 1, 0},
	} {
		if _, err := NewKeyed[int](tc.rate, tc.burst, tc.maxKeys); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// A key's burst is served at once; the next token comes 1/rate later, and
// the delay says so. Each key has a bucket of its own.
func TestReserveBurstThenDelay(t *testing.T) {
	k := mustKeyed(t, 2, 3, 10) // 2/s, burst 3
	for i := range 3 {
		if d := k.Reserve("a", t0).Delay(); d != 0 {
			t.Fatalf("token %d of the burst: delay %s", i+1, d)
		}
	}
	r := k.Reserve("a", t0)
	if d := r.Delay(); d != 500*time.Millisecond {
		t.Errorf("past the burst: delay %s, want 500ms", d)
	}
	r.Cancel()
	if d := k.Reserve("b", t0).Delay(); d != 0 {
		t.Errorf("another key: delay %s", d)
	}
	// Half a second later one token has come back.
	if d := k.Reserve("a", t0.Add(500*time.Millisecond)).Delay(); d != 0 {
		t.Errorf("after refill: delay %s", d)
	}
}

// A cancelled reservation leaves no debt: however many refused attempts a
// key made, a token is free again 1/rate after the burst ran out.
func TestCancelLeavesNoDebt(t *testing.T) {
	k := mustKeyed(t, 1, 1, 10)
	if d := k.Reserve("a", t0).Delay(); d != 0 {
		t.Fatalf("first token: delay %s", d)
	}
	for range 100 {
		r := k.Reserve("a", t0)
		if r.Delay() == 0 {
			t.Fatal("an empty bucket gave a token")
		}
		r.Cancel()
	}
	if d := k.Reserve("a", t0.Add(time.Second)).Delay(); d != 0 {
		t.Errorf("one second later: delay %s, want 0 (refused attempts left debt)", d)
	}
}

// Buckets that have refilled are dropped; past maxKeys the least recently
// used one goes even if it has not. The set never holds more than maxKeys.
func TestEvictionKeepsTheSetBounded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		step    time.Duration // between two new keys
		keys    int
		maxKeys int
		want    int // buckets held at the end
	}{
		// 1/s, burst 1: a used bucket is full again after 1 s, so with
		// new keys 2 s apart each new key finds the last one refilled.
		{"idle buckets dropped", 2 * time.Second, 1000, 100, 1},
		// Half a second apart, a key has refilled by the time the one
		// after next arrives.
		{"buckets dropped once refilled", 500 * time.Millisecond, 1000, 100, 2},
		// All keys arrive at once, none refills: the bound holds.
		{"bound holds under a burst of keys", 0, 1000, 100, 100},
		{"below the bound nothing is dropped", 0, 50, 100, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := mustKeyed(t, 1, 1, tc.maxKeys)
			now := t0
			for i := range tc.keys {
				k.Reserve(fmt.Sprint("key-", i), now)
				if n := k.Len(); n > tc.maxKeys {
					t.Fatalf("after %d keys: %d buckets, bound %d", i+1, n, tc.maxKeys)
				}
				now = now.Add(tc.step)
			}
			if n := k.Len(); n != tc.want {
				t.Errorf("%d buckets, want %d", n, tc.want)
			}
		})
	}
}

// An evicted bucket was full, so a key that comes back after eviction sees
// the same limit it would have seen had it been kept.
func TestEvictionIsInvisibleToAKeyThatComesBack(t *testing.T) {
	k := mustKeyed(t, 1, 2, 10)
	k.Reserve("a", t0)
	k.Reserve("a", t0)
	k.Reserve("b", t0.Add(5*time.Second)) // "a" has refilled and is dropped
	if n := k.Len(); n != 1 {
		t.Fatalf("%d buckets, want 1", n)
	}
	now := t0.Add(5 * time.Second)
	for i := range 2 {
		if d := k.Reserve("a", now).Delay(); d != 0 {
			t.Errorf("token %d after coming back: delay %s", i+1, d)
		}
	}
	if d := k.Reserve("a", now).Delay(); d == 0 {
		t.Error("a returning key got more than its burst")
	}
}
