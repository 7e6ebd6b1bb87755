package web

import (
	"net/http"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/templates"
)

// render writes a templ component. It renders into a buffer first so a
// template error still becomes a clean 500 rather than half a page.
func (s *Server) render(c echo.Context, status int, comp templ.Component) error {
	buf := templ.GetBuffer()
	defer templ.ReleaseBuffer(buf)
	if err := comp.Render(c.Request().Context(), buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

func (s *Server) page(a app, title string) templates.Page {
	return templates.Page{Title: title, StaticPrefix: a.basePath + "/static", AssetVersion: s.deps.Version}
}

// notFound answers 404 with a reason; inside an iframe the error page shows it.
func notFound(msg string) error { return echo.NewHTTPError(http.StatusNotFound, msg) }

func badRequest(msg string) error { return echo.NewHTTPError(http.StatusBadRequest, msg) }
