package web

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
	"github.com/keyline/keyline/descriptor"
)

const (
	testBase   = "https://keyline.example.com"
	testPrefix = "com.example.keyline"
	jiraKey    = testPrefix + ".jira"
	confKey    = testPrefix + ".confluence"
	testKid    = "test-kid-1"
	// testAccount is the accountId in the tests' product tokens.
	testAccount = "5be24ad8b1653240376955d2"
)

// harness is a Keyline server wired like production, with a local install
// key server and a store on one of the two databases.
type harness struct {
	t        *testing.T
	store    *store.Store
	server   *Server
	key      *rsa.PrivateKey
	keyHits  atomic.Int64
	keysDown atomic.Bool
	now      time.Time
	jira     *fakeJira
}

func newHarness(t *testing.T, st *store.Store) *harness {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: st, key: key, now: time.Now(), jira: newFakeJira()}
	// On both sites issue 10007 is OPS-7 and the default test user may see it.
	for _, s := range []site{acme, globex} {
		h.jira.addIssue(s.clientKey, "10007", "OPS-7", testAccount)
		h.jira.addIssue(s.clientKey, "10008", "OPS-8")
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.keyHits.Add(1)
		if h.keysDown.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/"+testKid {
			http.NotFound(w, r)
			return
		}
		w.Write(pemKey)
	}))
	t.Cleanup(keys.Close)

	cache := tenant.NewCache(st)
	renderer, err := descriptor.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	fetcher := connect.NewKeyFetcher(keys.URL, keys.Client(), connect.WithFailureTTL(0))
	// Every scenario runs with the issue view cache on, as serve does, so a
	// write that fails to clear it shows up as a stale page.
	views, err := NewIssueViewCache(64)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Deps{
		IssueViews:    views,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store:         st,
		Tenants:       cache,
		Verifier:      connect.NewVerifier(cache),
		Installs:      connect.NewInstallVerifier(fetcher, []string{".atlassian.net", ".jira.com"}),
		Descriptors:   renderer,
		Jira:          h.jira,
		Receiver:      ingest.NewReceiver(st, nil),
		BaseURL:       testBase,
		AppKeyPrefix:  testPrefix,
		AllowedHosts:  []string{".atlassian.net", ".jira.com"},
		RetentionDays: 30,
		Version:       "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	h.server = srv
	return h
}

// site is one Atlassian site as the tests see it.
type site struct {
	clientKey string
	baseURL   string
	secret    string
}

var (
	acme   = site{clientKey: "11111111-aaaa-4bbb-8ccc-000000000001", baseURL: "https://acme.atlassian.net", secret: "acme-shared-secret-0123456789abcdef0123456789"}
	globex = site{clientKey: "22222222-aaaa-4bbb-8ccc-000000000002", baseURL: "https://globex.atlassian.net", secret: "globex-shared-secret-0123456789abcdef012345678"}
)

// lifecycleBody is an installed/uninstalled payload in Atlassian's shape.
func lifecycleBody(s site, appKey, event string) map[string]any {
	product := "jira"
	base := s.baseURL
	if strings.HasSuffix(appKey, ".confluence") {
		product, base = "confluence", s.baseURL+"/wiki"
	}
	b := map[string]any{
		"key":            appKey,
		"clientKey":      s.clientKey,
		"publicKey":      "MIGf...",
		"serverVersion":  "100104",
		"pluginsVersion": "1001.0.0-SNAPSHOT",
		"baseUrl":        base,
		"displayUrl":     base,
		"productType":    product,
		"description":    "Atlassian JIRA at " + base + " ",
		"eventType":      event,
	}
	if event == "installed" {
		b["sharedSecret"] = s.secret
	}
	return b
}

// installClaims are the claims Atlassian puts in a signed install token.
func (h *harness) installClaims(s site, appKey, event string) jwt.MapClaims {
	qsh, err := connect.QSH(http.MethodPost, appBasePath(appKey)+"/"+event, "", appBasePath(appKey))
	if err != nil {
		h.t.Fatal(err)
	}
	return jwt.MapClaims{
		"iss":     s.clientKey,
		"aud":     testBase + appBasePath(appKey),
		"sub":     "5be24ad8b1653240376955d2",
		"qsh":     qsh,
		"iat":     h.now.Unix(),
		"exp":     h.now.Add(3 * time.Minute).Unix(),
		"context": map[string]any{},
	}
}

func appBasePath(appKey string) string {
	if strings.HasSuffix(appKey, ".confluence") {
		return "/confluence"
	}
	return "/jira"
}

func (h *harness) signRS256(claims jwt.MapClaims, kid string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(h.key)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func signHS256(t *testing.T, claims jwt.MapClaims, secret string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends one request through the whole middleware stack.
func (h *harness) do(method, target, authHeader string, body any) *httptest.ResponseRecorder {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = strings.NewReader(string(j))
	}
	req := httptest.NewRequest(method, testBase+target, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authHeader != "" {
		req.Header.Set("Authorization", authHeader)
	}
	rec := httptest.NewRecorder()
	h.server.Handler().ServeHTTP(rec, req)
	return rec
}

// install performs a valid signed install of appKey for s.
func (h *harness) install(s site, appKey string) {
	h.t.Helper()
	tok := h.signRS256(h.installClaims(s, appKey, "installed"), testKid)
	rec := h.do(http.MethodPost, appBasePath(appKey)+"/installed", "JWT "+tok, lifecycleBody(s, appKey, "installed"))
	if rec.Code != http.StatusNoContent {
		h.t.Fatalf("install %s for %s: status %d: %s", appKey, s.baseURL, rec.Code, rec.Body)
	}
}

// iframeQuery is what Jira appends to a module URL besides jwt (spec §6).
func iframeQuery(extra string) string {
	q := "xdm_e=https%3A%2F%2Facme.atlassian.net&xdm_c=channel-com.example.keyline.jira__devops-panel&cp=&xdm_deprecated_addon_key_do_not_use=com.example.keyline.jira&lic=none&cv=1001.0.0-SNAPSHOT"
	if extra != "" {
		q = extra + "&" + q
	}
	return q
}

// productClaims are the claims of a Jira- or Confluence-issued HS256 token for
// method+target (target = path?query relative to the server root).
func (h *harness) productClaims(s site, method, target string) jwt.MapClaims {
	h.t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		h.t.Fatal(err)
	}
	base := "/jira"
	if strings.HasPrefix(u.Path, "/confluence/") {
		base = "/confluence"
	}
	qsh, err := connect.QSH(method, u.Path, u.RawQuery, base)
	if err != nil {
		h.t.Fatal(err)
	}
	return jwt.MapClaims{
		"iss": s.clientKey,
		"sub": "5be24ad8b1653240376955d2",
		"qsh": qsh,
		"iat": h.now.Unix(),
		"exp": h.now.Add(3 * time.Minute).Unix(),
	}
}

// contextClaims are the claims of a token from AP.context.getToken().
func (h *harness) contextClaims(s site) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":     s.clientKey,
		"sub":     "5be24ad8b1653240376955d2",
		"qsh":     "context-qsh",
		"iat":     h.now.Unix(),
		"exp":     h.now.Add(3 * time.Minute).Unix(),
		"context": map[string]any{"user": map[string]any{"accountId": "5be24ad8b1653240376955d2"}},
	}
}

// iframeGET loads target the way a product iframe does: standard parameters
// plus ?jwt= signed with s's secret.
func (h *harness) iframeGET(s site, target string) *httptest.ResponseRecorder {
	h.t.Helper()
	tok := signHS256(h.t, h.productClaims(s, http.MethodGet, target), s.secret)
	return h.do(http.MethodGet, target+"&jwt="+tok, "", nil)
}
