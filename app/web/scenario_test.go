package web

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
)

// scenario is one request against a freshly wired server, with what the
// response must and must not contain (after PocketBase's ApiScenario).
type scenario struct {
	name        string
	setup       func(h *harness)
	request     func(h *harness) *httptest.ResponseRecorder
	wantStatus  int
	wantContent []string
	notContent  []string
	wantHeaders map[string]string
	check       func(t *testing.T, h *harness)
}

// runScenarios runs every scenario on SQLite and on PostgreSQL, each on an
// empty database.
func runScenarios(t *testing.T, scenarios []scenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, st *store.Store) {
				h := newHarness(t, st)
				if sc.setup != nil {
					sc.setup(h)
				}
				rec := sc.request(h)
				body := rec.Body.String()
				if rec.Code != sc.wantStatus {
					t.Fatalf("status = %d, want %d; body: %s", rec.Code, sc.wantStatus, body)
				}
				for _, s := range sc.wantContent {
					if !strings.Contains(body, s) {
						t.Errorf("body lacks %q; body: %s", s, body)
					}
				}
				for _, s := range sc.notContent {
					if strings.Contains(body, s) {
						t.Errorf("body contains %q, which it must not; body: %s", s, body)
					}
				}
				for k, v := range sc.wantHeaders {
					if got := rec.Header().Get(k); !strings.Contains(got, v) {
						t.Errorf("header %s = %q, want it to contain %q", k, got, v)
					}
				}
				if sc.check != nil {
					sc.check(t, h)
				}
			})
		})
	}
}
