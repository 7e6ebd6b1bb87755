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

// MergeSamples returns the sample of all of parts' values together. Parts
// are merged in pairs, so each value is copied about log2(len(parts))
// times.
func MergeSamples(parts ...Sample) Sample {
	var out Sample
	runs := make([][]time.Duration, 0, len(parts))
	for _, p := range parts {
		out.excluded += p.excluded
		runs = append(runs, p.sorted)
	}
	for len(runs) > 1 {
		next := runs[:0:0]
		for i := 0; i < len(runs); i += 2 {
			if i+1 == len(runs) {
				next = append(next, runs[i])
				continue
			}
			next = append(next, mergeSorted(runs[i], runs[i+1]))
		}
		runs = next
	}
	if len(runs) == 1 {
		out.sorted = runs[0]
	}
	return out
}

// mergeSorted merges two sorted slices into a new one.
func mergeSorted(a, b []time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0] < a[0] {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
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
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
