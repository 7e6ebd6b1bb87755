package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// hook is a webhook source of one site, as the tests deliver to it.
type hook struct {
	tenant        *tenant.Tenant
	id            string
	kind          string
	token, secret string
}

// addSource installs the Jira app for s and gives it a source of kind.
func (h *harness) addSource(s site, kind string) hook {
	h.t.Helper()
	ctx := context.Background()
	t, err := h.store.TenantByClientKey(ctx, jiraKey, s.clientKey)
	if err != nil {
		h.install(s, jiraKey)
		if t, err = h.store.TenantByClientKey(ctx, jiraKey, s.clientKey); err != nil {
			h.t.Fatal(err)
		}
	}
	src, token, secret, err := h.store.CreateSource(ctx, t, kind, "")
	if err != nil {
		h.t.Fatal(err)
	}
	return hook{tenant: t, id: src.ID, kind: kind, token: token, secret: secret}
}

// fixture reads a payload from the ingest package's fixtures.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "ingest", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signed returns the headers kind's provider sends for body signed with secret.
func signed(kind, secret string, body []byte) http.Header {
	h := http.Header{}
	key := []byte(secret)
	switch kind {
	case ingest.KindGitHub:
		h.Set(ingest.HeaderGitHubSignature, ingest.SignatureSHA256(key, body))
	case ingest.KindBitbucket:
		h.Set(ingest.HeaderBitbucketSignature, ingest.SignatureSHA256(key, body))
	case ingest.KindGitLab:
		h.Set(ingest.HeaderGitLabToken, secret)
	case ingest.KindPagerDuty:
		m := hmac.New(sha256.New, key)
		m.Write(body)
		h.Set(ingest.HeaderPagerDutySignature, "v1=0000,v1="+hex.EncodeToString(m.Sum(nil)))
	case ingest.KindOpsgenie:
		h.Set(ingest.HeaderKeylineToken, secret)
	case ingest.KindGeneric:
		h.Set("Authorization", "Bearer "+secret)
	}
	return h
}

// sendHook posts body to a source's URL (plus "/"+entity) with headers.
func (h *harness) sendHook(token, entity string, headers http.Header, body []byte) *httptest.ResponseRecorder {
	target := "/ingest/" + token
	if entity != "" {
		target += "/" + entity
	}
	req := httptest.NewRequest(http.MethodPost, testBase+target, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.server.Handler().ServeHTTP(rec, req)
	return rec
}

func withHeader(h http.Header, kv ...string) http.Header {
	h = h.Clone()
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// pushTo delivers the GitHub push fixture to a GitHub source.
func (h *harness) pushTo(k hook, deliveryID string) *httptest.ResponseRecorder {
	body := fixture(h.t, "github/push.json")
	return h.sendHook(k.token, "", withHeader(signed(k.kind, k.secret, body), "X-GitHub-Event", "push", "X-GitHub-Delivery", deliveryID), body)
}

func (h *harness) links(k hook, key string) []store.Link {
	h.t.Helper()
	l, err := h.store.IssueLinks(context.Background(), k.tenant, key)
	if err != nil {
		h.t.Fatal(err)
	}
	return l
}

func (h *harness) deliveryLog(k hook) []store.Delivery {
	h.t.Helper()
	d, err := h.store.ListDeliveries(context.Background(), k.tenant, k.id, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func TestIngestEndpoint(t *testing.T) {
	var k hook // the scenario's acme GitHub source, set by setup
	acmeGitHub := func(h *harness) { k = h.addSource(acme, ingest.KindGitHub) }
	nothingStored := func(status int, reason string) func(t *testing.T, h *harness) {
		return func(t *testing.T, h *harness) {
			if l := h.links(k, "OPS-7"); len(l) != 0 {
				t.Errorf("a refused delivery stored links: %+v", l)
			}
			log := h.deliveryLog(k)
			if len(log) != 1 || log[0].Outcome != store.DeliveryRejected || log[0].Status != status || !strings.Contains(log[0].Reason, reason) {
				t.Errorf("delivery log %+v, want one rejected line (%d, %q)", log, status, reason)
			}
		}
	}
	runScenarios(t, []scenario{
		{
			name:  "signed GitHub push is stored and linked",
			setup: acmeGitHub,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.pushTo(k, "d-1")
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`"outcome":"accepted"`, `"event":"push"`, `"delivery_id":"d-1"`},
			check: func(t *testing.T, h *harness) {
				if l := h.links(k, "OPS-7"); len(l) == 0 {
					t.Error("no links for OPS-7 after the push")
				}
				if log := h.deliveryLog(k); len(log) != 1 || log[0].Outcome != store.DeliveryAccepted {
					t.Errorf("delivery log %+v", log)
				}
			},
		},
		{
			name: "redelivery is a no-op",
			setup: func(h *harness) {
				acmeGitHub(h)
				if rec := h.pushTo(k, "d-1"); rec.Code != http.StatusOK {
					t.Fatalf("first delivery: %d %s", rec.Code, rec.Body)
				}
			},
			request:     func(h *harness) *httptest.ResponseRecorder { return h.pushTo(k, "d-1") },
			wantStatus:  http.StatusOK,
			wantContent: []string{`"outcome":"duplicate"`},
			check: func(t *testing.T, h *harness) {
				log := h.deliveryLog(k)
				if len(log) != 2 || log[0].Outcome != store.DeliveryDuplicate {
					t.Errorf("delivery log %+v, want accepted then duplicate", log)
				}
			},
		},
		{
			name:  "unknown token is 404 and stores nothing",
			setup: acmeGitHub,
			request: func(h *harness) *httptest.ResponseRecorder {
				body := fixture(h.t, "github/push.json")
				return h.sendHook("not-a-token", "", withHeader(signed(ingest.KindGitHub, k.secret, body), "X-GitHub-Event", "push"), body)
			},
			wantStatus:  http.StatusNotFound,
			wantContent: []string{`"error":"no webhook source has this URL"`},
			check: func(t *testing.T, h *harness) {
				if log := h.deliveryLog(k); len(log) != 0 {
					t.Errorf("delivery log %+v", log)
				}
			},
		},
		{
			name:  "wrong signature is 401",
			setup: acmeGitHub,
			request: func(h *harness) *httptest.ResponseRecorder {
				body := fixture(h.t, "github/push.json")
				return h.sendHook(k.token, "", withHeader(signed(ingest.KindGitHub, "another-secret-entirely", body), "X-GitHub-Event", "push", "X-GitHub-Delivery", "d-bad"), body)
			},
			wantStatus:  http.StatusUnauthorized,
			wantContent: []string{"signature does not match"},
			check:       nothingStored(http.StatusUnauthorized, "signature does not match"),
		},
		{
			name:  "missing signature is 401 and says which header",
			setup: acmeGitHub,
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.sendHook(k.token, "", http.Header{"X-Github-Event": {"push"}}, fixture(h.t, "github/push.json"))
			},
			wantStatus:  http.StatusUnauthorized,
			wantContent: []string{ingest.HeaderGitHubSignature},
			check:       nothingStored(http.StatusUnauthorized, "no signature"),
		},
		{
			name:  "body over 5 MiB is 413",
			setup: acmeGitHub,
			request: func(h *harness) *httptest.ResponseRecorder {
				body := append([]byte(`{"ref":"`), bytes.Repeat([]byte("a"), ingest.MaxBodyBytes)...)
				return h.sendHook(k.token, "", withHeader(signed(ingest.KindGitHub, k.secret, body), "X-GitHub-Event", "push"), body)
			},
			wantStatus: http.StatusRequestEntityTooLarge,
			check:      nothingStored(http.StatusRequestEntityTooLarge, "larger than"),
		},
		{
			name:  "signed but broken JSON is 400",
			setup: acmeGitHub,
			request: func(h *harness) *httptest.ResponseRecorder {
				body := []byte(`{"ref": "refs/heads/main", "commits": [`)
				return h.sendHook(k.token, "", withHeader(signed(ingest.KindGitHub, k.secret, body), "X-GitHub-Event", "push"), body)
			},
			wantStatus:  http.StatusBadRequest,
			wantContent: []string{"malformed payload"},
			check:       nothingStored(http.StatusBadRequest, "malformed"),
		},
		{
			name:  "an event Keyline does not use is 202 and logged as ignored",
			setup: acmeGitHub,
			request: func(h *harness) *httptest.ResponseRecorder {
				body := fixture(h.t, "github/ping.json")
				return h.sendHook(k.token, "", withHeader(signed(ingest.KindGitHub, k.secret, body), "X-GitHub-Event", "ping", "X-GitHub-Delivery", "p-1"), body)
			},
			wantStatus:  http.StatusAccepted,
			wantContent: []string{`"outcome":"ignored"`},
			check: func(t *testing.T, h *harness) {
				if log := h.deliveryLog(k); len(log) != 1 || log[0].Outcome != store.DeliveryIgnored || log[0].Status != http.StatusAccepted {
					t.Errorf("delivery log %+v", log)
				}
			},
		},
		{
			name:  "a provider source refuses a generic path",
			setup: acmeGitHub,
			request: func(h *harness) *httptest.ResponseRecorder {
				body := fixture(h.t, "generic/build.json")
				return h.sendHook(k.token, "builds", signed(ingest.KindGitHub, k.secret, body), body)
			},
			wantStatus: http.StatusNotFound,
			check:      nothingStored(http.StatusNotFound, "nothing after it"),
		},
		{
			name:  "another site's secret does not open this site's source",
			setup: func(h *harness) { acmeGitHub(h); h.addSource(globex, ingest.KindGitHub) },
			request: func(h *harness) *httptest.ResponseRecorder {
				g := h.addSource(globex, ingest.KindGitHub)
				body := fixture(h.t, "github/push.json")
				return h.sendHook(k.token, "", withHeader(signed(ingest.KindGitHub, g.secret, body), "X-GitHub-Event", "push"), body)
			},
			wantStatus: http.StatusUnauthorized,
			notContent: []string{"accepted"},
			check:      nothingStored(http.StatusUnauthorized, "signature"),
		},
		{
			name: "one site's deliveries never show on another",
			setup: func(h *harness) {
				acmeGitHub(h)
				if rec := h.pushTo(k, "d-1"); rec.Code != http.StatusOK {
					t.Fatalf("push: %d %s", rec.Code, rec.Body)
				}
			},
			request: func(h *harness) *httptest.ResponseRecorder {
				// Globex's panel links API for the same key shows nothing of Acme's.
				h.install(globex, jiraKey)
				return h.api(globex, http.MethodGet, "/jira/api/issues/OPS-7/links?issueId=10007", h.contextClaims(globex), nil)
			},
			wantStatus:  http.StatusOK,
			wantContent: []string{`"commit":0`, `"branch":0`},
			notContent:  []string{`"commit":1`, `"branch":1`},
		},
	})
}

// TestIngestEveryFixture delivers every provider fixture, signed as its
// provider signs, to a source of its kind: each is stored or ignored, never
// refused.
func TestIngestEveryFixture(t *testing.T) {
	events := map[string]string{
		"github/check_suite_completed.json": "check_suite", "github/deployment_status_in_progress.json": "deployment_status",
		"github/deployment_status_success.json": "deployment_status", "github/issues_incident.json": "issues",
		"github/ping.json": "ping", "github/pull_request_closed_merged.json": "pull_request",
		"github/pull_request_review_approved.json": "pull_request_review", "github/push.json": "push",
		"github/workflow_run_completed_failure.json": "workflow_run", "github/workflow_run_completed_success.json": "workflow_run",
		"github/workflow_run_in_progress.json": "workflow_run", "github/push_hostile.json": "push",
		"github/create_branch.json": "create", "github/delete_branch.json": "delete",
		"gitlab/deployment_success.json": "Deployment Hook", "gitlab/merge_request_merged.json": "Merge Request Hook",
		"gitlab/pipeline_success.json": "Pipeline Hook", "gitlab/push.json": "Push Hook",
		"bitbucket/commit_status_successful.json": "repo:commit_status_updated", "bitbucket/pullrequest_fulfilled.json": "pullrequest:fulfilled",
		"bitbucket/repo_push.json": "repo:push",
	}
	files, err := filepath.Glob(filepath.Join("..", "ingest", "testdata", "*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	dbtest := func(t *testing.T, fn func(t *testing.T, h *harness)) {
		runScenarios(t, []scenario{{name: "all", request: func(h *harness) *httptest.ResponseRecorder {
			fn(t, h)
			return httptest.NewRecorder()
		}, wantStatus: http.StatusOK}})
	}
	dbtest(t, func(t *testing.T, h *harness) {
		hooks := map[string]hook{}
		for _, f := range files {
			kind := filepath.Base(filepath.Dir(f))
			name := kind + "/" + filepath.Base(f)
			if _, ok := hooks[kind]; !ok {
				hooks[kind] = h.addSource(acme, kind)
			}
			k := hooks[kind]
			body := fixture(t, name)
			headers := signed(kind, k.secret, body)
			entity := ""
			switch kind {
			case ingest.KindGitHub:
				headers.Set("X-GitHub-Event", events[name])
			case ingest.KindGitLab:
				headers.Set("X-Gitlab-Event", events[name])
			case ingest.KindBitbucket:
				headers.Set("X-Event-Key", events[name])
			case ingest.KindGeneric:
				entity = strings.TrimSuffix(filepath.Base(f), ".json") + "s"
			}
			rec := h.sendHook(k.token, entity, headers, body)
			if rec.Code != http.StatusOK && rec.Code != http.StatusAccepted {
				t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
			}
		}
		for kind, k := range hooks {
			for _, d := range h.deliveryLog(k) {
				if !slices.Contains([]store.DeliveryOutcome{store.DeliveryAccepted, store.DeliveryIgnored}, d.Outcome) {
					t.Errorf("%s: log line %+v", kind, d)
				}
			}
		}
	})
}

// TestIngestHostileContentIsStoredInert delivers a push whose messages carry
// markup, control characters and a javascript: URL, then branch creation
// and deletion: what is stored is plain text, the URL is dropped, and the
// keys are linked.
func TestIngestHostileContentIsStoredInert(t *testing.T) {
	runScenarios(t, []scenario{{
		name: "hostile push",
		request: func(h *harness) *httptest.ResponseRecorder {
			k := h.addSource(acme, ingest.KindGitHub)
			send := func(event, file string) *httptest.ResponseRecorder {
				body := fixture(h.t, "github/"+file)
				return h.sendHook(k.token, "", withHeader(signed(k.kind, k.secret, body), "X-GitHub-Event", event), body)
			}
			for _, d := range [][2]string{{"create", "create_branch.json"}, {"delete", "delete_branch.json"}} {
				if rec := send(d[0], d[1]); rec.Code != http.StatusOK {
					h.t.Fatalf("%s: %d %s", d[0], rec.Code, rec.Body)
				}
			}
			ctx := context.Background()
			br, err := h.store.Branch(ctx, k.tenant, store.BranchID(k.id, "123456", "feature/OPS-12-search"))
			if err != nil || !br.Deleted {
				h.t.Errorf("branch after delete event: %+v, %v", br, err)
			}
			rec := send("push", "push_hostile.json")
			c, err := h.store.Commit(ctx, k.tenant, "4444444444444444444444444444444444444444")
			if err != nil {
				h.t.Fatal(err)
			}
			if strings.ContainsAny(c.Message, "\x00\x1b") || c.URL != "" || strings.Contains(c.Author.Email, "\x00") {
				h.t.Errorf("stored commit %+v", c)
			}
			for _, key := range []string{"OPS-9", "OPS-10", "OPS-11", "WEB_2-3"} {
				if len(h.links(k, key)) == 0 {
					h.t.Errorf("no links for %s", key)
				}
			}
			for _, key := range []string{"OPS-012", "CVE-2025", "ABC-0"} {
				if len(h.links(k, key)) != 0 {
					h.t.Errorf("links for a false key %s", key)
				}
			}
			return rec
		},
		wantStatus:  http.StatusOK,
		wantContent: []string{`"outcome":"accepted"`},
		notContent:  []string{"<script>", "javascript:"},
	}})
}
