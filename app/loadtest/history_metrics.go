package loadtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/metrics"
	"github.com/keyline/keyline/app/release"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// Approaches to lead time that a metrics run measures.
const (
	// ApproachRollup reads lead times from change_first_deployments, as
	// the product does.
	ApproachRollup = "rollup"
	// ApproachJoin computes them at query time from deployment_commits,
	// commits and pull_requests, with the indexes alone (JoinLeadStore).
	ApproachJoin = "join"
)

// MetricsScenario is one kind of release report a metrics run asks for.
type MetricsScenario struct {
	Name     string
	Window   time.Duration
	Projects []string
	Service  string
}

// MetricsRun configures RunMetrics.
type MetricsRun struct {
	Store  release.Store
	Tenant *tenant.Tenant
	// End is the end of the history: each report's window ends up to
	// EndJitter before it, a whole number of days, so that requests do not
	// all ask for the same rows.
	End       time.Time
	EndJitter time.Duration
	Scenario  MetricsScenario
	// Requests are measured; Warmup more are made first and not counted.
	Requests, Warmup int
	Concurrency      int
	// Slowest is release.Filter.Slowest, as the project page asks.
	Slowest int
	Seed    uint64
}

// MetricsResult is what one scenario measured: the latency of whole
// release.Build calls, and the size of the last report, to show what was
// computed.
type MetricsResult struct {
	Scenario    MetricsScenario
	Approach    string
	Concurrency int
	Requests    int
	Latency     Latency
	P95         time.Duration
	Deployments int // deployments in the last report
	Changes     int
	Took        time.Duration
}

// RunMetrics calls release.Build Requests times from Concurrency workers
// and reports latency percentiles; the first error stops the run.
func RunMetrics(ctx context.Context, r MetricsRun) (MetricsResult, error) {
	if r.Store == nil || r.Tenant == nil || r.Requests < 1 || r.Concurrency < 1 || r.Scenario.Window <= 0 {
		return MetricsResult{}, errors.New("loadtest: metrics: store, tenant, requests, concurrency and window are required")
	}
	res := MetricsResult{Scenario: r.Scenario, Concurrency: r.Concurrency, Requests: r.Requests}
	jitterDays := int(r.EndJitter / (24 * time.Hour))
	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, r.Requests)
		firstErr  error
		last      *release.Report
		wg        sync.WaitGroup
	)
	total := int64(r.Requests + r.Warmup)
	began := time.Now()
	for w := range r.Concurrency {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(r.Seed, uint64(w)))
			for {
				n := next.Add(1) - 1
				if n >= total || ctx.Err() != nil {
					return
				}
				to := r.End
				if jitterDays > 0 {
					to = to.AddDate(0, 0, -rnd.IntN(jitterDays+1))
				}
				f := release.Filter{Projects: r.Scenario.Projects, Service: r.Scenario.Service,
					Window:  metrics.Window{From: to.Add(-r.Scenario.Window), To: to, Location: time.UTC},
					Slowest: r.Slowest, Latest: release.TimelineDeployments}
				t0 := time.Now()
				rep, err := release.Build(ctx, r.Store, r.Tenant, f)
				d := time.Since(t0)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil && n >= int64(r.Warmup) {
					latencies = append(latencies, d)
					last = rep
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	res.Took = time.Since(began)
	if firstErr != nil {
		return res, fmt.Errorf("loadtest: metrics %s: %w", r.Scenario.Name, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("loadtest: metrics %s: %w", r.Scenario.Name, err)
	}
	slices.Sort(latencies)
	var sum time.Duration
	for _, l := range latencies {
		sum += l
	}
	res.Latency = Latency{P50: Percentile(latencies, 50), P90: Percentile(latencies, 90), P99: Percentile(latencies, 99),
		Max: latencies[len(latencies)-1], Mean: sum / time.Duration(len(latencies))}
	res.P95 = Percentile(latencies, 95)
	if last != nil {
		res.Deployments, res.Changes = last.DeploymentCount, last.Changes
	}
	return res, nil
}

// JoinLeadStore is the alternative to the change rollup that issue 5 asks
// to measure: lead times computed when asked, by joining the production
// deployments of the window to the commits they carried, keeping each
// commit's first successful production deployment (one earlier in any
// window hides it), and grouping the commits into changes as the store's
// write side does (a merged pull request with its branch's commits, else
// the commit). Only ChangeLeads is replaced, and only for production and
// the service and project filters; the other reads are the Store's.
type JoinLeadStore struct {
	release.Store
	DB *sql.DB
}

// joinLeadSQL is the query-time lead time. $1 tenant, $2/$3 the window,
// $4 a service or ”, $5 a LIKE pattern of project keys or ”.
const joinLeadSQL = `WITH d AS (
	SELECT id, finished_at FROM deployments
	WHERE tenant_id = $1 AND environment_type = 'production' AND state = 'successful'
		AND finished_at >= $2 AND finished_at < $3 AND ($4 = '' OR service = $4)
), shipped AS (
	SELECT d.id AS dep, d.finished_at, dc.sha
	FROM d JOIN deployment_commits dc ON dc.tenant_id = $1 AND dc.deployment_id = d.id
	WHERE NOT EXISTS (
		SELECT 1 FROM deployment_commits e
		JOIN deployments ed ON ed.tenant_id = e.tenant_id AND ed.id = e.deployment_id
		WHERE e.tenant_id = $1 AND e.sha = dc.sha AND ed.environment_type = 'production'
			AND ed.state = 'successful' AND ed.finished_at < d.finished_at)
), cm AS (
	SELECT s.dep, s.finished_at, s.sha, c.authored_at, c.repository_id, c.branch, c.issue_keys
	FROM shipped s JOIN commits c ON c.tenant_id = $1 AND c.sha = s.sha
), prs AS (
	SELECT cm.dep, p.id, p.repository_id, p.source_branch, p.merge_commit_sha, p.created_at, p.issue_keys
	FROM cm JOIN pull_requests p ON p.tenant_id = $1 AND p.merge_commit_sha = cm.sha AND p.state = 'MERGED'
), changes AS (
	SELECT COALESCE(m.id, b.id, 'commit ' || cm.sha) AS change, cm.finished_at, cm.authored_at,
		cm.issue_keys || ' ' || COALESCE(m.issue_keys, b.issue_keys, '') AS keys
	FROM cm
	LEFT JOIN prs m ON m.dep = cm.dep AND m.merge_commit_sha = cm.sha
	LEFT JOIN prs b ON m.id IS NULL AND b.dep = cm.dep AND b.repository_id = cm.repository_id
		AND cm.branch <> '' AND b.source_branch = cm.branch
)
SELECT min(finished_at), floor(extract(epoch FROM min(finished_at) - min(authored_at)))::bigint
FROM changes GROUP BY change
HAVING $5 = '' OR (' ' || string_agg(keys, ' ')) LIKE $5`

// ChangeLeads computes the scope's lead times from the commit tables.
func (j JoinLeadStore) ChangeLeads(ctx context.Context, t *tenant.Tenant, sc store.ReleaseScope) ([]store.ChangeLead, error) {
	if len(sc.Types) > 1 || (len(sc.Types) == 1 && sc.Types[0] != devops.EnvironmentProduction) ||
		len(sc.Projects) > 1 || sc.Environment != "" {
		return nil, errors.New("loadtest: join lead times: only production, one project and a service are measured")
	}
	pattern := ""
	if len(sc.Projects) == 1 {
		pattern = "% " + strings.ReplaceAll(sc.Projects[0], "_", `\_`) + "-%"
	}
	rows, err := j.DB.QueryContext(ctx, joinLeadSQL, t.ID, sc.From, sc.To, strings.ToLower(sc.Service), pattern)
	if err != nil {
		return nil, fmt.Errorf("loadtest: join lead times: %w", err)
	}
	defer rows.Close()
	var out []store.ChangeLead
	for rows.Next() {
		var (
			at   time.Time
			lead sql.NullInt64
		)
		if err := rows.Scan(&at, &lead); err != nil {
			return nil, fmt.Errorf("loadtest: join lead times: %w", err)
		}
		out = append(out, store.ChangeLead{DeployedAt: at.UTC(), Lead: time.Duration(lead.Int64) * time.Second,
			Known: lead.Valid})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("loadtest: join lead times: %w", err)
	}
	return out, nil
}

// JoinLeadSQL returns the query JoinLeadStore runs, for EXPLAIN.
func JoinLeadSQL() string { return joinLeadSQL }
