package web

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/metrics"
	"github.com/keyline/keyline/app/release"
	"github.com/keyline/keyline/app/store"
)

// Bounds and defaults of the release metrics' parameters.
const (
	// defaultReleaseDays is the window when none is given: a quarter is
	// long enough for a trend and short enough to be about the team now.
	defaultReleaseDays = 90
	maxReleaseDays     = int(store.MaxReleaseWindow / (24 * time.Hour))
	// slowestShown is how many of the slowest changes a page lists.
	slowestShown = 10
	maxTimeZone  = 64
)

// releaseParams are the release metrics' parameters, checked, with the
// values the form echoes back.
type releaseParams struct {
	filter   release.Filter
	from, to string // "2006-01-02", to inclusive
	timeZone string
}

// parseReleaseParams reads a release filter from a query: from and to
// (dates, to inclusive) or days (ending today), tz (an IANA zone), service,
// environment, year (the DORA benchmark) and types (the environment types
// counted as production). Every mistake is named in one 400.
func parseReleaseParams(q url.Values, now time.Time) (releaseParams, error) {
	var p releaseParams
	var problems []string
	loc := time.UTC
	if tz := strings.TrimSpace(q.Get("tz")); tz != "" {
		l, err := loadZone(tz)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%q is not a time zone name such as Europe/Berlin.", truncate(tz, maxTimeZone)))
		} else {
			loc = l
		}
	}
	p.timeZone = loc.String()
	// Dates are kept as UTC midnights, where adding days is exact, and
	// become instants at the start of their day in loc (metrics.DayStart:
	// some zones skip or repeat midnight).
	today := now.In(loc)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
	from, to := today.AddDate(0, 0, -(defaultReleaseDays-1)), today
	if d := q.Get("days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > maxReleaseDays {
			problems = append(problems, fmt.Sprintf("days must be a whole number from 1 to %d.", maxReleaseDays))
		} else {
			from = today.AddDate(0, 0, -(n - 1))
		}
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		v := strings.TrimSpace(q.Get(f.name))
		if v == "" {
			continue
		}
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s must be a date such as 2026-09-01.", f.name))
			continue
		}
		*f.dst = d
	}
	start := metrics.DayStart(from.Year(), from.Month(), from.Day(), loc)
	end := metrics.DayStart(to.Year(), to.Month(), to.Day()+1, loc) // to is inclusive: the window ends as the next day starts
	switch {
	case !start.Before(end):
		problems = append(problems, "from must not be after to.")
	case end.Sub(start) > store.MaxReleaseWindow:
		problems = append(problems, fmt.Sprintf("The period can be at most %d days.", maxReleaseDays))
	}
	p.from, p.to = from.Format(time.DateOnly), to.Format(time.DateOnly)
	p.filter.Window = metrics.Window{From: start, To: end, Location: loc}

	p.filter.Benchmark = metrics.Benchmark2023
	if y := q.Get("year"); y != "" {
		n, _ := strconv.Atoi(y)
		b, err := metrics.ParseBenchmark(n)
		if err != nil {
			problems = append(problems, "year must be a DORA benchmark year: 2019, 2021 or 2023.")
		} else {
			p.filter.Benchmark = b
		}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"service", &p.filter.Service}, {"environment", &p.filter.Environment}} {
		v := strings.TrimSpace(q.Get(f.name))
		if len(v) > maxMacroText || strings.ContainsFunc(v, unicode.IsControl) {
			problems = append(problems, fmt.Sprintf("The %s must be one line of at most %d characters.", f.name, maxMacroText))
			continue
		}
		*f.dst = v
	}
	for _, ty := range splitList(q.Get("types")) {
		et := devops.EnvironmentType(strings.ToLower(ty))
		if !et.Valid() {
			problems = append(problems, fmt.Sprintf("%q is not an environment type.", ty))
		} else if !slices.Contains(p.filter.Types, et) {
			p.filter.Types = append(p.filter.Types, et)
		}
	}
	if len(p.filter.Types) > store.MaxReleaseTypes {
		problems = append(problems, fmt.Sprintf("Name at most %d environment types.", store.MaxReleaseTypes))
	}
	if len(problems) > 0 {
		return p, badRequest("The metrics' settings need a change: " + strings.Join(problems, " "))
	}
	p.filter.Slowest = slowestShown
	return p, nil
}

// loadZone loads an IANA time zone by name. "Local" and "" would mean the
// server's own zone, which a user cannot know, so they are refused.
func loadZone(name string) (*time.Location, error) {
	if len(name) > maxTimeZone || name == "Local" || strings.Contains(name, "..") {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return time.LoadLocation(name)
}

// query writes the parameters back as a query string, for links to the
// API and CSV exports of the same scope.
func (p releaseParams) query() url.Values {
	q := url.Values{}
	q.Set("from", p.from)
	q.Set("to", p.to)
	q.Set("tz", p.timeZone)
	q.Set("year", strconv.Itoa(int(p.filter.Benchmark)))
	if p.filter.Service != "" {
		q.Set("service", p.filter.Service)
	}
	if p.filter.Environment != "" {
		q.Set("environment", p.filter.Environment)
	}
	if len(p.filter.Types) > 0 {
		var ts []string
		for _, t := range p.filter.Types {
			ts = append(ts, string(t))
		}
		q.Set("types", strings.Join(ts, ","))
	}
	return q
}
