package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// showHome tells an operator where the two descriptors are.
func (s *Server) showHome(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{
		"name":    "Keyline",
		"version": s.deps.Version,
		"descriptors": map[string]string{
			"jira":       s.jira.baseURL + "/atlassian-connect.json",
			"confluence": s.confluence.baseURL + "/atlassian-connect.json",
		},
	})
}
