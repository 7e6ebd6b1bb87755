package web

import (
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
)

// deleteSource stops a source: its webhook URL stops answering at once.
func (s *Server) deleteSource(c echo.Context) error {
	t := identity(c).Tenant
	id := c.Param("sourceID")
	if err := s.deps.Store.DeleteSource(c.Request().Context(), t, id); err != nil {
		return sourceError(err)
	}
	s.log.Info("source deleted", slog.Int64("tenant_id", t.ID), slog.String("source_id", id))
	return c.NoContent(http.StatusNoContent)
}
