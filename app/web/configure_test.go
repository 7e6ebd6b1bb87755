package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/keyline/keyline/app/store"
)

const configureTarget = "/jira/configure?"

// createdSource is what the API shows once when a source is created.
type createdSource struct {
	ID, URL, Secret string
}

// createShown creates a source for s through the API, as its administrator.
func (h *harness) createShown(s site, kind, name string) createdSource {
	h.t.Helper()
	rec := h.api(s, http.MethodPost, "/jira/api/sources", h.adminClaims(s), map[string]string{"kind": kind, "name": name})
	if rec.Code != http.StatusCreated {
		h.t.Fatalf("create source: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Source struct {
			ID string `json:"id"`
		} `json:"source"`
		URL    string `json:"webhook_url"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		h.t.Fatal(err)
	}
	if out.Source.ID == "" || out.URL == "" || out.Secret == "" {
		h.t.Fatalf("create source answered without id, URL or secret: %s", rec.Body)
	}
	return createdSource{ID: out.Source.ID, URL: out.URL, Secret: out.Secret}
}

// configurePage loads the Jira configure page as s's Jira would frame it.
func (h *harness) configurePage(s site) *httptest.ResponseRecorder {
	h.t.Helper()
	return h.iframeGET(s, configureTarget+iframeQuery(""))
}

// listedSources are the data-source ids of the page's source rows, outside
// the row <template> (which the parser keeps apart as template content).
func listedSources(t *testing.T, body string) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "template" {
			return
		}
		if n.Type == html.ElementNode && n.Data == "li" {
			for _, a := range n.Attr {
				if a.Key == "data-source" {
					ids = append(ids, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return ids
}

func TestJiraConfigurePage(t *testing.T) {
	both := func(h *harness) { h.install(acme, jiraKey); h.install(globex, jiraKey) }
	runScenarios(t, []scenario{
		{
			name:  "admin sees the site's sources, never a secret or webhook URL",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				gh := h.createShown(acme, store.SourceGitHub, "Acme GitHub")
				gen := h.createShown(acme, store.SourceGeneric, "Jenkins")
				h.setRulesFor(acme, gen.ID, `{"production":["prod-*","live"],"staging":["*-stable"]}`)
				rec := h.configurePage(acme)
				body := rec.Body.String()
				for _, c := range []createdSource{gh, gen} {
					if strings.Contains(body, c.Secret) || strings.Contains(body, c.URL) {
						h.t.Errorf("the page shows a secret or webhook URL of %s", c.ID)
					}
				}
				if got := listedSources(h.t, body); len(got) != 2 || got[0] != gh.ID || got[1] != gen.ID {
					h.t.Errorf("listed sources = %v, want [%s %s]", got, gh.ID, gen.ID)
				}
				return rec
			},
			wantStatus: http.StatusOK,
			wantContent: []string{
				`data-testid="sources"`, `data-api="/jira/api/sources"`, ">Acme GitHub<", ">Jenkins<",
				">GitHub<", ">Generic API<", `data-testid="source-count" data-count>2<`,
				// Rules in the order they are tried, and in the editor.
				"Staging: <code>*-stable</code>", "Production: <code>prod-*, live</code>",
				"&#34;production&#34;: [",
				// Setup hints, readable without the script.
				"X-Hub-Signature-256", "keyline report",
				`src="/jira/static/js/configure.js?v=test"`,
			},
			notContent: []string{"/ingest/", "unsafe-inline"},
		},
		{
			name:  "admin of a site without sources sees the empty state and the add form for the script",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				h.adminClaims(acme)
				return h.configurePage(acme)
			},
			wantStatus: http.StatusOK,
			wantContent: []string{`<p class="empty" data-empty data-testid="sources-empty">`, "No code hosts",
				`<form class="cfg-add" data-add hidden`, `<option value="pagerduty">PagerDuty</option>`, "<noscript>"},
		},
		{
			name:  "a user who is not a Jira administrator gets 403 and the error page",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				h.createShown(acme, store.SourceGitHub, "Acme GitHub")
				h.jira.mu.Lock()
				h.jira.admins[acme.clientKey+"/"+testAccount] = false
				h.jira.mu.Unlock()
				return h.configurePage(acme)
			},
			wantStatus:  http.StatusForbidden,
			wantContent: []string{`data-testid="error"`, "only Jira administrators"},
			notContent:  []string{"Acme GitHub", `data-testid="sources"`, "configure.js"},
			wantHeaders: map[string]string{"Content-Type": "text/html"},
		},
		{
			name:  "globex's admin never sees acme's sources, even with the same names",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				a := h.createShown(acme, store.SourceGitHub, "Shop")
				a2 := h.createShown(acme, store.SourceGitLab, "acme only")
				g := h.createShown(globex, store.SourceGitHub, "Shop")
				rec := h.configurePage(globex)
				if got := listedSources(h.t, rec.Body.String()); len(got) != 1 || got[0] != g.ID {
					h.t.Errorf("globex's page lists %v, want only its own %s", got, g.ID)
				}
				for _, id := range []string{a.ID, a2.ID} {
					if strings.Contains(rec.Body.String(), id) {
						h.t.Errorf("globex's page names acme's source %s", id)
					}
				}
				return rec
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{">Shop<", `data-count>1<`},
			notContent:  []string{"acme only", "acme.atlassian.net"},
		},
		{
			name:  "source names are text, not markup",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				h.createShown(acme, store.SourceGeneric, `<img src=x onerror=alert(1)>`)
				return h.configurePage(acme)
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"&lt;img src=x onerror=alert(1)&gt;"},
			notContent:  []string{"<img src=x"},
		},
		{
			name:  "a context token does not open the page",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				tok := signHS256(h.t, h.adminClaims(acme), acme.secret)
				return h.do(http.MethodGet, configureTarget+iframeQuery("")+"&jwt="+tok, "", nil)
			},
			wantStatus: http.StatusUnauthorized,
		},
	})
}

func TestConfluenceConfigurePage(t *testing.T) {
	runScenarios(t, []scenario{
		{
			name:  "with the Jira app on the same site: connected, and where sources are managed",
			setup: func(h *harness) { h.install(acme, confKey); h.install(acme, jiraKey); h.install(globex, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				// Nobody is a Jira administrator here: the Confluence page does not ask.
				return h.iframeGET(acme, "/confluence/configure?"+iframeQuery(""))
			},
			wantStatus: http.StatusOK,
			wantContent: []string{`data-testid="jira-state">Connected<`, `data-testid="jira-connected"`,
				`href="https://acme.atlassian.net/plugins/servlet/ac/com.example.keyline.jira/configure"`},
			notContent: []string{`data-testid="jira-missing"`, "globex", `data-testid="sources"`, "configure.js"},
		},
		{
			name:  "without it: not connected, and how to fix that",
			setup: func(h *harness) { h.install(acme, confKey); h.install(globex, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, "/confluence/configure?"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="jira-state">Not connected<`, `data-testid="jira-missing"`, "Apps → Manage apps"},
			notContent:  []string{"globex", "jira-configure-link"},
		},
	})
}

func testPath(id string) string { return "/jira/api/sources/" + id + "/test" }

// apiDeliveryLog reads s's source id's log through the API.
func (h *harness) apiDeliveryLog(s site, id string) []deliveryJSON {
	h.t.Helper()
	rec := h.api(s, http.MethodGet, "/jira/api/sources/"+id+"/deliveries", h.adminClaims(s), nil)
	if rec.Code != http.StatusOK {
		h.t.Fatalf("delivery log: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		h.t.Fatal(err)
	}
	return out.Deliveries
}
