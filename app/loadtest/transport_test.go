package loadtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
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
	var buf bytes.Buffer
	var limit io.LimitedReader
	for i := range 20 {
		body := bytes.Repeat([]byte{'a' + byte(i)}, 1000*i)
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/x", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Sent", "v")
		status, err := send(context.Background(), client, req, &buf, &limit)
		got := buf.Bytes()
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

// TestKeepAliveClientTimesOut checks the client's time limit, which the
// transport applies as a deadline on the connection: a request the server
// does not answer, and an answer whose body stops coming, fail with a
// deadline error, and a request that timed out on a kept connection is not
// sent again on a new one.
func TestKeepAliveClientTimesOut(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/warm":
			return
		case "/slow-body":
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
		}
		<-release
	}))
	defer srv.Close()
	defer close(release)
	const limit = 200 * time.Millisecond
	for _, c := range []struct {
		path, wantErr string
	}{
		{"/no-answer", "no answer within 200ms"},
		{"/slow-body", "read response"},
	} {
		t.Run(c.path, func(t *testing.T) {
			client := NewKeepAliveClient(1, limit)
			// A kept connection first, so that the timed-out request
			// would be one the transport sends again after a failure.
			var buf bytes.Buffer
			var lr io.LimitedReader
			warm, err := http.NewRequest(http.MethodGet, srv.URL+"/warm", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := send(context.Background(), client, warm, &buf, &lr); err != nil {
				t.Fatal(err)
			}
			hits.Store(0)
			req, err := http.NewRequest(http.MethodGet, srv.URL+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = send(context.Background(), client, req, &buf, &lr)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("err = %v, want a deadline error containing %q", err, c.wantErr)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("the server got the request %d times", n)
			}
		})
	}
}

// TestKeepAliveClientHTTPS checks the fallback for https URLs: the answer
// comes back, and a redirect is followed once, by the client the caller
// holds, not by the fallback inside it.
func TestKeepAliveClientHTTPS(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusFound)
			return
		}
		w.Write([]byte("at " + r.URL.Path))
	}))
	defer srv.Close()
	client := NewKeepAliveClient(1, 5*time.Second)
	fallback := client.Transport.(*keepAliveTransport).fallback
	fallback.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	var redirects int
	client.CheckRedirect = func(*http.Request, []*http.Request) error { redirects++; return nil }
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/old", nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var lr io.LimitedReader
	status, err := send(context.Background(), client, req, &buf, &lr)
	if err != nil || status != http.StatusOK || buf.String() != "at /new" {
		t.Fatalf("status %d, body %q, err %v", status, buf.String(), err)
	}
	if redirects != 1 || hits.Load() != 2 {
		t.Errorf("%d redirects followed by the client, %d requests served; want 1 and 2", redirects, hits.Load())
	}
}
