// Package preview plays Jira and Confluence for Keyline on a developer's
// machine. Its host page frames Keyline's issue panel, issue summary, project
// page, Confluence macro and both configure pages the way the products do:
// each iframe URL is the module URL from Keyline's own descriptor with the
// context variables filled in, the standard iframe parameters appended and a
// fresh, short-lived JWT whose qsh matches that URL. It also answers the few
// Jira REST calls Keyline makes back to "its" site, and serves a stand-in for
// Atlassian's all.js (see AllJS) that reports AP calls to the host page.
//
// The browser tests and `keyline demo` both use it. It signs tokens for the
// tenants it is given, so it refuses tenants whose site is not on a loopback
// address: it can mint tokens for a throwaway demo site, never for a real one.
package preview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
	"github.com/keyline/keyline/descriptor"
)

// DefaultTokenLifetime is how long the product tokens the host signs stay
// valid: Jira's own 180 seconds (spec §4.2). Reloading the host page signs
// new ones.
const DefaultTokenLifetime = 3 * time.Minute

// Account ids of the two people the host page can act as. They look like
// Atlassian account ids; only the fake Jira of this package knows them.
const (
	AdminAccountID  = "712020:0a1b2c3d-preview-admin-000000000001"
	ViewerAccountID = "712020:0a1b2c3d-preview-viewer-00000000002"
)

// Issue is a Jira issue the host page offers in its picker.
type Issue struct {
	Key     string
	ID      string // Jira's numeric id, as Jira puts it in {issue.id}
	Summary string
}

// Project is a Jira project of the demo site.
type Project struct {
	Key  string
	ID   string
	Name string
}

// IssueStore is what the host reads from Keyline's store: what Jira's
// webhooks told Keyline about an issue. *store.Store implements it.
type IssueStore interface {
	JiraIssueByKey(ctx context.Context, t *tenant.Tenant, key string) (*store.JiraIssue, error)
}

// Options configure a Host.
type Options struct {
	// KeylineURL is the origin at which the browser reaches Keyline, e.g.
	// "http://127.0.0.1:8080". Empty means the host page's own origin, for a
	// server that serves both (keyline demo).
	KeylineURL string
	// AppKeyPrefix is Keyline's KEYLINE_APP_KEY; the apps are
	// <prefix>.jira and <prefix>.confluence.
	AppKeyPrefix string
	// Jira and Confluence are the installed demo tenants, with their shared
	// secrets. Their base URLs must be on a loopback address (this host).
	Jira, Confluence *tenant.Tenant
	// Store answers what Keyline knows of the selected issue.
	Store IssueStore
	// Issues are offered in the host page's picker; the first is shown when
	// the page names none.
	Issues []Issue
	// Projects are the site's Jira projects; the macro shows all of them.
	Projects []Project
	// TokenLifetime of the product tokens; zero means DefaultTokenLifetime.
	TokenLifetime time.Duration
	// Now is the clock of the tokens; nil means time.Now.
	Now func() time.Time
	// Logger receives errors; tokens and secrets are never logged. Nil discards.
	Logger *slog.Logger
}

// Host is the preview's http.Handler. It is safe for concurrent use.
type Host struct {
	opts    Options
	keyline *url.URL // nil: same origin as the host page
	apps    map[descriptor.Product]appInfo
	frames  []frameSpec
	mux     *http.ServeMux
	log     *slog.Logger

	mu     sync.Mutex
	issues map[string]Issue // by id: the fake Jira's issue directory
}

// appInfo is one of Keyline's two Connect apps as the host sees it.
type appInfo struct {
	key      string
	basePath string // "/jira", "/confluence"
	tenant   *tenant.Tenant
	cp       string // the product's context path: "" for Jira, "/wiki" for Confluence
}

// maxIssues bounds the fake Jira's issue directory; it grows only with
// issues the store confirmed exist.
const maxIssues = 10_000

// New checks o and builds the host, reading the module URLs from Keyline's
// descriptors.
func New(o Options) (*Host, error) {
	if o.Jira == nil || o.Confluence == nil {
		return nil, errors.New("preview: the Jira and the Confluence tenant are required")
	}
	if o.Store == nil {
		return nil, errors.New("preview: a store is required")
	}
	if o.AppKeyPrefix == "" {
		return nil, errors.New("preview: the app key prefix is required")
	}
	for _, t := range []*tenant.Tenant{o.Jira, o.Confluence} {
		if len(t.SharedSecret) == 0 {
			return nil, fmt.Errorf("preview: tenant %d has no shared secret", t.ID)
		}
		if err := requireLoopback(t.BaseURL); err != nil {
			return nil, fmt.Errorf("preview: tenant %d: %w", t.ID, err)
		}
	}
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = DefaultTokenLifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Host{opts: o, log: o.Logger, issues: map[string]Issue{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if o.KeylineURL != "" {
		u, err := url.Parse(o.KeylineURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("preview: Keyline URL must be an http(s) origin, got %q", o.KeylineURL)
		}
		h.keyline = &url.URL{Scheme: u.Scheme, Host: u.Host}
	}
	h.apps = map[descriptor.Product]appInfo{
		descriptor.Jira:       {key: o.AppKeyPrefix + ".jira", basePath: descriptor.Jira.BasePath(), tenant: o.Jira, cp: ""},
		descriptor.Confluence: {key: o.AppKeyPrefix + ".confluence", basePath: descriptor.Confluence.BasePath(), tenant: o.Confluence, cp: "/wiki"},
	}
	frames, err := loadFrames(o.AppKeyPrefix)
	if err != nil {
		return nil, err
	}
	h.frames = frames
	for _, is := range o.Issues {
		h.issues[is.ID] = is
	}
	h.mux = http.NewServeMux()
	h.Register(h.mux)
	return h, nil
}

// requireLoopback accepts only base URLs on this machine: the host signs
// product tokens for the tenant, which must never be a real site.
func requireLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("base URL %q is not a URL", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("base URL %q is not on a loopback address; the preview only plays demo sites", raw)
}

// ServeHTTP serves the host page, its assets, the AP stub and the fake Jira.
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Register adds the host's routes to mux, so one server can serve the
// preview beside Keyline (whose routes it does not overlap): the host page
// at exactly "/", its files under /preview/, the fake product REST API under
// /rest/ and the product links Keyline's pages point at (/browse/,
// /plugins/servlet/ac/).
func (h *Host) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", h.showHostPage)
	mux.HandleFunc("GET /preview/all.js", serveAsset("application/javascript; charset=utf-8", apStub))
	mux.HandleFunc("GET /preview/host.js", serveAsset("application/javascript; charset=utf-8", hostJS))
	mux.HandleFunc("GET /preview/host.css", serveAsset("text/css; charset=utf-8", hostCSS))
	mux.HandleFunc("GET /preview/token", h.issueContextToken)
	mux.HandleFunc("POST /rest/api/3/permissions/check", h.checkPermissions)
	mux.HandleFunc("GET /rest/api/3/issue/{id}", h.getIssue)
	mux.HandleFunc("GET /rest/api/3/project/{key}", h.getProject)
	mux.HandleFunc("GET /browse/{key}", h.browseIssue)
	mux.HandleFunc("GET /plugins/servlet/ac/{app}/{module}", h.openModule)
}

// AllJS returns the stand-in for Atlassian's all.js. The browser tests
// answer requests for templates.AllJSURL with it.
func AllJS() []byte { return append([]byte(nil), apStub...) }

func serveAsset(contentType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write(body)
	}
}

// rememberIssue adds an issue the store confirmed to the fake Jira's directory.
func (h *Host) rememberIssue(is Issue) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.issues[is.ID]; !ok && len(h.issues) >= maxIssues {
		return
	}
	h.issues[is.ID] = is
}

func (h *Host) issueByID(id string) (Issue, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	is, ok := h.issues[id]
	return is, ok
}
