// Package web is Keyline's HTTP delivery layer: routes, middleware and one thin
// handler per action. Echo types stay inside this package so that moving to
// echo v5 (v4 support ends 2026-12-31) touches nothing else.
package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/release"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
	"github.com/keyline/keyline/descriptor"
)

// Store is what the handlers need from persistence; *store.Store implements it.
type Store interface {
	Ping(ctx context.Context) error
	UpsertTenant(ctx context.Context, in tenant.Install) (*tenant.Tenant, error)
	MarkUninstalled(ctx context.Context, appKey, clientKey string, at time.Time) (bool, error)
	SetEnabled(ctx context.Context, t *tenant.Tenant, enabled bool) error
	TenantsOnHost(ctx context.Context, t *tenant.Tenant, productType string) ([]tenant.Tenant, error)
	ApplyJiraIssueEvent(ctx context.Context, t *tenant.Tenant, ev store.JiraIssueEvent) error
	JiraIssueByKey(ctx context.Context, t *tenant.Tenant, key string) (*store.JiraIssue, error)
	CountJiraIssues(ctx context.Context, t *tenant.Tenant, projectKey string) (int, error)
	CountIssueLinks(ctx context.Context, t *tenant.Tenant, issueKey string) (map[string]int, error)
	IssueDevelopment(ctx context.Context, t *tenant.Tenant, issueKey string, lim store.DevelopmentLimits) (*store.Development, error)
	IssueReadiness(ctx context.Context, t *tenant.Tenant, keys []string, scope store.DeploymentScope) ([]store.IssueReadiness, error)
	RecentDeployments(ctx context.Context, t *tenant.Tenant, f store.DeploymentFilter) ([]store.RecentDeployment, error)
	CreateSource(ctx context.Context, t *tenant.Tenant, kind, name string) (*store.Source, string, string, error)
	ListSources(ctx context.Context, t *tenant.Tenant) ([]store.Source, error)
	SourceByID(ctx context.Context, t *tenant.Tenant, id string) (*store.Source, error)
	SetEnvironmentRules(ctx context.Context, t *tenant.Tenant, id string, rules []byte) error
	RotateSourceSecret(ctx context.Context, t *tenant.Tenant, id string, overlap time.Duration) (string, error)
	SetSourceSecret(ctx context.Context, t *tenant.Tenant, id, secret string, overlap time.Duration) error
	SourceWithSecrets(ctx context.Context, t *tenant.Tenant, id string) (*store.Source, error)
	DeleteSource(ctx context.Context, t *tenant.Tenant, id string) error
	ListDeliveries(ctx context.Context, t *tenant.Tenant, sourceID string, limit int) ([]store.Delivery, error)
	RecordDelivery(ctx context.Context, t *tenant.Tenant, sourceID string, d store.Delivery) error
	// release.Store: what the release metrics read.
	release.Store
	ShippedIssues(ctx context.Context, t *tenant.Tenant, sc store.ReleaseScope, limit int) ([]store.ShippedIssue, bool, error)
	IssuesShipped(ctx context.Context, t *tenant.Tenant, keys []string, types []devops.EnvironmentType) ([]store.ShippedIssue, error)
	DeploymentsNumbered(ctx context.Context, t *tenant.Tenant, environment, service string, seq int64) ([]store.ReleaseDeployment, error)
	// DataVersion says whether what is shown for an issue may have changed
	// since an earlier call; see IssueViewCache.
	DataVersion(tenantID int64, issueKey string) (store.DataVersion, bool)
}

// JiraAPI answers questions only the tenant's Jira can: who may see what,
// and which issues a fix version holds.
// *jira.Client implements it.
type JiraAPI interface {
	IsAdmin(ctx context.Context, t *tenant.Tenant, accountID string) (bool, error)
	CanBrowseIssue(ctx context.Context, t *tenant.Tenant, accountID string, issueID int64) (bool, error)
	CanBrowseProjects(ctx context.Context, t *tenant.Tenant, accountID string, projectKeys []string) (map[string]bool, error)
	IssueKey(ctx context.Context, t *tenant.Tenant, issueID int64) (string, error)
	IssuesInFixVersion(ctx context.Context, t *tenant.Tenant, projects []string, version string, limit int) ([]string, bool, error)
}

// TenantCache is the verified-request tenant cache; lifecycle handlers
// invalidate it so a reinstall's new secret takes effect at once.
type TenantCache interface {
	connect.TenantLookup
	Invalidate(appKey, clientKey string)
}

// Deps are the server's collaborators, built once in main.
type Deps struct {
	Logger      *slog.Logger
	Store       Store
	Tenants     TenantCache
	Verifier    *connect.Verifier
	Installs    *connect.InstallVerifier
	Descriptors *descriptor.Renderer
	Jira        JiraAPI
	// Receiver verifies, parses and stores webhook deliveries.
	Receiver *ingest.Receiver
	// IssueViews caches rendered issue panels; nil caches nothing.
	IssueViews *IssueViewCache
	// Observer, when set, receives request, auth-failure and delivery
	// metrics (see observe_middleware.go).
	Observer Observer
	// BaseURL is Keyline's public base URL without a trailing slash.
	BaseURL      string
	AppKeyPrefix string
	// AllowedHosts are the product host suffixes (".atlassian.net"); pages may be
	// framed by https://*<suffix>.
	AllowedHosts   []string
	FrameAncestors []string
	RetentionDays  int
	Version        string
	Now            func() time.Time
}

// app is one of the two Connect apps served by this binary.
type app struct {
	product  descriptor.Product
	key      string
	baseURL  string
	basePath string
}

func (a app) connectApp() connect.App {
	return connect.App{Key: a.key, BaseURL: a.baseURL, BasePath: a.basePath}
}

// HandlerTimeout bounds the work done for one request: its context is
// cancelled after it, which stops its database queries and its calls to
// Jira (each retried on 429 and 503, so otherwise unbounded in sum). It is
// below the public server's WriteTimeout (30 s, cmd/keyline), so the work
// stops before the connection its answer would go to is cut, and far above
// the slowest answer measured (a year's site-wide release report, 1.4 s).
const HandlerTimeout = 25 * time.Second

// Server holds the routes and their dependencies.
type Server struct {
	deps       Deps
	log        *slog.Logger
	handler    http.Handler
	echo       *echo.Echo
	jira       app
	confluence app
	csp        string
}

// New builds the server and registers every route.
func New(deps Deps) (*Server, error) {
	if deps.Logger == nil || deps.Store == nil || deps.Tenants == nil || deps.Verifier == nil ||
		deps.Installs == nil || deps.Descriptors == nil || deps.Jira == nil || deps.Receiver == nil {
		return nil, fmt.Errorf("web: missing dependency")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{deps: deps, log: deps.Logger}
	mk := func(p descriptor.Product) app {
		return app{
			product:  p,
			key:      deps.AppKeyPrefix + "." + string(p),
			baseURL:  deps.BaseURL + p.BasePath(),
			basePath: p.BasePath(),
		}
	}
	s.jira, s.confluence = mk(descriptor.Jira), mk(descriptor.Confluence)
	s.csp = contentSecurityPolicy(deps.AllowedHosts, deps.FrameAncestors)
	s.echo = s.routes()
	s.handler = withDeadline(s.echo, HandlerTimeout)
	return s, nil
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// contentSecurityPolicy allows framing only by the Atlassian products (and any
// configured extra origin) and scripts only from Keyline and Atlassian's CDN.
func contentSecurityPolicy(hostSuffixes, extra []string) string {
	ancestors := []string{}
	for _, h := range hostSuffixes {
		ancestors = append(ancestors, "https://*"+h)
	}
	for _, o := range extra {
		if o = strings.TrimSpace(o); o != "" {
			ancestors = append(ancestors, o)
		}
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self' https://connect-cdn.atl-paas.net",
		"style-src 'self'",
		"img-src 'self' data: https:",
		"connect-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors " + strings.Join(ancestors, " "),
	}, "; ")
}
