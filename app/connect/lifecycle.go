package connect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyline/keyline/app/tenant"
)

// Lifecycle event types (spec §2).
const (
	EventInstalled   = "installed"
	EventUninstalled = "uninstalled"
	EventEnabled     = "enabled"
	EventDisabled    = "disabled"
)

// LifecyclePayload is the JSON body of the lifecycle callbacks (spec §2).
// String and LogValue leave SharedSecret out, so printing or logging a payload
// does not leak it.
type LifecyclePayload struct {
	EventType         string `json:"eventType"`
	Key               string `json:"key"`
	ClientKey         string `json:"clientKey"`
	SharedSecret      string `json:"sharedSecret"`
	BaseURL           string `json:"baseUrl"`
	DisplayURL        string `json:"displayUrl"`
	ProductType       string `json:"productType"`
	Description       string `json:"description"`
	OAuthClientID     string `json:"oauthClientId"`
	InstallationID    string `json:"installationId"`
	CloudID           string `json:"cloudId"`
	ServerVersion     string `json:"serverVersion"`
	PluginsVersion    string `json:"pluginsVersion"`
	EntitlementID     string `json:"entitlementId"`
	EntitlementNumber string `json:"entitlementNumber"`
}

// wirePayload decodes the informational fields leniently: a product that
// starts sending serverVersion as a number must not break installs. The
// fields we make security decisions on stay strictly strings.
type wirePayload struct {
	EventType         string        `json:"eventType"`
	Key               string        `json:"key"`
	ClientKey         string        `json:"clientKey"`
	SharedSecret      string        `json:"sharedSecret"`
	BaseURL           string        `json:"baseUrl"`
	DisplayURL        string        `json:"displayUrl"`
	ProductType       string        `json:"productType"`
	Description       lenientString `json:"description"`
	OAuthClientID     string        `json:"oauthClientId"`
	InstallationID    string        `json:"installationId"`
	CloudID           string        `json:"cloudId"`
	ServerVersion     lenientString `json:"serverVersion"`
	PluginsVersion    lenientString `json:"pluginsVersion"`
	EntitlementID     lenientString `json:"entitlementId"`
	EntitlementNumber lenientString `json:"entitlementNumber"`
}

// lenientString accepts a JSON string, number, boolean or null.
type lenientString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *lenientString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*s = ""
		return nil
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = lenientString(v)
		return nil
	case b[0] == '{' || b[0] == '[':
		return errors.New("expected a string, number or boolean")
	}
	*s = lenientString(b)
	return nil
}

// ParseLifecyclePayload decodes a lifecycle body. It only decodes; checking
// the fields against the route and the token is Check's job.
func ParseLifecyclePayload(body []byte) (*LifecyclePayload, error) {
	var w wirePayload
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode lifecycle payload: %w", err)
	}
	return &LifecyclePayload{
		EventType:         w.EventType,
		Key:               w.Key,
		ClientKey:         w.ClientKey,
		SharedSecret:      w.SharedSecret,
		BaseURL:           w.BaseURL,
		DisplayURL:        w.DisplayURL,
		ProductType:       w.ProductType,
		Description:       string(w.Description),
		OAuthClientID:     w.OAuthClientID,
		InstallationID:    w.InstallationID,
		CloudID:           w.CloudID,
		ServerVersion:     string(w.ServerVersion),
		PluginsVersion:    string(w.PluginsVersion),
		EntitlementID:     string(w.EntitlementID),
		EntitlementNumber: string(w.EntitlementNumber),
	}, nil
}

// Check verifies that the payload belongs to this route and this token:
// key is our app key, eventType is the route's event, clientKey is the
// verified issuer, and an "installed" payload carries a shared secret. Use it
// for enabled/disabled bodies after Verifier.Verify (clientKey =
// Identity.Tenant.ClientKey); VerifyInstall calls it itself.
func (p *LifecyclePayload) Check(appKey, eventType, clientKey string) error {
	switch {
	case p.Key != appKey:
		return fmt.Errorf("payload key %q is not app key %q", p.Key, appKey)
	case p.EventType != eventType:
		return fmt.Errorf("payload eventType %q on the %q route", p.EventType, eventType)
	case p.ClientKey == "" || p.ClientKey != clientKey:
		return fmt.Errorf("payload clientKey %q does not match token issuer %q", p.ClientKey, clientKey)
	case eventType == EventInstalled && p.SharedSecret == "":
		return errors.New("installed payload has no sharedSecret")
	}
	return nil
}

// Install converts a verified "installed" payload into what the store
// records. DisplayURL defaults to BaseURL, as the product omits it when the
// site has no custom domain.
func (p *LifecyclePayload) Install(at time.Time) tenant.Install {
	display := p.DisplayURL
	if display == "" {
		display = p.BaseURL
	}
	return tenant.Install{
		AppKey:         p.Key,
		ClientKey:      p.ClientKey,
		BaseURL:        p.BaseURL,
		DisplayURL:     display,
		ProductType:    p.ProductType,
		Description:    p.Description,
		SharedSecret:   []byte(p.SharedSecret),
		OAuthClientID:  p.OAuthClientID,
		InstallationID: p.InstallationID,
		CloudID:        p.CloudID,
		At:             at,
	}
}

// String describes the payload without its shared secret.
func (p LifecyclePayload) String() string {
	return fmt.Sprintf("%s %s for %s at %s", p.EventType, p.Key, p.ClientKey, p.BaseURL)
}

// LogValue implements slog.LogValuer without the shared secret.
func (p LifecyclePayload) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("eventType", p.EventType),
		slog.String("key", p.Key),
		slog.String("clientKey", p.ClientKey),
		slog.String("baseUrl", p.BaseURL),
		slog.String("productType", p.ProductType),
		slog.Bool("hasSharedSecret", p.SharedSecret != ""),
	)
}
