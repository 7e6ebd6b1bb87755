package web

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
)

// uninstallApp handles the signed "uninstalled" callback. The tenant is kept,
// marked uninstalled, so its data survives for the retention period; an
// unknown tenant is a success because Jira never retries this call.
func (s *Server) uninstallApp(a app) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := readBody(c, maxLifecycleBody)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		p, err := s.deps.Installs.VerifyInstall(ctx, c.Request(), body, a.connectApp(), "uninstalled")
		if err != nil {
			return s.lifecycleError(c, a, "uninstalled", err)
		}
		found, err := s.deps.Store.MarkUninstalled(ctx, a.key, p.ClientKey, s.deps.Now().UTC())
		if err != nil {
			return fmt.Errorf("uninstall %s: %w", a.key, err)
		}
		s.deps.Tenants.Invalidate(a.key, p.ClientKey)
		s.log.Info("app uninstalled", slog.String("app", a.key), slog.Bool("known", found))
		return c.NoContent(http.StatusNoContent)
	}
}
