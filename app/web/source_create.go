package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/store"
)

// createSource adds a webhook source. The answer is the only time the
// webhook URL and secret are shown.
func (s *Server) createSource(c echo.Context) error {
	body, err := readBody(c, 4<<10)
	if err != nil {
		return err
	}
	var in struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return badRequest("body must be JSON: {\"kind\": …, \"name\": …}")
	}
	if !store.ValidSourceKind(in.Kind) {
		return badRequest(fmt.Sprintf("kind must be one of %v", store.SourceKinds()))
	}
	if len(in.Name) > store.MaxSourceNameLen {
		return badRequest(fmt.Sprintf("name is longer than %d characters", store.MaxSourceNameLen))
	}
	t := identity(c).Tenant
	src, token, secret, err := s.deps.Store.CreateSource(c.Request().Context(), t, in.Kind, in.Name)
	switch {
	case errors.Is(err, store.ErrTooManySources):
		return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("a site may have at most %d sources", store.MaxSourcesPerTenant))
	case err != nil:
		return fmt.Errorf("create source: %w", err)
	}
	s.log.Info("source created", slog.Int64("tenant_id", t.ID), slog.String("source_id", src.ID), slog.String("kind", src.Kind))
	return c.JSON(http.StatusCreated, map[string]any{
		"source":      toSourceJSON(*src),
		"webhook_url": s.webhookURL(token),
		"secret":      secret,
	})
}
