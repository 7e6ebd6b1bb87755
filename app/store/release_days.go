package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyline/keyline/app/tenant"
)

// Reads of the day rollup, release_days (migration 00013, PostgreSQL
// only): the lead and cycle times of each UTC day, per environment type,
// project, service and environment, as sorted arrays. A read takes from it
// the whole days of the window that no cut falls inside, and reads the
// facts of the rest (the window's first and last part days, and each day a
// cut splits), so its figures are exactly those of the facts. Its rows
// carry the day's start as their time: the caller only splits rows at the
// cuts, and a day no cut falls inside lies in one span between them.

// day is a UTC day: the rollup's unit.
const day = 24 * time.Hour

// dayPlan is how a rollup read covers a window: the rollup's days in
// [first, last) except split, and the facts of the spans [from[i], to[i]).
type dayPlan struct {
	first, last time.Time
	split       []time.Time
	from, to    []time.Time
}

// planDays plans the read of [from, to) split at cuts. ok is false when
// the window holds no whole day that no cut splits: the facts alone are
// then read.
func planDays(from, to time.Time, cuts []time.Time) (p dayPlan, ok bool) {
	from, to = normTime(from), normTime(to)
	// The zero time is a UTC midnight and time has no leap seconds, so
	// truncating to 24 hours gives the UTC day's start.
	p.first, p.last = from.Truncate(day), to.Truncate(day)
	if p.first.Before(from) {
		p.first = p.first.Add(day)
	}
	if !p.first.Before(p.last) {
		return dayPlan{}, false
	}
	for _, c := range cuts {
		// Not truncated like the window: a cut 500 ns after midnight
		// still splits rows of that day (a fact at midnight lies before it).
		c = c.UTC()
		if d := c.Truncate(day); !d.Equal(c) && !d.Before(p.first) && d.Before(p.last) {
			p.split = append(p.split, d)
		}
	}
	slices.SortFunc(p.split, time.Time.Compare)
	p.split = slices.CompactFunc(p.split, time.Time.Equal)
	if len(p.split) == int(p.last.Sub(p.first)/day) {
		return dayPlan{}, false
	}
	span := func(lo, hi time.Time) {
		if !lo.Before(hi) {
			return
		}
		if n := len(p.to); n > 0 && p.to[n-1].Equal(lo) {
			p.to[n-1] = hi
			return
		}
		p.from, p.to = append(p.from, lo), append(p.to, hi)
	}
	span(from, p.first)
	for _, d := range p.split {
		span(d, d.Add(day))
	}
	span(p.last, to)
	return p, true
}

// usesDays reports whether a read of sc (checked) can take the rollup,
// and its plan: on PostgreSQL, for one environment type and at most one
// project. Several types or projects must count a change or an issue
// once, at its earliest row, which sums of days cannot tell.
func (s *Store) usesDays(ctx context.Context, sc ReleaseScope) (dayPlan, bool) {
	if s.dialect != DialectPostgres || len(sc.Types) != 1 || len(sc.Projects) > 1 || ctx.Value(factsOnlyKey{}) != nil {
		return dayPlan{}, false
	}
	return planDays(sc.From, sc.To, sc.Cuts)
}

// factsOnlyKey marks a context whose reads never take the rollup: the
// store's tests read both ways and compare.
type factsOnlyKey struct{}

// readDays reads the values of measure ("lead" or "cycle") in sc through
// plan, oldest first, calling fn for each: at is a rollup day's start or a
// fact's time. table is the measure's fact table, value the SQL of a fact
// row's value as the rollup holds it, keysCol its issue key column.
func (s *Store) readDays(ctx context.Context, t *tenant.Tenant, sc ReleaseScope, plan dayPlan,
	measure, table, value, keysCol string, fn func(at time.Time, v int64)) error {
	project := ""
	if len(sc.Projects) == 1 {
		project = sc.Projects[0]
	}
	var sb strings.Builder
	sb.WriteString(`SELECT (r.day::timestamp AT TIME ZONE 'UTC') AS at, r.vals FROM release_days r
		WHERE r.tenant_id = ? AND r.measure = ? AND r.environment_type = ? AND r.project = ?
			AND r.day >= ? AND r.day < ? AND r.day <> ALL (?::date[])`)
	// A nil slice would be sent as NULL, and "<> ALL (NULL)" holds for no day.
	split := append([]time.Time{}, plan.split...)
	args := []any{t.ID, measure, string(sc.Types[0]), project, plan.first, plan.last, split}
	cond, cargs := placeFilters("r", sc)
	sb.WriteString(cond)
	args = append(args, cargs...)
	if len(plan.from) > 0 {
		// The spans drive an index range scan each.
		sb.WriteString(` UNION ALL SELECT f.deployed_at, ARRAY[` + value + `]
			FROM unnest(?::timestamptz[], ?::timestamptz[]) AS s (lo, hi)
				JOIN ` + table + ` f ON f.deployed_at >= s.lo AND f.deployed_at < s.hi
			WHERE f.tenant_id = ? AND f.environment_type = ?`)
		args = append(args, plan.from, plan.to, t.ID, string(sc.Types[0]))
		cond, cargs := factFilters(sc, keysCol)
		sb.WriteString(cond)
		args = append(args, cargs...)
	}
	sb.WriteString(` ORDER BY 1`)
	var (
		raw  rawRows
		at   time.Time
		vals []int64
	)
	return s.eachRow(ctx, sb.String(), args, func(r rowScanner) error {
		if v := raw.values(r, oidTimestamptz, oidInt8Array); v != nil {
			t, ok, err := rawTime(v[0])
			if err != nil || !ok {
				return fmt.Errorf("day: %w", cmp.Or(err, errRawNull))
			}
			return rawInt8s(v[1], func(n int64) { fn(t, n) })
		}
		if err := r.Scan(&at, &vals); err != nil {
			return err
		}
		for _, n := range vals {
			fn(fromDB(at), n)
		}
		return nil
	})
}

// Values of the rollup's measures as its fact tables give them.
const (
	leadDayValue  = `COALESCE(f.lead_seconds, 0)`
	cycleDayValue = `COALESCE(((EXTRACT(EPOCH FROM f.deployed_at) - EXTRACT(EPOCH FROM f.issue_started_at))
		* 1000000)::bigint, 0)`
)

// oidInt8Array is PostgreSQL's bigint[].
const oidInt8Array = 1016

// rawInt8s decodes a binary one-dimensional bigint[] without NULLs,
// calling fn for each element in order.
func rawInt8s(b []byte, fn func(int64)) error {
	if b == nil {
		return fmt.Errorf("values: %w", errRawNull)
	}
	if len(b) < 12 {
		return fmt.Errorf("store: bigint[] of %d bytes", len(b))
	}
	ndim, elem := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[8:])
	if ndim == 0 {
		return nil
	}
	if ndim != 1 || elem != oidInt8 || len(b) < 20 {
		return fmt.Errorf("store: bigint[] of %d dimensions, element type %d", ndim, elem)
	}
	n := int(binary.BigEndian.Uint32(b[12:]))
	b = b[20:]
	if len(b) != n*12 {
		return fmt.Errorf("store: bigint[] of %d elements in %d bytes", n, len(b))
	}
	for i := 0; i < n; i, b = i+1, b[12:] {
		if binary.BigEndian.Uint32(b) != 8 {
			return errors.New("store: bigint[] element not of 8 bytes")
		}
		fn(int64(binary.BigEndian.Uint64(b[4:])))
	}
	return nil
}
