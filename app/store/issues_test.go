package store_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

func issue(id, key string, updated time.Time) store.JiraIssue {
	return store.JiraIssue{
		IssueID: id, IssueKey: key, ProjectKey: "KL", Summary: "summary of " + key,
		StatusName: "In Progress", StatusCategory: "indeterminate", UpdatedAt: updated,
	}
}

func norm(is store.JiraIssue) store.JiraIssue {
	is.UpdatedAt = is.UpdatedAt.UTC().Truncate(time.Microsecond)
	return is
}

func mustIssue(t *testing.T, s *store.Store, tn *tenant.Tenant, key string) *store.JiraIssue {
	t.Helper()
	got, err := s.JiraIssueByKey(context.Background(), tn, key)
	if err != nil {
		t.Fatalf("JiraIssueByKey(%s): %v", key, err)
	}
	return got
}

func TestJiraIssueUpsertAndLookup(t *testing.T) {
	t0 := oddTime
	tests := []struct {
		name   string
		events []store.JiraIssue
		key    string
		want   *store.JiraIssue // nil: not found
	}{
		{"insert", []store.JiraIssue{issue("10001", "KL-1", t0)}, "KL-1", ptr(issue("10001", "KL-1", t0))},
		{"newer wins", []store.JiraIssue{
			issue("10001", "KL-1", t0),
			withStatus(issue("10001", "KL-1", t0.Add(time.Second)), "Done"),
		}, "KL-1", ptr(withStatus(issue("10001", "KL-1", t0.Add(time.Second)), "Done"))},
		{"stale event ignored", []store.JiraIssue{
			withStatus(issue("10001", "KL-1", t0.Add(time.Second)), "Done"),
			issue("10001", "KL-1", t0),
		}, "KL-1", ptr(withStatus(issue("10001", "KL-1", t0.Add(time.Second)), "Done"))},
		{"stale by one microsecond ignored", []store.JiraIssue{
			withStatus(issue("10001", "KL-1", t0.Add(time.Microsecond)), "Done"),
			issue("10001", "KL-1", t0),
		}, "KL-1", ptr(withStatus(issue("10001", "KL-1", t0.Add(time.Microsecond)), "Done"))},
		{"move changes key", []store.JiraIssue{
			issue("10001", "KL-1", t0),
			issue("10001", "OPS-7", t0.Add(time.Second)),
		}, "OPS-7", ptr(issue("10001", "OPS-7", t0.Add(time.Second)))},
		{"old key gone after move", []store.JiraIssue{
			issue("10001", "KL-1", t0),
			issue("10001", "OPS-7", t0.Add(time.Second)),
		}, "KL-1", nil},
		{"unknown key", []store.JiraIssue{issue("10001", "KL-1", t0)}, "KL-2", nil},
		{"key is case sensitive", []store.JiraIssue{issue("10001", "KL-1", t0)}, "kl-1", nil},
	}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tn := mustUpsert(t, s, install("site"+string(rune('a'+i))))
				for _, ev := range tt.events {
					if err := s.UpsertJiraIssue(ctx, tn, ev); err != nil {
						t.Fatal(err)
					}
				}
				got, err := s.JiraIssueByKey(ctx, tn, tt.key)
				if tt.want == nil {
					if !errors.Is(err, store.ErrNotFound) {
						t.Fatalf("JiraIssueByKey = %+v, %v; want ErrNotFound", got, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if w := norm(*tt.want); *got != w || got.UpdatedAt.Location() != time.UTC {
					t.Fatalf("got %+v\nwant %+v", *got, w)
				}
			})
		}
	})
}

func ptr[T any](v T) *T { return &v }

func withStatus(is store.JiraIssue, status string) store.JiraIssue {
	is.StatusName = status
	return is
}

func TestJiraIssueRejects(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		tests := []struct {
			name string
			tn   *tenant.Tenant
			is   store.JiraIssue
		}{
			{"nil tenant", nil, issue("1", "KL-1", oddTime)},
			{"unsaved tenant", &tenant.Tenant{}, issue("1", "KL-1", oddTime)},
			{"no id", tn, issue("", "KL-1", oddTime)},
			{"no key", tn, issue("1", "", oddTime)},
			{"tenant row missing", &tenant.Tenant{ID: 424242}, issue("1", "KL-1", oddTime)}, // foreign key
		}
		for _, tt := range tests {
			if err := s.UpsertJiraIssue(ctx, tt.tn, tt.is); err == nil {
				t.Errorf("%s: UpsertJiraIssue succeeded", tt.name)
			}
		}
	})
}

func TestDeleteJiraIssue(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		for _, is := range []store.JiraIssue{issue("1", "KL-1", oddTime), issue("2", "KL-2", oddTime)} {
			if err := s.UpsertJiraIssue(ctx, tn, is); err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range [][3]string{{"KL-1", "branch", "b1"}, {"KL-1", "commit", "c1"}, {"KL-2", "commit", "c2"}} {
			if err := s.AddIssueLink(ctx, tn, l[0], l[1], l[2]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.DeleteJiraIssue(ctx, tn, "1", oddTime.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.JiraIssueByKey(ctx, tn, "KL-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted issue still found: %v", err)
		}
		if n, _ := s.CountIssueLinks(ctx, tn, "KL-1"); len(n) != 0 {
			t.Errorf("links of deleted issue remain: %v", n)
		}
		if n, _ := s.CountIssueLinks(ctx, tn, "KL-2"); n["commit"] != 1 {
			t.Errorf("links of another issue removed: %v", n)
		}
		// A late update, even one newer than the deletion, does not resurrect it.
		if err := s.UpsertJiraIssue(ctx, tn, issue("1", "KL-1", oddTime.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.JiraIssueByKey(ctx, tn, "KL-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("late update resurrected a deleted issue: %v", err)
		}
		// Repeats and unknown ids are no-ops.
		for _, id := range []string{"1", "999"} {
			if err := s.DeleteJiraIssue(ctx, tn, id, oddTime); err != nil {
				t.Errorf("DeleteJiraIssue(%s) = %v", id, err)
			}
		}
		if err := s.DeleteJiraIssue(ctx, nil, "2", oddTime); err == nil {
			t.Error("DeleteJiraIssue(nil tenant) succeeded")
		}
	})
}

func TestDeleteJiraIssueKeepsLinksOfKeyReusedByLiveIssue(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		// Issue 1 was KL-1; a missed move webhook left it there while issue 2 now holds KL-1 too.
		for _, is := range []store.JiraIssue{issue("1", "KL-1", oddTime), issue("2", "KL-1", oddTime.Add(time.Second))} {
			if err := s.UpsertJiraIssue(ctx, tn, is); err != nil {
				t.Fatal(err)
			}
		}
		if got := mustIssue(t, s, tn, "KL-1"); got.IssueID != "2" {
			t.Errorf("duplicate key resolved to issue %s, want the newest (2)", got.IssueID)
		}
		if err := s.AddIssueLink(ctx, tn, "KL-1", "branch", "b1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteJiraIssue(ctx, tn, "1", oddTime.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.CountIssueLinks(ctx, tn, "KL-1"); n["branch"] != 1 {
			t.Errorf("links removed although a live issue holds the key: %v", n)
		}
	})
}

func TestIssueLinks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		links := [][3]string{
			{"KL-1", "branch", "repo/feature-KL-1"},
			{"KL-1", "branch", "repo/feature-KL-1"}, // duplicate: idempotent
			{"KL-1", "commit", "abc"},
			{"KL-1", "commit", "def"},
			{"KL-1", "pullrequest", "7"},
			{"KL-2", "commit", "abc"}, // same entity, other issue
		}
		for _, l := range links {
			if err := s.AddIssueLink(ctx, tn, l[0], l[1], l[2]); err != nil {
				t.Fatalf("AddIssueLink%v: %v", l, err)
			}
		}
		tests := []struct {
			key  string
			want map[string]int
		}{
			{"KL-1", map[string]int{"branch": 1, "commit": 2, "pullrequest": 1}},
			{"KL-2", map[string]int{"commit": 1}},
			{"KL-3", map[string]int{}},
		}
		for _, tt := range tests {
			got, err := s.CountIssueLinks(ctx, tn, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !maps.Equal(got, tt.want) {
				t.Errorf("CountIssueLinks(%s) = %v, want %v", tt.key, got, tt.want)
			}
		}
		for _, bad := range [][3]string{{"", "commit", "x"}, {"KL-1", "", "x"}, {"KL-1", "commit", ""}} {
			if err := s.AddIssueLink(ctx, tn, bad[0], bad[1], bad[2]); err == nil {
				t.Errorf("AddIssueLink%q succeeded", bad)
			}
		}
		if _, err := s.CountIssueLinks(ctx, nil, "KL-1"); err == nil {
			t.Error("CountIssueLinks(nil tenant) succeeded")
		}
	})
}

func TestCountJiraIssues(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		inProject := func(is store.JiraIssue, p string) store.JiraIssue { is.ProjectKey = p; return is }
		for _, is := range []store.JiraIssue{
			inProject(issue("1", "KL-1", oddTime), "KL"),
			inProject(issue("2", "KL-2", oddTime), "KL"),
			inProject(issue("3", "KL-3", oddTime), "KL"),
			inProject(issue("4", "OPS-1", oddTime), "OPS"),
		} {
			must(t, s.UpsertJiraIssue(ctx, tn, is))
		}
		must(t, s.DeleteJiraIssue(ctx, tn, "3", oddTime))
		tests := []struct {
			project string
			want    int
		}{{"KL", 2}, {"OPS", 1}, {"NONE", 0}, {"", 0}}
		for _, tt := range tests {
			got, err := s.CountJiraIssues(ctx, tn, tt.project)
			if err != nil || got != tt.want {
				t.Errorf("CountJiraIssues(%q) = %d, %v; want %d", tt.project, got, err, tt.want)
			}
		}
		if _, err := s.CountJiraIssues(ctx, nil, "KL"); err == nil {
			t.Error("CountJiraIssues(nil tenant) succeeded")
		}
	})
}
