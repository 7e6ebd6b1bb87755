package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeMetricsAddr starts the server with KEYLINE_METRICS_ADDR and checks
// that /metrics is served there, not on the app's address, counts the app's
// requests by route, and stops with the app.
func TestServeMetricsAddr(t *testing.T) {
	addr, maddr := freeAddr(t), freeAddr(t)
	env := map[string]string{
		"KEYLINE_ADDR":         addr,
		"KEYLINE_METRICS_ADDR": maddr,
		"KEYLINE_DATA_DIR":     t.TempDir(),
		"KEYLINE_BASE_URL":     "https://keyline.example.com",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var logs syncBuffer
	go func() { done <- run(ctx, nil, env, &logs, &logs) }()

	client := &http.Client{Timeout: 2 * time.Second}
	get := func(url string) (int, string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	var err error
	for range 100 {
		if _, _, err = get("http://" + addr + "/readyz"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("server never became ready: %v; logs: %s", err, logs.String())
	}
	if code, _, _ := get("http://" + addr + "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the app's address: %d, want 404", code)
	}
	code, body, err := get("http://" + maddr + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/metrics: %d, %v", code, err)
	}
	for _, want := range []string{
		`keyline_http_request_duration_seconds_count{method="GET",route="/readyz",status="2xx"}`,
		`go_sql_max_open_connections{db_name="keyline"}`,
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
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
	if _, _, err := get("http://" + maddr + "/metrics"); err == nil {
		t.Error("the metrics server still answers after shutdown")
	}
}
