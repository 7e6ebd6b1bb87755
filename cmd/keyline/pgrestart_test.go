//go:build unix

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/loadtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// Shape of the restart test's load. The pace keeps it sustained but modest
// on a shared 2-core machine; the sources are enough that no source's
// delivery log (which keeps its newest store.MaxDeliveriesPerSource lines)
// drops a line the test must find afterwards.
const (
	restartWorkers = 4
	restartPace    = 20 * time.Millisecond // between one worker's deliveries
	restartSources = 64
	// restartBudget stops the load before any source could pass its log's
	// limit; reaching it fails the test.
	restartBudget = restartSources * (store.MaxDeliveriesPerSource - 2*restartWorkers)
	// restartWait bounds each wait for the system to get somewhere: ready,
	// failing, recovered.
	restartWait = 30 * time.Second
)

// sentDelivery is one push the test sent and what came back.
type sentDelivery struct {
	id, commit, source string
	status             int // 0: no HTTP answer
	label              string
	err                error
	sent               time.Time
}

// deliveryLog collects the sent deliveries of every worker, with running
// counts the test waits on.
type deliveryLog struct {
	mu   sync.Mutex
	all  []sentDelivery
	ok   atomic.Int64
	fail atomic.Int64 // 5xx or no answer
	// lastOKSent is when the most recent delivery answered 2xx was sent
	// (UnixNano), to tell a recovery from an answer already on its way.
	lastOKSent atomic.Int64
}

func (l *deliveryLog) add(d sentDelivery) {
	l.mu.Lock()
	l.all = append(l.all, d)
	l.mu.Unlock()
	switch {
	case d.status/100 == 2:
		l.ok.Add(1)
		for {
			prev := l.lastOKSent.Load()
			if d.sent.UnixNano() <= prev || l.lastOKSent.CompareAndSwap(prev, d.sent.UnixNano()) {
				break
			}
		}
	case d.status == 0 || d.status/100 == 5:
		l.fail.Add(1)
	}
}

func (l *deliveryLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

// TestPostgresRestartUnderIngestion runs `keyline serve` in-process on a
// PostgreSQL server of the test's own, drives signed GitHub pushes at it
// from several workers, and stops PostgreSQL twice under that load: once as
// an administrator's restart (pg_ctl stop -m fast) and once as a crash (-m
// immediate). Each time /readyz must say 503 during the outage, deliveries
// must fail with 5xx, and Keyline must start storing again after PostgreSQL
// is back, without being restarted. Afterwards every delivery answered 2xx
// must be in the database (its delivery-log line and its commit), and every
// one that is not must have been answered 5xx or not at all: never 2xx,
// never 4xx.
func TestPostgresRestartUnderIngestion(t *testing.T) {
	pg := dbtest.PrivatePostgres(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	base := "http://" + addr
	env := map[string]string{
		"KEYLINE_ADDR":         addr,
		"KEYLINE_DATABASE_URL": pg.URL(),
		"KEYLINE_SECRET_KEY":   hex.EncodeToString(key),
		"KEYLINE_BASE_URL":     "https://keyline.example.com",
		"KEYLINE_LOG_LEVEL":    "warn",
		// The load runs near the default per-site rate limit; a 429 here
		// would be the limit's doing, not the outage's.
		"KEYLINE_INGEST_SITE_RATE":   "0",
		"KEYLINE_INGEST_SOURCE_RATE": "0",
	}
	ten, sources := seedRestartSite(t, env)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exited := make(chan struct{})
	var code int
	var logs syncBuffer
	go func() { code = run(ctx, nil, env, &logs, &logs); close(exited) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(restartWait):
			t.Error("serve did not stop after cancellation")
		}
	})
	probe := &http.Client{Timeout: 5 * time.Second}
	readyz := func() int {
		resp, err := probe.Get(base + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "Keyline ready", func() bool { return readyz() == http.StatusOK }, &logs)

	gen, err := loadtest.GitHubPushes{BaseURL: base, Sources: sources, Commits: 1, RunID: "pgrestart"}.Generator()
	if err != nil {
		t.Fatal(err)
	}
	var (
		log     deliveryLog
		stop    atomic.Bool
		workers sync.WaitGroup
		spent   atomic.Int64
	)
	client := loadtest.NewClient(restartWorkers, 10*time.Second)
	for w := range restartWorkers {
		workers.Go(func() {
			next := gen(w)
			for !stop.Load() && spent.Add(1) <= restartBudget {
				req, err := next()
				if err != nil {
					t.Errorf("build delivery: %v", err)
					return
				}
				log.add(sendDelivery(client, req))
				time.Sleep(restartPace)
			}
		})
	}
	stopWorkers := sync.OnceFunc(func() { stop.Store(true); workers.Wait() })
	defer stopWorkers()
	storing := func(n int64) {
		t.Helper()
		want := log.ok.Load() + n
		waitFor(t, fmt.Sprintf("%d more deliveries stored", n), func() bool { return log.ok.Load() >= want }, &logs)
	}

	storing(50)
	for _, mode := range []dbtest.StopMode{dbtest.StopFast, dbtest.StopImmediate} {
		failedBefore := log.fail.Load()
		if err := pg.Stop(mode); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "/readyz 503 with PostgreSQL stopped ("+string(mode)+")",
			func() bool { return readyz() == http.StatusServiceUnavailable }, &logs)
		// A few failures, not one, so the outage is met by sustained load.
		waitFor(t, "deliveries failing with PostgreSQL stopped ("+string(mode)+")",
			func() bool { return log.fail.Load() >= failedBefore+10 }, &logs)
		if err := pg.Start(); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now().UnixNano()
		waitFor(t, "a delivery sent after the restart stored ("+string(mode)+")",
			func() bool { return log.lastOKSent.Load() > restarted }, &logs)
		waitFor(t, "/readyz 200 after the restart ("+string(mode)+")",
			func() bool { return readyz() == http.StatusOK }, &logs)
		storing(50)
	}
	// The replica's cache hears of other replicas' tenant changes through
	// LISTEN on a connection of its own, which both outages broke.
	waitFor(t, "the tenant watcher listening again", func() bool { return listening(pg.URL()) }, &logs)
	stopWorkers()
	if spent.Load() > restartBudget {
		t.Fatalf("the load used its whole budget of %d deliveries; delivery logs may have been trimmed", restartBudget)
	}

	checkRestartDeliveries(t, env, ten, sources, log.all)
	if s := logs.String(); strings.Contains(s, "tenant watcher stopped") {
		t.Errorf("the tenant watcher gave up during the outage; logs:\n%s", tail(s, 4000))
	}
	cancel()
	select {
	case <-exited:
		if code != 0 {
			t.Errorf("serve exited with %d; logs:\n%s", code, tail(logs.String(), 4000))
		}
	case <-time.After(restartWait):
		t.Fatal("serve did not stop after cancellation")
	}
}

// seedRestartSite installs the Jira app for one site and gives it
// restartSources GitHub sources.
func seedRestartSite(t *testing.T, env map[string]string) (*tenant.Tenant, []loadtest.Source) {
	t.Helper()
	ctx := context.Background()
	st := testStore(t, env)
	defer st.Close()
	ten, err := st.UpsertTenant(ctx, tenant.Install{
		AppKey: "dev.keyline.jira", ClientKey: "acme", BaseURL: "https://acme.atlassian.net",
		ProductType: "jira", SharedSecret: []byte("shared-secret-of-acme-0123456789abcdef"), At: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	sources := make([]loadtest.Source, restartSources)
	for i := range sources {
		_, token, secret, err := st.CreateSource(ctx, ten, ingest.KindGitHub, fmt.Sprintf("repo %d", i))
		if err != nil {
			t.Fatal(err)
		}
		sources[i] = loadtest.Source{Token: token, Secret: secret}
	}
	return ten, sources
}

// sendDelivery sends one push and records what came back.
func sendDelivery(client *http.Client, req *http.Request) sentDelivery {
	d := sentDelivery{id: req.Header.Get("X-GitHub-Delivery"), source: req.URL.Path, sent: time.Now()}
	d.commit, d.err = headCommit(req)
	if d.err != nil {
		return d
	}
	resp, err := client.Do(req)
	if err != nil {
		d.err = err
		return d
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, loadtest.MaxResponseBody))
	d.status = resp.StatusCode
	if err != nil {
		d.err = fmt.Errorf("read answer: %w", err)
		return d
	}
	d.label, d.err = loadtest.CheckIngest(resp.StatusCode, body)
	return d
}

// headCommit is the sha of the commit a one-commit push carries.
func headCommit(req *http.Request) (string, error) {
	body, err := req.GetBody()
	if err != nil {
		return "", err
	}
	var push struct {
		After string `json:"after"`
	}
	if err := json.NewDecoder(body).Decode(&push); err != nil || push.After == "" {
		return "", fmt.Errorf("push without a head commit: %v", err)
	}
	return push.After, nil
}

// checkRestartDeliveries compares what each delivery was answered with what
// the database holds.
func checkRestartDeliveries(t *testing.T, env map[string]string, ten *tenant.Tenant, sources []loadtest.Source, sent []sentDelivery) {
	t.Helper()
	ctx := context.Background()
	st := testStore(t, env)
	defer st.Close()
	list, err := st.ListSources(ctx, ten)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(sources) {
		t.Fatalf("%d sources in the database, want %d", len(list), len(sources))
	}
	logged := map[string]store.DeliveryOutcome{}
	for _, src := range list {
		lines, err := st.ListDeliveries(ctx, ten, src.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) >= store.MaxDeliveriesPerSource {
			t.Fatalf("source %s has a full delivery log: older lines may be gone", src.ID)
		}
		for _, l := range lines {
			logged[l.DeliveryID] = l.Outcome
		}
	}

	var ok, failed, noAnswer, storedAnyway int
	var problems []string
	problem := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for _, d := range sent {
		if d.commit == "" {
			problem("delivery %s: %v", d.id, d.err)
			continue
		}
		outcome, inLog := logged[d.id]
		_, err := st.Commit(ctx, ten, d.commit)
		hasCommit := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("read commit %s: %v", d.commit, err)
		}
		stored := inLog && outcome == store.DeliveryAccepted
		if inLog && outcome != store.DeliveryAccepted {
			problem("delivery %s: logged as %s, want accepted or nothing", d.id, outcome)
		}
		if stored != hasCommit {
			problem("delivery %s: logged %v but commit stored %v: the two must commit together", d.id, stored, hasCommit)
		}
		switch {
		case d.status/100 == 2:
			ok++
			if d.err != nil {
				problem("delivery %s: answered %d but %v", d.id, d.status, d.err)
			}
			if !stored || !hasCommit {
				problem("delivery %s: answered %d but not in the database (logged %v, commit %v)", d.id, d.status, stored, hasCommit)
			}
		case d.status/100 == 5:
			failed++
			if stored {
				// The commit reached PostgreSQL but its acknowledgement did
				// not reach Keyline: a redelivery is a duplicate. Allowed.
				storedAnyway++
			}
		case d.status == 0:
			noAnswer++
			if stored {
				storedAnyway++
			}
		default:
			problem("delivery %s: answered %d (%v); a valid delivery gets 2xx, or 5xx when it cannot be stored", d.id, d.status, d.err)
		}
	}
	t.Logf("%d deliveries: %d answered 2xx, %d 5xx, %d no answer; %d of those not answered 2xx were stored anyway",
		len(sent), ok, failed, noAnswer, storedAnyway)
	if len(problems) > 0 {
		t.Errorf("deliveries and database disagree:\n%s", strings.Join(problems, "\n"))
	}
}

// waitFor polls cond until it holds, failing the test after restartWait.
func waitFor(t *testing.T, what string, cond func() bool, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(restartWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v; logs:\n%s", what, restartWait, tail(logs.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listening reports whether a session of the server at url listens for
// changes (the watcher's last statement is its last LISTEN).
func listening(url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND query LIKE 'LISTEN keyline\_%'`).Scan(&n)
	return err == nil && n > 0
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
