package store_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// TestCrossTenantIsolation gives two sites identical issue ids and keys (with
// different content), runs every tenant-scoped store method as site A, and
// checks that the result shows only A's data and that not one of B's rows, in
// any table, changed.
func TestCrossTenantIsolation(t *testing.T) {
	later := oddTime.Add(time.Hour)
	ops := []struct {
		name string
		// run acts as tenant a and checks what it returned.
		run func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant)
	}{
		{"JiraIssueByKey", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			got := mustIssue(t, s, a, "KL-1")
			if got.Summary != "A's issue" {
				t.Errorf("JiraIssueByKey returned %q", got.Summary)
			}
		}},
		{"JiraIssueByKey key only B has", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			if got, err := s.JiraIssueByKey(ctx, a, "KL-9"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("got B's issue %+v, %v", got, err)
			}
		}},
		{"CountIssueLinks", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			got, err := s.CountIssueLinks(ctx, a, "KL-1")
			if want := map[string]int{"commit": 1}; err != nil || !maps.Equal(got, want) {
				t.Errorf("CountIssueLinks = %v, %v; want %v", got, err, want)
			}
		}},
		{"CountIssueLinks key only B has", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			if got, err := s.CountIssueLinks(ctx, a, "KL-9"); err != nil || len(got) != 0 {
				t.Errorf("CountIssueLinks = %v, %v; want none", got, err)
			}
		}},
		{"CountJiraIssues", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			if n, err := s.CountJiraIssues(ctx, a, "KL"); err != nil || n != 2 {
				t.Errorf("CountJiraIssues = %d, %v; want A's 2 (B has 3)", n, err)
			}
		}},
		{"UpsertJiraIssue same id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			must(t, s.UpsertJiraIssue(ctx, a, issue("10001", "KL-1", later)))
		}},
		{"UpsertJiraIssue id only B has", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			must(t, s.UpsertJiraIssue(ctx, a, issue("10009", "KL-9", later)))
		}},
		{"DeleteJiraIssue same id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			must(t, s.DeleteJiraIssue(ctx, a, "10001", later))
		}},
		{"DeleteJiraIssue id only B has", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			must(t, s.DeleteJiraIssue(ctx, a, "10009", later))
		}},
		{"AddIssueLink same link", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			must(t, s.AddIssueLink(ctx, a, "KL-1", "branch", "b-shared"))
		}},
		{"ApplyJiraIssueEvent same issue and webhook id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			ev := withID(event(2, move("A status", "Done", "done", 2)), "wh-shared")
			if err := s.ApplyJiraIssueEvent(ctx, a, ev); err != nil {
				t.Errorf("B's claim of the webhook id blocked A: %v", err)
			}
		}},
		{"ApplyJiraIssueEvent delete same id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			must(t, s.ApplyJiraIssueEvent(ctx, a, store.JiraIssueEvent{DeliveryID: "wh-del", Deleted: true,
				Issue: store.JiraIssue{IssueID: "10001", IssueKey: "KL-1", UpdatedAt: later}}))
		}},
		{"JiraIssueTransitions", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			if got := describe(mustTransitions(t, s, a, "10001")); !slices.Equal(got, []string{"1:To Do>A status/indeterminate"}) {
				t.Errorf("JiraIssueTransitions = %q, want A's only", got)
			}
		}},
		{"JiraIssueTransitions id only B has", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			if got := mustTransitions(t, s, a, "10009"); len(got) != 0 {
				t.Errorf("JiraIssueTransitions = %+v, want none", got)
			}
		}},
		{"SetEnabled", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			must(t, s.SetEnabled(ctx, a, false))
		}},
		{"MarkUninstalled", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			found, err := s.MarkUninstalled(ctx, a.AppKey, a.ClientKey, later)
			must(t, err)
			if !found {
				t.Error("MarkUninstalled did not find A")
			}
		}},
		{"UpsertTenant reinstall", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			_, err := s.UpsertTenant(ctx, install(a.ClientKey, func(in *tenant.Install) { in.At = later }))
			must(t, err)
		}},
		{"TenantByClientKey", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			got, err := s.TenantByClientKey(ctx, a.AppKey, a.ClientKey)
			if err != nil || got.ID != a.ID || string(got.SharedSecret) != "secret-of-site-a" {
				t.Errorf("TenantByClientKey = %+v, %v", got, err)
			}
		}},
		{"TenantsOnHost", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			got, err := s.TenantsOnHost(ctx, a, "jira")
			if err != nil || len(got) != 0 {
				t.Errorf("TenantsOnHost = %+v, %v; want none (B is another site)", got, err)
			}
		}},
		{"SourceWithSecrets same source id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			got, err := s.SourceWithSecrets(ctx, a, sharedSourceID)
			if err != nil || got.TenantID != a.ID || got.Name != "A's source" || len(got.Secrets) != 1 ||
				string(got.Secrets[0]) != sourceSecret("A") {
				t.Errorf("SourceWithSecrets = %+v, %v; want A's source and secret only", got, err)
			}
		}},
		{"SourceWithSecrets id only B has", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			if got, err := s.SourceWithSecrets(ctx, a, onlyBSourceID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("got B's source and secrets %+v, %v", got, err)
			}
		}},
		{"SetSourceSecret same source id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			must(t, s.SetSourceSecret(ctx, a, sharedSourceID, sourceSecret("A2"), 0))
		}},
		{"SetSourceSecret id only B has", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant) {
			if err := s.SetSourceSecret(ctx, a, onlyBSourceID, sourceSecret("A2"), 0); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("set B's secret: %v", err)
			}
		}},
	}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		for _, op := range ops {
			t.Run(op.name, func(t *testing.T) {
				ctx := context.Background()
				// Fresh sites per op, so one op's writes cannot mask another's.
				a := mustUpsert(t, s, install("site-a"))
				b := mustUpsert(t, s, install("site-b"))
				t.Cleanup(func() {
					_ = s.Exec(ctx, `DELETE FROM tenants WHERE id IN (?, ?)`, a.ID, b.ID)
				})
				seed(t, s, a, "A's issue", [][2]string{{"commit", "c1"}})
				seed(t, s, b, "B's issue", [][2]string{{"commit", "c1"}, {"commit", "c2"}, {"branch", "b-shared"}})
				must(t, s.UpsertJiraIssue(ctx, b, issue("10009", "KL-9", oddTime)))
				must(t, s.AddIssueLink(ctx, b, "KL-9", "commit", "c9"))
				seedTransition(t, s, a, "A's issue", "10001", "A status", "")
				seedTransition(t, s, b, "B's issue", "10001", "B status", "wh-shared")
				seedTransition(t, s, b, "B's issue", "10009", "B status", "wh-b")
				seedSource(t, s, a, sharedSourceID, "A's source", "A")
				seedSource(t, s, b, sharedSourceID, "B's source", "B")
				seedSource(t, s, b, onlyBSourceID, "B's own source", "B")

				before, err := s.DumpTenant(ctx, b.ID)
				must(t, err)
				if len(before) < 7 {
					t.Fatalf("B's seed incomplete: %q", before)
				}
				op.run(t, ctx, s, a)
				after, err := s.DumpTenant(ctx, b.ID)
				must(t, err)
				if !slices.Equal(before, after) {
					t.Errorf("%s as tenant A changed tenant B's rows:\nbefore %q\nafter  %q", op.name, before, after)
				}
			})
		}
	})
}

// seed gives tn issues 10001/KL-1 and 10002/KL-2 and links on KL-1.
func seed(t *testing.T, s *store.Store, tn *tenant.Tenant, summary string, links [][2]string) {
	t.Helper()
	ctx := context.Background()
	for _, is := range []store.JiraIssue{issue("10001", "KL-1", oddTime), issue("10002", "KL-2", oddTime)} {
		is.Summary = summary
		must(t, s.UpsertJiraIssue(ctx, tn, is))
	}
	for _, l := range links {
		must(t, s.AddIssueLink(ctx, tn, "KL-1", l[0], l[1]))
	}
}

// seedTransition moves tn's issue id (KL-1 or KL-9) from To Do to status at
// at(1), claiming webhook id wh unless it is "".
func seedTransition(t *testing.T, s *store.Store, tn *tenant.Tenant, summary, id, status, wh string) {
	t.Helper()
	ev := withID(event(1, move("To Do", status, "indeterminate", 1)), wh)
	ev.Issue.IssueID, ev.Issue.Summary = id, summary
	if id == "10009" {
		ev.Issue.IssueKey = "KL-9"
	}
	must(t, s.ApplyJiraIssueEvent(context.Background(), tn, ev))
}

// Source ids of the isolation test: A and B each have a source with the
// first; only B has the second.
const (
	sharedSourceID = "src_shared00000000000000000000"
	onlyBSourceID  = "src_onlyb000000000000000000000"
)

// sourceSecret is the provided signing secret of site's sources.
func sourceSecret(site string) string { return "signing-secret-of-site-" + site }

// seedSource gives tn a GitHub source with id and name whose secret is
// sourceSecret(site).
func seedSource(t *testing.T, s *store.Store, tn *tenant.Tenant, id, name, site string) {
	t.Helper()
	ctx := context.Background()
	src, _, _, err := s.CreateSource(ctx, tn, store.SourceGitHub, name)
	must(t, err)
	must(t, s.Exec(ctx, `UPDATE sources SET id = ? WHERE tenant_id = ? AND id = ?`, id, tn.ID, src.ID))
	must(t, s.SetSourceSecret(ctx, tn, id, sourceSecret(site), 0))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
