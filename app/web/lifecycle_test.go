package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/tenant"
)

// postInstall sends an installed/uninstalled callback with the given token and body.
func (h *harness) postLifecycle(appKey, event, token string, body any) *httptest.ResponseRecorder {
	return h.do(http.MethodPost, appBasePath(appKey)+"/"+event, "JWT "+token, body)
}

// tenantMustBe checks the stored tenant of s has secret want ("" = no tenant).
func tenantMustBe(t *testing.T, h *harness, s site, appKey, wantSecret string) {
	t.Helper()
	got, err := h.store.TenantByClientKey(context.Background(), appKey, s.clientKey)
	if wantSecret == "" {
		if !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("tenant %s stored (err=%v); the rejected request must store nothing", s.clientKey, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("tenant %s not found: %v", s.clientKey, err)
	}
	if string(got.SharedSecret) != wantSecret {
		t.Fatalf("stored secret = %q, want %q", got.SharedSecret, wantSecret)
	}
}

func TestInstallLifecycle(t *testing.T) {
	installWith := func(mutate func(h *harness, c jwt.MapClaims, body map[string]any) (kid string)) func(h *harness) *httptest.ResponseRecorder {
		return func(h *harness) *httptest.ResponseRecorder {
			c := h.installClaims(acme, jiraKey, "installed")
			body := lifecycleBody(acme, jiraKey, "installed")
			kid := testKid
			if mutate != nil {
				kid = mutate(h, c, body)
			}
			return h.postLifecycle(jiraKey, "installed", h.signRS256(c, kid), body)
		}
	}
	unchanged := func(t *testing.T, h *harness) { tenantMustBe(t, h, acme, jiraKey, acme.secret) }
	nothing := func(t *testing.T, h *harness) { tenantMustBe(t, h, acme, jiraKey, "") }
	attacker := site{clientKey: acme.clientKey, baseURL: "https://acme.atlassian.net", secret: "attacker-chosen-secret-000000000000000000"}

	runScenarios(t, []scenario{
		{
			name:       "valid signed install stores the tenant",
			request:    installWith(nil),
			wantStatus: http.StatusNoContent,
			check:      unchanged,
		},
		{
			name: "aud with a trailing slash is the same audience",
			request: installWith(func(h *harness, c jwt.MapClaims, _ map[string]any) string {
				c["aud"] = testBase + "/jira/"
				return testKid
			}),
			wantStatus: http.StatusNoContent,
			check:      unchanged,
		},
		{
			name: "aud as a one-element array",
			request: installWith(func(h *harness, c jwt.MapClaims, _ map[string]any) string {
				c["aud"] = []string{testBase + "/jira"}
				return testKid
			}),
			wantStatus: http.StatusNoContent,
			check:      unchanged,
		},
		{
			name: "HS256 install is refused",
			request: func(h *harness) *httptest.ResponseRecorder {
				c := h.installClaims(acme, jiraKey, "installed")
				return h.postLifecycle(jiraKey, "installed", signHS256(h.t, c, acme.secret), lifecycleBody(acme, jiraKey, "installed"))
			},
			wantStatus:  http.StatusUnauthorized,
			wantHeaders: map[string]string{"WWW-Authenticate": `JWT realm="com.example.keyline.jira"`},
			check:       nothing,
		},
		{
			name: "missing kid",
			request: installWith(func(*harness, jwt.MapClaims, map[string]any) string {
				return ""
			}),
			wantStatus: http.StatusUnauthorized,
			check:      nothing,
		},
		{
			name: "unknown kid",
			request: installWith(func(*harness, jwt.MapClaims, map[string]any) string {
				return "no-such-kid"
			}),
			wantStatus: http.StatusUnauthorized,
			check:      nothing,
		},
		{
			name: "aud of another app",
			request: installWith(func(h *harness, c jwt.MapClaims, _ map[string]any) string {
				c["aud"] = testBase + "/confluence"
				return testKid
			}),
			wantStatus: http.StatusUnauthorized,
			check:      nothing,
		},
		{
			name: "iss differs from the body's clientKey",
			request: installWith(func(h *harness, c jwt.MapClaims, _ map[string]any) string {
				c["iss"] = globex.clientKey
				return testKid
			}),
			wantStatus: http.StatusUnauthorized,
			check:      nothing,
		},
		{
			name: "body names another app key",
			request: installWith(func(h *harness, _ jwt.MapClaims, b map[string]any) string {
				b["key"] = confKey
				return testKid
			}),
			wantStatus: http.StatusUnauthorized,
			check:      nothing,
		},
		{
			name: "eventType does not match the route",
			request: installWith(func(h *harness, _ jwt.MapClaims, b map[string]any) string {
				b["eventType"] = "uninstalled"
				return testKid
			}),
			wantStatus: http.StatusUnauthorized,
			check:      nothing,
		},
		{
			name: "baseUrl host is not an Atlassian host",
			request: installWith(func(h *harness, _ jwt.MapClaims, b map[string]any) string {
				b["baseUrl"] = "https://acme.atlassian.net.evil.example"
				return testKid
			}),
			wantStatus: http.StatusUnauthorized,
			check:      nothing,
		},
		{
			name: "qsh of another path",
			request: installWith(func(h *harness, c jwt.MapClaims, _ map[string]any) string {
				c["qsh"] = "4a2e1de8" + "00000000000000000000000000000000000000000000000000000000"
				return testKid
			}),
			wantStatus: http.StatusUnauthorized,
			check:      nothing,
		},
		{
			name: "expired install token",
			request: installWith(func(h *harness, c jwt.MapClaims, _ map[string]any) string {
				c["iat"] = h.now.Add(-10 * time.Minute).Unix()
				c["exp"] = h.now.Add(-31 * time.Second).Unix()
				return testKid
			}),
			wantStatus: http.StatusUnauthorized,
			check:      nothing,
		},
		{
			name: "token signed by another RSA key",
			request: func(h *harness) *httptest.ResponseRecorder {
				other := newHarness(h.t, h.store)
				tok := other.signRS256(h.installClaims(acme, jiraKey, "installed"), testKid)
				return h.postLifecycle(jiraKey, "installed", tok, lifecycleBody(acme, jiraKey, "installed"))
			},
			wantStatus: http.StatusUnauthorized,
			check:      nothing,
		},
		{
			name: "key server down answers 503 and stores nothing",
			request: func(h *harness) *httptest.ResponseRecorder {
				h.keysDown.Store(true)
				return installWith(nil)(h)
			},
			wantStatus: http.StatusServiceUnavailable,
			check:      nothing,
		},
		{
			name:  "forged reinstall with HS256 and the current secret leaves the tenant untouched",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				c := h.installClaims(acme, jiraKey, "installed")
				return h.postLifecycle(jiraKey, "installed", signHS256(h.t, c, acme.secret), lifecycleBody(attacker, jiraKey, "installed"))
			},
			wantStatus: http.StatusUnauthorized,
			check:      unchanged,
		},
		{
			name:  "forged reinstall signed by an unknown RSA key leaves the tenant untouched",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				other := newHarness(h.t, h.store)
				tok := other.signRS256(h.installClaims(acme, jiraKey, "installed"), testKid)
				return h.postLifecycle(jiraKey, "installed", tok, lifecycleBody(attacker, jiraKey, "installed"))
			},
			wantStatus: http.StatusUnauthorized,
			check:      unchanged,
		},
		{
			name:  "replayed Confluence install token with a Jira body leaves the tenant untouched",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				tok := h.signRS256(h.installClaims(acme, confKey, "installed"), testKid)
				return h.postLifecycle(jiraKey, "installed", tok, lifecycleBody(attacker, jiraKey, "installed"))
			},
			wantStatus: http.StatusUnauthorized,
			check:      unchanged,
		},
		{
			name:  "reinstall replaces the shared secret",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				body := lifecycleBody(acme, jiraKey, "installed")
				body["sharedSecret"] = "rotated-secret-0123456789abcdef0123456789abcd"
				return h.postLifecycle(jiraKey, "installed", h.signRS256(h.installClaims(acme, jiraKey, "installed"), testKid), body)
			},
			wantStatus: http.StatusNoContent,
			check: func(t *testing.T, h *harness) {
				tenantMustBe(t, h, acme, jiraKey, "rotated-secret-0123456789abcdef0123456789abcd")
				// A page token signed with the old secret fails at once.
				if rec := h.iframeGET(acme, "/jira/panel?issueKey=OPS-1&"+iframeQuery("")); rec.Code != http.StatusUnauthorized {
					t.Errorf("old-secret token after reinstall: status %d, want 401", rec.Code)
				}
				fresh := acme
				fresh.secret = "rotated-secret-0123456789abcdef0123456789abcd"
				if rec := h.iframeGET(fresh, "/jira/panel?issueKey=OPS-1&"+iframeQuery("")); rec.Code != http.StatusOK {
					t.Errorf("new-secret token after reinstall: status %d, want 200: %s", rec.Code, rec.Body)
				}
			},
		},
		{
			name:    "uninstall of an unknown tenant succeeds",
			request: func(h *harness) *httptest.ResponseRecorder { return h.uninstall(acme, jiraKey) },
			check:   nothing, wantStatus: http.StatusNoContent,
		},
		{
			name: "uninstall keeps the tenant but closes its pages",
			setup: func(h *harness) {
				h.install(acme, jiraKey)
				if rec := h.iframeGET(acme, "/jira/panel?issueKey=OPS-1&"+iframeQuery("")); rec.Code != http.StatusOK {
					h.t.Fatalf("panel before uninstall: %d", rec.Code)
				}
			},
			request:    func(h *harness) *httptest.ResponseRecorder { return h.uninstall(acme, jiraKey) },
			wantStatus: http.StatusNoContent,
			check: func(t *testing.T, h *harness) {
				got, err := h.store.TenantByClientKey(context.Background(), jiraKey, acme.clientKey)
				if err != nil || got.Installed || got.UninstalledAt == nil {
					t.Fatalf("tenant after uninstall: %+v, %v; want kept and marked uninstalled", got, err)
				}
				if rec := h.iframeGET(acme, "/jira/panel?issueKey=OPS-1&"+iframeQuery("")); rec.Code != http.StatusUnauthorized {
					t.Errorf("panel after uninstall: status %d, want 401", rec.Code)
				}
				if rec := h.uninstall(acme, jiraKey); rec.Code != http.StatusNoContent {
					t.Errorf("second uninstall: status %d, want 204", rec.Code)
				}
				h.install(acme, jiraKey)
				if rec := h.iframeGET(acme, "/jira/panel?issueKey=OPS-1&"+iframeQuery("")); rec.Code != http.StatusOK {
					t.Errorf("panel after reinstall: status %d, want 200", rec.Code)
				}
			},
		},
		{
			name:  "uninstall signed with HS256 is refused",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				c := h.installClaims(acme, jiraKey, "uninstalled")
				return h.postLifecycle(jiraKey, "uninstalled", signHS256(h.t, c, acme.secret), lifecycleBody(acme, jiraKey, "uninstalled"))
			},
			wantStatus: http.StatusUnauthorized,
			check: func(t *testing.T, h *harness) {
				got, err := h.store.TenantByClientKey(context.Background(), jiraKey, acme.clientKey)
				if err != nil || !got.Installed {
					t.Fatalf("tenant after refused uninstall: %+v, %v; want still installed", got, err)
				}
			},
		},
		{
			name:  "disabled then enabled with HS256 and a computed qsh",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				if rec := h.enable(acme, jiraKey, "disabled"); rec.Code != http.StatusNoContent {
					h.t.Fatalf("disabled: %d %s", rec.Code, rec.Body)
				}
				return h.enable(acme, jiraKey, "enabled")
			},
			wantStatus: http.StatusNoContent,
			check: func(t *testing.T, h *harness) {
				got, _ := h.store.TenantByClientKey(context.Background(), jiraKey, acme.clientKey)
				if got == nil || !got.Enabled {
					t.Fatalf("tenant after enabled: %+v", got)
				}
			},
		},
		{
			name:  "enabled signed by the install key is refused",
			setup: func(h *harness) { h.install(acme, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				c := h.installClaims(acme, jiraKey, "enabled")
				return h.postLifecycle(jiraKey, "enabled", h.signRS256(c, testKid), lifecycleBody(acme, jiraKey, "enabled"))
			},
			wantStatus: http.StatusUnauthorized,
		},
		{
			name:  "enabled for another site's clientKey is refused",
			setup: func(h *harness) { h.install(acme, jiraKey); h.install(globex, jiraKey) },
			request: func(h *harness) *httptest.ResponseRecorder {
				c := h.productClaims(acme, http.MethodPost, "/jira/disabled")
				return h.postLifecycle(jiraKey, "disabled", signHS256(h.t, c, acme.secret), lifecycleBody(globex, jiraKey, "disabled"))
			},
			wantStatus: http.StatusUnauthorized,
			check: func(t *testing.T, h *harness) {
				got, _ := h.store.TenantByClientKey(context.Background(), jiraKey, globex.clientKey)
				if got == nil || !got.Enabled {
					t.Fatalf("globex was disabled by acme's token: %+v", got)
				}
			},
		},
		{
			name: "oversized lifecycle body",
			request: func(h *harness) *httptest.ResponseRecorder {
				return h.do(http.MethodPost, "/jira/installed", "JWT x", `{"a":"`+string(make([]byte, 70<<10))+`"}`)
			},
			wantStatus: http.StatusRequestEntityTooLarge,
			check:      nothing,
		},
	})
}

func (h *harness) uninstall(s site, appKey string) *httptest.ResponseRecorder {
	return h.postLifecycle(appKey, "uninstalled", h.signRS256(h.installClaims(s, appKey, "uninstalled"), testKid), lifecycleBody(s, appKey, "uninstalled"))
}

func (h *harness) enable(s site, appKey, event string) *httptest.ResponseRecorder {
	c := h.productClaims(s, http.MethodPost, appBasePath(appKey)+"/"+event)
	return h.postLifecycle(appKey, event, signHS256(h.t, c, s.secret), lifecycleBody(s, appKey, event))
}
