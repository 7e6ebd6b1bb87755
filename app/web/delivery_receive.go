package web

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/ingest"
)

// receiveDelivery takes a webhook delivery to a source's URL
// (/ingest/:token, and /ingest/:token/:entity for the generic API) and
// answers with the receiver's result as JSON.
func (s *Server) receiveDelivery(c echo.Context) error {
	req := c.Request()
	res, err := s.deps.Receiver.Receive(req.Context(), ingest.Delivery{
		Token: c.Param("token"), Entity: c.Param("entity"), Header: req.Header, Body: req.Body,
	})
	if res.TenantID != 0 {
		c.Set(ctxTenantID, res.TenantID)
	}
	observeDelivery(c, res)
	if err != nil {
		s.log.Error("ingest: delivery not stored", slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
			slog.Int64("tenant_id", res.TenantID), slog.String("source_id", res.SourceID), slog.String("error", err.Error()))
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": "the delivery could not be stored; retry later"})
	}
	setRetryAfter(c, res)
	if res.Status >= 400 {
		c.Set("keyline.reject_reason", res.Reason)
		return c.JSON(res.Status, map[string]string{"error": res.Reason})
	}
	return c.JSON(res.Status, res)
}

// observeDelivery leaves the delivery's outcome, and a refused signature, for
// the observe middleware.
func observeDelivery(c echo.Context, res ingest.Result) {
	outcome := res.Refusal
	switch {
	case outcome != "":
	case res.Outcome != "":
		outcome = string(res.Outcome)
	default:
		outcome = "rejected"
	}
	c.Set(ctxDelivery, deliveryOutcome{kind: res.Kind, outcome: outcome})
	if res.Refusal == ingest.RefusedBadSignature || res.Refusal == ingest.RefusedMissingSignature {
		c.Set(ctxAuthFailure, authFailure{surface: "ingest", reason: res.Refusal})
	}
}

// setRetryAfter tells a sender over a rate limit when to come back.
func setRetryAfter(c echo.Context, res ingest.Result) {
	if res.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(res.RetryAfter/time.Second)))
	}
}
