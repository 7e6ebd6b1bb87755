// Package templates holds Keyline's HTML pages as templ components. Each takes a
// plain view struct built by the web layer, never a database model, so pages can
// be rendered and tested without a store.
package templates

//go:generate go tool templ generate

import (
	"strconv"
	"strings"
)

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
	Issue        *IssueFacts
	ConfigureURL string
	// Development is what the site's sources linked to the issue.
	Development DevelopmentView
	// ViewerIsAdmin is asked of Jira only when Development is empty: then an
	// administrator is shown how to connect a source.
	ViewerIsAdmin bool
}

// IssueFacts is what Keyline knows of a Jira issue from Jira's own webhooks.
type IssueFacts struct {
	Summary        string
	StatusName     string
	StatusCategory string // "new", "indeterminate" or "done"
	ProjectKey     string
}

// Tone is a lozenge's colour, after Atlassian's lozenge appearances. Its
// value is the suffix of the lozenge's CSS class.
type Tone string

// Lozenge tones.
const (
	ToneNeutral    Tone = "neutral"     // grey: pending, cancelled, draft, unknown
	ToneSuccess    Tone = "success"     // green: successful, merged, approved, resolved
	ToneInProgress Tone = "information" // blue: in progress, open pull request
	ToneFailed     Tone = "danger"      // red: failed, declined, open incident
	ToneMoved      Tone = "warning"     // yellow: rolled back, needs work
)

// Lozenge is a state shown as a coloured label.
type Lozenge struct {
	Label string
	Tone  Tone
}

// Moment is a point in time, preformatted: Relative to read ("3 h ago"),
// ISO for the datetime attribute and Exact for the tooltip. All are empty
// when the time is not known.
type Moment struct {
	Relative string
	ISO      string
	Exact    string
}

// Known reports whether the moment has a time.
func (m Moment) Known() bool { return m.ISO != "" }

// List is one list of a panel section, newest first. The first Visible
// items show at once, the rest of Items sit behind an expander, and Total
// counts every linked entity, including those too old to be loaded.
type List[T any] struct {
	Items   []T
	Visible int
	Total   int
}

// Head is what shows before the expander.
func (l List[T]) Head() []T { return l.Items[:min(max(l.Visible, 0), len(l.Items))] }

// Rest is what the expander holds.
func (l List[T]) Rest() []T { return l.Items[min(max(l.Visible, 0), len(l.Items)):] }

// Omitted counts the linked entities that were not loaded at all.
func (l List[T]) Omitted() int { return max(l.Total-len(l.Items), 0) }

// Empty reports whether nothing of this kind is linked.
func (l List[T]) Empty() bool { return len(l.Items) == 0 && l.Total == 0 }

// DevelopmentView is everything the sources linked to one issue, ready to print.
type DevelopmentView struct {
	Summary      SummaryView
	Timeline     []TimelineStep
	Branches     List[BranchItem]
	Commits      List[CommitItem]
	PullRequests List[PullRequestItem]
	Builds       List[BuildItem]
	// Environments group the deployments, development first, unmapped last.
	Environments []EnvironmentView
	// DeploymentsTotal counts every linked deployment; DeploymentsOmitted
	// those not loaded.
	DeploymentsTotal   int
	DeploymentsOmitted int
	Incidents          List[IncidentItem]
	// Total counts every linked entity of any kind.
	Total int
}

// Empty reports whether nothing at all is linked to the issue.
func (d DevelopmentView) Empty() bool { return d.Total == 0 }

// SummaryView is the one-line digest at the top of the panel and in the
// right-hand column. Count strings are empty when there is nothing to count.
type SummaryView struct {
	Branches     string // "2 branches"
	Commits      string // "14 commits"
	PullRequests string // "3 pull requests"
	// PullRequestStates counts the pull requests by state: "1 open", "2 merged".
	PullRequestStates []Lozenge
	// LatestBuild is the state of the most recent build; nil without builds.
	LatestBuild *Lozenge
	// LatestBuildName names it: "Shop CI #562".
	LatestBuildName string
	Environments    []EnvironmentSummary
	// Incidents says how many linked incidents are open ("1 open incident",
	// "No open incidents"); empty when no incident is linked.
	Incidents     string
	OpenIncidents int
}

// EnvironmentSummary is an environment the issue reached and the state of
// its latest deployment there.
type EnvironmentSummary struct {
	Name      string
	Type      string // "production", ...
	TypeLabel string // "Production"
	State     Lozenge
}

// BranchItem is one branch.
type BranchItem struct {
	Name       string
	URL        string
	LastCommit string // short sha
	Deleted    bool
	Updated    Moment
}

// CommitItem is one commit.
type CommitItem struct {
	SHA      string
	ShortSHA string // seven characters
	Message  string // the first line
	Author   string
	Authored Moment
	URL      string
	Merge    bool
}

// PullRequestItem is one pull (merge) request.
type PullRequestItem struct {
	Number            string // "#42"
	Title             string
	URL               string
	State             Lozenge
	SourceBranch      string
	DestinationBranch string
	Author            string
	Reviewers         []ReviewerItem
	// Approvals is "2 of 3 approved"; empty without reviewers.
	Approvals string
	Updated   Moment
}

// ReviewerItem is a reviewer and their verdict.
type ReviewerItem struct {
	Name    string
	Verdict Lozenge
}

// BuildItem is one CI run.
type BuildItem struct {
	Pipeline string
	Number   string // "#562"
	State    Lozenge
	// HasTests says the build reported test counts.
	HasTests    bool
	TestsPassed int
	TestsFailed int
	When        Moment
	URL         string
}

// EnvironmentView is one environment's deployments, newest first.
type EnvironmentView struct {
	Name        string
	Type        string // "production", ...: a hook for tests and styles
	TypeLabel   string // "Production"
	Latest      Lozenge
	Deployments List[DeploymentItem]
}

// DeploymentItem is one deployment to an environment.
type DeploymentItem struct {
	Pipeline string
	Number   string // "#118"
	State    Lozenge
	When     Moment
	URL      string
	// Commits counts the commits the deployment brought; CommitsIncomplete
	// says that range is not known to be whole.
	Commits           int
	CommitsIncomplete bool
}

// IncidentItem is one incident.
type IncidentItem struct {
	ID       string // the incident tool's id
	Title    string
	Severity string
	Status   Lozenge
	Opened   Moment
	Resolved Moment
	URL      string
	Suspect  *SuspectView
}

// SuspectView is the deployment that most likely caused an incident.
type SuspectView struct {
	Deployment  string // "Shop deploy #118"
	Environment string
	State       Lozenge
	When        Moment
	URL         string
	// Basis says how Keyline found it: "named by the incident", ...
	Basis string
	// Changes are what the deployment newly brought to its environment,
	// the slowest first; MoreChanges counts those not listed.
	Changes     []SuspectChange
	MoreChanges int
}

// SuspectChange is one change a suspect deployment shipped.
type SuspectChange struct {
	Ref   string // "#42" or a short sha
	Title string
	URL   string
}

// TimelineStep is one step of an issue's way from first commit to
// production and beyond.
type TimelineStep struct {
	// Kind is "commit", "pull-request", "build", "deployment" or "incident".
	Kind   string
	Label  string
	Detail string
	URL    string
	When   Moment
	// Elapsed is the time since the previous step ("3 h"); empty for the first.
	Elapsed string
}

// Linkable reports whether u may become a link: an absolute http or https
// URL. Anything else (javascript:, data:, relative paths) is shown as text.
func Linkable(u string) bool {
	scheme, rest, ok := strings.Cut(u, "://")
	return ok && rest != "" && (strings.EqualFold(scheme, "https") || strings.EqualFold(scheme, "http"))
}

// Plural writes a count with its noun: "1 commit", "3 commits".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// ProjectView is the Jira project page.
type ProjectView struct {
	Page
	ProjectKey  string
	SiteHost    string
	IssuesKnown int
	// Metrics is the project's release metrics for the chosen scope.
	Metrics MetricsView
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
	// JiraConfigureURL is the Jira app's configure page on the same site,
	// where sources are managed; set with Jira when it is connected.
	JiraConfigureURL string
	// Sources is set on the Jira configure page, which only the site's
	// administrators see.
	Sources *SourcesView
}

// SourcesView is the Jira configure page's list of webhook sources. It never
// holds a webhook URL or secret: those are shown once, by the page's script,
// from the answer that created or rotated them.
type SourcesView struct {
	// APIPath is the sources API the page's script calls, e.g. "/jira/api/sources".
	APIPath string
	// Kinds are the kinds a new source may have, in the order offered.
	Kinds []SourceKind
	Items []SourceRow
	// Max is how many sources a site may have.
	Max int
	// MaxName is the longest name, in characters.
	MaxName int
	// MaxDeliveries is how many lines each delivery log keeps.
	MaxDeliveries int
	// SecretKinds are the kinds whose provider issues the signing secret,
	// which an administrator pastes into the page (PagerDuty).
	SecretKinds []string
}

// SourceKind is one kind of source and how to set it up.
type SourceKind struct {
	Value string // "github"
	Label string // "GitHub"
}

// SourceRow is one source as the page lists it.
type SourceRow struct {
	ID        string
	Kind      string
	KindLabel string
	Name      string
	Created   Moment
	// PreviousSecretUntil is when a rotated-out secret stops verifying;
	// unknown when there is none.
	PreviousSecretUntil Moment
	// Rules are the environment rules per type, in the order they are tried.
	Rules []RuleSummary
	// RulesJSON is the rules document, indented, for the editor.
	RulesJSON string
	// TakesSecret is true for a kind whose provider issues the signing
	// secret; SecretProvided says whether it has been set.
	TakesSecret    bool
	SecretProvided bool
}

// RuleSummary is one environment type's globs.
type RuleSummary struct {
	Type  string // "production"
	Label string // "Production"
	Globs []string
}

// SiteLink tells whether the Jira app is installed beside the Confluence one.
type SiteLink struct {
	Connected bool
	SiteURL   string
}

// MacroView is the Confluence macro, live in a page (Macro) or static in an
// export (MacroStatic).
type MacroView struct {
	Page
	View        string // "status", "deployments", "metrics" or "release-notes"
	Projects    []string
	FixVersion  string
	Service     string
	Environment string
	SiteHost    string // the Confluence site
	// Jira is the Jira app on the same site; the macro shows its data, and
	// says how to install it when it is missing.
	Jira SiteLink
	// Notes tell the reader what the macro left out.
	Notes []string
	// SignIn is set for an anonymous reader: the macro shows no data, since
	// Jira cannot say which projects the reader may browse.
	SignIn bool
	// Unavailable is set when Jira could not be asked which projects the
	// reader may browse: the macro shows no data.
	Unavailable bool
	// Denied are the macro's projects the reader may not browse in Jira;
	// nothing of them is shown. Data is shown only when Visible is set.
	Denied      []string
	Visible     bool
	Status      MacroStatusView
	Deployments MacroDeploymentsView
	// Metrics is set for the metrics view, ReleaseNotes for the release
	// notes view.
	Metrics      *MetricsView
	ReleaseNotes *ReleaseNotesView
	// AsOf is when the data was read, for exports: "2 Jan 2026, 15:04 UTC".
	AsOf string
}

// MacroStatusView is the status view: how far each issue has come on its
// way to release.
type MacroStatusView struct {
	Issues []MacroIssueRow
	// Target is where readiness is measured: "production", or the macro's
	// environment. Reached counts the issues whose latest deployment there
	// succeeded.
	Target  string
	Reached int
}

// MacroIssueRow is one issue of the status view.
type MacroIssueRow struct {
	Key string
	URL string // the issue in Jira
	// Issue is what Jira's webhooks told Keyline; nil when they never
	// mentioned the issue.
	Issue *IssueFacts
	// PullRequests counts the linked pull requests by state: "1 open".
	PullRequests    []Lozenge
	LatestBuild     *Lozenge
	LatestBuildName string // "Shop CI #562"
	LatestBuildWhen Moment
	// Environments the issue reached, development first, with the state of
	// the latest deployment there.
	Environments []EnvironmentSummary
	// Reached says the latest deployment to the target (to one of its
	// environments, when the target is a type) succeeded.
	Reached bool
}

// MacroDeploymentsView is the deployments view: recent deployments of the
// macro's projects, per environment, development first.
type MacroDeploymentsView struct {
	Environments []MacroEnvironment
	Total        int
	// PerEnvironment is the most deployments shown per environment.
	PerEnvironment int
}

// MacroEnvironment is one environment's recent deployments, newest first.
type MacroEnvironment struct {
	Name        string
	Type        string // "production", ...: a hook for tests and styles
	TypeLabel   string // "Production"
	Latest      Lozenge
	Deployments []MacroDeploymentItem
}

// MacroDeploymentItem is one deployment with the service it deployed and
// the issues of the macro's projects it shipped.
type MacroDeploymentItem struct {
	DeploymentItem
	Environment string
	Service     string
	Issues      []IssueLink
	// MoreIssues counts the shipped issues not in Issues.
	MoreIssues int
}

// IssueLink is a Jira issue key and where the issue is in Jira.
type IssueLink struct {
	Key string
	URL string
}

// ErrorView is shown inside an iframe when a request cannot be served.
type ErrorView struct {
	Page
	Status  int
	Message string
}
