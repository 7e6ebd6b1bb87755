package web

import (
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/release"
)

// releaseReport builds the release report of p for the verified tenant.
func (s *Server) releaseReport(c echo.Context, p releaseParams) (*release.Report, error) {
	r, err := release.Build(c.Request().Context(), s.deps.Store, identity(c).Tenant, p.filter)
	if err != nil {
		return nil, fmt.Errorf("release metrics: %w", err)
	}
	return r, nil
}
