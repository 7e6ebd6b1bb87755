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
	"slices"
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
	// ReleaseDeploymentSummary stands in for ReleaseDeployments when a
	// report lists only the latest deployments.
	ReleaseDeploymentSummary(ctx context.Context, t *tenant.Tenant, sc store.ReleaseScope, cuts []time.Time,
		latest int) (*store.DeploymentSummary, error)
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
	// Latest, when positive, lists only the latest this many deployments
	// in Report.Deployments (at most store.MaxSummaryLatest). The figures
	// are the same; the store can then count a long window's deployments
	// instead of sending them all.
	Latest int
}

// TimelineDeployments is how many of the latest deployments a report page
// lists (Filter.Latest): its timeline's dots. Beyond a few hundred, dots
// overlap and the page grows without saying more.
const TimelineDeployments = 400

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
	// Deployments are the window's deployments that took place, oldest
	// first: all of them, or the latest Filter.Latest.
	Deployments []store.ReleaseDeployment
	// DeploymentCount counts all of them.
	DeploymentCount int
	// Places are the services and environments they went to, sorted.
	Places    []store.DeploymentPlace
	Incidents []store.ReleaseIncident
	Slowest   []store.ChangeRecord
	// Changes counts the changes first deployed in the window.
	Changes int
}

// Build reads what the filter covers and computes its figures. Each read
// runs in its own goroutine and computes its own figures, for the window and
// for every trend period, as soon as its rows arrive: the figures of one
// kind depend only on that kind's rows, so the work overlaps the slower
// reads and spreads over the cores instead of waiting for all of them.
func Build(ctx context.Context, st Store, t *tenant.Tenant, f Filter) (*Report, error) {
	if f.Window.Location == nil {
		f.Window.Location = time.UTC
	}
	if f.Benchmark == 0 {
		f.Benchmark = metrics.Benchmark2023
	}
	if f.Latest < 0 || f.Latest > store.MaxSummaryLatest {
		return nil, fmt.Errorf("release report: list at most %d deployments", store.MaxSummaryLatest)
	}
	sc := f.scope()
	r := &Report{Filter: f}
	var bounds []time.Time
	r.Granularity, bounds = periods(f.Window)
	if len(bounds) > 2 {
		sc.Cuts = bounds[1 : len(bounds)-1]
	}
	if len(bounds) > 1 {
		r.Trend = make([]Period, len(bounds)-1)
		for i := range r.Trend {
			r.Trend[i] = Period{Start: bounds[i], End: bounds[i+1]}
		}
	}
	// Each goroutine writes its own fields of r.Figures and of every
	// r.Trend[i], never another's.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if f.Latest > 0 {
			starts := spanStarts(f.Window, bounds)
			sum, err := st.ReleaseDeploymentSummary(gctx, t, sc, starts[1:], f.Latest)
			if err != nil {
				return err
			}
			fillSummary(r, bounds, starts, sum)
			return nil
		}
		deps, err := st.ReleaseDeployments(gctx, t, sc)
		if err != nil {
			return err
		}
		fillDeployments(r, bounds, deps)
		r.DeploymentCount, r.Places = len(deps), places(deps)
		r.Deployments = deps
		return nil
	})
	g.Go(func() error {
		changes, err := st.ChangeLeads(gctx, t, sc)
		if err != nil {
			return err
		}
		r.Changes = len(changes)
		fillSample(r, bounds, changes, func(c store.ChangeLead) time.Time { return c.DeployedAt }, leadSample,
			func(fig *Figures, d metrics.Durations) { fig.LeadTime = d })
		return nil
	})
	g.Go(func() error {
		incidents, err := st.ReleaseIncidents(gctx, t, sc)
		if err != nil {
			return err
		}
		r.Incidents = incidents
		fill(r, bounds, incidents, func(in store.ReleaseIncident) time.Time { return in.OpenedAt },
			func(_ metrics.Window, fig *Figures, incidents []store.ReleaseIncident) {
				fig.TimeToRestore = timeToRestore(incidents)
			})
		return nil
	})
	g.Go(func() error {
		cycles, err := st.IssueCycles(gctx, t, sc)
		if err != nil {
			return err
		}
		fillSample(r, bounds, cycles, func(c store.IssueCycle) time.Time { return c.DeployedAt }, cycleSample,
			func(fig *Figures, d metrics.Durations) { fig.CycleTime = d })
		return nil
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
	r.Bands = bands(f.Benchmark, r.Figures)
	return r, nil
}

// fill computes one kind of figure with compute: for the whole window from
// all rows, and for each trend period from the rows whose time (at) falls
// in it.
func fill[T any](r *Report, bounds []time.Time, rows []T, at func(T) time.Time,
	compute func(w metrics.Window, fig *Figures, rows []T)) {
	w := r.Filter.Window
	compute(w, &r.Figures, rows)
	if len(r.Trend) == 0 {
		return
	}
	per := splitPeriods(bounds, rows, at)
	for i := range r.Trend {
		pw := metrics.Window{From: bounds[i], To: bounds[i+1], Location: w.Location}
		compute(pw, &r.Trend[i].Figures, per[i])
	}
}

// fillSample is fill for a figure that summarises durations (lead time,
// cycle time): each period's values are sorted once, and the window's
// figures are read from the periods' samples rather than sorted again,
// which for a year of changes was a sixth of the report's Go time. sample
// builds one run of rows' sample; set stores a summary.
func fillSample[T any](r *Report, bounds []time.Time, rows []T, at func(T) time.Time,
	sample func(rows []T) metrics.Sample, set func(fig *Figures, d metrics.Durations)) {
	if len(r.Trend) > 0 {
		per := splitPeriods(bounds, rows, at)
		covered := 0
		for _, p := range per {
			covered += len(p)
		}
		// The window's rows all fall in its periods; should any not, the
		// window is summarised from all rows as fill does.
		if covered == len(rows) {
			parts := make([]metrics.Sample, len(per))
			for i, p := range per {
				parts[i] = sample(p)
				set(&r.Trend[i].Figures, parts[i].Durations())
			}
			set(&r.Figures, metrics.MergedDurations(parts...))
			return
		}
	}
	fill(r, bounds, rows, at, func(_ metrics.Window, fig *Figures, rows []T) { set(fig, sample(rows).Durations()) })
}

// splitPeriods returns the rows of each period of bounds.
func splitPeriods[T any](bounds []time.Time, rows []T, at func(T) time.Time) [][]T {
	per := make([][]T, len(bounds)-1)
	if slices.IsSortedFunc(rows, func(a, b T) int { return at(a).Compare(at(b)) }) {
		// The store returns rows in time order: each period is then a
		// run of them, taken without copying a busy quarter's rows again.
		for i := range per {
			lo, _ := slices.BinarySearchFunc(rows, bounds[i], func(row T, t time.Time) int { return cmpBefore(at(row), t) })
			hi, _ := slices.BinarySearchFunc(rows, bounds[i+1], func(row T, t time.Time) int { return cmpBefore(at(row), t) })
			per[i] = rows[lo:hi]
		}
		return per
	}
	for _, row := range rows {
		if i := periodOf(bounds, at(row)); i >= 0 {
			per[i] = append(per[i], row)
		}
	}
	return per
}

// cmpBefore orders a row's time against a period bound so that a binary
// search finds the first row at or after the bound.
func cmpBefore(rowAt, bound time.Time) int {
	if rowAt.Before(bound) {
		return -1
	}
	return 1
}

// periodOf is the index of the period of bounds that t falls in, or -1.
func periodOf(bounds []time.Time, t time.Time) int {
	// Periods are few; a linear scan from the end is simplest.
	for i := len(bounds) - 2; i >= 0; i-- {
		if !t.Before(bounds[i]) {
			if t.Before(bounds[i+1]) {
				return i
			}
			return -1
		}
	}
	return -1
}

// fillDeployments computes the deployment figures (frequency, failure
// rate, recovery) of the window and of each trend period. The deployments
// are converted to app/metrics' form once, and each period's are a run of
// them in time order: the store returns them so, and a copy is sorted if
// not.
func fillDeployments(r *Report, bounds []time.Time, deps []store.ReleaseDeployment) {
	at := func(a, b store.ReleaseDeployment) int { return a.FinishedAt.Compare(b.FinishedAt) }
	if !slices.IsSortedFunc(deps, at) {
		deps = slices.Clone(deps)
		slices.SortStableFunc(deps, at)
	}
	mdeps, suspected := metricsDeployments(deps)
	w := r.Filter.Window
	r.Frequency, r.FailureRate, r.Recovery = deploymentFigures(w, deps, mdeps, suspected)
	for i := range r.Trend {
		before := func(d store.ReleaseDeployment, t time.Time) int { return cmpBefore(d.FinishedAt, t) }
		lo, _ := slices.BinarySearchFunc(deps, bounds[i], before)
		hi, _ := slices.BinarySearchFunc(deps, bounds[i+1], before)
		pw := metrics.Window{From: bounds[i], To: bounds[i+1], Location: w.Location}
		fig := &r.Trend[i].Figures
		fig.Frequency, fig.FailureRate, fig.Recovery = deploymentFigures(pw, deps[lo:hi], mdeps[lo:hi], suspected)
	}
}

// metricsDeployments converts deps to app/metrics' deployments, in the
// same order (with an id only where an incident suspects them), and lists
// the incidents that suspect them (one per deployment suspected, which is
// all that the failure rate reads).
func metricsDeployments(deps []store.ReleaseDeployment) ([]metrics.Deployment, []metrics.Incident) {
	mdeps := make([]metrics.Deployment, len(deps))
	var suspected []metrics.Incident
	for i, d := range deps {
		mdeps[i] = metrics.Deployment{Service: d.Service, Environment: d.Environment, State: d.State,
			At: d.FinishedAt}
		// Only a suspected deployment is given its id: the failure rate
		// reads ids only to find the suspected ones, and hashing every id
		// of a year, for the window and again for its period, was a tenth
		// of the deployment figures' time.
		if d.SuspectOf > 0 {
			mdeps[i].ID = d.ID
			suspected = append(suspected, metrics.Incident{SuspectDeploymentID: d.ID})
		}
	}
	return mdeps, suspected
}

// deploymentFigures applies the deployment definitions of app/metrics to
// one period's deployments, deps, given as mdeps too (see
// metricsDeployments); suspected may name deployments of other periods.
// Recovery uses the next success the store found for each failure (it may
// lie after the window), as leadTime uses the stored lead times: the store
// applies the failed deployment recovery definition once, instead of
// app/metrics applying it again per period.
func deploymentFigures(w metrics.Window, deps []store.ReleaseDeployment, mdeps []metrics.Deployment,
	suspected []metrics.Incident) (metrics.Frequency, metrics.FailureRate, metrics.Durations) {
	return metrics.DeploymentFrequency(mdeps, w), metrics.ChangeFailureRate(mdeps, suspected),
		recovery(deps, func(d store.ReleaseDeployment) (devops.DeploymentState, time.Time, time.Time) {
			return d.State, d.FinishedAt, d.RecoveredAt
		})
}

// recovery is the failed deployment recovery time of rows, given the
// store's next success for each failure (zero while there is none, which
// leaves it pending); of says what a row is.
func recovery[T any](rows []T, of func(T) (state devops.DeploymentState, finished, recovered time.Time)) metrics.Durations {
	var (
		values  []time.Duration
		pending int
	)
	for _, row := range rows {
		state, finished, recovered := of(row)
		if state != devops.DeploymentFailed && state != devops.DeploymentRolledBack {
			continue
		}
		if recovered.IsZero() {
			pending++
		} else {
			values = append(values, recovered.Sub(finished))
		}
	}
	d := metrics.Summarise(values)
	d.Pending = pending
	return d
}

// places lists the services and environments deps went to, each pair
// once, sorted, as store.DeploymentSummary does.
func places(deps []store.ReleaseDeployment) []store.DeploymentPlace {
	seen := map[store.DeploymentPlace]bool{}
	var out []store.DeploymentPlace
	for _, d := range deps {
		p := store.DeploymentPlace{Service: d.Service, Environment: d.Environment}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	slices.SortFunc(out, store.DeploymentPlace.Compare)
	return out
}

// spanStarts are the starts of the spans a deployment summary counts: the
// window's start, every local midnight after it, and the period bounds
// (which are local midnights but may not be, for a window that starts or
// ends inside a day). Each span lies within one calendar day of the
// window's location and within one period.
func spanStarts(w metrics.Window, bounds []time.Time) []time.Time {
	loc := w.Location
	from := w.From.In(loc)
	starts := []time.Time{w.From}
	for d := 1; ; d++ {
		midnight := metrics.DayStart(from.Year(), from.Month(), from.Day()+d, loc)
		if !midnight.Before(w.To) {
			break
		}
		starts = append(starts, midnight)
	}
	if len(bounds) > 2 {
		starts = append(starts, bounds[1:len(bounds)-1]...)
	}
	slices.SortFunc(starts, time.Time.Compare)
	return slices.CompactFunc(starts, time.Time.Equal)
}

// fillSummary computes the deployment figures of the window and of each
// trend period from a store's summary, as fillDeployments does from the
// deployments; starts are the spans' starts (see spanStarts).
func fillSummary(r *Report, bounds, starts []time.Time, sum *store.DeploymentSummary) {
	r.Deployments, r.DeploymentCount, r.Places = sum.Latest, sum.Total, sum.Places
	w := r.Filter.Window
	r.Frequency, r.FailureRate, r.Recovery = summaryFigures(w, starts, sum.Spans, sum.Suspected, sum.Failures)
	// The index of the first span starting at or after t.
	atOrAfter := func(t time.Time) int {
		k, _ := slices.BinarySearchFunc(starts, t, cmpBefore)
		return k
	}
	for i := range r.Trend {
		lo, hi := atOrAfter(bounds[i]), atOrAfter(bounds[i+1])
		pw := metrics.Window{From: bounds[i], To: bounds[i+1], Location: w.Location}
		fig := &r.Trend[i].Figures
		fig.Frequency, fig.FailureRate, fig.Recovery = summaryFigures(pw, starts[lo:hi], sum.Spans[lo:hi],
			finishedIn(sum.Suspected, bounds[i], bounds[i+1]), finishedIn(sum.Failures, bounds[i], bounds[i+1]))
	}
}

// finishedIn is the run of rows (oldest first) that finished in [from, to).
func finishedIn(rows []store.SummaryDeployment, from, to time.Time) []store.SummaryDeployment {
	before := func(d store.SummaryDeployment, t time.Time) int { return cmpBefore(d.FinishedAt, t) }
	lo, _ := slices.BinarySearchFunc(rows, from, before)
	hi, _ := slices.BinarySearchFunc(rows, to, before)
	return rows[lo:hi]
}

// summaryFigures applies the deployment definitions to one period's
// spans (starting at starts), suspected deployments and failures.
func summaryFigures(w metrics.Window, starts []time.Time, spans []store.DeploymentSpan, suspected,
	failures []store.SummaryDeployment) (metrics.Frequency, metrics.FailureRate, metrics.Durations) {
	days := make([]metrics.DaySuccesses, len(spans))
	var c metrics.FailureCounts
	for i, sp := range spans {
		days[i] = metrics.DaySuccesses{Day: starts[i], Successful: sp.Successful}
		c.Deployments += sp.Successful + sp.Failed
		c.ByState += sp.Failed
	}
	for _, d := range suspected {
		c.ByIncident++
		if d.State == devops.DeploymentFailed || d.State == devops.DeploymentRolledBack {
			c.Both++
		}
	}
	return metrics.FrequencyOfDays(days, w), c.Rate(),
		recovery(failures, func(f store.SummaryDeployment) (devops.DeploymentState, time.Time, time.Time) {
			return f.State, f.FinishedAt, f.RecoveredAt
		})
}

// leadSample is metrics.LeadTime's sample over changes that have all been
// deployed (so none is pending), taking the stored lead times as they are
// instead of rebuilding each change's first-commit time.
func leadSample(changes []store.ChangeLead) metrics.Sample {
	leads := make([]time.Duration, len(changes))
	for i, c := range changes {
		if c.Known { // an unknown start stays a zero lead time: excluded
			leads[i] = c.Lead
		}
	}
	// Sorted first by radix: NewSample's own sort then finds them in order
	// and only checks it.
	sortDurations(leads)
	return metrics.NewSample(leads)
}

func timeToRestore(incidents []store.ReleaseIncident) metrics.Durations {
	mincidents := make([]metrics.Incident, 0, len(incidents))
	for _, in := range incidents {
		mincidents = append(mincidents, metrics.Incident{ID: in.ID, OpenedAt: in.OpenedAt, ResolvedAt: in.ResolvedAt,
			SuspectDeploymentID: in.SuspectDeploymentID})
	}
	return metrics.TimeToRestore(mincidents)
}

// cycleSample is metrics.CycleTime's sample over issues that have all been
// deployed (the store's rows always have a deployment time): an issue with
// no recorded start is excluded, as a zero value.
func cycleSample(cycles []store.IssueCycle) metrics.Sample {
	values := make([]time.Duration, len(cycles))
	for i, c := range cycles {
		if c.Known {
			values[i] = c.Cycle
		}
	}
	sortDurations(values) // as in leadSample
	return metrics.NewSample(values)
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
	// Counted in calendar dates, each period starting at its first day's
	// start (metrics.DayStart), not by adding days to an instant: in a zone
	// that skips a midnight, that instant would be an hour early from then
	// on.
	from := w.From.In(loc)
	y, m, d := from.Date()
	monday := d - (int(from.Weekday())+6)%7
	granularity := "week"
	start := func(k int) time.Time { return metrics.DayStart(y, m, monday+7*k, loc) }
	if w.To.Sub(w.From) > maxWeeklyPeriods*7*24*time.Hour {
		granularity = "month"
		start = func(k int) time.Time { return metrics.DayStart(y, m+time.Month(k), 1, loc) }
	}
	bounds := []time.Time{w.From}
	for k := 1; ; k++ {
		t := start(k)
		if !t.Before(w.To) {
			break
		}
		bounds = append(bounds, t)
	}
	return granularity, append(bounds, w.To)
}
