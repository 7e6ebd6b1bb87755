// Package observe holds Keyline's Prometheus metrics: one registry, built by
// New and passed to whoever records into it (no package-level state, so tests
// and several servers in one process never share counters), and the HTTP
// server that exposes it on its own listen address.
package observe

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every Keyline metric name.
const Namespace = "keyline"

// maxReasons bounds the distinct reason labels of auth failures. Reasons are
// short fixed sentences from app/connect today, but a label fed by code that
// may one day format request data into it must not grow without bound.
const maxReasons = 64

// Metrics is Keyline's registry and the metrics recorded into it. It is safe
// for concurrent use. The zero value is not usable: build one with New.
type Metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	deliveries   *prometheus.CounterVec
	inFlight     *prometheus.GaugeVec
	issueViews   *prometheus.CounterVec

	mu      sync.Mutex
	reasons map[string]bool
}

// New returns a registry with Keyline's request, auth and delivery metrics
// and the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help: "Time to answer an HTTP request, by route pattern (never the raw path), method and status class.",
			// From a cached descriptor (sub-millisecond) to a slow Jira
			// round trip; the panel's 15 ms target sits between buckets.
			Buckets: []float64{.001, .0025, .005, .01, .015, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "status"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "auth_failures_total",
			Help: "Refused credentials: Connect JWTs and install tokens (surface=connect), webhook signatures (surface=ingest).",
		}, []string{"surface", "reason"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "ingest", Name: "deliveries_total",
			Help: "Webhook deliveries by source kind and outcome (accepted, ignored, duplicate, or why one was refused).",
		}, []string{"kind", "outcome"}),
		// Keyline has no queue: a delivery is stored before it is answered.
		// Requests being handled are its backlog, and this is their size.
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "http", Name: "requests_in_flight",
			Help: "Requests being handled now, by route class (ingest = webhook deliveries being verified and stored).",
		}, []string{"class"}),
		issueViews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "issue_view_cache", Name: "requests_total",
			Help: "Issue panel and summary loads by how the issue view cache answered: hit, miss (read and rendered), or bypass (cache off, or this replica's change listener down).",
		}, []string{"result"}),
		reasons: map[string]bool{},
	}
	m.reg.MustRegister(m.requests, m.authFailures, m.deliveries, m.inFlight, m.issueViews,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, for tests and for collectors of other parts.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// WatchDB adds the connection pool statistics of db (open, in use, idle,
// waits, closed connections) under db_name=name.
func (m *Metrics) WatchDB(name string, db *sql.DB) error {
	if db == nil {
		return errors.New("observe: no database handle")
	}
	if err := m.reg.Register(collectors.NewDBStatsCollector(db, name)); err != nil {
		return fmt.Errorf("observe: register pool statistics for %s: %w", name, err)
	}
	return nil
}

// ObserveRequest records one answered request. route is the route pattern
// the router matched ("/ingest/:token"), never the request path: webhook
// paths carry credentials, and raw paths would make one series per URL.
func (m *Metrics) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, methodLabel(method), statusClass(status)).Observe(elapsed.Seconds())
}

// AuthFailure counts one refused credential on surface ("connect" or
// "ingest") for reason, a short fixed phrase. Past maxReasons distinct
// reasons, new ones are counted as "other".
func (m *Metrics) AuthFailure(surface, reason string) {
	m.authFailures.WithLabelValues(surface, m.boundedReason(reason)).Inc()
}

// Delivery counts one webhook delivery of a source kind ("unknown" when the
// URL named no source) with its outcome.
func (m *Metrics) Delivery(kind, outcome string) {
	if kind == "" {
		kind = "unknown"
	}
	m.deliveries.WithLabelValues(kind, outcome).Inc()
}

// IssueView counts one issue panel or summary load by how the issue view
// cache answered it: "hit", "miss" or "bypass".
func (m *Metrics) IssueView(result string) {
	m.issueViews.WithLabelValues(result).Inc()
}

// InFlight counts one request of a route class as being handled until the
// returned func is called, once, when it has been answered. class is one of
// a few fixed words the caller chooses ("ingest", "page", "api"…).
func (m *Metrics) InFlight(class string) (done func()) {
	g := m.inFlight.WithLabelValues(class)
	g.Inc()
	var once sync.Once
	return func() { once.Do(g.Dec) }
}

func (m *Metrics) boundedReason(reason string) string {
	if reason == "" || len(reason) > 80 {
		return "other"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reasons[reason] {
		return reason
	}
	if len(m.reasons) >= maxReasons {
		return "other"
	}
	m.reasons[reason] = true
	return reason
}

// statusClass turns a status into "2xx" … "5xx": per-code series would add
// little and multiply the histogram.
func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// methodLabel keeps the methods Keyline routes and folds the rest, which
// any client may invent, into one series.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch:
		return method
	}
	return "other"
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	opts := promhttp.HandlerOpts{
		// A failing collector should not hide the others.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}
	if log != nil {
		opts.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return promhttp.HandlerFor(m.reg, opts)
}

// NewServer returns the server for addr that answers GET /metrics and
// nothing else. It is separate from the app's server so that metrics can be
// bound to a private address (127.0.0.1, a pod IP) that Atlassian and
// webhook senders never reach.
func NewServer(addr string, m *Metrics, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler(log))
	srv := &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return srv
}
