package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/store"
)

// sourceJSON is a source as the JSON API shows it: never its secrets or token.
type sourceJSON struct {
	ID                  string     `json:"id"`
	Kind                string     `json:"kind"`
	Name                string     `json:"name"`
	CreatedAt           time.Time  `json:"created_at"`
	PreviousSecretUntil *time.Time `json:"previous_secret_until,omitempty"`
}

func toSourceJSON(src store.Source) sourceJSON {
	return sourceJSON{ID: src.ID, Kind: src.Kind, Name: src.Name, CreatedAt: src.CreatedAt, PreviousSecretUntil: src.PreviousSecretUntil}
}

// webhookURL is where a source's provider sends deliveries.
func (s *Server) webhookURL(token string) string { return ingest.WebhookURL(s.deps.BaseURL, token) }

// sourceError maps store errors of a source lookup to answers.
func sourceError(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such source")
	}
	return err
}
