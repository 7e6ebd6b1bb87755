package web

import (
	"path"
	"strings"
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
	// InFlight counts a request of a route class (see routeClass) as being
	// handled until done is called.
	InFlight(class string) (done func())
	// IssueView counts an issue panel or summary load by how the issue view
	// cache answered: "hit", "miss" or "bypass".
	IssueView(result string)
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
			done := o.InFlight(routeClass(c.Path()))
			defer done()
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

// routeClass sorts a route pattern into the few classes the in-flight gauge
// counts by: few enough to watch at a glance, and "ingest" on its own,
// since deliveries being stored are the closest thing Keyline has to a
// queue. c.Path() is the pattern, set by the router before middleware added
// with Use runs.
func routeClass(route string) string {
	switch {
	case strings.HasPrefix(route, "/ingest/"):
		return "ingest"
	case route == "/healthz" || route == "/readyz":
		return "health"
	case strings.HasPrefix(route, "/jira/webhooks/"):
		return "jira_webhook"
	case strings.HasPrefix(route, "/jira/api/"):
		return "api"
	case route == "/" || strings.HasSuffix(route, "/static/*") || strings.HasSuffix(route, "/atlassian-connect.json"):
		return "static"
	}
	switch path.Base(route) {
	case "installed", "uninstalled", "enabled", "disabled":
		return "lifecycle"
	case "panel", "summary", "project", "configure", "macro", "macro-static":
		return "page"
	}
	return "other"
}
