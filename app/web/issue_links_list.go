package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/devops"
)

// listIssueLinks is the JSON API behind the panel's follow-up loads; it takes
// only context tokens from AP.context.getToken().
func (s *Server) listIssueLinks(c echo.Context) error {
	key := c.Param("issueKey")
	if !devops.ValidIssueKey(key) {
		return badRequest("not a Jira issue key")
	}
	counts, err := s.deps.Store.CountIssueLinks(c.Request().Context(), identity(c).Tenant, key)
	if err != nil {
		return fmt.Errorf("count links of %s: %w", key, err)
	}
	out := map[string]int{}
	for _, k := range linkKinds {
		out[k.kind] = counts[k.kind]
	}
	return c.JSON(http.StatusOK, map[string]any{"issueKey": key, "links": out})
}
