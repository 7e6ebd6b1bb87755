package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/store"
)

// addGeneric creates a generic source on the acme site of sourcesEnv and
// returns its id.
func addGeneric(t *testing.T, env map[string]string) string {
	t.Helper()
	code, out, errs := runSources(t, env, nil, "add", "--site", "https://acme.atlassian.net", "--kind", "generic", "--json")
	var added struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &added) != nil || added.ID == "" {
		t.Fatalf("add: code %d, out %s, stderr %q", code, out, errs)
	}
	return added.ID
}

// rulesOf reads the stored rules of the acme site's source id.
func rulesOf(t *testing.T, env map[string]string, id string) string {
	t.Helper()
	st := testStore(t, env)
	defer st.Close()
	cfg, _ := config.Load(env)
	ctx := context.Background()
	tn, err := st.TenantByBaseURL(ctx, cfg.JiraAppKey(), "https://acme.atlassian.net")
	if err != nil {
		t.Fatal(err)
	}
	src, err := st.SourceByID(ctx, tn, id)
	if err != nil {
		t.Fatal(err)
	}
	return string(src.EnvironmentRules)
}

func TestSourcesRules(t *testing.T) {
	env := sourcesEnv(t)
	site := "https://acme.atlassian.net"
	id := addGeneric(t, env)

	// --rules, --json: the stored rules, as an object, with the source.
	code, out, errs := runSources(t, env, nil, "rules", "--site", site, "--id", id, "--json",
		"--rules", `{"staging": ["*-stable"], "production": ["prod-*", "live"]}`)
	if code != 0 || errs != "" {
		t.Fatalf("rules --json: code %d, stderr %q", code, errs)
	}
	var got struct {
		ID, Kind         string
		UpdatedAt        string          `json:"updated_at"`
		EnvironmentRules json.RawMessage `json:"environment_rules"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("rules --json output %q: %v", out, err)
	}
	const want = `{"production":["prod-*","live"],"staging":["*-stable"]}`
	if got.ID != id || got.Kind != "generic" || got.UpdatedAt == "" || compact(t, got.EnvironmentRules) != want {
		t.Errorf("rules --json = %s, want id %s, kind generic, updated_at and rules %s", out, id, want)
	}
	if stored := rulesOf(t, env, id); stored != want {
		t.Errorf("stored rules = %s, want %s", stored, want)
	}

	// list --json shows them too.
	code, out, _ = runSources(t, env, nil, "list", "--site", site, "--json")
	var list []struct {
		EnvironmentRules json.RawMessage `json:"environment_rules"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || compact(t, list[0].EnvironmentRules) != want {
		t.Errorf("list --json after rules: code %d, out %s", code, out)
	}

	// --rules-file PATH, text output.
	path := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(path, []byte("{\n  \"testing\": [\"qa-*\"]\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runSources(t, env, nil, "rules", "--site", site, "--id", id, "--rules-file", path)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, `"testing": [`) || !strings.Contains(out, `"qa-*"`) {
		t.Errorf("rules --rules-file: code %d, out %q, stderr %q", code, out, errs)
	}
	if stored := rulesOf(t, env, id); stored != `{"testing":["qa-*"]}` {
		t.Errorf("stored rules after --rules-file = %s", stored)
	}

	// --rules-file - reads standard input; '{}' clears the rules.
	code, out, errs = runSources(t, env, strings.NewReader("{}\n"), "rules", "--site", site, "--id", id, "--rules-file", "-", "--json")
	if code != 0 || !strings.Contains(out, `"environment_rules": {}`) {
		t.Errorf("rules --rules-file -: code %d, out %q, stderr %q", code, out, errs)
	}
	if stored := rulesOf(t, env, id); stored != `{}` {
		t.Errorf("stored rules after clearing = %s", stored)
	}
}

func TestSourcesRulesErrors(t *testing.T) {
	env := sourcesEnv(t)
	site := "https://acme.atlassian.net"
	id := addGeneric(t, env)
	const kept = `{"production":["live-*"]}`
	if code, _, errs := runSources(t, env, nil, "rules", "--site", site, "--id", id, "--rules", kept); code != 0 {
		t.Fatalf("set rules: %q", errs)
	}
	missing := filepath.Join(t.TempDir(), "missing.json")
	tests := []struct {
		name  string
		args  []string
		stdin io.Reader
		want  string // in the one line on stderr
	}{
		{"no id", []string{"--rules", "{}"}, nil, "--id is required"},
		{"no rules", []string{"--id", id}, nil, "--rules or --rules-file is required"},
		{"both", []string{"--id", id, "--rules", "{}", "--rules-file", "-"}, strings.NewReader("{}"), "not both"},
		{"missing file", []string{"--id", id, "--rules-file", missing}, nil, "no such file"},
		{"oversized stdin", []string{"--id", id, "--rules-file", "-"},
			strings.NewReader(strings.Repeat(" ", store.MaxEnvironmentRulesLen+1)), "over the limit"},
		{"unknown source", []string{"--id", "src_nope", "--rules", "{}"}, nil, "not found"},
		{"not JSON", []string{"--id", id, "--rules", "production: prod-*"}, nil, "not JSON"},
		{"empty", []string{"--id", id, "--rules", ""}, nil, "not JSON"},
		{"unknown type", []string{"--id", id, "--rules", `{"prod": ["*"]}`}, nil, `"prod" is not a type rules can map to`},
		{"too many globs", []string{"--id", id, "--rules", `{"testing": ["1","2","3","4","5","6","7","8","9","10","11"]}`}, nil, "at most 10"},
		{"malformed glob", []string{"--id", id, "--rules", `{"production": ["prod-[0-9"]}`}, nil, "is not a valid glob"},
		{"several problems", []string{"--id", id, "--rules", `{"production": ["{a"], "qa": ["*"]}`}, nil, `"qa" is not a type`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"rules", "--site", site}, tt.args...)
			code, out, errs := runSources(t, env, tt.stdin, args...)
			if code == 0 {
				t.Fatalf("exit 0, stdout %q", out)
			}
			if lines := strings.Count(strings.TrimSpace(errs), "\n"); lines != 0 || !strings.Contains(errs, tt.want) {
				t.Errorf("stderr = %q, want one line containing %q", errs, tt.want)
			}
			if stored := rulesOf(t, env, id); stored != kept {
				t.Errorf("rules after a refused command = %s, want %s unchanged", stored, kept)
			}
		})
	}
}

func TestSourcesRulesHelp(t *testing.T) {
	code, out, _ := runSources(t, nil, nil, "rules", "-h")
	if code != 0 || !strings.Contains(out, "rules   --site URL --id ID (--rules JSON | --rules-file PATH)") {
		t.Errorf("rules -h: code %d, out %q", code, out)
	}
}

// compact is raw without the indentation --json adds.
func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return b.String()
}
