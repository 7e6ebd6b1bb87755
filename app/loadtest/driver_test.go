package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyline/keyline/app/ingest"
)

// fakeKeyline is an ingest endpoint that checks what a real Keyline would:
// the token names a source, the signature verifies over the raw body, the
// event is a push, delivery ids never repeat, and each repository's pushes
// chain (before = the previous after), which fails if two workers shared a
// Repo.
type fakeKeyline struct {
	secrets map[string][]byte // by token
	// fail, when set, picks requests (1-based order) to answer with 503.
	fail func(n int64) bool

	n         atomic.Int64
	mu        sync.Mutex
	seen      map[string]bool   // delivery ids
	heads     map[string]string // after, by repository
	accepted  int
	perSource map[string]int
	problems  []string
}

func newFakeKeyline(sources []Source) *fakeKeyline {
	f := &fakeKeyline{secrets: map[string][]byte{}, seen: map[string]bool{}, heads: map[string]string{}, perSource: map[string]int{}}
	for _, s := range sources {
		f.secrets[s.Token] = []byte(s.Secret)
	}
	return f
}

func (f *fakeKeyline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.n.Add(1)
	token, ok := strings.CutPrefix(r.URL.Path, "/ingest/")
	secret, known := f.secrets[token]
	if r.Method != http.MethodPost || !ok || !known {
		http.Error(w, `{"error":"no webhook source has this URL"}`, http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, `{"error":"read"}`, http.StatusBadRequest)
		return
	}
	if err := ingest.VerifySignature(ingest.KindGitHub, r.Header, body, [][]byte{secret}); err != nil {
		f.problem("signature: %v", err)
		http.Error(w, `{"error":"the signature does not match this source's secret"}`, http.StatusUnauthorized)
		return
	}
	var push struct {
		Before, After string
		Commits       []json.RawMessage
		Repository    struct {
			FullName string `json:"full_name"`
		}
	}
	if err := json.Unmarshal(body, &push); err != nil {
		f.problem("body: %v", err)
		http.Error(w, `{"error":"malformed"}`, http.StatusBadRequest)
		return
	}
	if f.fail != nil && f.fail(n) {
		http.Error(w, `{"error":"the delivery could not be stored; retry later"}`, http.StatusServiceUnavailable)
		return
	}
	id := r.Header.Get("X-GitHub-Delivery")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Header.Get("X-GitHub-Event") != "push":
		f.problems = append(f.problems, "event "+r.Header.Get("X-GitHub-Event"))
	case id == "" || f.seen[id]:
		f.problems = append(f.problems, "delivery id repeated or empty: "+id)
	case f.heads[push.Repository.FullName] != "" && f.heads[push.Repository.FullName] != push.Before:
		f.problems = append(f.problems, "push does not chain in "+push.Repository.FullName)
	case len(push.Commits) != 3:
		f.problems = append(f.problems, fmt.Sprintf("%d commits, want 3", len(push.Commits)))
	}
	f.seen[id] = true
	f.heads[push.Repository.FullName] = push.After
	f.accepted++
	f.perSource[token]++
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"outcome":"accepted","event":"push","delivery_id":%q}`, id)
}

func (f *fakeKeyline) problem(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func testSources() []Source {
	return []Source{
		{Token: "tok-one-secret-token", Secret: "secret-one"},
		{Token: "tok-two-secret-token", Secret: "secret-two"},
		{Token: "tok-three-secret-token", Secret: "secret-three"},
	}
}

// serve runs h on 127.0.0.1 (httptest's default) until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func pushConfig(t *testing.T, baseURL string, sources []Source) Config {
	t.Helper()
	gen, err := GitHubPushes{BaseURL: baseURL, Sources: sources, Commits: 3, RunID: "test"}.Generator()
	if err != nil {
		t.Fatal(err)
	}
	return Config{Client: NewClient(4, 5*time.Second), Concurrency: 4, Warmup: 50 * time.Millisecond,
		Duration: 300 * time.Millisecond, Generator: gen, Check: CheckIngest}
}

func TestRunDeliversSignedChainedPushes(t *testing.T) {
	sources := testSources()
	fake := newFakeKeyline(sources)
	rep, err := Run(context.Background(), pushConfig(t, serve(t, fake), sources))
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("run failed: %v", err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	for _, p := range fake.problems {
		t.Error(p)
	}
	if rep.Sent == 0 || rep.OK != rep.Sent || rep.Failed != 0 || rep.TransportErrors != 0 {
		t.Errorf("report: sent %d ok %d failed %d transport %d", rep.Sent, rep.OK, rep.Failed, rep.TransportErrors)
	}
	if rep.WarmupRequests == 0 {
		t.Error("no warm-up requests were sent")
	}
	// The server saw every request, warm-up included; the report counts
	// only the measured ones.
	if fake.accepted != rep.Sent+rep.WarmupRequests {
		t.Errorf("server accepted %d, report has %d measured + %d warm-up", fake.accepted, rep.Sent, rep.WarmupRequests)
	}
	if rep.Status[200] != rep.Sent || rep.Labels["accepted"] != rep.Sent {
		t.Errorf("status %v, outcomes %v", rep.Status, rep.Labels)
	}
	for _, s := range sources {
		if fake.perSource[s.Token] == 0 {
			t.Errorf("source %s got no delivery", s.Token)
		}
	}
	if rep.Throughput <= 0 || rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.Latency.P99 > rep.Latency.Max {
		t.Errorf("throughput %v, latency %+v", rep.Throughput, rep.Latency)
	}
	if rep.Window < 300*time.Millisecond {
		t.Errorf("window %v shorter than the duration", rep.Window)
	}
}

func TestRunReportsRefusedResponses(t *testing.T) {
	sources := testSources()
	fake := newFakeKeyline(sources)
	fake.fail = func(n int64) bool { return n%5 == 0 }
	cfg := pushConfig(t, serve(t, fake), sources)
	cfg.Warmup = 0
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status[503] == 0 || rep.Failed != rep.Status[503] || rep.OK != rep.Status[200] {
		t.Fatalf("status %v, failed %d, ok %d", rep.Status, rep.Failed, rep.OK)
	}
	runErr := rep.Err()
	if runErr == nil {
		t.Fatal("a run with 503 answers did not fail")
	}
	for _, want := range []string{"responses failed", "503: ", "retry later"} {
		if !strings.Contains(runErr.Error(), want) {
			t.Errorf("error %q does not mention %q", runErr, want)
		}
	}
	if rep.Labels["status 503"] != rep.Status[503] {
		t.Errorf("outcomes %v", rep.Labels)
	}
}

func TestRunReportsTransportErrorsWithoutTokens(t *testing.T) {
	// A port that was just listened on and closed refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sources := testSources()
	cfg := pushConfig(t, "http://"+addr, sources)
	cfg.Warmup, cfg.Duration = 0, 100*time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.TransportErrors == 0 || rep.TransportErrors != rep.Sent || rep.OK != 0 {
		t.Fatalf("sent %d, transport errors %d, ok %d", rep.Sent, rep.TransportErrors, rep.OK)
	}
	runErr := rep.Err()
	if runErr == nil || !strings.Contains(runErr.Error(), "transport errors") {
		t.Fatalf("error = %v, want one naming transport errors", runErr)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{runErr.Error(), text.String(), string(js)} {
		if strings.Contains(out, "secret-token") {
			t.Errorf("output names a source token: %s", out)
		}
	}
}

func TestRunGeneratorErrorFailsTheRun(t *testing.T) {
	cfg := Config{Concurrency: 2, Duration: 50 * time.Millisecond, Generator: func(int) NextFunc {
		return func() (*http.Request, error) { return nil, errors.New("out of ideas") }
	}}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.GeneratorErrors != 2 || rep.Err() == nil || !strings.Contains(rep.Err().Error(), "could not be built") {
		t.Fatalf("generator errors %d, err %v", rep.GeneratorErrors, rep.Err())
	}
}

// TestRunPaced checks the pacing by counting, not by timing: at 200/s the
// pacer has exactly 20 send slots in a 100ms warm-up and 80 in the 400ms
// after it, however fast or slow the machine is. The run cannot finish
// before the last slot's time.
func TestRunPaced(t *testing.T) {
	sources := testSources()
	fake := newFakeKeyline(sources)
	cfg := pushConfig(t, serve(t, fake), sources)
	cfg.Rate, cfg.Warmup, cfg.Duration = 200, 100*time.Millisecond, 400*time.Millisecond
	start := time.Now()
	rep, err := Run(context.Background(), cfg)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if rep.WarmupRequests != 20 || rep.Sent != 80 {
		t.Errorf("warm-up %d, measured %d; want 20 and 80", rep.WarmupRequests, rep.Sent)
	}
	if elapsed < 495*time.Millisecond {
		t.Errorf("run took %v, less than the last slot's 495ms: pacing ignored", elapsed)
	}
	// At most 80 in a window of at least 400ms; the lower bound only
	// guards against a gross mistake.
	if rep.Throughput > 200.001 || rep.Throughput < 20 {
		t.Errorf("throughput %.1f/s at a rate of 200/s", rep.Throughput)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(50 * time.Millisecond):
		}
		w.Write([]byte(`{"outcome":"accepted"}`))
	})
	cfg := pushConfig(t, serve(t, slow), testSources())
	cfg.Warmup, cfg.Duration = 0, time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := Run(ctx, cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("cancelled run took %v", time.Since(start))
	}
	if rep.TransportErrors != 0 || rep.Failed != 0 {
		t.Errorf("cancellation counted as failures: transport %d, failed %d", rep.TransportErrors, rep.Failed)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	gen := func(int) NextFunc { return nil }
	for name, cfg := range map[string]Config{
		"no workers":      {Duration: time.Second, Generator: gen},
		"no duration":     {Concurrency: 1, Generator: gen},
		"negative rate":   {Concurrency: 1, Duration: time.Second, Rate: -1, Generator: gen},
		"no generator":    {Concurrency: 1, Duration: time.Second},
		"negative warmup": {Concurrency: 1, Duration: time.Second, Warmup: -1, Generator: gen},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
