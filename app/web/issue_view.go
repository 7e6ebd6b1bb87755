package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/labstack/echo/v4"

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

// issueView loads what the panel and the summary show for the issue named in
// the query, always within the verified tenant. askAdmin says whether an
// empty result should ask Jira if the viewer administers the site, so the
// empty state can show how to connect a source.
func (s *Server) issueView(c echo.Context, title string, askAdmin bool) (templates.IssuePanelView, error) {
	key := c.QueryParam("issueKey")
	if !devops.ValidIssueKey(key) {
		return templates.IssuePanelView{}, badRequest("issueKey is missing or is not a Jira issue key")
	}
	id := identity(c)
	t := id.Tenant
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
	v.Development = developmentView(dev, s.deps.Now())
	if askAdmin && v.Development.Empty() {
		// Only the empty state differs for admins, so Jira is asked only
		// then (its answer is cached for a minute). If Jira cannot answer,
		// the viewer sees what everyone else sees.
		admin, err := s.deps.Jira.IsAdmin(ctx, t, id.AccountID)
		if err != nil {
			s.log.Warn("jira: admin check for the empty panel failed", slog.Int64("tenant_id", t.ID), slog.String("error", err.Error()))
		}
		v.ViewerIsAdmin = admin && err == nil
	}
	return v, nil
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Host
}
