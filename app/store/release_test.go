package store_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
)

// pushAt pushes commits (label → authored time, oldest first) to branch on
// top of before; a label "KL-n ..." puts that key in the message. The
// batch carries the branch, as the code hosts' push parsers do.
func pushAt(branch, before string, commits ...labelled) devops.Batch {
	b := devops.Batch{Repository: repo, Push: &devops.Push{RepositoryID: repo.ID, Ref: "refs/heads/" + branch,
		Created: before == ""}}
	if before != "" {
		b.Push.Before = sha(before)
	}
	for _, l := range commits {
		c := devops.Commit{SHA: sha(l.label), RepositoryID: repo.ID, Message: l.label, AuthoredAt: l.at,
			IssueKeys: devops.ExtractIssueKeys(l.label)}
		b.Commits = append(b.Commits, c)
		b.Push.CommitSHAs = append(b.Push.CommitSHAs, c.SHA)
		b.Push.After = c.SHA
	}
	b.Branches = []devops.Branch{{RepositoryID: repo.ID, Name: branch, LastCommitSHA: b.Push.After,
		IssueKeys: devops.ExtractIssueKeys(branch)}}
	return b
}

type labelled struct {
	label string
	at    time.Time
}

func merged(number int64, branch, mergeCommit, title string, at time.Time) devops.Batch {
	return devops.Batch{Repository: repo, PullRequests: []devops.PullRequest{{
		ID: "pr" + branch, RepositoryID: repo.ID, Number: number, Title: title, State: devops.PullRequestMerged,
		SourceBranch: branch, DestinationBranch: "main", CreatedAt: at.Add(-time.Hour), MergedAt: at, UpdatedAt: at,
		URL: "https://github.com/acme/checkout-api/pull/1", MergeCommitSHA: sha(mergeCommit),
		IssueKeys: devops.ExtractIssueKeys(title + " " + branch),
	}}}
}

func deployTo(env string, typ devops.EnvironmentType, seq int64, commit string, state devops.DeploymentState, at time.Time) devops.Batch {
	b := deploy(seq, commit, state, at)
	d := &b.Deployments[0]
	d.PipelineID, d.EnvironmentID, d.EnvironmentName, d.EnvironmentType = "42/deploy-"+env, env, env, typ
	d.FinishedAt = at
	return b
}

// releaseHistory writes the history the release tests read; the comments
// give each change's lead time, computed by hand.
func releaseHistory(x *site) {
	h := time.Hour
	x.record(pushAt("main", "", labelled{"m0", t0.Add(-72 * h)}))
	x.record(deploy(0, "m0", devops.DeploymentSuccessful, t0.Add(-71*h))) // m0: 1 h
	// A squash-merged pull request: its branch commits never reach main.
	x.record(pushAt("feature/KL-1", "m0", labelled{"f1", t0.Add(-48 * h)}, labelled{"f2", t0.Add(-24 * h)}))
	x.record(pushAt("main", "m0", labelled{"s1 KL-1 squash", t0.Add(-h)}, labelled{"d1 KL-2 hotfix", t0.Add(-30 * time.Minute)}))
	x.record(merged(1, "feature/KL-1", "s1 KL-1 squash", "KL-1 New checkout", t0.Add(-h)))
	x.record(deployTo("staging", devops.EnvironmentStaging, 1, "d1 KL-2 hotfix", devops.DeploymentSuccessful, t0.Add(-10*time.Minute)))
	x.record(deploy(1, "d1 KL-2 hotfix", devops.DeploymentSuccessful, t0)) // PR 1: 48 h; d1: 30 min
	// A merge commit: the branch commit b1 folds into pull request 2.
	x.record(pushAt("feature/KL-3", "d1 KL-2 hotfix", labelled{"b1", t0.Add(h)}))
	x.record(pushAt("main", "d1 KL-2 hotfix", labelled{"b1", t0.Add(h)}, labelled{"mg merge", t0.Add(3 * h)}))
	x.record(merged(2, "feature/KL-3", "mg merge", "KL-3 Faster search", t0.Add(3*h)))
	x.record(deploy(2, "mg merge", devops.DeploymentFailed, t0.Add(4*h)))
	x.record(deploy(3, "mg merge", devops.DeploymentSuccessful, t0.Add(5*h))) // PR 2: 4 h
	x.record(deploy(4, "mg merge", devops.DeploymentSuccessful, t0.Add(6*h))) // redeployment: no change
	x.record(deploy(5, "mg merge", devops.DeploymentRolledBack, t0.Add(7*h)))
	in := devops.Incident{SourceID: "inc-1", Title: "Search slow", Status: devops.IncidentResolved,
		Service: "checkout-api", OpenedAt: t0.Add(5*h + 30*time.Minute), ResolvedAt: t0.Add(6*h + 30*time.Minute),
		IssueKeys: []string{"OPS-1"}}
	in.UpdatedAt = in.ResolvedAt
	x.record(devops.Batch{Incidents: []devops.Incident{in}})
}

func TestReleaseFacts(t *testing.T) {
	h := time.Hour
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "release-a")
		releaseHistory(x)
		other := newSite(t, s, "release-b")
		all := store.ReleaseScope{From: t0.Add(-80 * h), To: t0.Add(24 * h)}

		deps, err := s.ReleaseDeployments(ctx, x.tn, all)
		if err != nil {
			t.Fatal(err)
		}
		type dep struct {
			seq       int64
			state     devops.DeploymentState
			suspectOf int
			recovered time.Duration // after the deployment; 0 when none
		}
		var got []dep
		for _, d := range deps {
			r := time.Duration(0)
			if !d.RecoveredAt.IsZero() {
				r = d.RecoveredAt.Sub(d.FinishedAt)
			}
			got = append(got, dep{d.Sequence, d.State, d.SuspectOf, r})
		}
		want := []dep{
			{0, devops.DeploymentSuccessful, 0, 0}, {1, devops.DeploymentSuccessful, 0, 0},
			{2, devops.DeploymentFailed, 0, h}, {3, devops.DeploymentSuccessful, 1, 0},
			{4, devops.DeploymentSuccessful, 0, 0}, {5, devops.DeploymentRolledBack, 0, 0},
		}
		if !slices.Equal(got, want) {
			t.Errorf("deployments = %+v, want %+v", got, want)
		}
		// The recovery is found whether the next success lies in the window
		// or after it, and with a project filter (which reads it another way).
		for _, sc := range []store.ReleaseScope{
			{From: t0.Add(3 * h), To: t0.Add(4*h + 30*time.Minute)},
			{From: t0.Add(3 * h), To: t0.Add(24 * h), Projects: []string{"KL"}},
		} {
			deps, err := s.ReleaseDeployments(ctx, x.tn, sc)
			if err != nil {
				t.Fatal(err)
			}
			if len(deps) == 0 || deps[0].Sequence != 2 || !deps[0].RecoveredAt.Equal(t0.Add(5*h)) {
				t.Errorf("%+v: first deployment %+v, want number 2 recovered at t0+5h", sc, deps)
			}
		}

		leads := func(sc store.ReleaseScope) []time.Duration {
			t.Helper()
			cs, err := s.ChangeLeads(ctx, x.tn, sc)
			if err != nil {
				t.Fatal(err)
			}
			var out []time.Duration
			for _, c := range cs {
				if !c.Known {
					t.Errorf("change deployed %v has no known lead time", c.DeployedAt)
				}
				out = append(out, c.Lead)
			}
			slices.Sort(out)
			return out
		}
		cases := []struct {
			name string
			sc   store.ReleaseScope
			want []time.Duration
		}{
			{"whole history: squash measured from the branch, merge folds its branch, redeploy adds nothing",
				all, []time.Duration{30 * time.Minute, h, 4 * h, 48 * h}},
			{"window starts after m0 shipped", store.ReleaseScope{From: t0.Add(-h), To: t0.Add(24 * h)},
				[]time.Duration{30 * time.Minute, 4 * h, 48 * h}},
			{"project filter follows issue keys", store.ReleaseScope{Projects: []string{"KL"}, From: all.From, To: all.To},
				[]time.Duration{30 * time.Minute, 4 * h, 48 * h}},
			{"another project has none", store.ReleaseScope{Projects: []string{"OPS"}, From: all.From, To: all.To}, nil},
			{"staging's first deployment takes all history, m0 too", store.ReleaseScope{
				Types: []devops.EnvironmentType{devops.EnvironmentStaging}, From: all.From, To: all.To},
				[]time.Duration{20 * time.Minute, 48*h - 10*time.Minute, 72*h - 10*time.Minute}},
			{"production and staging: a change counts once, at its first",
				store.ReleaseScope{Types: []devops.EnvironmentType{devops.EnvironmentProduction, devops.EnvironmentStaging},
					From: all.From, To: all.To},
				[]time.Duration{20 * time.Minute, h, 4 * h, 48*h - 10*time.Minute}},
			{"service filter", store.ReleaseScope{Service: "billing", From: all.From, To: all.To}, nil},
		}
		for _, c := range cases {
			if got := leads(c.sc); !slices.Equal(got, c.want) {
				t.Errorf("%s: leads = %v, want %v", c.name, got, c.want)
			}
		}

		slow, err := s.SlowestChanges(ctx, x.tn, all, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(slow) != 2 || slow[0].Title != "KL-1 New checkout" || slow[0].Lead != 48*h || slow[0].Number != 1 ||
			slow[1].Title != "KL-3 Faster search" || slow[1].Lead != 4*h {
			t.Errorf("slowest = %+v", slow)
		}

		incidents, err := s.ReleaseIncidents(ctx, x.tn, all)
		if err != nil {
			t.Fatal(err)
		}
		if len(incidents) != 1 || incidents[0].ResolvedAt.Sub(incidents[0].OpenedAt) != h ||
			incidents[0].SuspectDeploymentID != x.deploymentID(3) {
			t.Errorf("incidents = %+v", incidents)
		}

		err = s.ApplyJiraIssueEvent(ctx, x.tn, store.JiraIssueEvent{
			Issue: store.JiraIssue{IssueID: "10003", IssueKey: "KL-3", ProjectKey: "KL", Summary: "Faster search",
				StatusName: "In Progress", StatusCategory: "indeterminate", IssueType: "Story", UpdatedAt: t0.Add(2 * h)},
			Transitions: []store.JiraTransition{{FromStatus: "To Do", ToStatus: "In Progress", ToCategory: "indeterminate",
				At: t0.Add(2 * h)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		shipped, more, err := s.ShippedIssues(ctx, x.tn, all, 10)
		if err != nil || more {
			t.Fatalf("ShippedIssues: %v, more %v", err, more)
		}
		var keys []string
		for _, si := range shipped {
			keys = append(keys, si.Key)
		}
		if !slices.Equal(keys, []string{"KL-1", "KL-2", "KL-3"}) || shipped[2].Issue == nil ||
			shipped[2].Issue.IssueType != "Story" || !shipped[2].DeployedAt.Equal(t0.Add(5*h)) {
			t.Errorf("shipped = %v (%+v)", keys, shipped)
		}
		if _, more, _ := s.ShippedIssues(ctx, x.tn, all, 2); !more {
			t.Error("ShippedIssues with limit 2 did not report more")
		}
		cycles, err := s.IssueCycles(ctx, x.tn, all)
		if err != nil {
			t.Fatal(err)
		}
		var known []time.Duration
		for _, c := range cycles {
			if c.Known {
				known = append(known, c.Cycle)
			}
		}
		if len(cycles) != 3 || !slices.Equal(known, []time.Duration{3 * h}) {
			t.Errorf("cycles = %+v", cycles)
		}

		// The incident's panel names what its suspect deployment shipped.
		dev, err := s.IssueDevelopment(ctx, x.tn, "OPS-1", store.DevelopmentLimits{})
		if err != nil {
			t.Fatal(err)
		}
		suspect := x.deploymentID(3)
		if ch := dev.SuspectChanges[suspect]; len(ch) != 1 || ch[0].Title != "KL-3 Faster search" ||
			dev.SuspectChangeCounts[suspect] != 1 {
			t.Errorf("suspect changes = %+v (count %d)", ch, dev.SuspectChangeCounts[suspect])
		}

		// The other site sees none of it.
		if d, _ := s.ReleaseDeployments(ctx, other.tn, all); len(d) != 0 {
			t.Errorf("other site sees deployments %+v", d)
		}
		if c, _ := s.ChangeLeads(ctx, other.tn, all); len(c) != 0 {
			t.Errorf("other site sees changes %+v", c)
		}
		if si, _, _ := s.ShippedIssues(ctx, other.tn, all, 10); len(si) != 0 {
			t.Errorf("other site sees issues %+v", si)
		}
	})
}

func TestReleaseFactsRegroupWhenThePullRequestArrivesLate(t *testing.T) {
	h := time.Hour
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "release-late")
		x.record(pushAt("main", "", labelled{"m0", t0.Add(-10 * h)}))
		x.record(deploy(0, "m0", devops.DeploymentSuccessful, t0.Add(-9*h)))
		x.record(pushAt("feature/KL-7", "m0", labelled{"k1 KL-7", t0.Add(-8 * h)}))
		x.record(pushAt("main", "m0", labelled{"k1 KL-7", t0.Add(-8 * h)}, labelled{"mk merge", t0.Add(-2 * h)}))
		x.record(deploy(1, "mk merge", devops.DeploymentSuccessful, t0))
		sc := store.ReleaseScope{From: t0.Add(-h), To: t0.Add(h)}
		before, err := s.ChangeLeads(ctx, x.tn, sc)
		if err != nil || len(before) != 2 {
			t.Fatalf("before the pull request: %+v, %v; want two commit changes", before, err)
		}
		x.record(merged(7, "feature/KL-7", "mk merge", "KL-7 Late", t0.Add(-2*h)))
		after, err := s.ChangeLeads(ctx, x.tn, sc)
		if err != nil || len(after) != 1 || after[0].Lead != 8*h {
			t.Errorf("after the pull request: %+v, %v; want one change of 8 h", after, err)
		}
	})
}

func TestReleaseScopeIsChecked(t *testing.T) {
	s := dbtest.SQLiteStore(t)
	x := newSite(t, s, "release-scope")
	ctx := context.Background()
	bad := []store.ReleaseScope{
		{From: t0, To: t0},
		{From: t0, To: t0.Add(store.MaxReleaseWindow + time.Hour)},
		{Types: []devops.EnvironmentType{"prod'"}, From: t0, To: t0.Add(time.Hour)},
		{Projects: []string{"k l"}, From: t0, To: t0.Add(time.Hour)},
	}
	for _, sc := range bad {
		if _, err := s.ReleaseDeployments(ctx, x.tn, sc); err == nil {
			t.Errorf("scope %+v accepted", sc)
		}
	}
	// A project key with "_" must not match as a LIKE wildcard.
	x.record(pushAt("main", "", labelled{"AXB-1 change", t0.Add(-time.Hour)}))
	x.record(deploy(0, "AXB-1 change", devops.DeploymentSuccessful, t0))
	cs, err := s.ChangeLeads(ctx, x.tn, store.ReleaseScope{Projects: []string{"A_B"}, From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
	if err != nil || len(cs) != 0 {
		t.Errorf("A_B matched AXB-1: %+v, %v", cs, err)
	}
}

// TestIssueCyclesFollowIssueEvents checks the copy of each issue's start
// that the cycle-time facts keep: whichever comes first, the deployment or
// the transition, and after a late transition, a move and a deletion.
func TestIssueCyclesFollowIssueEvents(t *testing.T) {
	h := time.Hour
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "release-cycles")
		other := newSite(t, s, "release-cycles-other")
		apply := func(tn *site, id, key string, updated time.Time, transitions ...store.JiraTransition) {
			t.Helper()
			err := s.ApplyJiraIssueEvent(ctx, tn.tn, store.JiraIssueEvent{
				Issue: store.JiraIssue{IssueID: id, IssueKey: key, ProjectKey: devops.ProjectOf(key), Summary: "s",
					StatusName: "In Progress", StatusCategory: "indeterminate", UpdatedAt: updated},
				Transitions: transitions,
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		started := func(at time.Time) store.JiraTransition {
			return store.JiraTransition{FromStatus: "To Do", ToStatus: "In Progress", ToCategory: "indeterminate", At: at}
		}
		// The cycle times read, sorted, with -1 for an issue whose start is
		// not known: the reads do not say which issue each belongs to.
		starts := func() []time.Duration {
			t.Helper()
			cycles, err := s.IssueCycles(ctx, x.tn, store.ReleaseScope{From: t0.Add(-h), To: t0.Add(24 * h)})
			if err != nil {
				t.Fatal(err)
			}
			var out []time.Duration
			for _, c := range cycles {
				d := time.Duration(-1)
				if c.Known {
					d = c.Cycle
				}
				out = append(out, d)
			}
			slices.Sort(out)
			return out
		}
		check := func(step string, want ...time.Duration) {
			t.Helper()
			slices.Sort(want)
			if got := starts(); !slices.Equal(got, want) {
				t.Errorf("%s: cycle times %v, want %v (-1: no start)", step, got, want)
			}
		}

		// KL-1 starts before it ships; KL-2 ships before Jira says it started.
		apply(x, "101", "KL-1", t0.Add(-5*h), started(t0.Add(-5*h)))
		x.record(pushAt("main", "", labelled{"c1 KL-1 KL-2", t0.Add(-4 * h)}))
		x.record(deploy(1, "c1 KL-1 KL-2", devops.DeploymentSuccessful, t0))
		check("deployed", 5*h, -1)
		apply(x, "102", "KL-2", t0.Add(-3*h), started(t0.Add(-3*h)))
		check("KL-2's transition after the deployment", 5*h, 3*h)

		// An earlier transition that arrives late moves the start back; a
		// stale issue event changes nothing.
		apply(x, "102", "KL-2", t0.Add(-2*h), started(t0.Add(-6*h)))
		apply(x, "102", "KL-2", t0.Add(-10*h))
		check("late earlier transition", 5*h, 6*h)

		// The other site's issue with the same key leaves this site's facts alone.
		apply(other, "101", "KL-1", t0.Add(-20*h), started(t0.Add(-20*h)))
		check("other site's KL-1", 5*h, 6*h)

		// KL-1 moves to OPS-1: the shipped key no longer names a live issue.
		apply(x, "101", "OPS-1", t0.Add(h))
		check("KL-1 moved", -1, 6*h)

		// KL-2 is deleted.
		if err := s.DeleteJiraIssue(ctx, x.tn, "102", t0.Add(2*h)); err != nil {
			t.Fatal(err)
		}
		check("KL-2 deleted", -1, -1)

		// Deployed after its start was known, through UpsertJiraIssue too.
		if err := s.UpsertJiraIssue(ctx, x.tn, store.JiraIssue{IssueID: "103", IssueKey: "KL-3", ProjectKey: "KL",
			UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		apply(x, "103", "KL-3", t0.Add(h), started(t0.Add(h)))
		x.record(pushAt("main", "c1 KL-1 KL-2", labelled{"c2 KL-3", t0.Add(2 * h)}))
		x.record(deploy(2, "c2 KL-3", devops.DeploymentSuccessful, t0.Add(4*h)))
		check("KL-3 deployed after its start", -1, -1, 3*h)
	})
}

// TestReleaseDeploymentRecoveryMatchesDefinition checks each failed
// deployment's recovery against the definition applied by brute force to
// every deployment stored: the first success of the same service,
// environment type and stored environment name that finished strictly
// after it. Windows cut the history anywhere, filters drop some of a
// line's deployments from the read, and times tie.
func TestReleaseDeploymentRecoveryMatchesDefinition(t *testing.T) {
	type env struct {
		id, name string
		typ      devops.EnvironmentType
	}
	envs := []env{
		{"prod-1", "production", devops.EnvironmentProduction},
		{"eu-1", "", devops.EnvironmentProduction}, // unnamed: told apart by id only in a filter
		{"us-1", "", devops.EnvironmentProduction},
		{"live", "Live", devops.EnvironmentProduction},
		{"stage", "stage", devops.EnvironmentStaging},
	}
	services := []string{"checkout", "search"}
	states := []devops.DeploymentState{devops.DeploymentSuccessful, devops.DeploymentFailed, devops.DeploymentRolledBack}
	type stored struct {
		service string
		env     env
		state   devops.DeploymentState
		at      time.Time
		keys    []string
	}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "release-recovery")
		rnd := rand.New(rand.NewPCG(7, 11))
		var all []stored
		for seq := range int64(160) {
			d := stored{service: services[rnd.IntN(len(services))], env: envs[rnd.IntN(len(envs))],
				state: states[rnd.IntN(len(states))],
				// Ten-minute steps over about a day: many ties.
				at: t0.Add(time.Duration(rnd.IntN(150)) * 10 * time.Minute)}
			if rnd.IntN(2) == 0 {
				d.keys = []string{"KL-1"}
			}
			all = append(all, d)
			x.record(devops.Batch{Deployments: []devops.Deployment{{PipelineID: "p", EnvironmentID: d.env.id,
				EnvironmentName: d.env.name, EnvironmentType: d.env.typ, SequenceNumber: seq, State: d.state,
				Service: d.service, FinishedAt: d.at, UpdatedAt: d.at, IssueKeys: d.keys}}})
		}
		want := func(f stored) time.Time {
			var next time.Time
			for _, d := range all {
				if d.service == f.service && d.env.typ == f.env.typ && d.env.name == f.env.name &&
					d.state == devops.DeploymentSuccessful && d.at.After(f.at) && (next.IsZero() || d.at.Before(next)) {
					next = d.at
				}
			}
			return next
		}
		filters := []store.ReleaseScope{
			{},
			{Projects: []string{"KL"}},
			{Service: "search"},
			{Environment: "eu-1"},
			{Environment: "production"},
			{Types: []devops.EnvironmentType{devops.EnvironmentProduction, devops.EnvironmentStaging}},
		}
		checked := 0
		for w := range 8 {
			from := t0.Add(time.Duration(rnd.IntN(100)) * 10 * time.Minute)
			to := from.Add(time.Duration(1+rnd.IntN(60)) * 10 * time.Minute)
			if w == 0 {
				from, to = t0.Add(-time.Hour), t0.Add(30*time.Hour)
			}
			for _, f := range filters {
				f.From, f.To = from, to
				deps, err := s.ReleaseDeployments(ctx, x.tn, f)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.IsSortedFunc(deps, func(a, b store.ReleaseDeployment) int {
					return cmp.Or(a.FinishedAt.Compare(b.FinishedAt), strings.Compare(a.ID, b.ID))
				}) {
					t.Errorf("%+v: deployments not in (finished, id) order", f)
				}
				for _, d := range deps {
					if d.State == devops.DeploymentSuccessful {
						if !d.RecoveredAt.IsZero() {
							t.Errorf("%+v: successful %s has a recovery", f, d.ID)
						}
						continue
					}
					seq := d.Sequence
					if w := want(all[seq]); !d.RecoveredAt.Equal(w) {
						t.Errorf("%+v: deployment %d (%+v) recovered at %v, want %v", f, seq, all[seq], d.RecoveredAt, w)
					}
					checked++
				}
			}
		}
		if checked < 100 {
			t.Errorf("only %d failures checked", checked)
		}
	})
}

// TestDeploymentProjectsFollowLinks checks the copy of each deployment's
// linked projects that a project's release figures filter on: it follows
// the links through a re-link, a pull request merged after the deployment,
// a link added by hand and the deletion of the only issue of a project.
func TestDeploymentProjectsFollowLinks(t *testing.T) {
	h := time.Hour
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "release-projects")
		other := newSite(t, s, "release-projects-other")
		releaseHistory(x)
		all := store.ReleaseScope{From: t0.Add(-80 * h), To: t0.Add(24 * h)}
		seqs := func(projects ...string) []int64 {
			t.Helper()
			sc := all
			sc.Projects = projects
			deps, err := s.ReleaseDeployments(ctx, x.tn, sc)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, d := range deps {
				out = append(out, d.Sequence)
			}
			return out
		}
		check := func(step string, projects []string, want []int64) {
			t.Helper()
			if got := seqs(projects...); !slices.Equal(got, want) {
				t.Errorf("%s: deployments of %v = %v, want %v", step, projects, got, want)
			}
			drift, err := s.LinkedProjectsDrift(ctx, x.tn)
			if err != nil {
				t.Fatal(err)
			}
			if len(drift) > 0 {
				t.Errorf("%s: linked projects differ from the links: %v", step, drift)
			}
		}
		// Deployments 4 and 5 redeploy what 3 shipped: they bring no change.
		check("history", []string{"KL"}, []int64{1, 2, 3})
		check("history", []string{"OPS"}, nil)

		// A pull request of OPS-2 merged into what deployment 1 shipped:
		// deployment 1 now reaches OPS too.
		x.record(merged(9, "hotfix/OPS-2", "d1 KL-2 hotfix", "OPS-2 Hotfix", t0.Add(-30*time.Minute)))
		check("late pull request", []string{"OPS"}, []int64{1})
		check("late pull request, two projects", []string{"OPS", "KL"}, []int64{1, 2, 3})

		// A link added by hand, as AddIssueLink allows.
		if err := s.AddIssueLink(ctx, x.tn, "SHOP_2-5", store.EntityDeployment, x.deploymentID(3)); err != nil {
			t.Fatal(err)
		}
		check("link added", []string{"SHOP_2"}, []int64{3})
		check("an underscore is not a wildcard", []string{"SHOPX2"}, nil)

		// OPS-2 is deleted in Jira: its links go, and deployment 1 leaves OPS.
		err := s.ApplyJiraIssueEvent(ctx, x.tn, store.JiraIssueEvent{Issue: store.JiraIssue{IssueID: "20002",
			IssueKey: "OPS-2", ProjectKey: "OPS", UpdatedAt: t0}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteJiraIssue(ctx, x.tn, "20002", t0.Add(h)); err != nil {
			t.Fatal(err)
		}
		check("issue deleted", []string{"OPS"}, nil)
		check("issue deleted", []string{"KL"}, []int64{1, 2, 3})

		// The other site's deployments are never in this site's figures.
		if d, err := s.ReleaseDeployments(ctx, other.tn, store.ReleaseScope{Projects: []string{"KL"},
			From: all.From, To: all.To}); err != nil || len(d) != 0 {
			t.Errorf("other site sees %+v, %v", d, err)
		}
	})
}

// TestReleaseReadsDecodeAsScan: on PostgreSQL the large release reads
// decode the rows' raw values themselves; they must return exactly what
// scanning through pgx returns (store.ScanOnly), for a random history
// whose times, to the microsecond, straddle 2000-01-01, where PostgreSQL's
// timestamps change sign. On SQLite both ways are the same scan.
func TestReleaseReadsDecodeAsScan(t *testing.T) {
	h := time.Hour
	base := time.Date(1999, 12, 31, 12, 0, 0, 0, time.UTC)
	at := func(rnd *rand.Rand) time.Time {
		return base.Add(time.Duration(rnd.Int64N(int64(24*h/time.Microsecond))) * time.Microsecond)
	}
	type env struct {
		id, name string
		typ      devops.EnvironmentType
	}
	envs := []env{{"prod-1", "production", devops.EnvironmentProduction}, {"eu-1", "", devops.EnvironmentProduction},
		{"stage", "stage", devops.EnvironmentStaging}}
	states := []devops.DeploymentState{devops.DeploymentSuccessful, devops.DeploymentSuccessful, devops.DeploymentFailed,
		devops.DeploymentRolledBack}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "release-raw")
		rnd := rand.New(rand.NewPCG(5, 8))
		keys := []string{"KL-1", "KL-2", "KL-3", "OPS-1", "OPS-2"}
		for i, k := range keys[:4] { // OPS-2 never starts
			start := at(rnd).Add(-12 * h)
			err := s.ApplyJiraIssueEvent(ctx, x.tn, store.JiraIssueEvent{
				Issue: store.JiraIssue{IssueID: fmt.Sprint(100 + i), IssueKey: k, ProjectKey: devops.ProjectOf(k),
					Summary: "s", StatusName: "In Progress", StatusCategory: "indeterminate", UpdatedAt: start},
				Transitions: []store.JiraTransition{{FromStatus: "To Do", ToStatus: "In Progress",
					ToCategory: "indeterminate", At: start}},
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		prev := ""
		for seq := range int64(40) {
			label := fmt.Sprintf("c%d %s", seq, keys[rnd.IntN(len(keys))])
			if rnd.IntN(3) == 0 {
				label += " " + keys[rnd.IntN(len(keys))]
			}
			if rnd.IntN(6) == 0 {
				// Never pushed: a change with no known commit time.
				label = fmt.Sprintf("u%d", seq)
			} else {
				x.record(pushAt("main", prev, labelled{label, at(rnd).Add(-6 * h)}))
				prev = label
			}
			e := envs[rnd.IntN(len(envs))]
			b := deployTo(e.id, e.typ, seq, label, states[rnd.IntN(len(states))], at(rnd))
			d := &b.Deployments[0]
			d.EnvironmentName, d.Service = e.name, []string{"checkout", "search"}[rnd.IntN(2)]
			d.PipelineName, d.URL = "Deploy "+d.Service, fmt.Sprintf("https://ci.example.com/%s/%d", d.Service, seq)
			x.record(b)
		}
		both := []devops.EnvironmentType{devops.EnvironmentProduction, devops.EnvironmentStaging}
		scopes := []store.ReleaseScope{{}, {Types: both}, {Projects: []string{"KL"}}, {Service: "search"},
			{Environment: "eu-1"}, {Types: both, Projects: []string{"OPS"}}}
		var deps, leads, unknown, cycles int
		for _, sc := range scopes {
			sc.From, sc.To = base.Add(-24*h), base.Add(48*h)
			got, err := s.ReleaseDeployments(ctx, x.tn, sc)
			if err != nil {
				t.Fatal(err)
			}
			want, err := s.ReleaseDeployments(store.ScanOnly(ctx), x.tn, sc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%+v: deployments\n%+v\nscanned\n%+v", sc, got, want)
			}
			deps += len(got)
			gotLeads, err := s.ChangeLeads(ctx, x.tn, sc)
			if err != nil {
				t.Fatal(err)
			}
			wantLeads, err := s.ChangeLeads(store.ScanOnly(ctx), x.tn, sc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotLeads, wantLeads) {
				t.Errorf("%+v: lead times\n%+v\nscanned\n%+v", sc, gotLeads, wantLeads)
			}
			leads += len(gotLeads)
			for _, c := range gotLeads {
				if !c.Known {
					unknown++
				}
			}
			gotCycles, err := s.IssueCycles(ctx, x.tn, sc)
			if err != nil {
				t.Fatal(err)
			}
			wantCycles, err := s.IssueCycles(store.ScanOnly(ctx), x.tn, sc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotCycles, wantCycles) {
				t.Errorf("%+v: cycle times\n%+v\nscanned\n%+v", sc, gotCycles, wantCycles)
			}
			for _, c := range gotCycles {
				if c.Known {
					cycles++
				}
			}
		}
		if deps < 60 || leads < 30 || unknown == 0 || cycles < 10 {
			t.Errorf("read %d deployments, %d lead times (%d unknown), %d started cycles: too few to compare",
				deps, leads, unknown, cycles)
		}
	})
}

// TestReleaseDeploymentsOfALongWindow checks that a window long enough to
// be read in two halves at once (on PostgreSQL) gives the same rows, in the
// same order, as reading it in pieces: deployments lie at, just before and
// just after the halves' boundary, some at the same instant, and each
// failure's recovery may lie in the other half.
func TestReleaseDeploymentsOfALongWindow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "release-long")
		from := t0.Truncate(24 * time.Hour)
		to := from.Add(364 * 24 * time.Hour)
		mid := from.Add(to.Sub(from) / 2)
		rnd := rand.New(rand.NewPCG(3, 9))
		states := []devops.DeploymentState{devops.DeploymentSuccessful, devops.DeploymentFailed, devops.DeploymentRolledBack}
		var seq int64
		record := func(at time.Time) {
			seq++
			x.record(devops.Batch{Deployments: []devops.Deployment{{PipelineID: "p", EnvironmentID: "prod",
				EnvironmentName: "production", EnvironmentType: devops.EnvironmentProduction, SequenceNumber: seq,
				State: states[rnd.IntN(len(states))], Service: []string{"checkout", "search"}[rnd.IntN(2)],
				FinishedAt: at, UpdatedAt: at}}})
		}
		for _, at := range []time.Time{from, mid.Add(-time.Microsecond), mid, mid, mid, mid.Add(time.Microsecond),
			to.Add(-time.Microsecond), to} {
			record(at)
		}
		for range 60 {
			record(from.Add(time.Duration(rnd.Int64N(int64(to.Sub(from))))).Truncate(time.Microsecond))
		}
		whole, err := s.ReleaseDeployments(ctx, x.tn, store.ReleaseScope{From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		var pieces []store.ReleaseDeployment
		for lo := from; lo.Before(to); lo = lo.Add(91 * 24 * time.Hour) {
			hi := lo.Add(91 * 24 * time.Hour)
			if hi.After(to) {
				hi = to
			}
			part, err := s.ReleaseDeployments(ctx, x.tn, store.ReleaseScope{From: lo, To: hi})
			if err != nil {
				t.Fatal(err)
			}
			pieces = append(pieces, part...)
		}
		if len(whole) != int(seq)-1 { // the one at to is outside
			t.Errorf("read %d deployments, want %d", len(whole), seq-1)
		}
		if !reflect.DeepEqual(whole, pieces) {
			t.Errorf("the window read whole differs from its pieces:\n%+v\n%+v", whole, pieces)
		}
	})
}
