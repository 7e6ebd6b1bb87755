package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthURL(t *testing.T) {
	for addr, want := range map[string]string{
		"":               "http://127.0.0.1:8080/healthz",
		":9000":          "http://127.0.0.1:9000/healthz",
		"0.0.0.0:9000":   "http://127.0.0.1:9000/healthz",
		"[::]:9000":      "http://127.0.0.1:9000/healthz",
		"10.1.2.3:8080":  "http://10.1.2.3:8080/healthz",
		"[::1]:8080":     "http://[::1]:8080/healthz",
		"localhost:8081": "http://localhost:8081/healthz",
	} {
		if got, err := healthURL(addr); err != nil || got != want {
			t.Errorf("healthURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := healthURL("8080"); err == nil {
		t.Error("healthURL(8080) succeeded")
	}
}

func TestHealthcheckCommand(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	env := map[string]string{"KEYLINE_ADDR": strings.TrimPrefix(srv.URL, "http://")}

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"healthcheck"}, env, &out, &errb); code != 0 {
		t.Fatalf("healthy server: code %d, stderr %q", code, errb.String())
	}
	status = http.StatusServiceUnavailable
	errb.Reset()
	if code := run(context.Background(), []string{"healthcheck"}, env, &out, &errb); code != 1 || !strings.Contains(errb.String(), "503") {
		t.Errorf("unhealthy server: code %d, stderr %q", code, errb.String())
	}
	srv.Close()
	start := time.Now()
	if code := run(context.Background(), []string{"healthcheck"}, env, &out, &errb); code != 1 {
		t.Errorf("no server: code %d", code)
	}
	if time.Since(start) > healthcheckTimeout+time.Second {
		t.Errorf("healthcheck took %s without a server", time.Since(start))
	}
}
