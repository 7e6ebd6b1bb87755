package store_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// t0 is a base time that survives a database round trip unchanged.
var t0 = oddTime.Truncate(time.Microsecond)

// sha makes a distinct, valid 40-digit commit hash from a short label.
func sha(label string) string {
	h := fmt.Sprintf("%x", label)
	return (h + strings.Repeat("0", 40))[:40]
}

// site is one tenant with a GitHub source, for writing events.
type site struct {
	t   *testing.T
	s   *store.Store
	tn  *tenant.Tenant
	src string
	n   int
}

func newSite(t *testing.T, s *store.Store, clientKey string) *site {
	t.Helper()
	tn := mustUpsert(t, s, install(clientKey))
	t.Cleanup(func() { _ = s.Exec(context.Background(), `DELETE FROM tenants WHERE id = ?`, tn.ID) })
	return &site{t: t, s: s, tn: tn, src: mustCreateSource(t, s, tn, store.SourceGitHub, "").src.ID}
}

// record stores b as a fresh accepted delivery and fails the test on error.
func (x *site) record(b devops.Batch) {
	x.t.Helper()
	x.n++
	if err := x.s.RecordEvent(context.Background(), x.tn, x.src, accepted(fmt.Sprint("d", x.n)), &b); err != nil {
		x.t.Fatalf("RecordEvent: %v", err)
	}
}

var repo = &devops.Repository{ID: "42", Name: "acme/checkout-api", URL: "https://github.com/acme/checkout-api"}

// pushOf is a push to main of commits labelled labels (oldest first) on top
// of before; a label "KL-n ..." puts that key in the message.
func pushOf(before string, labels ...string) devops.Batch {
	b := devops.Batch{Repository: repo, Push: &devops.Push{RepositoryID: repo.ID, Ref: "refs/heads/main"}}
	if before != "" {
		b.Push.Before = sha(before)
	}
	for _, l := range labels {
		c := devops.Commit{SHA: sha(l), RepositoryID: repo.ID, Message: l, IssueKeys: devops.ExtractIssueKeys(l)}
		b.Commits = append(b.Commits, c)
		b.Push.CommitSHAs = append(b.Push.CommitSHAs, c.SHA)
		b.Push.After = c.SHA
	}
	return b
}

func deploy(seq int64, commit string, state devops.DeploymentState, at time.Time) devops.Batch {
	return devops.Batch{Repository: repo, Deployments: []devops.Deployment{{
		PipelineID: "42/deploy", EnvironmentID: "production", EnvironmentName: "production",
		EnvironmentType: devops.EnvironmentProduction, SequenceNumber: seq, State: state,
		RepositoryID: repo.ID, CommitSHA: sha(commit), UpdatedAt: at,
	}}}
}

func (x *site) deploymentID(seq int64) string {
	return store.DeploymentID(x.src, devops.DeploymentKey{PipelineID: "42/deploy", EnvironmentID: "production", SequenceNumber: seq})
}

// deployed returns the labels of a deployment's commit range, its linked
// keys and whether the range is complete.
func (x *site) deployed(seq int64, labels ...string) (commits, keys []string, complete bool) {
	x.t.Helper()
	ctx := context.Background()
	id := x.deploymentID(seq)
	rec, err := x.s.Deployment(ctx, x.tn, id)
	if err != nil {
		x.t.Fatalf("Deployment(%d): %v", seq, err)
	}
	shas, err := x.s.DeploymentCommits(ctx, x.tn, id)
	if err != nil {
		x.t.Fatal(err)
	}
	byHash := map[string]string{}
	for _, l := range labels {
		byHash[sha(l)] = l
	}
	for _, h := range shas {
		commits = append(commits, cmpOr(byHash[h], h))
	}
	slices.Sort(commits)
	keys, err = x.s.EntityLinks(ctx, x.tn, store.EntityDeployment, id)
	if err != nil {
		x.t.Fatal(err)
	}
	if rec.CommitCount != len(shas) {
		x.t.Errorf("deployment %d: commit_count %d, %d rows", seq, rec.CommitCount, len(shas))
	}
	return commits, keys, rec.CommitsComplete
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

var labels = []string{"c1", "c2 KL-2 fix", "c3 KL-3 feat", "c4 KL-4", "c5 KL-5", "c6", "c7 KL-7"}

func TestDeploymentCommitRanges(t *testing.T) {
	type deployed struct {
		seq      int64
		commits  []string
		keys     []string
		complete bool
	}
	cases := []struct {
		name  string
		steps func(x *site)
		want  []deployed
	}{
		{"first deployment takes all known history", func(x *site) {
			x.record(pushOf("", "c1", "c2 KL-2 fix"))
			x.record(deploy(1, "c2 KL-2 fix", devops.DeploymentSuccessful, t0))
		}, []deployed{{1, []string{"c1", "c2 KL-2 fix"}, []string{"KL-2"}, true}}},
		{"second deployment takes commits since the first", func(x *site) {
			x.record(pushOf("", "c1", "c2 KL-2 fix"))
			x.record(deploy(1, "c2 KL-2 fix", devops.DeploymentSuccessful, t0))
			x.record(pushOf("c2 KL-2 fix", "c3 KL-3 feat", "c4 KL-4"))
			x.record(deploy(2, "c4 KL-4", devops.DeploymentSuccessful, t0.Add(time.Hour)))
		}, []deployed{
			{1, []string{"c1", "c2 KL-2 fix"}, []string{"KL-2"}, true},
			{2, []string{"c3 KL-3 feat", "c4 KL-4"}, []string{"KL-3", "KL-4"}, true},
		}},
		{"a failed deployment does not close the range", func(x *site) {
			x.record(pushOf("", "c1"))
			x.record(deploy(1, "c1", devops.DeploymentSuccessful, t0))
			x.record(pushOf("c1", "c2 KL-2 fix"))
			x.record(deploy(2, "c2 KL-2 fix", devops.DeploymentFailed, t0.Add(time.Hour)))
			x.record(pushOf("c2 KL-2 fix", "c3 KL-3 feat"))
			x.record(deploy(3, "c3 KL-3 feat", devops.DeploymentSuccessful, t0.Add(2*time.Hour)))
		}, []deployed{
			{2, []string{"c2 KL-2 fix"}, []string{"KL-2"}, true},
			{3, []string{"c2 KL-2 fix", "c3 KL-3 feat"}, []string{"KL-2", "KL-3"}, true},
		}},
		{"out of order: the earlier deployment's success shrinks the later range", func(x *site) {
			x.record(pushOf("", "c1", "c2 KL-2 fix"))
			x.record(pushOf("c2 KL-2 fix", "c3 KL-3 feat"))
			x.record(deploy(2, "c3 KL-3 feat", devops.DeploymentSuccessful, t0.Add(time.Hour)))
			x.record(deploy(1, "c2 KL-2 fix", devops.DeploymentSuccessful, t0))
		}, []deployed{
			{1, []string{"c1", "c2 KL-2 fix"}, []string{"KL-2"}, true},
			{2, []string{"c3 KL-3 feat"}, []string{"KL-3"}, true},
		}},
		{"commits pushed after the deployment complete its range", func(x *site) {
			x.record(pushOf("", "c1"))
			x.record(deploy(1, "c1", devops.DeploymentSuccessful, t0))
			x.record(deploy(2, "c3 KL-3 feat", devops.DeploymentSuccessful, t0.Add(time.Hour)))
			x.record(pushOf("c1", "c2 KL-2 fix", "c3 KL-3 feat"))
		}, []deployed{{2, []string{"c2 KL-2 fix", "c3 KL-3 feat"}, []string{"KL-2", "KL-3"}, true}}},
		{"a commit pushed again after another one keeps both predecessors", func(x *site) {
			x.record(pushOf("", "c1"))
			x.record(deploy(1, "c1", devops.DeploymentSuccessful, t0))
			x.record(pushOf("c1", "c4 KL-4"))                           // on a feature branch first
			x.record(pushOf("c1", "c2 KL-2 fix", "c4 KL-4", "c5 KL-5")) // then merged to main after c2
			x.record(deploy(2, "c5 KL-5", devops.DeploymentSuccessful, t0.Add(time.Hour)))
		}, []deployed{{2, []string{"c2 KL-2 fix", "c4 KL-4", "c5 KL-5"}, []string{"KL-2", "KL-4", "KL-5"}, true}}},
		{"unknown commit: range is just it, incomplete", func(x *site) {
			x.record(pushOf("", "c1"))
			x.record(deploy(1, "c1", devops.DeploymentSuccessful, t0))
			x.record(deploy(2, "c9", devops.DeploymentSuccessful, t0.Add(time.Hour)))
		}, []deployed{{2, []string{sha("c9")}, nil, false}}},
		{"truncated push: the range closes but is marked incomplete", func(x *site) {
			x.record(pushOf("", "c1"))
			x.record(deploy(1, "c1", devops.DeploymentSuccessful, t0))
			p := pushOf("c1", "c4 KL-4", "c5 KL-5")
			p.Push.Truncated, p.Push.TotalCommits = true, 4
			x.record(p)
			x.record(deploy(2, "c5 KL-5", devops.DeploymentSuccessful, t0.Add(time.Hour)))
		}, []deployed{{2, []string{"c4 KL-4", "c5 KL-5"}, []string{"KL-4", "KL-5"}, false}}},
		{"redeploying a deployed commit brings nothing new", func(x *site) {
			x.record(pushOf("", "c1", "c2 KL-2 fix"))
			x.record(deploy(1, "c2 KL-2 fix", devops.DeploymentSuccessful, t0))
			x.record(deploy(2, "c2 KL-2 fix", devops.DeploymentSuccessful, t0.Add(time.Hour)))
		}, []deployed{{2, nil, nil, true}}},
		{"a late in_progress does not undo success", func(x *site) {
			x.record(pushOf("", "c1", "c2 KL-2 fix"))
			x.record(deploy(1, "c2 KL-2 fix", devops.DeploymentSuccessful, t0.Add(time.Minute)))
			x.record(deploy(1, "c2 KL-2 fix", devops.DeploymentInProgress, t0))
			x.record(pushOf("c2 KL-2 fix", "c3 KL-3 feat"))
			x.record(deploy(2, "c3 KL-3 feat", devops.DeploymentSuccessful, t0.Add(time.Hour)))
		}, []deployed{
			{1, []string{"c1", "c2 KL-2 fix"}, []string{"KL-2"}, true},
			{2, []string{"c3 KL-3 feat"}, []string{"KL-3"}, true},
		}},
		{"merged pull request's keys reach the deployment of its merge commit", func(x *site) {
			x.record(pushOf("", "c1", "c6"))
			x.record(deploy(1, "c6", devops.DeploymentSuccessful, t0))
			x.record(devops.Batch{Repository: repo, PullRequests: []devops.PullRequest{{
				ID: "900", RepositoryID: repo.ID, Number: 7, Title: "Checkout KL-7", State: devops.PullRequestMerged,
				MergeCommitSHA: sha("c6"), IssueKeys: []string{"KL-7", "KL-8"}, UpdatedAt: t0.Add(time.Hour),
			}}})
		}, []deployed{{1, []string{"c1", "c6"}, []string{"KL-7", "KL-8"}, true}}},
	}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				x := newSite(t, s, fmt.Sprint("ranges-", i))
				tc.steps(x)
				for _, want := range tc.want {
					commits, keys, complete := x.deployed(want.seq, labels...)
					if !slices.Equal(commits, want.commits) || !slices.Equal(keys, want.keys) || complete != want.complete {
						t.Errorf("deployment %d: commits %q keys %q complete %v; want %q %q %v",
							want.seq, commits, keys, complete, want.commits, want.keys, want.complete)
					}
				}
			})
		}
	})
}

func TestDeploymentStateNeverRegresses(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		x := newSite(t, s, "regress")
		ctx := context.Background()
		x.record(deploy(1, "c1", devops.DeploymentInProgress, t0))
		x.record(deploy(1, "c1", devops.DeploymentSuccessful, t0.Add(time.Minute)))
		x.record(deploy(1, "c1", devops.DeploymentInProgress, t0.Add(30*time.Second)))
		x.record(deploy(1, "c1", devops.DeploymentPending, t0.Add(2*time.Minute)))
		rec, err := s.Deployment(ctx, x.tn, x.deploymentID(1))
		must(t, err)
		if rec.State != devops.DeploymentSuccessful || !rec.FinishedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("state %s finished %v; want successful at +1m", rec.State, rec.FinishedAt)
		}
		if !rec.StartedAt.IsZero() || rec.Service != "checkout-api" || rec.EnvironmentType != devops.EnvironmentProduction {
			t.Errorf("deployment %+v: want service from the repository name, production", rec)
		}
	})
}

func TestRecordEventIsAtomicAndIdempotent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "atomic")
		push := pushOf("", "c1", "c2 KL-2 fix")
		must(t, s.RecordEvent(ctx, x.tn, x.src, accepted("same"), &push))
		before, err := s.DumpTenant(ctx, x.tn.ID)
		must(t, err)

		// A redelivery changes nothing, even with different content.
		again := pushOf("", "c3 KL-3 feat")
		if err := s.RecordEvent(ctx, x.tn, x.src, accepted("same"), &again); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("redelivery: %v, want ErrDuplicate", err)
		}
		// A batch that fails half-way stores nothing, not even its log line.
		bad := pushOf("c2 KL-2 fix", "c3 KL-3 feat")
		bad.Deployments = []devops.Deployment{{PipelineID: "p", State: devops.DeploymentSuccessful}} // no environment
		if err := s.RecordEvent(ctx, x.tn, x.src, accepted("bad"), &bad); err == nil {
			t.Fatal("a batch with an invalid deployment was stored")
		}
		after, err := s.DumpTenant(ctx, x.tn.ID)
		must(t, err)
		if !slices.Equal(before, after) {
			t.Errorf("rows changed:\nbefore %q\nafter  %q", before, after)
		}
		// Having failed, the id is not claimed: the sender's retry is stored.
		good := pushOf("c2 KL-2 fix", "c3 KL-3 feat")
		must(t, s.RecordEvent(ctx, x.tn, x.src, accepted("bad"), &good))
		if _, err := s.Commit(ctx, x.tn, sha("c3 KL-3 feat")); err != nil {
			t.Errorf("retry not stored: %v", err)
		}
		// Ignored deliveries claim their id and store no entities.
		if err := s.RecordEvent(ctx, x.tn, x.src, store.Delivery{DeliveryID: "ign", Event: "ping",
			Outcome: store.DeliveryIgnored, Status: 202}, &again); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(ctx, x.tn, sha("c3 KL-3 feat")); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordEvent(ctx, x.tn, x.src, store.Delivery{DeliveryID: "x", Outcome: store.DeliveryRejected,
			Status: 401}, nil); err == nil {
			t.Error("RecordEvent accepted a rejected outcome")
		}
	})
}

func TestCodeEntities(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "code")
		hostile := "KL-1 fix\x00 <script>alert(1)</script>\r\nsecond line"
		b := pushOf("", "c1")
		b.Commits[0].Message = hostile
		b.Commits[0].IssueKeys = []string{"KL-1", "kl-1", "not a key"}
		b.Commits[0].URL = "javascript:alert(1)"
		b.Commits[0].Author = devops.Person{Name: "Ada", Email: "ada@example.com"}
		b.Branches = []devops.Branch{{RepositoryID: repo.ID, Name: "feature/KL-1-checkout", URL: "https://github.com/acme/checkout-api/tree/feature/KL-1-checkout",
			LastCommitSHA: sha("c1"), IssueKeys: []string{"KL-1"}}}
		x.record(b)
		c, err := s.Commit(ctx, x.tn, sha("c1"))
		must(t, err)
		if c.Message != "KL-1 fix  <script>alert(1)</script>\nsecond line" || c.URL != "" || !slices.Equal(c.IssueKeys, []string{"KL-1"}) {
			t.Errorf("commit stored as %+v", c)
		}
		brID := store.BranchID(x.src, repo.ID, "feature/KL-1-checkout")
		br, err := s.Branch(ctx, x.tn, brID)
		must(t, err)
		if br.Deleted || br.LastCommitSHA != sha("c1") {
			t.Errorf("branch %+v", br)
		}
		links, err := s.IssueLinks(ctx, x.tn, "KL-1")
		must(t, err)
		want := []store.Link{{"KL-1", store.EntityBranch, brID}, {"KL-1", store.EntityCommit, sha("c1")}}
		if !slices.Equal(links, want) {
			t.Errorf("links %+v, want %+v", links, want)
		}
		// A renamed repository is updated; an unchanged one is left alone.
		renamed := *repo
		renamed.Name = "acme/checkout"
		x.record(devops.Batch{Repository: &renamed})
		x.record(devops.Batch{Repository: &renamed})
		var name string
		must(t, s.ScanOne(ctx, fmt.Sprintf(`SELECT name FROM repositories WHERE tenant_id = %d AND id = '42'`, x.tn.ID), &name))
		if name != "acme/checkout" {
			t.Errorf("repository name %q after a rename", name)
		}
		// Deleting the branch keeps its row and links, marked deleted.
		x.record(devops.Batch{Repository: repo, Push: &devops.Push{RepositoryID: repo.ID,
			Ref: "refs/heads/feature/KL-1-checkout", Before: sha("c1"), After: strings.Repeat("0", 40), Deleted: true}})
		if br, err := s.Branch(ctx, x.tn, brID); err != nil || !br.Deleted {
			t.Errorf("after delete push: %+v, %v", br, err)
		}
	})
}

func TestPullRequestMerging(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "prs")
		pr := func(state devops.PullRequestState, at time.Time, title string, reviewers ...devops.Reviewer) devops.Batch {
			return devops.Batch{Repository: repo, PullRequests: []devops.PullRequest{{
				ID: "900", RepositoryID: repo.ID, Number: 7, Title: title, State: state, UpdatedAt: at,
				IssueKeys: devops.ExtractIssueKeys(title), Reviewers: reviewers, URL: "https://github.com/acme/checkout-api/pull/7",
			}}}
		}
		ann := devops.Reviewer{Person: devops.Person{Username: "ann"}, Approval: devops.ApprovalNeedsWork}
		bob := devops.Reviewer{Person: devops.Person{Username: "bob"}, Approval: devops.ApprovalApproved}
		x.record(pr(devops.PullRequestOpen, t0, "KL-1 checkout", ann))
		x.record(pr(devops.PullRequestOpen, t0.Add(2*time.Minute), "KL-2 checkout, retitled",
			devops.Reviewer{Person: devops.Person{Username: "Ann"}, Approval: devops.ApprovalApproved}))
		// A stale event: its title and Ann's old verdict must not return; Bob is new.
		x.record(pr(devops.PullRequestOpen, t0.Add(time.Minute), "KL-1 checkout", ann, bob))
		got, err := s.PullRequest(ctx, x.tn, store.PullRequestID(x.src, repo.ID, "900"))
		must(t, err)
		verdicts := map[string]devops.ApprovalStatus{}
		for _, r := range got.Reviewers {
			verdicts[r.Username] = r.Approval
		}
		if got.Title != "KL-2 checkout, retitled" || len(got.Reviewers) != 2 || verdicts["Ann"] != devops.ApprovalApproved ||
			verdicts["bob"] != devops.ApprovalApproved {
			t.Errorf("pull request %+v", got)
		}
		keys, err := s.EntityLinks(ctx, x.tn, store.EntityPullRequest, store.PullRequestID(x.src, repo.ID, "900"))
		must(t, err)
		if !slices.Equal(keys, []string{"KL-2"}) {
			t.Errorf("links %q, want only the retitled key", keys)
		}
	})
}

func TestIncidentSuspects(t *testing.T) {
	incident := func(id string, mod func(*devops.Incident)) devops.Batch {
		in := devops.Incident{SourceID: id, Title: "Checkout down", Status: devops.IncidentOpen,
			Service: "Checkout-API", OpenedAt: t0.Add(90 * time.Minute), IssueKeys: []string{"OPS-1"}}
		in.UpdatedAt = in.OpenedAt
		if mod != nil {
			mod(&in)
		}
		return devops.Batch{Incidents: []devops.Incident{in}}
	}
	cases := []struct {
		name      string
		in        devops.Batch
		wantSeq   int64 // 0: none
		wantBasis string
	}{
		{"service: last production deployment before it opened", incident("i1", nil), 2, store.SuspectService},
		{"service: deployments after it opened do not count", incident("i2", func(in *devops.Incident) {
			in.OpenedAt = t0.Add(30 * time.Minute)
		}), 1, store.SuspectService},
		{"explicit deployment wins", incident("i3", func(in *devops.Incident) {
			in.Deployment = &devops.DeploymentKey{PipelineID: "42/deploy", EnvironmentID: "production", SequenceNumber: 1}
		}), 1, store.SuspectExplicit},
		{"commit: the deployment that shipped it", incident("i4", func(in *devops.Incident) {
			in.CommitSHA = sha("c1")[:10]
		}), 1, store.SuspectCommit},
		{"unknown service: none", incident("i5", func(in *devops.Incident) { in.Service = "billing" }), 0, ""},
	}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "incidents")
		x.record(pushOf("", "c1"))
		x.record(deploy(1, "c1", devops.DeploymentSuccessful, t0))
		x.record(pushOf("c1", "c2 KL-2 fix"))
		x.record(deploy(2, "c2 KL-2 fix", devops.DeploymentSuccessful, t0.Add(time.Hour)))
		x.record(deploy(3, "c2 KL-2 fix", devops.DeploymentSuccessful, t0.Add(2*time.Hour)))
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				x.record(tc.in)
				id := store.IncidentID(x.src, tc.in.Incidents[0].SourceID)
				rec, err := s.Incident(ctx, x.tn, id)
				must(t, err)
				want := ""
				if tc.wantSeq > 0 {
					want = x.deploymentID(tc.wantSeq)
				}
				if rec.SuspectDeploymentID != want || rec.SuspectBasis != tc.wantBasis {
					t.Errorf("suspect %q (%s), want %q (%s)", rec.SuspectDeploymentID, rec.SuspectBasis, want, tc.wantBasis)
				}
				if keys, _ := s.EntityLinks(ctx, x.tn, store.EntityIncident, id); !slices.Equal(keys, []string{"OPS-1"}) {
					t.Errorf("incident links %q", keys)
				}
			})
		}
		// Resolution, then a late "open" from before it, leaves it resolved.
		resolved := incident("i1", func(in *devops.Incident) {
			in.Status, in.UpdatedAt = devops.IncidentResolved, t0.Add(3*time.Hour)
		})
		x.record(resolved)
		x.record(incident("i1", func(in *devops.Incident) { in.UpdatedAt = t0.Add(2 * time.Hour) }))
		rec, err := s.Incident(ctx, x.tn, store.IncidentID(x.src, "i1"))
		must(t, err)
		if rec.Status != devops.IncidentResolved || !rec.ResolvedAt.Equal(t0.Add(3*time.Hour)) {
			t.Errorf("incident %+v, want resolved at +3h", rec.Incident)
		}
	})
}

func TestBuildsLinkTheirCommit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "builds")
		x.record(pushOf("", "c2 KL-2 fix"))
		build := func(state devops.BuildState, at time.Time, tests *devops.TestSummary) devops.Batch {
			return devops.Batch{Builds: []devops.Build{{PipelineID: "ci", PipelineName: "CI", BuildNumber: 12, State: state,
				CommitSHA: sha("c2 KL-2 fix"), Ref: "feature/KL-9-x", UpdatedAt: at, Tests: tests,
				IssueKeys: []string{"KL-9"}, URL: "https://ci.example.com/12"}}}
		}
		x.record(build(devops.BuildInProgress, t0, nil))
		x.record(build(devops.BuildFailed, t0.Add(time.Minute), &devops.TestSummary{Total: 3, Passed: 2, Failed: 1}))
		x.record(build(devops.BuildInProgress, t0.Add(30*time.Second), nil))
		id := store.BuildID(x.src, "ci", 12)
		b, err := s.Build(ctx, x.tn, id)
		must(t, err)
		if b.State != devops.BuildFailed || b.Tests == nil || b.Tests.Failed != 1 || !b.FinishedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("build %+v", b)
		}
		keys, err := s.EntityLinks(ctx, x.tn, store.EntityBuild, id)
		must(t, err)
		if !slices.Equal(keys, []string{"KL-2", "KL-9"}) {
			t.Errorf("build links %q, want its own and its commit's", keys)
		}
	})
}

func TestDeploymentRangeIsBounded(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "bounded")
		var long []string
		for i := range store.MaxRangeCommits + 50 {
			long = append(long, fmt.Sprint("n", i))
		}
		x.record(pushOf("", long...))
		x.record(deploy(1, long[len(long)-1], devops.DeploymentSuccessful, t0))
		rec, err := s.Deployment(ctx, x.tn, x.deploymentID(1))
		must(t, err)
		if rec.CommitCount != store.MaxRangeCommits || rec.CommitsComplete {
			t.Errorf("range of %d commits, complete %v; want %d, incomplete", rec.CommitCount, rec.CommitsComplete, store.MaxRangeCommits)
		}
	})
}

// TestDevOpsCrossTenantIsolation gives two sites the same repository,
// commits, deployment, pull request, build and incident, then acts as site A
// in every way the entity store offers and checks that A sees only its own
// data and that not one of B's rows changed.
func TestDevOpsCrossTenantIsolation(t *testing.T) {
	everything := func(x *site, title string) []devops.Batch {
		pr := devops.Batch{Repository: repo, PullRequests: []devops.PullRequest{{ID: "900", RepositoryID: repo.ID,
			Number: 7, Title: title, State: devops.PullRequestMerged, MergeCommitSHA: sha("c2 KL-2 fix"),
			IssueKeys: []string{"KL-2"}, UpdatedAt: t0}}}
		build := devops.Batch{Builds: []devops.Build{{PipelineID: "ci", BuildNumber: 1, State: devops.BuildSuccessful,
			CommitSHA: sha("c2 KL-2 fix"), PipelineName: title, UpdatedAt: t0}}}
		incident := devops.Batch{Incidents: []devops.Incident{{SourceID: "i1", Title: title, Status: devops.IncidentOpen,
			Service: "checkout-api", OpenedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour), IssueKeys: []string{"KL-2"}}}}
		return []devops.Batch{pushOf("", "c1", "c2 KL-2 fix"), deploy(1, "c2 KL-2 fix", devops.DeploymentSuccessful, t0),
			pr, build, incident}
	}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := newSite(t, s, "iso-a"), newSite(t, s, "iso-b")
		for _, batch := range everything(b, "B's") {
			b.record(batch)
		}
		before, err := s.DumpTenant(ctx, b.tn.ID)
		must(t, err)
		// A records the very same entities under its own source.
		for _, batch := range everything(a, "A's") {
			a.record(batch)
		}
		// Reads as A, with B's ids, find nothing of B's.
		bIDs := map[string]func() error{
			"Deployment": func() error { _, err := s.Deployment(ctx, a.tn, b.deploymentID(1)); return err },
			"PullRequest": func() error {
				_, err := s.PullRequest(ctx, a.tn, store.PullRequestID(b.src, repo.ID, "900"))
				return err
			},
			"Build":    func() error { _, err := s.Build(ctx, a.tn, store.BuildID(b.src, "ci", 1)); return err },
			"Incident": func() error { _, err := s.Incident(ctx, a.tn, store.IncidentID(b.src, "i1")); return err },
			"Branch": func() error {
				_, err := s.Branch(ctx, a.tn, store.BranchID(b.src, repo.ID, "main"))
				return err
			},
		}
		for name, read := range bIDs {
			if err := read(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s of B's id as A: %v, want ErrNotFound", name, err)
			}
		}
		if shas, err := s.DeploymentCommits(ctx, a.tn, b.deploymentID(1)); err != nil || len(shas) != 0 {
			t.Errorf("DeploymentCommits of B's deployment as A: %v, %v", shas, err)
		}
		links, err := s.IssueLinks(ctx, a.tn, "KL-2")
		must(t, err)
		for _, l := range links {
			if strings.HasPrefix(l.EntityID, b.src) {
				t.Errorf("A's links include B's entity %+v", l)
			}
		}
		rec, err := s.Incident(ctx, a.tn, store.IncidentID(a.src, "i1"))
		must(t, err)
		if rec.SuspectDeploymentID != a.deploymentID(1) {
			t.Errorf("A's incident suspects %q, want A's own deployment", rec.SuspectDeploymentID)
		}
		after, err := s.DumpTenant(ctx, b.tn.ID)
		must(t, err)
		if !slices.Equal(before, after) {
			t.Errorf("acting as A changed B's rows:\nbefore %q\nafter  %q", before, after)
		}
		if len(before) < 20 {
			t.Errorf("B's seed is too small to prove anything: %d rows", len(before))
		}
	})
}

func TestIssueDevelopment(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x, other := newSite(t, s, "dev-a"), newSite(t, s, "dev-b")
		for _, site := range []*site{x, other} {
			site.record(pushOf("", "c1 KL-2 start", "c2 KL-2 fix", "c3 KL-3 other"))
			site.record(devops.Batch{Repository: repo, Branches: []devops.Branch{{RepositoryID: repo.ID,
				Name: "feature/KL-2", IssueKeys: []string{"KL-2"}}}})
			site.record(devops.Batch{Repository: repo, PullRequests: []devops.PullRequest{{ID: "9", RepositoryID: repo.ID,
				Number: 9, Title: "KL-2 checkout", State: devops.PullRequestMerged, MergeCommitSHA: sha("c2 KL-2 fix"),
				IssueKeys: []string{"KL-2"}, UpdatedAt: t0}}})
			site.record(devops.Batch{Builds: []devops.Build{{PipelineID: "ci", BuildNumber: 4, State: devops.BuildSuccessful,
				CommitSHA: sha("c2 KL-2 fix"), UpdatedAt: t0}}})
			site.record(deploy(1, "c2 KL-2 fix", devops.DeploymentSuccessful, t0))
			site.record(devops.Batch{Incidents: []devops.Incident{{SourceID: "i1", Title: "down", Status: devops.IncidentOpen,
				Service: "checkout-api", OpenedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour), IssueKeys: []string{"KL-2"}}}})
		}
		dev, err := s.IssueDevelopment(ctx, x.tn, "KL-2", store.DevelopmentLimits{Commits: 1})
		must(t, err)
		if len(dev.Branches) != 1 || len(dev.Commits) != 1 || dev.Totals[store.EntityCommit] != 2 || len(dev.PullRequests) != 1 ||
			len(dev.Builds) != 1 || len(dev.Deployments) != 1 || len(dev.Incidents) != 1 {
			t.Fatalf("development %+v", dev)
		}
		for _, id := range []string{dev.Branches[0].ID, dev.PullRequests[0].StoreID, dev.Builds[0].ID, dev.Deployments[0].ID, dev.Incidents[0].ID} {
			if !strings.HasPrefix(id, x.src) {
				t.Errorf("entity %q is not A's", id)
			}
		}
		if sus, ok := dev.Suspects[dev.Incidents[0].SuspectDeploymentID]; !ok || sus.ID != x.deploymentID(1) {
			t.Errorf("suspects %+v", dev.Suspects)
		}
		if dev.Deployments[0].EnvironmentType != devops.EnvironmentProduction || dev.PullRequests[0].Number != 9 {
			t.Errorf("deployment %+v, pr %+v", dev.Deployments[0], dev.PullRequests[0])
		}
		none, err := s.IssueDevelopment(ctx, x.tn, "KL-404", store.DevelopmentLimits{})
		must(t, err)
		if len(none.Commits)+len(none.Deployments)+len(none.Incidents) != 0 {
			t.Errorf("unlinked issue has %+v", none)
		}
	})
}

func TestBranchFirstCommitOnlyMovesEarlier(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "first-commit")
		push := func(label string, authored time.Time) {
			b := pushOf("", label)
			b.Push.Ref = "refs/heads/feature/KL-5"
			b.Commits[0].AuthoredAt = authored
			b.Branches = []devops.Branch{{RepositoryID: repo.ID, Name: "feature/KL-5", LastCommitSHA: sha(label)}}
			x.record(b)
		}
		id := store.BranchID(x.src, repo.ID, "feature/KL-5")
		for _, step := range []struct {
			label    string
			authored time.Time
			want     time.Time
		}{
			{"f1", t0, t0},
			{"f2", t0.Add(time.Hour), t0},
			{"f3", t0.Add(-time.Hour), t0.Add(-time.Hour)},
		} {
			push(step.label, step.authored)
			br, err := s.Branch(ctx, x.tn, id)
			must(t, err)
			if !br.FirstCommitAt.Equal(step.want) || br.LastCommitSHA != sha(step.label) {
				t.Errorf("after %s: first commit %v, last %s; want %v", step.label, br.FirstCommitAt, br.LastCommitSHA, step.want)
			}
		}
	})
}

// TestOneStatementPushStoresWhatATransactionStores holds PostgreSQL's
// one-statement write of a code-only delivery, which binds each column as
// an array and unnests it into rows, to the rows the general path (one
// statement per write, in a transaction) stores for the same deliveries:
// commits with and without times, merge commits, commit order from plain,
// created, truncated and repeated pushes, edges of already known commits,
// issue links of commits and branches, and a branch deleted by a push. On
// SQLite both sides take the general path.
func TestOneStatementPushStoresWhatATransactionStores(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		s.SetClock(func() time.Time { return t0 })
		one, general := newSite(t, s, "one-statement"), newSite(t, s, "general-path")
		deliveries := []func() devops.Batch{
			func() devops.Batch {
				b := pushOf("", "c1 KL-1", "c2 KL-2 and KL-3 [kl-4]", "c3")
				b.Push.Created = true
				b.Commits[0].AuthoredAt = t0.Add(-time.Hour)
				b.Commits[0].Author = devops.Person{Name: "Ada", Email: "ada@example.com", Username: "ada"}
				b.Commits[0].URL = "https://github.com/acme/checkout-api/commit/" + sha("c1 KL-1")
				b.Commits[1].Merge = true
				b.Branches = []devops.Branch{{RepositoryID: repo.ID, Name: "main", LastCommitSHA: sha("c3")}}
				return b
			},
			func() devops.Batch {
				b := pushOf("c3", "c4 KL-5", "c5", "c4 KL-5")
				b.Push.Ref = "refs/heads/feature/KL-6-login"
				b.Push.Truncated, b.Push.TotalCommits = true, 40
				b.Branches = []devops.Branch{{RepositoryID: repo.ID, Name: "feature/KL-6-login", LastCommitSHA: sha("c4 KL-5"),
					IssueKeys: []string{"KL-6", "KL-7"}}}
				return b
			},
			// Known commits arrive again after other predecessors: a
			// merge to main, and a forced push that rewrote history.
			func() devops.Batch { return pushOf("c1 KL-1", "c4 KL-5", "c5", "c6 KL-1") },
			func() devops.Batch {
				b := pushOf("c6 KL-1", "c2 KL-2 and KL-3 [kl-4]", "c7")
				b.Push.Forced = true
				return b
			},
			func() devops.Batch {
				return devops.Batch{Repository: repo, Push: &devops.Push{RepositoryID: repo.ID,
					Ref: "refs/heads/feature/KL-6-login", Before: sha("c5"), After: strings.Repeat("0", 40), Deleted: true}}
			},
		}
		for i, batch := range deliveries {
			d := accepted(fmt.Sprint("d", i))
			d.ReceivedAt = t0.Add(time.Duration(i) * time.Minute)
			b := batch()
			must(t, s.RecordEvent(ctx, one.tn, one.src, d, &b))
			b = batch()
			must(t, s.RecordEventInTransaction(ctx, general.tn, general.src, d, &b))
		}
		got, want := codeRows(t, one), codeRows(t, general)
		if len(want) < 20 {
			t.Fatalf("only %d rows stored: %q", len(want), want)
		}
		if !slices.Equal(got, want) {
			t.Errorf("one-statement rows differ from the general path's:\none-statement %q\ngeneral       %q", got, want)
		}
	})
}

// codeRows dumps x's tenant with its tenant id, source id and delivery-log
// ids taken out, so that two sites fed the same deliveries compare equal.
func codeRows(t *testing.T, x *site) []string {
	t.Helper()
	rows, err := x.s.DumpTenant(context.Background(), x.tn.ID)
	must(t, err)
	tenantID := regexp.MustCompile(`\btenant_id=` + fmt.Sprint(x.tn.ID) + `\b`)
	deliveryID := regexp.MustCompile(`^(SELECT \* FROM deliveries .*) id=\d+ `)
	var out []string
	for _, r := range rows {
		if strings.HasPrefix(r, "SELECT * FROM tenants") || strings.HasPrefix(r, "SELECT * FROM sources") {
			continue
		}
		r = tenantID.ReplaceAllString(strings.ReplaceAll(r, x.src, "<source>"), "tenant_id=<tenant>")
		out = append(out, deliveryID.ReplaceAllString(r, "$1 id=<id> "))
	}
	return out
}

func TestDollarPlaceholders(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"SELECT 1", "SELECT 1"},
		{"?", "$1"},
		{"??", "$1$2"},
		{"a = ? AND b IN (?, ?)", "a = $1 AND b IN ($2, $3)"},
		{"? x ?", "$1 x $2"},
		{strings.Repeat("?,", 11), "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,"},
	} {
		if got := store.DollarPlaceholders(tt.in); got != tt.want {
			t.Errorf("DollarPlaceholders(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
