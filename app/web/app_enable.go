package web

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/connect"
)

// enableApp handles "enabled" and "disabled", which Connect signs with the
// tenant's shared secret like a webhook (requireToken ran already).
func (s *Server) enableApp(a app, enabled bool) echo.HandlerFunc {
	event := "disabled"
	if enabled {
		event = "enabled"
	}
	return func(c echo.Context) error {
		body, err := readBody(c, maxLifecycleBody)
		if err != nil {
			return err
		}
		var p connect.LifecyclePayload
		if err := json.Unmarshal(body, &p); err != nil {
			return badRequest("lifecycle body is not valid JSON")
		}
		id := identity(c)
		switch {
		case p.EventType != event:
			return badRequest(fmt.Sprintf("eventType %q does not match /%s", p.EventType, event))
		case p.Key != a.key:
			return badRequest("key does not name this app")
		case p.ClientKey != id.Tenant.ClientKey:
			return s.unauthorized(c, a, authReason("clientKey in the body differs from the token's issuer"))
		}
		if err := s.deps.Store.SetEnabled(c.Request().Context(), id.Tenant, enabled); err != nil {
			return fmt.Errorf("%s %s: %w", event, a.key, err)
		}
		s.deps.Tenants.Invalidate(a.key, id.Tenant.ClientKey)
		s.log.Info("app "+event, slog.String("app", a.key), slog.Int64("tenant_id", id.Tenant.ID))
		return c.NoContent(http.StatusNoContent)
	}
}

func authReason(reason string) error { return &connect.AuthError{Reason: reason} }
