package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// NextFunc returns the next request of one worker. It is called by that
// worker only, so whatever state it closes over (a Repo's history) needs no
// locking. The request is sent with the run's context; NextFunc need not set
// one.
type NextFunc func() (*http.Request, error)

// Generator makes the request source of worker w (0 ≤ w < Concurrency). It
// is called once per worker before any request is sent, so that generators
// can give each worker state of its own instead of sharing it.
type Generator func(w int) NextFunc

// CheckFunc judges one answered request. label names what happened, for the
// report's tallies ("accepted", "duplicate", a reason); a non-nil error makes
// the response a failure. It sees at most MaxResponseBody bytes of the body,
// in a buffer the worker reuses for its next answer: it must not keep body.
type CheckFunc func(status int, body []byte) (label string, err error)

// RequestCheckFunc is a CheckFunc that also sees the request it judges, for
// answers that must match what was asked: the issue panel must show the
// issue the request named. The request must not be modified.
type RequestCheckFunc func(req *http.Request, status int, body []byte) (label string, err error)

// MaxResponseBody is how much of each answer the driver reads for Check; the
// rest is drained and discarded so the connection can be reused.
const MaxResponseBody = 64 << 10

// Config describes one run.
type Config struct {
	// Client sends every request; NewClient sizes one for Concurrency.
	Client *http.Client
	// Concurrency is the number of workers, each with one request in flight.
	Concurrency int
	// Warmup is sent first and not counted: connections are opened, the
	// server's caches and the database's buffers fill.
	Warmup time.Duration
	// Duration is the measured window after Warmup.
	Duration time.Duration
	// Rate is the total requests per second over all workers, warm-up
	// included; 0 sends as fast as the workers can. A rate the workers
	// cannot keep up with shows as a lower throughput, not as a queue, and
	// latency is always measured from when a request was actually sent.
	Rate float64
	// Generator makes each worker's requests.
	Generator Generator
	// Check judges responses; nil accepts any 2xx.
	Check CheckFunc
	// CheckRequest, when set, judges responses instead of Check.
	CheckRequest RequestCheckFunc
}

// NewClient returns an HTTP client for concurrency workers talking to one
// host: enough idle connections are kept that no worker ever opens a new
// one after the first request, which would measure the TCP handshake (and
// exhaust ephemeral ports) instead of the server.
func NewClient(concurrency int, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = concurrency
	tr.MaxIdleConnsPerHost = concurrency
	return &http.Client{Transport: tr, Timeout: timeout}
}

// validate refuses a configuration Run cannot run.
func (cfg Config) validate() error {
	switch {
	case cfg.Concurrency < 1:
		return errors.New("loadtest: concurrency must be at least 1")
	case cfg.Duration <= 0:
		return errors.New("loadtest: duration must be positive")
	case cfg.Warmup < 0:
		return errors.New("loadtest: warm-up must not be negative")
	case cfg.Rate < 0:
		return errors.New("loadtest: rate must not be negative")
	case cfg.Generator == nil:
		return errors.New("loadtest: no generator")
	}
	return nil
}

// sample is one measured request.
type sample struct {
	latency time.Duration
	status  int // 0 when err is a transport error
	label   string
	err     error
	// local is set when the request could not even be built: a fault of
	// the generator, not of the server or the network.
	local bool
}

// workerLog is what one worker measured; each worker appends to its own, so
// recording needs no lock on the hot path.
type workerLog struct {
	samples  []sample
	warmup   int
	lastDone time.Time
}

// pacer hands out send times rate apart to all workers, so the total rate
// is honoured however the workers' latencies vary.
type pacer struct {
	start    time.Time
	interval time.Duration
	next     atomic.Int64
}

// slot returns when the caller may send its next request.
func (p *pacer) slot() time.Time {
	n := p.next.Add(1) - 1
	return p.start.Add(time.Duration(n) * p.interval)
}

// Run sends requests for Warmup+Duration and reports what was measured after
// Warmup. Workers stop starting requests at the end of the window and wait
// for those in flight. When ctx is cancelled the run stops early: the report
// covers what was measured so far and the error is ctx's; requests cut short
// by the cancellation are not counted as failures.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client := cfg.Client
	if client == nil {
		client = NewClient(cfg.Concurrency, 30*time.Second)
	}
	check := cfg.CheckRequest
	if check == nil {
		byStatus := cfg.Check
		if byStatus == nil {
			byStatus = check2xx
		}
		check = func(_ *http.Request, status int, body []byte) (string, error) { return byStatus(status, body) }
	}
	nexts := make([]NextFunc, cfg.Concurrency)
	for w := range nexts {
		nexts[w] = cfg.Generator(w)
	}

	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	var pace *pacer
	if cfg.Rate > 0 {
		pace = &pacer{start: start, interval: time.Duration(float64(time.Second) / cfg.Rate)}
	}
	logs := make([]workerLog, cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range nexts {
		wg.Go(func() {
			logs[w] = work(ctx, client, nexts[w], check, pace, measureFrom, end)
		})
	}
	wg.Wait()

	rep := newReport(cfg, logs, measureFrom)
	return rep, ctx.Err()
}

// work is one worker's loop.
func work(ctx context.Context, client *http.Client, next NextFunc, check RequestCheckFunc, pace *pacer, measureFrom, end time.Time) workerLog {
	var log workerLog
	// One body buffer per worker, grown to the largest answer: reading
	// each answer into a new one was a good part of the generator's
	// allocations, and its CPU is taken from the server's in a local run.
	var body bytes.Buffer
	var limit io.LimitedReader
	for ctx.Err() == nil {
		sendAt := time.Now()
		if pace != nil {
			sendAt = pace.slot()
			if !sendAt.Before(end) {
				break
			}
			if d := time.Until(sendAt); d > 0 && !sleep(ctx, d) {
				break
			}
		} else if !sendAt.Before(end) {
			break
		}
		req, err := next()
		if err != nil {
			// A generator that cannot build a request is a bug in the
			// test set-up, not a server failure; one line says which.
			log.samples = append(log.samples, sample{err: fmt.Errorf("build request: %w", err), local: true})
			break
		}
		began := time.Now()
		status, err := send(ctx, client, req, &body, &limit)
		done := time.Now()
		if err != nil && ctx.Err() != nil {
			break // cut short by the caller's cancellation: not the server's fault
		}
		if sendAt.Before(measureFrom) {
			log.warmup++
			continue
		}
		s := sample{latency: done.Sub(began), status: status, err: err}
		if err == nil {
			s.label, s.err = check(req, status, body.Bytes())
		}
		log.samples = append(log.samples, s)
		log.lastDone = done
	}
	return log
}

// send performs req and reads up to MaxResponseBody bytes of the answer
// into body (reset first), draining the rest so the connection goes back
// to the pool. limit is the caller's, reused so that reading allocates
// nothing.
func send(ctx context.Context, client *http.Client, req *http.Request, body *bytes.Buffer, limit *io.LimitedReader) (int, error) {
	body.Reset()
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	*limit = io.LimitedReader{R: resp.Body, N: MaxResponseBody}
	_, err = body.ReadFrom(limit)
	limit.R = nil // the answer's body is not kept past its request
	if err != nil {
		return 0, fmt.Errorf("read response: %w", err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, nil
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func check2xx(status int, _ []byte) (string, error) {
	if status/100 == 2 {
		return http.StatusText(status), nil
	}
	return "", fmt.Errorf("status %d", status)
}
