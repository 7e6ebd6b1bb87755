package web

import (
	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/templates"
)

// showIssueSummary renders the compact right-column panel (webPanels).
func (s *Server) showIssueSummary(c echo.Context) error {
	return s.serveIssueView(c, issuePage{name: "summary", title: "DevOps summary", askAdmin: false, component: templates.IssueSummary})
}
