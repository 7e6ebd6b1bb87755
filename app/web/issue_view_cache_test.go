package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// TestIssuePanelCacheFollowsWrites loads the same panels again after each
// kind of write, through the same HTTP paths Jira and the providers use,
// and checks that every write shows at once, on its own site only, and that
// the per-viewer part of a cached page (the admin's empty state) is never
// served to the wrong viewer.
func TestIssuePanelCacheFollowsWrites(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st)
		h.install(acme, jiraKey)
		h.install(globex, jiraKey)
		panel := func(s site, target string) string {
			t.Helper()
			rec := h.iframeGET(s, target+"&"+iframeQuery(""))
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
			}
			return rec.Body.String()
		}
		expect := func(step, body string, want, notWant []string) {
			t.Helper()
			for _, s := range want {
				if !strings.Contains(body, s) {
					t.Errorf("%s: page lacks %q", step, s)
				}
			}
			for _, s := range notWant {
				if strings.Contains(body, s) {
					t.Errorf("%s: page contains %q, which it must not", step, s)
				}
			}
		}
		const empty = "No DevOps data is linked to OPS-7 yet"
		const summaryTarget = "/jira/summary?issueKey=OPS-7&issueId=10007"

		expect("before any delivery", panel(acme, panelTarget), []string{empty}, []string{"2222222"})
		expect("globex before", panel(globex, panelTarget), []string{empty}, nil)
		expect("acme summary before", panel(acme, summaryTarget), nil, []string{"2222222"})

		h.deliverOPS7()
		expect("after the push and the deployment", panel(acme, panelTarget),
			[]string{"2222222", "staging-eu", `data-testid="timeline"`}, []string{empty})
		expect("acme summary after", panel(acme, summaryTarget),
			[]string{`data-testid="summary"`, "staging-eu"}, []string{`data-testid="timeline"`, empty})
		expect("globex after acme's delivery", panel(globex, panelTarget), []string{empty}, []string{"2222222", "staging-eu"})

		if rec := h.issueWebhook(acme, "/jira/webhooks/issue-updated", "jira:issue_updated", "OPS-7", "10007",
			"Summary from the latest webhook", "Waiting for review", "indeterminate"); rec.Code != http.StatusNoContent {
			t.Fatalf("issue webhook: %d %s", rec.Code, rec.Body)
		}
		expect("after Jira's issue event", panel(acme, panelTarget), []string{`data-testid="status"`, "Waiting for review"}, nil)

		gen := h.addSource(acme, ingest.KindGeneric)
		prod := []byte(strings.NewReplacer(`"staging-eu"`, `"prod-eu"`, `"type": "staging"`, `"type": "production"`,
			`"deploymentSequenceNumber": 12`, `"deploymentSequenceNumber": 13`).Replace(deploymentOPS7))
		if rec := h.sendHook(gen.token, ingest.GenericDeployment, signed(gen.kind, gen.secret, prod), prod); rec.Code != http.StatusOK {
			t.Fatalf("deployment: %d %s", rec.Code, rec.Body)
		}
		expect("after the production deployment", panel(acme, panelTarget),
			[]string{"prod-eu", `data-environment-type="production"`}, nil)
		expect("globex after acme's deployment", panel(globex, panelTarget), []string{empty}, []string{"prod-eu"})

		// An empty panel is cached once; whether its viewer administers the
		// site is asked each time.
		const emptyTarget = "/jira/panel?issueKey=OPS-99&issueId=10099&projectKey=OPS"
		for i, admin := range []bool{true, false, true, false} {
			h.jira.mu.Lock()
			h.jira.admins[acme.clientKey+"/"+testAccount] = admin
			h.jira.mu.Unlock()
			body := panel(acme, emptyTarget)
			if admin {
				expect("admin's empty panel", body, []string{"Connect a source"}, nil)
			} else {
				expect("viewer's empty panel", body, []string{"Ask a Jira administrator"}, []string{"Connect a source", "/plugins/servlet/ac/"})
			}
			if t.Failed() {
				t.Fatalf("load %d (admin %v) failed", i, admin)
			}
		}
	})
}

func TestIssueViewCacheGet(t *testing.T) {
	c, err := NewIssueViewCache(8)
	if err != nil {
		t.Fatal(err)
	}
	st := dbtest.SQLiteStore(t)
	v1, _ := st.DataVersion(1, "OPS-7")
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	k := issueViewKey{tenantID: 1, issueKey: "OPS-7", page: "panel"}
	c.put(k, &issueViewEntry{version: v1, siteURL: "https://acme.atlassian.net", renderedAt: at, html: []byte("<p>cached</p>")})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tn, err := st.UpsertTenant(t.Context(), tenant.Install{AppKey: jiraKey, ClientKey: "acme", BaseURL: "https://acme.atlassian.net",
		ProductType: "jira", SharedSecret: []byte("0123456789abcdef0123456789abcdef")})
	must(err)
	must(st.AddIssueLink(t.Context(), tn, "OPS-7", store.EntityCommit, "c1"))
	v2, _ := st.DataVersion(tn.ID, "OPS-7")
	if tn.ID != 1 {
		t.Fatalf("tenant id %d, want 1 on an empty database", tn.ID)
	}
	tests := []struct {
		name    string
		key     issueViewKey
		version bool // the version the entry was read at
		siteURL string
		now     time.Time
		hit     bool
	}{
		{"fresh", k, true, "https://acme.atlassian.net", at.Add(IssueViewCacheTTL - time.Millisecond), true},
		{"at the TTL", k, true, "https://acme.atlassian.net", at.Add(IssueViewCacheTTL), false},
		{"clock went back", k, true, "https://acme.atlassian.net", at.Add(-time.Second), false},
		{"data changed", k, false, "https://acme.atlassian.net", at, false},
		{"site URL changed", k, true, "https://acme-new.atlassian.net", at, false},
		{"other tenant", issueViewKey{tenantID: 2, issueKey: "OPS-7", page: "panel"}, true, "https://acme.atlassian.net", at, false},
		{"other issue", issueViewKey{tenantID: 1, issueKey: "OPS-8", page: "panel"}, true, "https://acme.atlassian.net", at, false},
		{"other page", issueViewKey{tenantID: 1, issueKey: "OPS-7", page: "summary"}, true, "https://acme.atlassian.net", at, false},
	}
	for _, tt := range tests {
		v := v2
		if tt.version {
			v = v1
		}
		if _, hit := c.get(tt.key, v, tt.siteURL, tt.now); hit != tt.hit {
			t.Errorf("%s: hit = %v, want %v", tt.name, hit, tt.hit)
		}
	}
	var off *IssueViewCache
	off.put(k, &issueViewEntry{version: v1, renderedAt: at})
	if _, hit := off.get(k, v1, "", at); hit {
		t.Error("a nil cache answered")
	}
}

// TestIssueViewCacheViewersApart loads one empty panel from many goroutines
// at once, as a site admin and as another user of the same site, while
// deliveries change the site's data: the admin's variant must never reach
// the other user, and the other user's never the admin. Run with -race
// (which needs cgo, so CI does not), it also checks that a cached entry is
// never written while it is read.
func TestIssueViewCacheViewersApart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st)
		h.install(acme, jiraKey)
		const other = "0123456789abcdef01234567"
		h.jira.mu.Lock()
		h.jira.admins[acme.clientKey+"/"+testAccount] = true
		h.jira.mu.Unlock()
		target := "/jira/panel?issueKey=OPS-99&issueId=10099&projectKey=OPS&" + iframeQuery("")
		const loads = 40
		urls := map[bool][]string{}
		for _, admin := range []bool{true, false} {
			for range loads {
				c := h.productClaims(acme, http.MethodGet, target)
				if !admin {
					c["sub"] = other
				}
				urls[admin] = append(urls[admin], testBase+target+"&jwt="+signHS256(t, c, acme.secret))
			}
		}
		gen := h.addSource(acme, ingest.KindGeneric)
		errs := make(chan string, 4*loads)
		var wg sync.WaitGroup
		for _, admin := range []bool{true, false} {
			for _, u := range urls[admin] {
				wg.Go(func() {
					req := httptest.NewRequest(http.MethodGet, u, nil)
					rec := httptest.NewRecorder()
					h.server.Handler().ServeHTTP(rec, req)
					body := rec.Body.String()
					switch {
					case rec.Code != http.StatusOK:
						errs <- fmt.Sprintf("status %d", rec.Code)
					case admin && !strings.Contains(body, "Connect a source"):
						errs <- "the admin got another viewer's empty panel"
					case !admin && strings.Contains(body, "Connect a source"):
						errs <- "a viewer got the admin's empty panel"
					}
				})
			}
		}
		// Deliveries for another issue keep changing the site's version, so
		// loads both hit and miss.
		for i := range 5 {
			body := []byte(strings.NewReplacer(`"OPS-7"`, `"OPS-8"`,
				`"deploymentSequenceNumber": 12`, fmt.Sprintf(`"deploymentSequenceNumber": %d`, 100+i)).Replace(deploymentOPS7))
			if rec := h.sendHook(gen.token, ingest.GenericDeployment, signed(gen.kind, gen.secret, body), body); rec.Code != http.StatusOK {
				t.Fatalf("deployment: %d %s", rec.Code, rec.Body)
			}
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})
}
