package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/store"
)

// sendTestDelivery sends a source a test delivery shaped and signed as its
// provider would send it (GitHub's ping, PagerDuty's pagey.ping, …; see
// ingest.NewTestDelivery) and answers with the line it left in the delivery
// log. The delivery goes through the receiver in process, after the source
// lookup that the URL's token would do: signature check, parsing, the log
// line and the delivery metrics are the real ones, and, being an event
// Keyline ignores, it stores nothing else. It shows that the secret Keyline
// holds verifies and the log works; whether the provider reaches Keyline
// only the provider's own test can show.
func (s *Server) sendTestDelivery(c echo.Context) error {
	t := identity(c).Tenant
	ctx := c.Request().Context()
	src, err := s.deps.Store.SourceWithSecrets(ctx, t, c.Param("sourceID"))
	if err != nil {
		return sourceError(err)
	}
	if store.TakesProvidedSecret(src.Kind) && !src.SecretProvided {
		// Keyline's own secret verifies, but PagerDuty never signs with it:
		// a passing test would say nothing about real deliveries.
		return echo.NewHTTPError(http.StatusConflict, "set the signing secret "+kindLabel(src.Kind)+
			" gave you first: Keyline checks its deliveries with that secret, not with one of its own")
	}
	td, err := ingest.NewTestDelivery(src.Kind, src.Secrets[0], s.deps.Now())
	if err != nil {
		return fmt.Errorf("build test delivery: %w", err)
	}
	res, err := s.deps.Receiver.ReceiveSource(ctx, t, src, td.Delivery)
	observeDelivery(c, res)
	if err != nil {
		return fmt.Errorf("test delivery: %w", err)
	}
	if res.Outcome == "" {
		// Refused before it reached the log: the source went while the test
		// was sent, or a rate limit turned it away.
		if res.Status == http.StatusNotFound {
			return sourceError(store.ErrNotFound)
		}
		setRetryAfter(c, res)
		return echo.NewHTTPError(res.Status, "no test delivery was sent: "+res.Reason)
	}
	line, err := s.loggedLine(c, src.ID, res)
	if err != nil {
		return err
	}
	s.log.Info("source test delivery sent", slog.Int64("tenant_id", t.ID), slog.String("source_id", src.ID),
		slog.String("outcome", string(res.Outcome)), slog.Int("status", res.Status))
	return c.JSON(http.StatusCreated, map[string]any{"sent": td.What, "delivery": line})
}

// loggedLine reads back the delivery-log line the receiver wrote for res,
// so the answer shows the log as it is. A line no longer among the newest
// (a burst of deliveries in between) is answered from res.
func (s *Server) loggedLine(c echo.Context, sourceID string, res ingest.Result) (deliveryJSON, error) {
	line := deliveryJSON{DeliveryID: res.DeliveryID, Event: res.Event, Outcome: string(res.Outcome),
		Status: res.Status, Reason: res.Reason, ReceivedAt: s.deps.Now().UTC()}
	ds, err := s.deps.Store.ListDeliveries(c.Request().Context(), identity(c).Tenant, sourceID, 20)
	if errors.Is(err, store.ErrNotFound) {
		return line, sourceError(err) // deleted since the test was sent
	}
	if err != nil {
		return line, fmt.Errorf("read the test delivery's line: %w", err)
	}
	for _, d := range ds {
		if d.DeliveryID == res.DeliveryID {
			return deliveryJSON{DeliveryID: d.DeliveryID, Event: d.Event, Outcome: string(d.Outcome),
				Status: d.Status, Reason: d.Reason, ReceivedAt: d.ReceivedAt}, nil
		}
	}
	return line, nil
}
