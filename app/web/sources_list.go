package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// listSources lists the site's webhook sources.
func (s *Server) listSources(c echo.Context) error {
	srcs, err := s.deps.Store.ListSources(c.Request().Context(), identity(c).Tenant)
	if err != nil {
		return fmt.Errorf("list sources: %w", err)
	}
	out := make([]sourceJSON, 0, len(srcs))
	for _, src := range srcs {
		out = append(out, toSourceJSON(src))
	}
	return c.JSON(http.StatusOK, map[string]any{"sources": out})
}
