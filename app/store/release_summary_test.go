package store_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
)

// summaryHistory records n deployments on a few lines (services ×
// environments, one of them unnamed) of x, at minutes that often repeat so
// that failures and successes of one line share a time, and incidents
// suspecting some of them; one line's last deployments fail. Times lie in
// [t0, t0+days).
func summaryHistory(x *site, rnd *rand.Rand, n, days int) {
	services := []string{"checkout-api", "search"}
	envs := []struct {
		id, name string
		typ      devops.EnvironmentType
	}{{"prod", "production", devops.EnvironmentProduction}, {"eu", "Prod-EU", devops.EnvironmentProduction},
		{"anon-1", "", devops.EnvironmentProduction}, {"stage", "staging", devops.EnvironmentStaging}}
	states := []devops.DeploymentState{devops.DeploymentSuccessful, devops.DeploymentSuccessful,
		devops.DeploymentFailed, devops.DeploymentRolledBack, devops.DeploymentCancelled}
	var b devops.Batch
	var incidents []devops.Incident
	for i := range n {
		svc, env := services[rnd.IntN(len(services))], envs[rnd.IntN(len(envs))]
		state := states[rnd.IntN(len(states))]
		// Every twelve hours, so that deployments of a line often finish
		// at the same instant.
		at := t0.Add(time.Duration(rnd.IntN(days*2)) * 12 * time.Hour)
		if svc == "search" && env.id == "prod" && i >= n-3 {
			// The line's last deployments fail: their recovery lies
			// beyond any window that ends before t0+days.
			state, at = devops.DeploymentFailed, t0.Add(time.Duration(days*24-3+n-i)*time.Hour)
		}
		var keys []string
		if rnd.IntN(3) == 0 {
			keys = []string{fmt.Sprintf("PAY-%d", i)}
		}
		d := devops.Deployment{PipelineID: "42/" + svc, EnvironmentID: env.id, EnvironmentName: env.name,
			EnvironmentType: env.typ, SequenceNumber: int64(i), State: state, Service: svc, RepositoryID: repo.ID,
			CommitSHA: sha(fmt.Sprint("c", i)), UpdatedAt: at, FinishedAt: at, IssueKeys: keys}
		b.Deployments = append(b.Deployments, d)
		if rnd.IntN(8) == 0 {
			key := d.Key()
			in := devops.Incident{SourceID: fmt.Sprint("inc-", i), Title: "Down", Status: devops.IncidentOpen,
				Service: svc, OpenedAt: at.Add(time.Minute), UpdatedAt: at.Add(time.Minute), Deployment: &key}
			incidents = append(incidents, in)
		}
	}
	b.Repository = repo
	for start := 0; start < len(b.Deployments); start += 50 {
		x.record(devops.Batch{Repository: repo, Deployments: b.Deployments[start:min(start+50, len(b.Deployments))]})
	}
	x.record(devops.Batch{Incidents: incidents})
}

// TestDeploymentSummaryMatchesDeployments compares the summary of random
// windows, under each kind of filter, with what ReleaseDeployments lists
// for them. Windows of 180 days or more are read in two halves on
// PostgreSQL.
func TestDeploymentSummaryMatchesDeployments(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const days = 200
		x := newSite(t, s, "summary-a")
		summaryHistory(x, rand.New(rand.NewPCG(1, 2)), 700, days)
		// Another site's deployments on the same lines and times must not
		// count.
		other := newSite(t, s, "summary-b")
		summaryHistory(other, rand.New(rand.NewPCG(3, 4)), 300, days)

		rnd := rand.New(rand.NewPCG(5, 6))
		var recovered, pendingFailures, suspects, ties int
		scopes := []store.ReleaseScope{
			{},
			{Service: "search"},
			{Types: []devops.EnvironmentType{devops.EnvironmentStaging}},
			{Types: []devops.EnvironmentType{devops.EnvironmentProduction, devops.EnvironmentStaging}},
			// Filters that pick among a line's deployments: its
			// failures' recoveries are looked up.
			{Projects: []string{"PAY"}},
			{Environment: "anon-1"},
			{Environment: "prod-eu"},
		}
		for round := range 70 {
			sc := scopes[round%len(scopes)]
			from := t0.Add(time.Duration(rnd.IntN(days*24*60)) * time.Minute)
			to := from.Add(time.Duration(1+rnd.IntN(days*24*60)) * time.Minute)
			if round%5 == 0 {
				from, to = t0.Add(-time.Hour), t0.Add(days*24*time.Hour) // every deployment
			}
			sc.From, sc.To = from, to
			var cuts []time.Time
			for c := from.Truncate(time.Hour).Add(time.Hour); c.Before(to); c = c.Add(time.Duration(1+rnd.IntN(30)) * time.Hour) {
				// Some cuts on the hours deployments finish at.
				cuts = append(cuts, c)
			}
			if len(cuts) > store.MaxSummarySpans-1 {
				cuts = cuts[:store.MaxSummarySpans-1]
			}
			latest := rnd.IntN(60)
			name := fmt.Sprintf("round %d (%+v, %d cuts, latest %d)", round, sc, len(cuts), latest)
			deps, err := s.ReleaseDeployments(ctx, x.tn, sc)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := s.ReleaseDeploymentSummary(ctx, x.tn, sc, cuts, latest)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			compareSummary(t, name, deps, sum, from, cuts, latest)
			for i, f := range sum.Failures {
				if f.RecoveredAt.IsZero() {
					pendingFailures++
				} else {
					recovered++
				}
				if i > 0 && f.FinishedAt.Equal(sum.Failures[i-1].FinishedAt) {
					ties++
				}
			}
			suspects += len(sum.Suspected)
		}
		// Else the history would agree trivially.
		if recovered == 0 || pendingFailures == 0 || suspects == 0 || ties == 0 {
			t.Errorf("the history lacks a case: %d recovered, %d pending, %d suspected, %d failing together",
				recovered, pendingFailures, suspects, ties)
		}
	})
}

// compareSummary checks sum against deps, the deployments it summarises.
func compareSummary(t *testing.T, name string, deps []store.ReleaseDeployment, sum *store.DeploymentSummary,
	from time.Time, cuts []time.Time, latest int) {
	t.Helper()
	if sum.Total != len(deps) {
		t.Errorf("%s: total %d, want %d", name, sum.Total, len(deps))
	}
	starts := append([]time.Time{from}, cuts...)
	want := make([]store.DeploymentSpan, len(starts))
	var failures, suspected []store.SummaryDeployment
	places := map[store.DeploymentPlace]bool{}
	for _, d := range deps {
		k := len(starts) - 1
		for k > 0 && d.FinishedAt.Before(starts[k]) {
			k--
		}
		failed := d.State != devops.DeploymentSuccessful
		if failed {
			want[k].Failed++
			failures = append(failures, store.SummaryDeployment{FinishedAt: d.FinishedAt, State: d.State,
				RecoveredAt: d.RecoveredAt})
		} else {
			want[k].Successful++
		}
		if d.SuspectOf > 0 {
			suspected = append(suspected, store.SummaryDeployment{FinishedAt: d.FinishedAt, State: d.State})
		}
		places[store.DeploymentPlace{Service: d.Service, Environment: d.Environment}] = true
	}
	for k := range want {
		want[k].From = starts[k].UTC().Truncate(time.Microsecond)
	}
	if !slices.EqualFunc(sum.Spans, want, func(a, b store.DeploymentSpan) bool {
		return a.From.Equal(b.From) && a.Successful == b.Successful && a.Failed == b.Failed
	}) {
		t.Errorf("%s: spans %+v, want %+v", name, sum.Spans, want)
	}
	// Rows finishing together come in no set order.
	byTime := func(a, b store.SummaryDeployment) int {
		return cmp.Or(a.FinishedAt.Compare(b.FinishedAt), cmp.Compare(a.State, b.State),
			a.RecoveredAt.Compare(b.RecoveredAt))
	}
	for _, list := range [][]store.SummaryDeployment{failures, suspected, sum.Failures, sum.Suspected} {
		slices.SortStableFunc(list, byTime)
	}
	same := func(a, b store.SummaryDeployment) bool { return byTime(a, b) == 0 }
	if !slices.EqualFunc(sum.Failures, failures, same) {
		t.Errorf("%s: failures %+v, want %+v", name, sum.Failures, failures)
	}
	if !slices.EqualFunc(sum.Suspected, suspected, same) {
		t.Errorf("%s: suspected %+v, want %+v", name, sum.Suspected, suspected)
	}
	var wantPlaces []store.DeploymentPlace
	for p := range places {
		wantPlaces = append(wantPlaces, p)
	}
	slices.SortFunc(wantPlaces, func(a, b store.DeploymentPlace) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Environment, b.Environment))
	})
	if !slices.Equal(sum.Places, wantPlaces) {
		t.Errorf("%s: places %v, want %v", name, sum.Places, wantPlaces)
	}
	wantLatest := deps[max(0, len(deps)-latest):]
	if len(sum.Latest) != len(wantLatest) {
		t.Fatalf("%s: %d latest, want %d", name, len(sum.Latest), len(wantLatest))
	}
	for i, d := range sum.Latest {
		w := wantLatest[i]
		if d.ID != w.ID || d.State != w.State || !d.FinishedAt.Equal(w.FinishedAt) ||
			!d.RecoveredAt.Equal(w.RecoveredAt) || d.SuspectOf != w.SuspectOf || d.URL != w.URL ||
			d.Environment != w.Environment || d.Sequence != w.Sequence {
			t.Errorf("%s: latest %d is %+v, want %+v", name, i, d, w)
		}
	}
}
