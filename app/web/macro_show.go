package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/jira"
	"github.com/keyline/keyline/app/release"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
	"github.com/keyline/keyline/templates"
)

// Bounds of the macro's parameters. A macro is one box on a wiki page; the
// bounds keep one page view to a few cheap queries.
const (
	maxMacroProjects = 20
	// maxMacroIssues bounds the status view's issues, listed and from a fix
	// version together.
	maxMacroIssues = 50
	// maxMacroText bounds the service, environment and fix version names
	// (Jira's version names have at most 255 characters).
	maxMacroText = 255
	// macroPerEnvironment is how many recent deployments the deployments
	// view shows per environment: enough to see the trend, few enough that
	// production is not scrolled out of a page.
	macroPerEnvironment = 5
)

// macroParams are the macro's parameters, checked.
type macroParams struct {
	view        string // "status", "deployments", "metrics" or "release-notes"
	projects    []string
	issues      []string
	fixVersion  string
	service     string
	environment string
	// release is the period and benchmark of the metrics and release
	// notes views; fromDeployment and toDeployment, when set, make the
	// release notes those of the deployments to environment after the
	// first number up to the second.
	release                      releaseParams
	fromDeployment, toDeployment int64
}

// parseMacroParams reads the macro's parameters from its URL. Every mistake
// is named in one 400, which the author sees in place of the macro.
func parseMacroParams(q url.Values, now time.Time) (macroParams, error) {
	p := macroParams{
		view:        q.Get("view"),
		fixVersion:  strings.TrimSpace(q.Get("fixVersion")),
		service:     strings.TrimSpace(q.Get("service")),
		environment: strings.TrimSpace(q.Get("environment")),
	}
	var problems []string
	switch p.view {
	case "":
		p.view = "status"
	case "status", "deployments", "metrics", "release-notes":
	default:
		problems = append(problems, fmt.Sprintf("The view %q is not one Keyline knows; choose status, deployments, metrics or release-notes.", p.view))
	}
	if p.view == "metrics" || p.view == "release-notes" {
		rp, err := parseReleaseParams(q, now)
		if err != nil {
			problems = append(problems, strings.TrimPrefix(httpMessage(err), "The metrics' settings need a change: "))
		}
		p.release = rp
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"fromDeployment", &p.fromDeployment}, {"toDeployment", &p.toDeployment}} {
		v := strings.TrimSpace(strings.TrimPrefix(q.Get(f.name), "#"))
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			problems = append(problems, fmt.Sprintf("%s must be a deployment number such as 118.", f.name))
		}
		*f.dst = n
	}
	if (p.fromDeployment > 0) != (p.toDeployment > 0) {
		problems = append(problems, "Name both fromDeployment and toDeployment, or neither.")
	} else if p.fromDeployment > 0 && p.environment == "" {
		problems = append(problems, "Release notes between two deployments need the environment they went to.")
	} else if p.fromDeployment > 0 && p.fromDeployment >= p.toDeployment {
		problems = append(problems, "fromDeployment must be lower than toDeployment.")
	}
	for _, k := range splitList(q.Get("projects")) {
		if !devops.ValidProjectKey(k) {
			problems = append(problems, fmt.Sprintf("%q is not a Jira project key.", k))
		} else if !slices.Contains(p.projects, k) {
			p.projects = append(p.projects, k)
		}
	}
	switch {
	case len(p.projects) == 0 && len(problems) == 0:
		problems = append(problems, "Name at least one Jira project key.")
	case len(p.projects) > maxMacroProjects:
		problems = append(problems, fmt.Sprintf("A macro shows at most %d projects.", maxMacroProjects))
	}
	for _, k := range splitList(q.Get("issues")) {
		switch {
		case !devops.ValidIssueKey(k):
			problems = append(problems, fmt.Sprintf("%q is not a Jira issue key.", k))
		case !slices.Contains(p.projects, devops.ProjectOf(k)):
			// The projects say whose data the macro shows; an issue of
			// another project would widen that unnoticed.
			problems = append(problems, fmt.Sprintf("%s is not in the macro's projects.", k))
		case !slices.Contains(p.issues, k):
			p.issues = append(p.issues, k)
		}
	}
	if len(p.issues) > maxMacroIssues {
		problems = append(problems, fmt.Sprintf("A macro shows at most %d issues.", maxMacroIssues))
	}
	for _, f := range []struct{ name, value string }{
		{"fix version", p.fixVersion}, {"service", p.service}, {"environment", p.environment},
	} {
		if len(f.value) > maxMacroText || strings.ContainsFunc(f.value, unicode.IsControl) {
			problems = append(problems, fmt.Sprintf("The %s must be one line of at most %d characters.", f.name, maxMacroText))
		}
	}
	if p.view == "status" && len(p.issues) == 0 && p.fixVersion == "" {
		problems = append(problems, "The status view needs issue keys or a fix version.")
	}
	if len(problems) > 0 {
		return p, badRequest("The macro's settings need a change: " + strings.Join(problems, " "))
	}
	return p, nil
}

// splitList splits a comma-separated parameter into upper-case items,
// dropping empty ones: authors type "ops, web".
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.ToUpper(strings.TrimSpace(item)); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// showMacro renders the Confluence macro in a page.
func (s *Server) showMacro(c echo.Context) error {
	v, err := s.macroView(c, s.page(s.confluence, "Keyline DevOps"))
	if err != nil {
		return err
	}
	return s.render(c, macroStatusCode(v), templates.Macro(v))
}

// macroStatusCode is 503 when Jira could not say what the reader may see,
// so that nothing caches the data-less answer as the macro; 200 otherwise.
func macroStatusCode(v templates.MacroView) int {
	if v.Unavailable {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

// macroView loads what the macro shows: the data of the Jira app installed
// on the same site as the verified Confluence tenant, never another site's,
// and only of the Jira projects the viewing user may browse there.
func (s *Server) macroView(c echo.Context, page templates.Page) (templates.MacroView, error) {
	p, err := parseMacroParams(c.QueryParams(), s.deps.Now())
	if err != nil {
		return templates.MacroView{}, err
	}
	now := s.deps.Now()
	v := templates.MacroView{
		Page:        page,
		View:        p.view,
		Projects:    p.projects,
		FixVersion:  p.fixVersion,
		Service:     p.service,
		Environment: p.environment,
		SiteHost:    hostOf(identity(c).Tenant.DisplayURL),
		AsOf:        now.UTC().Format("2 Jan 2006, 15:04 UTC"),
	}
	jt, err := s.jiraOnSite(c)
	if err != nil || jt == nil {
		return v, err
	}
	v.Jira = templates.SiteLink{Connected: true, SiteURL: jt.DisplayURL}
	ctx := c.Request().Context()
	// Confluence readers need not see the Jira projects: nothing is read
	// before Jira says which of them this reader may browse.
	p, v.Visible = s.restrictToViewer(ctx, jt, identity(c).AccountID, p, &v)
	if !v.Visible {
		return v, nil
	}
	switch p.view {
	case "metrics":
		return v, s.macroMetrics(ctx, jt, p, &v, now)
	case "release-notes":
		return v, s.macroReleaseNotes(ctx, jt, p, &v, now)
	}
	scope := store.DeploymentScope{Service: p.service, Environment: p.environment}
	if p.view == "deployments" {
		recs, err := s.deps.Store.RecentDeployments(ctx, jt, store.DeploymentFilter{Projects: p.projects,
			DeploymentScope: scope, PerEnvironment: macroPerEnvironment})
		if err != nil {
			return v, fmt.Errorf("macro: recent deployments: %w", err)
		}
		v.Deployments = macroDeployments(recs, jt.DisplayURL, now)
		v.Deployments.PerEnvironment = macroPerEnvironment
		if len(recs) == store.DefaultRecentDeployments {
			v.Notes = append(v.Notes, fmt.Sprintf("Only the %d most recent deployments are shown.", len(recs)))
		}
		return v, nil
	}
	keys, notes, err := s.macroIssueKeys(ctx, jt, p)
	if err != nil {
		return v, err
	}
	v.Notes = append(v.Notes, notes...)
	rs, err := s.deps.Store.IssueReadiness(ctx, jt, keys, scope)
	if err != nil {
		return v, fmt.Errorf("macro: issue readiness: %w", err)
	}
	v.Status = macroStatus(rs, jt.DisplayURL, p.environment, now)
	return v, nil
}

// macroMetrics fills the metrics view: the release figures of the macro's
// projects in the Jira tenant jt.
func (s *Server) macroMetrics(ctx context.Context, jt *tenant.Tenant, p macroParams, v *templates.MacroView, now time.Time) error {
	f := p.release.filter
	f.Projects = p.projects
	f.Latest = maxTimelineDots
	r, err := release.Build(ctx, s.deps.Store, jt, f)
	if err != nil {
		return fmt.Errorf("macro: release metrics: %w", err)
	}
	mv := metricsView(r, p.release, strings.Join(p.projects, ", "), jt.DisplayURL, now)
	v.Metrics = &mv
	return nil
}

// macroReleaseNotes fills the release notes view: the issues of a fix
// version, or those first shipped between two deployments or in a period.
func (s *Server) macroReleaseNotes(ctx context.Context, jt *tenant.Tenant, p macroParams, v *templates.MacroView, now time.Time) error {
	f := p.release.filter
	if p.fixVersion != "" {
		keys, notes, err := s.macroIssueKeys(ctx, jt, p)
		if err != nil {
			return err
		}
		v.Notes = append(v.Notes, notes...)
		issues, err := s.deps.Store.IssuesShipped(ctx, jt, keys, f.Types)
		if err != nil {
			return fmt.Errorf("macro: release notes of a fix version: %w", err)
		}
		rn := releaseNotesView(issues, false, "Fix version "+p.fixVersion, jt.DisplayURL, now)
		v.ReleaseNotes = &rn
		return nil
	}
	sc := store.ReleaseScope{Types: f.Types, Projects: p.projects, Service: f.Service, Environment: f.Environment,
		From: f.Window.From, To: f.Window.To}
	rangeText := "Shipped " + periodText(p.release)
	if p.fromDeployment > 0 {
		from, err := s.numberedDeployment(ctx, jt, p, p.fromDeployment)
		if err != nil {
			return err
		}
		to, err := s.numberedDeployment(ctx, jt, p, p.toDeployment)
		if err != nil {
			return err
		}
		if !from.FinishedAt.Before(to.FinishedAt) || from.Type != to.Type {
			return badRequest(fmt.Sprintf("Deployment #%d did not finish before #%d in %s.", p.fromDeployment, p.toDeployment, p.environment))
		}
		// Issues first shipped after the first deployment, up to and
		// including the second.
		sc.Types, sc.Environment = []devops.EnvironmentType{to.Type}, p.environment
		sc.From, sc.To = from.FinishedAt.Add(time.Microsecond), to.FinishedAt.Add(time.Microsecond)
		rangeText = fmt.Sprintf("Shipped to %s after %s and up to %s", to.Environment,
			pipelineRun(cmp.Or(from.Service, from.PipelineName), "", from.Sequence),
			pipelineRun(cmp.Or(to.Service, to.PipelineName), "", to.Sequence))
	}
	issues, more, err := s.deps.Store.ShippedIssues(ctx, jt, sc, maxMacroIssues)
	if err != nil {
		return fmt.Errorf("macro: release notes: %w", err)
	}
	rn := releaseNotesView(issues, more, rangeText, jt.DisplayURL, now)
	v.ReleaseNotes = &rn
	if more {
		v.Notes = append(v.Notes, fmt.Sprintf("Only the first %d shipped issues are listed.", maxMacroIssues))
	}
	return nil
}

// numberedDeployment finds the one successful deployment numbered seq to
// the macro's environment (and service).
func (s *Server) numberedDeployment(ctx context.Context, jt *tenant.Tenant, p macroParams, seq int64) (*store.ReleaseDeployment, error) {
	ds, err := s.deps.Store.DeploymentsNumbered(ctx, jt, p.environment, p.service, seq)
	if err != nil {
		return nil, fmt.Errorf("macro: deployment #%d: %w", seq, err)
	}
	switch {
	case len(ds) == 0:
		return nil, badRequest(fmt.Sprintf("No successful deployment #%d to %s is known.", seq, p.environment))
	case len(ds) > 1:
		return nil, badRequest(fmt.Sprintf("Several pipelines have a deployment #%d to %s; name the service too.", seq, p.environment))
	}
	return &ds[0], nil
}

// httpMessage is the message of an HTTP error, or its text.
func httpMessage(err error) string {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return fmt.Sprint(he.Message)
	}
	return err.Error()
}

// jiraOnSite returns the Jira app's tenant on the verified Confluence
// tenant's site, or nil when the Jira app is not installed there. Only this
// tenant's data may reach the macro.
func (s *Server) jiraOnSite(c echo.Context) (*tenant.Tenant, error) {
	ts, err := s.deps.Store.TenantsOnHost(c.Request().Context(), identity(c).Tenant, "jira")
	if err != nil {
		return nil, fmt.Errorf("find the Jira app on this site: %w", err)
	}
	for i := range ts {
		if ts[i].Installed && ts[i].AppKey == s.jira.key {
			return &ts[i], nil
		}
	}
	return nil, nil
}

// restrictToViewer keeps of p only the projects the viewing user may browse
// in the site's Jira, and only the listed issues of those projects; v names
// the projects left out. An anonymous viewer and a permission check that
// fails leave nothing. It reports whether anything is left to show.
func (s *Server) restrictToViewer(ctx context.Context, jt *tenant.Tenant, accountID string, p macroParams, v *templates.MacroView) (macroParams, bool) {
	if accountID == "" {
		v.SignIn = true
		return p, false
	}
	may, err := s.deps.Jira.CanBrowseProjects(ctx, jt, accountID, p.projects)
	if err != nil {
		s.log.Warn("jira: project permission check for the macro failed", slog.Int64("tenant_id", jt.ID), slog.String("error", err.Error()))
		v.Unavailable = true
		return p, false
	}
	var allowed, issues []string
	for _, k := range p.projects {
		if may[k] {
			allowed = append(allowed, k)
		} else {
			v.Denied = append(v.Denied, k)
		}
	}
	for _, k := range p.issues {
		if slices.Contains(allowed, devops.ProjectOf(k)) {
			issues = append(issues, k)
		}
	}
	p.projects, p.issues = allowed, issues
	if len(allowed) == 0 || (p.view == "status" && len(issues) == 0 && p.fixVersion == "") {
		return p, false
	}
	return p, true
}

// macroIssueKeys is the status view's issues: those listed, then those of
// the fix version, which Jira is asked for as the Jira app.
func (s *Server) macroIssueKeys(ctx context.Context, jt *tenant.Tenant, p macroParams) ([]string, []string, error) {
	keys := slices.Clone(p.issues)
	if p.fixVersion == "" {
		return keys, nil, nil
	}
	var notes []string
	inVersion, more, err := s.deps.Jira.IssuesInFixVersion(ctx, jt, p.projects, p.fixVersion, maxMacroIssues)
	switch {
	case errors.Is(err, jira.ErrBadRequest):
		return nil, nil, badRequest(fmt.Sprintf("Jira has no fix version %q in %s.", p.fixVersion, strings.Join(p.projects, ", ")))
	case err != nil:
		s.log.Warn("jira: fix version search for the macro failed", slog.Int64("tenant_id", jt.ID), slog.String("error", err.Error()))
		return nil, nil, echo.NewHTTPError(http.StatusBadGateway, "Jira could not be asked for the issues of the fix version; try again shortly")
	}
	if len(inVersion) == 0 {
		notes = append(notes, fmt.Sprintf("Fix version %s has no issues in %s.", p.fixVersion, strings.Join(p.projects, ", ")))
	}
	for _, k := range inVersion {
		// Jira was asked for the given projects only; a key of another
		// project is never shown all the same.
		if devops.ValidIssueKey(k) && slices.Contains(p.projects, devops.ProjectOf(k)) && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if more || len(keys) > maxMacroIssues {
		keys = keys[:min(len(keys), maxMacroIssues)]
		notes = append(notes, fmt.Sprintf("Fix version %s has more issues than a macro shows; the first %d are listed.", p.fixVersion, maxMacroIssues))
	}
	return keys, notes, nil
}

// issueURL is where the issue is seen in Jira.
func issueURL(jiraURL, key string) string {
	return safeURL(strings.TrimSuffix(jiraURL, "/") + "/browse/" + url.PathEscape(key))
}

// macroStatus turns the issues' readiness into rows. Readiness is measured
// at the macro's environment, or at production when it names none.
func macroStatus(rs []store.IssueReadiness, jiraURL, environment string, now time.Time) templates.MacroStatusView {
	v := templates.MacroStatusView{Target: cmp.Or(environment, string(devops.EnvironmentProduction))}
	for _, r := range rs {
		row := templates.MacroIssueRow{Key: r.IssueKey, URL: issueURL(jiraURL, r.IssueKey)}
		if is := r.Issue; is != nil {
			row.Issue = &templates.IssueFacts{Summary: is.Summary, StatusName: is.StatusName, StatusCategory: is.StatusCategory, ProjectKey: is.ProjectKey}
		}
		for _, st := range pullRequestOrder {
			if n := r.PullRequests[st]; n > 0 {
				l := pullRequestLozenge(st)
				l.Label = strconv.Itoa(n) + " " + strings.ToLower(l.Label)
				row.PullRequests = append(row.PullRequests, l)
			}
		}
		if b := r.LatestBuild; b != nil {
			l := buildLozenge(b.State)
			row.LatestBuild = &l
			row.LatestBuildName = pipelineRun(b.PipelineName, b.PipelineID, b.BuildNumber)
			row.LatestBuildWhen = moment(buildTime(b.Build), now)
		}
		for _, g := range groupEnvironments(r.Environments) {
			d := g.latest
			row.Environments = append(row.Environments, templates.EnvironmentSummary{
				Name: g.name, Type: string(envType(d.EnvironmentType)), TypeLabel: environmentLabel(d.EnvironmentType),
				State: deploymentLozenge(d.State),
			})
			// The store already kept only the macro's environment when it
			// names one, so any success there counts.
			if d.State == devops.DeploymentSuccessful && (environment != "" || d.EnvironmentType == devops.EnvironmentProduction) {
				row.Reached = true
			}
		}
		if row.Reached {
			v.Reached++
		}
		v.Issues = append(v.Issues, row)
	}
	return v
}

// pullRequestOrder is the order in which pull request counts are shown, as
// in the issue panel's summary.
var pullRequestOrder = []devops.PullRequestState{devops.PullRequestOpen, devops.PullRequestDraft,
	devops.PullRequestMerged, devops.PullRequestDeclined, devops.PullRequestUnknown}

// macroDeployments groups recent deployments by environment the way the
// issue panel does, keeping the store's newest-first order within each.
func macroDeployments(recs []store.RecentDeployment, jiraURL string, now time.Time) templates.MacroDeploymentsView {
	v := templates.MacroDeploymentsView{Total: len(recs)}
	plain := make([]store.DeploymentRecord, len(recs))
	byID := make(map[string]*store.RecentDeployment, len(recs))
	for i := range recs {
		plain[i] = recs[i].DeploymentRecord
		byID[recs[i].ID] = &recs[i]
	}
	for _, g := range groupEnvironments(plain) {
		env := templates.MacroEnvironment{
			Name: g.name, Type: string(envType(g.latest.EnvironmentType)),
			TypeLabel: environmentLabel(g.latest.EnvironmentType), Latest: deploymentLozenge(g.latest.State),
		}
		for _, d := range g.recs {
			rec := byID[d.ID]
			it := templates.MacroDeploymentItem{
				DeploymentItem: deploymentItem(d, now),
				Environment:    g.name,
				Service:        d.Service,
				MoreIssues:     max(rec.IssueCount-len(rec.IssueKeys), 0),
			}
			for _, k := range rec.IssueKeys {
				it.Issues = append(it.Issues, templates.IssueLink{Key: k, URL: issueURL(jiraURL, k)})
			}
			env.Deployments = append(env.Deployments, it)
		}
		v.Environments = append(v.Environments, env)
	}
	return v
}
