package web

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/static"
)

// maxBody bounds every request body; lifecycle and webhook handlers read less.
const maxBody = "1M"

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	if s.deps.Observer != nil {
		e.Use(observeRequests(s.deps.Observer))
	}
	e.Use(
		middleware.RequestIDWithConfig(middleware.RequestIDConfig{TargetHeader: echo.HeaderXRequestID}),
		s.logRequests(),
		s.recoverPanics(),
		middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
			Limit: maxBody,
			// Deliveries have their own, larger limit, answered by the receiver.
			Skipper: func(c echo.Context) bool { return strings.HasPrefix(c.Path(), "/ingest/") },
		}),
		s.securityHeaders,
	)

	e.GET("/", s.showHome)
	e.GET("/healthz", s.showHealth)
	e.GET("/readyz", s.showReadiness)
	assets := s.staticHandler()
	e.GET("/static/*", assets)
	e.POST("/ingest/:token", s.receiveDelivery)
	e.POST("/ingest/:token/:entity", s.receiveDelivery)

	for _, a := range []app{s.jira, s.confluence} {
		g := e.Group(a.basePath)
		g.GET("/atlassian-connect.json", s.showDescriptor(a))
		g.GET("/static/*", assets)
		g.POST("/installed", s.installApp(a))
		g.POST("/uninstalled", s.uninstallApp(a))
		g.POST("/enabled", s.enableApp(a, true), s.requireToken(a, connect.QSHComputed))
		g.POST("/disabled", s.enableApp(a, false), s.requireToken(a, connect.QSHComputed))
		g.GET("/configure", s.showConfigure(a), s.framed, s.requireToken(a, connect.QSHComputed))
	}

	j := e.Group(s.jira.basePath)
	page := []echo.MiddlewareFunc{s.framed, s.requireToken(s.jira, connect.QSHComputed)}
	j.GET("/panel", s.showIssuePanel, page...)
	j.GET("/summary", s.showIssueSummary, page...)
	j.GET("/project", s.showProjectPage, page...)
	hook := s.requireToken(s.jira, connect.QSHComputed)
	j.POST("/webhooks/issue-created", s.receiveIssueEvent("jira:issue_created"), hook)
	j.POST("/webhooks/issue-updated", s.receiveIssueEvent("jira:issue_updated"), hook)
	j.POST("/webhooks/issue-deleted", s.receiveIssueEvent("jira:issue_deleted"), hook)
	j.GET("/api/issues/:issueKey/links", s.listIssueLinks, s.requireToken(s.jira, connect.QSHContext))
	j.GET("/api/projects/:projectKey/metrics", s.showProjectMetrics, s.requireToken(s.jira, connect.QSHContext))
	j.GET("/api/projects/:projectKey/metrics/:table", s.exportProjectMetrics, s.requireToken(s.jira, connect.QSHContext))
	j.GET("/api/projects/:projectKey/release-notes", s.listReleaseNotes, s.requireToken(s.jira, connect.QSHContext))
	admin := []echo.MiddlewareFunc{s.requireToken(s.jira, connect.QSHContext), s.requireAdmin}
	j.GET("/api/sources", s.listSources, admin...)
	j.POST("/api/sources", s.createSource, admin...)
	j.POST("/api/sources/:sourceID/rotate", s.rotateSource, admin...)
	j.PUT("/api/sources/:sourceID/secret", s.updateSourceSecret, admin...)
	j.PUT("/api/sources/:sourceID/environment-rules", s.updateSourceRules, admin...)
	j.DELETE("/api/sources/:sourceID", s.deleteSource, admin...)
	j.GET("/api/sources/:sourceID/deliveries", s.listDeliveries, admin...)
	j.POST("/api/sources/:sourceID/test", s.sendTestDelivery, admin...)

	c := e.Group(s.confluence.basePath)
	c.GET("/macro", s.showMacro, s.framed, s.requireToken(s.confluence, connect.QSHComputed))
	c.GET("/macro-static", s.showMacroStatic, s.requireToken(s.confluence, connect.QSHComputed))
	return e
}

// staticHandler serves the embedded assets; URLs carry ?v=<version>, so they
// may be cached for long.
func (s *Server) staticHandler() echo.HandlerFunc {
	sub, _ := fs.Sub(static.FS, ".")
	files := http.FileServer(http.FS(sub))
	return func(c echo.Context) error {
		name := c.Param("*")
		if name == "" || name[len(name)-1] == '/' {
			return echo.NewHTTPError(http.StatusNotFound, "not found")
		}
		if _, err := fs.Stat(sub, name); err != nil {
			return echo.NewHTTPError(http.StatusNotFound, "not found")
		}
		c.Response().Header().Set("Cache-Control", "public, max-age=86400")
		r := c.Request().Clone(c.Request().Context())
		r.URL.Path = "/" + name
		files.ServeHTTP(c.Response(), r)
		return nil
	}
}
