package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version"}, nil, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "keyline ") {
		t.Errorf("version: code %d, out %q", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"bogus"}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("bogus command: code %d, stderr %q", code, errb.String())
	}
}

func TestInvalidSettingStopsWithOneLine(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"serve"}, map[string]string{"KEYLINE_BASE_URL": "http://insecure.example"}, &out, &errb)
	if code != 1 {
		t.Fatalf("code = %d, want 1", code)
	}
	if lines := strings.Count(strings.TrimSpace(errb.String()), "\n"); lines != 0 || !strings.Contains(errb.String(), "KEYLINE_BASE_URL") {
		t.Errorf("stderr = %q, want one line naming KEYLINE_BASE_URL", errb.String())
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeEmbedded starts the real server on embedded SQLite in a temporary
// data dir, as the README's first command does, then shuts it down.
func TestServeEmbedded(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	env := map[string]string{
		"KEYLINE_ADDR":     addr,
		"KEYLINE_DATA_DIR": dir,
		"KEYLINE_BASE_URL": "https://keyline.example.com",
	}
	var mout bytes.Buffer
	if code := run(context.Background(), []string{"migrate"}, env, &mout, &mout); code != 0 {
		t.Fatalf("migrate: code %d: %s", code, mout.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var logs syncBuffer
	go func() { done <- run(ctx, nil, env, &logs, &logs) }()

	client := &http.Client{Timeout: 2 * time.Second}
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		resp, err = client.Get("http://" + addr + "/readyz")
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		cancel()
		t.Fatalf("server never became ready: %v; logs: %s", err, logs.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d", resp.StatusCode)
	}
	for _, p := range []string{"jira", "confluence"} {
		resp, err := client.Get("http://" + addr + "/" + p + "/atlassian-connect.json")
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Key     string `json:"key"`
			BaseURL string `json:"baseUrl"`
		}
		err = json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		if err != nil || d.Key != "dev.keyline."+p || d.BaseURL != "https://keyline.example.com/"+p {
			t.Errorf("%s descriptor: %+v, %v", p, d, err)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited with %d; logs: %s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop after cancellation")
	}
	for _, secret := range []string{"sharedSecret", "jwt="} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs mention %q", secret)
		}
	}
}
