// Package templates holds Keyline's HTML pages as templ components. Each takes a
// plain view struct built by the web layer, never a database model, so pages can
// be rendered and tested without a store.
package templates

//go:generate go tool templ generate

// AllJSURL is Atlassian's Connect JavaScript bridge. It must come from the CDN
// (spec §6); pages render fully without it and only lose auto-resizing.
const AllJSURL = "https://connect-cdn.atl-paas.net/all.js"

// Page carries what every framed page needs.
type Page struct {
	Title string
	// StaticPrefix is where static assets are served for this app, e.g. "/jira/static".
	StaticPrefix string
	// AssetVersion busts caches when the binary changes.
	AssetVersion string
}

// IssuePanelView is the Jira issue panel and the right-hand summary.
type IssuePanelView struct {
	Page
	IssueKey string
	SiteURL  string // where the site's people see it (display URL)
	SiteHost string
	// Issue is what Jira's webhooks told Keyline about the issue; nil until the first one.
	Issue *IssueFacts
	// Links counts linked DevOps entities by kind ("commit", "branch", ...).
	Links        []LinkCount
	ConfigureURL string
}

// IssueFacts is what Keyline knows of a Jira issue from Jira's own webhooks.
type IssueFacts struct {
	Summary        string
	StatusName     string
	StatusCategory string // "new", "indeterminate" or "done"
	ProjectKey     string
}

// LinkCount is how many entities of one kind are linked to an issue.
type LinkCount struct {
	Kind  string
	Label string
	Count int
}

// TotalLinks adds up the linked entities.
func (v IssuePanelView) TotalLinks() int {
	n := 0
	for _, l := range v.Links {
		n += l.Count
	}
	return n
}

// ProjectView is the Jira project page.
type ProjectView struct {
	Page
	ProjectKey  string
	SiteHost    string
	IssuesKnown int
}

// ConfigureView is the configure page of either app.
type ConfigureView struct {
	Page
	Product       string // "Jira" or "Confluence"
	SiteURL       string
	SiteHost      string
	AppKey        string
	InstalledAt   string
	DescriptorURL string
	RetentionDays int
	// Jira is set on the Confluence configure page: the Jira app on the same site.
	Jira *SiteLink
}

// SiteLink tells whether the Jira app is installed beside the Confluence one.
type SiteLink struct {
	Connected bool
	SiteURL   string
}

// MacroView is the Confluence macro.
type MacroView struct {
	Page
	View        string
	Projects    []string
	Service     string
	Environment string
	SiteHost    string
	Jira        SiteLink
	Problems    []string
}

// ErrorView is shown inside an iframe when a request cannot be served.
type ErrorView struct {
	Page
	Status  int
	Message string
}
