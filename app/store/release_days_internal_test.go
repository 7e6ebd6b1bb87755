package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// planSpan is a span of a dayPlan's facts.
type planSpan struct{ from, to time.Time }

func (s planSpan) String() string {
	return "[" + s.from.UTC().Format(time.RFC3339Nano) + ", " + s.to.UTC().Format(time.RFC3339Nano) + ")"
}

func TestPlanDays(t *testing.T) {
	h := time.Hour
	// d(n) is the UTC midnight n days after a Monday; the plan's times are
	// compared with Equal, so zones and monotonic readings do not matter.
	base := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	d := func(n int) time.Time { return base.AddDate(0, 0, n) }
	kolkata := time.FixedZone("IST", 5*3600+1800)
	cases := []struct {
		name        string
		from, to    time.Time
		cuts        []time.Time
		ok          bool
		first, last time.Time
		split       []time.Time
		spans       []planSpan // the facts' spans, in order
	}{
		{name: "window at midnights, no cuts: all rollup",
			from: d(0), to: d(3), ok: true, first: d(0), last: d(3)},
		{name: "one whole day",
			from: d(0), to: d(1), ok: true, first: d(0), last: d(1)},
		{name: "window off midnight: the part days are facts",
			from: d(0).Add(6 * h), to: d(3).Add(5 * h), ok: true, first: d(1), last: d(3),
			spans: []planSpan{{d(0).Add(6 * h), d(1)}, {d(3), d(3).Add(5 * h)}}},
		{name: "window starting at midnight and ending off it",
			from: d(0), to: d(2).Add(time.Microsecond), ok: true, first: d(0), last: d(2),
			spans: []planSpan{{d(2), d(2).Add(time.Microsecond)}}},
		{name: "window starting a microsecond after midnight",
			from: d(0).Add(time.Microsecond), to: d(2), ok: true, first: d(1), last: d(2),
			spans: []planSpan{{d(0).Add(time.Microsecond), d(1)}}},
		{name: "shorter than a day inside one day",
			from: d(0).Add(h), to: d(0).Add(5 * h)},
		{name: "shorter than a day across midnight",
			from: d(0).Add(20 * h), to: d(1).Add(4 * h)},
		{name: "a day long but off midnight: no whole day",
			from: d(0).Add(h), to: d(1).Add(h)},
		{name: "cuts at UTC midnight split nothing",
			from: d(0), to: d(5), cuts: []time.Time{d(1), d(2), d(4)}, ok: true, first: d(0), last: d(5)},
		{name: "midnight cuts given in another zone split nothing",
			from: d(0), to: d(5), cuts: []time.Time{d(2).In(kolkata)}, ok: true, first: d(0), last: d(5)},
		{name: "cuts inside days split them",
			from: d(0), to: d(5), cuts: []time.Time{d(1).Add(5 * h), d(3).Add(18*h + 30*time.Minute)},
			ok: true, first: d(0), last: d(5), split: []time.Time{d(1), d(3)},
			spans: []planSpan{{d(1), d(2)}, {d(3), d(4)}}},
		{name: "a local midnight (Kolkata) is inside a UTC day",
			from: d(0), to: d(5),
			cuts: []time.Time{time.Date(2025, 3, 5, 0, 0, 0, 0, kolkata)}, // d(1) + 18:30
			ok:   true, first: d(0), last: d(5), split: []time.Time{d(1)}, spans: []planSpan{{d(1), d(2)}}},
		{name: "unsorted and duplicate cuts split a day once",
			from: d(0), to: d(5), cuts: []time.Time{d(3).Add(h), d(1).Add(5 * h), d(1).Add(5 * h), d(1).Add(7 * h)},
			ok: true, first: d(0), last: d(5), split: []time.Time{d(1), d(3)},
			spans: []planSpan{{d(1), d(2)}, {d(3), d(4)}}},
		{name: "cuts outside the window or in its part days split no rollup day",
			from: d(0).Add(6 * h), to: d(3).Add(5 * h),
			cuts: []time.Time{d(-1).Add(3 * h), d(0).Add(8 * h), d(3).Add(2 * h), d(5).Add(3 * h), d(0).Add(6 * h)},
			ok:   true, first: d(1), last: d(3),
			spans: []planSpan{{d(0).Add(6 * h), d(1)}, {d(3), d(3).Add(5 * h)}}},
		{name: "a cut less than a microsecond after midnight splits its day",
			from: d(0), to: d(3), cuts: []time.Time{d(1).Add(500 * time.Nanosecond)},
			ok: true, first: d(0), last: d(3), split: []time.Time{d(1)}, spans: []planSpan{{d(1), d(2)}}},
		{name: "every day split: facts alone",
			from: d(0), to: d(2), cuts: []time.Time{d(0).Add(h), d(1).Add(h)}},
		{name: "every whole day split, with part days: facts alone",
			from: d(0).Add(h), to: d(3).Add(h), cuts: []time.Time{d(1).Add(h), d(2).Add(23 * h)}},
		{name: "adjacent spans merge",
			from: d(0).Add(6 * h), to: d(6).Add(5 * h),
			cuts: []time.Time{d(1).Add(h), d(2).Add(h), d(5).Add(h)},
			ok:   true, first: d(1), last: d(6), split: []time.Time{d(1), d(2), d(5)},
			// [from, d1) + d1 + d2 form one span; d5 + [d6, to) another.
			spans: []planSpan{{d(0).Add(6 * h), d(3)}, {d(5), d(6).Add(5 * h)}}},
		{name: "times are normalised to UTC microseconds",
			from: d(0).Add(6*h + 1500*time.Nanosecond).In(kolkata), to: d(2).In(kolkata),
			ok: true, first: d(1), last: d(2),
			spans: []planSpan{{d(0).Add(6*h + time.Microsecond), d(1)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cuts := slices.Clone(c.cuts)
			p, ok := planDays(c.from, c.to, cuts)
			if !slices.Equal(cuts, c.cuts) {
				t.Errorf("planDays changed its cuts: %v, was %v", cuts, c.cuts)
			}
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v (plan: days [%v, %v), split %v, spans from %v to %v)",
					ok, c.ok, p.first, p.last, p.split, p.from, p.to)
			}
			if !ok {
				return
			}
			if !p.first.Equal(c.first) || !p.last.Equal(c.last) {
				t.Errorf("rollup days [%v, %v), want [%v, %v)", p.first, p.last, c.first, c.last)
			}
			if !slices.EqualFunc(p.split, c.split, time.Time.Equal) {
				t.Errorf("split days %v, want %v", p.split, c.split)
			}
			if len(p.from) != len(p.to) {
				t.Fatalf("%d span starts, %d ends", len(p.from), len(p.to))
			}
			var got []planSpan
			for i := range p.from {
				got = append(got, planSpan{p.from[i], p.to[i]})
			}
			if !slices.EqualFunc(got, c.spans, func(a, b planSpan) bool { return a.from.Equal(b.from) && a.to.Equal(b.to) }) {
				t.Errorf("fact spans %v, want %v", got, c.spans)
			}
			checkPlanCovers(t, c.from, c.to, c.cuts, p)
		})
	}
}

// checkPlanCovers checks what the read relies on, whatever the case: the
// facts' spans and the rollup's days (whole UTC days, none split by a cut)
// cover the window exactly once.
func checkPlanCovers(t *testing.T, from, to time.Time, cuts []time.Time, p dayPlan) {
	t.Helper()
	from, to = normTime(from), normTime(to)
	type piece struct{ lo, hi time.Time }
	var pieces []piece
	for i := range p.from {
		if !p.from[i].Before(p.to[i]) {
			t.Errorf("empty span [%v, %v)", p.from[i], p.to[i])
		}
		if i > 0 && !p.to[i-1].Before(p.from[i]) {
			t.Errorf("spans %d and %d touch or overlap: not merged", i-1, i)
		}
		pieces = append(pieces, piece{p.from[i], p.to[i]})
	}
	for dd := p.first; dd.Before(p.last); dd = dd.Add(day) {
		if slices.ContainsFunc(p.split, dd.Equal) {
			continue
		}
		for _, c := range cuts {
			if c = normTime(c); c.After(dd) && c.Before(dd.Add(day)) {
				t.Errorf("rollup day %v has cut %v inside", dd, c)
			}
		}
		pieces = append(pieces, piece{dd, dd.Add(day)})
	}
	slices.SortFunc(pieces, func(a, b piece) int { return a.lo.Compare(b.lo) })
	at := from
	for _, pc := range pieces {
		if !pc.lo.Equal(at) {
			t.Errorf("the plan covers [%v, %v) next, at %v", pc.lo, pc.hi, at)
		}
		at = pc.hi
	}
	if !at.Equal(to) {
		t.Errorf("the plan ends at %v, not %v", at, to)
	}
}

func TestRawInt8s(t *testing.T) {
	m := pgtype.NewMap()
	encode := func(t *testing.T, oid uint32, v any) []byte {
		t.Helper()
		b, err := m.Encode(oid, pgtype.BinaryFormatCode, v, nil)
		if err != nil {
			t.Fatalf("encode %v: %v", v, err)
		}
		return b
	}
	decode := func(b []byte) ([]int64, error) {
		var out []int64
		err := rawInt8s(b, func(n int64) { out = append(out, n) })
		return out, err
	}
	t.Run("round trip", func(t *testing.T) {
		for _, vals := range [][]int64{
			{},
			{0},
			{-1, 0, 1},
			{math.MinInt64, -1 << 40, -86400, 3600, 1 << 33, math.MaxInt64},
			{7, 7, 7, 7},
			func() []int64 { // enough elements to cross any small buffer
				out := make([]int64, 1000)
				for i := range out {
					out[i] = int64(i-500) * 1_000_003_007
				}
				return out
			}(),
		} {
			b := encode(t, pgtype.Int8ArrayOID, vals)
			got, err := decode(b)
			if err != nil {
				t.Errorf("%v: %v", vals, err)
				continue
			}
			if !slices.Equal(got, vals) {
				t.Errorf("decoded %v, want %v", got, vals)
			}
			// pgtype.FlatArray is another value pgx encodes: the same bytes.
			if b2 := encode(t, pgtype.Int8ArrayOID, pgtype.FlatArray[int64](vals)); string(b2) != string(b) {
				t.Errorf("%v: encodings differ", vals)
			}
		}
	})
	one := encode(t, pgtype.Int8ArrayOID, []int64{1, 2, 3})
	withNull := encode(t, pgtype.Int8ArrayOID, []*int64{new(int64), nil})
	twoDims := encode(t, pgtype.Int8ArrayOID, pgtype.Array[int64]{Elements: []int64{1, 2, 3, 4}, Valid: true,
		Dims: []pgtype.ArrayDimension{{Length: 2, LowerBound: 1}, {Length: 2, LowerBound: 1}}})
	int4s := encode(t, pgtype.Int4ArrayOID, []int32{1, 2})
	texts := encode(t, pgtype.TextArrayOID, []string{"12345678"})
	// An array claiming more elements than it holds.
	overlong := slices.Clone(one)
	binary.BigEndian.PutUint32(overlong[12:], 4)
	// Elements of other lengths, in as many bytes as bigints would take,
	// so that only the elements' own lengths tell.
	header := slices.Clone(one[:20])
	binary.BigEndian.PutUint32(header[12:], 2)
	oddLengths := slices.Concat(header, []byte{0, 0, 0, 4, 0, 0, 0, 1}, []byte{0, 0, 0, 12}, make([]byte, 12))
	nullPadded := slices.Concat(header, []byte{0xff, 0xff, 0xff, 0xff}, []byte{0, 0, 0, 16}, make([]byte, 16))
	binary.BigEndian.PutUint32(nullPadded[4:], 1) // has NULLs
	// Four dimensions whose extra headers (length, lower bound) read as two
	// bigint elements, so that only the dimension count tells.
	fourDims := slices.Clone(one[:20])
	binary.BigEndian.PutUint32(fourDims, 4)
	for _, n := range []uint32{8, 1, 1, 8, 1, 1} {
		fourDims = binary.BigEndian.AppendUint32(fourDims, n)
	}
	fourDims = append(fourDims, one[20:32]...)
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"NULL", nil},
		{"empty bytes", []byte{}},
		{"truncated header", one[:8]},
		{"header without dimension", one[:16]},
		{"truncated element", one[:len(one)-1]},
		{"missing element", one[:len(one)-12]},
		{"trailing bytes", append(slices.Clone(one), 0)},
		{"more elements claimed", overlong},
		{"two dimensions", twoDims},
		{"four dimensions, sized as one", fourDims},
		{"element type int4", int4s},
		{"element type text", texts},
		{"element NULL", withNull},
		{"elements of 4 and 12 bytes", oddLengths},
		{"element NULL, then one of 16 bytes", nullPadded},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := decode(c.b)
			if err == nil {
				t.Errorf("% x decoded as %v without error", c.b, got)
			}
		})
	}
	t.Run("encodings as assumed", func(t *testing.T) {
		// The malformed cases above are only malformed if pgx encoded what
		// they assume.
		for _, c := range []struct {
			name       string
			b          []byte
			ndim, elem uint32
		}{
			{"two dimensions", twoDims, 2, pgtype.Int8OID},
			{"int4", int4s, 1, pgtype.Int4OID},
			{"null element", withNull, 1, pgtype.Int8OID},
		} {
			if got := fmt.Sprint(binary.BigEndian.Uint32(c.b), binary.BigEndian.Uint32(c.b[8:])); got != fmt.Sprint(c.ndim, c.elem) {
				t.Errorf("%s: dimensions and element type %s, want %d %d", c.name, got, c.ndim, c.elem)
			}
		}
		if binary.BigEndian.Uint32(withNull[4:]) != 1 {
			t.Error("the array with a NULL element does not say it has NULLs")
		}
	})
}
