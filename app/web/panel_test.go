package web

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/store"
)

const panelTarget = "/jira/panel?issueKey=OPS-7&issueId=10007&projectKey=OPS"

// panelWith loads the panel with claims changed by mutate and signed by sign.
func panelWith(mutate func(h *harness, c jwt.MapClaims), sign func(h *harness, c jwt.MapClaims) string) func(h *harness) *httptest.ResponseRecorder {
	return func(h *harness) *httptest.ResponseRecorder {
		target := panelTarget + "&" + iframeQuery("")
		c := h.productClaims(acme, http.MethodGet, target)
		if mutate != nil {
			mutate(h, c)
		}
		tok := signHS256(h.t, c, acme.secret)
		if sign != nil {
			tok = sign(h, c)
		}
		return h.do(http.MethodGet, target+"&jwt="+tok, "", nil)
	}
}

// unsignedToken builds an alg:none token.
func unsignedToken(c jwt.MapClaims) string {
	s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	return s
}

func TestIssuePanelAuth(t *testing.T) {
	installed := func(h *harness) { h.install(acme, jiraKey); h.install(globex, jiraKey) }
	denied := []string{"OPS-7", "acme.atlassian.net"}
	runScenarios(t, []scenario{
		{
			name:        "Jira-style iframe load renders the panel",
			setup:       installed,
			request:     panelWith(nil, nil),
			wantStatus:  http.StatusOK,
			wantContent: []string{`class="ac-content"`, "https://connect-cdn.atl-paas.net/all.js", `data-testid="issue-key">OPS-7<`, "acme.atlassian.net", "No DevOps data is linked to OPS-7 yet"},
			notContent:  []string{"globex"},
			wantHeaders: map[string]string{"Content-Security-Policy": "frame-ancestors https://*.atlassian.net https://*.jira.com"},
			check: func(t *testing.T, h *harness) {
				rec := panelWith(nil, nil)(h)
				if rec.Header().Get("X-Frame-Options") != "" {
					t.Errorf("X-Frame-Options = %q; Jira could not frame the panel", rec.Header().Get("X-Frame-Options"))
				}
			},
		},
		{
			name:  "exp 29 s ago is within the leeway",
			setup: installed,
			request: panelWith(func(h *harness, c jwt.MapClaims) {
				c["iat"] = h.now.Add(-200 * time.Second).Unix()
				c["exp"] = h.now.Add(-29 * time.Second).Unix()
			}, nil),
			wantStatus: http.StatusOK,
		},
		{
			name:  "exp 31 s ago is expired",
			setup: installed,
			request: panelWith(func(h *harness, c jwt.MapClaims) {
				c["iat"] = h.now.Add(-200 * time.Second).Unix()
				c["exp"] = h.now.Add(-31 * time.Second).Unix()
			}, nil),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:       "token signed with another site's secret",
			setup:      installed,
			request:    panelWith(nil, func(h *harness, c jwt.MapClaims) string { return signHS256(h.t, c, globex.secret) }),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:       "alg none",
			setup:      installed,
			request:    panelWith(nil, func(h *harness, c jwt.MapClaims) string { return unsignedToken(c) }),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:  "alg RS256 header over an HMAC made with the shared secret",
			setup: installed,
			request: panelWith(nil, func(h *harness, c jwt.MapClaims) string {
				// Alg confusion: header says RS256, signature is HMAC-SHA256 with the secret.
				hs := signHS256(h.t, c, acme.secret)
				header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
				parts := strings.SplitN(hs, ".", 3)
				return header + "." + parts[1] + "." + parts[2]
			}),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:       "unknown issuer",
			setup:      installed,
			request:    panelWith(func(h *harness, c jwt.MapClaims) { c["iss"] = "33333333-aaaa-4bbb-8ccc-000000000003" }, nil),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:       "issuer is an uninstalled tenant",
			setup:      func(h *harness) { installed(h); h.uninstall(acme, jiraKey) },
			request:    panelWith(nil, nil),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:       "issuer installed only the Confluence app",
			setup:      func(h *harness) { h.install(acme, confKey) },
			request:    panelWith(nil, nil),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:       "missing exp",
			setup:      installed,
			request:    panelWith(func(h *harness, c jwt.MapClaims) { delete(c, "exp") }, nil),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:       "missing iat",
			setup:      installed,
			request:    panelWith(func(h *harness, c jwt.MapClaims) { delete(c, "iat") }, nil),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:       "iat in the future",
			setup:      installed,
			request:    panelWith(func(h *harness, c jwt.MapClaims) { c["iat"] = h.now.Add(2 * time.Minute).Unix() }, nil),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:       "missing qsh",
			setup:      installed,
			request:    panelWith(func(h *harness, c jwt.MapClaims) { delete(c, "qsh") }, nil),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:  "qsh of another issue",
			setup: installed,
			request: panelWith(func(h *harness, c jwt.MapClaims) {
				other := h.productClaims(acme, http.MethodGet, "/jira/panel?issueKey=OPS-8&issueId=10008&projectKey=OPS&"+iframeQuery(""))
				c["qsh"] = other["qsh"]
			}, nil),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:       "context token on a module page",
			setup:      installed,
			request:    panelWith(func(h *harness, c jwt.MapClaims) { c["qsh"] = "context-qsh" }, nil),
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:  "token in the query and in the header",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				target := panelTarget + "&" + iframeQuery("")
				tok := signHS256(h.t, h.productClaims(acme, http.MethodGet, target), acme.secret)
				return h.do(http.MethodGet, target+"&jwt="+tok, "JWT "+tok, nil)
			},
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:  "header without the JWT prefix",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				target := panelTarget + "&" + iframeQuery("")
				tok := signHS256(h.t, h.productClaims(acme, http.MethodGet, target), acme.secret)
				return h.do(http.MethodGet, target, "Bearer "+tok, nil)
			},
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:       "no token at all",
			setup:      installed,
			request:    func(h *harness) *httptest.ResponseRecorder { return h.do(http.MethodGet, panelTarget, "", nil) },
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:  "Confluence tenant token on a Jira page",
			setup: func(h *harness) { installed(h); h.install(acme, confKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				// Same site, same clientKey, but the Confluence app's secret.
				conf := acme
				conf.secret = "confluence-secret-0123456789abcdef0123456789ab"
				return h.iframeGET(conf, panelTarget+"&"+iframeQuery(""))
			},
			wantStatus: http.StatusUnauthorized, notContent: denied,
		},
		{
			name:  "not an issue key",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, "/jira/panel?issueKey=%3Cscript%3E&"+iframeQuery(""))
			},
			wantStatus:  http.StatusBadRequest,
			wantContent: []string{"issueKey is missing or is not a Jira issue key"},
			notContent:  []string{"<script>"},
		},
	})
}

func TestIssuePanelIsTenantScoped(t *testing.T) {
	ctx := context.Background()
	seed := func(h *harness) {
		h.install(acme, jiraKey)
		h.install(globex, jiraKey)
		g, err := h.store.TenantByClientKey(ctx, jiraKey, globex.clientKey)
		if err != nil {
			h.t.Fatal(err)
		}
		// Globex has an issue with the same key and id, a status and links; none may show on Acme's panel.
		if err := h.store.UpsertJiraIssue(ctx, g, store.JiraIssue{IssueID: "10007", IssueKey: "OPS-7", ProjectKey: "OPS", Summary: "Globex secret plan", StatusName: "Globex Review", StatusCategory: "indeterminate", UpdatedAt: h.now}); err != nil {
			h.t.Fatal(err)
		}
		if err := h.store.AddIssueLink(ctx, g, "OPS-7", "commit", "globex-commit-1"); err != nil {
			h.t.Fatal(err)
		}
	}
	runScenarios(t, []scenario{
		{
			name:        "acme's panel shows nothing of globex",
			setup:       seed,
			request:     func(h *harness) *httptest.ResponseRecorder { return h.iframeGET(acme, panelTarget+"&"+iframeQuery("")) },
			wantStatus:  http.StatusOK,
			wantContent: []string{"No DevOps data is linked to OPS-7 yet", "acme.atlassian.net"},
			notContent:  []string{"Globex Review", "globex", "1 commit"},
		},
		{
			name:  "globex's panel shows its own data",
			setup: seed,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(globex, panelTarget+"&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{"Globex Review", "1 commit", "globex.atlassian.net"},
			notContent:  []string{"acme", "No DevOps data is linked"},
		},
		{
			name:  "acme's context API shows nothing of globex",
			setup: seed,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.do(http.MethodGet, "/jira/api/issues/OPS-7/links?issueId=10007", "JWT "+signHS256(h.t, h.contextClaims(acme), acme.secret), nil)
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`"commit":0`, `"issueKey":"OPS-7"`},
			notContent:  []string{`"commit":1`},
		},
	})
}

func TestContextAPIAcceptsOnlyContextTokens(t *testing.T) {
	installed := func(h *harness) { h.install(acme, jiraKey) }
	const target = "/jira/api/issues/OPS-7/links?issueId=10007"
	runScenarios(t, []scenario{
		{
			name:  "context token",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.do(http.MethodGet, target, "JWT "+signHS256(h.t, h.contextClaims(acme), acme.secret), nil)
			},
			wantStatus: http.StatusOK, wantContent: []string{`"links"`},
		},
		{
			name:  "iframe token with a computed qsh for this very URL",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.do(http.MethodGet, target, "JWT "+signHS256(h.t, h.productClaims(acme, http.MethodGet, target), acme.secret), nil)
			},
			wantStatus: http.StatusUnauthorized, notContent: []string{`"links"`},
		},
		{
			name:  "context token without qsh",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				c := h.contextClaims(acme)
				delete(c, "qsh")
				return h.do(http.MethodGet, target, "JWT "+signHS256(h.t, c, acme.secret), nil)
			},
			wantStatus: http.StatusUnauthorized, notContent: []string{`"links"`},
		},
		{
			name:  "user who may not browse the issue",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				c := h.contextClaims(acme)
				c["sub"] = "557058:someone-else"
				c["context"] = map[string]any{"user": map[string]any{"accountId": "557058:someone-else"}}
				return h.do(http.MethodGet, target, "JWT "+signHS256(h.t, c, acme.secret), nil)
			},
			wantStatus: http.StatusForbidden, notContent: []string{`"links"`},
		},
		{
			name:  "issueId of another issue than the key",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.do(http.MethodGet, "/jira/api/issues/OPS-7/links?issueId=10008", "JWT "+signHS256(h.t, h.contextClaims(acme), acme.secret), nil)
			},
			wantStatus: http.StatusNotFound, notContent: []string{`"links"`},
		},
		{
			name:  "missing issueId",
			setup: installed,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.do(http.MethodGet, "/jira/api/issues/OPS-7/links", "JWT "+signHS256(h.t, h.contextClaims(acme), acme.secret), nil)
			},
			wantStatus: http.StatusBadRequest, notContent: []string{`"links"`},
		},
		{
			name:  "context token of another site's secret",
			setup: func(h *harness) { installed(h); h.install(globex, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.do(http.MethodGet, target, "JWT "+signHS256(h.t, h.contextClaims(acme), globex.secret), nil)
			},
			wantStatus: http.StatusUnauthorized, notContent: []string{`"links"`},
		},
	})
}

// deploymentOPS7 is a generic-API deployment of the GitHub push fixture's
// OPS-7 commit to staging-eu.
const deploymentOPS7 = `{
  "pipeline": {"id": "shop-deploy", "displayName": "Shop deploy", "url": "https://ci.acme.example/shop-deploy"},
  "environment": {"id": "staging-eu", "displayName": "staging-eu", "type": "staging"},
  "deploymentSequenceNumber": 12, "updateSequenceNumber": 1, "state": "successful",
  "url": "https://ci.acme.example/shop-deploy/12", "lastUpdated": "2026-11-20T11:00:00Z",
  "issueKeys": ["OPS-7"], "commits": [{"sha": "2222222222222222222222222222222222222222", "repository": "acme/shop"}]
}`

// deliverOPS7 gives acme a GitHub and a generic source and delivers the
// push fixture (commits for OPS-7) and a deployment of OPS-7 to staging-eu.
func (h *harness) deliverOPS7() {
	h.t.Helper()
	gh := h.addSource(acme, ingest.KindGitHub)
	if rec := h.pushTo(gh, "d-1"); rec.Code != http.StatusOK {
		h.t.Fatalf("push: %d %s", rec.Code, rec.Body)
	}
	gen := h.addSource(acme, ingest.KindGeneric)
	body := []byte(deploymentOPS7)
	if rec := h.sendHook(gen.token, ingest.GenericDeployment, signed(gen.kind, gen.secret, body), body); rec.Code != http.StatusOK {
		h.t.Fatalf("deployment: %d %s", rec.Code, rec.Body)
	}
}

// makeAdmin lets the tests' user administer s's Jira.
func (h *harness) makeAdmin(s site) {
	h.jira.mu.Lock()
	defer h.jira.mu.Unlock()
	h.jira.admins[s.clientKey+"/"+testAccount] = true
}

func TestIssuePanelShowsDevelopment(t *testing.T) {
	seed := func(h *harness) { h.deliverOPS7(); h.install(globex, jiraKey) }
	// What acme's sources reported, as it must appear on acme's panel and
	// never on globex's.
	acmeData := []string{"2222222", "OPS-7: validate the login form", "Ada Lovelace", "staging-eu", "Shop deploy #12"}
	runScenarios(t, []scenario{
		{
			name:       "the panel shows the pushed commit and the environment reached",
			setup:      seed,
			request:    func(h *harness) *httptest.ResponseRecorder { return h.iframeGET(acme, panelTarget+"&"+iframeQuery("")) },
			wantStatus: http.StatusOK,
			wantContent: append([]string{
				`data-testid="summary"`, `data-testid="commits"`, `data-testid="deployments"`, `data-testid="timeline"`,
				`href="https://github.com/acme/shop/commit/2222222222222222222222222222222222222222"`,
				`data-environment-type="staging"`, `href="https://ci.acme.example/shop-deploy/12"`, "Reached staging-eu",
			}, acmeData...),
			notContent: []string{`data-testid="empty-state"`, "globex", "Connect a source"},
		},
		{
			name:  "globex's panel for the same key shows none of acme's data",
			setup: seed,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(globex, panelTarget+"&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="empty-state"`, "No DevOps data is linked to OPS-7 yet", "globex.atlassian.net"},
			notContent:  append([]string{"acme", `data-testid="commits"`, `data-testid="summary"`}, acmeData...),
		},
		{
			name:  "the right-column summary is the summary line only",
			setup: seed,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, "/jira/summary?issueKey=OPS-7&issueId=10007&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="summary"`, `data-testid="summary-commits"`, "staging-eu", `data-environment-type="staging"`},
			notContent:  []string{`data-testid="commits"`, `data-testid="timeline"`, `data-testid="empty-state"`, "Ada Lovelace"},
		},
		{
			name: "hostile commit text and URLs from a provider render inert",
			setup: func(h *harness) {
				gh := h.addSource(acme, ingest.KindGitHub)
				body := fixture(h.t, "github/push_hostile.json")
				if rec := h.sendHook(gh.token, "", withHeader(signed(gh.kind, gh.secret, body), "X-GitHub-Event", "push"), body); rec.Code != http.StatusOK {
					h.t.Fatalf("push: %d %s", rec.Code, rec.Body)
				}
			},
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.iframeGET(acme, "/jira/panel?issueKey=OPS-10&issueId=10010&"+iframeQuery(""))
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="commits"`, "4444444", "&lt;script&gt;alert(", "&lt;img src=x onerror=alert(1)&gt;", "&lt;b&gt;Mallory&lt;/b&gt;"},
			notContent:  []string{"<script>alert", "<img", "<b>Mallory", "javascript:", "about:invalid", "onerror=alert(1)>"},
		},
	})
}

func TestIssuePanelEmptyState(t *testing.T) {
	const configureHref = `href="https://acme.atlassian.net/plugins/servlet/ac/com.example.keyline.jira/configure"`
	panel := func(h *harness) *httptest.ResponseRecorder { return h.iframeGET(acme, panelTarget+"&"+iframeQuery("")) }
	runScenarios(t, []scenario{
		{
			name:        "a site admin is shown how to connect a source",
			setup:       func(h *harness) { h.install(acme, jiraKey); h.makeAdmin(acme) },
			request:     panel,
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="empty-state"`, "No DevOps data is linked to OPS-7 yet", "Connect a source", configureHref, `target="_top"`},
		},
		{
			name:        "anyone else reads a short sentence, without the configure link",
			setup:       func(h *harness) { h.install(acme, jiraKey) },
			request:     panel,
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="empty-state"`, "No DevOps data is linked to OPS-7 yet", "Ask a Jira administrator"},
			notContent:  []string{"Connect a source", "/plugins/servlet/ac/"},
		},
		{
			name:       "administering another site does not count",
			setup:      func(h *harness) { h.install(acme, jiraKey); h.install(globex, jiraKey); h.makeAdmin(globex) },
			request:    panel,
			wantStatus: http.StatusOK,
			notContent: []string{"Connect a source", "/plugins/servlet/ac/"},
		},
		{
			name:        "an admin's panel with data has no empty state",
			setup:       func(h *harness) { h.deliverOPS7(); h.makeAdmin(acme) },
			request:     panel,
			wantStatus:  http.StatusOK,
			wantContent: []string{`data-testid="commits"`},
			notContent:  []string{`data-testid="empty-state"`, "Connect a source"},
		},
	})
}
