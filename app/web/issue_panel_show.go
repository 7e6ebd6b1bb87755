package web

import (
	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/templates"
)

// showIssuePanel renders the DevOps panel of one issue (jiraIssueContents).
func (s *Server) showIssuePanel(c echo.Context) error {
	return s.serveIssueView(c, issuePage{name: "panel", title: "DevOps", askAdmin: true, component: templates.IssuePanel})
}
