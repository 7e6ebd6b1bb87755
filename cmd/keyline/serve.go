package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/jira"
	"github.com/keyline/keyline/app/observe"
	"github.com/keyline/keyline/app/secret"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
	"github.com/keyline/keyline/app/web"
	"github.com/keyline/keyline/descriptor"
)

// application is every long-lived part of a running Keyline, built once.
type application struct {
	cfg     *config.Config
	log     *slog.Logger
	store   *store.Store
	tenants *tenant.Cache
	server  *web.Server
	// metrics is nil when KEYLINE_METRICS_ADDR is empty.
	metrics *observe.Metrics
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openStore opens and migrates the configured database. In embedded mode the
// secret key is generated on first start and kept beside the database.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (*store.Store, error) {
	var key []byte
	var err error
	if cfg.SecretKey != "" {
		key, err = secret.ParseKey(cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("KEYLINE_SECRET_KEY: %w", err)
		}
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		key, err = secret.LoadOrCreateKeyFile(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("secret key: %w", err)
		}
	}
	sealer, err := secret.NewSealer(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	var st *store.Store
	if cfg.Embedded() {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		st, err = store.OpenSQLite(ctx, cfg.SQLitePath(), sealer, log)
	} else {
		st, err = store.OpenPostgres(ctx, cfg.DatabaseURL, sealer, log)
	}
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func newApplication(ctx context.Context, env map[string]string, logw io.Writer) (*application, error) {
	cfg, err := config.Load(env)
	if err != nil {
		return nil, err
	}
	log := newLogger(cfg, logw)
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	tenants := tenant.NewCache(st)
	keys := connect.NewKeyFetcher(cfg.InstallKeysURL, &http.Client{Timeout: 5 * time.Second})
	renderer, err := descriptor.NewRenderer()
	if err != nil {
		st.Close()
		return nil, err
	}
	limits, err := ingest.NewLimits(ingest.LimitConfig{
		SourceRate: cfg.IngestSourceRate, SourceBurst: cfg.IngestSourceBurst,
		SiteRate: cfg.IngestSiteRate, SiteBurst: cfg.IngestSiteBurst,
	}, nil)
	if err != nil { // config.Load checked the values, so a bug
		st.Close()
		return nil, fmt.Errorf("ingest limits: %w", err)
	}
	var metrics *observe.Metrics
	var observer web.Observer // stays a nil interface when metrics are off
	if cfg.MetricsAddr != "" {
		metrics = observe.New()
		if err := metrics.WatchDB("keyline", st.SQLDB()); err != nil {
			st.Close()
			return nil, err
		}
		observer = metrics
	}
	views, err := web.NewIssueViewCache(cfg.IssueViewCache)
	if err != nil { // config.Load checked the size, so a bug
		st.Close()
		return nil, fmt.Errorf("issue view cache: %w", err)
	}
	srv, err := web.New(web.Deps{
		IssueViews:     views,
		Observer:       observer,
		Logger:         log,
		Store:          st,
		Tenants:        tenants,
		Verifier:       connect.NewVerifier(tenants),
		Installs:       connect.NewInstallVerifier(keys, cfg.AllowedHosts),
		Descriptors:    renderer,
		Jira:           jira.New(cfg.JiraAppKey(), &http.Client{Timeout: 10 * time.Second}),
		Receiver:       ingest.NewReceiver(st, log, ingest.WithLimits(limits)),
		BaseURL:        cfg.BaseURL,
		AppKeyPrefix:   cfg.AppKey,
		AllowedHosts:   cfg.AllowedHosts,
		FrameAncestors: cfg.FrameAncestors,
		RetentionDays:  cfg.RetentionDays,
		Version:        version,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &application{cfg: cfg, log: log, store: st, tenants: tenants, server: srv, metrics: metrics}, nil
}

// defaultGCPercent is the garbage collector's heap growth target (GOGC)
// when the environment sets none. A delivery allocates about 120 KB that is
// garbage once it is answered, while a replica's live heap stays small, so
// at Go's default of 100 the collector runs many times a second under
// webhook load. At 400 Keyline spent about a fifth less CPU per delivery in
// the ingestion load run, for a peak resident size of about 100 MB instead
// of 50 (docs/benchmarks.md). GOGC overrides it; GOMEMLIMIT, when set, still
// makes the collector run early rather than let the heap pass the limit.
const defaultGCPercent = 400

// setGCPercent applies defaultGCPercent unless env sets GOGC.
func setGCPercent(env map[string]string) {
	if _, set := env["GOGC"]; !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}

func serve(ctx context.Context, env map[string]string, logw io.Writer) error {
	start := time.Now()
	a, err := newApplication(ctx, env, logw)
	if err != nil {
		return err
	}
	defer a.store.Close()
	setGCPercent(env)

	// Other replicas announce reinstalls through the database; drop their
	// tenants from this replica's cache as soon as they do.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		err := a.store.WatchTenants(watchCtx, a.tenants.Invalidate, a.tenants.Flush)
		if err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("tenant watcher stopped", slog.String("error", err.Error()))
		}
	}()
	// This replica's writes to site data are announced to the others, whose
	// panel caches then drop what they hold for those sites.
	go func() {
		if err := a.store.AnnounceChanges(watchCtx); err != nil {
			a.log.Error("data change announcer stopped", slog.String("error", err.Error()))
		}
	}()

	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	hs := newHTTPServer(a.server.Handler(), a.log)
	a.log.Info("keyline started",
		slog.String("version", version),
		slog.String("addr", ln.Addr().String()),
		slog.String("base_url", a.cfg.BaseURL),
		slog.String("database", a.store.Dialect()),
		slog.Duration("startup", time.Since(start)),
	)
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	var ms *http.Server
	if a.metrics != nil {
		// A second server, so /metrics is never reachable on the public
		// address; it is opened before start-up is announced so a taken
		// port stops the process instead of failing in the background.
		mln, err := net.Listen("tcp", a.cfg.MetricsAddr)
		if err != nil {
			hs.Close()
			return fmt.Errorf("listen on KEYLINE_METRICS_ADDR %s: %w", a.cfg.MetricsAddr, err)
		}
		ms = observe.NewServer(a.cfg.MetricsAddr, a.metrics, a.log)
		go func() {
			if err := ms.Serve(mln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics server: %w", err)
			}
		}()
		a.log.Info("metrics listening", slog.String("addr", mln.Addr().String()))
	}
	select {
	case err := <-errc:
		hs.Close()
		if ms != nil {
			ms.Close()
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Stop accepting, let in-flight requests finish within the grace period.
	a.log.Info("shutting down", slog.Duration("grace", a.cfg.ShutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownGrace)
	defer cancel()
	err = hs.Shutdown(sctx)
	if err != nil {
		// The grace period is over: cut the connections still open, which
		// ends their requests' contexts, so no handler outlives serve.
		hs.Close()
		err = fmt.Errorf("requests still running after KEYLINE_SHUTDOWN_GRACE (%s) were cut off: %w", a.cfg.ShutdownGrace, err)
	}
	if ms != nil {
		// Metrics stay up while the app drains, so the drain can be watched;
		// a scrape takes milliseconds, so a short bound is enough.
		mctx, mcancel := context.WithTimeout(context.Background(), 2*time.Second)
		if merr := ms.Shutdown(mctx); merr != nil {
			a.log.Warn("metrics server shutdown", slog.String("error", merr.Error()))
		}
		mcancel()
	}
	if err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	a.log.Info("stopped")
	return nil
}

// Limits of the public server. A slow or stalled client holds a connection
// and a goroutine for at most these; none of them bounds the work a handler
// does, which web.HandlerTimeout does.
const (
	// readHeaderTimeout is for the request line and headers, which any
	// client sends at once.
	readHeaderTimeout = 5 * time.Second
	// readTimeout covers headers and body: a 5 MiB delivery (the largest
	// the receiver takes) needs 20 s only below about 2 Mbit/s.
	readTimeout = 20 * time.Second
	// writeTimeout runs from the end of the headers to the last byte of the
	// answer, so it spans reading the body, the handler and writing. It is
	// above web.HandlerTimeout (25 s), which cancels a handler's database
	// queries and Jira calls (10 s per attempt, retried on 429 and 503)
	// before the connection is cut, and far above the slowest answer
	// measured: a site-wide release report over 365 days of a 1,000,000-
	// deployment site, p99 1.4 s (docs/benchmarks.md).
	writeTimeout = 30 * time.Second
	// idleTimeout is how long a kept-alive connection may wait for its next
	// request: two minutes, above the load balancers' usual 60 s, so the
	// balancer, not Keyline, closes idle connections and never sends a
	// request into one Keyline is closing.
	idleTimeout = 120 * time.Second
	// maxHeaderBytes is far above Connect's headers (a JWT of a few KB, in
	// the query string or Authorization) and webhook senders' (GitHub's are
	// under 2 KB); larger headers get 431.
	maxHeaderBytes = 64 << 10
)

// newHTTPServer is the public server around h, with the limits above.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func migrate(ctx context.Context, env map[string]string, stdout, logw io.Writer) error {
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, newLogger(cfg, logw))
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = fmt.Fprintf(stdout, "migrations applied (%s)\n", st.Dialect())
	return err
}
