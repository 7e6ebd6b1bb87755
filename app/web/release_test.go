package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const viewer = "5be24ad8b1653240376955d2"

func (h *harness) contextGET(s site, target, accept string) *httptest.ResponseRecorder {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Authorization", "JWT "+signHS256(h.t, h.contextClaims(s), s.secret))
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.server.Handler().ServeHTTP(rec, req)
	return rec
}

// TestReleaseMetricsScenarios covers the project page, its API and the
// macro's metrics and release notes views on the data of seedSites: acme
// and globex hold the same keys, so anything of globex's in acme's answers
// is a leak.
func TestReleaseMetricsScenarios(t *testing.T) {
	runScenarios(t, []scenario{
		{
			name:  "project page shows the project's figures, trends and deployments",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, "/jira/project?projectKey=WEB&projectId=10001&"+iframeQuery(""))
			},
			wantStatus: http.StatusOK,
			wantContent: []string{`data-testid="figure-deployment-frequency"`, `data-testid="figure-lead-time"`,
				`data-testid="figure-change-failure-rate"`, `data-testid="trend-deployment-frequency"`,
				`data-testid="timeline"`, "Acme%20web", "DORA 2023 benchmark", `data-testid="metrics-filter"`},
			notContent: []string{"Globex", "Acme%20deploy"},
		},
		{
			name:  "project page with a bad time zone and dates is a 400 naming both",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, "/jira/project?projectKey=WEB&projectId=10001&tz=Mars%2FOlympus&from=yesterday&"+iframeQuery(""))
			},
			wantStatus:  http.StatusBadRequest,
			wantContent: []string{"time zone", "from must be a date"},
		},
		{
			name:  "metrics API answers JSON tables of the project only",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.contextGET(acme, "/jira/api/projects/OPS/metrics?days=30&tz=Europe%2FBerlin", "application/json")
			},
			wantStatus: http.StatusOK,
			wantContent: []string{`"projectKey":"OPS"`, `"deploymentCount":1,`, `"figures":[`, `"deployments":[`, `"state":"failed"`,
				"Acme%20deploy", `"timeZone":"Europe/Berlin"`},
			notContent: []string{"Globex", "Acme%20web"},
		},
		{
			name:  "metrics API re-renders the section for the filter script",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.contextGET(acme, "/jira/api/projects/WEB/metrics?service=storefront", "text/html")
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="metrics"`, "service storefront"},
			notContent:  []string{"<html", "Globex"},
		},
		{
			name: "metrics API refuses a project the user may not browse",
			setup: func(h *harness) {
				seedSites(h)
				h.jira.denyProjects(acme.clientKey, viewer, "OPS")
			},
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.contextGET(acme, "/jira/api/projects/OPS/metrics", "application/json")
			},
			wantStatus: http.StatusForbidden,
			notContent: []string{"Acme", "figures"},
		},
		{
			name:  "metrics API refuses a page token",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				target := "/jira/api/projects/OPS/metrics"
				return h.do(http.MethodGet, target, "JWT "+signHS256(h.t, h.productClaims(acme, http.MethodGet, "/jira/project?projectKey=OPS"), acme.secret), nil)
			},
			wantStatus: http.StatusUnauthorized,
			notContent: []string{"Acme"},
		},
		{
			name:  "deployments table as CSV",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.contextGET(acme, "/jira/api/projects/OPS/metrics/deployments?format=csv", "")
			},
			wantStatus:  http.StatusOK,
			wantHeaders: map[string]string{"Content-Type": "text/csv", "Content-Disposition": "keyline-OPS-deployments-"},
			wantContent: []string{"id,service,environment,environment_type,pipeline,sequence,state", ",failed,"},
			notContent:  []string{"Globex"},
		},
		{
			name:  "an unknown table is a 404 naming the tables",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.contextGET(acme, "/jira/api/projects/OPS/metrics/secrets?format=csv", "")
			},
			wantStatus:  http.StatusNotFound,
			wantContent: []string{"figures, trend, deployments, changes, incidents"},
		},
		{
			name:  "release notes API lists the issues shipped to production",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.contextGET(acme, "/jira/api/projects/WEB/release-notes", "")
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`"issue_key":"WEB-1"`, `"more":false`},
			notContent:  []string{"OPS-7", "Globex"},
		},
		{
			name:  "macro metrics view shows the Jira site's data only",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS,WEB&view=metrics&days=30&year=2019&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="metrics"`, "Acme%20web", "Acme%20deploy", "DORA 2019 benchmark"},
			notContent:  []string{"Globex", `data-testid="metrics-filter"`},
		},
		{
			name:  "macro release notes of a fix version",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS,WEB&view=release-notes&fixVersion=2.0&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="release-notes"`, "Fix version 2.0", "OPS-7", "Acme login fix", "WEB-1"},
			notContent:  []string{"Globex", "OPS-9"},
		},
		{
			name:  "macro release notes of a period",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS,WEB&view=release-notes&days=7&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="release-notes"`, "WEB-1"},
			notContent:  []string{"OPS-7", "Globex"},
		},
		{
			name:  "macro release notes between deployments need successful ones",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS&view=release-notes&environment=Production&service=shop&fromDeployment=1&toDeployment=2&"+iframeQuery(""))
			},
			wantStatus:  http.StatusBadRequest,
			wantContent: []string{"No successful deployment #1 to Production"},
		},
		{
			name:  "macro release notes need both deployment numbers",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS&view=release-notes&environment=Production&fromDeployment=3&"+iframeQuery(""))
			},
			wantStatus:  http.StatusBadRequest,
			wantContent: []string{"Name both fromDeployment and toDeployment"},
		},
	})
}

func TestCSVCellsCannotBecomeFormulas(t *testing.T) {
	tb := table{Columns: []string{"title", "n"}, Rows: [][]any{
		{"=HYPERLINK(\"https://evil.example\")", 3},
		{"+1", -2},
		{"@SUM(A1)", nil},
		{"plain", int64(7)},
	}}
	got := tb.records()
	want := [][]string{{"title", "n"}, {"'=HYPERLINK(\"https://evil.example\")", "3"}, {"'+1", "-2"}, {"'@SUM(A1)", ""}, {"plain", "7"}}
	for i := range want {
		if strings.Join(got[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("record %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestReleaseParams(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		query   string
		ok      bool
		from    string
		to      string
		tz      string
		windowH float64
	}{
		{"", true, "2026-08-28", "2026-11-25", "UTC", 90 * 24},
		{"days=7&tz=Europe/Berlin", true, "2026-11-19", "2026-11-25", "Europe/Berlin", 7 * 24},
		{"from=2026-10-20&to=2026-10-26&tz=Europe/Berlin", true, "2026-10-20", "2026-10-26", "Europe/Berlin", 7*24 + 1}, // DST ends on the 25th
		// Chile skips the midnight of 2025-09-07: that day starts at 01:00
		// and has 23 hours.
		{"from=2025-09-07&to=2025-09-07&tz=America/Santiago", true, "2025-09-07", "2025-09-07", "America/Santiago", 23},
		{"from=2025-09-06&to=2025-09-06&tz=America/Santiago", true, "2025-09-06", "2025-09-06", "America/Santiago", 24},
		{"from=2026-11-02&to=2026-11-01", false, "", "", "", 0},
		{"days=0", false, "", "", "", 0},
		{"days=9999", false, "", "", "", 0},
		{"tz=Local", false, "", "", "", 0},
		{"tz=../../etc/passwd", false, "", "", "", 0},
		{"year=2020", false, "", "", "", 0},
		{"types=production,nonsense", false, "", "", "", 0},
		{"service=a%0Ab", false, "", "", "", 0},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.query)
		p, err := parseReleaseParams(q, now)
		if (err == nil) != c.ok {
			t.Errorf("%q: err = %v, want ok %v", c.query, err, c.ok)
			continue
		}
		if !c.ok {
			continue
		}
		w := p.filter.Window
		if p.from != c.from || p.to != c.to || p.timeZone != c.tz || w.To.Sub(w.From).Hours() != c.windowH {
			t.Errorf("%q: from %s to %s tz %s window %v h", c.query, p.from, p.to, p.timeZone, w.To.Sub(w.From).Hours())
		}
	}
}
