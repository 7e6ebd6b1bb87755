package loadtest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxErrorKinds bounds the distinct error messages a report lists; a server
// failing in a thousand ways at once needs only the commonest few shown.
const maxErrorKinds = 10

// Report is what a run measured after its warm-up.
type Report struct {
	Concurrency int
	// Rate is the requested total rate per second; 0 means unpaced.
	Rate           float64
	Warmup         time.Duration
	WarmupRequests int
	// Sent counts the measured requests, answered or not.
	Sent int
	// OK counts the responses Check accepted.
	OK int
	// Window runs from the end of the warm-up to the last measured answer.
	Window time.Duration
	// Throughput is OK responses per second of Window.
	Throughput float64
	// Latency is over every answered request, failed or not; requests that
	// got no answer (transport errors) have no latency.
	Latency Latency
	// Status counts answers by HTTP status.
	Status map[int]int
	// Labels counts answers by Check's label ("accepted", "duplicate"…).
	Labels map[string]int
	// Failed counts answers that Check refused (a wrong status or outcome).
	Failed int
	// TransportErrors counts requests that got no answer: refused
	// connections, time-outs, resets.
	TransportErrors int
	// GeneratorErrors counts requests that could not be built.
	GeneratorErrors int
	// Errors are the commonest distinct error messages, most frequent first.
	Errors []ErrorCount
}

// Latency summarises answered requests' durations, from sending the request
// to reading the last byte of the answer.
type Latency struct {
	P50, P90, P99, Max, Mean time.Duration
}

// ErrorCount is one distinct error message and how often it occurred.
type ErrorCount struct {
	Message string `json:"message"`
	Count   int    `json:"count"`
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. It is exact and always one of the values; 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The tolerance keeps float error from pushing an exact rank (99 of
	// 100) up to the next one.
	rank := int(math.Ceil(float64(len(sorted))*p/100 - 1e-9))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// newReport merges the workers' logs.
func newReport(cfg Config, logs []workerLog, measureFrom time.Time) *Report {
	r := &Report{
		Concurrency: cfg.Concurrency,
		Rate:        cfg.Rate,
		Warmup:      cfg.Warmup,
		Status:      map[int]int{},
		Labels:      map[string]int{},
	}
	var latencies []time.Duration
	var sum time.Duration
	last := measureFrom
	errs := map[string]int{}
	for _, l := range logs {
		r.WarmupRequests += l.warmup
		if l.lastDone.After(last) {
			last = l.lastDone
		}
		for _, s := range l.samples {
			r.Sent++
			switch {
			case s.local:
				r.GeneratorErrors++
				errs[errorMessage(s.err)]++
				continue
			case s.status == 0:
				r.TransportErrors++
				errs["transport: "+errorMessage(s.err)]++
				continue
			}
			r.Status[s.status]++
			if s.label != "" {
				r.Labels[s.label]++
			}
			latencies = append(latencies, s.latency)
			sum += s.latency
			if s.err != nil {
				r.Failed++
				errs[errorMessage(s.err)]++
			} else {
				r.OK++
			}
		}
	}
	// Requests answered after the window closed were started inside it, so
	// the window stretches to the last answer: throughput is never
	// flattered by answers that came late.
	r.Window = max(last.Sub(measureFrom), cfg.Duration)
	r.Throughput = float64(r.OK) / r.Window.Seconds()
	if n := len(latencies); n > 0 {
		slices.Sort(latencies)
		r.Latency = Latency{
			P50:  Percentile(latencies, 50),
			P90:  Percentile(latencies, 90),
			P99:  Percentile(latencies, 99),
			Max:  latencies[n-1],
			Mean: sum / time.Duration(n),
		}
	}
	for msg, n := range errs {
		r.Errors = append(r.Errors, ErrorCount{Message: msg, Count: n})
	}
	slices.SortFunc(r.Errors, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Message, b.Message))
	})
	if len(r.Errors) > maxErrorKinds {
		r.Errors = r.Errors[:maxErrorKinds]
	}
	return r
}

// errorMessage is err's text without the request URL: ingest URLs carry
// the source's secret token, which must not end up in a report or a CI log.
// Dropping it also makes the same failure on different sources one message.
func errorMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// Err says why the run failed, or returns nil when every measured request
// was answered and accepted by Check. A run that measured nothing failed
// too: its figures mean nothing.
func (r *Report) Err() error {
	if r.Sent == 0 {
		return errors.New("no request was measured: is the duration too short for the rate?")
	}
	var parts []string
	if r.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d responses failed (status %s)", r.Failed, r.Sent, r.statusList()))
	}
	if r.TransportErrors > 0 {
		parts = append(parts, fmt.Sprintf("%d requests got no response (transport errors)", r.TransportErrors))
	}
	if r.GeneratorErrors > 0 {
		parts = append(parts, fmt.Sprintf("%d requests could not be built", r.GeneratorErrors))
	}
	if len(parts) == 0 {
		return nil
	}
	msg := strings.Join(parts, "; ")
	if len(r.Errors) > 0 {
		msg += "; commonest error: " + r.Errors[0].Message
	}
	return errors.New(msg)
}

// statusList is "200: 9, 503: 1", by status.
func (r *Report) statusList() string {
	var b strings.Builder
	for i, code := range slices.Sorted(maps.Keys(r.Status)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d: %d", code, r.Status[code])
	}
	return b.String()
}

// WriteText prints r for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	pace := "as fast as possible"
	if r.Rate > 0 {
		pace = fmt.Sprintf("paced at %g/s", r.Rate)
	}
	fmt.Fprintf(&b, "requests     %d measured over %s (+%d in %s warm-up, not counted); concurrency %d, %s\n",
		r.Sent, r.Window.Round(time.Millisecond), r.WarmupRequests, r.Warmup, r.Concurrency, pace)
	fmt.Fprintf(&b, "throughput   %.1f/s successful (%d of %d)\n", r.Throughput, r.OK, r.Sent)
	l := r.Latency
	fmt.Fprintf(&b, "latency      p50 %s  p90 %s  p99 %s  max %s  mean %s\n",
		ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), ms(l.Mean))
	status := r.statusList()
	if status == "" {
		status = "none"
	}
	fmt.Fprintf(&b, "status       %s\n", status)
	if len(r.Labels) > 0 {
		b.WriteString("outcomes     ")
		for i, k := range slices.Sorted(maps.Keys(r.Labels)) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %d", k, r.Labels[k])
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "transport errors %d\n", r.TransportErrors)
	if r.GeneratorErrors > 0 {
		fmt.Fprintf(&b, "generator errors %d\n", r.GeneratorErrors)
	}
	if len(r.Errors) > 0 {
		b.WriteString("errors:\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "  %6d  %s\n", e.Count, e.Message)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ms formats d in milliseconds with a precision that suits a latency.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

// reportJSON is the stable, unit-explicit form of a Report.
type reportJSON struct {
	Concurrency     int            `json:"concurrency"`
	Rate            float64        `json:"rate"`
	WarmupSeconds   float64        `json:"warmup_seconds"`
	WarmupRequests  int            `json:"warmup_requests"`
	Sent            int            `json:"sent"`
	OK              int            `json:"ok"`
	WindowSeconds   float64        `json:"window_seconds"`
	Throughput      float64        `json:"throughput_per_second"`
	LatencyMS       latencyJSON    `json:"latency_ms"`
	Status          map[string]int `json:"status"`
	Outcomes        map[string]int `json:"outcomes"`
	Failed          int            `json:"failed"`
	TransportErrors int            `json:"transport_errors"`
	GeneratorErrors int            `json:"generator_errors"`
	Errors          []ErrorCount   `json:"errors"`
}

type latencyJSON struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// MarshalJSON writes durations as seconds or milliseconds, named so, and
// status codes as object keys.
func (r *Report) MarshalJSON() ([]byte, error) {
	msf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	status := make(map[string]int, len(r.Status))
	for code, n := range r.Status {
		status[strconv.Itoa(code)] = n
	}
	errs := r.Errors
	if errs == nil {
		errs = []ErrorCount{}
	}
	return json.Marshal(reportJSON{
		Concurrency:    r.Concurrency,
		Rate:           r.Rate,
		WarmupSeconds:  r.Warmup.Seconds(),
		WarmupRequests: r.WarmupRequests,
		Sent:           r.Sent,
		OK:             r.OK,
		WindowSeconds:  r.Window.Seconds(),
		Throughput:     r.Throughput,
		LatencyMS: latencyJSON{P50: msf(r.Latency.P50), P90: msf(r.Latency.P90), P99: msf(r.Latency.P99),
			Max: msf(r.Latency.Max), Mean: msf(r.Latency.Mean)},
		Status:          status,
		Outcomes:        r.Labels,
		Failed:          r.Failed,
		TransportErrors: r.TransportErrors,
		GeneratorErrors: r.GeneratorErrors,
		Errors:          errs,
	})
}
