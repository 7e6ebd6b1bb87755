package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/loadtest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// startKeyline builds the application as serve does, on embedded SQLite in a
// temporary data dir, and serves it on 127.0.0.1 until the test ends.
// settings are further KEYLINE_* variables, name then value.
func startKeyline(t *testing.T, settings ...string) (env map[string]string, baseURL string, a *application) {
	t.Helper()
	env = map[string]string{
		"KEYLINE_DATA_DIR":  t.TempDir(),
		"KEYLINE_BASE_URL":  "https://keyline.example.com",
		"KEYLINE_LOG_LEVEL": "warn",
	}
	for i := 0; i+1 < len(settings); i += 2 {
		env[settings[i]] = settings[i+1]
	}
	a, err := newApplication(context.Background(), env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.server.Handler())
	t.Cleanup(func() {
		srv.Close()
		a.store.Close()
	})
	return env, srv.URL, a
}

func runLoad(env map[string]string, args ...string) (code int, stdout, stderr string) {
	return runScenario(env, "ingest", args...)
}

func runScenario(env map[string]string, scenario string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"loadtest", scenario}, args...), env, &out, &errb)
	return code, out.String(), errb.String()
}

// acceptedDeliveries returns the live sources of site loadtest-<n> and how
// many accepted push lines their delivery logs hold; any other line fails
// the test.
func acceptedDeliveries(t *testing.T, st *store.Store, env map[string]string, n int) (sourceIDs []string, accepted int) {
	t.Helper()
	return siteDeliveries(t, st, env, fmt.Sprint("loadtest-", n))
}

// siteTenant is the Jira site of clientKey in the server's database.
func siteTenant(t *testing.T, st *store.Store, env map[string]string, clientKey string) *tenant.Tenant {
	t.Helper()
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	ten, err := st.TenantByClientKey(context.Background(), cfg.JiraAppKey(), clientKey)
	if err != nil {
		t.Fatal(err)
	}
	return ten
}

// siteDeliveries is acceptedDeliveries for the site of clientKey.
func siteDeliveries(t *testing.T, st *store.Store, env map[string]string, clientKey string) (sourceIDs []string, accepted int) {
	t.Helper()
	ctx := context.Background()
	ten := siteTenant(t, st, env, clientKey)
	list, err := st.ListSources(ctx, ten)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		sourceIDs = append(sourceIDs, s.ID)
		lines, err := st.ListDeliveries(ctx, ten, s.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if l.Outcome == store.DeliveryAccepted && l.Event == "push" {
				accepted++
			} else {
				t.Errorf("%s: delivery %s %s %d %q", clientKey, l.Event, l.Outcome, l.Status, l.Reason)
			}
		}
	}
	return sourceIDs, accepted
}

// TestLoadtestIngestEndToEnd runs the command against a real in-process
// Keyline, with the server's default rate limits: it seeds the server's
// database, delivers pushes that the server verifies and stores, and
// passes; a second run seeds again and replaces the sources.
func TestLoadtestIngestEndToEnd(t *testing.T) {
	env, url, a := startKeyline(t)

	code, out, errs := runLoad(env, "--tenants", "2", "--concurrency", "4", "--duration", "1s", "--warmup", "0s", "--url", url)
	if code != 0 {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	outputHas(t, out, "seeded 2 tenants", "4 new GitHub sources each", "throughput", "p99", "200: ", "accepted: ")
	first := map[string]bool{}
	for n := 1; n <= 2; n++ {
		ids, accepted := acceptedDeliveries(t, a.store, env, n)
		if len(ids) != 4 || accepted == 0 {
			t.Errorf("loadtest-%d: sources %v, %d accepted deliveries", n, ids, accepted)
		}
		for _, id := range ids {
			first[id] = true
		}
	}

	code, out, errs = runLoad(env, "--tenants", "2", "--sources", "2", "--concurrency", "2", "--duration", "300ms", "--warmup", "0s",
		"--commits", "3", "--json", "--url", url)
	if code != 0 {
		t.Fatalf("second run: code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	var res struct {
		Tenants int `json:"tenants_seeded"`
		Sources int `json:"sources_per_tenant"`
		Report  struct {
			Sent     int            `json:"sent"`
			OK       int            `json:"ok"`
			Outcomes map[string]int `json:"outcomes"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if res.Tenants != 2 || res.Sources != 2 || res.Report.Sent == 0 || res.Report.OK != res.Report.Sent || res.Report.Outcomes["accepted"] != res.Report.OK {
		t.Errorf("second run: %s", out)
	}
	for n := 1; n <= 2; n++ {
		ids, accepted := acceptedDeliveries(t, a.store, env, n)
		if len(ids) != 2 || first[ids[0]] || first[ids[1]] || accepted == 0 {
			t.Errorf("loadtest-%d after the re-run: sources %v (first run's %v), %d accepted", n, ids, first, accepted)
		}
	}
}

// The ingest scenario's defaults spread a throughput run so that the
// server's default rate limits do not refuse it, up to the rate the usage
// text promises.
func TestLoadtestIngestDefaultsFitTheDefaultLimits(t *testing.T) {
	f, err := parseLoadtestFlags("ingest", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	const promised = 3000 // deliveries/s, as loadtestUsage says
	if !strings.Contains(loadtestUsage, "up to about 3,000 deliveries/s") {
		t.Error("the usage text no longer promises the rate this test checks")
	}
	perSite := float64(promised) / float64(f.tenants)
	perSource := perSite / float64(f.sources)
	if perSite > cfg.IngestSiteRate || perSource > cfg.IngestSourceRate {
		t.Errorf("at %d/s over %d sites × %d sources: %.0f/s per site (limit %g), %.0f/s per source (limit %g)",
			promised, f.tenants, f.sources, perSite, cfg.IngestSiteRate, perSource, cfg.IngestSourceRate)
	}
}

// TestLoadtestFloodEndToEnd floods one site of a real in-process Keyline
// whose limits are low enough to be met in a short run. The victims, paced
// well under their own limits, must all be served; the flooder must be
// answered 429 past its site's burst, and nothing it was refused stored.
func TestLoadtestFloodEndToEnd(t *testing.T) {
	env, url, a := startKeyline(t,
		"KEYLINE_INGEST_SOURCE_RATE", "100", "KEYLINE_INGEST_SOURCE_BURST", "100",
		"KEYLINE_INGEST_SITE_RATE", "10", "KEYLINE_INGEST_SITE_BURST", "10")

	code, out, errs := runScenario(env, "flood", "--victims", "2", "--victim-rate", "6", "--victim-concurrency", "2",
		"--flood-sources", "3", "--flood-concurrency", "4", "--commits", "2", "--duration", "1s", "--warmup", "0s", "--url", url)
	if code != 0 {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	outputHas(t, out, "seeded 2 victim sites", "flooding site loadtest-flood-1 with 3 sources",
		"victims\n  requests ", "flooder\n  requests ", "429 site limit: ", "refused with 429")
	for n := 1; n <= 2; n++ {
		if ids, accepted := siteDeliveries(t, a.store, env, fmt.Sprint("loadtest-victim-", n)); len(ids) != 1 || accepted == 0 {
			t.Errorf("victim %d: sources %v, %d accepted", n, ids, accepted)
		}
	}
	// The flooder's site took at most its burst plus what refilled in the
	// run (10/s), however much it sent; the refused rest left no line.
	ids, accepted := siteDeliveries(t, a.store, env, "loadtest-flood-1")
	if len(ids) != 3 || accepted == 0 || accepted > 10+10*5 {
		t.Errorf("flooder: sources %v, %d accepted", ids, accepted)
	}

	// The comparison run: the victims alone.
	code, out, errs = runScenario(env, "flood", "--victims", "2", "--victim-rate", "6", "--flood-concurrency", "0",
		"--duration", "300ms", "--warmup", "0s", "--json", "--url", url)
	if code != 0 {
		t.Fatalf("victims alone: code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	var res struct {
		Scenario string `json:"scenario"`
		Report   struct {
			Victims struct {
				Sent int `json:"sent"`
				OK   int `json:"ok"`
			} `json:"victims"`
			Flooder *struct{} `json:"flooder"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if res.Scenario != "flood" || res.Report.Victims.Sent == 0 || res.Report.Victims.OK != res.Report.Victims.Sent || res.Report.Flooder != nil {
		t.Errorf("victims alone: %s", out)
	}

	// A paced flood: the pacer hands out no send time past the window, so
	// at 40/s over 500 ms the flooder sends at most 21 measured requests,
	// however many workers it has.
	code, out, errs = runScenario(env, "flood", "--victims", "2", "--victim-rate", "6", "--flood-sources", "3",
		"--flood-concurrency", "4", "--flood-rate", "40", "--commits", "2", "--duration", "500ms", "--warmup", "0s", "--url", url)
	if code != 0 {
		t.Fatalf("paced flood: code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(out, "the flooder paced at 40/s with 4 workers") {
		t.Errorf("paced flood: output lacks the pace:\n%s", out)
	}
	code, out, errs = runScenario(env, "flood", "--victims", "2", "--victim-rate", "6", "--flood-sources", "3",
		"--flood-concurrency", "4", "--flood-rate", "40", "--commits", "2", "--duration", "500ms", "--warmup", "0s", "--json", "--url", url)
	if code != 0 {
		t.Fatalf("paced flood --json: code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	var paced struct {
		FloodRate float64 `json:"flood_rate"`
		Report    struct {
			Flooder *struct {
				Rate float64 `json:"rate"`
				Sent int     `json:"sent"`
			} `json:"flooder"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &paced); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if f := paced.Report.Flooder; paced.FloodRate != 40 || f == nil || f.Rate != 40 || f.Sent == 0 || f.Sent > 21 {
		t.Errorf("paced flood: %s", out)
	}
}

// A victim that meets its own limit fails the run, saying so: here the
// victims' limits are set below what they send.
func TestLoadtestFloodFailsWhenVictimsAreLimited(t *testing.T) {
	env, url, _ := startKeyline(t, "KEYLINE_INGEST_SOURCE_RATE", "0.01", "KEYLINE_INGEST_SOURCE_BURST", "1")
	code, out, errs := runScenario(env, "flood", "--victims", "1", "--victim-rate", "20", "--victim-concurrency", "2",
		"--flood-concurrency", "0", "--commits", "2", "--duration", "500ms", "--warmup", "0s", "--url", url)
	if code != 1 {
		t.Fatalf("code %d, want 1\nstdout: %s\nstderr: %s", code, out, errs)
	}
	for _, want := range []string{"loadtest flood: victims: ", "429: "} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q: %s", want, errs)
		}
	}
}

// TestLoadtestIngestFailsOnRefusals points the command at a Keyline on
// another database: every delivery is answered 404, and the run must fail
// saying so.
func TestLoadtestIngestFailsOnRefusals(t *testing.T) {
	_, url, _ := startKeyline(t)
	other := map[string]string{"KEYLINE_DATA_DIR": t.TempDir(), "KEYLINE_LOG_LEVEL": "warn"}
	code, out, errs := runLoad(other, "--tenants", "1", "--concurrency", "2", "--duration", "200ms", "--warmup", "0s", "--url", url)
	if code != 1 {
		t.Fatalf("code %d, want 1\nstdout: %s\nstderr: %s", code, out, errs)
	}
	for _, want := range []string{"responses failed", "404: ", "same database"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q: %s", want, errs)
		}
	}
	if strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Errorf("stderr is not one line: %q", errs)
	}
}

// TestLoadtestPanelEndToEnd runs the panel scenario against a real
// in-process Keyline: it seeds the server's database, every panel load is
// verified and rendered by the server, and the run passes. A second run
// finds the sites seeded, does not write them again, and keeps their
// secrets.
func TestLoadtestPanelEndToEnd(t *testing.T) {
	env, url, a := startKeyline(t)

	code, out, errs := runScenario(env, "panel", "--tenants", "2", "--issues", "6", "--concurrency", "4",
		"--duration", "1s", "--warmup", "0s", "--url", url)
	if code != 0 {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	outputHas(t, out, "seeded 2 tenants", "6 issues each", "0 already held them", "new token per request", "throughput", "p99", "200: ", "panel: ")
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	secrets := map[string]string{}
	for n := 1; n <= 2; n++ {
		ten := siteTenant(t, a.store, env, fmt.Sprint("loadtest-panel-", n))
		secrets[ten.ClientKey] = string(ten.SharedSecret)
		for _, key := range []string{"PAY-1", "OPS-6"} {
			dev, err := a.store.IssueDevelopment(ctx, ten, key, store.DevelopmentLimits{})
			if err != nil {
				t.Fatal(err)
			}
			if dev.Totals[store.EntityCommit] == 0 || dev.Totals[store.EntityDeployment] == 0 {
				t.Errorf("%s %s: %v", ten.ClientKey, key, dev.Totals)
			}
		}
	}

	code, out, errs = runScenario(env, "panel", "--tenants", "2", "--issues", "6", "--concurrency", "2",
		"--duration", "300ms", "--warmup", "0s", "--json", "--url", url)
	if code != 0 {
		t.Fatalf("second run: code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	var res struct {
		Scenario string `json:"scenario"`
		Tenants  int    `json:"tenants_seeded"`
		Found    int    `json:"tenants_already_seeded"`
		Issues   int    `json:"issues_per_tenant"`
		Tokens   string `json:"tokens"`
		Report   struct {
			Sent     int            `json:"sent"`
			OK       int            `json:"ok"`
			Outcomes map[string]int `json:"outcomes"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if res.Scenario != "panel" || res.Tenants != 2 || res.Found != 2 || res.Issues != 6 || res.Tokens == "" || res.Report.Sent == 0 ||
		res.Report.OK != res.Report.Sent || res.Report.Outcomes["panel"] != res.Report.OK {
		t.Errorf("second run: %s", out)
	}
	for client, secret := range secrets {
		ten, err := a.store.TenantByClientKey(ctx, cfg.JiraAppKey(), client)
		if err != nil {
			t.Fatal(err)
		}
		if string(ten.SharedSecret) != secret {
			t.Errorf("%s: the second run changed the shared secret", client)
		}
	}
}

// TestLoadtestPanelFailsOnRefusals points the panel scenario at a Keyline
// on another database, which knows none of the sites: every load is
// answered 401, and the run must fail saying so.
func TestLoadtestPanelFailsOnRefusals(t *testing.T) {
	_, url, _ := startKeyline(t)
	other := map[string]string{"KEYLINE_DATA_DIR": t.TempDir(), "KEYLINE_LOG_LEVEL": "warn"}
	code, out, errs := runScenario(other, "panel", "--tenants", "1", "--issues", "2", "--concurrency", "2",
		"--duration", "200ms", "--warmup", "0s", "--url", url)
	if code != 1 {
		t.Fatalf("code %d, want 1\nstdout: %s\nstderr: %s", code, out, errs)
	}
	for _, want := range []string{"responses failed", "401: unknown issuer", "same database"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q: %s", want, errs)
		}
	}
	if strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Errorf("stderr is not one line: %q", errs)
	}
}

func TestLoadtestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--tenants", "0"},
		{"--concurrency", "0"},
		{"--duration", "0s"},
		{"--rate", "-1"},
		{"--commits", "0"},
		{"--url", "ftp://example.com"},
		{"--sources", "0"},
		{"--sources", "51"},
		{"stray"},
	} {
		code, _, errs := runLoad(nil, args...)
		if code != 1 || !strings.Contains(errs, "loadtest ingest:") {
			t.Errorf("%v: code %d, stderr %q", args, code, errs)
		}
	}
	for _, args := range [][]string{
		{"--issues", "0"},
		{"--issues", "10001"},
		{"--commits", "3"}, // an ingest flag
		{"--tenants", "0"},
		{"--write-rate", "-1"},
		{"--write-rate", "NaN"},
		{"--write-rate", "Inf"},
		{"--write-rate", "5", "--write-kind", "ci"},
		{"--write-kind", "jira"}, // without --write-rate, nothing would be written
		{"--write-kind", "build"},
	} {
		code, _, errs := runScenario(nil, "panel", args...)
		if code != 1 || !strings.Contains(errs, "loadtest panel:") {
			t.Errorf("panel %v: code %d, stderr %q", args, code, errs)
		}
	}
	for _, flag := range []string{"--issues", "--write-rate", "--write-kind"} {
		if code, _, errs := runLoad(nil, flag, "5"); code != 1 || !strings.Contains(errs, "loadtest ingest:") {
			t.Errorf("ingest %s: code %d, stderr %q", flag, code, errs)
		}
	}
	if code, _, errs := runScenario(nil, "panel", "--sources", "2"); code != 1 || !strings.Contains(errs, "loadtest panel:") {
		t.Errorf("panel --sources: code %d, stderr %q", code, errs)
	}
	for _, args := range [][]string{
		{"--victims", "0"},
		{"--victim-rate", "0"},
		{"--victim-rate", "NaN"},
		{"--victim-concurrency", "0"},
		{"--flood-sources", "0"},
		{"--flood-concurrency", "-1"},
		{"--flood-rate", "-1"},
		{"--flood-rate", "NaN"},
		{"--flood-concurrency", "0", "--flood-rate", "100"},
		{"--duration", "0s"},
		{"--commits", "0"},
		{"--tenants", "2"}, // an ingest flag
		{"--url", "ftp://example.com"},
		{"stray"},
	} {
		code, _, errs := runScenario(nil, "flood", args...)
		if code != 1 || !strings.Contains(errs, "loadtest flood:") {
			t.Errorf("flood %v: code %d, stderr %q", args, code, errs)
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"loadtest", "help"}, nil, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "--concurrency") || !strings.Contains(out.String(), "--issues") ||
		!strings.Contains(out.String(), "--flood-concurrency") || !strings.Contains(out.String(), "--write-rate") ||
		!strings.Contains(out.String(), "--write-kind") ||
		!strings.Contains(out.String(), "--flood-rate") {
		t.Errorf("help: code %d, out %q", code, out.String())
	}
	if code := run(context.Background(), []string{"loadtest", "panels"}, nil, &out, &errb); code != 1 {
		t.Errorf("unknown scenario: code %d", code)
	}
}

// TestLoadtestPanelWritesEndToEnd loads panels while writing to their sites
// through a real in-process Keyline: every write is stored, as the newest
// state of its issue's build, and afterwards every written issue's panel
// shows its build's last stored state, although the run had loaded (and
// the server cached) those panels many times while the writes came. A
// re-run replaces the write sources.
func TestLoadtestPanelWritesEndToEnd(t *testing.T) {
	env, url, a := startKeyline(t)

	code, out, errs := runScenario(env, "panel", "--tenants", "2", "--issues", "3", "--concurrency", "4",
		"--duration", "1s", "--warmup", "200ms", "--write-rate", "20", "--url", url)
	if code != 0 {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	outputHas(t, out, "writing a build of a random issue at 20/s", "(2 workers)", "panels\n  requests ",
		"panel: ", "writes\n  requests ", "paced at 20/s", "accepted: ")
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	writeSources := func(ten *tenant.Tenant) (ids []string, accepted int) {
		t.Helper()
		list, err := a.store.ListSources(ctx, ten)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Name != panelWritesSourceName {
				continue
			}
			ids = append(ids, s.ID)
			lines, err := a.store.ListDeliveries(ctx, ten, s.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range lines {
				if l.Outcome == store.DeliveryAccepted {
					accepted++
				} else {
					t.Errorf("%s: write %s %s %d %q", ten.ClientKey, l.Event, l.Outcome, l.Status, l.Reason)
				}
			}
		}
		return ids, accepted
	}
	first := map[string]bool{}
	for n := 1; n <= 2; n++ {
		ten := siteTenant(t, a.store, env, fmt.Sprint("loadtest-panel-", n))
		ids, accepted := writeSources(ten)
		if len(ids) != 1 || accepted == 0 {
			t.Fatalf("%s: write sources %v, %d accepted writes", ten.ClientKey, ids, accepted)
		}
		first[ids[0]] = true
		// Each written issue has one build of the writes, whose URL is
		// that of the write stored last; its panel must show it.
		written := 0
		for i := 1; i <= 3; i++ {
			is := loadtest.PanelIssueN(i)
			dev, err := a.store.IssueDevelopment(ctx, ten, is.Key, store.DevelopmentLimits{})
			if err != nil {
				t.Fatal(err)
			}
			var builds []store.BuildRecord
			for _, b := range dev.Builds {
				if b.PipelineName == loadtest.PanelWritesPipeline {
					builds = append(builds, b)
				}
			}
			switch {
			case len(builds) > 1:
				t.Errorf("%s %s: %d builds of the writes, want one", ten.ClientKey, is.Key, len(builds))
			case len(builds) == 1:
				written++
				if !strings.Contains(builds[0].URL, "/"+is.Key+"/writes/") {
					t.Errorf("%s %s: build URL %s", ten.ClientKey, is.Key, builds[0].URL)
				}
				if body := loadPanel(t, url, cfg.JiraAppKey(), ten, is); !strings.Contains(body, builds[0].URL) {
					t.Errorf("%s %s: the panel lacks the last write %s", ten.ClientKey, is.Key, builds[0].URL)
				}
			}
		}
		if written == 0 {
			t.Errorf("%s: no issue has a build of the writes", ten.ClientKey)
		}
	}

	code, out, errs = runScenario(env, "panel", "--tenants", "2", "--issues", "3", "--concurrency", "2",
		"--duration", "300ms", "--warmup", "0s", "--write-rate", "30", "--json", "--url", url)
	if code != 0 {
		t.Fatalf("second run: code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	var res struct {
		WriteRate float64 `json:"write_rate"`
		WriteKind string  `json:"write_kind"`
		Report    struct {
			Sent int `json:"sent"`
		} `json:"report"`
		Writes *struct {
			Sent     int            `json:"sent"`
			OK       int            `json:"ok"`
			Outcomes map[string]int `json:"outcomes"`
		} `json:"writes"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if res.WriteRate != 30 || res.WriteKind != "build" || res.Report.Sent == 0 || res.Writes == nil || res.Writes.Sent == 0 ||
		res.Writes.OK != res.Writes.Sent || res.Writes.Outcomes["accepted"] != res.Writes.OK {
		t.Errorf("second run: %s", out)
	}
	for n := 1; n <= 2; n++ {
		ten := siteTenant(t, a.store, env, fmt.Sprint("loadtest-panel-", n))
		if ids, _ := writeSources(ten); len(ids) != 1 || first[ids[0]] {
			t.Errorf("%s after the re-run: write sources %v (first run's %v)", ten.ClientKey, ids, first)
		}
	}
}

// TestLoadtestPanelJiraWritesEndToEnd loads panels while Jira's issue events
// for their issues come in, through a real in-process Keyline: every event
// is verified and recorded (204), the written issues keep their summary and
// project, and afterwards every written issue's panel shows the status
// stored last, although the run had loaded (and the server cached) those
// panels many times while the events came. No build write source is
// created for such a run.
func TestLoadtestPanelJiraWritesEndToEnd(t *testing.T) {
	env, url, a := startKeyline(t)

	began := time.Now()
	code, out, errs := runScenario(env, "panel", "--tenants", "2", "--issues", "3", "--concurrency", "4",
		"--duration", "1s", "--warmup", "200ms", "--write-rate", "20", "--write-kind", "jira", "--url", url)
	if code != 0 {
		t.Fatalf("code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	outputHas(t, out, "sending Jira issue-updated webhooks (a new status of a random issue) at 20/s", "(2 workers)",
		"panels\n  requests ", "panel: ", "writes\n  requests ", "paced at 20/s", "recorded: ")
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	statuses := loadtest.PanelEventStatuses()
	for n := 1; n <= 2; n++ {
		ten := siteTenant(t, a.store, env, fmt.Sprint("loadtest-panel-", n))
		list, err := a.store.ListSources(ctx, ten)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Name == panelWritesSourceName {
				t.Errorf("%s: a Jira-event run created write source %s", ten.ClientKey, s.ID)
			}
		}
		written := 0
		for i := 1; i <= 3; i++ {
			is := loadtest.PanelIssueN(i)
			got, err := a.store.JiraIssueByKey(ctx, ten, is.Key)
			if err != nil {
				t.Fatal(err)
			}
			if got.IssueID != is.ID || got.Summary != is.Summary || got.ProjectKey != is.ProjectKey {
				t.Errorf("%s %s: stored %+v, want the seeded id, summary and project", ten.ClientKey, is.Key, got)
			}
			// The seeded history ends days ago; an event of the run is
			// stamped with the time it was made.
			if got.UpdatedAt.Before(began.Add(-time.Second)) {
				continue
			}
			written++
			if !slices.Contains(statuses, got.StatusName) {
				t.Errorf("%s %s: stored status %q, want one of %v", ten.ClientKey, is.Key, got.StatusName, statuses)
			}
			shown := regexp.MustCompile(`data-testid="status"><span class="[^"]*">([^<]*)</span>`).
				FindStringSubmatch(loadPanel(t, url, cfg.JiraAppKey(), ten, is))
			if shown == nil || shown[1] != got.StatusName {
				t.Errorf("%s %s: the panel shows status %q, want the last one written, %q", ten.ClientKey, is.Key, shown, got.StatusName)
			}
		}
		if written == 0 {
			t.Errorf("%s: no issue has a status written by the run", ten.ClientKey)
		}
	}

	code, out, errs = runScenario(env, "panel", "--tenants", "2", "--issues", "3", "--concurrency", "2",
		"--duration", "300ms", "--warmup", "0s", "--write-rate", "30", "--write-kind", "jira", "--json", "--url", url)
	if code != 0 {
		t.Fatalf("second run: code %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	var res struct {
		WriteRate float64 `json:"write_rate"`
		WriteKind string  `json:"write_kind"`
		Writes    *struct {
			Sent     int            `json:"sent"`
			OK       int            `json:"ok"`
			Outcomes map[string]int `json:"outcomes"`
		} `json:"writes"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if res.WriteRate != 30 || res.WriteKind != "jira" || res.Writes == nil || res.Writes.Sent == 0 ||
		res.Writes.OK != res.Writes.Sent || res.Writes.Outcomes["recorded"] != res.Writes.OK {
		t.Errorf("second run: %s", out)
	}
}

// loadPanel loads the issue panel of is on site ten as Jira would and
// returns the page, failing the test unless it is a 200.
func loadPanel(t *testing.T, baseURL, appKey string, ten *tenant.Tenant, is loadtest.PanelIssue) string {
	t.Helper()
	gen, err := loadtest.IssuePanels{BaseURL: baseURL, AppKey: appKey, Sites: []loadtest.PanelSite{{ClientKey: ten.ClientKey,
		BaseURL: ten.BaseURL, SharedSecret: ten.SharedSecret, Issues: []loadtest.PanelIssue{is}}}}.Generator()
	if err != nil {
		t.Fatal(err)
	}
	req, err := gen(0)()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: status %d\n%s", ten.ClientKey, is.Key, resp.StatusCode, body)
	}
	return string(body)
}

// outputHas fails t for each of wants that out lacks.
func outputHas(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
