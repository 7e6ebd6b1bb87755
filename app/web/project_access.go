package web

import (
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/devops"
)

// requireProjectBrowser checks the project key of the path and that the
// verified user may browse that project. A context token proves the site
// and the user, not the project, so Jira is asked (answers are cached
// briefly).
func (s *Server) requireProjectBrowser(c echo.Context) (string, error) {
	key := c.Param("projectKey")
	if !devops.ValidProjectKey(key) {
		return "", badRequest("not a Jira project key")
	}
	id := identity(c)
	if id.AccountID == "" {
		return "", echo.NewHTTPError(http.StatusForbidden, "sign in to Jira to see release metrics")
	}
	may, err := s.deps.Jira.CanBrowseProjects(c.Request().Context(), id.Tenant, id.AccountID, []string{key})
	if err != nil {
		s.log.Warn("jira: project permission check failed", slog.Int64("tenant_id", id.Tenant.ID), slog.String("error", err.Error()))
		return "", echo.NewHTTPError(http.StatusBadGateway, "Jira could not be asked for your permissions; try again")
	}
	if !may[key] {
		return "", echo.NewHTTPError(http.StatusForbidden, "you may not browse this project")
	}
	return key, nil
}
