package web

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/connect"
)

// maxLifecycleBody bounds lifecycle payloads; real ones are under 2 KiB.
const maxLifecycleBody = 64 << 10

func readBody(c echo.Context, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, limit+1))
	if err != nil {
		return nil, badRequest("could not read the request body")
	}
	if int64(len(b)) > limit {
		return nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", limit))
	}
	return b, nil
}

// lifecycleError maps a failed install verification to its answer: 503 when
// Atlassian's key server could not be asked (the product retries the
// install), 401 for everything else. Nothing is stored either way.
func (s *Server) lifecycleError(c echo.Context, a app, event string, err error) error {
	var ke *connect.KeyServerError
	if errors.As(err, &ke) {
		s.log.Warn("lifecycle: install key server unavailable", slog.String("app", a.key), slog.String("event", event), slog.String("error", err.Error()))
		c.Set(ctxRejectReason, "install key server unavailable")
		return echo.NewHTTPError(http.StatusServiceUnavailable, "the Atlassian install key server could not be reached; try again")
	}
	return s.unauthorized(c, a, err)
}
