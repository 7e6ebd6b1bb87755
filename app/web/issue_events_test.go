package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// hookT0 is the time of the test webhooks; jiraHook.min counts minutes from it.
var hookT0 = time.Date(2025, 6, 2, 9, 30, 15, 250_000_000, time.UTC)

// jiraHook is one delivery of a Jira issue webhook about OPS-7 (id 10007).
type jiraHook struct {
	site  site
	event string // created, updated or deleted
	id    string // X-Atlassian-Webhook-Identifier; "" sends none
	min   int
	// The issue snapshot's status.
	status, statusID, category string
	items                      []any // changelog items
	// body, when set, is sent instead of the body built from the fields above.
	body string
}

// statusChange is a changelog item as Jira writes a status change.
func statusChange(fromID, from, toID, to string) map[string]any {
	return map[string]any{"field": "status", "fieldtype": "jira", "fieldId": "status",
		"from": fromID, "fromString": from, "to": toID, "toString": to}
}

// updated is an issue_updated webhook at minute n moving OPS-7 from one
// status to another, whose snapshot shows the new status.
func updated(s site, id string, n int, fromID, from, toID, to, category string) jiraHook {
	return jiraHook{site: s, event: "updated", id: id, min: n, status: to, statusID: toID, category: category,
		items: []any{statusChange(fromID, from, toID, to)}}
}

func (d jiraHook) json(t *testing.T) string {
	if d.body != "" {
		return d.body
	}
	body := map[string]any{
		"timestamp":    hookT0.Add(time.Duration(d.min) * time.Minute).UnixMilli(),
		"webhookEvent": "jira:issue_" + d.event,
		"issue": map[string]any{
			"id":  "10007",
			"key": "OPS-7",
			"fields": map[string]any{
				"summary": "Fix login",
				"project": map[string]any{"key": "OPS"},
				"status": map[string]any{"id": d.statusID, "name": d.status,
					"statusCategory": map[string]any{"key": d.category}},
			},
		},
	}
	if d.items != nil {
		body["changelog"] = map[string]any{"id": "10400", "items": d.items}
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// deliver posts d signed with its site's secret, the way Jira does.
func (h *harness) deliver(d jiraHook) *httptest.ResponseRecorder {
	h.t.Helper()
	path := "/jira/webhooks/issue-" + d.event
	tok := signHS256(h.t, h.productClaims(d.site, http.MethodPost, path), d.site.secret)
	req := httptest.NewRequest(http.MethodPost, testBase+path, strings.NewReader(d.json(h.t)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "JWT "+tok)
	if d.id != "" {
		req.Header.Set("X-Atlassian-Webhook-Identifier", d.id)
		req.Header.Set("X-Atlassian-Webhook-Retry", "1")
	}
	rec := httptest.NewRecorder()
	h.server.Handler().ServeHTTP(rec, req)
	return rec
}

func (h *harness) jiraTenant(s site) *tenant.Tenant {
	h.t.Helper()
	tn, err := h.store.TenantByClientKey(context.Background(), jiraKey, s.clientKey)
	if err != nil {
		h.t.Fatal(err)
	}
	return tn
}

// transitionsOf renders the transitions of s's issue 10007 as
// "minute:from>to/category".
func (h *harness) transitionsOf(s site) []string {
	h.t.Helper()
	trs, err := h.store.JiraIssueTransitions(context.Background(), h.jiraTenant(s), "10007")
	if err != nil {
		h.t.Fatal(err)
	}
	out := []string{}
	for _, tr := range trs {
		if tr.IssueKey != "OPS-7" {
			h.t.Errorf("transition recorded under key %q", tr.IssueKey)
		}
		n := int(tr.At.Sub(hookT0) / time.Minute)
		out = append(out, fmt.Sprintf("%d:%s>%s/%s", n, tr.FromStatus, tr.ToStatus, tr.ToCategory))
	}
	return out
}

// minuteOf is the minute after hookT0 of a stored time, or -1 when unknown.
func minuteOf(t time.Time) int {
	if t.IsZero() {
		return -1
	}
	return int(t.Sub(hookT0) / time.Minute)
}

func TestIssueEventTransitions(t *testing.T) {
	const none = -1
	created := jiraHook{site: acme, event: "created", min: 0, status: "To Do", statusID: "10000", category: "new"}
	start := func(id string) jiraHook {
		return updated(acme, id, 1, "10000", "To Do", "3", "In Progress", "indeterminate")
	}
	finish := func(s site, id string) jiraHook {
		return updated(s, id, 2, "3", "In Progress", "10001", "Done", "done")
	}
	type delivery struct {
		hook jiraHook
		want int
	}
	tests := []struct {
		name       string
		deliveries []delivery
		acme       []string // acme's transitions, oldest first
		globex     []string // nil: globex has not installed a thing to check
		status     string   // acme's issue status; "" when deleted
		started    int
		done       int
	}{
		{
			name:       "created records the status it was created in",
			deliveries: []delivery{{created, 204}},
			acme:       []string{"0:>To Do/new"},
			status:     "To Do", started: none, done: none,
		},
		{
			name:       "later transition arriving first",
			deliveries: []delivery{{finish(acme, ""), 204}, {start(""), 204}, {created, 204}},
			acme:       []string{"0:>To Do/new", "1:To Do>In Progress/indeterminate", "2:In Progress>Done/done"},
			status:     "Done", started: 1, done: 2,
		},
		{
			name:       "redelivery with the same identifier changes nothing",
			deliveries: []delivery{{start("wh-1"), 204}, {start("wh-1"), 204}, {finish(acme, "wh-1"), 204}},
			acme:       []string{"1:To Do>In Progress/indeterminate"},
			status:     "In Progress", started: 1, done: none,
		},
		{
			name:       "an identifier of one site does not block another",
			deliveries: []delivery{{start("wh-1"), 204}, {finish(globex, "wh-1"), 204}},
			acme:       []string{"1:To Do>In Progress/indeterminate"},
			globex:     []string{"2:In Progress>Done/done"},
			status:     "In Progress", started: 1, done: none,
		},
		{
			name: "a rejected body does not claim its identifier",
			deliveries: []delivery{
				{jiraHook{site: acme, event: "updated", id: "wh-2", min: 1, status: "In Progress", statusID: "3", category: "indeterminate",
					items: []any{map[string]any{"field": "status", "fieldtype": "jira", "to": "3", "toString": 3}}}, 400},
				{start("wh-2"), 204},
			},
			acme:   []string{"1:To Do>In Progress/indeterminate"},
			status: "In Progress", started: 1, done: none,
		},
		{
			name:       "without an identifier every delivery is processed, a change recorded once",
			deliveries: []delivery{{start(""), 204}, {start(""), 204}},
			acme:       []string{"1:To Do>In Progress/indeterminate"},
			status:     "In Progress", started: 1, done: none,
		},
		{
			name: "a snapshot showing another status leaves the category unknown",
			deliveries: []delivery{{jiraHook{site: acme, event: "updated", min: 1, status: "Done", statusID: "10001", category: "done",
				items: []any{statusChange("10000", "To Do", "3", "In Progress")}}, 204}},
			acme:   []string{"1:To Do>In Progress/"},
			status: "Done", started: none, done: none,
		},
		{
			name: "a custom field called status is not the status",
			deliveries: []delivery{{jiraHook{site: acme, event: "updated", min: 1, status: "To Do", statusID: "10000", category: "new",
				items: []any{
					map[string]any{"field": "status", "fieldtype": "custom", "from": nil, "fromString": nil, "to": nil, "toString": "Green"},
					map[string]any{"field": "summary", "fieldtype": "jira", "from": nil, "fromString": "Old", "to": nil, "toString": "Fix login"},
				}}, 204}},
			acme:   []string{},
			status: "To Do", started: none, done: none,
		},
		{
			name: "a redelivered deletion is answered 204",
			deliveries: []delivery{
				{created, 204},
				{jiraHook{site: acme, event: "deleted", id: "wh-del", min: 3, status: "To Do", category: "new"}, 204},
				{jiraHook{site: acme, event: "deleted", id: "wh-del", min: 3, status: "To Do", category: "new"}, 204},
			},
			acme:   []string{"0:>To Do/new"},
			status: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, st *store.Store) {
				h := newHarness(t, st)
				h.install(acme, jiraKey)
				h.install(globex, jiraKey)
				for i, d := range tt.deliveries {
					if rec := h.deliver(d.hook); rec.Code != d.want {
						t.Fatalf("delivery %d: status %d, want %d; body: %s", i, rec.Code, d.want, rec.Body)
					}
				}
				if got := h.transitionsOf(acme); !slices.Equal(got, tt.acme) {
					t.Errorf("acme's transitions = %q\nwant %q", got, tt.acme)
				}
				wantGlobex := tt.globex
				if wantGlobex == nil {
					wantGlobex = []string{}
				}
				if got := h.transitionsOf(globex); !slices.Equal(got, wantGlobex) {
					t.Errorf("globex's transitions = %q\nwant %q", got, wantGlobex)
				}
				is, err := st.JiraIssueByKey(context.Background(), h.jiraTenant(acme), "OPS-7")
				if tt.status == "" {
					if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("deleted issue: %+v, %v", is, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if is.StatusName != tt.status || minuteOf(is.StartedAt) != tt.started || minuteOf(is.DoneAt) != tt.done {
					t.Errorf("issue: status %q, started minute %d, done minute %d; want %q, %d, %d",
						is.StatusName, minuteOf(is.StartedAt), minuteOf(is.DoneAt), tt.status, tt.started, tt.done)
				}
			})
		})
	}
}

func TestIssueEventRejectsBadShape(t *testing.T) {
	valid := updated(acme, "wh-bad", 1, "10000", "To Do", "3", "In Progress", "indeterminate")
	withItem := func(item map[string]any) jiraHook {
		d := valid
		d.items = []any{item}
		return d
	}
	withBody := func(f func(m map[string]any)) jiraHook {
		var m map[string]any
		if err := json.Unmarshal([]byte(valid.json(t)), &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		d := valid
		d.body = string(b)
		return d
	}
	tests := []struct {
		name   string
		hook   jiraHook
		reason string
	}{
		{"status name not a string", withItem(map[string]any{"field": "status", "fieldtype": "jira", "to": "3", "toString": 3}),
			"changelog.items[0].toString is not a string"},
		{"status id not a string", withItem(map[string]any{"field": "status", "fieldtype": "jira", "to": 3, "toString": "In Progress"}),
			"changelog.items[0].to is not a string"},
		{"status change without a target", withItem(map[string]any{"field": "status", "fieldtype": "jira", "from": "10000", "fromString": "To Do", "to": "3"}),
			"changelog.items[0] changes the status but has no toString"},
		{"status id not numeric", withItem(statusChange("10000", "To Do", "3; DROP", "In Progress")),
			"not numeric"},
		{"items not a list", withBody(func(m map[string]any) { m["changelog"] = map[string]any{"items": "status"} }),
			"field changelog.items has the wrong type"},
		{"issue id a number", withBody(func(m map[string]any) { m["issue"].(map[string]any)["id"] = 10007 }),
			"field issue.id has the wrong type"},
		{"snapshot status id not numeric", withBody(func(m map[string]any) {
			m["issue"].(map[string]any)["fields"].(map[string]any)["status"].(map[string]any)["id"] = "three"
		}), "issue.fields.status.id is not numeric"},
		{"timestamp out of range", withBody(func(m map[string]any) { m["timestamp"] = int64(1) << 60 }),
			"timestamp is out of range"},
		{"truncated JSON", jiraHook{site: acme, event: "updated", id: "wh-bad", body: `{"webhookEvent":"jira:issue_updated","issue":`},
			"not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, st *store.Store) {
				h := newHarness(t, st)
				h.install(acme, jiraKey)
				rec := h.deliver(tt.hook)
				if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tt.reason) {
					t.Fatalf("status %d, body %s; want 400 with %q", rec.Code, rec.Body, tt.reason)
				}
				if _, err := st.JiraIssueByKey(context.Background(), h.jiraTenant(acme), "OPS-7"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("rejected delivery stored the issue: %v", err)
				}
				if got := h.transitionsOf(acme); len(got) != 0 {
					t.Errorf("rejected delivery stored transitions %q", got)
				}
				// Jira's corrected delivery under the same identifier is processed.
				if rec := h.deliver(valid); rec.Code != http.StatusNoContent {
					t.Fatalf("valid delivery after a rejected one: %d %s", rec.Code, rec.Body)
				}
				if got := h.transitionsOf(acme); !slices.Equal(got, []string{"1:To Do>In Progress/indeterminate"}) {
					t.Errorf("transitions after the valid delivery = %q", got)
				}
			})
		})
	}
}

// flakyStore fails ApplyJiraIssueEvent a given number of times, as a database
// outage would.
type flakyStore struct {
	Store
	failures atomic.Int32
}

func (f *flakyStore) ApplyJiraIssueEvent(ctx context.Context, t *tenant.Tenant, ev store.JiraIssueEvent) error {
	if f.failures.Add(-1) >= 0 {
		return errors.New("database unavailable")
	}
	return f.Store.ApplyJiraIssueEvent(ctx, t, ev)
}

// TestIssueEventStoreFailure checks that a delivery the store could not take
// is answered 5xx, so Jira retries it, and that the retry is stored. (That a
// failed write leaves its identifier unclaimed is the store's transaction,
// tested in app/store.)
func TestIssueEventStoreFailure(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st)
		h.install(acme, jiraKey)
		flaky := &flakyStore{Store: st}
		flaky.failures.Store(1)
		deps := h.server.deps
		deps.Store = flaky
		srv, err := New(deps)
		if err != nil {
			t.Fatal(err)
		}
		h.server = srv

		hook := updated(acme, "wh-3", 1, "10000", "To Do", "3", "In Progress", "indeterminate")
		if rec := h.deliver(hook); rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "database") {
			t.Fatalf("failed store: %d %s; want 500 without details", rec.Code, rec.Body)
		}
		if rec := h.deliver(hook); rec.Code != http.StatusNoContent {
			t.Fatalf("retry: %d %s", rec.Code, rec.Body)
		}
		if got := h.transitionsOf(acme); !slices.Equal(got, []string{"1:To Do>In Progress/indeterminate"}) {
			t.Errorf("transitions after the retry = %q", got)
		}
	})
}
