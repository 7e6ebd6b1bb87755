package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyline/keyline/app/dbtest"
)

// TestLoadtestMetrics seeds a small history through the CLI, measures it,
// and checks that a second run reuses the history and that --max-p95 gates.
func TestLoadtestMetrics(t *testing.T) {
	dsn := dbtest.Postgres(t)
	env := map[string]string{"KEYLINE_LOG_LEVEL": "warn"}
	args := []string{"--database-url", dsn, "--deployments", "900", "--commits", "4000", "--requests", "3",
		"--warmup", "1", "--window", "90d", "--approach", "both", "--json"}
	code, out, errs := runScenario(env, "metrics", args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res []metricsResultJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res) != 6 {
		t.Fatalf("%d results, want site, project and service for both approaches: %s", len(res), out)
	}
	for _, r := range res {
		if r.Requests != 3 || r.P95 <= 0 || r.Deployments == 0 {
			t.Errorf("%s %s: %+v", r.Approach, r.Scenario, r)
		}
	}
	// Both approaches count the same changes over the same window.
	if res[0].Changes != res[3].Changes {
		t.Errorf("site-wide changes: rollup %d, join %d", res[0].Changes, res[3].Changes)
	}

	code, out, errs = runScenario(env, "metrics", "--database-url", dsn, "--deployments", "900", "--commits", "4000",
		"--requests", "2", "--window", "30d", "--project", "", "--service", "", "--max-p95", "1ns")
	if code != 1 || !strings.Contains(out, "already seeded; reused") || !strings.Contains(errs, "p95 above") {
		t.Errorf("second run: exit %d, want 1 with the history reused and p95 over 1ns\n%s\n%s", code, out, errs)
	}
	if code, _, errs := runScenario(env, "metrics", "--database-url", "", "--seed-only"); code == 0 ||
		!strings.Contains(errs, "postgres://") {
		t.Errorf("without a database: exit %d, %s", code, errs)
	}
}
