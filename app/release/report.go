// Package release assembles "Release in Jira": the DORA figures of a scope
// (a site, its projects, a service, an environment) over a window, their
// trend per week or month, and the changes behind them. The store gathers
// the rows, app/metrics holds the definitions; this package cuts the rows
// into periods and applies the definitions to each. It knows nothing of
// HTTP or of Connect, so a Forge front can use it as it is.
package release

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/metrics"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// Store is what a report reads.
type Store interface {
	ReleaseDeployments(ctx context.Context, t *tenant.Tenant, sc store.ReleaseScope) ([]store.ReleaseDeployment, error)
	ChangeLeads(ctx context.Context, t *tenant.Tenant, sc store.ReleaseScope) ([]store.ChangeLead, error)
	SlowestChanges(ctx context.Context, t *tenant.Tenant, sc store.ReleaseScope, n int) ([]store.ChangeRecord, error)
	ReleaseIncidents(ctx context.Context, t *tenant.Tenant, sc store.ReleaseScope) ([]store.ReleaseIncident, error)
	IssueCycles(ctx context.Context, t *tenant.Tenant, sc store.ReleaseScope) ([]store.IssueCycle, error)
}

// Filter is what a report covers.
type Filter struct {
	// Projects limits the report to deployments, changes, incidents and
	// issues linked to issues of these Jira projects; none means the site.
	Projects    []string
	Service     string
	Environment string
	// Types are the environment types counted as production; production
	// alone when empty.
	Types []devops.EnvironmentType
	// Window is the period, cut into days, weeks and months of its
	// location.
	Window    metrics.Window
	Benchmark metrics.Benchmark
	// Slowest is how many of the slowest changes to list.
	Slowest int
}

func (f Filter) scope() store.ReleaseScope {
	return store.ReleaseScope{Types: f.Types, Projects: f.Projects, Service: f.Service,
		Environment: f.Environment, From: f.Window.From, To: f.Window.To}
}

// Figures are the key figures of one period.
type Figures struct {
	Frequency     metrics.Frequency
	LeadTime      metrics.Durations
	FailureRate   metrics.FailureRate
	TimeToRestore metrics.Durations
	Recovery      metrics.Durations
	CycleTime     metrics.Durations
}

// Bands places Figures against the filter's benchmark; a band is "" when
// its figure has no sample.
type Bands struct {
	Frequency, LeadTime, FailureRate, TimeToRestore metrics.Band
}

// Period is one week or month of a report's trend.
type Period struct {
	Start, End time.Time
	Figures
}

// Report is the release figures of one filter.
type Report struct {
	Filter Filter
	Figures
	Bands Bands
	// Granularity is "week" or "month": how Trend is cut.
	Granularity string
	Trend       []Period
	Deployments []store.ReleaseDeployment
	Incidents   []store.ReleaseIncident
	Slowest     []store.ChangeRecord
	// Changes counts the changes first deployed in the window.
	Changes int
}

// Build reads what the filter covers and computes its figures; the reads
// run in parallel.
func Build(ctx context.Context, st Store, t *tenant.Tenant, f Filter) (*Report, error) {
	if f.Window.Location == nil {
		f.Window.Location = time.UTC
	}
	if f.Benchmark == 0 {
		f.Benchmark = metrics.Benchmark2023
	}
	sc := f.scope()
	var (
		r       = &Report{Filter: f}
		changes []store.ChangeLead
		cycles  []store.IssueCycle
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		r.Deployments, err = st.ReleaseDeployments(gctx, t, sc)
		return err
	})
	g.Go(func() (err error) {
		changes, err = st.ChangeLeads(gctx, t, sc)
		return err
	})
	g.Go(func() (err error) {
		r.Incidents, err = st.ReleaseIncidents(gctx, t, sc)
		return err
	})
	g.Go(func() (err error) {
		cycles, err = st.IssueCycles(gctx, t, sc)
		return err
	})
	if f.Slowest > 0 {
		g.Go(func() (err error) {
			r.Slowest, err = st.SlowestChanges(gctx, t, sc, f.Slowest)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("release report: %w", err)
	}
	r.Changes = len(changes)
	r.Figures = figures(f.Window, r.Deployments, changes, r.Incidents, cycles)
	r.Bands = bands(f.Benchmark, r.Figures)
	r.Granularity, r.Trend = trend(f.Window, r.Deployments, changes, r.Incidents, cycles)
	return r, nil
}

// figures applies the definitions of app/metrics to one period's rows.
func figures(w metrics.Window, deps []store.ReleaseDeployment, changes []store.ChangeLead,
	incidents []store.ReleaseIncident, cycles []store.IssueCycle) Figures {
	var (
		mdeps      = make([]metrics.Deployment, 0, len(deps))
		suspected  []metrics.Incident
		recoveries []metrics.Deployment
	)
	for _, d := range deps {
		md := metrics.Deployment{ID: d.ID, Service: d.Service, Environment: d.Environment, State: d.State, At: d.FinishedAt}
		mdeps = append(mdeps, md)
		if d.SuspectOf > 0 {
			suspected = append(suspected, metrics.Incident{SuspectDeploymentID: d.ID})
		}
		if !d.RecoveredAt.IsZero() {
			// The store found the next success, which may lie after the
			// window; the recovery definition needs it beside the failure.
			md.State, md.At, md.ID = devops.DeploymentSuccessful, d.RecoveredAt, ""
			recoveries = append(recoveries, md)
		}
	}
	mchanges := make([]metrics.Change, 0, len(changes))
	for _, c := range changes {
		first := c.DeployedAt // an unknown start makes a zero lead time: excluded
		if c.Known {
			first = c.DeployedAt.Add(-c.Lead)
		}
		mchanges = append(mchanges, metrics.Change{FirstCommitAt: first, DeployedAt: c.DeployedAt})
	}
	mincidents := make([]metrics.Incident, 0, len(incidents))
	for _, in := range incidents {
		mincidents = append(mincidents, metrics.Incident{ID: in.ID, OpenedAt: in.OpenedAt, ResolvedAt: in.ResolvedAt,
			SuspectDeploymentID: in.SuspectDeploymentID})
	}
	missues := make([]metrics.IssueCycle, 0, len(cycles))
	for _, c := range cycles {
		missues = append(missues, metrics.IssueCycle{Key: c.Key, StartedAt: c.StartedAt, FirstProductionAt: c.DeployedAt})
	}
	return Figures{
		Frequency:     metrics.DeploymentFrequency(mdeps, w),
		LeadTime:      metrics.LeadTime(mchanges),
		FailureRate:   metrics.ChangeFailureRate(mdeps, suspected),
		TimeToRestore: metrics.TimeToRestore(mincidents),
		Recovery:      metrics.FailedDeploymentRecovery(append(mdeps, recoveries...)),
		CycleTime:     metrics.CycleTime(missues),
	}
}

func bands(b metrics.Benchmark, f Figures) Bands {
	var out Bands
	if f.Frequency.Deployments > 0 {
		out.Frequency = b.Frequency(f.Frequency.PerDay)
	}
	if f.LeadTime.N > 0 {
		out.LeadTime = b.LeadTime(f.LeadTime.Median)
	}
	if f.FailureRate.Deployments > 0 {
		out.FailureRate = b.FailureRate(f.FailureRate.Rate)
	}
	if f.TimeToRestore.N > 0 {
		out.TimeToRestore = b.Restore(f.TimeToRestore.Median)
	}
	return out
}

// maxWeeklyPeriods is the longest trend cut into weeks; longer windows are
// cut into months, so a chart has at most about 26 points.
const maxWeeklyPeriods = 26

// trend cuts the window into weeks (starting Monday) or months of its
// location and computes each period's figures from the rows that fall in
// it. A row belongs to the period of its deployment's finish, or of its
// incident's opening.
func trend(w metrics.Window, deps []store.ReleaseDeployment, changes []store.ChangeLead,
	incidents []store.ReleaseIncident, cycles []store.IssueCycle) (string, []Period) {
	granularity, bounds := periods(w)
	n := len(bounds) - 1
	if n <= 0 {
		return granularity, nil
	}
	index := func(t time.Time) int {
		// Periods are few; a linear scan from the end is simplest.
		for i := n - 1; i >= 0; i-- {
			if !t.Before(bounds[i]) {
				if t.Before(bounds[i+1]) {
					return i
				}
				return -1
			}
		}
		return -1
	}
	pd := make([][]store.ReleaseDeployment, n)
	for _, d := range deps {
		if i := index(d.FinishedAt); i >= 0 {
			pd[i] = append(pd[i], d)
		}
	}
	pc := make([][]store.ChangeLead, n)
	for _, c := range changes {
		if i := index(c.DeployedAt); i >= 0 {
			pc[i] = append(pc[i], c)
		}
	}
	pi := make([][]store.ReleaseIncident, n)
	for _, in := range incidents {
		if i := index(in.OpenedAt); i >= 0 {
			pi[i] = append(pi[i], in)
		}
	}
	py := make([][]store.IssueCycle, n)
	for _, c := range cycles {
		if i := index(c.DeployedAt); i >= 0 {
			py[i] = append(py[i], c)
		}
	}
	out := make([]Period, n)
	for i := range n {
		pw := metrics.Window{From: bounds[i], To: bounds[i+1], Location: w.Location}
		out[i] = Period{Start: bounds[i], End: bounds[i+1], Figures: figures(pw, pd[i], pc[i], pi[i], py[i])}
	}
	return granularity, out
}

// periods returns the trend's granularity and its period bounds: the
// window's start, each week's (or month's) first instant in the window's
// location after it, and the window's end.
func periods(w metrics.Window) (string, []time.Time) {
	loc := w.Location
	if loc == nil {
		loc = time.UTC
	}
	if !w.From.Before(w.To) {
		return "week", nil
	}
	from := w.From.In(loc)
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, loc)
	weekStart := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7)) // back to Monday
	granularity := "week"
	next := func(t time.Time) time.Time { return t.AddDate(0, 0, 7) }
	start := weekStart
	if w.To.Sub(w.From) > maxWeeklyPeriods*7*24*time.Hour {
		granularity = "month"
		start = time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, loc)
		next = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	}
	bounds := []time.Time{w.From}
	for t := next(start); t.Before(w.To); t = next(t) {
		bounds = append(bounds, t)
	}
	return granularity, append(bounds, w.To)
}
