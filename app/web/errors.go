package web

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/templates"
)

// handleError answers every error: an HTML page where a product iframe asked
// for one, JSON otherwise. Messages of 4xx errors are meant for the caller;
// 5xx details stay in the log.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(status)
		}
	} else {
		s.log.Error("handler error", slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
			slog.String("route", c.Path()), slog.String("error", err.Error()))
	}
	if status >= 500 {
		msg = "internal error"
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if wantsHTML(c) {
		_ = s.render(c, status, templates.ErrorPage(templates.ErrorView{
			Page:    s.page(s.appFor(c), "Keyline"),
			Status:  status,
			Message: msg,
		}))
		return
	}
	_ = c.JSON(status, map[string]string{"error": msg})
}

// wantsHTML is true for page loads from a product iframe.
func wantsHTML(c echo.Context) bool {
	if c.Request().Method != http.MethodGet {
		return false
	}
	if strings.Contains(c.Path(), "/api/") || strings.HasSuffix(c.Path(), ".json") {
		return false
	}
	return strings.Contains(c.Request().Header.Get("Accept"), "text/html") ||
		c.Request().URL.Query().Has("xdm_e") || c.Request().URL.Query().Has("jwt")
}

// appFor picks the app whose base path the request is under, for styling error pages.
func (s *Server) appFor(c echo.Context) app {
	if strings.HasPrefix(c.Request().URL.Path, s.confluence.basePath+"/") {
		return s.confluence
	}
	return s.jira
}
