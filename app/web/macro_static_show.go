package web

import (
	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/templates"
)

// showMacroStatic renders the macro for Confluence's exports (PDF, Word and
// every other static render mode): the same data as showMacro, for the
// same reader and only of the Jira projects that reader may browse, as
// storage-format XHTML that Confluence puts into the document itself. It is
// fetched by Confluence's server, never framed, so it carries no scripts.
func (s *Server) showMacroStatic(c echo.Context) error {
	v, err := s.macroView(c, templates.Page{})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return s.render(c, macroStatusCode(v), templates.MacroStatic(v))
}
