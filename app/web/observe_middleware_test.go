package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/observe"
	"github.com/keyline/keyline/app/store"
)

// withObserver rebuilds h's server with m as its Observer.
func (h *harness) withObserver(m *observe.Metrics) {
	h.t.Helper()
	deps := h.server.deps
	deps.Observer = m
	srv, err := New(deps)
	if err != nil {
		h.t.Fatal(err)
	}
	h.server = srv
}

func TestObserveMetricsRecordRoutesNotPaths(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st)
		m := observe.New()
		h.withObserver(m)
		k := h.addSource(acme, ingest.KindGitHub)

		if rec := h.pushTo(k, "delivery-1"); rec.Code != http.StatusOK {
			t.Fatalf("push: %d %s", rec.Code, rec.Body)
		}
		body := fixture(t, "github/push.json")
		bad := withHeader(signed(k.kind, "not-the-secret", body), "X-GitHub-Event", "push", "X-GitHub-Delivery", "delivery-2")
		if rec := h.sendHook(k.token, "", bad, body); rec.Code != http.StatusUnauthorized {
			t.Fatalf("badly signed push: %d", rec.Code)
		}
		if rec := h.sendHook("no-such-token", "", nil, body); rec.Code != http.StatusNotFound {
			t.Fatalf("unknown token: %d", rec.Code)
		}
		if rec := h.do(http.MethodGet, "/jira/panel?issueKey=OPS-7&jwt=not.a-jwt", "", nil); rec.Code != http.StatusUnauthorized {
			t.Fatalf("panel with a bad token: %d", rec.Code)
		}

		exposed := scrape(t, m)
		for _, want := range []string{
			`keyline_http_request_duration_seconds_count{method="POST",route="/ingest/:token",status="2xx"} 1`,
			`keyline_http_request_duration_seconds_count{method="POST",route="/ingest/:token",status="4xx"} 2`,
			`keyline_http_request_duration_seconds_count{method="GET",route="/jira/panel",status="4xx"} 1`,
			`keyline_ingest_deliveries_total{kind="github",outcome="accepted"} 1`,
			`keyline_ingest_deliveries_total{kind="github",outcome="bad_signature"} 1`,
			`keyline_ingest_deliveries_total{kind="unknown",outcome="unknown_source"} 1`,
			`keyline_auth_failures_total{reason="bad_signature",surface="ingest"} 1`,
			`keyline_auth_failures_total{reason="malformed token",surface="connect"} 1`,
		} {
			if !strings.Contains(exposed, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		// The webhook URL's token is its credential, the iframe's jwt too.
		for _, secret := range []string{k.token, "no-such-token", "not.a-jwt"} {
			if strings.Contains(exposed, secret) {
				t.Errorf("metrics expose %q", secret)
			}
		}
		// Every series is one of the router's patterns: the install the test
		// made, and the two routes it called.
		routes := map[string]bool{}
		for _, line := range strings.Split(exposed, "\n") {
			if _, rest, ok := strings.Cut(line, `route="`); ok {
				route, _, _ := strings.Cut(rest, `"`)
				routes[route] = true
			}
		}
		for route := range routes {
			switch route {
			case "/ingest/:token", "/jira/panel", "/jira/installed":
			default:
				t.Errorf("unexpected route label %q", route)
			}
		}
	})
}

func TestObserveNilObserverAddsNothing(t *testing.T) {
	h := newHarness(t, dbtest.SQLiteStore(t))
	if h.server.deps.Observer != nil {
		t.Fatal("harness has an observer")
	}
	if rec := h.do(http.MethodGet, "/healthz", "", nil); rec.Code != http.StatusOK {
		t.Fatalf("healthz without an observer: %d", rec.Code)
	}
}

// scrape reads m's exposition the way Prometheus does.
func scrape(t *testing.T, m *observe.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	b, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every route the server registers falls in a class of its own kind; a new
// route that fits none shows up here rather than as "other" in production.
func TestRouteClassCoversEveryRoute(t *testing.T) {
	h := newHarness(t, dbtest.SQLiteStore(t))
	want := map[string]string{
		"/ingest/:token":                         "ingest",
		"/ingest/:token/:entity":                 "ingest",
		"/healthz":                               "health",
		"/jira/panel":                            "page",
		"/confluence/macro-static":               "page",
		"/confluence/configure":                  "page",
		"/jira/installed":                        "lifecycle",
		"/confluence/disabled":                   "lifecycle",
		"/jira/webhooks/issue-updated":           "jira_webhook",
		"/jira/api/sources/:sourceID/rotate":     "api",
		"/jira/api/projects/:projectKey/metrics": "api",
		"/jira/atlassian-connect.json":           "static",
		"/static/*":                              "static",
		"":                                       "other", // no route matched
	}
	for route, class := range want {
		if got := routeClass(route); got != class {
			t.Errorf("routeClass(%q) = %q, want %q", route, got, class)
		}
	}
	for _, r := range h.server.echo.Routes() {
		if got := routeClass(r.Path); got == "other" {
			t.Errorf("route %s %s has no class", r.Method, r.Path)
		}
	}
}

// While a request is handled it counts in its class's in-flight gauge, and
// once answered it no longer does, whether it succeeded or failed.
func TestObserveInFlight(t *testing.T) {
	m := observe.New()
	e := echo.New()
	e.Use(observeRequests(m))
	var during string
	e.POST("/ingest/:token", func(c echo.Context) error {
		during = scrape(t, m)
		return c.NoContent(http.StatusOK)
	})
	e.GET("/jira/panel", func(c echo.Context) error {
		return echo.NewHTTPError(http.StatusUnauthorized, "no token")
	})
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/ingest/some-token", nil),
		httptest.NewRequest(http.MethodGet, "/jira/panel", nil),
	} {
		e.ServeHTTP(httptest.NewRecorder(), req)
	}
	if !strings.Contains(during, `keyline_http_requests_in_flight{class="ingest"} 1`) {
		t.Errorf("while the delivery was handled:\n%s", grepLines(during, "in_flight"))
	}
	after := scrape(t, m)
	for _, want := range []string{
		`keyline_http_requests_in_flight{class="ingest"} 0`,
		`keyline_http_requests_in_flight{class="page"} 0`,
	} {
		if !strings.Contains(after, want) {
			t.Errorf("after the answers, metrics lack %s:\n%s", want, grepLines(after, "in_flight"))
		}
	}
}

func TestObserveIssueViewCache(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st)
		h.install(acme, jiraKey)
		m := observe.New()
		h.withObserver(m)
		load := func() {
			t.Helper()
			if rec := h.iframeGET(acme, panelTarget+"&"+iframeQuery("")); rec.Code != http.StatusOK {
				t.Fatalf("panel: %d %s", rec.Code, rec.Body)
			}
		}
		load() // read and rendered
		load() // from the cache
		h.deliverOPS7()
		load() // the delivery made the site's cached pages stale
		load()
		// An event about another issue leaves OPS-7's page cached; one
		// about OPS-7 does not.
		for _, key := range []string{"OPS-8", "OPS-7"} {
			if rec := h.issueWebhook(acme, "/jira/webhooks/issue-updated", "jira:issue_updated", key, "100"+key[4:],
				"Edited", "In Progress", "indeterminate"); rec.Code != http.StatusNoContent {
				t.Fatalf("issue webhook: %d %s", rec.Code, rec.Body)
			}
			load()
		}
		exposed := scrape(t, m)
		for _, want := range []string{
			`keyline_issue_view_cache_requests_total{result="hit"} 3`,
			`keyline_issue_view_cache_requests_total{result="miss"} 3`,
		} {
			if !strings.Contains(exposed, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if strings.Contains(exposed, `result="bypass"`) {
			t.Error("a load bypassed the cache")
		}
	})
}
