package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/store"
)

// updateSourceSecret sets the signing secret a provider issued, the body
// {"secret": "…"}, as the source's current secret; the one it replaces
// stops verifying at once. Only kinds whose provider issues the secret take
// one (PagerDuty); the others sign with the secret Keyline generated and
// are rotated instead. The secret is never echoed back or logged: the
// answer is the source, which says only that a provided secret is set.
func (s *Server) updateSourceSecret(c echo.Context) error {
	body, err := readBody(c, 4<<10)
	if err != nil {
		return err
	}
	var in struct {
		Secret *string `json:"secret"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() || in.Secret == nil {
		return badRequest(`body must be JSON: {"secret": "<the signing secret the provider gave you>"}`)
	}
	// Checked before the source is looked up, so a bad secret is refused
	// without saying whether the source exists.
	if err := store.CheckSourceSecret(*in.Secret); err != nil {
		return badRequest(secretProblem(err))
	}
	t := identity(c).Tenant
	ctx := c.Request().Context()
	id := c.Param("sourceID")
	src, err := s.deps.Store.SourceByID(ctx, t, id)
	if err != nil {
		return sourceError(err)
	}
	if !store.TakesProvidedSecret(src.Kind) {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "a "+kindLabel(src.Kind)+
			" source signs with the secret Keyline generated; rotate it instead. Only PagerDuty sources take a secret from their provider")
	}
	if err := s.deps.Store.SetSourceSecret(ctx, t, id, *in.Secret, 0); err != nil {
		if errors.Is(err, store.ErrInvalidSecret) {
			return badRequest(secretProblem(err))
		}
		return sourceError(err)
	}
	if src, err = s.deps.Store.SourceByID(ctx, t, id); err != nil {
		return sourceError(err) // deleted since the secret was set
	}
	s.log.Info("source secret set", slog.Int64("tenant_id", t.ID), slog.String("source_id", id))
	return c.JSON(http.StatusOK, map[string]any{"source": toSourceJSON(*src)})
}

// secretProblem is the reason of an ErrInvalidSecret without the store's
// prefixes, for the person who pasted the secret.
func secretProblem(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, store.ErrInvalidSecret.Error()+": "); i >= 0 {
		msg = msg[i+len(store.ErrInvalidSecret.Error())+2:]
	}
	return msg
}
