package loadtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/keyline/keyline/app/tenant"
)

// A history is a site's DevOps record of years, written straight into
// PostgreSQL with set-based statements: the release metrics must answer
// over a million deployments, and writing those through the ingestion path
// (a webhook at a time, each re-linking commit ranges) would take hours.
// The rows are shaped as the store writes them (ids, environment types,
// space-separated issue keys, the rollups of migration 00008), so the read
// paths see what they would see in production.

// Defaults of HistoryOptions: the scale issue 5 sets for the release
// metrics.
const (
	DefaultHistoryDeployments = 1_000_000
	DefaultHistoryCommits     = 5_000_000
	DefaultHistoryServices    = 25
	DefaultHistorySpan        = 3 * 365 * 24 * time.Hour
	// DefaultHistoryClientKey names the seeded site.
	DefaultHistoryClientKey = "loadtest-history"
	// HistorySourceID is the source id every seeded entity carries. No
	// sources row is created: the release reads never join sources.
	HistorySourceID = "src_history"
)

// historyProjects are the Jira projects the seeded issues belong to; each
// service belongs mostly to one of them.
var historyProjects = []string{"PAY", "SHOP", "CORE", "WEB", "MOB", "DATA", "OPS", "FIN", "SEC", "GROW"}

// HistoryProjects returns the project keys of a seeded history's issues.
func HistoryProjects() []string { return append([]string(nil), historyProjects...) }

// historyServiceNames name the first services; more get a numeric suffix.
var historyServiceNames = []string{"payments-api", "checkout", "cart", "catalog", "search", "accounts", "auth",
	"notifications", "billing", "invoicing", "shipping", "inventory", "pricing", "recommendations", "reviews",
	"gateway", "web-frontend", "mobile-bff", "analytics", "reporting", "fraud", "ledger", "onboarding", "support",
	"media"}

// HistoryService returns the name of seeded service s (0-based). Service 0
// is the busiest: services are skewed so that it gets about 15 % of the
// deployments at the default 25 services.
func HistoryService(s int) string {
	name := historyServiceNames[s%len(historyServiceNames)]
	if s >= len(historyServiceNames) {
		name += fmt.Sprint("-", s/len(historyServiceNames))
	}
	return name
}

// TenantStore installs the seeded site; *store.Store is one.
type TenantStore interface {
	UpsertTenant(ctx context.Context, in tenant.Install) (*tenant.Tenant, error)
}

// HistoryOptions sizes a seeded history. Zero fields take the defaults.
type HistoryOptions struct {
	// Tenants installs the site when it is not installed yet; it may be
	// nil when the site is known to exist (a benchmark on a seeded
	// database).
	Tenants TenantStore
	// AppKey is the Jira app key the site is installed for; required.
	AppKey    string
	ClientKey string
	// Deployments over all services and environments; a third of them go
	// to production.
	Deployments int
	// Commits is the approximate number of commits: changes are drawn until
	// their commits add up to it.
	Commits  int
	Services int
	// Span is how far back the history reaches from Until.
	Span time.Duration
	// Until is when the history ends; zero means the start of today (UTC),
	// so a run again the same day seeds the same rows.
	Until time.Time
	// Seed varies the pseudo-random draws; the same seed gives the same rows.
	Seed int64
	// ChunkGroups is how many release groups (a service's deployments to
	// development, staging and production of one set of changes) one
	// statement writes; zero means 20,000.
	ChunkGroups int
	// Log receives progress; nil logs nothing.
	Log *slog.Logger
}

// HistoryResult says what a seeded history holds.
type HistoryResult struct {
	Tenant *tenant.Tenant
	// Reused is true when the site already held a complete history, which
	// was kept as it was.
	Reused bool
	// From and To bound the deployments' finish times.
	From, To time.Time
	// Rows counts the site's rows per table.
	Rows map[string]int64
	Took time.Duration
}

// historyTables are the tables a history writes, in the order they are
// counted, vacuumed and (for a partial history) emptied.
var historyTables = []string{"deployments", "commits", "deployment_commits", "pull_requests", "incidents",
	"issue_links", "jira_issues", "change_first_deployments", "issue_first_deployments"}

func (o HistoryOptions) withDefaults() (HistoryOptions, error) {
	if o.AppKey == "" {
		return o, errors.New("loadtest: history: an app key is required")
	}
	if o.ClientKey == "" {
		o.ClientKey = DefaultHistoryClientKey
	}
	if o.Deployments == 0 {
		o.Deployments = DefaultHistoryDeployments
	}
	if o.Commits == 0 {
		o.Commits = DefaultHistoryCommits
	}
	if o.Services == 0 {
		o.Services = DefaultHistoryServices
	}
	if o.Span == 0 {
		o.Span = DefaultHistorySpan
	}
	if o.Until.IsZero() {
		o.Until = time.Now().UTC().Truncate(24 * time.Hour)
	}
	if o.ChunkGroups == 0 {
		o.ChunkGroups = 20_000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.Deployments < 3 || o.Deployments > 100_000_000:
		return o, fmt.Errorf("loadtest: history: %d deployments: want 3 to 100,000,000", o.Deployments)
	case o.Commits < 1 || o.Commits > 500_000_000:
		return o, fmt.Errorf("loadtest: history: %d commits: want 1 to 500,000,000", o.Commits)
	case o.Services < 1 || o.Services > 10_000:
		return o, fmt.Errorf("loadtest: history: %d services: want 1 to 10,000", o.Services)
	case o.Span < 24*time.Hour:
		return o, fmt.Errorf("loadtest: history: span %s: want at least a day", o.Span)
	case o.ChunkGroups < 1:
		return o, fmt.Errorf("loadtest: history: chunk %d: want at least 1", o.ChunkGroups)
	}
	return o, nil
}

// SeedHistory installs (or finds) the site opts.ClientKey and gives it a
// history of opts.Deployments deployments and about opts.Commits commits,
// unless it already holds a complete one, which it then reuses as it is.
// db must be a PostgreSQL handle on the store's database. A history left
// half-written by an interrupted run is removed and written again.
//
// The shape: ~25 services of skewed sizes, each with its own repository,
// deploying sets of changes ("release groups") to development, staging
// and production one after the other, so a third of the deployments are
// production; 85 % succeed, 10 % fail, 5 % are rolled back, and a failed
// deployment's changes ship with the next successful one of its service
// and environment. 85 % of changes are merged pull requests of 2–8 commits
// (the last being the merge commit), the rest commits pushed straight to
// main; their lead times are log-uniform between ten minutes and three
// weeks. 85 % of changes name an issue, two changes per issue, of ten
// projects. One incident per 200 deployments suspects a production
// deployment. change_first_deployments and issue_first_deployments hold,
// per environment type, the first successful deployment that carried each
// change and issue, as the store's write side would have recorded it.
func SeedHistory(ctx context.Context, db *sql.DB, opts HistoryOptions) (HistoryResult, error) {
	began := time.Now()
	o, err := opts.withDefaults()
	if err != nil {
		return HistoryResult{}, err
	}
	t, err := historyTenant(ctx, db, o)
	if err != nil {
		return HistoryResult{}, fmt.Errorf("loadtest: history: %w", err)
	}
	res := HistoryResult{Tenant: t}
	complete, partial, err := historyState(ctx, db, t.ID)
	if err != nil {
		return res, fmt.Errorf("loadtest: history: %w", err)
	}
	switch {
	case complete:
		o.Log.Info("history: site already seeded; reusing it", "client_key", o.ClientKey, "tenant_id", t.ID)
		res.Reused = true
	default:
		if partial {
			o.Log.Warn("history: removing a partial history left by an interrupted run", "tenant_id", t.ID)
			if err := clearHistory(ctx, db, t.ID); err != nil {
				return res, fmt.Errorf("loadtest: history: %w", err)
			}
		}
		if err := writeHistory(ctx, db, t.ID, o); err != nil {
			return res, fmt.Errorf("loadtest: history: %w", err)
		}
		if err := vacuumHistory(ctx, db, o.Log); err != nil {
			return res, fmt.Errorf("loadtest: history: %w", err)
		}
	}
	res.Rows, err = historyCounts(ctx, db, t.ID)
	if err != nil {
		return res, fmt.Errorf("loadtest: history: %w", err)
	}
	var from, to sql.NullTime
	if err := db.QueryRowContext(ctx, `SELECT min(finished_at), max(finished_at) FROM deployments WHERE tenant_id = $1`,
		t.ID).Scan(&from, &to); err != nil {
		return res, fmt.Errorf("loadtest: history: span: %w", err)
	}
	res.From, res.To = from.Time.UTC(), to.Time.UTC()
	res.Took = time.Since(began)
	return res, nil
}

// historyTenant finds the site by its key, or installs it through the
// store. An existing site is found with SQL rather than the store, whose
// lookup opens the shared secret: a measurement run need not use the
// secret key the site was installed with, and must not replace the secret
// a running server knows the site by.
func historyTenant(ctx context.Context, db *sql.DB, o HistoryOptions) (*tenant.Tenant, error) {
	var id int64
	err := db.QueryRowContext(ctx, `SELECT id FROM tenants WHERE app_key = $1 AND client_key = $2 AND installed`,
		o.AppKey, o.ClientKey).Scan(&id)
	if err == nil {
		return &tenant.Tenant{ID: id, AppKey: o.AppKey, ClientKey: o.ClientKey, ProductType: "jira",
			Installed: true, Enabled: true}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("tenant %s: %w", o.ClientKey, err)
	}
	if o.Tenants == nil {
		return nil, fmt.Errorf("tenant %s is not installed and no tenant store was given to install it", o.ClientKey)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("shared secret: %w", err)
	}
	// .invalid never resolves, should anything call the site back.
	site := "https://" + o.ClientKey + ".atlassian.invalid"
	t, err := o.Tenants.UpsertTenant(ctx, tenant.Install{AppKey: o.AppKey, ClientKey: o.ClientKey, BaseURL: site,
		DisplayURL: site, ProductType: "jira", Description: "Keyline load test (release history)",
		SharedSecret: []byte(hex.EncodeToString(raw))})
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", o.ClientKey, err)
	}
	return t, nil
}

// historyState reports whether the site holds a complete history (the
// issue rollup is written last) or only part of one.
func historyState(ctx context.Context, db *sql.DB, tenantID int64) (complete, partial bool, err error) {
	err = db.QueryRowContext(ctx, `SELECT
			EXISTS (SELECT 1 FROM issue_first_deployments WHERE tenant_id = $1),
			EXISTS (SELECT 1 FROM deployments WHERE tenant_id = $1)
				OR EXISTS (SELECT 1 FROM commits WHERE tenant_id = $1)`, tenantID).Scan(&complete, &partial)
	if err != nil {
		return false, false, fmt.Errorf("history state: %w", err)
	}
	return complete, partial && !complete, nil
}

// clearHistory removes the site's rows from every table a history writes.
func clearHistory(ctx context.Context, db *sql.DB, tenantID int64) error {
	for _, tbl := range historyTables {
		if _, err := db.ExecContext(ctx, `DELETE FROM `+tbl+` WHERE tenant_id = $1`, tenantID); err != nil {
			return fmt.Errorf("clear %s: %w", tbl, err)
		}
	}
	return nil
}

// historyCounts counts the site's rows per table.
func historyCounts(ctx context.Context, db *sql.DB, tenantID int64) (map[string]int64, error) {
	out := make(map[string]int64, len(historyTables))
	for _, tbl := range historyTables {
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+tbl+` WHERE tenant_id = $1`, tenantID).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", tbl, err)
		}
		out[tbl] = n
	}
	return out, nil
}

// vacuumHistory gathers planner statistics and sets the visibility map,
// without which no index-only scan avoids the heap; autovacuum would do
// both in production some time after a bulk load, and is off on some CI
// machines.
func vacuumHistory(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	for _, tbl := range historyTables {
		began := time.Now()
		if _, err := db.ExecContext(ctx, `VACUUM (ANALYZE) `+tbl); err != nil {
			return fmt.Errorf("vacuum %s: %w", tbl, err)
		}
		log.Info("history: vacuumed", "table", tbl, "took", time.Since(began).Round(time.Millisecond))
	}
	return nil
}

// historySQL builds the seeding statements of one history. Every number
// in them comes from Go integers and floats, so they are formatted into
// the text; names come from the fixed lists above, through temporary
// tables.
type historySQL struct {
	tenant      int64
	seed        int64
	deployments int
	groups      int     // release groups: deployments / 3, rounded up
	changes     int     // changes drawn
	start, step float64 // epoch seconds of the first deployment; seconds between deployments
	projects    int
	chunk       int
}

// rnd is a deterministic draw in [0, 1) for integer expression x: salt
// keeps draws of the same row independent.
func (h historySQL) rnd(x string, salt int) string {
	return fmt.Sprintf("((hashint8extended((%s)::bigint, %d) & 2147483647)::float8 / 2147483648.0)", x, h.seed*1009+int64(salt))
}

// sha is commit n's 40-hex-digit hash: random, as real hashes are, so the
// indexes keyed by them are as scattered as in production.
func (h historySQL) sha(n string) string {
	return fmt.Sprintf("substr(encode(sha256(('%d:' || (%s)::text)::bytea), 'hex'), 1, 40)", h.seed, n)
}

// env is the environment name (and type) of environment index e.
func env(e string) string {
	return "(ARRAY['development','staging','production'])[(" + e + ") + 1]"
}

// depID is the store's id of a deployment (store.DeploymentID): source,
// pipeline, environment, sequence number.
func depID(service, e, k string) string {
	return "'" + HistorySourceID + "/deploy-' || " + service + " || '/' || " + env(e) + " || '/' || (" + k + ")::text"
}

// prID is the store's id of a pull request (store.PullRequestID).
func prID(service, j string) string {
	return "'" + HistorySourceID + "/' || " + service + " || '/' || (" + j + ")::text"
}

// branch is the source branch of change j's pull request.
func branch(j, key string) string {
	return "'feature/' || COALESCE(" + key + " || '-', '') || (" + j + ")::text"
}

func writeHistory(ctx context.Context, db *sql.DB, tenantID int64, o HistoryOptions) error {
	// Temporary tables live in one session, so the whole load runs on one
	// connection.
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connection: %w", err)
	}
	defer conn.Close()
	groups := (o.Deployments + 2) / 3
	// Pull requests average 5 commits, direct commits 1: 4.4 per change.
	changes := int(math.Ceil(float64(o.Commits) / 4.4))
	start := o.Until.Add(-o.Span)
	h := historySQL{
		tenant:      tenantID,
		seed:        o.Seed,
		deployments: o.Deployments,
		groups:      groups,
		changes:     changes,
		start:       float64(start.Unix()),
		step:        o.Span.Seconds() / float64(o.Deployments),
		projects:    len(historyProjects),
		chunk:       o.ChunkGroups,
	}
	svcNames := make([]string, o.Services)
	svcProj := make([]int64, o.Services)
	for s := range svcNames {
		svcNames[s] = HistoryService(s)
		svcProj[s] = int64(s % len(historyProjects))
	}
	run := func(name, q string, args ...any) error {
		began := time.Now()
		r, err := conn.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		n, _ := r.RowsAffected()
		o.Log.Debug("history: step", "step", name, "rows", n, "took", time.Since(began).Round(time.Millisecond))
		return nil
	}
	// Bulk-load settings for this session only: a crash loses at most the
	// last statements of a load that is repeated anyway, and sorts of a
	// million rows stay in memory.
	for _, q := range []string{`SET synchronous_commit = off`, `SET work_mem = '256MB'`} {
		if err := run("session", q); err != nil {
			return err
		}
	}
	o.Log.Info("history: planning", "deployments", o.Deployments, "commits", o.Commits, "changes", changes,
		"services", o.Services, "from", start, "until", o.Until)
	steps := []struct{ name, q string }{
		{"services", `CREATE TEMP TABLE hsvc AS
			SELECT (ord - 1)::int AS s, name, proj::int FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS u(name, proj, ord)`},
		{"projects", `CREATE TEMP TABLE hproj AS
			SELECT (ord - 1)::int AS p, key FROM unnest($1::text[]) WITH ORDINALITY AS u(key, ord)`},
		// Release groups: which service each belongs to (skewed: service 0
		// is the busiest) and its ordinal among that service's groups.
		{"groups", fmt.Sprintf(`CREATE TEMP TABLE hg AS
			SELECT gg, s, (row_number() OVER (PARTITION BY s ORDER BY gg))::int AS k
			FROM (SELECT gg, least(%[2]d - 1, floor(%[2]d * power(%[3]s, 1.7)))::int AS s
				FROM generate_series(0, %[1]d - 1) gg) x`, groups, o.Services, h.rnd("gg", 1))},
		// Deployments: group gg goes to development, staging, production
		// in turn. prev_k is the service's previous successful deployment
		// to the environment (where the commit range starts); next_k and
		// next_at its next one from this group on (what first shipped the
		// group's changes there).
		{"deployment plan", fmt.Sprintf(`CREATE TEMP TABLE hd AS
			SELECT i, gg, s, k, e, ok, state, at,
				COALESCE(max(k) FILTER (WHERE ok) OVER (PARTITION BY s, e ORDER BY k
					ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS prev_k,
				min(k) FILTER (WHERE ok) OVER w AS next_k,
				min(at) FILTER (WHERE ok) OVER w AS next_at
			FROM (SELECT g.gg * 3 + e AS i, g.gg, g.s, g.k, e, r < 0.85 AS ok,
					CASE WHEN r < 0.85 THEN 'successful' WHEN r < 0.95 THEN 'failed' ELSE 'rolled_back' END AS state,
					to_timestamp(%[2]f + (g.gg * 3 + e) * %[3]f + %[4]s * %[3]f * 0.9) AS at
				FROM hg g CROSS JOIN generate_series(0, 2) e,
					LATERAL (SELECT %[5]s AS r) d
				WHERE g.gg * 3 + e < %[1]d) x
			-- Backwards, so the frame's start stays put and the minimum is
			-- kept as it goes; a frame that starts at the current row is
			-- recomputed for every row.
			WINDOW w AS (PARTITION BY s, e ORDER BY k DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)`,
			o.Deployments, h.start, h.step, h.rnd("g.gg * 3 + e", 2), h.rnd("g.gg * 3 + e", 3))},
		{"deployment plan index", `CREATE INDEX ON hd (gg, e)`},
		// Changes, each with its group, size, first commit number, work
		// start and merge time, and issue: two changes per issue, the
		// project mostly the service's.
		{"change plan", fmt.Sprintf(`CREATE TEMP TABLE hc AS
			WITH c AS (
				SELECT j, %[3]s < 0.85 AS pr, floor(j::float8 * %[2]d / %[1]d)::int AS gg
				FROM generate_series(0, %[1]d - 1) j
			), c2 AS (
				SELECT c.*, CASE WHEN pr THEN 2 + floor(%[4]s * 7)::int ELSE 1 END AS size,
					%[5]s < 0.85 AS keyed,
					CASE WHEN %[6]s < 0.9 THEN sv.proj ELSE floor(%[7]s * %[8]d)::int END AS p,
					d.at - make_interval(secs => 60 + %[9]s * 1800) AS mt,
					exp(ln(600) + %[10]s * (ln(21 * 86400) - ln(600))) AS lead
				FROM c JOIN hg g USING (gg) JOIN hsvc sv ON sv.s = g.s JOIN hd d ON d.gg = c.gg AND d.e = 0
			), c3 AS (
				SELECT c2.*, (sum(size) OVER (ORDER BY j) - size)::bigint AS first_n,
					first_value(p) OVER (PARTITION BY j / 2 ORDER BY j) AS ip
				FROM c2
			)
			SELECT j, gg, pr, size, first_n, mt - make_interval(secs => lead) AS ws, mt, j / 2 AS q,
				CASE WHEN keyed THEN pj.key || '-' || (j / 2 + 1)::text END AS key, pj.key AS pkey
			FROM c3 JOIN hproj pj ON pj.p = c3.ip`,
			changes, groups, h.rnd("j", 10), h.rnd("j", 11), h.rnd("j", 12), h.rnd("j", 13), h.rnd("j", 14),
			h.projects, h.rnd("j", 15), h.rnd("j", 16))},
		{"change plan index", `CREATE INDEX ON hc (gg)`},
		// Each group's commits are consecutive: changes are drawn in group
		// order.
		{"group commits", `CREATE TEMP TABLE hgc AS
			SELECT c.gg, g.s, g.k, min(c.first_n) AS first_n, max(c.first_n + c.size - 1) AS last_n, sum(c.size) AS cnt
			FROM hc c JOIN hg g USING (gg) GROUP BY c.gg, g.s, g.k`},
		{"group commits index", `CREATE INDEX ON hgc (s, k)`},
		{"group keys", `CREATE TEMP TABLE hgk AS SELECT DISTINCT gg, key FROM hc WHERE key IS NOT NULL`},
		{"group keys index", `CREATE INDEX ON hgk (gg)`},
		{"analyze plans", `ANALYZE hsvc, hproj, hg, hd, hc, hgc, hgk`},
	}
	if err := run("drop plans", `DROP TABLE IF EXISTS hsvc, hproj, hg, hd, hc, hgc, hgk`); err != nil {
		return err
	}
	for _, st := range steps {
		var args []any
		switch st.name {
		case "services":
			args = []any{svcNames, svcProj}
		case "projects":
			args = []any{historyProjects}
		}
		if err := run(st.name, st.q, args...); err != nil {
			return err
		}
	}
	o.Log.Info("history: plan ready", "groups", groups)
	for g0 := 0; g0 < groups; g0 += h.chunk {
		g1 := min(g0+h.chunk, groups)
		began := time.Now()
		for _, st := range h.chunkSteps(g0, g1) {
			if err := run(st.name, st.q); err != nil {
				return fmt.Errorf("groups %d–%d: %w", g0, g1, err)
			}
		}
		o.Log.Info("history: groups written", "done", g1, "of", groups, "took", time.Since(began).Round(time.Millisecond))
	}
	for _, st := range h.finalSteps(o) {
		began := time.Now()
		if err := run(st.name, st.q); err != nil {
			return err
		}
		o.Log.Info("history: written", "step", st.name, "took", time.Since(began).Round(time.Millisecond))
	}
	return run("drop plans", `DROP TABLE IF EXISTS hsvc, hproj, hg, hd, hc, hgc, hgk`)
}

type historyStep struct{ name, q string }

// chunkSteps write the rows of release groups [g0, g1).
func (h historySQL) chunkSteps(g0, g1 int) []historyStep {
	inChunk := func(col string) string { return fmt.Sprintf("%s >= %d AND %s < %d", col, g0, col, g1) }
	n := "(c.first_n + m)"
	authored := `CASE WHEN c.pr AND m < c.size - 1 THEN c.ws + (c.mt - c.ws) * (m::float8 / (c.size - 1))
		WHEN c.pr THEN c.mt ELSE c.ws END`
	commitBranch := `CASE WHEN c.pr AND m < c.size - 1 THEN ` + branch("c.j", "c.key") + ` ELSE 'main' END`
	return []historyStep{
		{"commits", fmt.Sprintf(`INSERT INTO commits (tenant_id, sha, source_id, repository_id, message, author_name,
				author_email, author_username, authored_at, url, merge, parent_sha, parent_gap, issue_keys,
				first_seen_at, branch)
			SELECT %[1]d, %[2]s, '%[3]s', sv.name,
				COALESCE(c.key || ' ', '') || CASE WHEN c.pr AND m = c.size - 1 THEN 'Merge pull request #' || c.j
					ELSE 'Change ' || c.j || ' part ' || (m + 1) END,
				'Developer ' || a, 'dev' || a || '@example.com', 'dev' || a, x.at,
				'https://git.example.com/' || sv.name || '/commit/' || %[2]s,
				c.pr AND m = c.size - 1, CASE WHEN %[4]s > 0 THEN %[5]s ELSE '' END, false, COALESCE(c.key, ''),
				x.at + interval '1 minute', %[6]s
			FROM hc c JOIN hg g USING (gg) JOIN hsvc sv ON sv.s = g.s
				CROSS JOIN LATERAL generate_series(0, c.size - 1) m
				CROSS JOIN LATERAL (SELECT %[7]s AS at, floor(%[8]s * 400)::int AS a) x
			WHERE %[9]s`,
			h.tenant, h.sha(n), HistorySourceID, n, h.sha(n+" - 1"), commitBranch, authored, h.rnd("c.j * 7 + m", 20),
			inChunk("c.gg"))},
		{"pull requests", fmt.Sprintf(`INSERT INTO pull_requests (tenant_id, id, source_id, repository_id, provider_id,
				number, title, body_excerpt, state, source_branch, destination_branch, author_name, author_email,
				author_username, reviewers, url, merge_commit_sha, issue_keys, created_at, merged_at, closed_at, updated_at)
			SELECT %[1]d, %[2]s, '%[3]s', sv.name, c.j::text, c.j, COALESCE(c.key || ': ', '') || 'Change ' || c.j, '',
				'MERGED', %[4]s, 'main', 'Developer ' || a, 'dev' || a || '@example.com', 'dev' || a, '[]',
				'https://git.example.com/' || sv.name || '/pull/' || c.j, %[5]s, COALESCE(c.key, ''),
				c.ws, c.mt, c.mt, c.mt
			FROM hc c JOIN hg g USING (gg) JOIN hsvc sv ON sv.s = g.s
				CROSS JOIN LATERAL (SELECT floor(%[6]s * 400)::int AS a) x
			WHERE c.pr AND %[7]s`,
			h.tenant, prID("sv.name", "c.j"), HistorySourceID, branch("c.j", "c.key"), h.sha("c.first_n + c.size - 1"),
			h.rnd("c.j", 21), inChunk("c.gg"))},
		{"deployments", fmt.Sprintf(`INSERT INTO deployments (tenant_id, id, source_id, pipeline_id, pipeline_name,
				environment_id, environment_name, environment_type, environment_basis, environment_url,
				sequence_number, state, repository_id, commit_sha, ref, service, url, issue_keys, commit_count,
				commits_complete, started_at, finished_at, updated_at)
			SELECT %[1]d, %[2]s, '%[3]s', 'deploy-' || sv.name, 'Deploy ' || sv.name, %[4]s, %[4]s, %[4]s,
				'provider', 'https://' || %[4]s || '.example.com/' || sv.name, d.k, d.state, sv.name,
				COALESCE(%[5]s, ''), 'main', sv.name, 'https://ci.example.com/' || sv.name || '/' || d.i, '',
				COALESCE(cc.cnt, 0), true, d.at - make_interval(secs => 120 + %[6]s * 600), d.at, d.at
			FROM hd d JOIN hsvc sv ON sv.s = d.s LEFT JOIN hgc g ON g.gg = d.gg
				LEFT JOIN LATERAL (SELECT sum(x.cnt) AS cnt FROM hgc x
					WHERE x.s = d.s AND x.k > d.prev_k AND x.k <= d.k) cc ON true
			WHERE %[7]s`,
			h.tenant, depID("sv.name", "d.e", "d.k"), HistorySourceID, env("d.e"), h.sha("g.last_n"), h.rnd("d.i", 22),
			inChunk("d.gg"))},
		// A deployment brought the commits of its service's groups since
		// its environment's previous successful deployment.
		{"deployment commits", fmt.Sprintf(`INSERT INTO deployment_commits (tenant_id, deployment_id, sha)
			SELECT %[1]d, %[2]s, %[3]s
			FROM hd d JOIN hsvc sv ON sv.s = d.s
				JOIN hgc x ON x.s = d.s AND x.k > d.prev_k AND x.k <= d.k
				CROSS JOIN LATERAL generate_series(x.first_n, x.last_n) n
			WHERE %[4]s`,
			h.tenant, depID("sv.name", "d.e", "d.k"), h.sha("n"), inChunk("d.gg"))},
		{"deployment links", fmt.Sprintf(`INSERT INTO issue_links (tenant_id, issue_key, entity_type, entity_id, created_at)
			SELECT DISTINCT %[1]d, k.key, 'deployment', %[2]s, d.at
			FROM hd d JOIN hsvc sv ON sv.s = d.s
				JOIN hgc x ON x.s = d.s AND x.k > d.prev_k AND x.k <= d.k
				JOIN hgk k ON k.gg = x.gg
			WHERE %[3]s`,
			h.tenant, depID("sv.name", "d.e", "d.k"), inChunk("d.gg"))},
		{"pull request links", fmt.Sprintf(`INSERT INTO issue_links (tenant_id, issue_key, entity_type, entity_id, created_at)
			SELECT %[1]d, c.key, 'pullrequest', %[2]s, c.ws
			FROM hc c JOIN hg g USING (gg) JOIN hsvc sv ON sv.s = g.s
			WHERE c.pr AND c.key IS NOT NULL AND %[3]s`,
			h.tenant, prID("sv.name", "c.j"), inChunk("c.gg"))},
		{"commit links", fmt.Sprintf(`INSERT INTO issue_links (tenant_id, issue_key, entity_type, entity_id, created_at)
			SELECT %[1]d, c.key, 'commit', %[2]s, c.ws
			FROM hc c CROSS JOIN LATERAL generate_series(0, c.size - 1) m
			WHERE c.key IS NOT NULL AND %[3]s`,
			h.tenant, h.sha(n), inChunk("c.gg"))},
		// The rollup: per environment type, the first successful deployment
		// of each change is the next successful one of its group's service
		// and environment, from its group on.
		{"change first deployments", fmt.Sprintf(`INSERT INTO change_first_deployments (tenant_id, environment_type,
				change_kind, change_id, deployment_id, service, environment_name, deployed_at, first_commit_at,
				lead_seconds, issue_keys)
			SELECT %[1]d, %[2]s, CASE WHEN c.pr THEN 'pullrequest' ELSE 'commit' END,
				CASE WHEN c.pr THEN %[3]s ELSE %[4]s END, %[5]s, sv.name, %[2]s, d.next_at, c.ws,
				floor(extract(epoch FROM d.next_at - c.ws))::bigint, COALESCE(c.key, '')
			FROM hc c JOIN hd d ON d.gg = c.gg JOIN hsvc sv ON sv.s = d.s
			WHERE d.next_k IS NOT NULL AND %[6]s`,
			h.tenant, env("d.e"), prID("sv.name", "c.j"), h.sha("c.first_n"), depID("sv.name", "d.e", "d.next_k"),
			inChunk("c.gg"))},
	}
}

// finalSteps write what spans groups: issues, their first deployments,
// incidents.
func (h historySQL) finalSteps(o HistoryOptions) []historyStep {
	incidents := max(1, o.Deployments/200)
	return []historyStep{
		{"jira issues", fmt.Sprintf(`INSERT INTO jira_issues (tenant_id, issue_id, issue_key, project_key, summary,
				status_name, status_category, updated_at, started_at, done_at, issue_type)
			SELECT %[1]d, (10000 + q)::text, key, pkey, 'Issue ' || key, 'Done', 'done', max(mt) + interval '1 day',
				min(ws) - make_interval(secs => %[2]s * 2 * 86400), max(mt) + interval '1 day',
				CASE WHEN %[3]s < 0.55 THEN 'Story' WHEN %[3]s < 0.85 THEN 'Bug' ELSE 'Task' END
			FROM hc WHERE key IS NOT NULL GROUP BY q, key, pkey`,
			h.tenant, h.rnd("q", 30), h.rnd("q", 31))},
		{"issue first deployments", fmt.Sprintf(`INSERT INTO issue_first_deployments (tenant_id, environment_type,
				issue_key, deployment_id, service, environment_name, deployed_at, issue_started_at)
			SELECT DISTINCT ON (c.key, d.e) %[1]d, %[2]s, c.key, %[3]s, sv.name, %[2]s, d.next_at, j.started_at
			FROM hc c JOIN hd d ON d.gg = c.gg JOIN hsvc sv ON sv.s = d.s
				LEFT JOIN jira_issues j ON j.tenant_id = %[1]d AND j.issue_key = c.key AND j.deleted_at IS NULL
			WHERE c.key IS NOT NULL AND d.next_k IS NOT NULL
			ORDER BY c.key, d.e, d.next_at`,
			h.tenant, env("d.e"), depID("sv.name", "d.e", "d.next_k"))},
		// What the store keeps beside each deployment's links (see
		// app/store/deployment_projects.go).
		{"deployment projects", fmt.Sprintf(`UPDATE deployments d SET linked_projects = l.projects
			FROM (SELECT entity_id, string_agg(DISTINCT split_part(issue_key, '-', 1), ' ') AS projects
				FROM issue_links WHERE tenant_id = %[1]d AND entity_type = 'deployment' GROUP BY entity_id) l
			WHERE d.tenant_id = %[1]d AND d.id = l.entity_id`, h.tenant)},
		// Incidents suspect a production deployment, opened minutes to
		// hours after it, resolved ten minutes to three days later; 3 %
		// are still open.
		{"incidents", fmt.Sprintf(`INSERT INTO incidents (tenant_id, id, source_id, provider_id, title, severity,
				status, service, url, ref_pipeline_id, ref_environment_id, ref_sequence_number, commit_sha,
				issue_keys, suspect_deployment_id, suspect_basis, opened_at, resolved_at, updated_at)
			SELECT %[1]d, '%[2]s/INC-' || x, '%[2]s', 'INC-' || x, 'Incident ' || x || ' on ' || sv.name,
				'sev' || (1 + floor(%[3]s * 4))::int, CASE WHEN open THEN 'triggered' ELSE 'resolved' END, sv.name,
				'https://incidents.example.com/INC-' || x, '', '', 0, '', '', %[4]s, 'service', opened,
				CASE WHEN NOT open THEN opened + make_interval(secs => exp(ln(600) + %[5]s * (ln(3 * 86400) - ln(600)))) END,
				opened
			FROM generate_series(1, %[6]d) x
				CROSS JOIN LATERAL (SELECT floor(%[7]s * %[8]d)::int AS gg) p
				JOIN hd d ON d.gg = p.gg AND d.e = 2 JOIN hsvc sv ON sv.s = d.s
				CROSS JOIN LATERAL (SELECT d.at + make_interval(secs => 300 + %[9]s * 6 * 3600) AS opened,
					%[10]s < 0.03 AS open) i`,
			h.tenant, HistorySourceID, h.rnd("x", 40), depID("sv.name", "d.e", "d.k"), h.rnd("x", 41), incidents,
			h.rnd("x", 42), h.groups, h.rnd("x", 43), h.rnd("x", 44))},
	}
}
