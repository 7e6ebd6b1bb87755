package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/jira"
)

// listIssueLinks is the JSON API behind the panel's follow-up loads; it takes
// only context tokens from AP.context.getToken(). A context token proves the
// site and the user, not that the user may see this issue, so Jira is asked
// (answers are cached briefly) — by issue id, whose key must match the path.
func (s *Server) listIssueLinks(c echo.Context) error {
	key := c.Param("issueKey")
	if !devops.ValidIssueKey(key) {
		return badRequest("not a Jira issue key")
	}
	issueID, err := strconv.ParseInt(c.QueryParam("issueId"), 10, 64)
	if err != nil || issueID <= 0 {
		return badRequest("issueId must be the issue's numeric id")
	}
	id := identity(c)
	ctx := c.Request().Context()
	current, err := s.deps.Jira.IssueKey(ctx, id.Tenant, issueID)
	switch {
	case errors.Is(err, jira.ErrNotFound):
		return notFound("Jira does not know this issue")
	case err != nil:
		s.log.Warn("jira: issue key lookup failed", slog.Int64("tenant_id", id.Tenant.ID), slog.String("error", err.Error()))
		return echo.NewHTTPError(http.StatusBadGateway, "Jira could not be asked about this issue; try again")
	case current != key:
		return notFound("issueId and issue key name different issues")
	}
	ok, err := s.deps.Jira.CanBrowseIssue(ctx, id.Tenant, id.AccountID, issueID)
	if err != nil {
		s.log.Warn("jira: permission check failed", slog.Int64("tenant_id", id.Tenant.ID), slog.String("error", err.Error()))
		return echo.NewHTTPError(http.StatusBadGateway, "Jira could not be asked for your permissions; try again")
	}
	if !ok {
		return echo.NewHTTPError(http.StatusForbidden, "you may not browse this issue")
	}
	counts, err := s.deps.Store.CountIssueLinks(ctx, id.Tenant, key)
	if err != nil {
		return fmt.Errorf("count links of %s: %w", key, err)
	}
	out := map[string]int{}
	for _, k := range linkKinds {
		out[k.kind] = counts[k.kind]
	}
	return c.JSON(http.StatusOK, map[string]any{"issueKey": key, "links": out})
}
