package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// showHealth is the liveness probe: it checks nothing outside the process, so
// a database outage never gets healthy replicas restarted.
func (s *Server) showHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
