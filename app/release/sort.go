package release

import (
	"slices"
	"time"
)

// minRadixSort is the shortest slice sortDurations sorts by radix; shorter
// ones are left to slices.Sort, which is quicker for them.
const minRadixSort = 256

// sortDurations sorts v in place, in increasing order. It is a least
// significant digit radix sort, a byte at a time, skipping the bytes in
// which all values agree: a year of a busy site's lead times is hundreds
// of thousands of values, and comparison sorting them was the largest part
// of the report's own Go time.
func sortDurations(v []time.Duration) {
	if len(v) < minRadixSort {
		slices.Sort(v)
		return
	}
	// Flipping the sign bit orders negative values before positive ones
	// as unsigned integers.
	const sign = 1 << 63
	var counts [8][256]int
	for _, d := range v {
		u := uint64(d) ^ sign
		for b := range 8 {
			counts[b][byte(u>>(8*b))]++
		}
	}
	src, dst := v, make([]time.Duration, len(v))
	for b := range 8 {
		c := &counts[b]
		if c[byte((uint64(v[0])^sign)>>(8*b))] == len(v) {
			continue // every value has the same byte here
		}
		offset := 0
		for i, n := range c {
			c[i] = offset
			offset += n
		}
		shift := 8 * b
		for _, d := range src {
			k := byte((uint64(d) ^ sign) >> shift)
			dst[c[k]] = d
			c[k]++
		}
		src, dst = dst, src
	}
	if &src[0] != &v[0] {
		copy(v, src)
	}
}
