package web

import (
	"encoding/json"
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
	// SecretProvided says whether the current secret is one the provider
	// issued (PagerDuty's), set through PUT …/secret, rather than Keyline's.
	SecretProvided bool `json:"secret_provided"`
	// EnvironmentRules is shown as the JSON object it is, not as a string.
	EnvironmentRules json.RawMessage `json:"environment_rules"`
}

func toSourceJSON(src store.Source) sourceJSON {
	rules := src.EnvironmentRules
	if len(rules) == 0 {
		rules = json.RawMessage("{}") // a RawMessage left empty would break the whole answer
	}
	return sourceJSON{ID: src.ID, Kind: src.Kind, Name: src.Name, CreatedAt: src.CreatedAt,
		PreviousSecretUntil: src.PreviousSecretUntil, SecretProvided: src.SecretProvided, EnvironmentRules: rules}
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
