package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// adminClaims is a context token of the site's administrator.
func (h *harness) adminClaims(s site) jwt.MapClaims {
	c := h.contextClaims(s)
	h.jira.mu.Lock()
	h.jira.admins[s.clientKey+"/"+testAccount] = true
	h.jira.mu.Unlock()
	return c
}

func (h *harness) api(s site, method, target string, claims jwt.MapClaims, body any) *httptest.ResponseRecorder {
	return h.do(method, target, "JWT "+signHS256(h.t, claims, s.secret), body)
}

// createSourceFor makes a source for s through the API and returns its id.
func (h *harness) createSourceFor(s site, name string) string {
	rec := h.api(s, http.MethodPost, "/jira/api/sources", h.adminClaims(s), map[string]string{"kind": "github", "name": name})
	if rec.Code != http.StatusCreated {
		h.t.Fatalf("create source: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Source struct{ ID string } `json:"source"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		h.t.Fatal(err)
	}
	return out.Source.ID
}

func TestSourcesAPI(t *testing.T) {
	both := func(h *harness) { h.install(acme, jiraKey); h.install(globex, jiraKey) }
	runScenarios(t, []scenario{
		{
			name:  "admin creates a source and sees its URL and secret once",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(acme, http.MethodPost, "/jira/api/sources", h.adminClaims(acme), map[string]string{"kind": "github", "name": "acme/shop"})
			},
			wantStatus:  http.StatusCreated,
			wantContent: []string{`"webhook_url":"https://keyline.example.com/ingest/`, `"secret":"`, `"kind":"github"`},
			check: func(t *testing.T, h *harness) {
				rec := h.api(acme, http.MethodGet, "/jira/api/sources", h.adminClaims(acme), nil)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "acme/shop") || strings.Contains(rec.Body.String(), `"secret"`) || strings.Contains(rec.Body.String(), "/ingest/") {
					t.Errorf("list after create: %d %s (must show the source, never its secret or URL)", rec.Code, rec.Body)
				}
			},
		},
		{
			name:  "non-admin is refused",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(acme, http.MethodPost, "/jira/api/sources", h.contextClaims(acme), map[string]string{"kind": "github"})
			},
			wantStatus: http.StatusForbidden,
			check: func(t *testing.T, h *harness) {
				a, _ := h.store.TenantByClientKey(context.Background(), jiraKey, acme.clientKey)
				if srcs, _ := h.store.ListSources(context.Background(), a); len(srcs) != 0 {
					t.Errorf("refused request created %d sources", len(srcs))
				}
			},
		},
		{
			name:  "iframe token with a computed qsh is refused",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				h.adminClaims(acme)
				return h.api(acme, http.MethodGet, "/jira/api/sources", h.productClaims(acme, http.MethodGet, "/jira/api/sources"), nil)
			},
			wantStatus: http.StatusUnauthorized,
		},
		{
			name:  "unknown kind",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(acme, http.MethodPost, "/jira/api/sources", h.adminClaims(acme), map[string]string{"kind": "svn"})
			},
			wantStatus: http.StatusBadRequest, wantContent: []string{"kind must be one of"},
		},
		{
			name:  "broken JSON",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(acme, http.MethodPost, "/jira/api/sources", h.adminClaims(acme), `{"kind":`)
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name:  "rotate returns a new secret",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				id := h.createSourceFor(acme, "shop")
				return h.api(acme, http.MethodPost, "/jira/api/sources/"+id+"/rotate", h.adminClaims(acme), map[string]int{"overlap_seconds": 3600})
			},
			wantStatus: http.StatusOK, wantContent: []string{`"secret":"`, `"previous_secret_valid_for_seconds":3600`},
		},
		{
			name:  "rotate with a negative overlap",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				id := h.createSourceFor(acme, "shop")
				return h.api(acme, http.MethodPost, "/jira/api/sources/"+id+"/rotate", h.adminClaims(acme), map[string]int{"overlap_seconds": -1})
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name:  "another site's admin cannot rotate, delete or read acme's source",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				id := h.createSourceFor(acme, "acme-secret-repo")
				for _, r := range []struct{ method, path string }{
					{http.MethodPost, "/jira/api/sources/" + id + "/rotate"},
					{http.MethodGet, "/jira/api/sources/" + id + "/deliveries"},
				} {
					if rec := h.api(globex, r.method, r.path, h.adminClaims(globex), nil); rec.Code != http.StatusNotFound {
						h.t.Errorf("globex %s %s: %d, want 404", r.method, r.path, rec.Code)
					}
				}
				return h.api(globex, http.MethodDelete, "/jira/api/sources/"+id, h.adminClaims(globex), nil)
			},
			wantStatus: http.StatusNotFound,
			check: func(t *testing.T, h *harness) {
				rec := h.api(globex, http.MethodGet, "/jira/api/sources", h.adminClaims(globex), nil)
				if strings.Contains(rec.Body.String(), "acme-secret-repo") {
					t.Errorf("globex's list shows acme's source: %s", rec.Body)
				}
				rec = h.api(acme, http.MethodGet, "/jira/api/sources", h.adminClaims(acme), nil)
				if !strings.Contains(rec.Body.String(), "acme-secret-repo") {
					t.Errorf("acme's source is gone after globex's attempts: %s", rec.Body)
				}
			},
		},
		{
			name:  "delete, then the source is gone",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				id := h.createSourceFor(acme, "shop")
				if rec := h.api(acme, http.MethodDelete, "/jira/api/sources/"+id, h.adminClaims(acme), nil); rec.Code != http.StatusNoContent {
					h.t.Fatalf("delete: %d %s", rec.Code, rec.Body)
				}
				return h.api(acme, http.MethodDelete, "/jira/api/sources/"+id, h.adminClaims(acme), nil)
			},
			wantStatus: http.StatusNotFound,
		},
		{
			name:  "empty delivery log",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				id := h.createSourceFor(acme, "shop")
				return h.api(acme, http.MethodGet, "/jira/api/sources/"+id+"/deliveries", h.adminClaims(acme), nil)
			},
			wantStatus: http.StatusOK, wantContent: []string{`"deliveries":[]`},
		},
	})
}
