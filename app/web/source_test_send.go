package web

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/store"
)

// testDeliveryEvent names the lines the configure page's test button writes,
// so nobody mistakes them for a provider's events.
const testDeliveryEvent = "keyline:test"

// sendTestDelivery records a test line in a source's delivery log and answers
// with it, so an administrator sees the log work from the configure page.
//
// It is a line and nothing more. Keyline cannot send itself a delivery as the
// provider would: the store opens a source's secrets only for whoever
// presents its webhook URL's token, which Keyline does not keep. So the line
// is logged as an ignored event that says it came from Keyline, carries a
// fresh delivery id (it never counts as a duplicate of anything) and stores
// no entities.
func (s *Server) sendTestDelivery(c echo.Context) error {
	t := identity(c).Tenant
	ctx := c.Request().Context()
	src, err := s.deps.Store.SourceByID(ctx, t, c.Param("sourceID"))
	if err != nil {
		return sourceError(err)
	}
	line := store.Delivery{
		DeliveryID: "keyline-test-" + strings.ToLower(rand.Text()),
		Event:      testDeliveryEvent,
		Outcome:    store.DeliveryIgnored,
		Status:     http.StatusAccepted,
		Reason: "test line recorded from Keyline's configure page: it was not sent by " + kindLabel(src.Kind) +
			", checked no signature and stored nothing else",
		ReceivedAt: s.deps.Now().UTC(),
	}
	if err := s.deps.Store.RecordDelivery(ctx, t, src.ID, line); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return sourceError(err) // deleted since it was read
		}
		return fmt.Errorf("record test delivery: %w", err)
	}
	s.log.Info("source test delivery recorded", slog.Int64("tenant_id", t.ID), slog.String("source_id", src.ID))
	return c.JSON(http.StatusCreated, map[string]any{"delivery": deliveryJSON{DeliveryID: line.DeliveryID,
		Event: line.Event, Outcome: string(line.Outcome), Status: line.Status, Reason: line.Reason, ReceivedAt: line.ReceivedAt}})
}
