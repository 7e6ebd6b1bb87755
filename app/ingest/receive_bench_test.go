package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
func BenchmarkReceiveGitHubPush(b *testing.B) {
	for _, db := range []struct {
		name string
		open func(testing.TB) *store.Store
	}{{"postgres", dbtest.PostgresStore}, {"sqlite", dbtest.SQLiteStore}} {
		b.Run(db.name, func(b *testing.B) {
			benchmarkReceive(b, db.open(b))
		})
	}
}

type benchSource struct {
	token, secret string
}

func benchmarkReceive(b *testing.B, st *store.Store) {
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
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
}
