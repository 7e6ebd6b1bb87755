package web

import (
	"time"

	"github.com/labstack/echo/v4"
)

// Observer records what the server answers, for monitoring;
// *observe.Metrics implements it. Deps.Observer may be nil: nothing is
// recorded then, and no middleware is added.
type Observer interface {
	// ObserveRequest gets the route pattern (c.Path()), never the raw path:
	// webhook URLs carry their credential and iframe URLs a JWT.
	ObserveRequest(route, method string, status int, elapsed time.Duration)
	// AuthFailure counts a refused credential: surface "connect" (Connect
	// JWTs and install tokens) or "ingest" (webhook signatures).
	AuthFailure(surface, reason string)
	// Delivery counts a webhook delivery by its source's kind and outcome.
	Delivery(kind, outcome string)
}

// Context keys handlers set for the observe middleware; they stay unread
// when no Observer is configured.
const (
	ctxAuthFailure = "keyline.observe.auth_failure" // authFailure
	ctxDelivery    = "keyline.observe.delivery"     // deliveryOutcome
)

type authFailure struct{ surface, reason string }

type deliveryOutcome struct{ kind, outcome string }

// observeRequests reports every request to o once its answer is final. It
// runs outside logRequests, which writes handler errors out, so the status
// seen here is the one the client got.
func observeRequests(o Observer) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				// Only reached if logRequests is not inside this middleware
				// (tests); echo must answer the error before the status is read.
				c.Error(err)
			}
			o.ObserveRequest(c.Path(), c.Request().Method, c.Response().Status, time.Since(start))
			if f, ok := c.Get(ctxAuthFailure).(authFailure); ok {
				o.AuthFailure(f.surface, f.reason)
			}
			if d, ok := c.Get(ctxDelivery).(deliveryOutcome); ok {
				o.Delivery(d.kind, d.outcome)
			}
			return nil
		}
	}
}
