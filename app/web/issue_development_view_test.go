package web

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/templates"
)

// t0 is the start of every mapping test's story; now is set per test.
var t0 = time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)

func TestHumanDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "< 1 min"},
		{29 * time.Second, "< 1 min"},
		{30 * time.Second, "1 min"},
		{45 * time.Minute, "45 min"},
		{59*time.Minute + 29*time.Second, "59 min"},
		{59*time.Minute + 31*time.Second, "1 h"},
		{2*time.Hour + 29*time.Minute, "2 h"},
		{3 * time.Hour, "3 h"},
		{23*time.Hour + 20*time.Minute, "23 h"},
		{23*time.Hour + 40*time.Minute, "1 d"},
		{2 * 24 * time.Hour, "2 d"},
		{13 * 24 * time.Hour, "13 d"},
		{13*24*time.Hour + 13*time.Hour, "2 w"},
		{30 * 24 * time.Hour, "4 w"},
		{-3 * time.Hour, "3 h"},
	} {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestMoment(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		at   time.Time
		want templates.Moment
	}{
		{"unknown", time.Time{}, templates.Moment{}},
		{"seconds ago", now.Add(-20 * time.Second), templates.Moment{Relative: "just now", ISO: "2026-11-20T11:59:40Z", Exact: "20 Nov 2026, 11:59 UTC"}},
		{"hours ago", now.Add(-3 * time.Hour), templates.Moment{Relative: "3 h ago", ISO: "2026-11-20T09:00:00Z", Exact: "20 Nov 2026, 09:00 UTC"}},
		{"days ago, another zone", time.Date(2026, 11, 18, 13, 0, 0, 0, time.FixedZone("CET", 3600)), templates.Moment{Relative: "2 d ago", ISO: "2026-11-18T12:00:00Z", Exact: "18 Nov 2026, 12:00 UTC"}},
		{"weeks ago", now.Add(-15 * 24 * time.Hour), templates.Moment{Relative: "2 w ago", ISO: "2026-11-05T12:00:00Z", Exact: "5 Nov 2026, 12:00 UTC"}},
		{"over a month ago, this year", time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), templates.Moment{Relative: "2 Mar", ISO: "2026-03-02T08:00:00Z", Exact: "2 Mar 2026, 08:00 UTC"}},
		{"last year", time.Date(2025, 10, 2, 8, 0, 0, 0, time.UTC), templates.Moment{Relative: "2 Oct 2025", ISO: "2025-10-02T08:00:00Z", Exact: "2 Oct 2025, 08:00 UTC"}},
		{"clock skew of seconds", now.Add(40 * time.Second), templates.Moment{Relative: "just now", ISO: "2026-11-20T12:00:40Z", Exact: "20 Nov 2026, 12:00 UTC"}},
		{"future", now.Add(5 * time.Minute), templates.Moment{Relative: "in 5 min", ISO: "2026-11-20T12:05:00Z", Exact: "20 Nov 2026, 12:05 UTC"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := moment(tt.at, now); got != tt.want {
				t.Errorf("moment = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// deployment is a deployment record for the mapping tests.
func deployment(env string, typ devops.EnvironmentType, seq int64, state devops.DeploymentState, at time.Time) store.DeploymentRecord {
	return store.DeploymentRecord{
		ID: fmt.Sprintf("src:deploy:%s:%d", env, seq),
		Deployment: devops.Deployment{PipelineID: "deploy", PipelineName: "Shop deploy", EnvironmentID: env, EnvironmentName: env,
			EnvironmentType: typ, SequenceNumber: seq, State: state, UpdatedAt: at, FinishedAt: at,
			URL: fmt.Sprintf("https://ci.example.com/deploy/%d", seq)},
		CommitCount: 2, CommitsComplete: true,
	}
}

func TestDevelopmentViewSummary(t *testing.T) {
	now := t0.Add(5 * 24 * time.Hour)
	for _, tt := range []struct {
		name string
		dev  *store.Development
		want templates.SummaryView
	}{
		{
			name: "nothing linked",
			dev:  &store.Development{IssueKey: "OPS-7", Totals: map[string]int{}},
			want: templates.SummaryView{},
		},
		{
			name: "counts come from the totals, singular and plural",
			dev: &store.Development{
				Branches: []store.BranchRecord{{Branch: devops.Branch{Name: "feature/OPS-7"}}},
				Commits:  []store.CommitRecord{{Commit: devops.Commit{SHA: "a"}}, {Commit: devops.Commit{SHA: "b"}}},
				Totals:   map[string]int{store.EntityBranch: 1, store.EntityCommit: 60},
			},
			want: templates.SummaryView{Branches: "1 branch", Commits: "60 commits"},
		},
		{
			name: "pull requests by state in a fixed order",
			dev: &store.Development{
				PullRequests: []store.PullRequestRecord{
					{PullRequest: devops.PullRequest{State: devops.PullRequestMerged}},
					{PullRequest: devops.PullRequest{State: devops.PullRequestDraft}},
					{PullRequest: devops.PullRequest{State: devops.PullRequestOpen}},
					{PullRequest: devops.PullRequest{State: devops.PullRequestMerged}},
					{PullRequest: devops.PullRequest{State: devops.PullRequestDeclined}},
				},
				Totals: map[string]int{store.EntityPullRequest: 5},
			},
			want: templates.SummaryView{PullRequests: "5 pull requests", PullRequestStates: []templates.Lozenge{
				{Label: "1 open", Tone: templates.ToneInProgress}, {Label: "1 draft", Tone: templates.ToneNeutral},
				{Label: "2 merged", Tone: templates.ToneSuccess}, {Label: "1 declined", Tone: templates.ToneFailed},
			}},
		},
		{
			name: "latest build by time, not by list position",
			dev: &store.Development{
				Builds: []store.BuildRecord{
					{Build: devops.Build{PipelineName: "CI", BuildNumber: 4, State: devops.BuildFailed, UpdatedAt: t0.Add(time.Hour)}},
					{Build: devops.Build{PipelineName: "CI", BuildNumber: 5, State: devops.BuildInProgress, StartedAt: t0.Add(2 * time.Hour)}},
					{Build: devops.Build{PipelineName: "CI", BuildNumber: 3, State: devops.BuildSuccessful, FinishedAt: t0}},
				},
				Totals: map[string]int{store.EntityBuild: 3},
			},
			want: templates.SummaryView{LatestBuild: &templates.Lozenge{Label: "In progress", Tone: templates.ToneInProgress}, LatestBuildName: "CI #5"},
		},
		{
			name: "environments ordered by type, each with its latest state",
			dev: &store.Development{
				Deployments: []store.DeploymentRecord{
					deployment("preview-42", devops.EnvironmentUnmapped, 9, devops.DeploymentSuccessful, t0.Add(9*time.Hour)),
					deployment("prod-us", devops.EnvironmentProduction, 8, devops.DeploymentRolledBack, t0.Add(8*time.Hour)),
					deployment("prod-eu", devops.EnvironmentProduction, 7, devops.DeploymentInProgress, t0.Add(7*time.Hour)),
					deployment("staging", devops.EnvironmentStaging, 6, devops.DeploymentFailed, t0.Add(6*time.Hour)),
					deployment("staging", devops.EnvironmentStaging, 5, devops.DeploymentSuccessful, t0.Add(5*time.Hour)),
					deployment("qa", devops.EnvironmentTesting, 4, devops.DeploymentSuccessful, t0.Add(4*time.Hour)),
					deployment("dev", devops.EnvironmentDevelopment, 3, devops.DeploymentCancelled, t0.Add(3*time.Hour)),
				},
				Totals: map[string]int{store.EntityDeployment: 7},
			},
			want: templates.SummaryView{Environments: []templates.EnvironmentSummary{
				{Name: "dev", Type: "development", TypeLabel: "Development", State: templates.Lozenge{Label: "Cancelled", Tone: templates.ToneNeutral}},
				{Name: "qa", Type: "testing", TypeLabel: "Testing", State: templates.Lozenge{Label: "Successful", Tone: templates.ToneSuccess}},
				{Name: "staging", Type: "staging", TypeLabel: "Staging", State: templates.Lozenge{Label: "Failed", Tone: templates.ToneFailed}},
				{Name: "prod-eu", Type: "production", TypeLabel: "Production", State: templates.Lozenge{Label: "In progress", Tone: templates.ToneInProgress}},
				{Name: "prod-us", Type: "production", TypeLabel: "Production", State: templates.Lozenge{Label: "Rolled back", Tone: templates.ToneMoved}},
				{Name: "preview-42", Type: "unmapped", TypeLabel: "Unmapped", State: templates.Lozenge{Label: "Successful", Tone: templates.ToneSuccess}},
			}},
		},
		{
			name: "open incidents",
			dev: &store.Development{
				Incidents: []store.IncidentRecord{
					{Incident: devops.Incident{Status: devops.IncidentOpen}},
					{Incident: devops.Incident{Status: devops.IncidentResolved}},
					{Incident: devops.Incident{Status: devops.IncidentOpen}},
				},
				Totals: map[string]int{store.EntityIncident: 3},
			},
			want: templates.SummaryView{Incidents: "2 open incidents", OpenIncidents: 2},
		},
		{
			name: "only resolved incidents",
			dev: &store.Development{
				Incidents: []store.IncidentRecord{{Incident: devops.Incident{Status: devops.IncidentResolved}}},
				Totals:    map[string]int{store.EntityIncident: 1},
			},
			want: templates.SummaryView{Incidents: "No open incidents"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := developmentView(tt.dev, now).Summary
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("summary\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDevelopmentViewLatestPerEnvironment(t *testing.T) {
	now := t0.Add(24 * time.Hour)
	for _, tt := range []struct {
		name      string
		deps      []store.DeploymentRecord
		wantState string
		wantType  string
	}{
		{
			name: "newest by time even when listed last",
			deps: []store.DeploymentRecord{
				deployment("prod", devops.EnvironmentProduction, 1, devops.DeploymentFailed, t0),
				deployment("prod", devops.EnvironmentProduction, 2, devops.DeploymentSuccessful, t0.Add(time.Hour)),
			},
			wantState: "Successful", wantType: "production",
		},
		{
			name: "same time: the higher sequence number",
			deps: []store.DeploymentRecord{
				deployment("prod", devops.EnvironmentProduction, 3, devops.DeploymentRolledBack, t0),
				deployment("prod", devops.EnvironmentProduction, 4, devops.DeploymentPending, t0),
			},
			wantState: "Pending", wantType: "production",
		},
		{
			name: "type from the latest deployment after a mapping change",
			deps: []store.DeploymentRecord{
				deployment("eu-1", devops.EnvironmentStaging, 6, devops.DeploymentSuccessful, t0.Add(2*time.Hour)),
				deployment("eu-1", devops.EnvironmentUnmapped, 5, devops.DeploymentSuccessful, t0),
			},
			wantState: "Successful", wantType: "staging",
		},
		{
			name:      "an invalid stored type counts as unmapped",
			deps:      []store.DeploymentRecord{deployment("x", devops.EnvironmentType("galaxy"), 1, devops.DeploymentState("weird"), t0)},
			wantState: "Unknown", wantType: "unmapped",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			envs := developmentView(&store.Development{Deployments: tt.deps, Totals: map[string]int{store.EntityDeployment: len(tt.deps)}}, now).Environments
			if len(envs) != 1 {
				t.Fatalf("environments %+v, want one", envs)
			}
			if envs[0].Latest.Label != tt.wantState || envs[0].Type != tt.wantType {
				t.Errorf("latest %q of type %q, want %q of type %q", envs[0].Latest.Label, envs[0].Type, tt.wantState, tt.wantType)
			}
			if n := len(envs[0].Deployments.Items); n != len(tt.deps) {
				t.Errorf("%d deployments in the group, want %d", n, len(tt.deps))
			}
		})
	}
}

// story is an issue's whole way: a branch started at t0, commits, a pull
// request, builds, deployments to staging and production, an incident.
func story() *store.Development {
	return &store.Development{
		IssueKey: "OPS-7",
		Branches: []store.BranchRecord{{Branch: devops.Branch{Name: "feature/OPS-7-login", URL: "https://github.com/acme/shop/tree/feature/OPS-7-login",
			FirstCommitAt: t0, UpdatedAt: t0.Add(time.Hour), LastCommitSHA: "3333333333333333333333333333333333333333"}}},
		Commits: []store.CommitRecord{
			{Commit: devops.Commit{SHA: "3333333333333333333333333333333333333333", Message: "Fix typo\n\nlonger body", AuthoredAt: t0.Add(time.Hour),
				Author: devops.Person{Username: "ada"}, URL: "https://github.com/acme/shop/commit/3333"}},
			{Commit: devops.Commit{SHA: "2222222222222222222222222222222222222222", Message: "OPS-7: validate the login form", AuthoredAt: t0.Add(30 * time.Minute),
				Author: devops.Person{Name: "Ada Lovelace", Username: "ada"}, URL: "javascript:alert(1)"}},
		},
		PullRequests: []store.PullRequestRecord{{PullRequest: devops.PullRequest{Number: 7, Title: "OPS-7 login", State: devops.PullRequestMerged,
			CreatedAt: t0.Add(2 * time.Hour), MergedAt: t0.Add(26 * time.Hour), UpdatedAt: t0.Add(26 * time.Hour), URL: "https://github.com/acme/shop/pull/7",
			SourceBranch: "feature/OPS-7-login", DestinationBranch: "main",
			Reviewers: []devops.Reviewer{{Person: devops.Person{Name: "Grace"}, Approval: devops.ApprovalApproved}, {Person: devops.Person{Username: "linus"}, Approval: devops.ApprovalNeedsWork}}}}},
		Builds: []store.BuildRecord{
			{Build: devops.Build{PipelineName: "Shop CI", BuildNumber: 12, State: devops.BuildSuccessful, FinishedAt: t0.Add(27 * time.Hour), Tests: &devops.TestSummary{Total: 120, Passed: 119, Failed: 1}}},
			{Build: devops.Build{PipelineName: "Shop CI", BuildNumber: 11, State: devops.BuildFailed, FinishedAt: t0.Add(26*time.Hour + 30*time.Minute)}},
		},
		Deployments: []store.DeploymentRecord{
			deployment("production", devops.EnvironmentProduction, 21, devops.DeploymentSuccessful, t0.Add(77*time.Hour)),
			deployment("production", devops.EnvironmentProduction, 20, devops.DeploymentFailed, t0.Add(76*time.Hour)),
			deployment("staging", devops.EnvironmentStaging, 19, devops.DeploymentSuccessful, t0.Add(29*time.Hour)),
		},
		Incidents: []store.IncidentRecord{{ID: "src:inc-1", SuspectDeploymentID: "src:deploy:production:21", SuspectBasis: store.SuspectService,
			Incident: devops.Incident{SourceID: "INC-1", Title: "Checkout returns 500", Severity: "critical", Status: devops.IncidentOpen,
				Service: "shop", OpenedAt: t0.Add(80 * time.Hour), URL: "https://status.example.com/1"}}},
		Suspects: map[string]store.DeploymentRecord{
			"src:deploy:production:21": deployment("production", devops.EnvironmentProduction, 21, devops.DeploymentSuccessful, t0.Add(77*time.Hour)),
		},
		Totals: map[string]int{store.EntityBranch: 1, store.EntityCommit: 2, store.EntityPullRequest: 1, store.EntityBuild: 2,
			store.EntityDeployment: 3, store.EntityIncident: 1},
	}
}

func TestDevelopmentViewTimeline(t *testing.T) {
	now := t0.Add(100 * time.Hour)
	type step struct{ label, detail, elapsed, url string }
	for _, tt := range []struct {
		name   string
		mutate func(d *store.Development)
		want   []step
	}{
		{
			name: "the whole way, with elapsed times",
			want: []step{
				{"First commit", "on feature/OPS-7-login", "", "https://github.com/acme/shop/tree/feature/OPS-7-login"},
				{"Pull request #7 opened", "OPS-7 login", "2 h", "https://github.com/acme/shop/pull/7"},
				{"Pull request #7 merged", "OPS-7 login", "1 d", "https://github.com/acme/shop/pull/7"},
				{"First successful build", "Shop CI #12", "1 h", ""},
				{"Reached staging", "Staging · Shop deploy #19", "2 h", "https://ci.example.com/deploy/19"},
				{"Reached production", "Production · Shop deploy #21", "2 d", "https://ci.example.com/deploy/21"},
				{"Incident opened", "Checkout returns 500", "3 h", "https://status.example.com/1"},
			},
		},
		{
			name: "first commit from the commits when no branch knows it; an unsafe URL is dropped",
			mutate: func(d *store.Development) {
				d.Branches[0].FirstCommitAt = time.Time{}
				d.PullRequests, d.Builds, d.Deployments, d.Incidents = nil, nil, nil, nil
			},
			want: []step{{"First commit", "2222222 OPS-7: validate the login form", "", ""}},
		},
		{
			name: "steps follow time, not the usual order",
			mutate: func(d *store.Development) {
				d.Incidents[0].OpenedAt = t0.Add(28 * time.Hour) // after the build, before staging
				d.Deployments = d.Deployments[2:]
				d.PullRequests = nil
			},
			want: []step{
				{"First commit", "on feature/OPS-7-login", "", "https://github.com/acme/shop/tree/feature/OPS-7-login"},
				{"First successful build", "Shop CI #12", "1 d", ""},
				{"Incident opened", "Checkout returns 500", "1 h", "https://status.example.com/1"},
				{"Reached staging", "Staging · Shop deploy #19", "1 h", "https://ci.example.com/deploy/19"},
			},
		},
		{
			name: "an environment never deployed successfully is not reached; unknown times are left out",
			mutate: func(d *store.Development) {
				d.Deployments = d.Deployments[1:2] // the failed production deployment only
				d.Builds[0].FinishedAt = time.Time{}
				d.PullRequests[0].MergedAt = time.Time{}
				d.Incidents = nil
			},
			want: []step{
				{"First commit", "on feature/OPS-7-login", "", "https://github.com/acme/shop/tree/feature/OPS-7-login"},
				{"Pull request #7 opened", "OPS-7 login", "2 h", "https://github.com/acme/shop/pull/7"},
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dev := story()
			if tt.mutate != nil {
				tt.mutate(dev)
			}
			var got []step
			for _, s := range developmentView(dev, now).Timeline {
				got = append(got, step{s.Label, s.Detail, s.Elapsed, s.URL})
				if !s.When.Known() {
					t.Errorf("step %q has no time", s.Label)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("timeline\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestDevelopmentViewItems(t *testing.T) {
	now := t0.Add(100 * time.Hour)
	v := developmentView(story(), now)

	wantCommits := []templates.CommitItem{
		{SHA: "3333333333333333333333333333333333333333", ShortSHA: "3333333", Message: "Fix typo", Author: "ada",
			Authored: moment(t0.Add(time.Hour), now), URL: "https://github.com/acme/shop/commit/3333"},
		{SHA: "2222222222222222222222222222222222222222", ShortSHA: "2222222", Message: "OPS-7: validate the login form", Author: "Ada Lovelace",
			Authored: moment(t0.Add(30*time.Minute), now)},
	}
	if !reflect.DeepEqual(v.Commits.Items, wantCommits) {
		t.Errorf("commits\n got %+v\nwant %+v", v.Commits.Items, wantCommits)
	}
	if got := v.Commits.Items[0].Authored.Relative; got != "4 d ago" { // 99 h
		t.Errorf("commit time %q, want 4 d ago", got)
	}

	pr := v.PullRequests.Items[0]
	if pr.Number != "#7" || pr.State != (templates.Lozenge{Label: "Merged", Tone: templates.ToneSuccess}) || pr.Approvals != "1 of 2 approved" ||
		!reflect.DeepEqual(pr.Reviewers, []templates.ReviewerItem{
			{Name: "Grace", Verdict: templates.Lozenge{Label: "Approved", Tone: templates.ToneSuccess}},
			{Name: "linus", Verdict: templates.Lozenge{Label: "Needs work", Tone: templates.ToneMoved}},
		}) {
		t.Errorf("pull request %+v", pr)
	}

	b := v.Builds.Items[0]
	if b.Pipeline != "Shop CI" || b.Number != "#12" || !b.HasTests || b.TestsPassed != 119 || b.TestsFailed != 1 || b.State.Tone != templates.ToneSuccess {
		t.Errorf("build %+v", b)
	}
	if v.Builds.Items[1].HasTests {
		t.Errorf("a build without test counts has tests: %+v", v.Builds.Items[1])
	}

	if len(v.Environments) != 2 || v.Environments[0].Name != "staging" || v.Environments[1].Name != "production" {
		t.Fatalf("environments %+v", v.Environments)
	}
	prod := v.Environments[1].Deployments.Items
	if len(prod) != 2 || prod[0].Number != "#21" || prod[0].Commits != 2 || prod[0].CommitsIncomplete || prod[1].State.Tone != templates.ToneFailed {
		t.Errorf("production deployments %+v", prod)
	}

	in := v.Incidents.Items[0]
	wantSuspect := &templates.SuspectView{Deployment: "Shop deploy #21", Environment: "production",
		State: templates.Lozenge{Label: "Successful", Tone: templates.ToneSuccess}, When: moment(t0.Add(77*time.Hour), now),
		URL: "https://ci.example.com/deploy/21", Basis: "last production deployment of shop before the incident opened"}
	if in.ID != "INC-1" || in.Severity != "critical" || in.Status.Tone != templates.ToneFailed || !reflect.DeepEqual(in.Suspect, wantSuspect) {
		t.Errorf("incident %+v, suspect %+v", in, in.Suspect)
	}

	// A suspect the store could not load, and the other bases.
	dev := story()
	dev.Incidents[0].SuspectDeploymentID = "src:deploy:gone"
	if s := developmentView(dev, now).Incidents.Items[0].Suspect; s != nil {
		t.Errorf("suspect of a missing deployment: %+v", s)
	}
	for basis, want := range map[string]string{store.SuspectExplicit: "named by the incident", store.SuspectCommit: "shipped the incident's root-cause commit", "": ""} {
		dev := story()
		dev.Incidents[0].SuspectBasis = basis
		if got := developmentView(dev, now).Incidents.Items[0].Suspect.Basis; got != want {
			t.Errorf("basis %q reads %q, want %q", basis, got, want)
		}
	}

	// Incomplete commit range.
	dev = story()
	dev.Deployments[2].CommitsComplete = false
	if !developmentView(dev, now).Environments[0].Deployments.Items[0].CommitsIncomplete {
		t.Error("an incomplete commit range is not flagged")
	}
}

func TestDevelopmentViewUnsafeTextAndURLs(t *testing.T) {
	now := t0.Add(time.Hour)
	long := strings.Repeat("é", 150)
	dev := &store.Development{
		Commits: []store.CommitRecord{
			{Commit: devops.Commit{SHA: "abc", Message: "  <script>alert(1)</script>\nsecond line", URL: "JavaScript:alert(1)"}},
			{Commit: devops.Commit{SHA: "4444444444444444444444444444444444444444", Message: long, URL: "https:evil"}},
		},
		Branches: []store.BranchRecord{{Branch: devops.Branch{Name: "b", URL: "//evil.example.com/x"}}},
		Builds:   []store.BuildRecord{{Build: devops.Build{PipelineID: "ci", URL: "data:text/html,<script>alert(1)</script>"}}},
		Totals:   map[string]int{store.EntityCommit: 2, store.EntityBranch: 1, store.EntityBuild: 1},
	}
	v := developmentView(dev, now)
	if c := v.Commits.Items[0]; c.Message != "<script>alert(1)</script>" || c.URL != "" || c.ShortSHA != "abc" {
		t.Errorf("first commit %+v: text kept as text for templ to escape, URL dropped, short sha as is", c)
	}
	if c := v.Commits.Items[1]; c.URL != "" || len(c.Message) > maxCommitMessageBytes || !strings.HasSuffix(c.Message, "…") {
		t.Errorf("second commit %+v: URL without host dropped, long message cut", c)
	}
	if v.Branches.Items[0].URL != "" || v.Builds.Items[0].URL != "" {
		t.Errorf("scheme-relative or data: URLs kept: %+v %+v", v.Branches.Items[0], v.Builds.Items[0])
	}
}

func TestDevelopmentViewFolds(t *testing.T) {
	now := t0.Add(24 * time.Hour)
	commits := make([]store.CommitRecord, 12)
	for i := range commits {
		commits[i] = store.CommitRecord{Commit: devops.Commit{SHA: fmt.Sprintf("%040d", i), AuthoredAt: t0.Add(-time.Duration(i) * time.Hour)}}
	}
	var deps []store.DeploymentRecord
	for i := range 7 {
		deps = append(deps, deployment("prod", devops.EnvironmentProduction, int64(10-i), devops.DeploymentSuccessful, t0.Add(-time.Duration(i)*time.Hour)))
	}
	for _, tt := range []struct {
		name                           string
		dev                            *store.Development
		get                            func(v templates.DevelopmentView) (head, rest, omitted, total int)
		head, rest, omitted, wantTotal int
	}{
		{
			name: "twelve commits loaded of thirty linked",
			dev:  &store.Development{Commits: commits, Totals: map[string]int{store.EntityCommit: 30}},
			get: func(v templates.DevelopmentView) (int, int, int, int) {
				return len(v.Commits.Head()), len(v.Commits.Rest()), v.Commits.Omitted(), v.Commits.Total
			},
			head: 5, rest: 7, omitted: 18, wantTotal: 30,
		},
		{
			name: "a total that lags behind the lists never goes below them",
			dev:  &store.Development{Commits: commits[:3], Totals: map[string]int{store.EntityCommit: 1}},
			get: func(v templates.DevelopmentView) (int, int, int, int) {
				return len(v.Commits.Head()), len(v.Commits.Rest()), v.Commits.Omitted(), v.Commits.Total
			},
			head: 3, rest: 0, omitted: 0, wantTotal: 3,
		},
		{
			name: "seven deployments to one environment fold after three",
			dev:  &store.Development{Deployments: deps, Totals: map[string]int{store.EntityDeployment: 9}},
			get: func(v templates.DevelopmentView) (int, int, int, int) {
				l := v.Environments[0].Deployments
				return len(l.Head()), len(l.Rest()), v.DeploymentsOmitted, v.DeploymentsTotal
			},
			head: 3, rest: 4, omitted: 2, wantTotal: 9,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			head, rest, omitted, total := tt.get(developmentView(tt.dev, now))
			if head != tt.head || rest != tt.rest || omitted != tt.omitted || total != tt.wantTotal {
				t.Errorf("head %d, rest %d, omitted %d, total %d; want %d, %d, %d, %d", head, rest, omitted, total, tt.head, tt.rest, tt.omitted, tt.wantTotal)
			}
		})
	}
}

func TestDevelopmentViewEmpty(t *testing.T) {
	for name, dev := range map[string]*store.Development{
		"nil":         nil,
		"no links":    {IssueKey: "OPS-7", Totals: map[string]int{}, Suspects: map[string]store.DeploymentRecord{}},
		"zero totals": {IssueKey: "OPS-7", Totals: map[string]int{store.EntityCommit: 0}},
	} {
		t.Run(name, func(t *testing.T) {
			v := developmentView(dev, t0)
			if !v.Empty() || !v.Commits.Empty() || len(v.Timeline) != 0 || len(v.Environments) != 0 || !reflect.DeepEqual(v.Summary, templates.SummaryView{}) {
				t.Errorf("view of an unlinked issue: %+v", v)
			}
		})
	}
	// An orphan link (the entity row is gone) still makes the panel non-empty.
	v := developmentView(&store.Development{Totals: map[string]int{store.EntityCommit: 1}}, t0)
	if v.Empty() || v.Summary.Commits != "1 commit" || v.Commits.Omitted() != 1 {
		t.Errorf("view with one unloaded commit: %+v", v)
	}
}

// development200 is an issue with 200 linked entities as the store returns
// them: 20 branches, 60 commits, 30 pull requests, 40 builds, 40
// deployments over four environments and 10 incidents with suspects.
func development200() *store.Development {
	d := story()
	d.Branches, d.Commits, d.PullRequests, d.Builds, d.Deployments = nil, nil, nil, nil, nil
	for i := range 20 {
		d.Branches = append(d.Branches, store.BranchRecord{Branch: devops.Branch{Name: fmt.Sprintf("feature/OPS-7-%d", i), URL: "https://github.com/acme/shop/tree/x",
			LastCommitSHA: fmt.Sprintf("%040d", i), UpdatedAt: t0.Add(time.Duration(i) * time.Hour), FirstCommitAt: t0}})
	}
	for i := range 60 {
		d.Commits = append(d.Commits, store.CommitRecord{Commit: devops.Commit{SHA: fmt.Sprintf("%040d", i), Message: "OPS-7: change <" + fmt.Sprint(i) + ">\n\nbody",
			Author: devops.Person{Name: "Ada Lovelace"}, AuthoredAt: t0.Add(time.Duration(i) * time.Minute), URL: "https://github.com/acme/shop/commit/x"}})
	}
	for i := range 30 {
		d.PullRequests = append(d.PullRequests, store.PullRequestRecord{PullRequest: devops.PullRequest{Number: int64(i + 1), Title: "OPS-7 part", State: devops.PullRequestMerged,
			CreatedAt: t0.Add(time.Hour), MergedAt: t0.Add(20 * time.Hour), UpdatedAt: t0.Add(20 * time.Hour), URL: "https://github.com/acme/shop/pull/1",
			SourceBranch: "feature/OPS-7", DestinationBranch: "main", Author: devops.Person{Name: "Ada"},
			Reviewers: []devops.Reviewer{{Person: devops.Person{Name: "Grace"}, Approval: devops.ApprovalApproved}, {Person: devops.Person{Name: "Linus"}, Approval: devops.ApprovalNeedsWork}}}})
	}
	for i := range 40 {
		d.Builds = append(d.Builds, store.BuildRecord{Build: devops.Build{PipelineName: "Shop CI", BuildNumber: int64(i + 1), State: devops.BuildSuccessful,
			FinishedAt: t0.Add(time.Duration(21+i) * time.Hour), URL: "https://ci.example.com/1", Tests: &devops.TestSummary{Passed: 100, Failed: 1}}})
	}
	for e, env := range []devops.EnvironmentType{devops.EnvironmentDevelopment, devops.EnvironmentTesting, devops.EnvironmentStaging, devops.EnvironmentProduction} {
		for i := range 10 {
			d.Deployments = append(d.Deployments, deployment(string(env), env, int64(e*10+i+1), devops.DeploymentSuccessful, t0.Add(time.Duration(30+e*10+i)*time.Hour)))
		}
	}
	in := d.Incidents[0]
	d.Incidents = nil
	for i := range 10 {
		in.Incident.SourceID = fmt.Sprintf("INC-%d", i)
		d.Incidents = append(d.Incidents, in)
	}
	d.Totals = map[string]int{store.EntityBranch: 20, store.EntityCommit: 60, store.EntityPullRequest: 30, store.EntityBuild: 40,
		store.EntityDeployment: 40, store.EntityIncident: 10}
	return d
}

// BenchmarkIssuePanel200 maps an issue with 200 linked entities to its view
// and renders the panel: everything a panel request does after its queries.
func BenchmarkIssuePanel200(b *testing.B) {
	dev := development200()
	now := t0.Add(100 * time.Hour)
	ctx := context.Background()
	for b.Loop() {
		v := templates.IssuePanelView{Page: templates.Page{Title: "DevOps", StaticPrefix: "/jira/static"}, IssueKey: "OPS-7", Development: developmentView(dev, now)}
		buf := templ.GetBuffer()
		if err := templates.IssuePanel(v).Render(ctx, buf); err != nil {
			b.Fatal(err)
		}
		templ.ReleaseBuffer(buf)
	}
}
