package main

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/config"
)

// startDemo runs "keyline demo" with args until the test ends, and returns
// the URL it printed and its output.
func startDemo(t *testing.T, args ...string) (string, *syncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"demo", "--addr", "127.0.0.1:0"}, args...), map[string]string{}, out, errb)
	}()
	stop := func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(20 * time.Second):
			t.Fatal("the demo did not stop")
			return -1
		}
	}
	t.Cleanup(func() { cancel() })
	ready := regexp.MustCompile(`open (http://127\.0\.0\.1:\d+)/`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := ready.FindStringSubmatch(out.String()); m != nil {
			return m[1], out, stop
		}
		select {
		case code := <-done:
			t.Fatalf("demo exited with %d: %s%s", code, out, errb)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("demo printed no URL: %s%s", out, errb)
	return "", nil, nil
}

// directive returns the sources of one directive of a CSP.
func directive(policy, name string) []string {
	for _, d := range strings.Split(policy, ";") {
		if f := strings.Fields(d); len(f) > 0 && f[0] == name {
			return f[1:]
		}
	}
	return nil
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

var frameSrc = regexp.MustCompile(`<iframe id="frame-([a-z-]+)"[^>]* src="([^"]+)"`)

// TestDemo runs the demo as a newcomer would and follows the host page into
// the framed panel, the macro and the configure page, then calls Keyline's
// API with a context token from the host page: Keyline asks the demo site's
// Jira (the demo itself) whether the user may see the issue.
func TestDemo(t *testing.T) {
	began := time.Now()
	base, out, stop := startDemo(t)
	t.Logf("demo ready in %s", time.Since(began).Round(time.Millisecond))
	dataDir := regexp.MustCompile(`data: (\S+) \(removed on exit`).FindStringSubmatch(out.String())
	if dataDir == nil {
		t.Fatalf("no temporary data directory in %q", out)
	}

	res, page := get(t, base+"/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("host page: %d %s", res.StatusCode, page)
	}
	for _, want := range []string{"PAY-7", "Add fraud score to payment events", "WEB-10", "OPS-1"} {
		if !strings.Contains(page, want) {
			t.Errorf("host page lacks %q", want)
		}
	}
	srcs := map[string]string{}
	for _, m := range frameSrc.FindAllStringSubmatch(page, -1) {
		srcs[m[1]] = html.UnescapeString(m[2])
	}
	for frame, want := range map[string][]string{
		"issue-panel":          {"PAY-7", "PAY-7 Fix the flaky test the first build caught", "production", "staging", "development", "Elevated payment declines after release"},
		"issue-summary":        {"production"},
		"macro-status":         {"PAY", "WEB", "OPS"},
		"jira-configure":       {"dev.keyline.jira"},
		"confluence-configure": {strings.TrimPrefix(base, "http://")},
	} {
		src, ok := srcs[frame]
		if !ok || !strings.HasPrefix(src, base+"/") {
			t.Errorf("%s: src %q, want one on %s", frame, src, base)
			continue
		}
		res, body := get(t, src)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", frame, res.StatusCode, body)
			continue
		}
		// The page's own origin, through KEYLINE_FRAME_ANCESTORS.
		if csp := res.Header.Get("Content-Security-Policy"); !slices.Contains(directive(csp, "frame-ancestors"), base) {
			t.Errorf("%s: the host page may not frame it: %q", frame, csp)
		}
		text := html.UnescapeString(body)
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: %q not shown", frame, w)
			}
		}
	}

	// A follow-up load, as the panel makes it with AP.context.getToken().
	res, body := get(t, base+"/preview/token?frame=issue-panel")
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(body), &tok); err != nil || res.StatusCode != http.StatusOK || tok.Token == "" {
		t.Fatalf("context token: %d %s", res.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/jira/api/issues/PAY-7/links?issueId=10007", nil)
	req.Header.Set("Authorization", "JWT "+tok.Token)
	api, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	apiBody, _ := io.ReadAll(api.Body)
	api.Body.Close()
	if api.StatusCode != http.StatusOK || !bytes.Contains(apiBody, []byte(`"issueKey":"PAY-7"`)) {
		t.Errorf("links API through the demo's Jira: %d %s", api.StatusCode, apiBody)
	}

	if code := stop(); code != 0 {
		t.Fatalf("demo exited with %d", code)
	}
	if _, err := os.Stat(dataDir[1]); !os.IsNotExist(err) {
		t.Errorf("temporary data directory %s left behind: %v", dataDir[1], err)
	}
}

// TestDemoKeepsItsDataDir runs the demo twice on one --data-dir: the second
// run finds the site instead of seeding it again.
func TestDemoKeepsItsDataDir(t *testing.T) {
	dir := t.TempDir()
	_, out, stop := startDemo(t, "--data-dir", dir)
	if !strings.Contains(out.String(), "seeded ") {
		t.Errorf("first run: %q", out)
	}
	if code := stop(); code != 0 {
		t.Fatalf("first run exited with %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "keyline.db")); err != nil {
		t.Fatalf("database not kept: %v", err)
	}
	base, out, stop := startDemo(t, "--data-dir", dir)
	if !strings.Contains(out.String(), "reused") {
		t.Errorf("second run: %q", out)
	}
	res, body := get(t, base+"/?issue=WEB-7")
	src := frameSrc.FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || src == nil {
		t.Fatalf("host page: %d", res.StatusCode)
	}
	if res, body := get(t, html.UnescapeString(src[2])); res.StatusCode != http.StatusOK || !strings.Contains(body, "WEB-7") {
		t.Errorf("panel after reuse: %d", res.StatusCode)
	}
	if code := stop(); code != 0 {
		t.Fatalf("second run exited with %d", code)
	}
}

// TestDemoOrigins checks the origins the demo lets frame Keyline: those a
// browser on this machine reaches it by, and no others.
func TestDemoOrigins(t *testing.T) {
	tests := []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:8080", []string{"http://127.0.0.1:8080", "http://localhost:8080"}},
		{"[::1]:9000", []string{"http://[::1]:9000", "http://localhost:9000"}},
		{"0.0.0.0:8080", []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"}},
		{"[::]:8080", []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"}},
		{"192.0.2.1:8080", nil},
		{"127.0.0.2:8080", nil},
	}
	for _, tt := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := demoOrigins(addr)
		if !slices.Equal(got, tt.want) || (err == nil) != (tt.want != nil) {
			t.Errorf("demoOrigins(%s) = %q, %v; want %q", tt.addr, got, err, tt.want)
		}
		if tt.want == nil {
			continue
		}
		// Keyline's settings accept every one of them.
		if _, err := config.Load(map[string]string{"KEYLINE_FRAME_ANCESTORS": strings.Join(got, ",")}); err != nil {
			t.Errorf("%s: settings refuse the demo's origins: %v", tt.addr, err)
		}
	}
}

func TestDemoFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"demo", "help"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "--data-dir") {
		t.Errorf("demo help: %d %q", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"help"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "demo") {
		t.Errorf("usage lacks demo: %q", out.String())
	}
	for _, args := range [][]string{{"demo", "--addr", "nope"}, {"demo", "--bogus"}, {"demo", "extra"},
		{"demo", "--addr", "192.0.2.1:8080"}, {"demo", "--addr", "127.0.0.2:8080"}} {
		errb.Reset()
		if code := run(context.Background(), args, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "demo:") {
			t.Errorf("%v: code %d, stderr %q", args, code, errb.String())
		}
	}
}
