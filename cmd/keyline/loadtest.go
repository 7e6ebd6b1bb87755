package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/loadtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

const loadtestUsage = `usage: keyline loadtest ingest|panel [flags]

Load-tests a running Keyline. Both scenarios first seed the database the
server uses (the same KEYLINE_* settings as keyline serve:
KEYLINE_DATABASE_URL, KEYLINE_DATA_DIR, KEYLINE_SECRET_KEY, KEYLINE_APP_KEY),
then send requests from --concurrency workers and report throughput, latency
percentiles and answers by status.

ingest  seeds --tenants synthetic Jira sites, loadtest-1 … loadtest-N, each
        with a fresh GitHub source, and sends signed GitHub pushes to
        <url>/ingest/<token>.
panel   seeds --tenants synthetic Jira sites, loadtest-panel-1 … -N, each with
        --issues issues with branches, commits, pull requests, builds,
        deployments and incidents, and loads their issue panels as Jira's
        iframes do: GET <url>/jira/panel with Jira's iframe parameters and a
        new HS256 token for every request, signed with the site's shared
        secret. Sites that already hold their issues are not seeded again.
        On PostgreSQL the database is ANALYZEd after seeding, so the
        planner has the statistics autovacuum would gather in production.

flags:
  --url http://127.0.0.1:8080  where the server listens
  --tenants 8                  synthetic sites to seed and load
  --concurrency 32             workers, each with one request in flight
  --duration 20s               measured window
  --warmup 2s                  sent first, not counted
  --rate 0                     total requests per second; 0: as fast as possible
  --timeout 30s                time limit of one request
  --json                       print the result as JSON
ingest only:
  --commits 10                 commits per push
panel only:
  --issues 50                  issues per site

The exit status is 1 when any measured request failed or got no answer at
all: for ingest, any answer other than 200 "accepted"; for panel, any answer
other than 200 with the requested issue's panel. The error line says which.
Run it against a database of its own: it adds sites and data to it.
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
	issues      int
	timeout     time.Duration
	asJSON      bool
}

// Bounds that keep a mistyped flag from seeding thousands of sites or
// building megabyte pushes; real load needs neither.
const (
	maxLoadTenants = 1000
	maxLoadCommits = 1000
	maxLoadIssues  = 10000
)

// loadtestSourceName names the sources the load test creates, so that a
// re-run can retire the previous run's ones.
const loadtestSourceName = "loadtest"

// runLoadtest runs "keyline loadtest …".
func runLoadtest(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("loadtest: missing scenario (ingest, panel); see keyline loadtest help")
	}
	scenario, args := args[0], args[1:]
	switch scenario {
	case "ingest", "panel":
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, loadtestUsage)
		return err
	default:
		return fmt.Errorf("loadtest: unknown scenario %q (ingest, panel)", scenario)
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
	fs.IntVar(&f.tenants, "tenants", 8, "synthetic sites")
	fs.IntVar(&f.concurrency, "concurrency", 32, "workers")
	fs.DurationVar(&f.duration, "duration", 20*time.Second, "measured window")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "warm-up, not counted")
	fs.Float64Var(&f.rate, "rate", 0, "requests per second; 0: as fast as possible")
	// Each scenario takes only its own flags, so a flag meant for the other
	// one is refused rather than silently ignored.
	switch scenario {
	case "ingest":
		fs.IntVar(&f.commits, "commits", 10, "commits per push")
	case "panel":
		fs.IntVar(&f.issues, "issues", 50, "issues per site")
	}
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "time limit of one request")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	u, err := url.Parse(f.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("--url %q: want http(s)://host[:port][/path]", f.url)
	}
	f.url = strings.TrimSuffix(f.url, "/")
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
	case scenario == "panel" && (f.issues < 1 || f.issues > maxLoadIssues):
		return nil, fmt.Errorf("--issues %d: want 1 to %d", f.issues, maxLoadIssues)
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
	Commits  int              `json:"commits_per_push"`
	Report   *loadtest.Report `json:"report"`
}

func loadtestIngest(ctx context.Context, f *loadtestFlags, env map[string]string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	sources, dialect, err := seedLoadtest(ctx, cfg, f.tenants, stderr)
	if err != nil {
		return fmt.Errorf("loadtest ingest: seed: %w", err)
	}
	if !f.asJSON {
		fmt.Fprintf(stdout, "seeded %d tenants (loadtest-1 … loadtest-%d) with a new GitHub source each (%s)\n",
			len(sources), len(sources), dialect)
	}
	client := loadtest.NewClient(f.concurrency, f.timeout)
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
			Tenants: len(sources), Commits: f.commits, Report: rep})
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
		return fmt.Errorf("loadtest ingest: %w", err)
	}
	return nil
}

// seedLoadtest installs n synthetic Jira sites and gives each a fresh GitHub
// source, returning the sources' tokens and secrets, which exist only here.
// Each site's previous load-test sources are deleted first, so repeated runs
// stay under store.MaxSourcesPerTenant; their history stays in the database.
// The store is closed again before the load starts: the load test must not
// hold connections the server could use.
func seedLoadtest(ctx context.Context, cfg *config.Config, n int, logw io.Writer) ([]loadtest.Source, string, error) {
	st, err := openStore(ctx, cfg, newLogger(quietConfig(cfg), logw))
	if err != nil {
		return nil, "", err
	}
	defer st.Close()
	sources := make([]loadtest.Source, 0, n)
	for i := 1; i <= n; i++ {
		shared := make([]byte, 32)
		if _, err := rand.Read(shared); err != nil {
			return nil, "", fmt.Errorf("shared secret: %w", err)
		}
		client := fmt.Sprintf("loadtest-%d", i)
		t, err := st.UpsertTenant(ctx, tenant.Install{
			AppKey:       cfg.JiraAppKey(),
			ClientKey:    client,
			BaseURL:      fmt.Sprintf("https://%s.atlassian.net", client),
			ProductType:  "jira",
			Description:  "Keyline load test",
			SharedSecret: []byte(hex.EncodeToString(shared)),
		})
		if err != nil {
			return nil, "", fmt.Errorf("tenant %s: %w", client, err)
		}
		old, err := st.ListSources(ctx, t)
		if err != nil {
			return nil, "", fmt.Errorf("tenant %s: %w", client, err)
		}
		for _, s := range old {
			if s.Name == loadtestSourceName {
				if err := st.DeleteSource(ctx, t, s.ID); err != nil {
					return nil, "", fmt.Errorf("tenant %s: retire source %s: %w", client, s.ID, err)
				}
			}
		}
		_, token, secret, err := st.CreateSource(ctx, t, store.SourceGitHub, loadtestSourceName)
		if err != nil {
			return nil, "", fmt.Errorf("tenant %s: %w", client, err)
		}
		sources = append(sources, loadtest.Source{Token: token, Secret: secret})
	}
	return sources, st.Dialect(), nil
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
}

func loadtestPanel(ctx context.Context, f *loadtestFlags, env map[string]string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	began := time.Now()
	sites, found, dialect, err := seedPanelLoadtest(ctx, cfg, f.tenants, f.issues, stderr)
	if err != nil {
		return fmt.Errorf("loadtest panel: seed: %w", err)
	}
	seeded := time.Since(began)
	if !f.asJSON {
		fmt.Fprintf(stdout, "seeded %d tenants (%s1 … %s%d) with %d issues each in %s (%s; %d already held them)\n",
			len(sites), panelClientKeyPrefix, panelClientKeyPrefix, len(sites), f.issues, seeded.Round(10*time.Millisecond), dialect, found)
	}
	client := loadtest.NewClient(f.concurrency, f.timeout)
	if err := checkReady(ctx, client, f.url); err != nil {
		return fmt.Errorf("loadtest panel: %w", err)
	}
	gen, err := loadtest.IssuePanels{BaseURL: f.url, AppKey: cfg.JiraAppKey(), Sites: sites}.Generator()
	if err != nil {
		return fmt.Errorf("loadtest panel: %w", err)
	}
	if !f.asJSON {
		fmt.Fprintf(stdout, "loading issue panels from %s with a new token per request: %s warm-up, then %s measured\n",
			f.url, f.warmup, f.duration)
	}
	rep, runErr := loadtest.Run(ctx, loadtest.Config{
		Client:       client,
		Concurrency:  f.concurrency,
		Warmup:       f.warmup,
		Duration:     f.duration,
		Rate:         f.rate,
		Generator:    gen,
		CheckRequest: loadtest.CheckPanel,
	})
	if rep == nil { // the configuration was refused; flags are checked, so a bug
		return fmt.Errorf("loadtest panel: %w", runErr)
	}
	if f.asJSON {
		err = writeJSON(stdout, panelResultJSON{Scenario: "panel", URL: f.url, Database: dialect, Tenants: len(sites),
			AlreadySeeded: found, Issues: f.issues, SeedSeconds: seeded.Seconds(), Tokens: "new per request", Report: rep})
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
		if rep.Status[http.StatusUnauthorized] > 0 {
			return fmt.Errorf("loadtest panel: %w (401: is --url a Keyline on the same database, KEYLINE_SECRET_KEY and KEYLINE_APP_KEY?)", err)
		}
		return fmt.Errorf("loadtest panel: %w", err)
	}
	return nil
}

// seedPanelLoadtest installs n synthetic Jira sites, each with a source
// holding the history of issues issues, and returns the sites with their
// shared secrets and how many of them already held their history. A site
// installed by an earlier run keeps its secret, so a running server's
// cached tenant stays valid, and its source and history (see
// panelSiteSeeded). Sites are seeded in parallel on PostgreSQL; SQLite has
// one writer, so there one at a time. The store is closed before the load
// starts, like seedLoadtest's.
func seedPanelLoadtest(ctx context.Context, cfg *config.Config, n, issues int, logw io.Writer) ([]loadtest.PanelSite, int, string, error) {
	st, err := openStore(ctx, cfg, newLogger(quietConfig(cfg), logw))
	if err != nil {
		return nil, 0, "", err
	}
	defer st.Close()
	runID, err := randomRunID()
	if err != nil {
		return nil, 0, "", err
	}
	// The history ends at the start of today, so that seeding a site again
	// today, after a run was interrupted, writes the same rows (see
	// loadtest.PanelSeed).
	until := time.Now().UTC().Truncate(24 * time.Hour)
	sites := make([]loadtest.PanelSite, n)
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
			if seededBefore {
				found.Add(1)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, "", err
	}
	if st.Dialect() == store.DialectPostgres {
		if err := analyze(ctx, cfg.DatabaseURL); err != nil {
			return nil, 0, "", err
		}
	}
	return sites, int(found.Load()), st.Dialect(), nil
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
