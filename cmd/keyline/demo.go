package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/keyline/keyline/app/preview"
)

const demoUsage = `usage: keyline demo [flags]

Runs Keyline with a demo Jira and Confluence site on an embedded SQLite
database, and serves a page that frames Keyline's issue panel, issue summary,
Confluence macro, project page and configure pages the way Jira and
Confluence do, with freshly signed tokens. Open the URL it prints.

The demo site has three projects (PAY, WEB, OPS) with one service each and
about four months of history: pushes, branches, pull requests, builds,
deployments to development, staging and production (one failed, one rolled
back), and incidents with their suspect deployments.

flags:
  --addr 127.0.0.1:8080   where to listen: 127.0.0.1, localhost, [::1], or
                          all addresses (:8080) with the page opened on this
                          machine. Keep it on 127.0.0.1, since the page signs
                          tokens for the demo site for anyone who can reach
                          it; Keyline lets plain-http pages frame it only on
                          this machine
  --data-dir DIR          keep the demo database in DIR and reuse it next
                          time (default: a temporary directory, removed on exit)

Other KEYLINE_* settings apply as for keyline serve, except that the demo
always uses its own SQLite database: KEYLINE_DATABASE_URL,
KEYLINE_SECRET_KEY and KEYLINE_DATA_DIR are ignored. Logs are text at level
warn unless KEYLINE_LOG_FORMAT or KEYLINE_LOG_LEVEL say otherwise.
`

// demoFlags are the settings of keyline demo.
type demoFlags struct {
	addr    string
	dataDir string
}

func parseDemoFlags(args []string) (*demoFlags, error) {
	f := &demoFlags{}
	fs := flag.NewFlagSet("keyline demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&f.dataDir, "data-dir", "", "keep the database here")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	host, _, err := net.SplitHostPort(f.addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %q: want host:port", f.addr)
	}
	if !demoHost(host) {
		return nil, fmt.Errorf("--addr %q: the demo's page frames Keyline over plain http, which Keyline allows only "+
			"on this machine; listen on 127.0.0.1, localhost, [::1] or all addresses (:port)", f.addr)
	}
	return f, nil
}

// runDemo runs "keyline demo": it serves until ctx ends.
func runDemo(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		_, err := fmt.Fprint(stdout, demoUsage)
		return err
	}
	f, err := parseDemoFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		_, err := fmt.Fprint(stdout, demoUsage)
		return err
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	start := time.Now()
	dir, temporary := f.dataDir, f.dataDir == ""
	if temporary {
		if dir, err = os.MkdirTemp("", "keyline-demo-"); err != nil {
			return fmt.Errorf("demo: data directory: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("demo: listen on %s: %w", f.addr, err)
	}
	defer ln.Close()
	d, err := newDemo(ctx, env, dir, ln.Addr(), stderr)
	if err != nil {
		return err
	}
	defer d.close()

	fmt.Fprintf(stdout, "Keyline demo is ready: open %s/\n", d.url)
	if d.site.Reused {
		fmt.Fprintf(stdout, "  demo site reused from %s\n", dir)
	} else {
		fmt.Fprintf(stdout, "  seeded %d events of projects PAY, WEB and OPS in %s\n", d.site.Events, time.Since(start).Round(time.Millisecond))
	}
	if temporary {
		fmt.Fprintf(stdout, "  data: %s (removed on exit; keep it with --data-dir)\n", dir)
	} else {
		fmt.Fprintf(stdout, "  data: %s\n", dir)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !isLoopback(host) {
		fmt.Fprintln(stdout, "  warning: listening beyond this machine; anyone who reaches it gets tokens for the demo site")
	}
	fmt.Fprintln(stdout, "  stop with Ctrl+C")

	hs := &http.Server{
		Handler:           d.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       20 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(d.app.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("demo: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), d.app.cfg.ShutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("demo: shutdown: %w", err)
	}
	return nil
}

// demoServer is Keyline wired as for keyline serve, its seeded demo site,
// and the preview host that plays the site, behind one handler.
type demoServer struct {
	app     *application
	site    *preview.Demo
	url     string // where the browser reaches it, without a trailing slash
	handler http.Handler
}

func (d *demoServer) close() { d.app.store.Close() }

// newDemo builds the application on an SQLite database in dir, seeds the demo
// site (or finds it there) and puts the preview host page at / and Keyline
// everywhere else, on the address addr the caller listens on.
func newDemo(ctx context.Context, env map[string]string, dir string, addr net.Addr, logw io.Writer) (*demoServer, error) {
	denv := maps.Clone(env)
	if denv == nil {
		denv = map[string]string{}
	}
	// The demo never touches a configured database: its data is made up.
	delete(denv, "KEYLINE_DATABASE_URL")
	delete(denv, "KEYLINE_SECRET_KEY")
	denv["KEYLINE_DATA_DIR"] = dir
	denv["KEYLINE_ADDR"] = addr.String()
	// The host page is served from Keyline's own origin: Keyline's pages
	// must let it frame them, as they let Jira.
	origins, err := demoOrigins(addr)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if extra := strings.TrimSpace(denv["KEYLINE_FRAME_ANCESTORS"]); extra != "" {
		origins = append([]string{extra}, origins...)
	}
	denv["KEYLINE_FRAME_ANCESTORS"] = strings.Join(origins, ",")
	if denv["KEYLINE_LOG_FORMAT"] == "" {
		denv["KEYLINE_LOG_FORMAT"] = "text"
	}
	if denv["KEYLINE_LOG_LEVEL"] == "" {
		denv["KEYLINE_LOG_LEVEL"] = "warn"
	}
	a, err := newApplication(ctx, denv, logw)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d := &demoServer{app: a, url: "http://" + browserAddr(addr)}
	d.site, err = preview.Seed(ctx, a.store, preview.SeedOptions{AppKeyPrefix: a.cfg.AppKey, SiteURL: d.url})
	if err != nil {
		a.store.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	// A reused site was just pointed at this address.
	a.tenants.Invalidate(a.cfg.JiraAppKey(), preview.DemoJiraClientKey)
	a.tenants.Invalidate(a.cfg.ConfluenceAppKey(), preview.DemoConfluenceClientKey)
	opts := d.site.HostOptions(a.store, a.cfg.AppKey, "")
	opts.Logger = a.log
	host, err := preview.New(opts)
	if err != nil {
		a.store.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	mux := http.NewServeMux()
	host.Register(mux)
	mux.Handle("/", a.server.Handler())
	d.handler = mux
	return d, nil
}

// demoHost reports whether the demo may listen on host: where a browser on
// this machine reaches it by an origin that KEYLINE_FRAME_ANCESTORS accepts
// over plain http (127.0.0.1, localhost, [::1]), or all addresses.
func demoHost(host string) bool {
	if host == "" || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsUnspecified() || ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

// demoOrigins are the origins a browser on this machine reaches the demo
// listening on addr by: its loopback address and localhost, or, listening
// on all addresses, every loopback name. Other hosts are refused, since
// Keyline lets plain-http origins frame it only on this machine.
func demoOrigins(addr net.Addr) ([]string, error) {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return nil, fmt.Errorf("listen address %s: %w", addr, err)
	}
	ip := net.ParseIP(host)
	var hosts []string
	switch {
	case host == "" || ip != nil && ip.IsUnspecified():
		hosts = []string{"127.0.0.1", "localhost", "[::1]"}
	case ip != nil && ip.Equal(net.IPv4(127, 0, 0, 1)):
		hosts = []string{"127.0.0.1", "localhost"}
	case ip != nil && ip.Equal(net.IPv6loopback):
		hosts = []string{"[::1]", "localhost"}
	default:
		return nil, fmt.Errorf("listen address %s: the demo's page may frame Keyline only from 127.0.0.1, localhost or [::1]", addr)
	}
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, "http://"+h+":"+port)
	}
	return out, nil
}

// browserAddr is addr as a browser on this machine reaches it: a wildcard
// listen address becomes 127.0.0.1.
func browserAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
