package store_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
)

// releaseDeploy is a deployment of pipeline "deploy" naming its issues
// itself, as a generic source's deployment does.
func releaseDeploy(env string, typ devops.EnvironmentType, seq int64, state devops.DeploymentState, service string, at time.Time, keys ...string) devops.Batch {
	return devops.Batch{Deployments: []devops.Deployment{{
		PipelineID: "deploy", PipelineName: "Deploy", EnvironmentID: strings.ToLower(env), EnvironmentName: env,
		EnvironmentType: typ, SequenceNumber: seq, State: state, Service: service, UpdatedAt: at, IssueKeys: keys,
	}}}
}

func releaseBuild(n int64, state devops.BuildState, at time.Time, keys ...string) devops.Batch {
	return devops.Batch{Builds: []devops.Build{{PipelineID: "ci", PipelineName: "CI", BuildNumber: n, State: state,
		FinishedAt: at, UpdatedAt: at, IssueKeys: keys}}}
}

func releasePR(n int64, state devops.PullRequestState, keys ...string) devops.Batch {
	return devops.Batch{Repository: repo, PullRequests: []devops.PullRequest{{ID: fmt.Sprint(n), RepositoryID: repo.ID,
		Number: n, Title: fmt.Sprint("PR ", n), State: state, UpdatedAt: t0, IssueKeys: keys}}}
}

// seedRelease gives x a small release of project PAY, with a WEB
// deployment beside it and one of PAYX, whose keys start like PAY's. who
// marks x's content ("A", "B") so a leak between sites shows.
func seedRelease(t *testing.T, s *store.Store, x *site, who string) {
	t.Helper()
	ctx := context.Background()
	for _, is := range []store.JiraIssue{
		{IssueID: "10001", IssueKey: "PAY-1", ProjectKey: "PAY", Summary: who + " pay one", StatusName: "Done", StatusCategory: "done", UpdatedAt: t0},
		{IssueID: "10002", IssueKey: "PAY-2", ProjectKey: "PAY", Summary: who + " pay two", StatusName: "In Progress", StatusCategory: "indeterminate", UpdatedAt: t0},
	} {
		must(t, s.UpsertJiraIssue(ctx, x.tn, is))
	}
	x.record(releasePR(1, devops.PullRequestMerged, "PAY-1"))
	x.record(releasePR(2, devops.PullRequestOpen, "PAY-1"))
	x.record(releasePR(3, devops.PullRequestOpen, "PAY-2"))
	x.record(releaseBuild(1, devops.BuildFailed, t0, "PAY-1"))
	x.record(releaseBuild(2, devops.BuildSuccessful, t0.Add(time.Hour), "PAY-1"))
	x.record(releaseDeploy("Staging", devops.EnvironmentStaging, 1, devops.DeploymentSuccessful, "checkout-api", t0.Add(2*time.Hour), "PAY-1"))
	x.record(releaseDeploy("Production", devops.EnvironmentProduction, 1, devops.DeploymentFailed, "checkout-api", t0.Add(3*time.Hour), "PAY-1"))
	x.record(releaseDeploy("Production", devops.EnvironmentProduction, 2, devops.DeploymentSuccessful, "checkout-api", t0.Add(4*time.Hour), "PAY-1", "PAY-2"))
	x.record(releaseDeploy("Production", devops.EnvironmentProduction, 3, devops.DeploymentSuccessful, "storefront", t0.Add(5*time.Hour), "WEB-1"))
	x.record(releaseDeploy("Production", devops.EnvironmentProduction, 4, devops.DeploymentSuccessful, "checkout-api", t0.Add(6*time.Hour), "PAYX-1"))
}

// deployments describes a list as "<environment>#<seq>:<state>:<keys>/<count>".
func describeDeployments(ds []store.RecentDeployment) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s#%d:%s:%s/%d", d.EnvironmentName, d.SequenceNumber, d.State,
			strings.Join(d.IssueKeys, ","), d.IssueCount))
	}
	return out
}

func TestIssueReadiness(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := newSite(t, s, "site-a"), newSite(t, s, "site-b")
		seedRelease(t, s, a, "A")
		// B has the same keys with other content, and more of it.
		must(t, s.UpsertJiraIssue(ctx, b.tn, store.JiraIssue{IssueID: "10003", IssueKey: "PAY-3", ProjectKey: "PAY",
			Summary: "B pay three", StatusName: "To Do", StatusCategory: "new", UpdatedAt: t0}))
		seedRelease(t, s, b, "B")
		b.record(releaseBuild(3, devops.BuildInProgress, t0.Add(9*time.Hour), "PAY-1", "PAY-3"))
		b.record(releaseDeploy("Canary", devops.EnvironmentProduction, 1, devops.DeploymentRolledBack, "checkout-api", t0.Add(9*time.Hour), "PAY-1", "PAY-3"))

		got, err := s.IssueReadiness(ctx, a.tn, []string{"PAY-1", "pay-2", "PAY-3", "PAY-1", "not a key"}, store.DeploymentScope{})
		if err != nil {
			t.Fatal(err)
		}
		if keys := readinessKeys(got); !slices.Equal(keys, []string{"PAY-1", "PAY-2", "PAY-3"}) {
			t.Fatalf("issues %v, want PAY-1, PAY-2, PAY-3 in the order asked", keys)
		}
		one, two, three := got[0], got[1], got[2]
		if one.Issue == nil || one.Issue.Summary != "A pay one" || one.Issue.StatusCategory != "done" {
			t.Errorf("PAY-1 issue %+v, want A's", one.Issue)
		}
		if want := map[devops.PullRequestState]int{devops.PullRequestMerged: 1, devops.PullRequestOpen: 1}; !maps.Equal(one.PullRequests, want) {
			t.Errorf("PAY-1 pull requests %v, want %v", one.PullRequests, want)
		}
		if one.LatestBuild == nil || one.LatestBuild.BuildNumber != 2 || one.LatestBuild.State != devops.BuildSuccessful {
			t.Errorf("PAY-1 latest build %+v, want A's CI #2, successful", one.LatestBuild)
		}
		if envs := describeEnvironments(one.Environments); !slices.Equal(envs, []string{"Production#2:successful", "Staging#1:successful"}) {
			t.Errorf("PAY-1 environments %v", envs)
		}
		if two.Issue == nil || two.Issue.StatusName != "In Progress" || two.LatestBuild != nil ||
			!maps.Equal(two.PullRequests, map[devops.PullRequestState]int{devops.PullRequestOpen: 1}) {
			t.Errorf("PAY-2 %+v", two)
		}
		if envs := describeEnvironments(two.Environments); !slices.Equal(envs, []string{"Production#2:successful"}) {
			t.Errorf("PAY-2 environments %v", envs)
		}
		// PAY-3 exists only on B's site.
		if three.Issue != nil || three.LatestBuild != nil || len(three.PullRequests) != 0 || len(three.Environments) != 0 {
			t.Errorf("PAY-3 shows B's data to A: %+v", three)
		}

		// Scope: only staging; only another service.
		got, err = s.IssueReadiness(ctx, a.tn, []string{"PAY-1"}, store.DeploymentScope{Environment: "STAGING"})
		if err != nil {
			t.Fatal(err)
		}
		if envs := describeEnvironments(got[0].Environments); !slices.Equal(envs, []string{"Staging#1:successful"}) {
			t.Errorf("staging only: %v", envs)
		}
		got, err = s.IssueReadiness(ctx, a.tn, []string{"PAY-1"}, store.DeploymentScope{Environment: "production", Service: "storefront"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got[0].Environments) != 0 {
			t.Errorf("service storefront shows checkout-api deployments: %v", describeEnvironments(got[0].Environments))
		}

		// B sees its own: the canary rollback and the in-progress build.
		got, err = s.IssueReadiness(ctx, b.tn, []string{"PAY-1"}, store.DeploymentScope{})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].LatestBuild == nil || got[0].LatestBuild.BuildNumber != 3 || got[0].Issue.Summary != "B pay one" {
			t.Errorf("B's PAY-1: %+v", got[0])
		}
		if envs := describeEnvironments(got[0].Environments); !slices.Equal(envs, []string{"Canary#1:rolled_back", "Production#2:successful", "Staging#1:successful"}) {
			t.Errorf("B's PAY-1 environments %v", envs)
		}

		if got, err := s.IssueReadiness(ctx, a.tn, nil, store.DeploymentScope{}); err != nil || len(got) != 0 {
			t.Errorf("no keys: %v, %v", got, err)
		}
		many := make([]string, store.MaxReadinessIssues+1)
		for i := range many {
			many[i] = fmt.Sprint("PAY-", i+1)
		}
		if _, err := s.IssueReadiness(ctx, a.tn, many, store.DeploymentScope{}); err == nil {
			t.Errorf("%d keys accepted", len(many))
		}
		if _, err := s.IssueReadiness(ctx, nil, []string{"PAY-1"}, store.DeploymentScope{}); err == nil {
			t.Error("nil tenant accepted")
		}
	})
}

func readinessKeys(rs []store.IssueReadiness) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.IssueKey)
	}
	return out
}

func describeEnvironments(ds []store.DeploymentRecord) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s#%d:%s", d.EnvironmentName, d.SequenceNumber, d.State))
	}
	return out
}

func TestRecentDeployments(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := newSite(t, s, "site-a"), newSite(t, s, "site-b")
		seedRelease(t, s, a, "A")
		seedRelease(t, s, b, "B")
		b.record(releaseDeploy("Production", devops.EnvironmentProduction, 9, devops.DeploymentSuccessful, "checkout-api", t0.Add(9*time.Hour), "PAY-9"))

		for _, tt := range []struct {
			name   string
			filter store.DeploymentFilter
			want   []string
		}{
			{"one project, newest first, PAYX left out", store.DeploymentFilter{Projects: []string{"PAY"}}, []string{
				"Production#2:successful:PAY-1,PAY-2/2", "Production#1:failed:PAY-1/1", "Staging#1:successful:PAY-1/1"}},
			{"two projects, keys of those projects only", store.DeploymentFilter{Projects: []string{"WEB", "PAY", "WEB"}}, []string{
				"Production#3:successful:WEB-1/1", "Production#2:successful:PAY-1,PAY-2/2", "Production#1:failed:PAY-1/1",
				"Staging#1:successful:PAY-1/1"}},
			{"environment by type", store.DeploymentFilter{Projects: []string{"PAY"}, DeploymentScope: store.DeploymentScope{Environment: "production"}}, []string{
				"Production#2:successful:PAY-1,PAY-2/2", "Production#1:failed:PAY-1/1"}},
			{"environment by name", store.DeploymentFilter{Projects: []string{"PAY"}, DeploymentScope: store.DeploymentScope{Environment: "Staging"}}, []string{
				"Staging#1:successful:PAY-1/1"}},
			{"service", store.DeploymentFilter{Projects: []string{"PAY", "WEB"}, DeploymentScope: store.DeploymentScope{Service: "Storefront"}}, []string{
				"Production#3:successful:WEB-1/1"}},
			{"unknown service", store.DeploymentFilter{Projects: []string{"PAY"}, DeploymentScope: store.DeploymentScope{Service: "nothing"}}, nil},
			{"per environment", store.DeploymentFilter{Projects: []string{"PAY"}, PerEnvironment: 1}, []string{
				"Production#2:successful:PAY-1,PAY-2/2", "Staging#1:successful:PAY-1/1"}},
			{"limit", store.DeploymentFilter{Projects: []string{"PAY"}, Limit: 1}, []string{
				"Production#2:successful:PAY-1,PAY-2/2"}},
			{"project with no deployments", store.DeploymentFilter{Projects: []string{"OPS"}}, nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.RecentDeployments(ctx, a.tn, tt.filter)
				if err != nil {
					t.Fatal(err)
				}
				if d := describeDeployments(got); !slices.Equal(d, tt.want) {
					t.Errorf("got %q\nwant %q", d, tt.want)
				}
			})
		}

		for name, f := range map[string]store.DeploymentFilter{
			"no project":  {},
			"bad project": {Projects: []string{"pay"}},
		} {
			if _, err := s.RecentDeployments(ctx, a.tn, f); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	})
}

// TestRecentDeploymentsIssueKeys checks the keys of a deployment that
// shipped many issues: the lowest-numbered few, and the full count.
func TestRecentDeploymentsIssueKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		x := newSite(t, s, "site-a")
		var keys []string
		for i := 25; i >= 1; i-- {
			keys = append(keys, fmt.Sprint("PAY-", i))
		}
		keys = append(keys, "OPS-1")
		x.record(releaseDeploy("Production", devops.EnvironmentProduction, 1, devops.DeploymentSuccessful, "", t0, keys...))
		got, err := s.RecentDeployments(context.Background(), x.tn, store.DeploymentFilter{Projects: []string{"PAY"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("got %d deployments", len(got))
		}
		want := []string{"PAY-1", "PAY-2", "PAY-3", "PAY-4", "PAY-5", "PAY-6", "PAY-7", "PAY-8", "PAY-9", "PAY-10"}
		if !slices.Equal(got[0].IssueKeys, want) || got[0].IssueCount != 25 {
			t.Errorf("keys %v (%d), want %v (25)", got[0].IssueKeys, got[0].IssueCount, want)
		}
	})
}
