package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/templates"
)

// showIssueSummary renders the compact right-column panel (webPanels).
func (s *Server) showIssueSummary(c echo.Context) error {
	v, err := s.issueView(c, "DevOps summary", false)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.IssueSummary(v))
}
