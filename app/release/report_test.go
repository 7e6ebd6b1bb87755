package release

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/metrics"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// fakeStore returns fixed rows and records the scope it was asked for.
type fakeStore struct {
	deps      []store.ReleaseDeployment
	changes   []store.ChangeLead
	incidents []store.ReleaseIncident
	cycles    []store.IssueCycle
	scopes    []store.ReleaseScope
}

func (f *fakeStore) ReleaseDeployments(_ context.Context, _ *tenant.Tenant, sc store.ReleaseScope) ([]store.ReleaseDeployment, error) {
	f.scopes = append(f.scopes, sc)
	return f.deps, nil
}

func (f *fakeStore) ChangeLeads(context.Context, *tenant.Tenant, store.ReleaseScope) ([]store.ChangeLead, error) {
	return f.changes, nil
}

func (f *fakeStore) SlowestChanges(context.Context, *tenant.Tenant, store.ReleaseScope, int) ([]store.ChangeRecord, error) {
	return nil, nil
}

func (f *fakeStore) ReleaseIncidents(context.Context, *tenant.Tenant, store.ReleaseScope) ([]store.ReleaseIncident, error) {
	return f.incidents, nil
}

func (f *fakeStore) IssueCycles(context.Context, *tenant.Tenant, store.ReleaseScope) ([]store.IssueCycle, error) {
	return f.cycles, nil
}

// ReleaseDeploymentSummary is not used: these reports list every
// deployment (Filter.Latest 0).
func (f *fakeStore) ReleaseDeploymentSummary(context.Context, *tenant.Tenant, store.ReleaseScope, []time.Time,
	int) (*store.DeploymentSummary, error) {
	return nil, errors.New("fake store: no summaries")
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestSpanStartsAreTheStartsOfLocalDays(t *testing.T) {
	santiago := mustLoc(t, "America/Santiago")
	// Chile's clocks jump from 00:00 to 01:00 on 2025-09-07: that day
	// starts at 01:00, and 23:00 the evening before is still the 6th.
	w := metrics.Window{From: time.Date(2025, 9, 5, 12, 0, 0, 0, santiago), To: time.Date(2025, 9, 9, 0, 0, 0, 0, santiago),
		Location: santiago}
	_, bounds := periods(w)
	var got []string
	for _, s := range spanStarts(w, bounds) {
		got = append(got, s.In(santiago).Format("2006-01-02 15:04 -07"))
	}
	want := []string{"2025-09-05 12:00 -04", "2025-09-06 00:00 -04", "2025-09-07 01:00 -03", "2025-09-08 00:00 -03"}
	if !slices.Equal(got, want) {
		t.Errorf("span starts %v, want %v", got, want)
	}
}

func TestPeriodsFollowTheLocalCalendarAcrossDST(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	cases := []struct {
		name        string
		w           metrics.Window
		granularity string
		bounds      []string // in the window's location
	}{
		{"weeks start on local Monday midnight, across the October change",
			metrics.Window{From: time.Date(2026, 10, 21, 12, 0, 0, 0, berlin), To: time.Date(2026, 11, 4, 0, 0, 0, 0, berlin), Location: berlin},
			"week", []string{"2026-10-21 12:00 CEST", "2026-10-26 00:00 CET", "2026-11-02 00:00 CET", "2026-11-04 00:00 CET"}},
		{"long windows are cut into months",
			metrics.Window{From: time.Date(2025, 11, 15, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)},
			"month", nil},
		{"an empty window has no periods", metrics.Window{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
			"week", []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, bounds := periods(c.w)
			if g != c.granularity {
				t.Errorf("granularity = %s, want %s", g, c.granularity)
			}
			if c.granularity == "month" {
				if len(bounds) != 14 || bounds[1].Day() != 1 || bounds[len(bounds)-1] != c.w.To {
					t.Errorf("month bounds = %v", bounds)
				}
				return
			}
			var got []string
			for _, b := range bounds {
				got = append(got, b.In(c.w.Location).Format("2006-01-02 15:04 MST"))
			}
			if len(got) != len(c.bounds) {
				t.Fatalf("bounds = %v, want %v", got, c.bounds)
			}
			for i := range got {
				if got[i] != c.bounds[i] {
					t.Errorf("bound %d = %s, want %s", i, got[i], c.bounds[i])
				}
			}
		})
	}
}

// twoWeeks is a store holding two weeks of hand-computed history, and the
// filter over them.
func twoWeeks() (*fakeStore, Filter) {
	h := time.Hour
	mon := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday
	dep := func(id string, day int, state devops.DeploymentState) store.ReleaseDeployment {
		return store.ReleaseDeployment{ID: id, Service: "shop", Environment: "production", State: state,
			FinishedAt: mon.Add(time.Duration(day)*24*h + 10*h)}
	}
	failed := dep("d3", 8, devops.DeploymentFailed)
	failed.RecoveredAt = failed.FinishedAt.Add(2 * h)
	suspect := dep("d2", 1, devops.DeploymentSuccessful)
	suspect.SuspectOf = 2
	st := &fakeStore{
		deps: []store.ReleaseDeployment{dep("d1", 0, devops.DeploymentSuccessful), suspect, failed,
			dep("d4", 8, devops.DeploymentSuccessful)},
		changes: []store.ChangeLead{
			{DeployedAt: mon.Add(10 * h), Lead: 3 * h, Known: true},
			{DeployedAt: mon.Add(34 * h), Lead: 5 * h, Known: true},
			{DeployedAt: mon.Add(34 * h), Lead: -h, Known: true}, // clock skew: excluded
			{DeployedAt: mon.Add(8*24*h + 10*h), Known: false},   // start unknown: excluded
		},
		incidents: []store.ReleaseIncident{{ID: "i1", OpenedAt: mon.Add(35 * h), ResolvedAt: mon.Add(36 * h)},
			{ID: "i2", OpenedAt: mon.Add(9 * 24 * h)}},
		cycles: []store.IssueCycle{{DeployedAt: mon.Add(10 * h), Cycle: 34 * h, Known: true},
			{DeployedAt: mon.Add(34 * h)}},
	}
	f := Filter{Projects: []string{"KL"}, Window: metrics.Window{From: mon, To: mon.Add(14 * 24 * h)},
		Benchmark: metrics.Benchmark2023}
	return st, f
}

func TestBuildComputesFiguresAndTrend(t *testing.T) {
	h := time.Hour
	mon := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	st, f := twoWeeks()
	r, err := Build(context.Background(), st, &tenant.Tenant{ID: 1}, f)
	if err != nil {
		t.Fatal(err)
	}
	if sc := st.scopes[0]; len(sc.Projects) != 1 || !sc.From.Equal(mon) {
		t.Errorf("scope = %+v", sc)
	}
	if r.Frequency.Deployments != 3 || r.FailureRate.Deployments != 4 || r.FailureRate.Failed != 2 ||
		r.FailureRate.ByIncident != 1 || r.FailureRate.ByState != 1 {
		t.Errorf("frequency %+v, failure rate %+v", r.Frequency, r.FailureRate)
	}
	if r.LeadTime.N != 2 || r.LeadTime.Excluded != 2 || r.LeadTime.Median != 3*h || r.LeadTime.P90 != 5*h {
		t.Errorf("lead time = %+v", r.LeadTime)
	}
	if r.TimeToRestore.N != 1 || r.TimeToRestore.Pending != 1 || r.TimeToRestore.Median != h {
		t.Errorf("time to restore = %+v", r.TimeToRestore)
	}
	if r.Recovery.N != 1 || r.Recovery.Median != 2*h {
		t.Errorf("recovery = %+v", r.Recovery)
	}
	if r.CycleTime.N != 1 || r.CycleTime.Excluded != 1 || r.CycleTime.Median != 34*h {
		t.Errorf("cycle time = %+v", r.CycleTime)
	}
	if r.Bands.LeadTime != metrics.BandElite || r.Bands.FailureRate != metrics.BandLow {
		t.Errorf("bands = %+v", r.Bands)
	}
	if r.Granularity != "week" || len(r.Trend) != 2 {
		t.Fatalf("trend = %s %d periods", r.Granularity, len(r.Trend))
	}
	w1, w2 := r.Trend[0], r.Trend[1]
	if w1.Frequency.Deployments != 2 || w1.LeadTime.N != 2 || w2.Frequency.Deployments != 1 ||
		w2.FailureRate.Failed != 1 || w2.LeadTime.N != 0 || w2.TimeToRestore.Pending != 1 {
		t.Errorf("week 1 %+v, week 2 %+v", w1.Figures, w2.Figures)
	}
}

// TestBuildDoesNotNeedRowsInTimeOrder: the store's rows come in time order
// and Build then cuts periods as runs of them; rows in any other order must
// give the same figures.
func TestBuildDoesNotNeedRowsInTimeOrder(t *testing.T) {
	sorted, f := twoWeeks()
	want, err := Build(context.Background(), sorted, &tenant.Tenant{ID: 1}, f)
	if err != nil {
		t.Fatal(err)
	}
	shuffled, _ := twoWeeks()
	slices.Reverse(shuffled.deps)
	slices.Reverse(shuffled.changes)
	slices.Reverse(shuffled.incidents)
	slices.Reverse(shuffled.cycles)
	got, err := Build(context.Background(), shuffled, &tenant.Tenant{ID: 1}, f)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Figures, want.Figures) {
		t.Errorf("figures from reversed rows = %+v, want %+v", got.Figures, want.Figures)
	}
	if !reflect.DeepEqual(got.Trend, want.Trend) {
		t.Errorf("trend from reversed rows = %+v, want %+v", got.Trend, want.Trend)
	}
}

// TestWindowFiguresEqualAllRowsAtOnce: over a window cut into months, the
// window's lead and cycle times are merged from the periods' samples; they
// must equal the definitions applied to all rows at once.
func TestWindowFiguresEqualAllRowsAtOnce(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 4))
	from := time.Date(2025, 11, 3, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(1, 0, 0)
	st := &fakeStore{}
	var (
		leads  []time.Duration
		issues []metrics.IssueCycle
	)
	for at := from; at.Before(to); at = at.Add(time.Duration(1+rnd.IntN(300)) * time.Minute) {
		lead := time.Duration(rnd.IntN(5000)-100) * time.Minute
		known := rnd.IntN(10) > 0
		st.changes = append(st.changes, store.ChangeLead{DeployedAt: at, Lead: lead, Known: known})
		if !known {
			lead = 0
		}
		leads = append(leads, lead)
		var started time.Time
		if rnd.IntN(8) > 0 {
			started = at.Add(-time.Duration(rnd.IntN(9000)-50) * time.Minute)
		}
		c := store.IssueCycle{DeployedAt: at}
		if !started.IsZero() {
			c.Cycle, c.Known = at.Sub(started), true
		}
		st.cycles = append(st.cycles, c)
		issues = append(issues, metrics.IssueCycle{StartedAt: started, FirstProductionAt: at})
	}
	r, err := Build(context.Background(), st, &tenant.Tenant{ID: 1}, Filter{
		Window: metrics.Window{From: from, To: to, Location: time.UTC}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Trend) < 12 {
		t.Fatalf("%d periods, want monthly ones", len(r.Trend))
	}
	if want := metrics.Summarise(leads); r.LeadTime != want {
		t.Errorf("lead time %+v, want %+v", r.LeadTime, want)
	}
	if want := metrics.CycleTime(issues); r.CycleTime != want {
		t.Errorf("cycle time %+v, want %+v", r.CycleTime, want)
	}
}

// TestDeploymentFiguresPerPeriodMatchDefinitions: Build converts the
// deployments once and takes each period's as a run of them; every period's
// and the window's deployment figures must equal app/metrics' definitions
// applied to just the deployments of that period, with deployments at the
// periods' bounds (in the window's time zone) and ties.
func TestDeploymentFiguresPerPeriodMatchDefinitions(t *testing.T) {
	rnd := rand.New(rand.NewPCG(2, 7))
	loc := mustLoc(t, "America/New_York")
	from := time.Date(2025, 11, 3, 9, 30, 0, 0, loc)
	to := from.AddDate(1, 0, 0)
	_, bounds := periods(metrics.Window{From: from, To: to, Location: loc})
	states := []devops.DeploymentState{devops.DeploymentSuccessful, devops.DeploymentSuccessful,
		devops.DeploymentFailed, devops.DeploymentRolledBack}
	st := &fakeStore{}
	for i := range 3000 {
		at := from.Add(time.Duration(rnd.Int64N(int64(to.Sub(from)/time.Minute))) * time.Minute)
		if i%50 == 0 { // on a period's bound, or just before it
			at = bounds[rnd.IntN(len(bounds)-1)].Add(-time.Duration(rnd.IntN(2)) * time.Nanosecond)
		}
		d := store.ReleaseDeployment{ID: fmt.Sprint("d", i), Service: []string{"a", "b"}[rnd.IntN(2)],
			Environment: "production", Type: devops.EnvironmentProduction, State: states[rnd.IntN(len(states))],
			FinishedAt: at}
		if rnd.IntN(20) == 0 {
			d.SuspectOf = 1 + rnd.IntN(2)
		}
		if d.State != devops.DeploymentSuccessful && rnd.IntN(10) > 0 {
			d.RecoveredAt = at.Add(time.Duration(1+rnd.IntN(600)) * time.Minute)
		}
		st.deps = append(st.deps, d)
	}
	slices.SortStableFunc(st.deps, func(a, b store.ReleaseDeployment) int { return a.FinishedAt.Compare(b.FinishedAt) })
	r, err := Build(context.Background(), st, &tenant.Tenant{ID: 1}, Filter{
		Window: metrics.Window{From: from, To: to, Location: loc}})
	if err != nil {
		t.Fatal(err)
	}
	// The definitions, applied to the deployments of [lo, hi).
	want := func(lo, hi time.Time) (metrics.Frequency, metrics.FailureRate, metrics.Durations) {
		var (
			mdeps      []metrics.Deployment
			suspected  []metrics.Incident
			recoveries []time.Duration
			pending    int
		)
		for _, d := range st.deps {
			if d.FinishedAt.Before(lo) || !d.FinishedAt.Before(hi) {
				continue
			}
			mdeps = append(mdeps, metrics.Deployment{ID: d.ID, Service: d.Service, Environment: d.Environment,
				State: d.State, At: d.FinishedAt})
			if d.SuspectOf > 0 {
				suspected = append(suspected, metrics.Incident{SuspectDeploymentID: d.ID})
			}
			if d.State == devops.DeploymentSuccessful {
				continue
			}
			if d.RecoveredAt.IsZero() {
				pending++
			} else {
				recoveries = append(recoveries, d.RecoveredAt.Sub(d.FinishedAt))
			}
		}
		rec := metrics.Summarise(recoveries)
		rec.Pending = pending
		return metrics.DeploymentFrequency(mdeps, metrics.Window{From: lo, To: hi, Location: loc}),
			metrics.ChangeFailureRate(mdeps, suspected), rec
	}
	check := func(name string, got Figures, lo, hi time.Time) {
		t.Helper()
		fr, cf, rec := want(lo, hi)
		if got.Frequency != fr || got.FailureRate != cf || got.Recovery != rec {
			t.Errorf("%s: frequency %+v, failure rate %+v, recovery %+v; want %+v, %+v, %+v", name,
				got.Frequency, got.FailureRate, got.Recovery, fr, cf, rec)
		}
	}
	check("window", r.Figures, from, to)
	if len(r.Trend) < 12 {
		t.Fatalf("%d periods, want monthly ones", len(r.Trend))
	}
	for i, p := range r.Trend {
		check(fmt.Sprintf("period %d (%s)", i, p.Start.Format(time.DateOnly)), p.Figures, p.Start, p.End)
	}
}
