package observe

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

func TestMetricsLabels(t *testing.T) {
	m := New()
	m.ObserveRequest("/jira/panel", http.MethodGet, 200, 3*time.Millisecond)
	m.ObserveRequest("/jira/panel", http.MethodGet, 204, 4*time.Millisecond)
	m.ObserveRequest("", "BREW", 404, time.Millisecond)
	m.ObserveRequest("/ingest/:token", http.MethodPost, 503, time.Second)
	m.AuthFailure("connect", "token expired")
	m.AuthFailure("connect", "token expired")
	m.Delivery("github", "accepted")
	m.Delivery("", "unknown_source")

	got := scrape(t, m)
	for _, want := range []string{
		`keyline_http_request_duration_seconds_count{method="GET",route="/jira/panel",status="2xx"} 2`,
		`keyline_http_request_duration_seconds_count{method="other",route="unmatched",status="4xx"} 1`,
		`keyline_http_request_duration_seconds_count{method="POST",route="/ingest/:token",status="5xx"} 1`,
		// 3 ms and 4 ms both fall under the 5 ms bucket.
		`keyline_http_request_duration_seconds_bucket{method="GET",route="/jira/panel",status="2xx",le="0.005"} 2`,
		`keyline_auth_failures_total{reason="token expired",surface="connect"} 2`,
		`keyline_ingest_deliveries_total{kind="github",outcome="accepted"} 1`,
		`keyline_ingest_deliveries_total{kind="unknown",outcome="unknown_source"} 1`,
		"go_goroutines ",
		"go_memstats_heap_alloc_bytes ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}

// The in-flight gauge rises while requests are handled and falls as each is
// answered; calling done twice counts once.
func TestInFlight(t *testing.T) {
	m := New()
	a := m.InFlight("ingest")
	b := m.InFlight("ingest")
	c := m.InFlight("page")
	got := scrape(t, m)
	for _, want := range []string{
		`keyline_http_requests_in_flight{class="ingest"} 2`,
		`keyline_http_requests_in_flight{class="page"} 1`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("while in flight: exposition lacks %q", want)
		}
	}
	a()
	a()
	c()
	got = scrape(t, m)
	for _, want := range []string{
		`keyline_http_requests_in_flight{class="ingest"} 1`,
		`keyline_http_requests_in_flight{class="page"} 0`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("after two answers: exposition lacks %q", want)
		}
	}
	b()
	if got := scrape(t, m); !strings.Contains(got, `keyline_http_requests_in_flight{class="ingest"} 0`) {
		t.Error("the gauge did not return to 0")
	}
}

func TestStatusClassAndMethod(t *testing.T) {
	for status, want := range map[int]string{0: "other", 99: "other", 100: "1xx", 200: "2xx", 302: "3xx", 429: "4xx", 599: "5xx", 600: "other"} {
		if got := statusClass(status); got != want {
			t.Errorf("statusClass(%d) = %q, want %q", status, got, want)
		}
	}
	for method, want := range map[string]string{"GET": "GET", "DELETE": "DELETE", "get": "other", "PROPFIND": "other", "": "other"} {
		if got := methodLabel(method); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", method, got, want)
		}
	}
}

func TestAuthFailureReasonsAreBounded(t *testing.T) {
	m := New()
	for i := range maxReasons + 10 {
		m.AuthFailure("connect", fmt.Sprintf("reason %d", i))
	}
	m.AuthFailure("connect", strings.Repeat("x", 81))
	m.AuthFailure("connect", "reason 0") // a known reason keeps its series
	got := scrape(t, m)
	if n := strings.Count(got, "\nkeyline_auth_failures_total{"); n != maxReasons+1 {
		t.Errorf("%d reason series, want %d plus other", n, maxReasons)
	}
	if !strings.Contains(got, `keyline_auth_failures_total{reason="other",surface="connect"} 11`) {
		t.Error("reasons past the bound are not counted as other")
	}
	if !strings.Contains(got, `keyline_auth_failures_total{reason="reason 0",surface="connect"} 2`) {
		t.Error("a known reason lost its series")
	}
}

func TestWatchDB(t *testing.T) {
	m := New()
	if err := m.WatchDB("keyline", nil); err == nil {
		t.Error("WatchDB(nil) succeeded")
	}
	db := sql.OpenDB(nopConnector{})
	defer db.Close()
	db.SetMaxOpenConns(7)
	if err := m.WatchDB("keyline", db); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchDB("keyline", db); err == nil {
		t.Error("registering the same pool twice succeeded")
	}
	if got := scrape(t, m); !strings.Contains(got, `go_sql_max_open_connections{db_name="keyline"} 7`) {
		t.Errorf("pool statistics missing:\n%s", got)
	}
}

// Two registries never share counters: each server has its own.
func TestRegistriesAreIndependent(t *testing.T) {
	a, b := New(), New()
	a.Delivery("gitlab", "ignored")
	if strings.Contains(scrape(t, b), `kind="gitlab"`) {
		t.Error("a delivery counted in one registry shows in another")
	}
}

func TestServerServesOnlyMetrics(t *testing.T) {
	m := New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), m, nil)
	if srv.ReadHeaderTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 {
		t.Errorf("server without timeouts: %+v", srv)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics: %d", code)
	}
	if code, _ := get("/healthz"); code != http.StatusNotFound {
		t.Errorf("/healthz on the metrics server: %d, want 404", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// nopConnector is a database/sql driver that is never dialled: the pool
// statistics need a *sql.DB, not a database.
type nopConnector struct{}

func (nopConnector) Connect(context.Context) (driver.Conn, error) {
	return nil, errors.New("no database in this test")
}
func (nopConnector) Driver() driver.Driver { return nopDriver{} }

type nopDriver struct{}

func (nopDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("no database in this test")
}
