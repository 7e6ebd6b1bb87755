package web

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/ingest"
)

// deliverGeneric sends one generic-API entity ("builds", "deployments") to a
// generic source and fails the test unless it is stored.
func (h *harness) deliverGeneric(k hook, entity string, body map[string]any) {
	h.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		h.t.Fatal(err)
	}
	if rec := h.sendHook(k.token, entity, signed(k.kind, k.secret, b), b); rec.Code != http.StatusOK {
		h.t.Fatalf("deliver %s: %d %s", entity, rec.Code, rec.Body)
	}
}

func macroDeployment(pipeline string, seq int, env, envType, state, service string, at time.Time, keys ...string) map[string]any {
	return map[string]any{
		"pipeline":                 map[string]any{"id": strings.ToLower(pipeline), "displayName": pipeline},
		"environment":              map[string]any{"id": strings.ToLower(env), "displayName": env, "type": envType},
		"deploymentSequenceNumber": seq, "updateSequenceNumber": 1, "state": state, "service": service,
		"url":         "https://ci.example/" + url.PathEscape(pipeline) + "/" + strconv.Itoa(seq),
		"lastUpdated": at.UTC().Format(time.RFC3339), "issueKeys": keys,
	}
}

func macroBuild(pipeline string, n int, state string, at time.Time, keys ...string) map[string]any {
	return map[string]any{"pipelineId": strings.ToLower(pipeline), "displayName": pipeline, "buildNumber": n,
		"updateSequenceNumber": 1, "state": state, "lastUpdated": at.UTC().Format(time.RFC3339), "issueKeys": keys}
}

// seedSites gives acme and globex the Jira app, Confluence for both, and
// DevOps data under the same project and issue keys: acme's says "Acme",
// globex's "Globex". Acme's OPS-7 went to staging and failed in
// production; WEB-1 reached production; OPS-8 has nothing.
func seedSites(h *harness) {
	h.t.Helper()
	h.install(acme, confKey)
	h.install(globex, confKey)
	now := h.now
	for _, s := range []struct {
		site site
		who  string
	}{{acme, "Acme"}, {globex, "Globex"}} {
		k := h.addSource(s.site, ingest.KindGeneric)
		h.issueWebhook(s.site, "/jira/webhooks/issue-updated", "jira:issue_updated", "OPS-7", "10007", s.who+" login fix", s.who+" Review", "indeterminate")
		h.deliverGeneric(k, "builds", macroBuild(s.who+" CI", 1, "failed", now.Add(-3*time.Hour), "OPS-7"))
		h.deliverGeneric(k, "builds", macroBuild(s.who+" CI", 2, "successful", now.Add(-2*time.Hour), "OPS-7"))
		h.deliverGeneric(k, "deployments", macroDeployment(s.who+" deploy", 1, "Staging", "staging", "successful", "shop", now.Add(-90*time.Minute), "OPS-7"))
		h.deliverGeneric(k, "deployments", macroDeployment(s.who+" deploy", 2, "Production", "production", "failed", "shop", now.Add(-time.Hour), "OPS-7"))
		h.deliverGeneric(k, "deployments", macroDeployment(s.who+" web", 1, "Production", "production", "successful", "storefront", now.Add(-30*time.Minute), "WEB-1"))
	}
	h.jira.addFixVersion(acme.clientKey, "2.0", "OPS-7", "OPS-8", "WEB-1")
	h.jira.addFixVersion(globex.clientKey, "2.0", "OPS-9")
}

const macroPath = "/confluence/macro?macroId=m1&pageId=1&spaceKey=ENG&outputType=display"

// staticGET fetches the static macro the way Confluence's server does for
// an export: the token in the Authorization header.
func (h *harness) staticGET(s site, target string) *httptest.ResponseRecorder {
	h.t.Helper()
	return h.do(http.MethodGet, target, "JWT "+signHS256(h.t, h.productClaims(s, http.MethodGet, target), s.secret), nil)
}

func TestMacro(t *testing.T) {
	runScenarios(t, []scenario{
		{
			name:  "status view shows the site's own issues, builds and environments",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=ops,%20WEB&view=status&issues=OPS-7,ops-8,WEB-1&"+iframeQuery(""))
			},
			wantStatus: http.StatusOK,
			wantContent: []string{
				`data-testid="macro-status"`, `data-testid="project">OPS<`, `data-testid="project">WEB<`,
				"Acme login fix", "Acme Review", `data-issue-key="OPS-8"`, "Jira has not told Keyline about this issue yet",
				`title="Acme CI #2"`, `data-environment-type="staging"`, `data-environment-type="production"`,
				"1 of 3 issues deployed to production", `href="https://acme.atlassian.net/browse/OPS-7"`,
			},
			notContent: []string{"Globex", "globex", `data-testid="jira-missing"`},
			check: func(t *testing.T, h *harness) {
				// Globex's macro, same parameters, shows Globex's data only.
				body := h.iframeGET(globex, macroPath+"&projects=OPS,WEB&view=status&issues=OPS-7&"+iframeQuery("")).Body.String()
				if !strings.Contains(body, "Globex login fix") || strings.Contains(body, "Acme") {
					t.Errorf("globex's macro: %s", body)
				}
			},
		},
		{
			name:  "status view measures readiness at the macro's environment",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS&view=status&issues=OPS-7&environment=staging&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"1 of 1 issue deployed to staging", `data-environment-type="staging"`},
			notContent:  []string{`data-environment-type="production"`},
		},
		{
			name:  "status view takes the issues of a fix version from the site's Jira",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS&view=status&fixVersion=2.0&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="fix-version">2.0<`, `data-issue-key="OPS-7"`, `data-issue-key="OPS-8"`, "0 of 2 issues"},
			notContent:  []string{`data-issue-key="WEB-1"`, `data-issue-key="OPS-9"`},
		},
		{
			name:  "a fix version Jira does not know is the author's mistake",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS&view=status&fixVersion=9.9&"+iframeQuery(""))
			},
			wantStatus:  http.StatusBadRequest,
			wantContent: []string{"Jira has no fix version &#34;9.9&#34; in OPS"},
		},
		{
			name:  "Jira unreachable for the fix version",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS&view=status&fixVersion=down&"+iframeQuery(""))
			},
			wantStatus: http.StatusBadGateway,
			notContent: []string{errJiraDown.Error(), `data-testid="macro-status"`},
		},
		{
			name:  "deployments view lists the site's recent deployments per environment",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS,WEB&service=&environment=&view=deployments&"+iframeQuery(""))
			},
			wantStatus: http.StatusOK,
			wantContent: []string{
				`data-testid="macro-deployments"`, "Recent deployments", "Acme deploy #2", "Acme deploy #1", "Acme web #1",
				`data-testid="deployment-service">shop<`, `data-testid="deployment-service">storefront<`,
				`href="https://acme.atlassian.net/browse/WEB-1"`,
			},
			notContent: []string{"Globex", "globex"},
		},
		{
			name:  "deployments view filtered by service and environment",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS,WEB&service=Shop&environment=production&view=deployments&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"Acme deploy #2", `data-testid="service">Shop<`},
			notContent:  []string{"Acme deploy #1", "Acme web", "Globex"},
		},
		{
			name:  "deployments view of a project without deployments",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=PAY&view=deployments&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="empty"`, "No deployments of issues in PAY have been recorded yet."},
			notContent:  []string{"Globex", "Acme deploy"},
		},
		{
			name:  "site without the Jira app says so, whoever else has it",
			setup: func(h *harness) { h.install(acme, confKey); h.install(globex, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS&view=status&issues=OPS-7&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="jira-missing"`, "acme.atlassian.net", "Apps → Manage apps"},
			notContent:  []string{"globex", `data-testid="macro-status"`},
		},
		{
			name:  "hostile parameters stay text in the reason",
			setup: func(h *harness) { h.install(acme, confKey); h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&view=status&"+iframeQuery(""))
			},
			wantStatus:  http.StatusBadRequest,
			wantContent: []string{"is not a Jira project key", "&lt;IMG SRC=X ONERROR=ALERT(1)&gt;"},
			notContent:  []string{"<IMG", "<img src=x"},
		},
		{
			name:  "Jira token on the Confluence macro",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS&issues=OPS-7&"+iframeQuery(""))
			},
			wantStatus: http.StatusUnauthorized,
		},
		{
			name:  "static render for exports: storage-format XHTML of the site's data",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.staticGET(acme, "/confluence/macro-static?macroId=m1&pageId=1&spaceKey=ENG&outputType=pdf&projects=OPS,WEB&view=status&issues=OPS-7,WEB-1")
			},
			wantStatus: http.StatusOK,
			wantContent: []string{
				"<table>", "<th>Issue</th>", `<a href="https://acme.atlassian.net/browse/OPS-7">OPS-7</a>`, "Acme login fix",
				"Successful (Acme CI #2)", "Staging: Successful, Production: Failed", "1 of 2 issues deployed to production",
			},
			notContent:  []string{"<script", "<iframe", "<style", "class=", "<html", "Globex", "globex"},
			wantHeaders: map[string]string{"Content-Type": "text/html", "Cache-Control": "no-store"},
			check:       wellFormed(acme, "/confluence/macro-static?projects=OPS,WEB&view=status&issues=OPS-7,WEB-1"),
		},
		{
			name:  "static render of the deployments view",
			setup: seedSites,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.staticGET(acme, "/confluence/macro-static?projects=OPS,WEB&view=deployments")
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"<td>Production</td>", "Acme deploy #2", "<td>shop</td>", "<td>WEB-1</td>", "UTC"},
			notContent:  []string{"<script", "<iframe", "Globex"},
			check:       wellFormed(acme, "/confluence/macro-static?projects=OPS,WEB&view=deployments"),
		},
		{
			name:  "static render on a site without the Jira app",
			setup: func(h *harness) { h.install(acme, confKey); h.install(globex, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.staticGET(acme, "/confluence/macro-static?projects=OPS&view=deployments")
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"Keyline for Jira is not installed on acme.atlassian.net"},
			notContent:  []string{"<script", "<table>"},
		},
		{
			name:  "static render needs a Confluence token",
			setup: func(h *harness) { h.install(acme, confKey); h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.do(http.MethodGet, "/confluence/macro-static?projects=OPS", "", nil)
			},
			wantStatus: http.StatusUnauthorized,
		},
	})
}

// seedPay adds to seedSites acme's project PAY: issue PAY-3 with a summary
// and a deployment of it, which only readers who may browse PAY may see.
func seedPay(h *harness) {
	h.t.Helper()
	seedSites(h)
	k := h.addSource(acme, ingest.KindGeneric)
	h.issueWebhook(acme, "/jira/webhooks/issue-updated", "jira:issue_updated", "PAY-3", "10103", "Acme secret payout", "Acme Review", "indeterminate")
	h.deliverGeneric(k, "deployments", macroDeployment("Acme payout deploy", 1, "Production", "production", "successful", "payments", h.now.Add(-20*time.Minute), "PAY-3"))
	h.jira.addFixVersion(acme.clientKey, "3.0", "OPS-7", "PAY-3")
}

// seedPayDenied is seedPay with PAY closed to the test user in acme's Jira.
func seedPayDenied(h *harness) {
	h.t.Helper()
	seedPay(h)
	h.jira.denyProjects(acme.clientKey, testAccount, "PAY")
}

// anonymousGET loads target as a reader who is not signed in: the token
// carries no user. static fetches it as an export does.
func (h *harness) anonymousGET(s site, target string, static bool) *httptest.ResponseRecorder {
	h.t.Helper()
	claims := h.productClaims(s, http.MethodGet, target)
	delete(claims, "sub")
	tok := signHS256(h.t, claims, s.secret)
	if static {
		return h.do(http.MethodGet, target, "JWT "+tok, nil)
	}
	return h.do(http.MethodGet, target+"&jwt="+tok, "", nil)
}

// payDenied is the message for a reader who may not browse PAY. The page
// escapes the apostrophe of "don't", so the message is matched after it.
const payDenied = "have access to PAY in Jira, so Keyline shows nothing from it."

// TestMacroPermissions checks that the macro shows a reader only the data
// of the Jira projects that reader may browse in the site's Jira.
func TestMacroPermissions(t *testing.T) {
	noChecks := func(t *testing.T, h *harness) {
		if h.jira.projectChecks != 0 {
			t.Errorf("Jira was asked %d times about an anonymous reader", h.jira.projectChecks)
		}
	}
	runScenarios(t, []scenario{
		{
			name:  "reader who may browse PAY sees its issues",
			setup: seedPay,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=PAY&view=status&issues=PAY-3&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="macro-status"`, "Acme secret payout", `data-issue-key="PAY-3"`},
			notContent:  []string{`data-testid="no-access"`, "in Jira, so Keyline shows nothing"},
		},
		{
			name:  "reader who may browse PAY sees its deployments",
			setup: seedPay,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=PAY&view=deployments&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"Acme payout deploy #1", `data-testid="deployment-service">payments<`},
			notContent:  []string{`data-testid="no-access"`},
		},
		{
			name:  "reader without browse on PAY sees none of its issues",
			setup: seedPayDenied,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=PAY&view=status&issues=PAY-3&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="no-access"`, payDenied},
			notContent:  []string{"Acme secret payout", "Acme Review", `data-issue-key="PAY-3"`, `data-testid="macro-status"`, "payout deploy"},
		},
		{
			name:  "reader without browse on PAY sees none of its deployments",
			setup: seedPayDenied,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=PAY&view=deployments&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{payDenied},
			notContent:  []string{"Acme payout deploy", "payments", `data-testid="macro-deployments"`, "No deployments of issues"},
		},
		{
			name:  "mixed projects: the status view shows the allowed project only",
			setup: seedPayDenied,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS,PAY&view=status&issues=OPS-7,PAY-3&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{payDenied, `data-issue-key="OPS-7"`, "Acme login fix", "0 of 1 issue deployed to production"},
			notContent:  []string{"Acme secret payout", `data-issue-key="PAY-3"`, "payout deploy"},
		},
		{
			name:  "mixed projects: a fix version shows the allowed project's issues only",
			setup: seedPayDenied,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS,PAY&view=status&fixVersion=3.0&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{payDenied, `data-issue-key="OPS-7"`, "Acme login fix"},
			notContent:  []string{"Acme secret payout", `data-issue-key="PAY-3"`},
		},
		{
			name:  "mixed projects: the deployments view shows the allowed project only",
			setup: seedPayDenied,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS,PAY&view=deployments&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{payDenied, "Acme deploy #2", `data-testid="macro-deployments"`},
			notContent:  []string{"Acme payout deploy", "payments", "PAY-3"},
		},
		{
			name: "several denied projects are named together",
			setup: func(h *harness) {
				seedPay(h)
				h.jira.denyProjects(acme.clientKey, testAccount, "PAY", "WEB")
			},
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=PAY,WEB&view=deployments&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"have access to PAY and WEB in Jira, so Keyline shows nothing from them."},
			notContent:  []string{"Acme payout deploy", "Acme web", `data-testid="macro-deployments"`},
		},
		{
			name:  "another account's denial does not apply to this reader",
			setup: func(h *harness) { seedPay(h); h.jira.denyProjects(acme.clientKey, "someone-else", "PAY") },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=PAY&view=deployments&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"Acme payout deploy #1"},
		},
		{
			name:  "anonymous reader is asked to sign in and sees no data",
			setup: seedPay,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.anonymousGET(acme, macroPath+"&projects=OPS,PAY&view=status&issues=OPS-7,PAY-3&"+iframeQuery(""), false)
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="sign-in"`, "Sign in to see DevOps data from Jira"},
			notContent:  []string{"Acme login fix", "Acme secret payout", `data-testid="macro-status"`, "Acme CI"},
			check:       noChecks,
		},
		{
			name:  "Jira unreachable for the permission check shows no data",
			setup: func(h *harness) { seedPay(h); h.jira.failProjectChecks(acme.clientKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, macroPath+"&projects=OPS&view=deployments&"+iframeQuery(""))
			},
			wantStatus:  http.StatusServiceUnavailable,
			wantContent: []string{`data-testid="jira-unavailable"`, "Jira could not be asked which projects you may see"},
			notContent:  []string{"Acme deploy", `data-testid="macro-deployments"`, errJiraDown.Error()},
		},
		{
			name:  "static render shows only the allowed project",
			setup: seedPayDenied,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.staticGET(acme, "/confluence/macro-static?projects=OPS,PAY&view=deployments")
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{payDenied, "Acme deploy #2", "<table>"},
			notContent:  []string{"Acme payout deploy", "payments", "PAY-3"},
			check:       wellFormed(acme, "/confluence/macro-static?projects=OPS,PAY&view=deployments"),
		},
		{
			name:  "static render of denied issues shows only the message",
			setup: seedPayDenied,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.staticGET(acme, "/confluence/macro-static?projects=PAY&view=status&issues=PAY-3")
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{payDenied},
			notContent:  []string{"Acme secret payout", "<table>", "PAY-3<"},
			check:       wellFormed(acme, "/confluence/macro-static?projects=PAY&view=status&issues=PAY-3"),
		},
		{
			name:  "static render for an anonymous reader asks to sign in",
			setup: seedPay,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.anonymousGET(acme, "/confluence/macro-static?projects=OPS,PAY&view=deployments", true)
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"Sign in to see DevOps data from Jira"},
			notContent:  []string{"<table>", "Acme deploy", "Acme payout deploy"},
			check:       noChecks,
		},
		{
			name:  "static render with Jira unreachable shows no data",
			setup: func(h *harness) { seedPay(h); h.jira.failProjectChecks(acme.clientKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.staticGET(acme, "/confluence/macro-static?projects=OPS&view=status&issues=OPS-7")
			},
			wantStatus:  http.StatusServiceUnavailable,
			wantContent: []string{"Jira could not be asked which projects you may see"},
			notContent:  []string{"<table>", "Acme login fix"},
		},
	})
}

// wellFormed checks that the static render of target for s parses as XML,
// as Confluence's storage format must.
func wellFormed(s site, target string) func(t *testing.T, h *harness) {
	return func(t *testing.T, h *harness) {
		rec := h.staticGET(s, target)
		if rec.Code != http.StatusOK {
			t.Fatalf("static render: %d %s", rec.Code, rec.Body)
		}
		d := xml.NewDecoder(strings.NewReader(rec.Body.String()))
		d.Strict = true
		for {
			_, err := d.Token()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatalf("static render is not well-formed XHTML: %v\n%s", err, rec.Body)
			}
		}
	}
}

// TestMacroBadParameters checks that each mistake in the macro's settings
// is a 400 naming it, for the page and the export alike.
func TestMacroBadParameters(t *testing.T) {
	// Reasons are matched in part, free of quotes and markup, since the
	// page escapes them as HTML and the export's error answer as JSON.
	cases := []struct{ query, reason string }{
		{"projects=&view=deployments", "Name at least one Jira project key."},
		{"projects=OPS&view=burndown", "is not one Keyline knows; choose status, deployments, metrics or release-notes."},
		{"projects=OPS&view=metrics&days=0&year=2020", "days must be a whole number from 1 to 732. year must be a DORA benchmark year"},
		{"projects=OPS-1&view=deployments", "OPS-1"},
		{"projects=OPS&view=status", "The status view needs issue keys or a fix version."},
		{"projects=OPS&view=status&issues=OPS-7,nope", "NOPE"},
		{"projects=OPS&view=status&issues=WEB-1", "WEB-1 is not in the macro"},
		{"projects=OPS&view=deployments&service=a%0Ab", "The service must be one line"},
		{"projects=OPS&view=deployments&environment=" + strings.Repeat("x", 256), "The environment must be one line of at most 255 characters."},
		{"projects=" + manyProjects(21) + "&view=deployments", "at most 20 projects"},
		{"projects=OPS&view=status&issues=" + manyIssues(51), "at most 50 issues"},
		{"projects=OPS&view=status&issues=OPS-7&fixVersion=9.9", "Jira has no fix version"},
	}
	var scenarios []scenario
	for _, c := range cases {
		for _, path := range []string{"/confluence/macro", "/confluence/macro-static"} {
			scenarios = append(scenarios, scenario{
				name:  path + "?" + c.query,
				setup: func(h *harness) { h.install(acme, confKey); h.install(acme, jiraKey) },
				request: func(h *harness) *httptest.ResponseRecorder {
					if path == "/confluence/macro" {
						return h.iframeGET(acme, path+"?"+c.query+"&"+iframeQuery(""))
					}
					return h.staticGET(acme, path+"?"+c.query)
				},
				wantStatus:  http.StatusBadRequest,
				wantContent: []string{c.reason},
			})
		}
	}
	runScenarios(t, scenarios)
}

// manyProjects is n distinct project keys, comma-separated.
func manyProjects(n int) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "P" + strconv.Itoa(i)
	}
	return strings.Join(keys, ",")
}

// manyIssues is n distinct issue keys of project OPS, comma-separated.
func manyIssues(n int) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "OPS-" + strconv.Itoa(i+1)
	}
	return strings.Join(keys, ",")
}
