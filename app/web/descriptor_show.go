package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/descriptor"
)

// showDescriptor serves an app descriptor. It is public by design: Atlassian
// fetches it before any trust exists.
func (s *Server) showDescriptor(a app) echo.HandlerFunc {
	return func(c echo.Context) error {
		b, err := s.deps.Descriptors.Render(a.product, descriptor.Params{BaseURL: s.deps.BaseURL, KeyPrefix: s.deps.AppKeyPrefix})
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-cache")
		return c.JSONBlob(http.StatusOK, b)
	}
}
