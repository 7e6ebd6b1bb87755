package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyline/keyline/app/store"
)

func secretPath(id string) string { return "/jira/api/sources/" + id + "/secret" }

func TestSourceSecretAPI(t *testing.T) {
	both := func(h *harness) { h.install(acme, jiraKey); h.install(globex, jiraKey) }
	var src createdSource
	withPagerDuty := func(h *harness) { both(h); src = h.createShown(acme, store.SourcePagerDuty, "Acme PD") }
	// unchanged checks that acme's source still verifies with the secret
	// Keyline issued, and PagerDuty's does not: nothing was set.
	unchanged := func(t *testing.T, h *harness) {
		if code := h.sendSigned(src, store.SourcePagerDuty, src.Secret); code != http.StatusAccepted {
			t.Errorf("the secret Keyline issued: %d, want 202 (kept)", code)
		}
		if code := h.sendSigned(src, store.SourcePagerDuty, pagerDutySecret); code != http.StatusUnauthorized {
			t.Errorf("the refused secret: %d, want 401 (not stored)", code)
		}
		rec := h.api(acme, http.MethodGet, "/jira/api/sources", h.adminClaims(acme), nil)
		if !strings.Contains(rec.Body.String(), `"secret_provided":false`) || strings.Contains(rec.Body.String(), `"secret_provided":true`) {
			t.Errorf("sources after a refused secret: %s", rec.Body)
		}
	}
	scenarios := []scenario{
		{
			name:  "admin sets PagerDuty's secret: it verifies at once, Keyline's stops, nothing is echoed",
			setup: withPagerDuty,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(acme, http.MethodPut, secretPath(src.ID), h.adminClaims(acme), map[string]string{"secret": pagerDutySecret})
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`"secret_provided":true`, `"kind":"pagerduty"`, `"name":"Acme PD"`},
			notContent:  []string{pagerDutySecret, `"secret":`},
			check: func(t *testing.T, h *harness) {
				if code := h.sendSigned(src, store.SourcePagerDuty, pagerDutySecret); code != http.StatusAccepted {
					t.Errorf("a delivery signed with PagerDuty's secret: %d, want 202", code)
				}
				if code := h.sendSigned(src, store.SourcePagerDuty, src.Secret); code != http.StatusUnauthorized {
					t.Errorf("a delivery signed with Keyline's replaced secret: %d, want 401", code)
				}
				// Setting it again (a new subscription) replaces it.
				next := "Zz" + pagerDutySecret[2:]
				if rec := h.api(acme, http.MethodPut, secretPath(src.ID), h.adminClaims(acme), map[string]string{"secret": next}); rec.Code != http.StatusOK {
					t.Fatalf("set again: %d %s", rec.Code, rec.Body)
				}
				if h.sendSigned(src, store.SourcePagerDuty, next) != http.StatusAccepted || h.sendSigned(src, store.SourcePagerDuty, pagerDutySecret) != http.StatusUnauthorized {
					t.Error("after setting a second secret: want only it to verify")
				}
			},
		},
		{
			name:  "a user who is not a Jira administrator is refused",
			setup: withPagerDuty,
			request: func(h *harness) *httptest.ResponseRecorder {
				h.jira.mu.Lock()
				h.jira.admins[acme.clientKey+"/"+testAccount] = false
				h.jira.mu.Unlock()
				return h.api(acme, http.MethodPut, secretPath(src.ID), h.contextClaims(acme), map[string]string{"secret": pagerDutySecret})
			},
			wantStatus: http.StatusForbidden,
			check:      unchanged,
		},
		{
			name:  "another site's admin gets 404 for acme's source",
			setup: withPagerDuty,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(globex, http.MethodPut, secretPath(src.ID), h.adminClaims(globex), map[string]string{"secret": pagerDutySecret})
			},
			wantStatus:  http.StatusNotFound,
			wantContent: []string{"no such source"},
			check:       unchanged,
		},
		{
			name:  "an iframe token with a computed qsh is refused",
			setup: withPagerDuty,
			request: func(h *harness) *httptest.ResponseRecorder {
				h.adminClaims(acme)
				return h.api(acme, http.MethodPut, secretPath(src.ID), h.productClaims(acme, http.MethodPut, secretPath(src.ID)), map[string]string{"secret": pagerDutySecret})
			},
			wantStatus: http.StatusUnauthorized,
			check:      unchanged,
		},
		{
			name:  "a kind that signs with Keyline's secret: 422 with the reason",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				src = h.createShown(acme, store.SourceGitHub, "Acme GitHub")
				return h.api(acme, http.MethodPut, secretPath(src.ID), h.adminClaims(acme), map[string]string{"secret": pagerDutySecret})
			},
			wantStatus:  http.StatusUnprocessableEntity,
			wantContent: []string{"a GitHub source signs with the secret Keyline generated; rotate it instead"},
			check: func(t *testing.T, h *harness) {
				if code := h.sendSigned(src, store.SourceGitHub, src.Secret); code != http.StatusAccepted {
					t.Errorf("GitHub source's own secret: %d, want 202 (kept)", code)
				}
			},
		},
	}
	for _, bad := range []struct {
		name string
		body any
		why  string
	}{
		{"empty secret", map[string]string{"secret": ""}, "the secret is empty"},
		{"short secret", map[string]string{"secret": "short"}, "16 to 512 bytes"},
		{"long secret", map[string]string{"secret": strings.Repeat("k", 513)}, "16 to 512 bytes"},
		{"line break pasted with it", map[string]string{"secret": pagerDutySecret + "\n"}, "white space"},
		{"control character", map[string]string{"secret": "abc\u0000" + pagerDutySecret}, "printable ASCII"},
		{"not ASCII", map[string]string{"secret": strings.Repeat("é", 12)}, "printable ASCII"},
		{"no secret field", map[string]string{"token": pagerDutySecret}, "body must be JSON"},
		{"secret not a string", map[string]int{"secret": 12345678901234567}, "body must be JSON"},
		{"two values", `{"secret":"` + pagerDutySecret + `"} {}`, "body must be JSON"},
		{"not JSON", `secret=` + pagerDutySecret, "body must be JSON"},
		{"empty body", "", "body must be JSON"},
	} {
		scenarios = append(scenarios, scenario{
			name:  "bad input stores nothing: " + bad.name,
			setup: withPagerDuty,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(acme, http.MethodPut, secretPath(src.ID), h.adminClaims(acme), bad.body)
			},
			wantStatus:  http.StatusBadRequest,
			wantContent: []string{bad.why},
			notContent:  []string{pagerDutySecret},
			check:       unchanged,
		})
	}
	runScenarios(t, scenarios)
}

// TestConfigurePageProviderSecret checks what the configure page renders for
// a kind whose provider issues the secret, before and after it is set, and
// that other kinds get no such form.
func TestConfigurePageProviderSecret(t *testing.T) {
	runScenarios(t, []scenario{
		{
			name:  "PagerDuty's secret not set yet",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				h.createShown(acme, store.SourcePagerDuty, "Acme PD")
				return h.configurePage(acme)
			},
			wantStatus: http.StatusOK,
			wantContent: []string{`data-secret-kinds="pagerduty"`, `<div data-field="secret-state">`, ">Not set<",
				"until the secret PagerDuty issued is set", `data-testid="set-secret">Set provider's secret<`,
				`<input type="password" name="secret"`},
		},
		{
			name:  "PagerDuty's secret set",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				src := h.createShown(acme, store.SourcePagerDuty, "Acme PD")
				if rec := h.api(acme, http.MethodPut, secretPath(src.ID), h.adminClaims(acme), map[string]string{"secret": pagerDutySecret}); rec.Code != http.StatusOK {
					h.t.Fatalf("set: %d %s", rec.Code, rec.Body)
				}
				return h.configurePage(acme)
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`<div data-field="secret-state">`, `data-testid="secret-state"><span>Set</span>`, `data-testid="set-secret">`},
			notContent:  []string{pagerDutySecret},
		},
		{
			name:  "a GitHub source has the form hidden",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				h.createShown(acme, store.SourceGitHub, "Acme GitHub")
				return h.configurePage(acme)
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`<div data-field="secret-state" hidden>`, `data-testid="set-secret" hidden>`},
		},
	})
}
