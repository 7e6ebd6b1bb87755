// Package config reads Keyline's settings from the environment and checks them
// once at start-up, so that a bad value stops the process with one clear line
// instead of failing later on a request.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// DefaultInstallKeysURL is Atlassian's production server for the public keys
// that sign installed/uninstalled callbacks.
const DefaultInstallKeysURL = "https://connect-install-keys.atlassian.com"

// Config is every setting Keyline reads. Field tags name the environment
// variables; README.md documents each one.
type Config struct {
	// BaseURL is the public https URL; the Jira app lives under BaseURL/jira and
	// the Confluence app under BaseURL/confluence.
	BaseURL string `env:"KEYLINE_BASE_URL" envDefault:"https://localhost:8080"`
	// Addr is the listen address of the HTTP server.
	Addr string `env:"KEYLINE_ADDR" envDefault:":8080"`
	// MetricsAddr is the listen address of the Prometheus /metrics server;
	// empty disables it. It is a separate address so that metrics stay off
	// the public listener that Atlassian and webhook senders reach.
	MetricsAddr string `env:"KEYLINE_METRICS_ADDR"`
	// DatabaseURL selects the store: empty means an embedded SQLite file under
	// DataDir, postgres:// or postgresql:// means PostgreSQL.
	DatabaseURL string `env:"KEYLINE_DATABASE_URL"`
	// DataDir holds the SQLite file and the generated secret key in embedded mode.
	DataDir string `env:"KEYLINE_DATA_DIR" envDefault:"./data"`
	// InstallKeysURL is where install public keys are fetched from, by kid.
	InstallKeysURL string `env:"KEYLINE_INSTALL_KEYS_URL" envDefault:"https://connect-install-keys.atlassian.com"`
	// AllowedHosts are the product host suffixes accepted at install.
	AllowedHosts []string `env:"KEYLINE_ALLOWED_HOSTS" envDefault:".atlassian.net,.jira.com" envSeparator:","`
	// SecretKey encrypts tenant shared secrets at rest (32 bytes, base64 or hex).
	SecretKey string `env:"KEYLINE_SECRET_KEY,unset"`
	// AppKey is the prefix of the two app keys: <AppKey>.jira and <AppKey>.confluence.
	AppKey string `env:"KEYLINE_APP_KEY" envDefault:"dev.keyline"`
	// FrameAncestors are extra origins allowed to frame Keyline's pages, beside
	// the Atlassian product domains.
	FrameAncestors []string `env:"KEYLINE_FRAME_ANCESTORS" envSeparator:","`
	// LogFormat is "json" (default) or "text".
	LogFormat string `env:"KEYLINE_LOG_FORMAT" envDefault:"json"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"KEYLINE_LOG_LEVEL" envDefault:"info"`
	// ShutdownGrace bounds how long in-flight requests may run after SIGTERM.
	ShutdownGrace time.Duration `env:"KEYLINE_SHUTDOWN_GRACE" envDefault:"15s"`
	// RetentionDays is how long an uninstalled site's data is kept before it may be purged.
	RetentionDays int `env:"KEYLINE_RETENTION_DAYS" envDefault:"30"`
	// IngestSourceRate is how many webhook deliveries a second one source
	// may send to this replica on average, up to IngestSourceBurst at once;
	// past that it gets 429. 0 turns the limit off. The defaults are far
	// above what a busy organisation's webhooks send, so only a runaway
	// sender or a flood meets them.
	IngestSourceRate  float64 `env:"KEYLINE_INGEST_SOURCE_RATE" envDefault:"50"`
	IngestSourceBurst int     `env:"KEYLINE_INGEST_SOURCE_BURST" envDefault:"200"`
	// IngestSiteRate and IngestSiteBurst limit all of one site's sources
	// together, so one site cannot take a replica's whole ingestion
	// capacity (about 1,100–1,300 deliveries/s on 2 cores) from the others.
	IngestSiteRate  float64 `env:"KEYLINE_INGEST_SITE_RATE" envDefault:"200"`
	IngestSiteBurst int     `env:"KEYLINE_INGEST_SITE_BURST" envDefault:"1000"`
	// IssueViewCache is how many rendered issue panels and summaries a
	// replica keeps (each at most 64 KB, typically 10–15 KB); 0 turns the
	// cache off.
	IssueViewCache int `env:"KEYLINE_ISSUE_VIEW_CACHE" envDefault:"1024"`
}

// Load reads the settings from environ (os.Environ() form: "KEY=value") and validates them.
func Load(environ map[string]string) (*Config, error) {
	cfg, err := env.ParseAsWithOptions[Config](env.Options{Environment: environ})
	if err != nil {
		return nil, fmt.Errorf("config: %s", describeParseError(err))
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &cfg, nil
}

// Embedded reports whether Keyline runs on its embedded SQLite database.
func (c *Config) Embedded() bool { return c.DatabaseURL == "" }

// SQLitePath is the database file used in embedded mode.
func (c *Config) SQLitePath() string { return filepath.Join(c.DataDir, "keyline.db") }

// JiraAppKey is the key of the Jira app.
func (c *Config) JiraAppKey() string { return c.AppKey + ".jira" }

// ConfluenceAppKey is the key of the Confluence app.
func (c *Config) ConfluenceAppKey() string { return c.AppKey + ".confluence" }

func (c *Config) validate() error {
	// A set-but-empty variable falls back to envDefault in caarlos0/env, so
	// values are checked here rather than with `notEmpty`.
	c.BaseURL = strings.TrimRight(strings.TrimSpace(c.BaseURL), "/")
	u, err := url.Parse(c.BaseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("KEYLINE_BASE_URL must be an absolute https URL without query or fragment, got %q", c.BaseURL)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("KEYLINE_ADDR must be host:port or :port, got %q", c.Addr)
	}
	c.MetricsAddr = strings.TrimSpace(c.MetricsAddr)
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("KEYLINE_METRICS_ADDR must be empty, host:port or :port, got %q", c.MetricsAddr)
		}
		if c.MetricsAddr == c.Addr {
			return fmt.Errorf("KEYLINE_METRICS_ADDR must differ from KEYLINE_ADDR (%q)", c.Addr)
		}
	}
	if c.DatabaseURL != "" {
		d, err := url.Parse(c.DatabaseURL)
		if err != nil || (d.Scheme != "postgres" && d.Scheme != "postgresql") {
			return errors.New("KEYLINE_DATABASE_URL must be empty (embedded SQLite) or a postgres:// URL")
		}
		if c.SecretKey == "" {
			return errors.New("KEYLINE_SECRET_KEY is required with PostgreSQL (32 bytes, base64 or hex)")
		}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return errors.New("KEYLINE_DATA_DIR must not be empty")
	}
	ku, err := url.Parse(c.InstallKeysURL)
	if err != nil || (ku.Scheme != "https" && ku.Scheme != "http") || ku.Host == "" {
		return fmt.Errorf("KEYLINE_INSTALL_KEYS_URL must be an absolute URL, got %q", c.InstallKeysURL)
	}
	c.InstallKeysURL = strings.TrimRight(c.InstallKeysURL, "/")
	var hosts []string
	for _, h := range c.AllowedHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		if !strings.HasPrefix(h, ".") || strings.ContainsAny(h, "/:@ ") || len(h) < 3 {
			return fmt.Errorf("KEYLINE_ALLOWED_HOSTS entries must be host suffixes starting with a dot, got %q", h)
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		return errors.New("KEYLINE_ALLOWED_HOSTS must name at least one host suffix")
	}
	c.AllowedHosts = hosts
	// App keys are <prefix>.confluence at most; Connect rejects keys over 64 characters.
	if !appKeyPattern(c.AppKey) || len(c.ConfluenceAppKey()) > 64 {
		return fmt.Errorf("KEYLINE_APP_KEY must be 1–53 characters of a-z, 0-9, '.', '-' or '_', got %q", c.AppKey)
	}
	for _, o := range c.FrameAncestors {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		https := strings.HasPrefix(o, "https://") && !strings.ContainsAny(o, " ;,'\"")
		if !https && !loopbackOrigin(o) {
			return fmt.Errorf("KEYLINE_FRAME_ANCESTORS entries must be https origins, or http ones on this machine "+
				"(http://127.0.0.1, http://localhost or http://[::1], each with an optional port), got %q", o)
		}
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		return fmt.Errorf("KEYLINE_LOG_FORMAT must be json or text, got %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("KEYLINE_LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.ShutdownGrace <= 0 || c.ShutdownGrace > 10*time.Minute {
		return fmt.Errorf("KEYLINE_SHUTDOWN_GRACE must be between 0s and 10m, got %s", c.ShutdownGrace)
	}
	if c.IssueViewCache < 0 || c.IssueViewCache > 1_000_000 {
		return fmt.Errorf("KEYLINE_ISSUE_VIEW_CACHE must be between 0 and 1000000, got %d", c.IssueViewCache)
	}
	if c.RetentionDays < 1 {
		return fmt.Errorf("KEYLINE_RETENTION_DAYS must be at least 1, got %d", c.RetentionDays)
	}
	if err := validateRate("KEYLINE_INGEST_SOURCE", c.IngestSourceRate, c.IngestSourceBurst); err != nil {
		return err
	}
	if err := validateRate("KEYLINE_INGEST_SITE", c.IngestSiteRate, c.IngestSiteBurst); err != nil {
		return err
	}
	return nil
}

// maxIngestRate bounds the rate settings: far beyond any replica's
// capacity, so a larger value is a typo (or meant 0, off).
const maxIngestRate = 1_000_000

// validateRate checks one rate limit: <prefix>_RATE deliveries a second
// (0: off) and <prefix>_BURST, which a limit that is on needs at least 1 of.
func validateRate(prefix string, rate float64, burst int) error {
	if !(rate >= 0 && rate <= maxIngestRate) { // also refuses NaN
		return fmt.Errorf("%s_RATE must be deliveries per second between 0 (off) and %d, got %g", prefix, maxIngestRate, rate)
	}
	if rate > 0 && (burst < 1 || burst > maxIngestRate) {
		return fmt.Errorf("%s_BURST must be between 1 and %d, got %d", prefix, maxIngestRate, burst)
	}
	return nil
}

// loopbackOrigin reports whether o is an http origin on this machine:
// http://127.0.0.1, http://localhost or http://[::1], with an optional port
// and nothing else. Plain http may frame Keyline only there (keyline demo's
// page, a local preview): a page served over http from anywhere else could
// be replaced by anyone on the way.
func loopbackOrigin(o string) bool {
	rest, ok := strings.CutPrefix(o, "http://")
	if !ok {
		return false
	}
	host := rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		if !validPort(rest[i+1:]) {
			return false
		}
		host = rest[:i]
	}
	switch strings.ToLower(host) {
	case "127.0.0.1", "localhost", "[::1]":
		return true
	}
	return false
}

// validPort reports whether p is a TCP port number, 1 to 65535, in digits.
func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 65535
}

// describeParseError names the environment variable behind a parse failure;
// the library reports Go field names, which mean nothing to an operator.
func describeParseError(err error) string {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err.Error()
	}
	t := reflect.TypeFor[Config]()
	var parts []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
				name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
				parts = append(parts, fmt.Sprintf("%s: %v", name, pe.Err))
				continue
			}
		}
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}

func appKeyPattern(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}
