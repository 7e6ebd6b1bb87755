package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load(map[string]string{})
	if err != nil {
		t.Fatalf("Load(empty): %v", err)
	}
	if cfg.Addr != ":8080" || cfg.DataDir != "./data" || !cfg.Embedded() {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
	if cfg.InstallKeysURL != DefaultInstallKeysURL {
		t.Errorf("InstallKeysURL = %q, want %q", cfg.InstallKeysURL, DefaultInstallKeysURL)
	}
	if got := strings.Join(cfg.AllowedHosts, ","); got != ".atlassian.net,.jira.com" {
		t.Errorf("AllowedHosts = %q", got)
	}
	if cfg.JiraAppKey() != "dev.keyline.jira" || cfg.ConfluenceAppKey() != "dev.keyline.confluence" {
		t.Errorf("app keys = %q, %q", cfg.JiraAppKey(), cfg.ConfluenceAppKey())
	}
	if cfg.ShutdownGrace != 15*time.Second {
		t.Errorf("ShutdownGrace = %s", cfg.ShutdownGrace)
	}
	if cfg.MetricsAddr != "" {
		t.Errorf("MetricsAddr = %q, want metrics off by default", cfg.MetricsAddr)
	}
	if cfg.IngestSourceRate != 50 || cfg.IngestSourceBurst != 200 || cfg.IngestSiteRate != 200 || cfg.IngestSiteBurst != 1000 {
		t.Errorf("ingest limits = %g/%d per source, %g/%d per site", cfg.IngestSourceRate, cfg.IngestSourceBurst,
			cfg.IngestSiteRate, cfg.IngestSiteBurst)
	}
}

// A rate of 0 turns its limit off, and then its burst is not checked.
func TestLoadIngestLimitsOff(t *testing.T) {
	cfg, err := Load(map[string]string{"KEYLINE_INGEST_SOURCE_RATE": "0", "KEYLINE_INGEST_SOURCE_BURST": "0",
		"KEYLINE_INGEST_SITE_RATE": "0.5", "KEYLINE_INGEST_SITE_BURST": "1"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.IngestSourceRate != 0 || cfg.IngestSiteRate != 0.5 || cfg.IngestSiteBurst != 1 {
		t.Errorf("ingest limits = %+v", cfg)
	}
}

func TestLoadMetricsAddr(t *testing.T) {
	cfg, err := Load(map[string]string{"KEYLINE_METRICS_ADDR": " 127.0.0.1:9090 "})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.MetricsAddr != "127.0.0.1:9090" {
		t.Errorf("MetricsAddr = %q", cfg.MetricsAddr)
	}
}

// Frame ancestors are https origins, or http ones on this machine only.
func TestLoadFrameAncestors(t *testing.T) {
	want := []string{"https://jira.example.com", "http://127.0.0.1", "http://127.0.0.1:8080", "http://localhost:3000",
		"http://LOCALHOST:1", "http://[::1]", "http://[::1]:65535"}
	cfg, err := Load(map[string]string{"KEYLINE_FRAME_ANCESTORS": " " + strings.Join(want, " , ") + " ,"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var got []string
	for _, o := range cfg.FrameAncestors {
		if o = strings.TrimSpace(o); o != "" {
			got = append(got, o)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("FrameAncestors = %q, want %q", got, want)
	}
}

func TestLoadNormalises(t *testing.T) {
	cfg, err := Load(map[string]string{
		"KEYLINE_BASE_URL":         "https://keyline.example.com/",
		"KEYLINE_ALLOWED_HOSTS":    " .Atlassian.net , .jira-dev.com ",
		"KEYLINE_INSTALL_KEYS_URL": "http://127.0.0.1:9999/",
		"KEYLINE_DATABASE_URL":     "postgres://u@db/keyline",
		"KEYLINE_SECRET_KEY":       "x",
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.BaseURL != "https://keyline.example.com" {
		t.Errorf("BaseURL = %q", cfg.BaseURL)
	}
	if got := strings.Join(cfg.AllowedHosts, ","); got != ".atlassian.net,.jira-dev.com" {
		t.Errorf("AllowedHosts = %q", got)
	}
	if cfg.InstallKeysURL != "http://127.0.0.1:9999" {
		t.Errorf("InstallKeysURL = %q", cfg.InstallKeysURL)
	}
	if cfg.Embedded() {
		t.Error("Embedded() = true with a postgres URL")
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"http base url", map[string]string{"KEYLINE_BASE_URL": "http://keyline.example.com"}, "KEYLINE_BASE_URL"},
		{"base url with query", map[string]string{"KEYLINE_BASE_URL": "https://k.example.com/?a=b"}, "KEYLINE_BASE_URL"},
		{"relative base url", map[string]string{"KEYLINE_BASE_URL": "keyline.example.com"}, "KEYLINE_BASE_URL"},
		{"bad addr", map[string]string{"KEYLINE_ADDR": "8080"}, "KEYLINE_ADDR"},
		{"bad metrics addr", map[string]string{"KEYLINE_METRICS_ADDR": "9090"}, "KEYLINE_METRICS_ADDR"},
		{"metrics on the app's addr", map[string]string{"KEYLINE_ADDR": ":8080", "KEYLINE_METRICS_ADDR": ":8080"}, "KEYLINE_METRICS_ADDR"},
		{"mysql url", map[string]string{"KEYLINE_DATABASE_URL": "mysql://x"}, "KEYLINE_DATABASE_URL"},
		{"postgres without key", map[string]string{"KEYLINE_DATABASE_URL": "postgres://x/y"}, "KEYLINE_SECRET_KEY"},
		{"host without dot", map[string]string{"KEYLINE_ALLOWED_HOSTS": "atlassian.net"}, "KEYLINE_ALLOWED_HOSTS"},
		{"no hosts", map[string]string{"KEYLINE_ALLOWED_HOSTS": " , "}, "KEYLINE_ALLOWED_HOSTS"},
		{"upper-case app key", map[string]string{"KEYLINE_APP_KEY": "Dev.Keyline"}, "KEYLINE_APP_KEY"},
		{"long app key", map[string]string{"KEYLINE_APP_KEY": strings.Repeat("a", 54)}, "KEYLINE_APP_KEY"},
		{"keys url not absolute", map[string]string{"KEYLINE_INSTALL_KEYS_URL": "/keys"}, "KEYLINE_INSTALL_KEYS_URL"},
		{"frame ancestor http", map[string]string{"KEYLINE_FRAME_ANCESTORS": "http://x.example"}, "KEYLINE_FRAME_ANCESTORS"},
		{"frame ancestor injection", map[string]string{"KEYLINE_FRAME_ANCESTORS": "https://x.example; script-src *"}, "KEYLINE_FRAME_ANCESTORS"},
		{"frame ancestor http on another loopback address", map[string]string{"KEYLINE_FRAME_ANCESTORS": "http://127.0.0.2:8080"}, "KEYLINE_FRAME_ANCESTORS"},
		{"frame ancestor http with a path", map[string]string{"KEYLINE_FRAME_ANCESTORS": "http://localhost:8080/"}, "KEYLINE_FRAME_ANCESTORS"},
		{"frame ancestor http with an empty port", map[string]string{"KEYLINE_FRAME_ANCESTORS": "http://localhost:"}, "KEYLINE_FRAME_ANCESTORS"},
		{"frame ancestor http port 0", map[string]string{"KEYLINE_FRAME_ANCESTORS": "http://localhost:0"}, "KEYLINE_FRAME_ANCESTORS"},
		{"frame ancestor http port too high", map[string]string{"KEYLINE_FRAME_ANCESTORS": "http://[::1]:65536"}, "KEYLINE_FRAME_ANCESTORS"},
		{"frame ancestor http with user info", map[string]string{"KEYLINE_FRAME_ANCESTORS": "http://evil.example@localhost"}, "KEYLINE_FRAME_ANCESTORS"},
		{"frame ancestor http host that starts like loopback", map[string]string{"KEYLINE_FRAME_ANCESTORS": "http://127.0.0.1.evil.example"}, "KEYLINE_FRAME_ANCESTORS"},
		{"frame ancestor http localhost subdomain", map[string]string{"KEYLINE_FRAME_ANCESTORS": "http://localhost.evil.example:80"}, "KEYLINE_FRAME_ANCESTORS"},
		{"frame ancestor http loopback injection", map[string]string{"KEYLINE_FRAME_ANCESTORS": "http://localhost:80 'unsafe-inline'"}, "KEYLINE_FRAME_ANCESTORS"},
		{"frame ancestor other scheme", map[string]string{"KEYLINE_FRAME_ANCESTORS": "ws://localhost"}, "KEYLINE_FRAME_ANCESTORS"},
		{"frame ancestor keyword", map[string]string{"KEYLINE_FRAME_ANCESTORS": "'self'"}, "KEYLINE_FRAME_ANCESTORS"},
		{"log format", map[string]string{"KEYLINE_LOG_FORMAT": "xml"}, "KEYLINE_LOG_FORMAT"},
		{"log level", map[string]string{"KEYLINE_LOG_LEVEL": "loud"}, "KEYLINE_LOG_LEVEL"},
		{"grace not a duration", map[string]string{"KEYLINE_SHUTDOWN_GRACE": "soon"}, "KEYLINE_SHUTDOWN_GRACE"},
		{"retention zero", map[string]string{"KEYLINE_RETENTION_DAYS": "0"}, "KEYLINE_RETENTION_DAYS"},
		{"source rate negative", map[string]string{"KEYLINE_INGEST_SOURCE_RATE": "-1"}, "KEYLINE_INGEST_SOURCE_RATE"},
		{"source rate not a number", map[string]string{"KEYLINE_INGEST_SOURCE_RATE": "fast"}, "KEYLINE_INGEST_SOURCE_RATE"},
		{"source rate NaN", map[string]string{"KEYLINE_INGEST_SOURCE_RATE": "NaN"}, "KEYLINE_INGEST_SOURCE_RATE"},
		{"source rate infinite", map[string]string{"KEYLINE_INGEST_SOURCE_RATE": "+Inf"}, "KEYLINE_INGEST_SOURCE_RATE"},
		{"source burst zero", map[string]string{"KEYLINE_INGEST_SOURCE_BURST": "0"}, "KEYLINE_INGEST_SOURCE_BURST"},
		{"site rate too high", map[string]string{"KEYLINE_INGEST_SITE_RATE": "2e6"}, "KEYLINE_INGEST_SITE_RATE"},
		{"site burst negative", map[string]string{"KEYLINE_INGEST_SITE_BURST": "-5"}, "KEYLINE_INGEST_SITE_BURST"},
		{"site burst not a number", map[string]string{"KEYLINE_INGEST_SITE_BURST": "lots"}, "KEYLINE_INGEST_SITE_BURST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.env)
			if err == nil {
				t.Fatalf("Load(%v) succeeded, want an error naming %s", tt.env, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}
