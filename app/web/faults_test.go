package web

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/store"
)

// hangingKeyServer is an install-key server that accepts every request and
// never answers it. Each request it receives is announced on asked.
func hangingKeyServer(t *testing.T) (url string, asked <-chan struct{}) {
	t.Helper()
	ch := make(chan struct{}, 16)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case ch <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	// Cleanups run last first: release the handlers, then close.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL, ch
}

// refusingKeyServer is the URL of a port nothing listens on.
func refusingKeyServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	return url
}

// useKeyServer rewires h's server to fetch install keys from url, with a
// fresh key cache and fetch timeout.
func (h *harness) useKeyServer(url string, timeout time.Duration) {
	h.t.Helper()
	deps := h.server.deps
	fetcher := connect.NewKeyFetcher(url, nil, connect.WithFetchTimeout(timeout), connect.WithFailureTTL(0))
	deps.Installs = connect.NewInstallVerifier(fetcher, deps.AllowedHosts)
	srv, err := New(deps)
	if err != nil {
		h.t.Fatal(err)
	}
	h.server = srv
}

// installRequest is a validly signed install of appKey for s with the given
// shared secret, ready to be served from any goroutine.
func (h *harness) installRequest(s site, appKey, secret string) *http.Request {
	h.t.Helper()
	body := lifecycleBody(s, appKey, "installed")
	body["sharedSecret"] = secret
	b, err := json.Marshal(body)
	if err != nil {
		h.t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, testBase+appBasePath(appKey)+"/installed", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "JWT "+h.signRS256(h.installClaims(s, appKey, "installed"), testKid))
	return req
}

// TestInstallKeyServerFaults: when Atlassian's install-key server hangs or
// refuses connections, an install is answered 503 (the product retries it)
// within the fetch timeout and a small margin, and stores nothing: a new
// site is not created, and a reinstalling one keeps its shared secret.
func TestInstallKeyServerFaults(t *testing.T) {
	const (
		fetchTimeout = 300 * time.Millisecond
		// bound is far above the timeout: it catches a hang, it does not
		// measure speed.
		bound = 3 * time.Second
	)
	const newSecret = "new-secret-the-install-must-not-store-0123456789"
	tests := []struct {
		name      string
		reinstall bool
		keys      func(t *testing.T) (url string, asked <-chan struct{})
	}{
		{name: "hanging key server, first install", keys: hangingKeyServer},
		{name: "hanging key server, reinstall", reinstall: true, keys: hangingKeyServer},
		{name: "key server refusing connections, first install",
			keys: func(t *testing.T) (string, <-chan struct{}) { return refusingKeyServer(t), nil }},
		{name: "key server refusing connections, reinstall", reinstall: true,
			keys: func(t *testing.T) (string, <-chan struct{}) { return refusingKeyServer(t), nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, st *store.Store) {
				h := newHarness(t, st)
				want := ""
				if tt.reinstall {
					h.install(acme, jiraKey)
					want = acme.secret
				}
				url, asked := tt.keys(t)
				h.useKeyServer(url, fetchTimeout)
				req := h.installRequest(acme, jiraKey, newSecret)

				start := time.Now()
				rec := httptest.NewRecorder()
				h.server.Handler().ServeHTTP(rec, req)
				took := time.Since(start)

				if rec.Code != http.StatusServiceUnavailable {
					t.Errorf("status = %d, want 503; body: %s", rec.Code, rec.Body)
				}
				if took > bound {
					t.Errorf("install answered after %v; the fetch timeout is %v", took, fetchTimeout)
				}
				if asked != nil && len(asked) == 0 {
					t.Error("the key server was never asked")
				}
				tenantMustBe(t, h, acme, jiraKey, want)
			})
		})
	}
}

// TestInstallHangLeavesOtherSitesServed: while one site's install waits on
// a hanging key server, another installed site's issue panels and webhook
// deliveries are answered normally, and all of them before the install is.
func TestInstallHangLeavesOtherSitesServed(t *testing.T) {
	// Long enough that everything below runs inside the hang.
	const fetchTimeout = 2 * time.Second
	dbtest.Each(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st)
		hook := h.addSource(globex, "github")
		url, asked := hangingKeyServer(t)
		h.useKeyServer(url, fetchTimeout)

		req := h.installRequest(acme, jiraKey, acme.secret)
		answered := make(chan *httptest.ResponseRecorder, 1)
		go func() {
			rec := httptest.NewRecorder()
			h.server.Handler().ServeHTTP(rec, req)
			answered <- rec
		}()
		select {
		case <-asked:
		case rec := <-answered:
			t.Fatalf("install answered %d before asking the key server", rec.Code)
		case <-time.After(10 * time.Second):
			t.Fatal("the install never asked the key server")
		}

		for i := range 5 {
			if rec := h.iframeGET(globex, "/jira/panel?issueKey=OPS-7&"+iframeQuery("")); rec.Code != http.StatusOK {
				t.Errorf("globex panel %d during the hang: status %d: %s", i, rec.Code, rec.Body)
			}
			if rec := h.pushTo(hook, "during-hang-"+string(rune('a'+i))); rec.Code != http.StatusOK {
				t.Errorf("globex delivery %d during the hang: status %d: %s", i, rec.Code, rec.Body)
			}
		}
		select {
		case rec := <-answered:
			t.Fatalf("the install was answered (%d) before the other site's requests were done: they waited on it", rec.Code)
		default:
		}

		rec := <-answered
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("hanging install: status %d, want 503", rec.Code)
		}
		tenantMustBe(t, h, acme, jiraKey, "")
	})
}
