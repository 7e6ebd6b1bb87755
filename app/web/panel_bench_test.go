package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/loadtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
	"github.com/keyline/keyline/descriptor"
)

// benchPanelIssues is how many issues the benchmark site has; requests
// rotate over all of them, as the load test's do.
const benchPanelIssues = 48

// BenchmarkPanelRequest measures the whole issue panel request in process:
// the middleware, the JWT and qsh check (the tenant comes from the cache
// after the first request), the store's queries on PostgreSQL and the
// render, for issues seeded by the load test's history (about a dozen
// linked items each), with planner statistics gathered. Tokens are signed before the clock starts, so the
// figure is the server's alone; it includes building each *http.Request
// from its URL, as the HTTP server would.
//
// "uncached" is every request read from the store and rendered; "cached"
// has the issue view cache on, so after each issue's first load only the
// token check and the cache lookup remain (nothing is written meanwhile).
// "serial" is one request at a time: the latency of a request on an idle
// server, database round trips included. "parallel" keeps 32 in flight,
// like `keyline loadtest panel --concurrency 32`; its ns/op is the inverse
// of the throughput, also reported as req/s.
//
//	go test ./app/web -run '^$' -bench PanelRequest -benchtime 5s
func BenchmarkPanelRequest(b *testing.B) {
	ctx := context.Background()
	dsn := dbtest.Postgres(b)
	st, err := store.OpenPostgres(ctx, dsn, dbtest.Sealer(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	uncached, cached, urls := panelBenchServer(b, st)
	analyzeSchema(b, dsn)
	for _, h := range []struct {
		name    string
		handler http.Handler
	}{{"uncached", uncached}, {"cached", cached}} {
		handler := h.handler
		b.Run(h.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			var pageBytes int
			for i := 0; b.Loop(); i++ {
				n, err := servePanel(handler, urls[i%len(urls)])
				if err != nil {
					b.Fatal(err)
				}
				pageBytes += n
			}
			b.ReportMetric(float64(pageBytes)/float64(b.N), "page-bytes")
		})
		b.Run(h.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			// 16 goroutines per CPU: 32 on the two cores Keyline is sized for.
			b.SetParallelism(16)
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := servePanel(handler, urls[int(next.Add(1))%len(urls)]); err != nil {
						b.Error(err) // not Fatal: this is not the benchmark's goroutine
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// analyzeSchema gathers planner statistics for the test schema's tables,
// as autovacuum would in production (and as `keyline loadtest panel`
// does): without them PostgreSQL may scan every link of the site for each
// list of the panel. Only this schema's tables: the test database is shared.
func analyzeSchema(b *testing.B, dsn string) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = current_schema()`)
	if err != nil {
		b.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	if len(tables) == 0 {
		b.Fatal("no tables in the test schema")
	}
	if _, err := conn.Exec(ctx, "ANALYZE "+strings.Join(tables, ", ")); err != nil {
		b.Fatal(err)
	}
}

// servePanel sends one iframe load and returns the page's size; it fails
// unless the panel of the requested issue came back.
func servePanel(h http.Handler, u panelURL) (int, error) {
	req := httptest.NewRequest(http.MethodGet, u.url, nil)
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), u.key) {
		return 0, fmt.Errorf("%s: status %d: %.300s", u.key, rec.Code, rec.Body.String())
	}
	return rec.Body.Len(), nil
}

type panelURL struct {
	url string
	key []byte
}

// panelBenchServer seeds one site with the load test's history and returns
// two servers wired as in production (the tenant cache in front of the
// store), one without and one with the issue view cache, and a pool of
// signed panel URLs, one token each.
func panelBenchServer(b *testing.B, st *store.Store) (uncached, cached http.Handler, urls []panelURL) {
	b.Helper()
	ctx := context.Background()
	site := loadtest.PanelSite{ClientKey: "bench-site", BaseURL: "https://bench.atlassian.net",
		SharedSecret: []byte("bench-shared-secret-0123456789abcdef0123")}
	t, err := st.UpsertTenant(ctx, tenant.Install{AppKey: jiraKey, ClientKey: site.ClientKey, BaseURL: site.BaseURL,
		DisplayURL: site.BaseURL, ProductType: "jira", SharedSecret: site.SharedSecret})
	if err != nil {
		b.Fatal(err)
	}
	src, _, _, err := st.CreateSource(ctx, t, store.SourceGeneric, "bench")
	if err != nil {
		b.Fatal(err)
	}
	site.Issues, err = loadtest.SeedPanel(ctx, st, t, src.ID, loadtest.PanelSeed{Issues: benchPanelIssues,
		Until: time.Now().UTC().Truncate(24 * time.Hour), RunID: "bench"})
	if err != nil {
		b.Fatal(err)
	}

	cache := tenant.NewCache(st)
	renderer, err := descriptor.NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	// No install happens here; the key server is never asked.
	keys := connect.NewKeyFetcher("http://127.0.0.1:1", http.DefaultClient)
	server := func(views *IssueViewCache) http.Handler {
		srv, err := New(Deps{
			IssueViews:    views,
			Logger:        slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Store:         st,
			Tenants:       cache,
			Verifier:      connect.NewVerifier(cache),
			Installs:      connect.NewInstallVerifier(keys, []string{".atlassian.net"}),
			Descriptors:   renderer,
			Jira:          newFakeJira(),
			Receiver:      ingest.NewReceiver(st, nil),
			BaseURL:       testBase,
			AppKeyPrefix:  testPrefix,
			AllowedHosts:  []string{".atlassian.net"},
			RetentionDays: 30,
			Version:       "bench",
		})
		if err != nil {
			b.Fatal(err)
		}
		return srv.Handler()
	}
	views, err := NewIssueViewCache(1024)
	if err != nil {
		b.Fatal(err)
	}
	uncached, cached = server(nil), server(views)

	// Tokens live an hour so that a long -benchtime cannot outlast them.
	gen, err := loadtest.IssuePanels{BaseURL: testBase, AppKey: jiraKey, Sites: []loadtest.PanelSite{site},
		TokenLifetime: time.Hour}.Generator()
	if err != nil {
		b.Fatal(err)
	}
	next := gen(0)
	urls = make([]panelURL, 4096)
	for i := range urls {
		req, err := next()
		if err != nil {
			b.Fatal(err)
		}
		urls[i] = panelURL{url: req.URL.String(), key: []byte(req.URL.Query().Get("issueKey"))}
	}
	// The first request of a site loads its tenant; production pays that
	// once per 30 seconds, not per request.
	if _, err := servePanel(uncached, urls[0]); err != nil {
		b.Fatal(err)
	}
	return uncached, cached, urls
}
