package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/templates"
)

// showProjectMetrics is the release metrics API of a project (context
// token): the whole report as JSON, or, asked for text/html by the page's
// filter script, the re-rendered metrics section.
func (s *Server) showProjectMetrics(c echo.Context) error {
	key, err := s.requireProjectBrowser(c)
	if err != nil {
		return err
	}
	p, err := parseReleaseParams(c.QueryParams(), s.deps.Now())
	if err != nil {
		return err
	}
	if strings.Contains(c.Request().Header.Get(echo.HeaderAccept), echo.MIMETextHTML) {
		v, err := s.projectMetrics(c, key, p)
		if err != nil {
			return err
		}
		return s.render(c, http.StatusOK, templates.MetricsSection(v))
	}
	p.filter.Projects = []string{key}
	// The deployments table lists the latest, as the page does; a year of
	// a busy project is tens of thousands, which /metrics/deployments
	// lists.
	p.filter.Latest = maxTimelineDots
	r, err := s.releaseReport(c, p)
	if err != nil {
		return err
	}
	out := map[string]any{
		"projectKey":      key,
		"deploymentCount": r.DeploymentCount,
		"from":            p.from, "to": p.to, "timeZone": p.timeZone,
		"service": p.filter.Service, "environment": p.filter.Environment,
		"benchmarkYear": int(p.filter.Benchmark),
		"granularity":   r.Granularity,
	}
	for _, name := range releaseTables {
		t, _ := reportTable(r, name)
		out[name] = t.objects()
	}
	return c.JSON(http.StatusOK, out)
}
