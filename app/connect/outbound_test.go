package connect

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/tenant"
)

const outSecret = "tenant-shared-secret-0123456789abcdef"

// product is a fake Jira/Confluence on 127.0.0.1 that checks every request
// the way the real product would, and records what it saw.
type product struct {
	t        *testing.T
	srv      *httptest.Server
	basePath string // "/wiki" for Confluence
	mu       sync.Mutex
	seen     []seenRequest
	// respond decides the status of the n-th request (0-based); nil = 200.
	respond func(n int, w http.ResponseWriter) int
}

type seenRequest struct {
	method, path, rawQuery, body, ua string
	claims                           *Claims
	err                              error
}

func newProduct(t *testing.T, basePath string) *product {
	p := &product{t: t, basePath: basePath}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *product) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	seen := seenRequest{method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, body: string(body), ua: r.UserAgent()}
	seen.claims, seen.err = p.check(r)
	p.mu.Lock()
	n := len(p.seen)
	p.seen = append(p.seen, seen)
	p.mu.Unlock()
	if seen.err != nil {
		http.Error(w, seen.err.Error(), http.StatusUnauthorized)
		return
	}
	code := http.StatusOK
	if p.respond != nil {
		code = p.respond(n, w)
	}
	w.WriteHeader(code)
}

// check verifies the request as the product does: header form, HS256 with
// the tenant secret, iss, 180 s lifetime, qsh recomputed from what arrived.
func (p *product) check(r *http.Request) (*Claims, error) {
	if strings.Contains(r.URL.RawQuery, "jwt=") {
		return nil, errors.New("token in query")
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "JWT ") {
		return nil, errors.New("no JWT header")
	}
	claims := &Claims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(fixedClock)).
		ParseWithClaims(strings.TrimPrefix(auth, "JWT "), claims, func(*jwt.Token) (any, error) { return []byte(outSecret), nil })
	if err != nil {
		return nil, err
	}
	want, err := QSH(r.Method, r.URL.Path, r.URL.RawQuery, p.basePath)
	if err != nil {
		return nil, err
	}
	if claims.QSH != want {
		return nil, errors.New("qsh mismatch")
	}
	return claims, nil
}

func (p *product) requests() []seenRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seenRequest(nil), p.seen...)
}

func (p *product) tenant() *tenant.Tenant {
	return &tenant.Tenant{ID: 1, AppKey: testAppKey, ClientKey: testClientKey, BaseURL: p.srv.URL + p.basePath,
		SharedSecret: []byte(outSecret), Installed: true}
}

func TestClientSignsRequests(t *testing.T) {
	tests := []struct {
		name      string
		basePath  string
		send      func(c *Client) (*http.Response, error)
		wantPath  string // canonical path the qsh must cover
		wantQuery string
		wantBody  string
	}{
		{name: "devinfo bulk POST", send: func(c *Client) (*http.Response, error) {
			return c.PostJSON(context.Background(), "/rest/devinfo/0.10/bulk", map[string]any{"repositories": []any{}})
		}, wantPath: "/rest/devinfo/0.10/bulk", wantBody: `{"repositories":[]}`},
		{name: "search GET with query", send: func(c *Client) (*http.Response, error) {
			return c.Get(context.Background(), "/rest/api/3/search?jql=project%20%3D%20OPS+AND+text~%22a%2Bb%22&maxResults=10&fields=summary,status")
		}, wantPath: "/rest/api/3/search", wantQuery: "jql=project%20%3D%20OPS+AND+text~%22a%2Bb%22&maxResults=10&fields=summary,status"},
		{name: "report accounts", send: func(c *Client) (*http.Response, error) {
			return c.PostJSON(context.Background(), "/app/report-accounts/", map[string]any{"accounts": []any{}})
		}, wantPath: "/app/report-accounts", wantBody: `{"accounts":[]}`},
		{name: "confluence strips /wiki", basePath: "/wiki", send: func(c *Client) (*http.Response, error) {
			return c.Get(context.Background(), "/rest/api/content/search?cql=space%3DDEV")
		}, wantPath: "/rest/api/content/search", wantQuery: "cql=space%3DDEV"},
		{name: "Do with own request", send: func(c *Client) (*http.Response, error) {
			req, _ := http.NewRequest(http.MethodDelete, c.base.String()+"/rest/devinfo/0.10/repository/r1?_updateSequenceId=5", nil)
			return c.Do(req)
		}, wantPath: "/rest/devinfo/0.10/repository/r1", wantQuery: "_updateSequenceId=5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProduct(t, tt.basePath)
			c := NewClient(testAppKey, p.tenant(), p.srv.Client(), WithClock(fixedClock))
			resp, err := tt.send(c)
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			resp.Body.Close()
			reqs := p.requests()
			if len(reqs) != 1 {
				t.Fatalf("product saw %d requests", len(reqs))
			}
			got := reqs[0]
			if got.err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("product rejected request: %v (status %d)", got.err, resp.StatusCode)
			}
			if got.claims.Issuer != testAppKey {
				t.Errorf("iss = %q, want app key", got.claims.Issuer)
			}
			if life := got.claims.ExpiresAt.Sub(got.claims.IssuedAt.Time); life != 180*time.Second {
				t.Errorf("exp-iat = %v, want 180s", life)
			}
			if !got.claims.IssuedAt.Equal(fixedClock()) {
				t.Errorf("iat = %v, want now", got.claims.IssuedAt)
			}
			if got.claims.Subject != "" {
				t.Errorf("sub = %q, want none", got.claims.Subject)
			}
			if want := mustQSH(t, got.method, tt.wantPath, tt.wantQuery, ""); got.claims.QSH != want {
				t.Errorf("qsh does not cover %s %s?%s", got.method, tt.wantPath, tt.wantQuery)
			}
			if got.rawQuery != tt.wantQuery {
				t.Errorf("query sent = %q, want %q", got.rawQuery, tt.wantQuery)
			}
			if got.body != tt.wantBody {
				t.Errorf("body = %q, want %q", got.body, tt.wantBody)
			}
			if !strings.Contains(got.ua, testAppKey) {
				t.Errorf("User-Agent %q lacks app key", got.ua)
			}
		})
	}
}

// failTransport fails the test if any request leaves the client.
type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("request sent to %s", r.URL)
	return nil, errors.New("must not be sent")
}

func TestClientRefuses(t *testing.T) {
	jira := &tenant.Tenant{BaseURL: "https://acme.atlassian.net", SharedSecret: []byte(outSecret)}
	wiki := &tenant.Tenant{BaseURL: "https://acme.atlassian.net/wiki", SharedSecret: []byte(outSecret)}
	tests := []struct {
		name   string
		tenant *tenant.Tenant
		method string
		url    string
		body   string
	}{
		{"foreign host", jira, "GET", "https://evil.com/rest/api/3/myself", ""},
		{"suffix-extended host", jira, "GET", "https://acme.atlassian.net.evil.com/rest/api/3/myself", ""},
		{"sibling site", jira, "GET", "https://other.atlassian.net/rest/api/3/myself", ""},
		{"http downgrade", jira, "GET", "http://acme.atlassian.net/rest/api/3/myself", ""},
		{"other port", jira, "GET", "https://acme.atlassian.net:8443/rest", ""},
		{"userinfo", jira, "GET", "https://u:p@acme.atlassian.net/rest", ""},
		{"outside base path", wiki, "GET", "https://acme.atlassian.net/rest/api/3/myself", ""},
		{"base path prefix only", wiki, "GET", "https://acme.atlassian.net/wikix/rest", ""},
		{"dot segments", wiki, "GET", "https://acme.atlassian.net/wiki/../rest/api/3/myself", ""},
		{"encoded dot segments", wiki, "GET", "https://acme.atlassian.net/wiki/%2e%2e/rest", ""},
		{"jwt in query", jira, "GET", "https://acme.atlassian.net/rest?jwt=abc", ""},
		{"empty jwt in query", jira, "GET", "https://acme.atlassian.net/rest?jwt=", ""},
		{"GET with body", jira, "GET", "https://acme.atlassian.net/rest/api/3/search", "{}"},
		{"invalid query escape", jira, "GET", "https://acme.atlassian.net/rest?q=%zz", ""},
		{"tenant without secret", &tenant.Tenant{BaseURL: "https://acme.atlassian.net"}, "GET", "https://acme.atlassian.net/rest", ""},
		{"tenant with bad baseUrl", &tenant.Tenant{BaseURL: "ftp://acme", SharedSecret: []byte("s")}, "GET", "ftp://acme/rest", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(testAppKey, tt.tenant, &http.Client{Transport: failTransport{t}})
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, tt.url, body)
			if err != nil {
				t.Fatal(err)
			}
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
				t.Fatal("Do succeeded, want refusal")
			}
		})
	}
}

func TestClientRelativePathsMustStartWithSlash(t *testing.T) {
	c := NewClient(testAppKey, &tenant.Tenant{BaseURL: "https://acme.atlassian.net", SharedSecret: []byte("s")},
		&http.Client{Transport: failTransport{t}})
	for _, p := range []string{"rest/api", "@evil.com/rest", "//evil.com/rest", ".evil.com/rest", ""} {
		if _, err := c.Get(context.Background(), p); err == nil {
			t.Errorf("Get(%q) succeeded", p)
		}
	}
}

func TestClientRetries(t *testing.T) {
	tests := []struct {
		name       string
		get        bool // a GET instead of a POST
		maxRetries int
		statuses   []int  // per attempt; the last repeats
		retryAfter string // header on throttled answers
		wantWaits  []time.Duration
		wantErr    bool
		wantTries  int
	}{
		{name: "429 Retry-After seconds then success", maxRetries: 3, statuses: []int{429, 200},
			retryAfter: "2", wantWaits: []time.Duration{2 * time.Second}, wantTries: 2},
		{name: "503 HTTP date then success", maxRetries: 3, statuses: []int{503, 200},
			retryAfter: fixedClock().Add(5 * time.Second).UTC().Format(http.TimeFormat),
			wantWaits:  []time.Duration{5 * time.Second}, wantTries: 2},
		{name: "no Retry-After backs off", maxRetries: 3, statuses: []int{429, 429, 429, 200},
			wantWaits: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, wantTries: 4},
		{name: "huge Retry-After capped", maxRetries: 1, statuses: []int{429, 200},
			retryAfter: "86400", wantWaits: []time.Duration{60 * time.Second}, wantTries: 2},
		{name: "always 429 gives up after N+1", maxRetries: 2, statuses: []int{429},
			retryAfter: "1", wantWaits: []time.Duration{time.Second, time.Second}, wantErr: true, wantTries: 3},
		{name: "no retries", maxRetries: 0, statuses: []int{503}, wantErr: true, wantTries: 1},
		{name: "500 not retried", maxRetries: 3, statuses: []int{500}, wantTries: 1},
		{name: "POST 502 not retried", maxRetries: 3, statuses: []int{502}, wantTries: 1},
		{name: "POST 504 not retried", maxRetries: 3, statuses: []int{504}, wantTries: 1},
		{name: "GET 502 and 504 back off then success", get: true, maxRetries: 3, statuses: []int{502, 504, 200},
			wantWaits: []time.Duration{time.Second, 2 * time.Second}, wantTries: 3},
		{name: "GET 500 honours Retry-After", get: true, maxRetries: 3, statuses: []int{500, 200},
			retryAfter: "7", wantWaits: []time.Duration{7 * time.Second}, wantTries: 2},
		{name: "GET always 500 gives up after N+1", get: true, maxRetries: 2, statuses: []int{500},
			wantWaits: []time.Duration{time.Second, 2 * time.Second}, wantErr: true, wantTries: 3},
		{name: "GET always 504 with huge Retry-After capped", get: true, maxRetries: 1, statuses: []int{504},
			retryAfter: "86400", wantWaits: []time.Duration{60 * time.Second}, wantErr: true, wantTries: 2},
		{name: "GET 501 not retried", get: true, maxRetries: 3, statuses: []int{501}, wantTries: 1},
		{name: "GET 404 not retried", get: true, maxRetries: 3, statuses: []int{404}, wantTries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProduct(t, "")
			p.respond = func(n int, w http.ResponseWriter) int {
				code := tt.statuses[min(n, len(tt.statuses)-1)]
				if tt.retryAfter != "" && code != 200 {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				return code
			}
			var waits []time.Duration
			c := NewClient(testAppKey, p.tenant(), p.srv.Client(), WithClock(fixedClock), WithMaxRetries(tt.maxRetries))
			c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }

			send, wantBody := func() (*http.Response, error) {
				return c.PostJSON(context.Background(), "/rest/builds/0.1/bulk", map[string]any{"builds": []any{}})
			}, `{"builds":[]}`
			if tt.get {
				send, wantBody = func() (*http.Response, error) { return c.Get(context.Background(), "/rest/api/3/myself") }, ""
			}
			resp, err := send()
			if tt.wantErr {
				if !errors.Is(err, ErrRetriesExhausted) {
					t.Fatalf("err = %v, want ErrRetriesExhausted", err)
				}
			} else {
				if err != nil {
					t.Fatalf("PostJSON: %v", err)
				}
				resp.Body.Close()
			}
			reqs := p.requests()
			if len(reqs) != tt.wantTries {
				t.Fatalf("attempts = %d, want %d", len(reqs), tt.wantTries)
			}
			for i, r := range reqs {
				if r.err != nil || r.body != wantBody {
					t.Fatalf("attempt %d: err %v, body %q", i, r.err, r.body)
				}
			}
			if len(waits) != len(tt.wantWaits) {
				t.Fatalf("waits = %v, want %v", waits, tt.wantWaits)
			}
			for i := range waits {
				if waits[i] != tt.wantWaits[i] {
					t.Fatalf("waits = %v, want %v", waits, tt.wantWaits)
				}
			}
		})
	}
}

func TestClientResignsEachAttempt(t *testing.T) {
	p := newProduct(t, "")
	p.respond = func(n int, w http.ResponseWriter) int {
		if n == 0 {
			w.Header().Set("Retry-After", "0")
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	}
	now := fixedClock()
	c := NewClient(testAppKey, p.tenant(), p.srv.Client(), WithClock(func() time.Time { return now }))
	c.sleep = func(context.Context, time.Duration) error { now = now.Add(time.Second); return nil }
	resp, err := c.Get(context.Background(), "/rest/api/3/myself")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	reqs := p.requests()
	if len(reqs) != 2 || reqs[1].claims.IssuedAt.Equal(reqs[0].claims.IssuedAt.Time) {
		t.Fatalf("retry reused the first token")
	}
}

// cancelAfter cancels the caller's context once a response has arrived,
// as a caller giving up during the Retry-After wait would.
type cancelAfter struct {
	base   http.RoundTripper
	cancel context.CancelFunc
}

func (c cancelAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	c.cancel()
	return resp, err
}

func TestClientContextCancelledWhileWaiting(t *testing.T) {
	p := newProduct(t, "")
	p.respond = func(_ int, w http.ResponseWriter) int {
		w.Header().Set("Retry-After", "3600")
		return http.StatusTooManyRequests
	}
	ctx, cancel := context.WithCancel(context.Background())
	hc := &http.Client{Transport: cancelAfter{base: p.srv.Client().Transport, cancel: cancel}}
	c := NewClient(testAppKey, p.tenant(), hc, WithClock(fixedClock))
	_, err := c.Get(ctx, "/rest/api/3/myself")
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "wait before retry") {
		t.Fatalf("err = %v, want context.Canceled during the wait", err)
	}
	if n := len(p.requests()); n != 1 {
		t.Fatalf("attempts = %d, want 1", n)
	}
}

func TestSleepContext(t *testing.T) {
	if err := sleepContext(context.Background(), 0); err != nil {
		t.Fatalf("zero wait: %v", err)
	}
	if err := sleepContext(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("short wait: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleepContext(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	if err := sleepContext(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled zero wait: %v", err)
	}
}

func TestClientUnreplayableBodyNotRetried(t *testing.T) {
	p := newProduct(t, "")
	p.respond = func(int, http.ResponseWriter) int { return http.StatusTooManyRequests }
	c := NewClient(testAppKey, p.tenant(), p.srv.Client(), WithClock(fixedClock))
	c.sleep = func(context.Context, time.Duration) error { t.Fatal("slept"); return nil }
	req, _ := http.NewRequest("POST", p.srv.URL+"/rest/x", io.NopCloser(bytes.NewReader([]byte("{}"))))
	req.GetBody = nil
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status = %d, want the 429 handed back", resp.StatusCode)
	}
}

func TestClientUserAgent(t *testing.T) {
	ten := &tenant.Tenant{BaseURL: "https://acme.atlassian.net", SharedSecret: []byte("s")}
	tests := []struct {
		opt  []ClientOption
		want string
	}{
		{nil, "keyline (" + testAppKey + ")"},
		{[]ClientOption{WithUserAgent("keyline/1.2")}, "keyline/1.2 (" + testAppKey + ")"},
		{[]ClientOption{WithUserAgent("keyline/1.2 " + testAppKey)}, "keyline/1.2 " + testAppKey},
	}
	for _, tt := range tests {
		if got := NewClient(testAppKey, ten, nil, tt.opt...).userAgent; got != tt.want {
			t.Errorf("User-Agent = %q, want %q", got, tt.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	c := NewClient(testAppKey, &tenant.Tenant{BaseURL: "https://a.atlassian.net"}, nil,
		WithClock(fixedClock), WithMaxRetryWait(30*time.Second))
	date := func(d time.Duration) string { return fixedClock().Add(d).UTC().Format(http.TimeFormat) }
	tests := []struct {
		header  string
		attempt int
		want    time.Duration
	}{
		{"", 0, time.Second},
		{"", 2, 4 * time.Second},
		{"", 10, 30 * time.Second},
		{"0", 0, 0},
		{"7", 0, 7 * time.Second},
		{" 7 ", 0, 7 * time.Second},
		{"31", 0, 30 * time.Second},
		{"99999999999999", 0, 30 * time.Second},
		{"-5", 1, 2 * time.Second},
		{"soon", 0, time.Second},
		{date(10 * time.Second), 0, 10 * time.Second},
		{date(-10 * time.Second), 0, 0},
		{date(time.Hour), 0, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := c.retryDelay(tt.header, tt.attempt); got != tt.want {
			t.Errorf("retryDelay(%q, %d) = %v, want %v", tt.header, tt.attempt, got, tt.want)
		}
	}
}
