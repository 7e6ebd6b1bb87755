package loadtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeepAliveClientReusesConnections(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Got", r.Header.Get("X-Sent"))
		w.Write(append([]byte("echo:"), body...))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	client := NewKeepAliveClient(2, 5*time.Second)
	for i := range 20 {
		body := bytes.Repeat([]byte{'a' + byte(i)}, 1000*i)
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/x", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Sent", "v")
		status, got, err := send(context.Background(), client, req)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusOK || !bytes.Equal(got, append([]byte("echo:"), body...)) {
			t.Fatalf("request %d: status %d, body of %d bytes", i, status, len(got))
		}
		if i == 5 {
			// A kept connection the server closed is replaced.
			srv.CloseClientConnections()
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections for 20 sequential requests and one close by the server, want 2", n)
	}
}

func TestKeepAliveClientCancels(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	client := NewKeepAliveClient(1, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, bytes.NewReader([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = client.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled request returned after %s", d)
	}
}
