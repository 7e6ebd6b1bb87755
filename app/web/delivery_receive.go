package web

import (
	"encoding/json"
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
		Length: req.ContentLength,
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
		c.Set(ctxRejectReason, res.Reason)
		return c.JSON(res.Status, map[string]string{"error": res.Reason})
	}
	if c.Echo().Debug || req.URL.RawQuery != "" {
		return c.JSON(res.Status, res) // may be asked to indent (?pretty)
	}
	return c.JSONBlob(res.Status, appendResultJSON(make([]byte, 0, 128), res))
}

// appendResultJSON appends res as c.JSON writes it, to the byte: its
// non-empty JSON fields, in order, and a newline. Every stored delivery is
// answered with it, and encoding/json's reflection, through echo's encoder,
// was a few percent of the server's CPU per push.
// TestResultJSONMatchesEncodingJSON holds it to encoding/json.
func appendResultJSON(b []byte, res ingest.Result) []byte {
	sep := byte('{')
	for _, f := range [...]struct{ key, val string }{
		{`"outcome":`, string(res.Outcome)}, {`"event":`, res.Event},
		{`"delivery_id":`, res.DeliveryID}, {`"reason":`, res.Reason},
	} {
		if f.val != "" {
			b = appendJSONString(append(append(b, sep), f.key...), f.val)
			sep = ','
		}
	}
	if sep == '{' {
		b = append(b, '{')
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string exactly as encoding/json
// writes it (HTML characters escaped): plain text as it is, anything else
// through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil {
				panic(err) // a string always marshals
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
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
