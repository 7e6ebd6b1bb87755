package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
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

// BenchmarkReceiveGitHubPush measures verified, stored GitHub push
// deliveries (10 commits each) through the receiver, the path a webhook
// takes after the HTTP server: source lookup, HMAC check, parsing, and one
// transaction with the delivery line, commits, commit order, push, branch
// and links. It runs in parallel over 8 sites, as a busy instance would see
// them. deliveries/s is the figure to compare with the 2,000/s target; run
// with -cpu to vary the parallelism:
//
//	go test ./app/ingest -run '^$' -bench ReceiveGitHubPush -benchtime 10s
//
// On Linux it also reports the CPU time spent per delivery (user and
// system, from /proc): cpu-µs/delivery by this process, and, when the
// PostgreSQL server runs on this machine, pg-cpu-µs/delivery by all of the
// server's processes. Unlike deliveries/s, they hold when other work shares
// the machine, and their sum is what decides how many deliveries its cores
// can take. pg-cpu-µs counts the whole server: use one nothing else uses.
func BenchmarkReceiveGitHubPush(b *testing.B) {
	for _, db := range []struct {
		name string
		open func(testing.TB) *store.Store
		cpu  func(testing.TB) cpuClock
	}{{"postgres", dbtest.PostgresStore, postgresCPUClock}, {"sqlite", dbtest.SQLiteStore, selfCPUClock}} {
		b.Run(db.name, func(b *testing.B) {
			benchmarkReceive(b, db.open(b), db.cpu(b))
		})
	}
}

type benchSource struct {
	token, secret string
}

func benchmarkReceive(b *testing.B, st *store.Store, cpu cpuClock) {
	ctx := context.Background()
	const sites = 8
	var sources []benchSource
	for i := range sites {
		t, err := st.UpsertTenant(ctx, tenant.Install{AppKey: "bench.jira", ClientKey: fmt.Sprint("bench-", i),
			BaseURL: fmt.Sprintf("https://bench-%d.atlassian.net", i), ProductType: "jira",
			SharedSecret: []byte("bench-shared-secret-0123456789abcdef"), At: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		_, token, secret, err := st.CreateSource(ctx, t, store.SourceGitHub, "")
		if err != nil {
			b.Fatal(err)
		}
		sources = append(sources, benchSource{token, secret})
	}
	rcv := ingest.NewReceiver(st, nil)
	// The senders' work (building and signing payloads) is done before the
	// clock starts: the figure is the server's.
	const parallelism = 16
	goroutines := parallelism * runtime.GOMAXPROCS(0)
	per := b.N/goroutines + b.N/10 + 1
	work := make([][]ingest.Delivery, goroutines)
	at := time.Now()
	for w := range work {
		src := sources[w%len(sources)]
		repo := loadtest.NewRepo(int64(1000+w), fmt.Sprintf("acme/service-%d", w), "OPS")
		for range per {
			body, id := repo.Push(10, at)
			h := http.Header{}
			h.Set(ingest.HeaderGitHubSignature, ingest.SignatureSHA256([]byte(src.secret), body))
			h.Set("X-GitHub-Event", "push")
			h.Set("X-GitHub-Delivery", id)
			work[w] = append(work[w], ingest.Delivery{Token: src.token, Header: h, Body: bytes.NewReader(body)})
		}
	}
	var worker atomic.Int64
	var mu sync.Mutex
	var failed error
	// Deliveries spend most of their time waiting on the database, so a
	// server overlaps many; 16 per CPU is what the HTTP server sees at 32
	// connections on 2 cores.
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	self0, server0, cpuOK := cpu.read()
	b.RunParallel(func(pb *testing.PB) {
		mine := work[int(worker.Add(1)-1)%goroutines]
		for i := 0; pb.Next(); i++ {
			if i >= len(mine) {
				mu.Lock()
				failed = fmt.Errorf("worker ran out of %d prepared deliveries", len(mine))
				mu.Unlock()
				return
			}
			res, err := rcv.Receive(ctx, mine[i])
			if err == nil && res.Status != http.StatusOK {
				err = fmt.Errorf("status %d: %s", res.Status, res.Reason)
			}
			if err != nil {
				mu.Lock()
				failed = err
				mu.Unlock()
				return
			}
		}
	})
	elapsed := time.Since(start)
	self1, server1, _ := cpu.read()
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	if cpuOK {
		b.ReportMetric(float64((self1-self0).Microseconds())/float64(b.N), "cpu-µs/delivery")
		if cpu.postmaster != "" {
			b.ReportMetric(float64((server1-server0).Microseconds())/float64(b.N), "pg-cpu-µs/delivery")
		}
	}
}

// cpuClock reads CPU time (user and system) from Linux's /proc: this
// process's and, when postmaster is set, that of the PostgreSQL server whose
// postmaster has that pid, its live processes and those it has reaped.
type cpuClock struct {
	postmaster string
}

func selfCPUClock(testing.TB) cpuClock { return cpuClock{} }

// postgresCPUClock finds the test server's postmaster, the parent of one of
// its backends, when that backend is a process on this machine.
func postgresCPUClock(tb testing.TB) cpuClock {
	url := os.Getenv(dbtest.EnvPostgres)
	if url == "" {
		url = dbtest.DefaultPostgres
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		tb.Fatal(err)
	}
	backend, ok := procStat(strconv.Itoa(pid))
	if !ok || backend.comm != "postgres" {
		return cpuClock{} // another machine's process, or no /proc
	}
	if parent, ok := procStat(backend.ppid); !ok || parent.comm != "postgres" {
		return cpuClock{}
	}
	return cpuClock{postmaster: backend.ppid}
}

// read returns the CPU time of this process and of the server; ok is false
// where /proc cannot tell.
func (c cpuClock) read() (self, server time.Duration, ok bool) {
	me, ok := procStat("self")
	if !ok {
		return 0, 0, false
	}
	if c.postmaster == "" {
		return me.cpu, 0, true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, false
	}
	for _, e := range entries {
		switch p, ok := procStat(e.Name()); {
		case !ok:
		case e.Name() == c.postmaster:
			server += p.cpu + p.childrenCPU
		case p.ppid == c.postmaster:
			server += p.cpu
		}
	}
	return me.cpu, server, true
}

// procStatus is what cpuClock reads of /proc/<pid>/stat.
type procStatus struct {
	comm, ppid       string
	cpu, childrenCPU time.Duration
}

// procStat reads /proc/<pid>/stat (proc(5)); ok is false when it cannot.
func procStat(pid string) (procStatus, bool) {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return procStatus{}, false
	}
	s := string(raw)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStatus{}, false
	}
	// After "pid (comm) ": state, ppid, ..., utime, stime, cutime, cstime
	// as fields 0, 1, ..., 11, 12, 13, 14.
	f := strings.Fields(s[end+1:])
	if len(f) < 15 {
		return procStatus{}, false
	}
	var ticks [4]int64
	for i := range ticks {
		if ticks[i], err = strconv.ParseInt(f[11+i], 10, 64); err != nil {
			return procStatus{}, false
		}
	}
	// Linux counts these in USER_HZ ticks, 100 a second on every
	// architecture Keyline is built for.
	const tick = 10 * time.Millisecond
	return procStatus{comm: s[open+1 : end], ppid: f[1],
		cpu: time.Duration(ticks[0]+ticks[1]) * tick, childrenCPU: time.Duration(ticks[2]+ticks[3]) * tick}, true
}
