package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/store"
)

// listReleaseNotes is the release notes API of a project (context token):
// the project's issues first shipped to production in a date range, as
// JSON, or as CSV with format=csv.
func (s *Server) listReleaseNotes(c echo.Context) error {
	key, err := s.requireProjectBrowser(c)
	if err != nil {
		return err
	}
	format := c.QueryParam("format")
	if format != "" && format != "csv" && format != "json" {
		return badRequest("format must be csv or json")
	}
	p, err := parseReleaseParams(c.QueryParams(), s.deps.Now())
	if err != nil {
		return err
	}
	f := p.filter
	issues, more, err := s.deps.Store.ShippedIssues(c.Request().Context(), identity(c).Tenant, store.ReleaseScope{
		Types: f.Types, Projects: []string{key}, Service: f.Service, Environment: f.Environment,
		From: f.Window.From, To: f.Window.To,
	}, store.MaxShippedIssues)
	if err != nil {
		return fmt.Errorf("release notes of %s: %w", key, err)
	}
	t := shippedTable(issues)
	if format == "csv" {
		return writeCSV(c, fmt.Sprintf("keyline-%s-release-notes-%s-%s.csv", key, p.from, p.to), t)
	}
	return c.JSON(http.StatusOK, map[string]any{"projectKey": key, "from": p.from, "to": p.to,
		"timeZone": p.timeZone, "issues": t.objects(), "more": more})
}
