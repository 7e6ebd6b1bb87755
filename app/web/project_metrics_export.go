package web

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// exportProjectMetrics gives one table of a project's release report as
// JSON, or as CSV with format=csv (context token).
func (s *Server) exportProjectMetrics(c echo.Context) error {
	key, err := s.requireProjectBrowser(c)
	if err != nil {
		return err
	}
	name := c.Param("table")
	format := c.QueryParam("format")
	if format != "" && format != "csv" && format != "json" {
		return badRequest("format must be csv or json")
	}
	if !slices.Contains(releaseTables, name) {
		return notFound("no such table; tables are " + strings.Join(releaseTables, ", "))
	}
	p, err := parseReleaseParams(c.QueryParams(), s.deps.Now())
	if err != nil {
		return err
	}
	p.filter.Projects = []string{key}
	if name == "changes" {
		p.filter.Slowest = maxExportedChanges
	}
	if name != "deployments" {
		// The other tables list no deployment: the report counts them
		// instead of reading each in full.
		p.filter.Latest = maxTimelineDots
	}
	r, err := s.releaseReport(c, p)
	if err != nil {
		return err
	}
	t, _ := reportTable(r, name)
	if format != "csv" {
		return c.JSON(http.StatusOK, map[string]any{"projectKey": key, "table": name, "rows": t.objects()})
	}
	return writeCSV(c, fmt.Sprintf("keyline-%s-%s-%s-%s.csv", key, name, p.from, p.to), t)
}

// maxExportedChanges is how many of the slowest changes the changes table
// exports.
const maxExportedChanges = 100

// writeCSV answers with t as a CSV attachment named filename.
func writeCSV(c echo.Context, filename string, t table) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", filename))
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	if err := w.WriteAll(t.records()); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}
