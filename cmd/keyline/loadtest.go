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
	"time"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/loadtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

const loadtestUsage = `usage: keyline loadtest ingest [flags]

Load-tests a running Keyline with signed GitHub push deliveries.

It first seeds the database the server uses (the same KEYLINE_* settings as
keyline serve: KEYLINE_DATABASE_URL, KEYLINE_DATA_DIR, KEYLINE_SECRET_KEY,
KEYLINE_APP_KEY) with --tenants synthetic Jira sites, loadtest-1 …
loadtest-N, each with a fresh GitHub source, then sends pushes to
<url>/ingest/<token> from --concurrency workers and reports throughput,
latency percentiles and answers by status.

flags:
  --url http://127.0.0.1:8080  where the server listens
  --tenants 8                  synthetic sites to seed and deliver to
  --concurrency 32             workers, each with one request in flight
  --duration 20s               measured window
  --warmup 2s                  sent first, not counted
  --rate 0                     total deliveries per second; 0: as fast as possible
  --commits 10                 commits per push
  --timeout 30s                time limit of one request
  --json                       print the result as JSON

The exit status is 1 when any measured delivery was not answered 200
"accepted" or got no answer at all; the error line says which.
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
	timeout     time.Duration
	asJSON      bool
}

// Bounds that keep a mistyped flag from seeding thousands of sites or
// building megabyte pushes; real load needs neither.
const (
	maxLoadTenants = 1000
	maxLoadCommits = 1000
)

// loadtestSourceName names the sources the load test creates, so that a
// re-run can retire the previous run's ones.
const loadtestSourceName = "loadtest"

// runLoadtest runs "keyline loadtest …".
func runLoadtest(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("loadtest: missing scenario (ingest); see keyline loadtest help")
	}
	scenario, args := args[0], args[1:]
	switch scenario {
	case "ingest":
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, loadtestUsage)
		return err
	default:
		return fmt.Errorf("loadtest: unknown scenario %q (ingest)", scenario)
	}
	f, err := parseLoadtestFlags(scenario, args)
	if errors.Is(err, flag.ErrHelp) {
		_, err := fmt.Fprint(stdout, loadtestUsage)
		return err
	}
	if err != nil {
		return fmt.Errorf("loadtest %s: %w", scenario, err)
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
	fs.Float64Var(&f.rate, "rate", 0, "deliveries per second; 0: as fast as possible")
	fs.IntVar(&f.commits, "commits", 10, "commits per push")
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
	case f.commits < 1 || f.commits > maxLoadCommits:
		return nil, fmt.Errorf("--commits %d: want 1 to %d", f.commits, maxLoadCommits)
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
