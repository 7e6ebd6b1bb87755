package web

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/store"
)

// rotateSource issues a new signing secret; the old one keeps verifying for
// the overlap (default 24 h) so the provider can be updated without losing
// deliveries.
func (s *Server) rotateSource(c echo.Context) error {
	body, err := readBody(c, 1<<10)
	if err != nil {
		return err
	}
	var in struct {
		OverlapSeconds *int64 `json:"overlap_seconds"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return badRequest("body must be JSON: {\"overlap_seconds\": …} or empty")
		}
	}
	overlap := store.DefaultSecretOverlap
	if in.OverlapSeconds != nil {
		if *in.OverlapSeconds < 0 || time.Duration(*in.OverlapSeconds)*time.Second > store.MaxSecretOverlap {
			return badRequest(fmt.Sprintf("overlap_seconds must be between 0 and %d", int64(store.MaxSecretOverlap/time.Second)))
		}
		overlap = time.Duration(*in.OverlapSeconds) * time.Second
	}
	t := identity(c).Tenant
	id := c.Param("sourceID")
	secret, err := s.deps.Store.RotateSourceSecret(c.Request().Context(), t, id, overlap)
	if err != nil {
		return sourceError(err)
	}
	s.log.Info("source secret rotated", slog.Int64("tenant_id", t.ID), slog.String("source_id", id))
	return c.JSON(http.StatusOK, map[string]any{"id": id, "secret": secret, "previous_secret_valid_for_seconds": int64(overlap / time.Second)})
}
