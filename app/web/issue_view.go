package web

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/a-h/templ"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/templates"
)

// linkKinds orders and labels the entity kinds linked to an issue.
var linkKinds = []struct{ kind, one, many string }{
	{store.EntityBranch, "branch", "branches"},
	{store.EntityCommit, "commit", "commits"},
	{store.EntityPullRequest, "pull request", "pull requests"},
	{store.EntityBuild, "build", "builds"},
	{store.EntityDeployment, "deployment", "deployments"},
	{store.EntityIncident, "incident", "incidents"},
}

// issuePage is one of the pages built from an issue's development.
type issuePage struct {
	name, title string
	// askAdmin says whether an empty result should ask Jira if the viewer
	// administers the site, so the empty state can show how to connect a
	// source.
	askAdmin  bool
	component func(templates.IssuePanelView) templ.Component
}

// serveIssueView answers a page about the issue named in the query, always
// within the verified tenant, from the issue view cache when the issue's data
// has not changed since the page was rendered.
func (s *Server) serveIssueView(c echo.Context, p issuePage) error {
	key := c.QueryParam("issueKey")
	if !devops.ValidIssueKey(key) {
		return badRequest("issueKey is missing or is not a Jira issue key")
	}
	id := identity(c)
	t := id.Tenant
	now := s.deps.Now()
	ck := issueViewKey{tenantID: t.ID, issueKey: key, page: p.name}
	// Taken before the read: a write that ends during the read changes the
	// version, so what the read saw is never cached as newer than it is.
	version, cacheable := s.deps.Store.DataVersion(t.ID, key)
	cacheable = cacheable && s.deps.IssueViews != nil
	if cacheable {
		if e, ok := s.deps.IssueViews.get(ck, version, t.DisplayURL, now); ok {
			s.observeIssueView("hit")
			if e.emptyView != nil && p.askAdmin && s.viewerIsAdmin(c, id) {
				v := *e.emptyView
				v.ViewerIsAdmin = true
				return s.render(c, http.StatusOK, p.component(v))
			}
			return c.HTMLBlob(http.StatusOK, e.html)
		}
	}
	if cacheable {
		s.observeIssueView("miss")
	} else {
		s.observeIssueView("bypass")
	}
	v, err := s.issueView(c, key, p.title, now)
	if err != nil {
		return err
	}
	buf := templ.GetBuffer()
	defer templ.ReleaseBuffer(buf)
	if err := p.component(v).Render(c.Request().Context(), buf); err != nil {
		return err
	}
	empty := v.Development.Empty()
	if cacheable {
		e := &issueViewEntry{version: version, siteURL: t.DisplayURL, renderedAt: now, html: bytes.Clone(buf.Bytes())}
		if empty {
			// A copy: v may be changed below for this viewer, while other
			// requests read the cached one.
			ev := v
			e.emptyView = &ev
		}
		s.deps.IssueViews.put(ck, e)
	}
	if empty && p.askAdmin && s.viewerIsAdmin(c, id) {
		v.ViewerIsAdmin = true
		return s.render(c, http.StatusOK, p.component(v))
	}
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}

func (s *Server) observeIssueView(result string) {
	if s.deps.Observer != nil {
		s.deps.Observer.IssueView(result)
	}
}

// issueView loads what the panel and the summary show for issueKey within
// the verified tenant, as any viewer sees it.
func (s *Server) issueView(c echo.Context, key, title string, now time.Time) (templates.IssuePanelView, error) {
	t := identity(c).Tenant
	ctx := c.Request().Context()
	v := templates.IssuePanelView{
		Page:         s.page(s.jira, title),
		IssueKey:     key,
		SiteURL:      t.DisplayURL,
		SiteHost:     hostOf(t.DisplayURL),
		ConfigureURL: t.DisplayURL + "/plugins/servlet/ac/" + url.PathEscape(s.jira.key) + "/configure",
	}
	is, err := s.deps.Store.JiraIssueByKey(ctx, t, key)
	switch {
	case err == nil:
		v.Issue = &templates.IssueFacts{Summary: is.Summary, StatusName: is.StatusName, StatusCategory: is.StatusCategory, ProjectKey: is.ProjectKey}
	case errors.Is(err, store.ErrNotFound):
	default:
		return v, fmt.Errorf("load issue %s: %w", key, err)
	}
	dev, err := s.deps.Store.IssueDevelopment(ctx, t, key, store.DevelopmentLimits{})
	if err != nil {
		return v, fmt.Errorf("load development of %s: %w", key, err)
	}
	v.Development = developmentView(dev, now)
	return v, nil
}

// viewerIsAdmin asks Jira whether the viewer administers the site; only the
// empty state differs for admins, so it is asked only then (Jira's answer is
// cached for a minute). If Jira cannot answer, the viewer sees what everyone
// else sees.
func (s *Server) viewerIsAdmin(c echo.Context, id *connect.Identity) bool {
	admin, err := s.deps.Jira.IsAdmin(c.Request().Context(), id.Tenant, id.AccountID)
	if err != nil {
		s.log.Warn("jira: admin check for the empty panel failed", slog.Int64("tenant_id", id.Tenant.ID), slog.String("error", err.Error()))
		return false
	}
	return admin
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Host
}
