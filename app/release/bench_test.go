package release_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/loadtest"
	"github.com/keyline/keyline/app/metrics"
	"github.com/keyline/keyline/app/release"
	"github.com/keyline/keyline/app/store"
)

// EnvBenchDatabase names a PostgreSQL database already seeded by
// "keyline loadtest metrics --seed-only" (site loadtest-history); with it
// the benchmark measures the full-scale history instead of seeding a small
// one.
const EnvBenchDatabase = "KEYLINE_BENCH_DATABASE_URL"

// benchAppKey is the Jira app key under the default KEYLINE_APP_KEY, which
// the CLI seeds the site for.
const benchAppKey = "dev.keyline.jira"

// BenchmarkReleaseBuild measures release.Build, the whole release report
// the project page (page) and the JSON API and CSV export (export)
// compute, on PostgreSQL: by default over a
// history of 50,000 deployments and 250,000 commits seeded once into a
// fresh schema, or over the history in EnvBenchDatabase. Windows end at the
// history's end.
func BenchmarkReleaseBuild(b *testing.B) {
	ctx := context.Background()
	dsn, external := os.LookupEnv(EnvBenchDatabase)
	if !external {
		dsn = dbtest.Postgres(b)
	}
	st, err := store.OpenPostgres(ctx, dsn, dbtest.Sealer(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	opts := loadtest.HistoryOptions{Tenants: st, AppKey: benchAppKey, Deployments: 50_000, Commits: 250_000,
		Log: slog.New(slog.DiscardHandler)}
	if external {
		// Never seed a full-scale history from a benchmark: it takes many
		// minutes and belongs to the CLI.
		var seeded bool
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM tenants t JOIN issue_first_deployments f
				ON f.tenant_id = t.id WHERE t.app_key = $1 AND t.client_key = $2)`,
			benchAppKey, loadtest.DefaultHistoryClientKey).Scan(&seeded); err != nil {
			b.Fatal(err)
		}
		if !seeded {
			b.Fatalf("%s holds no history: seed it with keyline loadtest metrics --seed-only --database-url …", EnvBenchDatabase)
		}
	}
	hist, err := loadtest.SeedHistory(ctx, db, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("history: %d deployments, %d commits, %d change rollup rows, %s – %s", hist.Rows["deployments"],
		hist.Rows["commits"], hist.Rows["change_first_deployments"], hist.From.Format(time.DateOnly),
		hist.To.Format(time.DateOnly))
	day := 24 * time.Hour
	for _, sc := range []struct {
		name     string
		window   time.Duration
		projects []string
		service  string
	}{
		{name: "site-90d", window: 90 * day},
		{name: "project-90d", window: 90 * day, projects: []string{loadtest.HistoryProjects()[0]}},
		{name: "service-90d", window: 90 * day, service: loadtest.HistoryService(0)},
		{name: "site-365d", window: 365 * day},
		{name: "project-365d", window: 365 * day, projects: []string{loadtest.HistoryProjects()[0]}},
		{name: "service-365d", window: 365 * day, service: loadtest.HistoryService(0)},
	} {
		// As the page asks (the latest deployments listed, the others
		// counted) and as the export does (every deployment listed).
		for _, use := range []struct {
			name   string
			latest int
		}{{"page", release.TimelineDeployments}, {"export", 0}} {
			b.Run(sc.name+"/"+use.name, func(b *testing.B) {
				f := release.Filter{Projects: sc.projects, Service: sc.service, Slowest: 10, Latest: use.latest,
					Window: metrics.Window{From: hist.To.Add(-sc.window), To: hist.To, Location: time.UTC}}
				var rep *release.Report
				for b.Loop() {
					rep, err = release.Build(ctx, st, hist.Tenant, f)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed())/float64(time.Millisecond)/float64(b.N), "ms/op")
				if rep.Frequency.Deployments == 0 || rep.Changes == 0 {
					b.Fatalf("the report has no deployments or changes: %+v", rep.Figures)
				}
			})
		}
	}
}
