package loadtest_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/loadtest"
	"github.com/keyline/keyline/app/metrics"
	"github.com/keyline/keyline/app/release"
	"github.com/keyline/keyline/app/store"
)

// TestSeedHistory seeds a small history and checks its shape, that the
// rollups agree with the deployments they name, that release.Build finds
// figures in it, and that a second run reuses it.
func TestSeedHistory(t *testing.T) {
	dsn := dbtest.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.OpenPostgres(ctx, dsn, dbtest.Sealer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	until := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	opts := loadtest.HistoryOptions{Tenants: st, AppKey: "dev.keyline.jira", Deployments: 2000, Commits: 10000,
		Span: 365 * 24 * time.Hour, Until: until, Seed: 7, ChunkGroups: 250}
	res, err := loadtest.SeedHistory(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reused {
		t.Fatal("a new site was reported as reused")
	}
	if got := res.Rows["deployments"]; got != 2000 {
		t.Errorf("deployments = %d, want 2000", got)
	}
	if got := res.Rows["commits"]; got < 9900 || got > 10100 {
		t.Errorf("commits = %d, want about 10000", got)
	}
	for _, tbl := range []string{"deployment_commits", "pull_requests", "incidents", "issue_links", "jira_issues",
		"change_first_deployments", "issue_first_deployments"} {
		if res.Rows[tbl] == 0 {
			t.Errorf("no %s", tbl)
		}
	}
	if !res.To.Before(until) || res.From.Before(until.Add(-opts.Span)) {
		t.Errorf("history spans %s – %s, want within the year before %s", res.From, res.To, until)
	}

	var prod, ok, bad int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE environment_type = 'production'),
			count(*) FILTER (WHERE state = 'successful'),
			count(*) FILTER (WHERE environment_type = 'production' AND state NOT IN ('successful', 'failed', 'rolled_back'))
		FROM deployments WHERE tenant_id = $1`, res.Tenant.ID).Scan(&prod, &ok, &bad); err != nil {
		t.Fatal(err)
	}
	if prod < 600 || prod > 700 || ok < 1600 || ok > 1800 || bad != 0 {
		t.Errorf("production %d, successful %d, other states %d of 2000: want about a third, about 85 %%, none",
			prod, ok, bad)
	}
	// Every rollup row names a successful deployment of its environment
	// type, service and finish time, which carried the change.
	var mismatched, uncarried, nonPositive int
	if err := db.QueryRowContext(ctx, `SELECT
			count(*) FILTER (WHERE d.id IS NULL OR d.state <> 'successful' OR d.environment_type <> f.environment_type
				OR d.service <> f.service OR d.environment_name <> f.environment_name OR d.finished_at <> f.deployed_at),
			count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM deployment_commits dc WHERE dc.tenant_id = f.tenant_id
				AND dc.deployment_id = f.deployment_id AND dc.sha = COALESCE(p.merge_commit_sha, f.change_id))),
			count(*) FILTER (WHERE f.lead_seconds <= 0)
		FROM change_first_deployments f
		LEFT JOIN deployments d ON d.tenant_id = f.tenant_id AND d.id = f.deployment_id
		LEFT JOIN pull_requests p ON f.change_kind = 'pullrequest' AND p.tenant_id = f.tenant_id AND p.id = f.change_id
		WHERE f.tenant_id = $1`, res.Tenant.ID).Scan(&mismatched, &uncarried, &nonPositive); err != nil {
		t.Fatal(err)
	}
	if mismatched+uncarried+nonPositive > 0 {
		t.Errorf("change rollup: %d rows disagree with their deployment, %d name one that did not carry the change, %d have a non-positive lead time",
			mismatched, uncarried, nonPositive)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM issue_first_deployments f
		WHERE f.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM issue_links l WHERE l.tenant_id = f.tenant_id
			AND l.issue_key = f.issue_key AND l.entity_type = 'deployment' AND l.entity_id = f.deployment_id)`,
		res.Tenant.ID).Scan(&uncarried); err != nil {
		t.Fatal(err)
	}
	if uncarried > 0 {
		t.Errorf("issue rollup: %d rows name a deployment not linked to the issue", uncarried)
	}
	var startless, wrongStart int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE f.issue_started_at IS NULL),
			count(*) FILTER (WHERE f.issue_started_at IS DISTINCT FROM j.started_at)
		FROM issue_first_deployments f
		LEFT JOIN jira_issues j ON j.tenant_id = f.tenant_id AND j.issue_key = f.issue_key AND j.deleted_at IS NULL
		WHERE f.tenant_id = $1`, res.Tenant.ID).Scan(&startless, &wrongStart); err != nil {
		t.Fatal(err)
	}
	if startless+wrongStart > 0 {
		t.Errorf("issue rollup: %d rows lack their issue's start, %d differ from it", startless, wrongStart)
	}
	var wrongProjects, withProjects int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE d.linked_projects <> COALESCE(l.projects, '')),
			count(*) FILTER (WHERE d.linked_projects <> '')
		FROM deployments d
		LEFT JOIN (SELECT entity_id, string_agg(DISTINCT split_part(issue_key, '-', 1), ' ' ORDER BY split_part(issue_key, '-', 1)) AS projects
			FROM issue_links WHERE tenant_id = $1 AND entity_type = 'deployment' GROUP BY entity_id) l ON l.entity_id = d.id
		WHERE d.tenant_id = $1`, res.Tenant.ID).Scan(&wrongProjects, &withProjects); err != nil {
		t.Fatal(err)
	}
	if wrongProjects > 0 || withProjects == 0 {
		t.Errorf("deployments: %d have linked projects other than their links', %d have any", wrongProjects, withProjects)
	}

	rep, err := release.Build(ctx, st, res.Tenant, release.Filter{
		Window:  metrics.Window{From: until.AddDate(0, 0, -90), To: until},
		Slowest: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Frequency.Deployments == 0 || rep.LeadTime.N == 0 || rep.FailureRate.Deployments == 0 ||
		rep.CycleTime.N == 0 || rep.Changes == 0 || len(rep.Slowest) == 0 {
		t.Errorf("release report over the last 90 days is missing figures: %+v", rep.Figures)
	}
	rep, err = release.Build(ctx, st, res.Tenant, release.Filter{Projects: []string{"PAY"}, Service: loadtest.HistoryService(0),
		Window: metrics.Window{From: until.AddDate(0, 0, -365), To: until}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Frequency.Deployments == 0 || rep.LeadTime.N == 0 {
		t.Errorf("release report of project PAY, service %s has no figures: %+v", loadtest.HistoryService(0), rep.Figures)
	}

	again, err := loadtest.SeedHistory(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused || again.Tenant.ID != res.Tenant.ID || again.Rows["commits"] != res.Rows["commits"] {
		t.Errorf("second run: reused %v, tenant %d (was %d), %d commits (were %d)", again.Reused, again.Tenant.ID,
			res.Tenant.ID, again.Rows["commits"], res.Rows["commits"])
	}
}
