package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" for the metrics run's database/sql handle
	"golang.org/x/sync/errgroup"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/loadtest"
	"github.com/keyline/keyline/app/release"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

const loadtestUsage = `usage: keyline loadtest ingest|panel|flood|metrics [flags]

Load-tests a running Keyline. ingest, panel and flood first seed the
database the server uses (the same KEYLINE_* settings as keyline serve:
KEYLINE_DATABASE_URL, KEYLINE_DATA_DIR, KEYLINE_SECRET_KEY, KEYLINE_APP_KEY),
then send requests from --concurrency workers and report throughput, latency
percentiles and answers by status.

ingest  seeds --tenants synthetic Jira sites, loadtest-1 … loadtest-N, each
        with --sources fresh GitHub sources, and sends signed GitHub pushes
        to <url>/ingest/<token>, round-robin over the sources. The defaults
        (16 sites × 4 sources) keep each source and site under the
        server's default rate limits up to about 3,000 deliveries/s; a
        faster run needs more of them, or higher KEYLINE_INGEST_* limits
        on the server.
panel   seeds --tenants synthetic Jira sites, loadtest-panel-1 … -N, each with
        --issues issues with branches, commits, pull requests, builds,
        deployments and incidents, and loads their issue panels as Jira's
        iframes do: GET <url>/jira/panel with Jira's iframe parameters and a
        new HS256 token for every request, signed with the site's shared
        secret. Sites that already hold their issues are not seeded again.
        On PostgreSQL the database is ANALYZEd after seeding, so the
        planner has the statistics autovacuum would gather in production.
        With --write-rate R the sites also receive, during the whole run
        (warm-up included), R signed generic-API deliveries per second in
        all, round-robin over the sites, each to <url>/ingest/<token>/builds
        of a generic source created afresh for the run (the previous run's
        is deleted): a newer state (time, URL, sequence number) of a
        finished build of a random seeded issue, one build per issue and
        run, so panels grow by one build per run however many writes.
        Every write changes its site's data, so the server's cached panels
        of that site are rendered again. With --write-kind jira the writes
        are instead Jira jira:issue_updated webhooks, POSTed to
        <url>/jira/webhooks/issue-updated with a new JWT each, signed with
        the site's shared secret as Jira signs them: each moves a random
        seeded issue to its next status (In Progress, In Review, Done, in
        turn), so only that issue's cached panel is rendered again. Writes
        are sent by ceil(R/10) workers (at most 32), apart from
        --concurrency and --rate, which are the loads', and reported apart;
        a build answered other than 200 "accepted", or an issue event
        answered other than 204, fails the run. The server's default rate
        limits (50/s per source, 200/s per site) allow builds up to 50/s
        per site, so R up to 50 × --tenants; Jira's webhooks have no such
        limit.

flags:
  --url http://127.0.0.1:8080  where the server listens
  --tenants 16 (panel: 8)      synthetic sites to seed and load
  --concurrency 32             workers, each with one request in flight
  --duration 20s               measured window
  --warmup 2s                  sent first, not counted
  --rate 0                     total requests per second; 0: as fast as possible
  --timeout 30s                time limit of one request
  --json                       print the result as JSON
ingest only:
  --commits 10                 commits per push
  --sources 4                  GitHub sources per site
panel only:
  --issues 50                  issues per site
  --write-rate 0               writes per second to the sites during the
                               run, in all; 0: none
  --write-kind build           what each write is: build (a generic-API build
                               delivery) or jira (a Jira issue-updated
                               webhook); needs --write-rate

The exit status is 1 when any measured request failed or got no answer at
all: for ingest, any answer other than 200 "accepted"; for panel, any answer
other than 200 with the requested issue's panel, or a write answered other
than 200 "accepted" (a build) or 204 (a Jira issue event). The error line
says which.
Run it against a database of its own: it adds sites and data to it.

` + floodUsage + `

metrics needs no server: it measures the release report (release.Build) as
the project page builds it, listing the latest 400 deployments, on PostgreSQL. It first seeds site
loadtest-history with --deployments deployments and --commits commits over
three years (set-based SQL inside the database; minutes at the default
scale), unless the site already holds its history, which it then reuses.
It then builds reports over windows ending at the history's end (up to 29
days before it), site-wide, for one project and for one service, and prints
p50/p90/p95/p99/max per scenario. Its flags:
  --database-url URL           PostgreSQL (default KEYLINE_DATABASE_URL)
  --deployments 1000000        deployments to seed
  --commits 5000000            commits to seed (about)
  --services 25                services to seed
  --seed 1                     pseudo-random seed of the history
  --seed-only                  seed (or find) the history and stop
  --requests 200               reports built per scenario, after --warmup 5
  --concurrency 1              reports built at a time
  --window 30d,90d,365d        windows (days), comma-separated
  --project PAY                project of the project scenario; '' skips it
  --service payments-api       service of the service scenario; '' skips it
  --approach rollup            rollup (the product), join (lead time computed
                               from the commit tables at query time) or both
  --max-p95 200ms              exit 1 when a scenario's p95 is above; 0: never
  --json                       print the results as JSON
Reports are built in this process, with keyline serve's GOGC default (400)
unless GOGC is set. KEYLINE_SECRET_KEY seals the site's shared secret when
it is installed; a random key is used when unset (the secret is never
needed here).
`

// loadtestFlags are the settings of one load run.
type loadtestFlags struct {
	url         string
	tenants     int
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	rate        float64
	commits     int
	sources     int
	issues      int
	writeRate   float64
	writeKind   string
	timeout     time.Duration
	asJSON      bool
}

// Bounds that keep a mistyped flag from seeding thousands of sites or
// building megabyte pushes; real load needs neither.
const (
	maxLoadTenants = 1000
	maxLoadCommits = 1000
	maxLoadIssues  = 10000
	// maxLoadSources stays under store.MaxSourcesPerTenant (100), which
	// also counts a site's sources that are not the load test's.
	maxLoadSources = 50
)

// loadtestSourceName names the sources the load test creates, so that a
// re-run can retire the previous run's ones.
const loadtestSourceName = "loadtest"

// runLoadtest runs "keyline loadtest …".
func runLoadtest(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("loadtest: missing scenario (ingest, panel, flood, metrics); see keyline loadtest help")
	}
	scenario, args := args[0], args[1:]
	switch scenario {
	case "metrics":
		return loadtestMetrics(ctx, args, env, stdout, stderr)
	case "flood":
		return loadtestFlood(ctx, args, env, stdout, stderr)
	case "ingest", "panel":
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, loadtestUsage)
		return err
	default:
		return fmt.Errorf("loadtest: unknown scenario %q (ingest, panel, flood, metrics)", scenario)
	}
	f, err := parseLoadtestFlags(scenario, args)
	if errors.Is(err, flag.ErrHelp) {
		_, err := fmt.Fprint(stdout, loadtestUsage)
		return err
	}
	if err != nil {
		return fmt.Errorf("loadtest %s: %w", scenario, err)
	}
	if scenario == "panel" {
		return loadtestPanel(ctx, f, env, stdout, stderr)
	}
	return loadtestIngest(ctx, f, env, stdout, stderr)
}

func parseLoadtestFlags(scenario string, args []string) (*loadtestFlags, error) {
	f := &loadtestFlags{}
	fs := flag.NewFlagSet("keyline loadtest "+scenario, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080", "where the server listens")
	tenants := 8
	if scenario == "ingest" {
		// Spread so that the server's default rate limits (50/s per
		// source, 200/s per site) stay out of a throughput run's way.
		tenants = 16
	}
	fs.IntVar(&f.tenants, "tenants", tenants, "synthetic sites")
	fs.IntVar(&f.concurrency, "concurrency", 32, "workers")
	fs.DurationVar(&f.duration, "duration", 20*time.Second, "measured window")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "warm-up, not counted")
	fs.Float64Var(&f.rate, "rate", 0, "requests per second; 0: as fast as possible")
	// Each scenario takes only its own flags, so a flag meant for the other
	// one is refused rather than silently ignored.
	switch scenario {
	case "ingest":
		fs.IntVar(&f.commits, "commits", 10, "commits per push")
		fs.IntVar(&f.sources, "sources", 4, "GitHub sources per site")
	case "panel":
		fs.IntVar(&f.issues, "issues", 50, "issues per site")
		fs.Float64Var(&f.writeRate, "write-rate", 0, "writes per second to the sites during the run; 0: none")
		fs.StringVar(&f.writeKind, "write-kind", writeKindBuild, "what each write is: build or jira")
	}
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "time limit of one request")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	kindSet := false
	fs.Visit(func(fl *flag.Flag) { kindSet = kindSet || fl.Name == "write-kind" })
	u, err := serverURL(f.url)
	if err != nil {
		return nil, err
	}
	f.url = u
	switch {
	case f.tenants < 1 || f.tenants > maxLoadTenants:
		return nil, fmt.Errorf("--tenants %d: want 1 to %d", f.tenants, maxLoadTenants)
	case f.concurrency < 1:
		return nil, fmt.Errorf("--concurrency %d: want at least 1", f.concurrency)
	case f.duration <= 0:
		return nil, fmt.Errorf("--duration %s: want a positive duration", f.duration)
	case f.warmup < 0:
		return nil, fmt.Errorf("--warmup %s: must not be negative", f.warmup)
	case f.rate < 0:
		return nil, fmt.Errorf("--rate %g: must not be negative", f.rate)
	case scenario == "ingest" && (f.commits < 1 || f.commits > maxLoadCommits):
		return nil, fmt.Errorf("--commits %d: want 1 to %d", f.commits, maxLoadCommits)
	case scenario == "ingest" && (f.sources < 1 || f.sources > maxLoadSources):
		return nil, fmt.Errorf("--sources %d: want 1 to %d", f.sources, maxLoadSources)
	case scenario == "panel" && (f.issues < 1 || f.issues > maxLoadIssues):
		return nil, fmt.Errorf("--issues %d: want 1 to %d", f.issues, maxLoadIssues)
	case !(f.writeRate >= 0) || math.IsInf(f.writeRate, 0): // also NaN
		return nil, fmt.Errorf("--write-rate %g: want 0 (no writes) or a positive rate", f.writeRate)
	case scenario == "panel" && f.writeKind != writeKindBuild && f.writeKind != writeKindJira:
		return nil, fmt.Errorf("--write-kind %q: want %s or %s", f.writeKind, writeKindBuild, writeKindJira)
	case kindSet && f.writeRate == 0:
		// Otherwise a run meant to write would quietly write nothing.
		return nil, fmt.Errorf("--write-kind %s needs --write-rate", f.writeKind)
	case f.timeout <= 0:
		return nil, fmt.Errorf("--timeout %s: want a positive duration", f.timeout)
	}
	return f, nil
}

// ingestResultJSON is what --json prints.
type ingestResultJSON struct {
	Scenario string           `json:"scenario"`
	URL      string           `json:"url"`
	Database string           `json:"database"`
	Tenants  int              `json:"tenants_seeded"`
	Sources  int              `json:"sources_per_tenant"`
	Commits  int              `json:"commits_per_push"`
	Report   *loadtest.Report `json:"report"`
}

func loadtestIngest(ctx context.Context, f *loadtestFlags, env map[string]string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	seeded, dialect, err := seedLoadtest(ctx, cfg, []siteGroup{{prefix: ingestClientKeyPrefix, sites: f.tenants, sources: f.sources}}, stderr)
	if err != nil {
		return fmt.Errorf("loadtest ingest: seed: %w", err)
	}
	sources := seeded[0]
	if !f.asJSON {
		fmt.Fprintf(stdout, "seeded %d tenants (%s1 … %s%d) with %d new GitHub sources each (%s)\n",
			f.tenants, ingestClientKeyPrefix, ingestClientKeyPrefix, f.tenants, f.sources, dialect)
	}
	client := loadtest.NewKeepAliveClient(f.concurrency, f.timeout)
	if err := checkReady(ctx, client, f.url); err != nil {
		return fmt.Errorf("loadtest ingest: %w", err)
	}
	runID, err := randomRunID()
	if err != nil {
		return fmt.Errorf("loadtest ingest: %w", err)
	}
	gen, err := loadtest.GitHubPushes{BaseURL: f.url, Sources: sources, Commits: f.commits, RunID: runID}.Generator()
	if err != nil {
		return fmt.Errorf("loadtest ingest: %w", err)
	}
	if !f.asJSON {
		fmt.Fprintf(stdout, "sending GitHub pushes of %d commits to %s: %s warm-up, then %s measured\n",
			f.commits, f.url, f.warmup, f.duration)
	}
	rep, runErr := loadtest.Run(ctx, loadtest.Config{
		Client:      client,
		Concurrency: f.concurrency,
		Warmup:      f.warmup,
		Duration:    f.duration,
		Rate:        f.rate,
		Generator:   gen,
		Check:       loadtest.CheckIngest,
	})
	if rep == nil { // the configuration was refused; flags are checked, so a bug
		return fmt.Errorf("loadtest ingest: %w", runErr)
	}
	if f.asJSON {
		err = writeJSON(stdout, ingestResultJSON{Scenario: "ingest", URL: f.url, Database: dialect,
			Tenants: f.tenants, Sources: f.sources, Commits: f.commits, Report: rep})
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return fmt.Errorf("loadtest ingest: write report: %w", err)
	}
	if runErr != nil {
		return fmt.Errorf("loadtest ingest: interrupted; the report covers the requests made until then: %w", runErr)
	}
	if err := rep.Err(); err != nil {
		if rep.Status[http.StatusNotFound] > 0 {
			return fmt.Errorf("loadtest ingest: %w (404: is --url a Keyline on the same database and KEYLINE_APP_KEY?)", err)
		}
		if rep.Status[http.StatusTooManyRequests] > 0 {
			return fmt.Errorf("loadtest ingest: %w (429: the server's rate limits; spread over more --tenants and --sources, "+
				"or raise KEYLINE_INGEST_SOURCE_RATE and KEYLINE_INGEST_SITE_RATE on the server)", err)
		}
		return fmt.Errorf("loadtest ingest: %w", err)
	}
	return nil
}

// ingestClientKeyPrefix names the ingest scenario's sites: loadtest-1 ….
const ingestClientKeyPrefix = "loadtest-"

// siteGroup is a set of synthetic sites to seed: <prefix>1 … <prefix><sites>,
// each with sources fresh GitHub sources.
type siteGroup struct {
	prefix         string
	sites, sources int
}

// seedLoadtest installs the synthetic Jira sites of each group and gives
// each the group's number of fresh GitHub sources, returning every group's
// sources' tokens and secrets (which exist only here), site by site. Each
// site's previous load-test sources are deleted first, so repeated runs
// stay under store.MaxSourcesPerTenant; their history stays in the
// database. The store is closed again before the load starts: the load
// test must not hold connections the server could use.
func seedLoadtest(ctx context.Context, cfg *config.Config, groups []siteGroup, logw io.Writer) ([][]loadtest.Source, string, error) {
	st, err := openStore(ctx, cfg, newLogger(quietConfig(cfg), logw))
	if err != nil {
		return nil, "", err
	}
	defer st.Close()
	out := make([][]loadtest.Source, len(groups))
	for g, group := range groups {
		for i := 1; i <= group.sites; i++ {
			sources, err := seedLoadtestSite(ctx, st, cfg, fmt.Sprint(group.prefix, i), group.sources)
			if err != nil {
				return nil, "", err
			}
			out[g] = append(out[g], sources...)
		}
	}
	return out, st.Dialect(), nil
}

// seedLoadtestSite installs one synthetic site and replaces its load-test
// sources with n new ones.
func seedLoadtestSite(ctx context.Context, st *store.Store, cfg *config.Config, client string, n int) ([]loadtest.Source, error) {
	shared := make([]byte, 32)
	if _, err := rand.Read(shared); err != nil {
		return nil, fmt.Errorf("shared secret: %w", err)
	}
	t, err := st.UpsertTenant(ctx, tenant.Install{
		AppKey:       cfg.JiraAppKey(),
		ClientKey:    client,
		BaseURL:      fmt.Sprintf("https://%s.atlassian.net", client),
		ProductType:  "jira",
		Description:  "Keyline load test",
		SharedSecret: []byte(hex.EncodeToString(shared)),
	})
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", client, err)
	}
	old, err := st.ListSources(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", client, err)
	}
	for _, s := range old {
		if s.Name == loadtestSourceName {
			if err := st.DeleteSource(ctx, t, s.ID); err != nil {
				return nil, fmt.Errorf("tenant %s: retire source %s: %w", client, s.ID, err)
			}
		}
	}
	sources := make([]loadtest.Source, 0, n)
	for range n {
		_, token, secret, err := st.CreateSource(ctx, t, store.SourceGitHub, loadtestSourceName)
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", client, err)
		}
		sources = append(sources, loadtest.Source{Token: token, Secret: secret})
	}
	return sources, nil
}

// checkReady fails early, with one clear line, when nothing answers at
// baseURL or its database is down, instead of a report full of errors.
func checkReady(ctx context.Context, client *http.Client, baseURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("readiness check: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("no Keyline answers at %s: %w", baseURL, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the Keyline at %s is not ready: /readyz answered %d", baseURL, resp.StatusCode)
	}
	return nil
}

// randomRunID tells this run's repositories and delivery ids apart from
// earlier runs' in the same database.
func randomRunID() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("run id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// panelClientKeyPrefix names the panel scenario's sites, apart from the
// ingest scenario's, so that the pushes of one never land in the other's
// issue panels.
const panelClientKeyPrefix = "loadtest-panel-"

// panelSourceName names the source through which the panel scenario records
// its history; a re-run finds it and writes the same entities again.
const panelSourceName = "loadtest-panel"

// panelWritesSourceName names the generic source through which a panel run
// with --write-rate writes; each such run replaces it, since only its
// creation reveals its token and secret.
const panelWritesSourceName = "loadtest-panel-writes"

// The kinds of write of a panel run with --write-rate (--write-kind): a
// generic-API build delivery, which makes all of its site's cached panels
// stale, or a Jira issue event, which makes its issue's panel stale.
const (
	writeKindBuild = "build"
	writeKindJira  = "jira"
)

// maxPanelWriters bounds the writers of a panel run: each has a write in
// flight, so even at 32 the server's rate limits, not the writers, bound
// what can be sent.
const maxPanelWriters = 32

// panelWriters is how many workers send a panel run's writes at rate
// deliveries per second: enough that each has 100 ms per write, so a slow
// answer during a burst of panel loads does not hold the rate back.
func panelWriters(rate float64) int {
	return max(1, min(maxPanelWriters, int(math.Ceil(rate/10))))
}

// panelResultJSON is what --json prints for the panel scenario.
type panelResultJSON struct {
	Scenario string `json:"scenario"`
	URL      string `json:"url"`
	Database string `json:"database"`
	Tenants  int    `json:"tenants_seeded"`
	// AlreadySeeded counts the tenants that held their issues from an
	// earlier run and were not written again.
	AlreadySeeded int `json:"tenants_already_seeded"`
	Issues        int `json:"issues_per_tenant"`
	// SeedSeconds is how long seeding took, so a slow one is not mistaken
	// for part of the run.
	SeedSeconds float64 `json:"seed_seconds"`
	// Tokens says how tokens were made: one per request, as Jira does.
	Tokens string           `json:"tokens"`
	Report *loadtest.Report `json:"report"`
	// WriteRate is --write-rate; WriteKind (--write-kind) and Writes, the
	// writes' report, are absent when it is 0.
	WriteRate float64          `json:"write_rate"`
	WriteKind string           `json:"write_kind,omitempty"`
	Writes    *loadtest.Report `json:"writes,omitempty"`
}

func loadtestPanel(ctx context.Context, f *loadtestFlags, env map[string]string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	began := time.Now()
	// Only build writes need a source; Jira's events are signed with the
	// site's shared secret.
	buildWrites := f.writeRate > 0 && f.writeKind == writeKindBuild
	sites, writeSources, found, dialect, err := seedPanelLoadtest(ctx, cfg, f.tenants, f.issues, buildWrites, stderr)
	if err != nil {
		return fmt.Errorf("loadtest panel: seed: %w", err)
	}
	seeded := time.Since(began)
	if !f.asJSON {
		fmt.Fprintf(stdout, "seeded %d tenants (%s1 … %s%d) with %d issues each in %s (%s; %d already held them)\n",
			len(sites), panelClientKeyPrefix, panelClientKeyPrefix, len(sites), f.issues, seeded.Round(10*time.Millisecond), dialect, found)
	}
	// The generator shares the server's cores: the keep-alive client, as
	// for ingest, since net/http's transport costs it a third more CPU, and
	// keyline serve's GOGC (unless GOGC is set), since its small heap of
	// short-lived requests and answers would otherwise be collected many
	// times a second.
	setGCPercent(env)
	client := loadtest.NewKeepAliveClient(f.concurrency, f.timeout)
	if err := checkReady(ctx, client, f.url); err != nil {
		return fmt.Errorf("loadtest panel: %w", err)
	}
	gen, err := loadtest.IssuePanels{BaseURL: f.url, AppKey: cfg.JiraAppKey(), Sites: sites}.Generator()
	if err != nil {
		return fmt.Errorf("loadtest panel: %w", err)
	}
	run := loadtest.PanelRun{Panels: loadtest.Config{
		Client:       client,
		Concurrency:  f.concurrency,
		Warmup:       f.warmup,
		Duration:     f.duration,
		Rate:         f.rate,
		Generator:    gen,
		CheckRequest: loadtest.CheckPanel,
	}}
	if f.writeRate > 0 {
		runID, err := randomRunID()
		if err != nil {
			return fmt.Errorf("loadtest panel: %w", err)
		}
		var writes loadtest.Generator
		check := loadtest.CheckIngest
		if f.writeKind == writeKindJira {
			writes, err = loadtest.PanelIssueEvents{BaseURL: f.url, Sites: sites, RunID: runID}.Generator()
			check = loadtest.CheckIssueEvent
		} else {
			targets := make([]loadtest.PanelWriteSite, len(sites))
			for i, s := range sites {
				targets[i] = loadtest.PanelWriteSite{Source: writeSources[i], Issues: s.Issues}
			}
			writes, err = loadtest.PanelWrites{BaseURL: f.url, Sites: targets, RunID: runID}.Generator()
		}
		if err != nil {
			return fmt.Errorf("loadtest panel: %w", err)
		}
		n := panelWriters(f.writeRate)
		// A client of its own: the writes must not wait for the panel
		// loads' connections, nor take theirs.
		run.Writes = loadtest.Config{Client: loadtest.NewKeepAliveClient(n, f.timeout), Concurrency: n,
			Warmup: f.warmup, Duration: f.duration, Rate: f.writeRate, Generator: writes, Check: check}
	}
	if !f.asJSON {
		fmt.Fprintf(stdout, "loading issue panels from %s with a new token per request: %s warm-up, then %s measured\n",
			f.url, f.warmup, f.duration)
		switch {
		case f.writeRate > 0 && f.writeKind == writeKindJira:
			fmt.Fprintf(stdout, "meanwhile sending Jira issue-updated webhooks (a new status of a random issue) at %g/s in all, "+
				"round-robin over the %d sites (%d workers)\n", f.writeRate, len(sites), run.Writes.Concurrency)
		case f.writeRate > 0:
			fmt.Fprintf(stdout, "meanwhile writing a build of a random issue at %g/s in all, round-robin over the %d sites (%d workers)\n",
				f.writeRate, len(sites), run.Writes.Concurrency)
		}
	}
	rep, runErr := run.Run(ctx)
	if rep == nil { // the configuration was refused; flags are checked, so a bug
		return fmt.Errorf("loadtest panel: %w", runErr)
	}
	if f.asJSON {
		res := panelResultJSON{Scenario: "panel", URL: f.url, Database: dialect, Tenants: len(sites),
			AlreadySeeded: found, Issues: f.issues, SeedSeconds: seeded.Seconds(), Tokens: "new per request", Report: rep.Panels,
			WriteRate: f.writeRate, Writes: rep.Writes}
		if f.writeRate > 0 {
			res.WriteKind = f.writeKind
		}
		err = writeJSON(stdout, res)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return fmt.Errorf("loadtest panel: write report: %w", err)
	}
	if runErr != nil {
		return fmt.Errorf("loadtest panel: interrupted; the report covers the requests made until then: %w", runErr)
	}
	if err := rep.Err(); err != nil {
		if rep.Panels.Status[http.StatusUnauthorized] > 0 {
			return fmt.Errorf("loadtest panel: %w (401: is --url a Keyline on the same database, KEYLINE_SECRET_KEY and KEYLINE_APP_KEY?)", err)
		}
		if rep.Writes != nil && rep.Writes.Status[http.StatusTooManyRequests] > 0 {
			return fmt.Errorf("loadtest panel: %w (429: the server's rate limits; spread over more --tenants, "+
				"or raise KEYLINE_INGEST_SOURCE_RATE and KEYLINE_INGEST_SITE_RATE on the server)", err)
		}
		return fmt.Errorf("loadtest panel: %w", err)
	}
	return nil
}

// seedPanelLoadtest installs n synthetic Jira sites, each with a source
// holding the history of issues issues, and returns the sites with their
// shared secrets, when writes, each site's new write source (see
// panelWritesSourceName), and how many of the sites already held their
// history. A site
// installed by an earlier run keeps its secret, so a running server's
// cached tenant stays valid, and its source and history (see
// panelSiteSeeded). Sites are seeded in parallel on PostgreSQL; SQLite has
// one writer, so there one at a time. The store is closed before the load
// starts, like seedLoadtest's.
func seedPanelLoadtest(ctx context.Context, cfg *config.Config, n, issues int, writes bool, logw io.Writer) ([]loadtest.PanelSite, []loadtest.Source, int, string, error) {
	st, err := openStore(ctx, cfg, newLogger(quietConfig(cfg), logw))
	if err != nil {
		return nil, nil, 0, "", err
	}
	defer st.Close()
	runID, err := randomRunID()
	if err != nil {
		return nil, nil, 0, "", err
	}
	// The history ends at the start of today, so that seeding a site again
	// today, after a run was interrupted, writes the same rows (see
	// loadtest.PanelSeed).
	until := time.Now().UTC().Truncate(24 * time.Hour)
	sites := make([]loadtest.PanelSite, n)
	var writeSources []loadtest.Source
	if writes {
		writeSources = make([]loadtest.Source, n)
	}
	var found atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	if st.Dialect() == store.DialectPostgres {
		g.SetLimit(4) // a quarter of the pool: the server may be serving meanwhile
	} else {
		g.SetLimit(1)
	}
	for i := range sites {
		g.Go(func() error {
			site, seededBefore, err := seedPanelSite(gctx, st, cfg, i+1, issues, until, runID)
			if err != nil {
				return err
			}
			sites[i] = site
			if writes {
				if writeSources[i], err = panelWriteSource(gctx, st, cfg, site.ClientKey); err != nil {
					return err
				}
			}
			if seededBefore {
				found.Add(1)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, 0, "", err
	}
	if st.Dialect() == store.DialectPostgres {
		if err := analyze(ctx, cfg.DatabaseURL); err != nil {
			return nil, nil, 0, "", err
		}
	}
	return sites, writeSources, int(found.Load()), st.Dialect(), nil
}

// panelWriteSource replaces the write source of the panel site of client
// with a new generic source and returns its token and secret. The token is
// kept only as a hash, so an earlier run's source cannot be used again;
// deleting it keeps re-runs under store.MaxSourcesPerTenant, and leaves the
// builds it delivered in place.
func panelWriteSource(ctx context.Context, st *store.Store, cfg *config.Config, client string) (loadtest.Source, error) {
	t, err := st.TenantByClientKey(ctx, cfg.JiraAppKey(), client)
	if err != nil {
		return loadtest.Source{}, fmt.Errorf("tenant %s: %w", client, err)
	}
	old, err := st.ListSources(ctx, t)
	if err != nil {
		return loadtest.Source{}, fmt.Errorf("tenant %s: %w", client, err)
	}
	for _, s := range old {
		if s.Name == panelWritesSourceName {
			if err := st.DeleteSource(ctx, t, s.ID); err != nil {
				return loadtest.Source{}, fmt.Errorf("tenant %s: retire write source %s: %w", client, s.ID, err)
			}
		}
	}
	_, token, secret, err := st.CreateSource(ctx, t, store.SourceGeneric, panelWritesSourceName)
	if err != nil {
		return loadtest.Source{}, fmt.Errorf("tenant %s: write source: %w", client, err)
	}
	return loadtest.Source{Token: token, Secret: secret}, nil
}

// analyze gathers PostgreSQL's planner statistics for the freshly seeded
// tables. Without them the planner cannot tell the issue_links index that
// starts with the issue key from the one that does not, and may scan every
// link of a site per list; autovacuum would gather them in production,
// but only some time after the seeding, or never where it is off (as in
// CI configurations). ANALYZE samples, so it takes a moment however big
// the database is, and blocks no reader or writer.
func analyze(ctx context.Context, databaseURL string) error {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}

// seedPanelSite installs (or finds) site loadtest-panel-<i> and writes its
// issues' history unless it already holds it, which it reports.
func seedPanelSite(ctx context.Context, st *store.Store, cfg *config.Config, i, issues int, until time.Time, runID string) (loadtest.PanelSite, bool, error) {
	client := fmt.Sprint(panelClientKeyPrefix, i)
	// .invalid never resolves: should a panel ever ask the site's Jira
	// something (the empty state asks whether the viewer is an admin), the
	// call fails at once instead of reaching a real Atlassian host.
	siteURL := fmt.Sprintf("https://%s.atlassian.invalid", client)
	var secret []byte
	old, err := st.TenantByClientKey(ctx, cfg.JiraAppKey(), client)
	switch {
	case err == nil && old.Installed && len(old.SharedSecret) > 0:
		secret = old.SharedSecret
	case err == nil || errors.Is(err, tenant.ErrNotFound):
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return loadtest.PanelSite{}, false, fmt.Errorf("shared secret: %w", err)
		}
		secret = []byte(hex.EncodeToString(raw))
	default:
		return loadtest.PanelSite{}, false, fmt.Errorf("tenant %s: %w", client, err)
	}
	t, err := st.UpsertTenant(ctx, tenant.Install{
		AppKey:       cfg.JiraAppKey(),
		ClientKey:    client,
		BaseURL:      siteURL,
		DisplayURL:   siteURL,
		ProductType:  "jira",
		Description:  "Keyline load test (issue panel)",
		SharedSecret: secret,
	})
	if err != nil {
		return loadtest.PanelSite{}, false, fmt.Errorf("tenant %s: %w", client, err)
	}
	sources, err := st.ListSources(ctx, t)
	if err != nil {
		return loadtest.PanelSite{}, false, fmt.Errorf("tenant %s: %w", client, err)
	}
	sourceID := ""
	for _, s := range sources {
		if s.Name == panelSourceName {
			sourceID = s.ID
			break
		}
	}
	if sourceID == "" {
		src, _, _, err := st.CreateSource(ctx, t, store.SourceGeneric, panelSourceName)
		if err != nil {
			return loadtest.PanelSite{}, false, fmt.Errorf("tenant %s: %w", client, err)
		}
		sourceID = src.ID
	}
	site := loadtest.PanelSite{ClientKey: client, BaseURL: siteURL, SharedSecret: secret}
	seeded, err := panelSiteSeeded(ctx, st, t, issues)
	if err != nil {
		return loadtest.PanelSite{}, false, fmt.Errorf("tenant %s: %w", client, err)
	}
	if seeded {
		for n := 1; n <= issues; n++ {
			site.Issues = append(site.Issues, loadtest.PanelIssueN(n))
		}
		return site, true, nil
	}
	site.Issues, err = loadtest.SeedPanel(ctx, st, t, sourceID, loadtest.PanelSeed{Issues: issues, Until: until, RunID: runID})
	if err != nil {
		return loadtest.PanelSite{}, false, fmt.Errorf("tenant %s: %w", client, err)
	}
	return site, false, nil
}

// panelSiteSeeded reports whether an earlier run already wrote the history
// of t's first issues issues: seeding is the slow part of a short run, and
// seeding again on another day would shift the history's times and add
// status transitions. Issues are seeded in order, so the last one having
// its Jira status and development means all of them do.
func panelSiteSeeded(ctx context.Context, st *store.Store, t *tenant.Tenant, issues int) (bool, error) {
	last := loadtest.PanelIssueN(issues)
	if _, err := st.JiraIssueByKey(ctx, t, last.Key); errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	links, err := st.CountIssueLinks(ctx, t, last.Key)
	if err != nil {
		return false, err
	}
	return links[store.EntityCommit] > 0, nil
}

// metricsFlags are the settings of "keyline loadtest metrics".
type metricsFlags struct {
	databaseURL                    string
	deployments, commits, services int
	seed                           int64
	seedOnly                       bool
	requests, warmup, concurrency  int
	windows                        []time.Duration
	project, service               string
	approaches                     []string
	maxP95                         time.Duration
	asJSON                         bool
}

func parseMetricsFlags(args []string, env map[string]string) (*metricsFlags, error) {
	f := &metricsFlags{}
	fs := flag.NewFlagSet("keyline loadtest metrics", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.databaseURL, "database-url", env["KEYLINE_DATABASE_URL"], "PostgreSQL URL")
	fs.IntVar(&f.deployments, "deployments", loadtest.DefaultHistoryDeployments, "deployments to seed")
	fs.IntVar(&f.commits, "commits", loadtest.DefaultHistoryCommits, "commits to seed")
	fs.IntVar(&f.services, "services", loadtest.DefaultHistoryServices, "services to seed")
	fs.Int64Var(&f.seed, "seed", 1, "pseudo-random seed")
	fs.BoolVar(&f.seedOnly, "seed-only", false, "seed and stop")
	fs.IntVar(&f.requests, "requests", 200, "reports per scenario")
	fs.IntVar(&f.warmup, "warmup", 5, "reports first built and not counted")
	fs.IntVar(&f.concurrency, "concurrency", 1, "reports built at a time")
	windows := fs.String("window", "30d,90d,365d", "windows")
	fs.StringVar(&f.project, "project", loadtest.HistoryProjects()[0], "project of the project scenario")
	fs.StringVar(&f.service, "service", loadtest.HistoryService(0), "service of the service scenario")
	approach := fs.String("approach", loadtest.ApproachRollup, "rollup, join or both")
	fs.DurationVar(&f.maxP95, "max-p95", 200*time.Millisecond, "p95 above which the run fails")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if u, err := url.Parse(f.databaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("--database-url (or KEYLINE_DATABASE_URL) must be a postgres:// URL: the metrics run measures PostgreSQL")
	}
	for w := range strings.SplitSeq(*windows, ",") {
		w = strings.TrimSpace(w)
		var d time.Duration
		if days, ok := strings.CutSuffix(w, "d"); ok {
			n, err := strconv.Atoi(days)
			if err != nil {
				return nil, fmt.Errorf("--window %q: want days such as 90d", w)
			}
			d = time.Duration(n) * 24 * time.Hour
		} else if v, err := time.ParseDuration(w); err == nil {
			d = v
		}
		if d <= 0 || d > store.MaxReleaseWindow {
			return nil, fmt.Errorf("--window %q: want a positive window of at most %d days", w, int(store.MaxReleaseWindow.Hours()/24))
		}
		f.windows = append(f.windows, d)
	}
	switch *approach {
	case loadtest.ApproachRollup, loadtest.ApproachJoin:
		f.approaches = []string{*approach}
	case "both":
		f.approaches = []string{loadtest.ApproachRollup, loadtest.ApproachJoin}
	default:
		return nil, fmt.Errorf("--approach %q: want rollup, join or both", *approach)
	}
	switch {
	case f.deployments < 3 || f.commits < 1 || f.services < 1:
		return nil, errors.New("--deployments (at least 3), --commits and --services must be positive")
	case f.requests < 1 || f.warmup < 0 || f.concurrency < 1:
		return nil, errors.New("--requests and --concurrency must be positive, --warmup not negative")
	case f.maxP95 < 0:
		return nil, errors.New("--max-p95 must not be negative")
	}
	return f, nil
}

// metricsResultJSON is one scenario of --json output.
type metricsResultJSON struct {
	Approach    string   `json:"approach"`
	Scenario    string   `json:"scenario"`
	WindowDays  float64  `json:"window_days"`
	Projects    []string `json:"projects,omitempty"`
	Service     string   `json:"service,omitempty"`
	Concurrency int      `json:"concurrency"`
	Requests    int      `json:"requests"`
	P50         float64  `json:"p50_ms"`
	P90         float64  `json:"p90_ms"`
	P95         float64  `json:"p95_ms"`
	P99         float64  `json:"p99_ms"`
	Max         float64  `json:"max_ms"`
	Deployments int      `json:"deployments_in_last_report"`
	Changes     int      `json:"changes_in_last_report"`
}

// loadtestMetrics runs "keyline loadtest metrics": see loadtestUsage.
func loadtestMetrics(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	f, err := parseMetricsFlags(args, env)
	if errors.Is(err, flag.ErrHelp) {
		_, err := fmt.Fprint(stdout, loadtestUsage)
		return err
	}
	if err != nil {
		return fmt.Errorf("loadtest metrics: %w", err)
	}
	// Reports are built in this process: collect garbage as keyline serve
	// does, so the figures are the server's.
	setGCPercent(env)
	// The store seals the seeded site's secret; the run never needs it, so
	// any key will do when none is configured.
	senv := maps.Clone(env)
	senv["KEYLINE_DATABASE_URL"] = f.databaseURL
	if senv["KEYLINE_SECRET_KEY"] == "" {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return fmt.Errorf("loadtest metrics: secret key: %w", err)
		}
		senv["KEYLINE_SECRET_KEY"] = hex.EncodeToString(key)
	}
	cfg, err := config.Load(senv)
	if err != nil {
		return fmt.Errorf("loadtest metrics: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st, err := openStore(ctx, cfg, newLogger(quietConfig(cfg), stderr))
	if err != nil {
		return fmt.Errorf("loadtest metrics: %w", err)
	}
	defer st.Close()
	db, err := sql.Open("pgx", f.databaseURL)
	if err != nil {
		return fmt.Errorf("loadtest metrics: %w", err)
	}
	defer db.Close()
	hist, err := loadtest.SeedHistory(ctx, db, loadtest.HistoryOptions{Tenants: st, AppKey: cfg.JiraAppKey(),
		Deployments: f.deployments, Commits: f.commits, Services: f.services, Seed: f.seed, Log: log})
	if err != nil {
		return fmt.Errorf("loadtest metrics: %w", err)
	}
	if !f.asJSON {
		how := fmt.Sprintf("seeded in %s", hist.Took.Round(time.Second))
		if hist.Reused {
			how = "already seeded; reused"
		}
		fmt.Fprintf(stdout, "site %s (tenant %d), %s: deployments %s – %s\n", loadtest.DefaultHistoryClientKey,
			hist.Tenant.ID, how, hist.From.Format(time.DateOnly), hist.To.Format(time.DateOnly))
		for _, tbl := range slices.Sorted(maps.Keys(hist.Rows)) {
			fmt.Fprintf(stdout, "  %-26s %12d rows\n", tbl, hist.Rows[tbl])
		}
	}
	if f.seedOnly {
		return nil
	}
	var scenarios []loadtest.MetricsScenario
	for _, w := range f.windows {
		days := fmt.Sprintf("%gd", w.Hours()/24)
		scenarios = append(scenarios, loadtest.MetricsScenario{Name: "site " + days, Window: w})
		if f.project != "" {
			scenarios = append(scenarios, loadtest.MetricsScenario{Name: "project " + f.project + " " + days,
				Window: w, Projects: []string{f.project}})
		}
		if f.service != "" {
			scenarios = append(scenarios, loadtest.MetricsScenario{Name: "service " + f.service + " " + days,
				Window: w, Service: f.service})
		}
	}
	if !f.asJSON {
		fmt.Fprintf(stdout, "\n%-8s %-30s %5s %6s %9s %9s %9s %9s %9s %7s %8s\n", "approach", "scenario", "conc",
			"builds", "p50", "p90", "p95", "p99", "max", "deps", "changes")
	}
	var (
		out  []metricsResultJSON
		slow []string
	)
	msf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, approach := range f.approaches {
		var rs release.Store = st
		if approach == loadtest.ApproachJoin {
			rs = loadtest.JoinLeadStore{Store: st, DB: db}
		}
		for i, sc := range scenarios {
			res, err := loadtest.RunMetrics(ctx, loadtest.MetricsRun{Store: rs, Tenant: hist.Tenant, End: hist.To,
				EndJitter: 29 * 24 * time.Hour, Scenario: sc, Requests: f.requests, Warmup: f.warmup,
				Concurrency: f.concurrency, Slowest: 10, Seed: uint64(i + 1)})
			if err != nil {
				return fmt.Errorf("loadtest metrics: %w", err)
			}
			res.Approach = approach
			l := res.Latency
			if f.asJSON {
				out = append(out, metricsResultJSON{Approach: approach, Scenario: sc.Name, WindowDays: sc.Window.Hours() / 24,
					Projects: sc.Projects, Service: sc.Service, Concurrency: res.Concurrency, Requests: res.Requests,
					P50: msf(l.P50), P90: msf(l.P90), P95: msf(res.P95), P99: msf(l.P99), Max: msf(l.Max),
					Deployments: res.Deployments, Changes: res.Changes})
			} else {
				fmt.Fprintf(stdout, "%-8s %-30s %5d %6d %7.1fms %7.1fms %7.1fms %7.1fms %7.1fms %7d %8d\n", approach,
					sc.Name, res.Concurrency, res.Requests, msf(l.P50), msf(l.P90), msf(res.P95), msf(l.P99), msf(l.Max),
					res.Deployments, res.Changes)
			}
			if f.maxP95 > 0 && res.P95 > f.maxP95 {
				slow = append(slow, fmt.Sprintf("%s %s (p95 %s)", approach, sc.Name, res.P95.Round(time.Millisecond)))
			}
		}
	}
	if f.asJSON {
		if err := writeJSON(stdout, out); err != nil {
			return fmt.Errorf("loadtest metrics: write report: %w", err)
		}
	}
	if len(slow) > 0 {
		return fmt.Errorf("loadtest metrics: p95 above %s: %s", f.maxP95, strings.Join(slow, "; "))
	}
	return nil
}

// serverURL checks a load run's --url: the base URL of a running Keyline,
// without a query. It returns it without a trailing slash.
func serverURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return "", fmt.Errorf("--url %q: want http(s)://host[:port][/path]", raw)
	}
	return strings.TrimSuffix(raw, "/"), nil
}
