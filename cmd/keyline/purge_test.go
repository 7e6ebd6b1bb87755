package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/tenant"
)

func TestPurge(t *testing.T) {
	env := map[string]string{"KEYLINE_DATA_DIR": t.TempDir(), "KEYLINE_RETENTION_DAYS": "30"}
	ctx := context.Background()
	st := testStore(t, env)
	cfg, _ := config.Load(env)
	now := time.Now()
	for _, s := range []struct {
		client      string
		uninstalled time.Time // zero: still installed
	}{
		{"gone", now.AddDate(0, 0, -45)},
		{"recent", now.AddDate(0, 0, -10)},
		{"live", time.Time{}},
	} {
		_, err := st.UpsertTenant(ctx, tenant.Install{AppKey: cfg.JiraAppKey(), ClientKey: s.client,
			BaseURL: "https://" + s.client + ".atlassian.net", ProductType: "jira", SharedSecret: []byte("shared"),
			At: now.AddDate(0, 0, -60)})
		if err != nil {
			t.Fatal(err)
		}
		if !s.uninstalled.IsZero() {
			if _, err := st.MarkUninstalled(ctx, cfg.JiraAppKey(), s.client, s.uninstalled); err != nil {
				t.Fatal(err)
			}
		}
	}
	st.Close()

	purgeRun := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"purge"}, args...), env, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errOut := purgeRun("--dry-run")
	if code != 0 || !strings.Contains(out, "would purge jira https://gone.atlassian.net") ||
		strings.Contains(out, "recent") || strings.Contains(out, "live") {
		t.Fatalf("dry run: exit %d, out %q, err %q", code, out, errOut)
	}
	code, out, errOut = purgeRun("--json")
	var sites []purgedSite
	if code != 0 || json.Unmarshal([]byte(out), &sites) != nil || len(sites) != 1 || sites[0].Outcome != "purged" ||
		sites[0].BaseURL != "https://gone.atlassian.net" {
		t.Fatalf("purge: exit %d, out %q, err %q", code, out, errOut)
	}
	code, out, _ = purgeRun()
	if code != 0 || !strings.HasPrefix(out, "nothing to purge") {
		t.Errorf("second purge: exit %d, out %q", code, out)
	}

	st = testStore(t, env)
	defer st.Close()
	if _, err := st.TenantByClientKey(ctx, cfg.JiraAppKey(), "gone"); err == nil {
		t.Error("the purged site is still there")
	}
	for _, kept := range []string{"recent", "live"} {
		if _, err := st.TenantByClientKey(ctx, cfg.JiraAppKey(), kept); err != nil {
			t.Errorf("site %s: %v", kept, err)
		}
	}
	if code, _, errOut := purgeRun("extra"); code == 0 || !strings.Contains(errOut, "unexpected argument") {
		t.Errorf("an extra argument: exit %d, err %q", code, errOut)
	}
}
