package web

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/templates"
)

// linkKinds orders and labels the entity kinds shown for an issue.
var linkKinds = []struct{ kind, one, many string }{
	{store.EntityBranch, "branch", "branches"},
	{store.EntityCommit, "commit", "commits"},
	{store.EntityPullRequest, "pull request", "pull requests"},
	{store.EntityBuild, "build", "builds"},
	{store.EntityDeployment, "deployment", "deployments"},
	{store.EntityIncident, "incident", "incidents"},
}

// issueView loads what the panel and the summary show for the issue named in
// the query, always within the verified tenant.
func (s *Server) issueView(c echo.Context, title string) (templates.IssuePanelView, error) {
	key := c.QueryParam("issueKey")
	if !devops.ValidIssueKey(key) {
		return templates.IssuePanelView{}, badRequest("issueKey is missing or is not a Jira issue key")
	}
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
	counts, err := s.deps.Store.CountIssueLinks(ctx, t, key)
	if err != nil {
		return v, fmt.Errorf("count links of %s: %w", key, err)
	}
	for _, k := range linkKinds {
		n := counts[k.kind]
		label := k.many
		if n == 1 {
			label = k.one
		}
		v.Links = append(v.Links, templates.LinkCount{Kind: k.kind, Label: label, Count: n})
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
