package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/descriptor"
)

// issueWebhook posts a Jira issue event the way Jira delivers it.
func (h *harness) issueWebhook(s site, path, event, key, id, summary, status, category string) *httptest.ResponseRecorder {
	body := map[string]any{
		"timestamp":    h.now.UnixMilli(),
		"webhookEvent": event,
		"issue": map[string]any{
			"id":  id,
			"key": key,
			"fields": map[string]any{
				"summary": summary,
				"project": map[string]any{"key": strings.Split(key, "-")[0]},
				"status":  map[string]any{"name": status, "statusCategory": map[string]any{"key": category}},
			},
		},
	}
	c := h.productClaims(s, http.MethodPost, path)
	return h.do(http.MethodPost, path, "JWT "+signHS256(h.t, c, s.secret), body)
}

func TestIssueWebhooks(t *testing.T) {
	installed := func(h *harness) { h.install(acme, jiraKey); h.install(globex, jiraKey) }
	runScenarios(t, []scenario{
		{
			name:  "issue updated is recorded and shown, escaped",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				rec := h.issueWebhook(acme, "/jira/webhooks/issue-updated", "jira:issue_updated", "OPS-7", "10007", "Fix login", `<script>alert(1)</script>`, "indeterminate")
				if rec.Code != http.StatusNoContent {
					h.t.Fatalf("webhook: %d %s", rec.Code, rec.Body)
				}
				return h.iframeGET(acme, panelTarget+"&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "lozenge-information"},
			notContent:  []string{"<script>alert(1)</script>"},
			check: func(t *testing.T, h *harness) {
				// Globex's panel for the same key knows nothing of it.
				rec := h.iframeGET(globex, panelTarget+"&"+iframeQuery(""))
				if strings.Contains(rec.Body.String(), "alert(1)") {
					t.Errorf("globex's panel shows acme's issue status")
				}
			},
		},
		{
			name:  "issue deleted removes what was recorded",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				h.issueWebhook(acme, "/jira/webhooks/issue-created", "jira:issue_created", "OPS-7", "10007", "Fix login", "To Do", "new")
				h.issueWebhook(globex, "/jira/webhooks/issue-created", "jira:issue_created", "OPS-7", "10007", "Globex", "Globex Doing", "indeterminate")
				rec := h.issueWebhook(acme, "/jira/webhooks/issue-deleted", "jira:issue_deleted", "OPS-7", "10007", "Fix login", "To Do", "new")
				if rec.Code != http.StatusNoContent {
					h.t.Fatalf("delete webhook: %d %s", rec.Code, rec.Body)
				}
				return h.iframeGET(acme, panelTarget+"&"+iframeQuery(""))
			},
			wantStatus: http.StatusOK,
			notContent: []string{"To Do", "Globex Doing"},
			check: func(t *testing.T, h *harness) {
				if rec := h.iframeGET(globex, panelTarget+"&"+iframeQuery("")); !strings.Contains(rec.Body.String(), "Globex Doing") {
					t.Errorf("acme's delete removed globex's issue")
				}
			},
		},
		{
			name:  "event that does not match the URL stores nothing",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.issueWebhook(acme, "/jira/webhooks/issue-created", "jira:issue_deleted", "OPS-7", "10007", "x", "Evil", "new")
			},
			wantStatus:  http.StatusBadRequest,
			wantContent: []string{"does not match this URL"},
			check: func(t *testing.T, h *harness) {
				if rec := h.iframeGET(acme, panelTarget+"&"+iframeQuery("")); strings.Contains(rec.Body.String(), "Evil") {
					t.Errorf("rejected webhook was stored")
				}
			},
		},
		{
			name:  "malformed JSON",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				c := h.productClaims(acme, http.MethodPost, "/jira/webhooks/issue-updated")
				return h.do(http.MethodPost, "/jira/webhooks/issue-updated", "JWT "+signHS256(h.t, c, acme.secret), `{"issue":`)
			},
			wantStatus: http.StatusBadRequest, wantContent: []string{"not valid JSON"},
		},
		{
			name:  "bad issue key",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.issueWebhook(acme, "/jira/webhooks/issue-updated", "jira:issue_updated", "ops 7", "10007", "x", "y", "new")
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name:  "webhook with a context token",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.do(http.MethodPost, "/jira/webhooks/issue-updated", "JWT "+signHS256(h.t, h.contextClaims(acme), acme.secret), `{}`)
			},
			wantStatus: http.StatusUnauthorized,
		},
	})
}

func TestPages(t *testing.T) {
	runScenarios(t, []scenario{
		{
			name:  "right-column summary",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, "/jira/summary?issueKey=OPS-7&issueId=10007&projectKey=OPS&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="issue-summary"`, "No DevOps data linked to OPS-7 yet"},
		},
		{
			name:  "project page counts the project's issues",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				h.issueWebhook(acme, "/jira/webhooks/issue-created", "jira:issue_created", "OPS-7", "10007", "a", "To Do", "new")
				h.issueWebhook(acme, "/jira/webhooks/issue-created", "jira:issue_created", "WEB-1", "10008", "b", "To Do", "new")
				return h.iframeGET(acme, "/jira/project?projectKey=OPS&projectId=10000&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"Release metrics for", ">OPS<", "Keyline knows 1 issues"},
		},
		{
			name:  "Jira configure page",
			setup: func(h *harness) { h.install(acme, jiraKey); h.adminClaims(acme) },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, "/jira/configure?"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"Keyline for Jira", jiraKey, "30 days"},
		},
		{
			name:  "Confluence configure page without the Jira app",
			setup: func(h *harness) { h.install(acme, confKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, "/confluence/configure?"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"Keyline for Confluence", `data-testid="jira-missing"`},
		},
		{
			name:        "liveness",
			request:     func(h *harness) *httptest.ResponseRecorder { return h.do(http.MethodGet, "/healthz", "", nil) },
			wantStatus:  http.StatusOK,
			wantContent: []string{`"ok"`},
		},
		{
			name:        "readiness",
			request:     func(h *harness) *httptest.ResponseRecorder { return h.do(http.MethodGet, "/readyz", "", nil) },
			wantStatus:  http.StatusOK,
			wantContent: []string{`"ready"`},
		},
		{
			name: "static asset",
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.do(http.MethodGet, "/jira/static/css/keyline.css", "", nil)
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"--ds-text"},
		},
		{
			name:       "static directory listing is not served",
			request:    func(h *harness) *httptest.ResponseRecorder { return h.do(http.MethodGet, "/static/css/", "", nil) },
			wantStatus: http.StatusNotFound,
		},
	})
}

// TestDescriptorURLsAreRoutes checks every URL a descriptor names answers on
// the route it names, and that the served descriptors use the configured base URL.
func TestDescriptorURLsAreRoutes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st)
		routes := map[string]bool{}
		for _, r := range h.server.echo.Routes() {
			routes[r.Method+" "+r.Path] = true
		}
		for _, p := range descriptor.Products {
			rec := h.do(http.MethodGet, p.BasePath()+"/atlassian-connect.json", "", nil)
			if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				t.Fatalf("%s descriptor: %d %s", p, rec.Code, rec.Header().Get("Content-Type"))
			}
			var d map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
				t.Fatal(err)
			}
			if d["baseUrl"] != testBase+p.BasePath() {
				t.Errorf("%s baseUrl = %v", p, d["baseUrl"])
			}
			urls := map[string]string{} // url → method
			for _, v := range d["lifecycle"].(map[string]any) {
				urls[v.(string)] = http.MethodPost
			}
			collectURLs(d["modules"], urls)
			if len(urls) < 6 {
				t.Fatalf("%s: only %d URLs found in the descriptor", p, len(urls))
			}
			for u, method := range urls {
				parsed, err := url.Parse(u)
				if err != nil {
					t.Fatalf("%s: bad URL %q", p, u)
				}
				path := p.BasePath() + parsed.Path
				if strings.Contains(path, "/static/") {
					if rec := h.do(http.MethodGet, path, "", nil); rec.Code != http.StatusOK {
						t.Errorf("%s: asset %s answers %d", p, path, rec.Code)
					}
					continue
				}
				if !routes[method+" "+path] {
					t.Errorf("%s: descriptor URL %s %s is not a registered route", p, method, path)
				}
			}
		}
	})
}

// collectURLs finds module URLs: "url" fields are pages (GET) unless they sit
// in a webhook (POST); icons are static assets.
func collectURLs(v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		method := http.MethodGet
		if _, ok := x["event"]; ok {
			method = http.MethodPost
		}
		for k, val := range x {
			if s, ok := val.(string); ok && (k == "url" || k == "iconUrl") && strings.HasPrefix(s, "/") {
				out[s] = method
			}
			collectURLs(val, out)
		}
	case []any:
		for _, e := range x {
			collectURLs(e, out)
		}
	}
}

// TestDatabaseOutage checks an unreachable store makes Keyline unready and
// answers 503 (retry later), never 401 or a page of another tenant.
func TestDatabaseOutage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st)
		h.install(acme, jiraKey)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if rec := h.do(http.MethodGet, "/readyz", "", nil); rec.Code != http.StatusServiceUnavailable {
			t.Errorf("/readyz with the database closed = %d, want 503", rec.Code)
		}
		// globex is not cached, so verifying its token needs the store.
		rec := h.iframeGET(globex, panelTarget+"&"+iframeQuery(""))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("panel of an uncached tenant with the database closed = %d, want 503: %s", rec.Code, rec.Body)
		}
		if strings.Contains(rec.Body.String(), "acme") {
			t.Errorf("outage page mentions another site: %s", rec.Body)
		}
	})
}
