package web

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
)

// updateSourceRules replaces a source's environment rules with the body, a
// JSON object like {"production": ["prod-*"]}, and answers with the source.
// Deliveries received from then on are classified by the new rules; stored
// deployments keep the type they were given.
func (s *Server) updateSourceRules(c echo.Context) error {
	body, err := readBody(c, store.MaxEnvironmentRulesLen)
	if err != nil {
		return err
	}
	// The store checks the rules too; parsing them here gives the caller the
	// reason without the store's error prefix, and refuses bad rules before
	// anything says whether the source exists.
	if _, err := store.ParseEnvironmentRules(body); err != nil {
		return rulesError(err)
	}
	t := identity(c).Tenant
	id := c.Param("sourceID")
	ctx := c.Request().Context()
	if err := s.deps.Store.SetEnvironmentRules(ctx, t, id, body); err != nil {
		if errors.Is(err, devops.ErrInvalidEnvironmentRules) {
			return rulesError(err)
		}
		return sourceError(err)
	}
	src, err := s.deps.Store.SourceByID(ctx, t, id)
	if err != nil {
		// Deleted between the two calls: the rules went with it.
		return sourceError(err)
	}
	s.log.Info("source environment rules set", slog.Int64("tenant_id", t.ID), slog.String("source_id", id))
	return c.JSON(http.StatusOK, map[string]any{"source": toSourceJSON(*src)})
}

// rulesError answers invalid rules with every problem found, on one line.
func rulesError(err error) error {
	return badRequest(strings.ReplaceAll(err.Error(), "\n", "; "))
}
