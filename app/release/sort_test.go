package release

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestSortDurationsMatchesSort checks the radix sort against slices.Sort
// on random values of the shapes the reports sort (whole seconds, as lead
// times are), with ties, negative and extreme values, and lengths on both
// sides of minRadixSort.
func TestSortDurationsMatchesSort(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 5))
	gens := map[string]func() time.Duration{
		"seconds":   func() time.Duration { return time.Duration(rnd.IntN(3*7*24*3600)) * time.Second },
		"ties":      func() time.Duration { return time.Duration(rnd.IntN(5)) * time.Hour },
		"signed":    func() time.Duration { return time.Duration(rnd.Int64N(1<<40) - 1<<39) },
		"full":      func() time.Duration { return time.Duration(rnd.Uint64()) },
		"extremes":  func() time.Duration { return []time.Duration{math.MinInt64, -1, 0, 1, math.MaxInt64}[rnd.IntN(5)] },
		"one value": func() time.Duration { return 42 * time.Minute },
	}
	for name, gen := range gens {
		for _, n := range []int{0, 1, 2, minRadixSort - 1, minRadixSort, minRadixSort + 1, 1000, 20_000} {
			v := make([]time.Duration, n)
			for i := range v {
				v[i] = gen()
			}
			want := slices.Clone(v)
			slices.Sort(want)
			sortDurations(v)
			if !slices.Equal(v, want) {
				t.Errorf("%s, %d values: not sorted as slices.Sort sorts them", name, n)
			}
		}
	}
}
