package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// at is the test's instant number n: oddTime plus n minutes.
func at(n int) time.Time { return oddTime.Add(time.Duration(n) * time.Minute) }

// move is a status change "from -> to" into category cat at at(n).
func move(from, to, cat string, n int) store.JiraTransition {
	return store.JiraTransition{FromStatus: from, ToStatus: to, ToCategory: cat, At: at(n)}
}

// event is a webhook about issue 10001/KL-1 at at(n) whose snapshot shows the
// last transition's status (or To Do).
func event(n int, moves ...store.JiraTransition) store.JiraIssueEvent {
	is := issue("10001", "KL-1", at(n))
	is.StatusName, is.StatusCategory = "To Do", "new"
	if len(moves) > 0 {
		last := moves[len(moves)-1]
		is.StatusName, is.StatusCategory = last.ToStatus, last.ToCategory
	}
	return store.JiraIssueEvent{Issue: is, Transitions: moves}
}

func withID(ev store.JiraIssueEvent, id string) store.JiraIssueEvent {
	ev.DeliveryID = id
	return ev
}

// describe renders transitions as "n:from>to/cat" for comparison.
func describe(trs []store.JiraTransition) []string {
	out := []string{}
	for _, tr := range trs {
		n := int(tr.At.Sub(oddTime.Truncate(time.Microsecond)) / time.Minute)
		out = append(out, fmt.Sprintf("%d:%s>%s/%s", n, tr.FromStatus, tr.ToStatus, tr.ToCategory))
	}
	return out
}

func mustTransitions(t *testing.T, s *store.Store, tn *tenant.Tenant, issueID string) []store.JiraTransition {
	t.Helper()
	got, err := s.JiraIssueTransitions(context.Background(), tn, issueID)
	if err != nil {
		t.Fatalf("JiraIssueTransitions(%s): %v", issueID, err)
	}
	return got
}

func TestJiraTransitionsDeriveIssueTimes(t *testing.T) {
	const none = -1
	created := move("", "To Do", "new", 0)
	start := move("To Do", "In Progress", "indeterminate", 1)
	finish := move("In Progress", "Done", "done", 2)
	reopen := move("Done", "Reopened", "indeterminate", 3)
	refinish := move("Reopened", "Done", "done", 4)
	tests := []struct {
		name          string
		events        []store.JiraIssueEvent // in arrival order
		want          []string               // transitions, oldest first
		started, done int                    // at(n), or none
	}{
		{"created only", []store.JiraIssueEvent{event(0, created)},
			[]string{"0:>To Do/new"}, none, none},
		{"in order", []store.JiraIssueEvent{event(0, created), event(1, start), event(2, finish)},
			[]string{"0:>To Do/new", "1:To Do>In Progress/indeterminate", "2:In Progress>Done/done"}, 1, 2},
		{"later transition first", []store.JiraIssueEvent{event(2, finish), event(1, start), event(0, created)},
			[]string{"0:>To Do/new", "1:To Do>In Progress/indeterminate", "2:In Progress>Done/done"}, 1, 2},
		{"reopen clears done", []store.JiraIssueEvent{event(1, start), event(2, finish), event(3, reopen)},
			[]string{"1:To Do>In Progress/indeterminate", "2:In Progress>Done/done", "3:Done>Reopened/indeterminate"}, 1, none},
		{"reopen arrives before the done it undoes", []store.JiraIssueEvent{event(3, reopen), event(1, start), event(2, finish)},
			[]string{"1:To Do>In Progress/indeterminate", "2:In Progress>Done/done", "3:Done>Reopened/indeterminate"}, 1, none},
		{"done again after reopen", []store.JiraIssueEvent{event(4, refinish), event(2, finish), event(1, start), event(3, reopen)},
			[]string{"1:To Do>In Progress/indeterminate", "2:In Progress>Done/done", "3:Done>Reopened/indeterminate", "4:Reopened>Done/done"}, 1, 4},
		{"move between done statuses keeps done time", []store.JiraIssueEvent{event(1, start), event(3, move("Done", "Closed", "done", 3)), event(2, finish)},
			[]string{"1:To Do>In Progress/indeterminate", "2:In Progress>Done/done", "3:Done>Closed/done"}, 1, 2},
		{"straight to done", []store.JiraIssueEvent{event(0, created), event(2, move("To Do", "Done", "done", 2))},
			[]string{"0:>To Do/new", "2:To Do>Done/done"}, 2, 2},
		{"done before it was worked on", []store.JiraIssueEvent{event(2, move("To Do", "Won't Do", "done", 2)), event(3, move("Won't Do", "To Do", "new", 3)), event(4, move("To Do", "In Progress", "indeterminate", 4))},
			[]string{"2:To Do>Won't Do/done", "3:Won't Do>To Do/new", "4:To Do>In Progress/indeterminate"}, 2, none},
		{"created in progress", []store.JiraIssueEvent{event(0, move("", "In Progress", "indeterminate", 0))},
			[]string{"0:>In Progress/indeterminate"}, 0, none},
		{"unknown category says nothing", []store.JiraIssueEvent{event(1, start), event(2, finish), event(3, move("Done", "Odd", "", 3))},
			[]string{"1:To Do>In Progress/indeterminate", "2:In Progress>Done/done", "3:Done>Odd/"}, 1, 2},
		{"replayed event recorded once", []store.JiraIssueEvent{event(1, start), event(1, start), event(2, finish), event(2, finish)},
			[]string{"1:To Do>In Progress/indeterminate", "2:In Progress>Done/done"}, 1, 2},
		{"update without status change", []store.JiraIssueEvent{event(1, start), event(5)},
			[]string{"1:To Do>In Progress/indeterminate"}, 1, none},
	}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tn := mustUpsert(t, s, install(fmt.Sprint("site", i)))
				for _, ev := range tt.events {
					must(t, s.ApplyJiraIssueEvent(ctx, tn, ev))
				}
				if got := describe(mustTransitions(t, s, tn, "10001")); !slices.Equal(got, tt.want) {
					t.Errorf("transitions = %q\nwant %q", got, tt.want)
				}
				is := mustIssue(t, s, tn, "KL-1")
				for _, c := range []struct {
					name string
					got  time.Time
					want int
				}{{"StartedAt", is.StartedAt, tt.started}, {"DoneAt", is.DoneAt, tt.done}} {
					want := time.Time{}
					if c.want != none {
						want = at(c.want).UTC().Truncate(time.Microsecond)
					}
					if !c.got.Equal(want) || (!c.got.IsZero() && c.got.Location() != time.UTC) {
						t.Errorf("%s = %v, want %v", c.name, c.got, want)
					}
				}
			})
		}
	})
}

func TestJiraTransitionsKeepKeyAndIDs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		first := event(1, store.JiraTransition{FromStatus: "To Do", FromStatusID: "10000", ToStatus: "In Progress", ToStatusID: "3", ToCategory: "indeterminate", At: at(1),
			IssueID: "ignored", IssueKey: "IGNORED-1"})
		moved := event(2, move("In Progress", "Done", "done", 2))
		moved.Issue.IssueKey, moved.Issue.ProjectKey = "OPS-7", "OPS"
		must(t, s.ApplyJiraIssueEvent(ctx, tn, first))
		must(t, s.ApplyJiraIssueEvent(ctx, tn, moved))
		got := mustTransitions(t, s, tn, "10001")
		want := []store.JiraTransition{
			{IssueID: "10001", IssueKey: "KL-1", FromStatus: "To Do", FromStatusID: "10000", ToStatus: "In Progress", ToStatusID: "3", ToCategory: "indeterminate", At: at(1).UTC().Truncate(time.Microsecond)},
			{IssueID: "10001", IssueKey: "OPS-7", FromStatus: "In Progress", ToStatus: "Done", ToCategory: "done", At: at(2).UTC().Truncate(time.Microsecond)},
		}
		if !slices.Equal(got, want) {
			t.Errorf("transitions = %+v\nwant %+v", got, want)
		}
		if got := mustTransitions(t, s, tn, "99999"); got == nil || len(got) != 0 {
			t.Errorf("unknown issue: %#v, want empty, non-nil", got)
		}
	})
}

func TestApplyJiraIssueEventDeduplicates(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clk := useClock(s, oddTime)
		a := mustUpsert(t, s, install("site-a"))
		b := mustUpsert(t, s, install("site-b"))
		start := move("To Do", "In Progress", "indeterminate", 1)
		finish := move("In Progress", "Done", "done", 2)

		must(t, s.ApplyJiraIssueEvent(ctx, a, withID(event(1, start), "wh-1")))
		before, err := s.DumpTenant(ctx, a.ID)
		must(t, err)
		// A redelivery repeats the body, but even a different body under the
		// same identifier must change nothing.
		for _, ev := range []store.JiraIssueEvent{withID(event(1, start), "wh-1"), withID(event(2, finish), "wh-1")} {
			if err := s.ApplyJiraIssueEvent(ctx, a, ev); !errors.Is(err, store.ErrDuplicate) {
				t.Errorf("redelivery: %v, want ErrDuplicate", err)
			}
		}
		after, err := s.DumpTenant(ctx, a.ID)
		must(t, err)
		if !slices.Equal(before, after) {
			t.Errorf("redelivery changed rows:\nbefore %q\nafter  %q", before, after)
		}

		// Identifiers are per site.
		must(t, s.ApplyJiraIssueEvent(ctx, b, withID(event(2, finish), "wh-1")))
		if got := describe(mustTransitions(t, s, b, "10001")); !slices.Equal(got, []string{"2:In Progress>Done/done"}) {
			t.Errorf("B's transitions = %q", got)
		}

		// Long or odd identifiers are hashed, not truncated into collisions.
		long := strings.Repeat("x", 300)
		must(t, s.ApplyJiraIssueEvent(ctx, a, withID(event(3), long+"1")))
		must(t, s.ApplyJiraIssueEvent(ctx, a, withID(event(3), long+"2")))
		if err := s.ApplyJiraIssueEvent(ctx, a, withID(event(3), long+"1")); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("long id again: %v, want ErrDuplicate", err)
		}

		// Deletions claim too.
		del := store.JiraIssueEvent{DeliveryID: "wh-del", Deleted: true, Issue: store.JiraIssue{IssueID: "10001", UpdatedAt: at(9)}}
		must(t, s.ApplyJiraIssueEvent(ctx, a, del))
		if _, err := s.JiraIssueByKey(ctx, a, "KL-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted issue found: %v", err)
		}
		if err := s.ApplyJiraIssueEvent(ctx, a, del); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("repeated deletion: %v, want ErrDuplicate", err)
		}

		// Without an identifier nothing is claimed and every delivery is processed.
		var claims int
		must(t, s.ScanOne(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM jira_webhook_claims WHERE tenant_id = %d`, b.ID), &claims))
		for range 2 {
			must(t, s.ApplyJiraIssueEvent(ctx, b, event(3, move("Done", "Reopened", "indeterminate", 3))))
		}
		var claimsAfter int
		must(t, s.ScanOne(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM jira_webhook_claims WHERE tenant_id = %d`, b.ID), &claimsAfter))
		if claims != 1 || claimsAfter != 1 {
			t.Errorf("claims of B = %d then %d, want 1 and 1", claims, claimsAfter)
		}
		if is := mustIssue(t, s, b, "KL-1"); !is.DoneAt.IsZero() {
			t.Errorf("B's issue still done at %v after reopening", is.DoneAt)
		}

		// Claims expire after a week; pruning happens on a later claim.
		clk.add(store.JiraWebhookClaimTTL - time.Minute)
		must(t, s.ApplyJiraIssueEvent(ctx, a, withID(event(4), "wh-late")))
		if err := s.ApplyJiraIssueEvent(ctx, a, withID(event(1, start), "wh-1")); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("claim younger than the TTL: %v, want ErrDuplicate", err)
		}
		clk.add(2 * time.Minute)
		must(t, s.ApplyJiraIssueEvent(ctx, a, withID(event(5), "wh-prune")))
		must(t, s.ApplyJiraIssueEvent(ctx, a, withID(event(1, start), "wh-1")))
		var left []string
		for _, id := range []string{"wh-1", "wh-del", "wh-late", "wh-prune"} {
			var n int
			must(t, s.ScanOne(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM jira_webhook_claims WHERE tenant_id = %d AND webhook_id = '%s'`, a.ID, id), &n))
			if n > 0 {
				left = append(left, id)
			}
		}
		// wh-1 was claimed again just now; wh-del expired and was pruned.
		if want := []string{"wh-1", "wh-late", "wh-prune"}; !slices.Equal(left, want) {
			t.Errorf("claims left = %q, want %q", left, want)
		}
		// B's week-old claim is B's to prune: A's claims leave it alone.
		must(t, s.ScanOne(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM jira_webhook_claims WHERE tenant_id = %d`, b.ID), &claimsAfter))
		if claimsAfter != 1 {
			t.Errorf("A's pruning removed B's claims: %d left", claimsAfter)
		}
	})
}

// TestApplyJiraIssueEventFailureClaimsNothing breaks the transitions table
// so the write after the claim fails, and checks that the claim and the issue
// update rolled back with it and that the retry is processed.
func TestApplyJiraIssueEventFailureClaimsNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		must(t, s.ApplyJiraIssueEvent(ctx, tn, event(1, move("To Do", "In Progress", "indeterminate", 1))))
		before, err := s.DumpTenant(ctx, tn.ID)
		must(t, err)

		done := withID(event(2, move("In Progress", "Done", "done", 2)), "wh-1")
		must(t, s.Exec(ctx, `ALTER TABLE jira_transitions RENAME TO jira_transitions_away`))
		err = s.ApplyJiraIssueEvent(ctx, tn, done)
		must(t, s.Exec(ctx, `ALTER TABLE jira_transitions_away RENAME TO jira_transitions`))
		if err == nil || errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("apply with a broken table = %v, want a write error", err)
		}
		after, err := s.DumpTenant(ctx, tn.ID)
		must(t, err)
		if !slices.Equal(before, after) {
			t.Errorf("failed event left rows behind:\nbefore %q\nafter  %q", before, after)
		}

		must(t, s.ApplyJiraIssueEvent(ctx, tn, done))
		if is := mustIssue(t, s, tn, "KL-1"); is.StatusName != "Done" || is.DoneAt.IsZero() {
			t.Errorf("retry not applied: %+v", is)
		}
	})
}

func TestApplyJiraIssueEventRejects(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		ok := withID(event(1, move("To Do", "In Progress", "indeterminate", 1)), "wh-bad")
		tests := []struct {
			name string
			tn   *tenant.Tenant
			mod  func(ev *store.JiraIssueEvent)
		}{
			{"nil tenant", nil, nil},
			{"unsaved tenant", &tenant.Tenant{}, nil},
			{"tenant row missing", &tenant.Tenant{ID: 424242}, nil}, // foreign key
			{"no issue id", tn, func(ev *store.JiraIssueEvent) { ev.Issue.IssueID = "" }},
			{"no issue key", tn, func(ev *store.JiraIssueEvent) { ev.Issue.IssueKey = "" }},
			{"no event time", tn, func(ev *store.JiraIssueEvent) { ev.Issue.UpdatedAt = time.Time{} }},
			{"transition without target", tn, func(ev *store.JiraIssueEvent) { ev.Transitions[0].ToStatus = "" }},
			{"transition without time", tn, func(ev *store.JiraIssueEvent) { ev.Transitions[0].At = time.Time{} }},
			{"deletion with transitions", tn, func(ev *store.JiraIssueEvent) { ev.Deleted = true }},
		}
		for _, tt := range tests {
			ev := ok
			ev.Transitions = slices.Clone(ok.Transitions)
			if tt.mod != nil {
				tt.mod(&ev)
			}
			if err := s.ApplyJiraIssueEvent(ctx, tt.tn, ev); err == nil || errors.Is(err, store.ErrDuplicate) {
				t.Errorf("%s: ApplyJiraIssueEvent = %v, want a validation error", tt.name, err)
			}
		}
		// None of them claimed the identifier.
		must(t, s.ApplyJiraIssueEvent(ctx, tn, ok))
		if _, err := s.JiraIssueTransitions(ctx, nil, "10001"); err == nil {
			t.Error("JiraIssueTransitions(nil tenant) succeeded")
		}
	})
}
