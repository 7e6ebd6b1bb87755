package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// sourcesEnv is an embedded-mode environment with the Jira app installed on
// https://acme.atlassian.net (custom domain https://jira.acme.example.com).
func sourcesEnv(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{
		"KEYLINE_DATA_DIR": t.TempDir(),
		"KEYLINE_BASE_URL": "https://keyline.example.com/",
	}
	st := testStore(t, env)
	defer st.Close()
	cfg, _ := config.Load(env)
	_, err := st.UpsertTenant(context.Background(), tenant.Install{
		AppKey: cfg.JiraAppKey(), ClientKey: "acme", BaseURL: "https://acme.atlassian.net",
		DisplayURL: "https://jira.acme.example.com", ProductType: "jira",
		SharedSecret: []byte("shared"), At: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func testStore(t *testing.T, env map[string]string) *store.Store {
	t.Helper()
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// runSources runs "keyline sources args..." with stdin and returns the exit
// code and outputs. Without stdin it goes through run, as the binary does.
func runSources(t *testing.T, env map[string]string, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if stdin == nil {
		code = run(context.Background(), append([]string{"sources"}, args...), env, &out, &errb)
	} else if err := sources(context.Background(), args, env, stdin, &out, &errb); err != nil {
		code = 1
		errb.WriteString("keyline: " + oneLine(err.Error()) + "\n")
	}
	return code, out.String(), errb.String()
}

func TestSourcesLifecycle(t *testing.T) {
	env := sourcesEnv(t)
	ctx := context.Background()

	code, out, errs := runSources(t, env, nil, "add", "--site", "acme.atlassian.net/", "--kind", "github", "--name", "Acme org", "--json")
	if code != 0 {
		t.Fatalf("add: code %d, stderr %q", code, errs)
	}
	if errs != "" {
		t.Errorf("add wrote to stderr: %q", errs)
	}
	var added map[string]any
	if err := json.Unmarshal([]byte(out), &added); err != nil {
		t.Fatalf("add --json output %q: %v", out, err)
	}
	for _, k := range []string{"id", "kind", "name", "webhook_url", "secret"} {
		if s, _ := added[k].(string); s == "" {
			t.Errorf("add --json: %q missing in %s", k, out)
		}
	}
	id, secret, url := added["id"].(string), added["secret"].(string), added["webhook_url"].(string)
	if added["kind"] != "github" || added["name"] != "Acme org" || !strings.HasPrefix(url, "https://keyline.example.com/ingest/") {
		t.Errorf("add --json = %s", out)
	}

	// The URL's token leads to the source, and the secret verifies.
	verify := func(key string) error {
		st := testStore(t, env)
		defer st.Close()
		_, src, err := st.SourceByToken(ctx, strings.TrimPrefix(url, "https://keyline.example.com/ingest/"))
		if err != nil {
			return err
		}
		body := []byte(`{"zen":"hi"}`)
		h := map[string][]string{ingest.HeaderGitHubSignature: {ingest.SignatureSHA256([]byte(key), body)}}
		return ingest.VerifySignature(src.Kind, h, body, src.Secrets)
	}
	if err := verify(secret); err != nil {
		t.Fatalf("created secret does not verify: %v", err)
	}

	// list, by the custom domain this time.
	code, out, errs = runSources(t, env, nil, "list", "--site", "https://JIRA.acme.example.com", "--json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["id"] != id {
		t.Fatalf("list --json: code %d, out %s, stderr %q", code, out, errs)
	}
	if _, ok := list[0]["secret"]; ok {
		t.Error("list shows a secret")
	}
	code, out, _ = runSources(t, env, nil, "list", "--site", "https://acme.atlassian.net")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "Acme org") || strings.Contains(out, secret) {
		t.Errorf("list: code %d, out %q", code, out)
	}

	// rotate with an overlap: both secrets verify.
	code, out, errs = runSources(t, env, nil, "rotate", "--site", "https://acme.atlassian.net", "--id", id, "--overlap", "2h", "--json")
	var rotated map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &rotated) != nil {
		t.Fatalf("rotate: code %d, out %s, stderr %q", code, out, errs)
	}
	second, _ := rotated["secret"].(string)
	if second == "" || second == secret || rotated["previous_secret_until"] == nil {
		t.Errorf("rotate --json = %s", out)
	}
	if verify(secret) != nil || verify(second) != nil {
		t.Error("after rotate with overlap: want both secrets to verify")
	}

	// rotate to a provider-issued secret read from stdin, no overlap.
	issued := "pagerduty-issued-secret-0123456789"
	code, out, errs = runSources(t, env, strings.NewReader(issued+"\n"), "rotate", "--site", "https://acme.atlassian.net", "--id", id, "--overlap", "0", "--secret-stdin")
	if code != 0 || strings.Contains(out, issued) || !strings.Contains(out, "no longer verifies") {
		t.Fatalf("rotate --secret-stdin: code %d, out %q, stderr %q", code, out, errs)
	}
	if verify(issued) != nil || verify(second) == nil || verify(secret) == nil {
		t.Error("after rotate --secret-stdin --overlap 0: want only the issued secret to verify")
	}

	// delete: gone from the list, URL dead, second delete fails.
	code, out, _ = runSources(t, env, nil, "delete", "--site", "https://acme.atlassian.net", "--id", id)
	if code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: code %d, out %q", code, out)
	}
	code, out, _ = runSources(t, env, nil, "list", "--site", "https://acme.atlassian.net", "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("list after delete: code %d, out %q", code, out)
	}
	if verify(issued) == nil {
		t.Error("a deleted source's URL still works")
	}
	code, _, errs = runSources(t, env, nil, "delete", "--site", "https://acme.atlassian.net", "--id", id)
	if code == 0 || !strings.Contains(errs, "not found") {
		t.Errorf("second delete: code %d, stderr %q", code, errs)
	}
}

func TestSourcesAddText(t *testing.T) {
	env := sourcesEnv(t)
	code, out, errs := runSources(t, env, nil, "add", "--site", "https://acme.atlassian.net", "--kind", "pagerduty")
	if code != 0 {
		t.Fatalf("code %d, stderr %q", code, errs)
	}
	for _, want := range []string{"webhook URL: https://keyline.example.com/ingest/", "secret:", "pagerduty", "--secret-stdin", "shown only now"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSourcesErrors(t *testing.T) {
	env := sourcesEnv(t)
	site := "https://acme.atlassian.net"
	tests := []struct {
		name  string
		args  []string
		stdin io.Reader
		want  string // in the one line on stderr
	}{
		{"no command", nil, nil, "missing command"},
		{"unknown command", []string{"purge"}, nil, `unknown command "purge"`},
		{"unknown flag", []string{"list", "--site", site, "--verbose"}, nil, "flag provided but not defined"},
		{"stray argument", []string{"list", "--site", site, "extra"}, nil, `unexpected argument "extra"`},
		{"no site", []string{"list"}, nil, "--site is required"},
		{"unknown site", []string{"list", "--site", "https://other.atlassian.net"}, nil, "no site with the Jira app"},
		{"invalid site", []string{"list", "--site", "https://acme.atlassian.net/?q"}, nil, "site URL"},
		{"no kind", []string{"add", "--site", site}, nil, "--kind is required"},
		{"bad kind", []string{"add", "--site", site, "--kind", "jenkins"}, nil, `unknown kind "jenkins"`},
		{"bad name", []string{"add", "--site", site, "--kind", "github", "--name", strings.Repeat("n", 101)}, nil, "over the limit"},
		{"rotate without id", []string{"rotate", "--site", site}, nil, "--id is required"},
		{"rotate unknown id", []string{"rotate", "--site", site, "--id", "src_nope"}, nil, "not found"},
		{"negative overlap", []string{"rotate", "--site", site, "--id", "src_nope", "--overlap", "-1h"}, nil, "overlap"},
		{"bad overlap", []string{"rotate", "--site", site, "--id", "src_nope", "--overlap", "soon"}, nil, "invalid value"},
		{"empty stdin secret", []string{"rotate", "--site", site, "--id", "src_nope", "--secret-stdin"}, strings.NewReader(""), "standard input is empty"},
		{"weak stdin secret", []string{"rotate", "--site", site, "--id", "src_nope", "--secret-stdin"}, strings.NewReader("short\n"), "16 to 512 bytes"},
		{"delete without id", []string{"delete", "--site", site}, nil, "--id is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runSources(t, env, tt.stdin, tt.args...)
			if code == 0 {
				t.Fatalf("exit 0, stdout %q", out)
			}
			if lines := strings.Count(strings.TrimSpace(errs), "\n"); lines != 0 || !strings.Contains(errs, tt.want) {
				t.Errorf("stderr = %q, want one line containing %q", errs, tt.want)
			}
		})
	}
}

func TestSourcesHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"add", "-h"}, {"rotate", "--help"}} {
		code, out, errs := runSources(t, nil, nil, args...)
		if code != 0 || !strings.Contains(out, "usage: keyline sources") || errs != "" {
			t.Errorf("%v: code %d, out %q, stderr %q", args, code, out, errs)
		}
	}
	var out bytes.Buffer
	run(context.Background(), []string{"help"}, nil, &out, io.Discard)
	if !strings.Contains(out.String(), "sources") {
		t.Errorf("keyline help does not mention sources: %q", out.String())
	}
}
