package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheckTimeout bounds the whole probe: a container runtime's own
// timeout would otherwise kill the process without a reason on stderr.
const healthcheckTimeout = 3 * time.Second

// healthcheck asks the local server's liveness endpoint and fails unless it
// answers 200. It exists for images without a shell or curl (distroless),
// where HEALTHCHECK can only run the binary itself. It reads KEYLINE_ADDR
// alone, not the whole configuration, so a probe never fails on a setting
// the server itself has already accepted.
func healthcheck(ctx context.Context, env map[string]string, stdout io.Writer) error {
	url, err := healthURL(env["KEYLINE_ADDR"])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", url, resp.StatusCode)
	}
	_, err = fmt.Fprintln(stdout, "ok")
	return err
}

// healthURL is the liveness URL of a server listening on addr (KEYLINE_ADDR,
// ":8080" when empty): a wildcard host is reached on the loopback address.
func healthURL(addr string) (string, error) {
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("healthcheck: KEYLINE_ADDR must be host:port or :port, got %q", addr)
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
