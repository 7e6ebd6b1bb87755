package web

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/tenant"
)

// installApp handles the RS256-signed "installed" callback: verify, then
// upsert the tenant with its new shared secret and drop the cached one so
// tokens signed with the old secret stop verifying at once.
func (s *Server) installApp(a app) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := readBody(c, maxLifecycleBody)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		p, err := s.deps.Installs.VerifyInstall(ctx, c.Request(), body, a.connectApp(), "installed")
		if err != nil {
			return s.lifecycleError(c, a, "installed", err)
		}
		if p.ProductType != "" && p.ProductType != string(a.product) {
			return s.unauthorized(c, a, authReason(fmt.Sprintf("productType %q does not belong to the %s app", p.ProductType, a.product)))
		}
		display := p.DisplayURL
		if display == "" {
			display = p.BaseURL
		}
		t, err := s.deps.Store.UpsertTenant(ctx, tenant.Install{
			AppKey:         a.key,
			ClientKey:      p.ClientKey,
			BaseURL:        p.BaseURL,
			DisplayURL:     display,
			ProductType:    string(a.product),
			Description:    p.Description,
			SharedSecret:   []byte(p.SharedSecret),
			OAuthClientID:  p.OAuthClientID,
			InstallationID: p.InstallationID,
			CloudID:        p.CloudID,
			At:             s.deps.Now().UTC(),
		})
		if err != nil {
			return fmt.Errorf("install %s: %w", a.key, err)
		}
		s.deps.Tenants.Invalidate(a.key, p.ClientKey)
		c.Set(ctxTenantID, t.ID)
		s.log.Info("app installed", slog.String("app", a.key), slog.Int64("tenant_id", t.ID), slog.String("site", t.BaseURL))
		return c.NoContent(http.StatusNoContent)
	}
}
