package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/store"
)

// deliveryJSON is one line of a source's delivery log.
type deliveryJSON struct {
	DeliveryID string    `json:"delivery_id,omitempty"`
	Event      string    `json:"event"`
	Outcome    string    `json:"outcome"`
	Status     int       `json:"status"`
	Reason     string    `json:"reason,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// listDeliveries shows a source's delivery log, newest first.
func (s *Server) listDeliveries(c echo.Context) error {
	ds, err := s.deps.Store.ListDeliveries(c.Request().Context(), identity(c).Tenant, c.Param("sourceID"), store.MaxDeliveriesPerSource)
	if err != nil {
		return sourceError(err)
	}
	out := make([]deliveryJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, deliveryJSON{DeliveryID: d.DeliveryID, Event: d.Event, Outcome: string(d.Outcome), Status: d.Status, Reason: d.Reason, ReceivedAt: d.ReceivedAt})
	}
	return c.JSON(http.StatusOK, map[string]any{"deliveries": out})
}
