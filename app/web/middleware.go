package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/connect"
)

const (
	ctxIdentity = "keyline.identity"
	ctxTenantID = "keyline.tenant_id"
	// ctxRejectReason holds why a request was refused (a string), for its
	// request log line.
	ctxRejectReason = "keyline.reject_reason"
)

// logRequests writes one structured line per request. It logs the path only:
// the query string of an iframe load carries the JWT.
func (s *Server) logRequests() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			req, res := c.Request(), c.Response()
			path := req.URL.Path
			if strings.HasPrefix(c.Path(), "/ingest/") {
				// A webhook URL's token is its credential: log the route only.
				path = c.Path()
			}
			attrs := []slog.Attr{
				slog.String("request_id", res.Header().Get(echo.HeaderXRequestID)),
				slog.String("method", req.Method),
				slog.String("route", c.Path()),
				slog.String("path", path),
				slog.Int("status", res.Status),
				slog.Int64("bytes", res.Size),
				slog.Duration("latency", time.Since(start)),
			}
			if id, ok := c.Get(ctxTenantID).(int64); ok {
				attrs = append(attrs, slog.Int64("tenant_id", id))
			}
			level := slog.LevelInfo
			if res.Status >= 500 {
				level = slog.LevelError
			}
			if reason, ok := c.Get(ctxRejectReason).(string); ok {
				attrs = append(attrs, slog.String("reason", reason))
			}
			s.log.LogAttrs(req.Context(), level, "request", attrs...)
			return nil
		}
	}
}

// withDeadline gives every request's context a deadline d after it reaches
// the handler (see HandlerTimeout). It wraps the router rather than being
// echo middleware so that it also covers requests no route matches.
func withDeadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// recoverPanics turns a panic into a 500 and a log line with the stack.
func (s *Server) recoverPanics() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					buf := make([]byte, 4<<10)
					buf = buf[:runtime.Stack(buf, false)]
					s.log.Error("panic", slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
						slog.String("panic", fmt.Sprint(r)), slog.String("stack", string(buf)))
					err = echo.NewHTTPError(http.StatusInternalServerError, "internal error")
				}
			}()
			return next(c)
		}
	}
}

// securityHeaders applies to every response. HSTS is a Marketplace security
// requirement; X-Frame-Options is never sent because Jira must frame our pages.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		return next(c)
	}
}

// framed marks a page that Jira or Confluence shows in an iframe.
func (s *Server) framed(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", s.csp)
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}

// requireToken verifies the product's JWT for one route class: module pages,
// webhooks and enabled/disabled take a computed qsh, the app's JSON API only a
// context token (spec §4.5). The verified tenant is the only tenant handlers see.
func (s *Server) requireToken(a app, mode connect.QSHMode) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id, err := s.deps.Verifier.Verify(c.Request().Context(), c.Request(), a.key, a.basePath, mode)
			if err != nil {
				return s.unauthorized(c, a, err)
			}
			c.Set(ctxIdentity, id)
			c.Set(ctxTenantID, id.Tenant.ID)
			return next(c)
		}
	}
}

func (s *Server) unauthorized(c echo.Context, a app, err error) error {
	if errors.Is(err, connect.ErrTenantLookup) {
		s.log.Error("verify token: tenant store unavailable", slog.String("app", a.key), slog.String("error", err.Error()))
		c.Set(ctxRejectReason, "tenant store unavailable")
		return echo.NewHTTPError(http.StatusServiceUnavailable, "Keyline is temporarily unavailable; try again shortly")
	}
	reason := "authentication failed"
	var ae *connect.AuthError
	if errors.As(err, &ae) {
		reason = ae.Reason
	} else {
		s.log.Error("verify token", slog.String("error", err.Error()))
	}
	c.Set(ctxRejectReason, reason)
	c.Set(ctxAuthFailure, authFailure{surface: "connect", reason: reason})
	c.Response().Header().Set("WWW-Authenticate", fmt.Sprintf("JWT realm=%q", a.key))
	return echo.NewHTTPError(http.StatusUnauthorized, reason)
}

// identity is the verified caller; only routes behind requireToken call it.
func identity(c echo.Context) *connect.Identity {
	id, _ := c.Get(ctxIdentity).(*connect.Identity)
	return id
}

// requireAdmin lets only the site's Jira administrators through; Jira is asked
// (answers are cached for a minute) because a context token says who the user
// is, not what they may do.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := identity(c)
		ok, err := s.deps.Jira.IsAdmin(c.Request().Context(), id.Tenant, id.AccountID)
		if err != nil {
			s.log.Warn("jira: admin check failed", slog.Int64("tenant_id", id.Tenant.ID), slog.String("error", err.Error()))
			return echo.NewHTTPError(http.StatusBadGateway, "Jira could not be asked for your permissions; try again")
		}
		if !ok {
			return echo.NewHTTPError(http.StatusForbidden, "only Jira administrators may manage Keyline's sources")
		}
		return next(c)
	}
}
