package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/store"
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

// siteDeliveries is acceptedDeliveries for the site of clientKey.
func siteDeliveries(t *testing.T, st *store.Store, env map[string]string, clientKey string) (sourceIDs []string, accepted int) {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	ten, err := st.TenantByClientKey(ctx, cfg.JiraAppKey(), clientKey)
	if err != nil {
		t.Fatal(err)
	}
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
	for _, want := range []string{"seeded 2 tenants", "4 new GitHub sources each", "throughput", "p99", "200: ", "accepted: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
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
	for _, want := range []string{"seeded 2 victim sites", "flooding site loadtest-flood-1 with 3 sources",
		"victims\n  requests ", "flooder\n  requests ", "429 site limit: ", "refused with 429"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
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
	for _, want := range []string{"seeded 2 tenants", "6 issues each", "0 already held them", "new token per request", "throughput", "p99", "200: ", "panel: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	secrets := map[string]string{}
	for n := 1; n <= 2; n++ {
		ten, err := a.store.TenantByClientKey(ctx, cfg.JiraAppKey(), fmt.Sprint("loadtest-panel-", n))
		if err != nil {
			t.Fatal(err)
		}
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
	} {
		code, _, errs := runScenario(nil, "panel", args...)
		if code != 1 || !strings.Contains(errs, "loadtest panel:") {
			t.Errorf("panel %v: code %d, stderr %q", args, code, errs)
		}
	}
	if code, _, errs := runLoad(nil, "--issues", "5"); code != 1 || !strings.Contains(errs, "loadtest ingest:") {
		t.Errorf("ingest --issues: code %d, stderr %q", code, errs)
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
		!strings.Contains(out.String(), "--flood-concurrency") {
		t.Errorf("help: code %d, out %q", code, out.String())
	}
	if code := run(context.Background(), []string{"loadtest", "panels"}, nil, &out, &errb); code != 1 {
		t.Errorf("unknown scenario: code %d", code)
	}
}
