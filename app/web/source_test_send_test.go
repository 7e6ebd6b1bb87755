package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/observe"
	"github.com/keyline/keyline/app/store"
)

// testAnswer is the answer of POST …/test.
type testAnswer struct {
	Sent     string       `json:"sent"`
	Delivery deliveryJSON `json:"delivery"`
}

// sendSigned posts to c's webhook URL, as its provider would, the test
// delivery of kind signed with secret, and returns the status.
func (h *harness) sendSigned(c createdSource, kind, secret string) int {
	h.t.Helper()
	td, err := ingest.NewTestDelivery(kind, []byte(secret), time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	target := c.URL
	if td.Entity != "" {
		target += "/" + td.Entity
	}
	body, _ := io.ReadAll(td.Body)
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
	for k, v := range td.Header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.server.Handler().ServeHTTP(rec, req)
	return rec.Code
}

// pagerDutySecret is a secret in the shape PagerDuty issues.
const pagerDutySecret = "ChGJGwDeuvCDPEMT5uMz4jUiUPOv9ngkIIlTr1VGNLzZSeNaIxXhrlc1hmqLxObd"

func TestSourceTestDelivery(t *testing.T) {
	both := func(h *harness) { h.install(acme, jiraKey); h.install(globex, jiraKey) }
	var src createdSource
	withSource := func(h *harness) { both(h); src = h.createShown(acme, store.SourceGitHub, "Acme GitHub") }
	noLine := func(t *testing.T, h *harness) {
		if got := h.apiDeliveryLog(acme, src.ID); len(got) != 0 {
			t.Errorf("acme's log has %d lines after a refused test, want none: %+v", len(got), got)
		}
	}
	// Each kind's test passes verification and is logged as ignored.
	kinds := []struct {
		kind, event, reason, sent string
	}{
		{store.SourceGitHub, "ping", "ping: the webhook is set up", "GitHub's ping event, signed with X-Hub-Signature-256"},
		{store.SourceGitLab, "Keyline Test Hook", "Keyline does not use GitLab keyline_test events", "X-Gitlab-Token"},
		{store.SourceBitbucket, "keyline:test", "Keyline does not use Bitbucket keyline:test events", "X-Hub-Signature"},
		{store.SourcePagerDuty, "pagey.ping", "only incident events are recorded", "PagerDuty's pagey.ping test event"},
		{store.SourceOpsgenie, "KeylineTest", "Opsgenie KeylineTest does not change an incident", "X-Keyline-Token"},
		{store.SourceGeneric, "ping", "ping: the source is set up", "/ping, signed with X-Keyline-Signature"},
	}
	var scenarios []scenario
	for _, k := range kinds {
		scenarios = append(scenarios, scenario{
			name:  k.kind + ": the test passes verification and is logged as ignored",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				src = h.createShown(acme, k.kind, "Acme "+k.kind)
				if k.kind == store.SourcePagerDuty {
					if rec := h.api(acme, http.MethodPut, secretPath(src.ID), h.adminClaims(acme), map[string]string{"secret": pagerDutySecret}); rec.Code != http.StatusOK {
						h.t.Fatalf("set PagerDuty's secret: %d %s", rec.Code, rec.Body)
					}
				}
				// A real delivery first, so the test line must come out on top.
				if code := h.sendSigned(src, k.kind, h.currentSecret(k.kind, src)); code != http.StatusAccepted {
					h.t.Fatalf("delivery from the provider: %d, want 202", code)
				}
				return h.api(acme, http.MethodPost, testPath(src.ID), h.adminClaims(acme), nil)
			},
			wantStatus: http.StatusCreated,
			wantContent: []string{`"outcome":"ignored"`, `"status":202`, `"delivery_id":"keyline-test-`,
				`"event":"` + k.event + `"`, k.reason, k.sent},
			notContent: []string{pagerDutySecret},
			check: func(t *testing.T, h *harness) {
				var first testAnswer
				log := h.apiDeliveryLog(acme, src.ID)
				if len(log) != 2 || !strings.HasPrefix(log[0].DeliveryID, ingest.TestDeliveryPrefix) ||
					log[0].Outcome != string(store.DeliveryIgnored) || log[0].Status != http.StatusAccepted ||
					log[0].Event != k.event || !strings.Contains(log[0].Reason, k.reason) {
					t.Fatalf("log = %+v, want the test line above the provider's delivery", log)
				}
				// A second test is a new line, never a duplicate of the first.
				rec := h.api(acme, http.MethodPost, testPath(src.ID), h.adminClaims(acme), nil)
				if err := json.Unmarshal(rec.Body.Bytes(), &first); rec.Code != http.StatusCreated || err != nil {
					t.Fatalf("second test: %d %s", rec.Code, rec.Body)
				}
				if strings.Contains(rec.Body.String(), src.Secret) {
					t.Errorf("the answer shows the source's secret: %s", rec.Body)
				}
				log = h.apiDeliveryLog(acme, src.ID)
				if len(log) != 3 || log[0].DeliveryID != first.Delivery.DeliveryID || log[0].DeliveryID == log[1].DeliveryID ||
					log[0].Outcome != string(store.DeliveryIgnored) || !log[0].ReceivedAt.Equal(first.Delivery.ReceivedAt) {
					t.Errorf("log after a second test = %+v, answer %+v; want a new line, as answered", log, first)
				}
				// Nothing but the lines: no issue was linked to anything.
				tn, err := h.store.TenantByClientKey(context.Background(), jiraKey, acme.clientKey)
				if err != nil {
					t.Fatal(err)
				}
				if n, err := h.store.CountIssueLinks(context.Background(), tn, "OPS-7"); err != nil || len(n) != 0 {
					t.Errorf("links after test deliveries: %v %v", n, err)
				}
			},
		})
	}
	scenarios = append(scenarios,
		scenario{
			name:  "a test signs with the current secret after a rotation",
			setup: withSource,
			request: func(h *harness) *httptest.ResponseRecorder {
				if rec := h.api(acme, http.MethodPost, "/jira/api/sources/"+src.ID+"/rotate", h.adminClaims(acme), map[string]int{"overlap_seconds": 0}); rec.Code != http.StatusOK {
					h.t.Fatalf("rotate: %d %s", rec.Code, rec.Body)
				}
				return h.api(acme, http.MethodPost, testPath(src.ID), h.adminClaims(acme), nil)
			},
			wantStatus:  http.StatusCreated,
			wantContent: []string{`"outcome":"ignored"`, `"status":202`},
		},
		scenario{
			name:  "PagerDuty without the secret PagerDuty issued: 409, nothing sent",
			setup: both,
			request: func(h *harness) *httptest.ResponseRecorder {
				src = h.createShown(acme, store.SourcePagerDuty, "Acme PD")
				return h.api(acme, http.MethodPost, testPath(src.ID), h.adminClaims(acme), nil)
			},
			wantStatus:  http.StatusConflict,
			wantContent: []string{"set the signing secret PagerDuty gave you first"},
			check:       noLine,
		},
		scenario{
			name:  "a user who is not a Jira administrator is refused",
			setup: withSource,
			request: func(h *harness) *httptest.ResponseRecorder {
				h.jira.mu.Lock()
				h.jira.admins[acme.clientKey+"/"+testAccount] = false
				h.jira.mu.Unlock()
				return h.api(acme, http.MethodPost, testPath(src.ID), h.contextClaims(acme), nil)
			},
			wantStatus: http.StatusForbidden,
			check:      noLine,
		},
		scenario{
			name:  "another site's admin gets 404 for acme's source",
			setup: withSource,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.api(globex, http.MethodPost, testPath(src.ID), h.adminClaims(globex), nil)
			},
			wantStatus:  http.StatusNotFound,
			wantContent: []string{"no such source"},
			check:       noLine,
		},
		scenario{
			name:  "an iframe token with a computed qsh is refused",
			setup: withSource,
			request: func(h *harness) *httptest.ResponseRecorder {
				h.adminClaims(acme)
				return h.api(acme, http.MethodPost, testPath(src.ID), h.productClaims(acme, http.MethodPost, testPath(src.ID)), nil)
			},
			wantStatus: http.StatusUnauthorized,
			check:      noLine,
		},
		scenario{
			name:  "a deleted source",
			setup: withSource,
			request: func(h *harness) *httptest.ResponseRecorder {
				if rec := h.api(acme, http.MethodDelete, "/jira/api/sources/"+src.ID, h.adminClaims(acme), nil); rec.Code != http.StatusNoContent {
					h.t.Fatalf("delete: %d %s", rec.Code, rec.Body)
				}
				return h.api(acme, http.MethodPost, testPath(src.ID), h.adminClaims(acme), nil)
			},
			wantStatus: http.StatusNotFound,
		},
	)
	runScenarios(t, scenarios)
}

// currentSecret is the secret c's provider signs with: the one Keyline
// showed, or for PagerDuty the one PagerDuty issued.
func (h *harness) currentSecret(kind string, c createdSource) string {
	if kind == store.SourcePagerDuty {
		return pagerDutySecret
	}
	return c.Secret
}

// TestGenericPing checks the generic API's /ping over HTTP, as a CI job
// would call it to check its URL and secret.
func TestGenericPing(t *testing.T) {
	var src createdSource
	setup := func(h *harness) { h.install(acme, jiraKey); src = h.createShown(acme, store.SourceGeneric, "CI") }
	ping := func(h *harness, auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, src.URL+"/ping", nil)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.server.Handler().ServeHTTP(rec, req)
		return rec
	}
	runScenarios(t, []scenario{
		{
			name:        "with the secret: 202, logged as ignored",
			setup:       setup,
			request:     func(h *harness) *httptest.ResponseRecorder { return ping(h, "Bearer "+src.Secret) },
			wantStatus:  http.StatusAccepted,
			wantContent: []string{`"outcome":"ignored"`, `"event":"ping"`, "ping: the source is set up"},
			check: func(t *testing.T, h *harness) {
				if log := h.apiDeliveryLog(acme, src.ID); len(log) != 1 || log[0].Event != "ping" || log[0].Status != http.StatusAccepted {
					t.Errorf("log = %+v, want the ping", log)
				}
			},
		},
		{
			name:        "with another secret: 401",
			setup:       setup,
			request:     func(h *harness) *httptest.ResponseRecorder { return ping(h, "Bearer not-the-secret") },
			wantStatus:  http.StatusUnauthorized,
			wantContent: []string{"does not match"},
		},
	})
}

// TestSourceTestDeliveryRateLimited: a test delivery counts against the
// source's limit like any other, and a refused one says when to retry.
func TestSourceTestDeliveryRateLimited(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st)
		h.withLimits(ingest.LimitConfig{SourceRate: 1, SourceBurst: 1, SiteRate: 1, SiteBurst: 100}, observe.New())
		h.install(acme, jiraKey)
		src := h.createShown(acme, store.SourceGitHub, "Acme GitHub")
		if rec := h.api(acme, http.MethodPost, testPath(src.ID), h.adminClaims(acme), nil); rec.Code != http.StatusCreated {
			t.Fatalf("first test: %d %s, want 201", rec.Code, rec.Body)
		}
		rec := h.api(acme, http.MethodPost, testPath(src.ID), h.adminClaims(acme), nil)
		if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "no test delivery was sent") {
			t.Fatalf("second test: %d %s, want 429 naming why", rec.Code, rec.Body)
		}
		if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("Retry-After = %q, want whole seconds, at least 1", rec.Header().Get("Retry-After"))
		}
		if log := h.apiDeliveryLog(acme, src.ID); len(log) != 1 {
			t.Errorf("log has %d lines, want only the first test's: %+v", len(log), log)
		}
	})
}
