// Package tenant holds the identity of an installed Connect app on one Atlassian
// site, and the cache that lets every request find it without a database round trip.
package tenant

import "time"

// Tenant is one installation of one of Keyline's two apps (Jira or Confluence)
// on one Atlassian site. The pair (AppKey, ClientKey) identifies it; ID is the
// surrogate key that every site-data table carries as tenant_id.
type Tenant struct {
	ID          int64
	AppKey      string
	ClientKey   string
	BaseURL     string // product base URL, e.g. https://acme.atlassian.net or …/wiki
	DisplayURL  string // custom-domain URL for links shown to people; BaseURL when absent
	ProductType string // "jira" or "confluence"
	Description string
	// SharedSecret is the HS256 secret Atlassian sent with the last install.
	// It is held decrypted in memory only; the store keeps it sealed.
	SharedSecret   []byte
	OAuthClientID  string
	InstallationID string
	CloudID        string
	Installed      bool // false after uninstalled
	Enabled        bool // false after disabled
	InstalledAt    time.Time
	UninstalledAt  *time.Time
	UpdatedAt      time.Time
}

// Install is what a verified "installed" lifecycle callback asks the store to record.
type Install struct {
	AppKey         string
	ClientKey      string
	BaseURL        string
	DisplayURL     string
	ProductType    string
	Description    string
	SharedSecret   []byte
	OAuthClientID  string
	InstallationID string
	CloudID        string
	At             time.Time
}
