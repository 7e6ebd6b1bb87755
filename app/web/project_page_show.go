package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/templates"
)

// showProjectPage renders the project's "Release metrics" page. Jira signed
// the page's URL for this project, so the viewer may browse it.
func (s *Server) showProjectPage(c echo.Context) error {
	key := c.QueryParam("projectKey")
	if !devops.ValidProjectKey(key) {
		return badRequest("projectKey is missing or is not a Jira project key")
	}
	p, err := parseReleaseParams(c.QueryParams(), s.deps.Now())
	if err != nil {
		return err
	}
	t := identity(c).Tenant
	ctx := c.Request().Context()
	n, err := s.deps.Store.CountJiraIssues(ctx, t, key)
	if err != nil {
		return fmt.Errorf("count issues of %s: %w", key, err)
	}
	v, err := s.projectMetrics(c, key, p)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.ProjectPage(templates.ProjectView{
		Page:        s.page(s.jira, "Release metrics"),
		ProjectKey:  key,
		SiteHost:    hostOf(t.DisplayURL),
		IssuesKnown: n,
		Metrics:     v,
	}))
}

// projectMetrics builds the metrics section of project key for the
// verified tenant, with its filter form and CSV links.
func (s *Server) projectMetrics(c echo.Context, key string, p releaseParams) (templates.MetricsView, error) {
	t := identity(c).Tenant
	p.filter.Projects = []string{key}
	p.filter.Latest = maxTimelineDots
	r, err := s.releaseReport(c, p)
	if err != nil {
		return templates.MetricsView{}, err
	}
	v := metricsView(r, p, key, t.DisplayURL, s.deps.Now())
	api := s.jira.basePath + "/api/projects/" + url.PathEscape(key) + "/metrics"
	f := &templates.MetricsFilterView{APIPath: api, From: p.from, To: p.to, TimeZone: p.timeZone,
		Service: p.filter.Service, Environment: p.filter.Environment, Year: int(p.filter.Benchmark),
		Years: []int{2019, 2021, 2023}}
	seenService, seenEnv := map[string]bool{}, map[string]bool{}
	for _, pl := range r.Places {
		if pl.Service != "" && !seenService[pl.Service] {
			seenService[pl.Service] = true
			f.Services = append(f.Services, pl.Service)
		}
		if !seenEnv[pl.Environment] {
			seenEnv[pl.Environment] = true
			f.Environments = append(f.Environments, pl.Environment)
		}
	}
	slices.Sort(f.Environments) // Places are sorted by service first
	v.Filter = f
	q := p.query()
	q.Set("format", "csv")
	for _, name := range releaseTables {
		v.CSVLinks = append(v.CSVLinks, templates.CSVLink{Label: name, URL: api + "/" + name + "?" + q.Encode()})
	}
	return v, nil
}
