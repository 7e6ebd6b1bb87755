package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// NewKeepAliveClient is NewClient for plain-HTTP runs whose own CPU counts,
// such as the ingest run, where the generator shares the server's cores:
// each request is written and its answer read in the caller's goroutine, on
// a kept-alive HTTP/1.1 connection, with the request in one write. The
// bytes on the wire are those of net/http's client, except that no
// Accept-Encoding is offered; net/http's transport hands every request to
// two goroutines of its connection and back, and those wake-ups were about
// a third of the generator's CPU. https URLs go through NewClient's
// transport.
//
// timeout bounds each request, its answer's body included, as
// http.Client.Timeout does, but as a deadline on the connection: the
// client's own Timeout, given a transport other than net/http's, starts a
// goroutine and a timer for every request, which cost the generator as
// much CPU as the transport saves.
func NewKeepAliveClient(concurrency int, timeout time.Duration) *http.Client {
	fallback := NewClient(concurrency, timeout)
	// The fallback client only adds the timeout: redirects are the
	// outer client's to follow.
	fallback.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &http.Client{Transport: &keepAliveTransport{
		idle:     make(chan *keptConn, concurrency),
		fallback: fallback,
		dialer:   &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		timeout:  timeout,
	}}
}

// keepAliveTransport is NewKeepAliveClient's http.RoundTripper. It keeps up
// to cap(idle) idle connections, all to the one host a run talks to; a
// request for another host closes an idle one and dials anew.
type keepAliveTransport struct {
	idle     chan *keptConn
	fallback *http.Client
	dialer   *net.Dialer
	timeout  time.Duration // of each request; 0: none
}

// keptConn is one connection with its buffers: 64 KB for writing, so that
// a push leaves in one write, and 64 KB for reading, so that an answer
// sent in chunks (an issue panel is about 12.5 KB) is read in as few
// reads as the server's writes allow.
type keptConn struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

func (t *keepAliveTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return t.fallback.Do(req)
	}
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	resp, reused, err := t.roundTrip(req, addr, true)
	if err != nil && reused && req.Context().Err() == nil && !errors.Is(err, os.ErrDeadlineExceeded) &&
		(req.Body == nil || req.GetBody != nil) {
		// A kept connection the server had closed fails before any answer;
		// net/http's transport sends such a request again, and so does this.
		// One that timed out had its time.
		if req.Body != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		resp, _, err = t.roundTrip(req, addr, false)
	}
	return resp, err
}

// roundTrip sends req on a kept connection (if reuse) or a new one;
// reused says which it was.
func (t *keepAliveTransport) roundTrip(req *http.Request, addr string, reuse bool) (resp *http.Response, reused bool, err error) {
	ctx := req.Context()
	kc, reused, err := t.conn(ctx, addr, reuse)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, false, err
	}
	// The deadline bounds the request and the reading of its answer
	// (the connection is not read between requests); cancelling the
	// request moves it to the past, which unblocks its reads and writes.
	if t.timeout > 0 {
		if err := kc.conn.SetDeadline(time.Now().Add(t.timeout)); err != nil {
			kc.conn.Close()
			return nil, reused, err
		}
	}
	stop := context.AfterFunc(ctx, func() { kc.conn.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, bool, error) {
		stop()
		kc.conn.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("loadtest: no answer within %s: %w", t.timeout, err)
		}
		return nil, reused, err
	}
	if err := req.Write(kc.bw); err != nil {
		return fail(err)
	}
	if err := kc.bw.Flush(); err != nil {
		return fail(err)
	}
	resp, err = http.ReadResponse(kc.br, req)
	if err != nil {
		return fail(err)
	}
	resp.Body = &keptBody{ReadCloser: resp.Body, t: t, kc: kc, stop: stop, reuse: !resp.Close}
	return resp, reused, nil
}

// conn returns an idle connection to addr (when reuse), or dials one.
func (t *keepAliveTransport) conn(ctx context.Context, addr string, reuse bool) (kc *keptConn, reused bool, err error) {
	if reuse {
		select {
		case kc := <-t.idle:
			if kc.addr == addr {
				return kc, true, nil
			}
			kc.conn.Close()
		default:
		}
	}
	c, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, fmt.Errorf("loadtest: dial %s: %w", addr, err)
	}
	return &keptConn{addr: addr, conn: c, br: bufio.NewReaderSize(c, 64<<10), bw: bufio.NewWriterSize(c, 64<<10)}, false, nil
}

// put keeps kc for the next request, or closes it when enough are kept.
func (t *keepAliveTransport) put(kc *keptConn) {
	select {
	case t.idle <- kc:
	default:
		kc.conn.Close()
	}
}

// keptBody gives its connection back once the answer has been read and
// closed: closing reads what is left, as net/http's client does.
type keptBody struct {
	io.ReadCloser
	t     *keepAliveTransport
	kc    *keptConn
	stop  func() bool
	reuse bool
	once  sync.Once
}

func (b *keptBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		// stop is false when the request was cancelled: its connection
		// has a deadline in the past and cannot be used again.
		if b.stop() && b.reuse && err == nil {
			b.t.put(b.kc)
			return
		}
		b.kc.conn.Close()
	})
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
