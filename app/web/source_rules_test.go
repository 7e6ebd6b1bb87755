package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/store"
)

func rulesPath(id string) string { return "/jira/api/sources/" + id + "/environment-rules" }

// storedRules reads the rules of s's source id straight from the store.
func (h *harness) storedRules(s site, id string) string {
	h.t.Helper()
	ctx := context.Background()
	tn, err := h.store.TenantByClientKey(ctx, jiraKey, s.clientKey)
	if err != nil {
		h.t.Fatal(err)
	}
	src, err := h.store.SourceByID(ctx, tn, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(src.EnvironmentRules)
}

// setRulesFor sets rules on s's source id through the API, which must accept them.
func (h *harness) setRulesFor(s site, id, rules string) {
	h.t.Helper()
	if rec := h.api(s, http.MethodPut, rulesPath(id), h.adminClaims(s), rules); rec.Code != http.StatusOK {
		h.t.Fatalf("set rules %s: %d %s", rules, rec.Code, rec.Body)
	}
}

func TestSourceRulesAPI(t *testing.T) {
	both := func(h *harness) { h.install(acme, jiraKey); h.install(globex, jiraKey) }
	const kept = `{"staging":["*-stable"]}`
	// id is the scenario's acme source, with rules kept, made by withRules.
	var id string
	withRules := func(h *harness) {
		both(h)
		id = h.createSourceFor(acme, "shop")
		h.setRulesFor(acme, id, kept)
	}
	unchanged := func(t *testing.T, h *harness) {
		if got := h.storedRules(acme, id); got != kept {
			t.Errorf("rules after a refused update = %s, want %s unchanged", got, kept)
		}
	}
	invalid := func(name, body string, reasons ...string) scenario {
		return scenario{
			name:  "invalid rules are refused: " + name,
			setup: withRules,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(acme, http.MethodPut, rulesPath(id), h.adminClaims(acme), body)
			},
			wantStatus:  http.StatusBadRequest,
			wantContent: append([]string{`"error":"invalid environment rules: `}, reasons...),
			check:       unchanged,
		}
	}
	var eleven []string
	for i := range devops.MaxEnvironmentGlobs + 1 {
		eleven = append(eleven, fmt.Sprintf("%q", fmt.Sprintf("qa-%d", i)))
	}

	runScenarios(t, []scenario{
		{
			name:  "admin sets rules; they are stored and listed",
			setup: func(h *harness) { both(h); id = h.createSourceFor(acme, "shop") },
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(acme, http.MethodPut, rulesPath(id), h.adminClaims(acme),
					"{\n  \"staging\": [\"*-stable\"],\n  \"production\": [\"prod-*\", \"live\"]\n}")
			},
			wantStatus: http.StatusOK,
			wantContent: []string{`"source":{"id":"`, `"kind":"github"`, `"name":"shop"`,
				`"environment_rules":{"production":["prod-*","live"],"staging":["*-stable"]}`},
			check: func(t *testing.T, h *harness) {
				if got, want := h.storedRules(acme, id), `{"production":["prod-*","live"],"staging":["*-stable"]}`; got != want {
					t.Errorf("stored rules = %s, want %s", got, want)
				}
				rec := h.api(acme, http.MethodGet, "/jira/api/sources", h.adminClaims(acme), nil)
				if !strings.Contains(rec.Body.String(), `"environment_rules":{"production":["prod-*","live"],"staging":["*-stable"]}`) {
					t.Errorf("list does not show the rules: %d %s", rec.Code, rec.Body)
				}
			},
		},
		{
			name:  "admin clears rules with an empty object",
			setup: withRules,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(acme, http.MethodPut, rulesPath(id), h.adminClaims(acme), `{}`)
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`"environment_rules":{}`},
			check: func(t *testing.T, h *harness) {
				if got := h.storedRules(acme, id); got != `{}` {
					t.Errorf("stored rules = %s, want {}", got)
				}
			},
		},
		{
			name:  "a new source lists empty rules",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				h.createSourceFor(acme, "shop")
				return h.api(acme, http.MethodGet, "/jira/api/sources", h.adminClaims(acme), nil)
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`"environment_rules":{}`},
		},
		invalid("broken JSON", `{"production": [`, "not JSON"),
		invalid("empty body", ``, "not JSON"),
		invalid("not an object", `["prod-*"]`, "not a JSON object"),
		invalid("unknown type", `{"prod": ["prod-*"]}`, `\"prod\" is not a type rules can map to`),
		invalid("too many globs", `{"testing": [`+strings.Join(eleven, ",")+`]}`, "testing has 11 globs, at most 10 allowed"),
		invalid("malformed glob", `{"production": ["prod-[0-9"]}`, `production glob 1 \"prod-[0-9\" is not a valid glob`),
		invalid("value not a list", `{"production": "prod-*"}`, `the value of \"production\" must be a list of glob strings`),
		invalid("several problems, all named", `{"production": ["{a"], "qa": ["*"]}`,
			`production glob 1 \"{a\"`, `; invalid environment rules: \"qa\" is not a type`),
		{
			name:  "non-admin is refused",
			setup: withRules,
			request: func(h *harness) *httptest.ResponseRecorder {
				// withRules made the test user an administrator; demote them.
				h.jira.mu.Lock()
				delete(h.jira.admins, acme.clientKey+"/"+testAccount)
				h.jira.mu.Unlock()
				return h.api(acme, http.MethodPut, rulesPath(id), h.contextClaims(acme), `{"production": ["*"]}`)
			},
			wantStatus:  http.StatusForbidden,
			wantContent: []string{"only Jira administrators"},
			check:       unchanged,
		},
		{
			name:  "iframe token with a computed qsh is refused",
			setup: withRules,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(acme, http.MethodPut, rulesPath(id), h.productClaims(acme, http.MethodPut, rulesPath(id)), `{"production": ["*"]}`)
			},
			wantStatus: http.StatusUnauthorized,
			check:      unchanged,
		},
		{
			name:  "another site's admin gets 404 for acme's source",
			setup: withRules,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(globex, http.MethodPut, rulesPath(id), h.adminClaims(globex), `{"production": ["*"]}`)
			},
			wantStatus:  http.StatusNotFound,
			wantContent: []string{"no such source"},
			check:       unchanged,
		},
		{
			name:  "unknown source",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(acme, http.MethodPut, rulesPath("src_unknown"), h.adminClaims(acme), `{}`)
			},
			wantStatus: http.StatusNotFound,
		},
		{
			name:  "deleted source",
			setup: withRules,
			request: func(h *harness) *httptest.ResponseRecorder {
				if rec := h.api(acme, http.MethodDelete, "/jira/api/sources/"+id, h.adminClaims(acme), nil); rec.Code != http.StatusNoContent {
					h.t.Fatalf("delete: %d %s", rec.Code, rec.Body)
				}
				return h.api(acme, http.MethodPut, rulesPath(id), h.adminClaims(acme), `{}`)
			},
			wantStatus: http.StatusNotFound,
		},
		{
			name:  "oversized body",
			setup: withRules,
			request: func(h *harness) *httptest.ResponseRecorder {
				big := `{"production": ["` + strings.Repeat("a", store.MaxEnvironmentRulesLen) + `"]}`
				return h.api(acme, http.MethodPut, rulesPath(id), h.adminClaims(acme), big)
			},
			wantStatus:  http.StatusRequestEntityTooLarge,
			wantContent: []string{fmt.Sprintf("larger than %d bytes", store.MaxEnvironmentRulesLen)},
			check:       unchanged,
		},
	})
}

// genericDeployment is a generic API deployment to environment env with no
// environment.type, so that the source's rules get to decide it.
func genericDeployment(env string, seq int64) []byte {
	return fmt.Appendf(nil, `{
  "pipeline": {"id": "shop-deploy", "displayName": "Shop deploy"},
  "environment": {"id": %[1]q, "displayName": %[1]q},
  "deploymentSequenceNumber": %[2]d,
  "updateSequenceNumber": 1,
  "state": "successful",
  "lastUpdated": "2026-11-21T10:00:00Z",
  "service": "shop"
}`, env, seq)
}

// TestSourceRulesClassifyDeliveries checks that rules set through the API
// decide the environment type of deployments delivered afterwards.
func TestSourceRulesClassifyDeliveries(t *testing.T) {
	var k hook
	deploy := func(h *harness, seq int64) *store.DeploymentRecord {
		h.t.Helper()
		body := genericDeployment("live-eu", seq)
		if rec := h.sendHook(k.token, "deployments", signed(k.kind, k.secret, body), body); rec.Code != http.StatusOK {
			h.t.Fatalf("deliver deployment %d: %d %s", seq, rec.Code, rec.Body)
		}
		key := devops.DeploymentKey{PipelineID: "shop-deploy", EnvironmentID: "live-eu", SequenceNumber: seq}
		d, err := h.store.Deployment(context.Background(), k.tenant, store.DeploymentID(k.id, key))
		if err != nil {
			h.t.Fatalf("deployment %d: %v", seq, err)
		}
		return d
	}
	runScenarios(t, []scenario{{
		name: "a generic deployment to live-eu is production by rule",
		setup: func(h *harness) {
			k = h.addSource(acme, ingest.KindGeneric)
			// Without rules the name heuristic already reads "live" as
			// production; the basis is what shows the rule took over.
			if d := deploy(h, 1); d.EnvironmentType != devops.EnvironmentProduction || d.EnvironmentBasis != devops.BasisHeuristic {
				h.t.Fatalf("before rules: %s by %s, want production by heuristic", d.EnvironmentType, d.EnvironmentBasis)
			}
		},
		request: func(h *harness) *httptest.ResponseRecorder {
			return h.api(acme, http.MethodPut, rulesPath(k.id), h.adminClaims(acme), `{"production":["live-*"]}`)
		},
		wantStatus:  http.StatusOK,
		wantContent: []string{`"environment_rules":{"production":["live-*"]}`},
		check: func(t *testing.T, h *harness) {
			d := deploy(h, 2)
			if d.EnvironmentType != devops.EnvironmentProduction || d.EnvironmentBasis != devops.BasisRule {
				t.Errorf("after rules: %s by %s, want production by rule", d.EnvironmentType, d.EnvironmentBasis)
			}
		},
	}})
}
