package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/web"
)

// The public server has every timeout, and its write timeout leaves the
// handler's own deadline room to answer.
func TestHTTPServerTimeouts(t *testing.T) {
	hs := newHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if hs.ReadHeaderTimeout <= 0 || hs.ReadTimeout <= 0 || hs.WriteTimeout <= 0 || hs.IdleTimeout <= 0 || hs.MaxHeaderBytes <= 0 {
		t.Fatalf("server without a limit: %+v", hs)
	}
	if hs.WriteTimeout <= web.HandlerTimeout {
		t.Errorf("WriteTimeout %s must exceed web.HandlerTimeout %s", hs.WriteTimeout, web.HandlerTimeout)
	}
	if hs.ReadHeaderTimeout > hs.ReadTimeout {
		t.Errorf("ReadHeaderTimeout %s above ReadTimeout %s", hs.ReadHeaderTimeout, hs.ReadTimeout)
	}
}

// Headers past maxHeaderBytes are refused with 431 before any handler
// runs; headers of a normal size pass.
func TestHTTPServerRefusesOversizedHeaders(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}), slog.New(slog.DiscardHandler))
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	for _, tc := range []struct {
		name  string
		bytes int
		want  int
	}{
		{"a Connect-sized header", 8 << 10, http.StatusNoContent},
		// net/http allows 4 KB of slack over MaxHeaderBytes.
		{"a header over the limit", maxHeaderBytes + 8<<10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // a hung server fails the test, not the suite
			req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: keyline.test\r\nX-Filler: %s\r\nConnection: close\r\n\r\n",
				strings.Repeat("a", tc.bytes))
			if _, err := io.WriteString(conn, req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
