package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/templates"
)

// showIssuePanel renders the DevOps panel of one issue (jiraIssueContents).
func (s *Server) showIssuePanel(c echo.Context) error {
	v, err := s.issueView(c, "DevOps", true)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.IssuePanel(v))
}
