// Package metrics computes the four DORA keys and Jira cycle time from
// deployments, changes, incidents and issues, as plain values. It knows
// nothing of storage or HTTP: the store gathers the inputs, the web layer
// shows the results, and the definitions live here once (see
// docs/metrics.md for the prose and the formulas).
//
// Where Four Keys is known to be wrong, these definitions differ on purpose:
// only production-type deployments count; a change is a merged pull request
// when one exists, so squash merges are measured from the pull request's
// first commit; change failure rate counts deployments, not deployment ×
// change rows, so it never exceeds 100 %; every figure carries its sample
// size and the values it left out.
package metrics

import (
	"math"
	"slices"
	"sort"
	"time"
)

// Window is the period a figure covers, [From, To), and the time zone whose
// calendar days and weeks it is cut into.
type Window struct {
	From, To time.Time
	Location *time.Location
}

func (w Window) loc() *time.Location {
	if w.Location == nil {
		return time.UTC
	}
	return w.Location
}

// Contains reports whether t falls in the window.
func (w Window) Contains(t time.Time) bool {
	return !t.Before(w.From) && t.Before(w.To)
}

// Durations summarises a sample of durations. Median and P90 use the
// nearest-rank method on the sorted sample, so each is a value that
// actually occurred. Excluded counts values left out (non-positive ones:
// a change deployed "before" its first commit, from clock skew or automated
// commits); Pending counts items with no end yet (a change not yet deployed,
// an incident not yet resolved).
type Durations struct {
	N        int
	Excluded int
	Pending  int
	Median   time.Duration
	P90      time.Duration
}

// Summarise builds Durations from values; non-positive values are excluded.
func Summarise(values []time.Duration) Durations {
	return NewSample(values).Durations()
}

// Sample is a sample of durations ready to summarise: its positive values,
// sorted, and how many were excluded. Kept rather than summarised at once,
// it lets a period's figures be built from its parts' samples
// (MergeSamples) without sorting every value again.
type Sample struct {
	sorted   []time.Duration
	excluded int
}

// NewSample keeps the positive values of values, sorted; the others are
// counted as excluded.
func NewSample(values []time.Duration) Sample {
	s := Sample{sorted: make([]time.Duration, 0, len(values))}
	for _, v := range values {
		if v <= 0 {
			s.excluded++
			continue
		}
		s.sorted = append(s.sorted, v)
	}
	slices.Sort(s.sorted)
	return s
}

// MergedDurations summarises the values of all of parts together, as
// merging them into one sample and calling Durations would, without the
// merge: each quantile is found by a binary search over the values, counting
// the values at or below a candidate in each part. For a year's lead times
// the merge copied several hundred thousand values to read two of them.
func MergedDurations(parts ...Sample) Durations {
	var d Durations
	for _, p := range parts {
		d.N += len(p.sorted)
		d.Excluded += p.excluded
	}
	if d.N == 0 {
		return d
	}
	d.Median = kthOf(parts, rankIndex(d.N, 0.5))
	d.P90 = kthOf(parts, rankIndex(d.N, 0.9))
	return d
}

// kthOf is the value at 0-based index k of all of parts' values in order:
// the smallest value with more than k values at or below it.
func kthOf(parts []Sample, k int) time.Duration {
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for _, p := range parts {
		if len(p.sorted) > 0 {
			lo, hi = min(lo, p.sorted[0]), max(hi, p.sorted[len(p.sorted)-1])
		}
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		n := 0
		for _, p := range parts {
			n += sort.Search(len(p.sorted), func(i int) bool { return p.sorted[i] > mid })
		}
		if n > k {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// rankIndex is the 0-based index of the nearest-rank p quantile of n values.
func rankIndex(n int, p float64) int {
	return max(0, min(int(math.Ceil(p*float64(n)))-1, n-1))
}

// Durations summarises the sample.
func (s Sample) Durations() Durations {
	d := Durations{N: len(s.sorted), Excluded: s.excluded}
	if d.N == 0 {
		return d
	}
	d.Median = nearestRank(s.sorted, 0.5)
	d.P90 = nearestRank(s.sorted, 0.9)
	return d
}

// nearestRank is the smallest value with at least p of the sample at or
// below it.
func nearestRank(sorted []time.Duration, p float64) time.Duration {
	return sorted[rankIndex(len(sorted), p)]
}
