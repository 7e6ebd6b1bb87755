package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/templates"
)

// showProjectPage renders the project's "Release metrics" page.
func (s *Server) showProjectPage(c echo.Context) error {
	key := c.QueryParam("projectKey")
	if !devops.ValidProjectKey(key) {
		return badRequest("projectKey is missing or is not a Jira project key")
	}
	t := identity(c).Tenant
	n, err := s.deps.Store.CountJiraIssues(c.Request().Context(), t, key)
	if err != nil {
		return fmt.Errorf("count issues of %s: %w", key, err)
	}
	return s.render(c, http.StatusOK, templates.ProjectPage(templates.ProjectView{
		Page:        s.page(s.jira, "Release metrics"),
		ProjectKey:  key,
		SiteHost:    hostOf(t.DisplayURL),
		IssuesKnown: n,
	}))
}
