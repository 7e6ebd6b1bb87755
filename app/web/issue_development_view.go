package web

import (
	"cmp"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/templates"
)

// How much of each list the panel shows before its expander. Five rows keep
// the panel about one screen high inside Jira's issue view; three per
// environment because environments stack.
const (
	foldItems             = 5
	foldEnvironment       = 3
	timelineIncidents     = 5
	shortSHALen           = 7
	maxCommitMessageBytes = 200
)

// developmentView turns what the store linked to an issue into the panel's
// view: counts, states, relative times and the timeline, all computed
// against now. It is pure so tests can pin every figure.
func developmentView(dev *store.Development, now time.Time) templates.DevelopmentView {
	var v templates.DevelopmentView
	if dev == nil {
		return v
	}
	for _, n := range dev.Totals {
		v.Total += n
	}
	v.Branches = branchList(dev, now)
	v.Commits = commitList(dev, now)
	v.PullRequests = pullRequestList(dev, now)
	v.Builds = buildList(dev, now)
	groups := groupEnvironments(dev.Deployments)
	v.Environments = environments(groups, now)
	v.DeploymentsTotal = max(dev.Totals[store.EntityDeployment], len(dev.Deployments))
	v.DeploymentsOmitted = v.DeploymentsTotal - len(dev.Deployments)
	v.Incidents = incidentList(dev, now)
	v.Summary = summary(dev, v)
	v.Timeline = timeline(dev, groups, now)
	return v
}

// list wraps loaded items with the fold and the full count; total is never
// less than what was loaded, so a count that lags behind does not go
// negative.
func list[T any](items []T, total int) templates.List[T] {
	return templates.List[T]{Items: items, Visible: foldItems, Total: max(total, len(items))}
}

func branchList(dev *store.Development, now time.Time) templates.List[templates.BranchItem] {
	items := make([]templates.BranchItem, 0, len(dev.Branches))
	for _, b := range dev.Branches {
		items = append(items, templates.BranchItem{
			Name:       b.Name,
			URL:        safeURL(b.URL),
			LastCommit: shortSHA(b.LastCommitSHA),
			Deleted:    b.Deleted,
			Updated:    moment(b.UpdatedAt, now),
		})
	}
	return list(items, dev.Totals[store.EntityBranch])
}

func commitList(dev *store.Development, now time.Time) templates.List[templates.CommitItem] {
	items := make([]templates.CommitItem, 0, len(dev.Commits))
	for _, c := range dev.Commits {
		items = append(items, templates.CommitItem{
			SHA:      c.SHA,
			ShortSHA: shortSHA(c.SHA),
			Message:  firstLine(c.Message),
			Author:   personName(c.Author),
			Authored: moment(c.AuthoredAt, now),
			URL:      safeURL(c.URL),
			Merge:    c.Merge,
		})
	}
	return list(items, dev.Totals[store.EntityCommit])
}

func pullRequestList(dev *store.Development, now time.Time) templates.List[templates.PullRequestItem] {
	items := make([]templates.PullRequestItem, 0, len(dev.PullRequests))
	for _, p := range dev.PullRequests {
		it := templates.PullRequestItem{
			Number:            number(p.Number),
			Title:             p.Title,
			URL:               safeURL(p.URL),
			State:             pullRequestLozenge(p.State),
			SourceBranch:      p.SourceBranch,
			DestinationBranch: p.DestinationBranch,
			Author:            personName(p.Author),
			Updated:           moment(firstKnown(p.UpdatedAt, p.MergedAt, p.ClosedAt, p.CreatedAt), now),
		}
		approved := 0
		for _, r := range p.Reviewers {
			if r.Approval == devops.ApprovalApproved {
				approved++
			}
			it.Reviewers = append(it.Reviewers, templates.ReviewerItem{Name: personName(r.Person), Verdict: approvalLozenge(r.Approval)})
		}
		if len(p.Reviewers) > 0 {
			it.Approvals = strconv.Itoa(approved) + " of " + strconv.Itoa(len(p.Reviewers)) + " approved"
		}
		items = append(items, it)
	}
	return list(items, dev.Totals[store.EntityPullRequest])
}

func buildList(dev *store.Development, now time.Time) templates.List[templates.BuildItem] {
	items := make([]templates.BuildItem, 0, len(dev.Builds))
	for _, b := range dev.Builds {
		it := templates.BuildItem{
			Pipeline: cmp.Or(b.PipelineName, b.PipelineID),
			Number:   number(b.BuildNumber),
			State:    buildLozenge(b.State),
			When:     moment(buildTime(b.Build), now),
			URL:      safeURL(b.URL),
		}
		if b.Tests != nil {
			it.HasTests, it.TestsPassed, it.TestsFailed = true, b.Tests.Passed, b.Tests.Failed
		}
		items = append(items, it)
	}
	return list(items, dev.Totals[store.EntityBuild])
}

// environmentOrder ranks environment types the way work flows towards
// production; unmapped environments come last, as the least known.
func environmentOrder(t devops.EnvironmentType) int {
	switch t {
	case devops.EnvironmentDevelopment:
		return 0
	case devops.EnvironmentTesting:
		return 1
	case devops.EnvironmentStaging:
		return 2
	case devops.EnvironmentProduction:
		return 3
	}
	return 4
}

// envGroup is one environment's deployments, pointing into the store's list
// (the records are large, and the panel runs this for every view).
type envGroup struct {
	name   string
	latest *store.DeploymentRecord
	recs   []*store.DeploymentRecord
}

// groupEnvironments groups deployments by environment name, as people know
// environments, keeping the store's newest-first order inside each group,
// and orders the groups development → testing → staging → production →
// unmapped, by name within a type. An environment's type is that of its
// latest deployment, since a changed mapping rule applies from then on.
func groupEnvironments(deps []store.DeploymentRecord) []envGroup {
	var groups []envGroup
	index := map[string]int{}
	for k := range deps {
		d := &deps[k]
		name := cmp.Or(d.EnvironmentName, d.EnvironmentID)
		i, ok := index[name]
		if !ok {
			i = len(groups)
			index[name] = i
			groups = append(groups, envGroup{name: name, latest: d})
		}
		g := &groups[i]
		g.recs = append(g.recs, d)
		if newerDeployment(d, g.latest) {
			g.latest = d
		}
	}
	slices.SortStableFunc(groups, func(a, b envGroup) int {
		return cmp.Or(cmp.Compare(environmentOrder(a.latest.EnvironmentType), environmentOrder(b.latest.EnvironmentType)),
			cmp.Compare(a.name, b.name))
	})
	return groups
}

// deploymentItem is one deployment as the panel and the macro list it.
func deploymentItem(d *store.DeploymentRecord, now time.Time) templates.DeploymentItem {
	return templates.DeploymentItem{
		Pipeline:          cmp.Or(d.PipelineName, d.PipelineID),
		Number:            number(d.SequenceNumber),
		State:             deploymentLozenge(d.State),
		When:              moment(deploymentTime(d.Deployment), now),
		URL:               safeURL(d.URL),
		Commits:           d.CommitCount,
		CommitsIncomplete: !d.CommitsComplete,
	}
}

func environments(groups []envGroup, now time.Time) []templates.EnvironmentView {
	out := make([]templates.EnvironmentView, 0, len(groups))
	for _, g := range groups {
		items := make([]templates.DeploymentItem, 0, len(g.recs))
		for _, d := range g.recs {
			items = append(items, deploymentItem(d, now))
		}
		out = append(out, templates.EnvironmentView{
			Name:        g.name,
			Type:        string(envType(g.latest.EnvironmentType)),
			TypeLabel:   environmentLabel(g.latest.EnvironmentType),
			Latest:      deploymentLozenge(g.latest.State),
			Deployments: templates.List[templates.DeploymentItem]{Items: items, Visible: foldEnvironment, Total: len(items)},
		})
	}
	return out
}

func incidentList(dev *store.Development, now time.Time) templates.List[templates.IncidentItem] {
	items := make([]templates.IncidentItem, 0, len(dev.Incidents))
	for _, in := range dev.Incidents {
		it := templates.IncidentItem{
			ID:       in.Incident.SourceID,
			Title:    in.Title,
			Severity: in.Severity,
			Status:   incidentLozenge(in.Status),
			Opened:   moment(in.OpenedAt, now),
			Resolved: moment(in.ResolvedAt, now),
			URL:      safeURL(in.URL),
		}
		if d, ok := dev.Suspects[in.SuspectDeploymentID]; ok && in.SuspectDeploymentID != "" {
			it.Suspect = &templates.SuspectView{
				Deployment:  pipelineRun(d.PipelineName, d.PipelineID, d.SequenceNumber),
				Environment: cmp.Or(d.EnvironmentName, d.EnvironmentID),
				State:       deploymentLozenge(d.State),
				When:        moment(deploymentTime(d.Deployment), now),
				URL:         safeURL(d.URL),
				Basis:       suspectBasis(in.SuspectBasis, in.Service),
			}
			for _, ch := range dev.SuspectChanges[in.SuspectDeploymentID] {
				ref := shortSHA(ch.ID)
				if ch.Kind == store.ChangePullRequest {
					ref = number(ch.Number)
				}
				it.Suspect.Changes = append(it.Suspect.Changes, templates.SuspectChange{Ref: ref, Title: firstLine(ch.Title), URL: safeURL(ch.URL)})
			}
			it.Suspect.MoreChanges = max(dev.SuspectChangeCounts[in.SuspectDeploymentID]-len(it.Suspect.Changes), 0)
		}
		items = append(items, it)
	}
	return list(items, dev.Totals[store.EntityIncident])
}

// suspectBasis says in words how a suspect deployment was found.
func suspectBasis(basis, service string) string {
	switch basis {
	case store.SuspectExplicit:
		return "named by the incident"
	case store.SuspectCommit:
		return "shipped the incident's root-cause commit"
	case store.SuspectService:
		if service != "" {
			return "last production deployment of " + service + " before the incident opened"
		}
		return "last production deployment before the incident opened"
	}
	return ""
}

// summary condenses the lists. Counts come from the store's totals, which
// include entities beyond the loaded lists; states come from what was
// loaded, the newest of each kind.
func summary(dev *store.Development, v templates.DevelopmentView) templates.SummaryView {
	var s templates.SummaryView
	if n := v.Branches.Total; n > 0 {
		s.Branches = templates.Plural(n, "branch", "branches")
	}
	if n := v.Commits.Total; n > 0 {
		s.Commits = templates.Plural(n, "commit", "commits")
	}
	if n := v.PullRequests.Total; n > 0 {
		s.PullRequests = templates.Plural(n, "pull request", "pull requests")
		counts := map[devops.PullRequestState]int{}
		for _, p := range dev.PullRequests {
			counts[p.State]++
		}
		for _, st := range []devops.PullRequestState{devops.PullRequestOpen, devops.PullRequestDraft, devops.PullRequestMerged,
			devops.PullRequestDeclined, devops.PullRequestUnknown} {
			if counts[st] > 0 {
				l := pullRequestLozenge(st)
				l.Label = strconv.Itoa(counts[st]) + " " + strings.ToLower(l.Label)
				s.PullRequestStates = append(s.PullRequestStates, l)
			}
		}
	}
	if len(dev.Builds) > 0 {
		latest := dev.Builds[0]
		for _, b := range dev.Builds[1:] {
			if buildTime(b.Build).After(buildTime(latest.Build)) {
				latest = b
			}
		}
		l := buildLozenge(latest.State)
		s.LatestBuild = &l
		s.LatestBuildName = pipelineRun(latest.PipelineName, latest.PipelineID, latest.BuildNumber)
	}
	for _, e := range v.Environments {
		s.Environments = append(s.Environments, templates.EnvironmentSummary{Name: e.Name, Type: e.Type, TypeLabel: e.TypeLabel, State: e.Latest})
	}
	if v.Incidents.Total > 0 {
		for _, in := range dev.Incidents {
			if in.Status == devops.IncidentOpen {
				s.OpenIncidents++
			}
		}
		s.Incidents = "No open incidents"
		if s.OpenIncidents > 0 {
			s.Incidents = templates.Plural(s.OpenIncidents, "open incident", "open incidents")
		}
	}
	return s
}

// step is a timeline step before formatting.
type step struct {
	at   time.Time
	view templates.TimelineStep
}

// timeline lays out the way to production: first commit, pull
// request opened and merged, first successful build, each environment's
// first successful deployment, then incidents. Steps are ordered by time,
// keeping that order for equal times, and each says how long after the
// previous one it came. Steps without a known time are left out.
func timeline(dev *store.Development, groups []envGroup, now time.Time) []templates.TimelineStep {
	var steps []step
	add := func(at time.Time, kind, label, detail, url string) {
		if !at.IsZero() {
			steps = append(steps, step{at: at, view: templates.TimelineStep{Kind: kind, Label: label, Detail: detail, URL: safeURL(url)}})
		}
	}

	// First commit: the earliest loaded commit, or a branch's earliest
	// commit, which survives squash merges and long commit lists.
	var first time.Time
	var firstDetail, firstURL string
	for _, c := range dev.Commits {
		if earlier(c.AuthoredAt, first) {
			first, firstDetail, firstURL = c.AuthoredAt, shortSHA(c.SHA)+" "+firstLine(c.Message), c.URL
		}
	}
	for _, b := range dev.Branches {
		if earlier(b.FirstCommitAt, first) {
			first, firstDetail, firstURL = b.FirstCommitAt, "on "+b.Name, b.URL
		}
	}
	add(first, "commit", "First commit", firstDetail, firstURL)

	var opened, merged *store.PullRequestRecord
	var openedAt, mergedAt time.Time
	for i := range dev.PullRequests {
		p := &dev.PullRequests[i]
		if earlier(p.CreatedAt, openedAt) {
			opened, openedAt = p, p.CreatedAt
		}
		if earlier(p.MergedAt, mergedAt) {
			merged, mergedAt = p, p.MergedAt
		}
	}
	if opened != nil {
		add(openedAt, "pull-request", strings.TrimSpace("Pull request "+number(opened.Number)+" opened"), opened.Title, opened.URL)
	}
	if merged != nil {
		add(mergedAt, "pull-request", strings.TrimSpace("Pull request "+number(merged.Number)+" merged"), merged.Title, merged.URL)
	}

	var build *store.BuildRecord
	var builtAt time.Time
	for i := range dev.Builds {
		b := &dev.Builds[i]
		if b.State == devops.BuildSuccessful && earlier(buildTime(b.Build), builtAt) {
			build, builtAt = b, buildTime(b.Build)
		}
	}
	if build != nil {
		add(builtAt, "build", "First successful build", pipelineRun(build.PipelineName, build.PipelineID, build.BuildNumber), build.URL)
	}

	for _, g := range groups {
		var reached *store.DeploymentRecord
		var reachedAt time.Time
		for _, d := range g.recs {
			if d.State == devops.DeploymentSuccessful && earlier(deploymentTime(d.Deployment), reachedAt) {
				reached, reachedAt = d, deploymentTime(d.Deployment)
			}
		}
		if reached != nil {
			add(reachedAt, "deployment", "Reached "+g.name,
				environmentLabel(g.latest.EnvironmentType)+" · "+pipelineRun(reached.PipelineName, reached.PipelineID, reached.SequenceNumber),
				reached.URL)
		}
	}

	// Incidents, earliest first and at most a few: the list below has them all.
	ins := slices.Clone(dev.Incidents)
	slices.SortStableFunc(ins, func(a, b store.IncidentRecord) int { return a.OpenedAt.Compare(b.OpenedAt) })
	n := 0
	for _, in := range ins {
		if in.OpenedAt.IsZero() || n == timelineIncidents {
			continue
		}
		n++
		add(in.OpenedAt, "incident", "Incident opened", in.Title, in.URL)
	}

	slices.SortStableFunc(steps, func(a, b step) int { return a.at.Compare(b.at) })
	out := make([]templates.TimelineStep, len(steps))
	for i, s := range steps {
		out[i] = s.view
		out[i].When = moment(s.at, now)
		if i > 0 {
			out[i].Elapsed = humanDuration(s.at.Sub(steps[i-1].at))
		}
	}
	return out
}

// earlier reports whether t is known and before best, or best is unknown.
func earlier(t, best time.Time) bool {
	return !t.IsZero() && (best.IsZero() || t.Before(best))
}

// buildTime is when a build last changed: finished, else updated, else started.
func buildTime(b devops.Build) time.Time { return firstKnown(b.FinishedAt, b.UpdatedAt, b.StartedAt) }

// deploymentTime is when a deployment last changed, as buildTime.
func deploymentTime(d devops.Deployment) time.Time {
	return firstKnown(d.FinishedAt, d.UpdatedAt, d.StartedAt)
}

// newerDeployment reports whether a is more recent than b: by its last
// update, then by sequence number, which grows within a pipeline and
// environment.
func newerDeployment(a, b *store.DeploymentRecord) bool {
	at, bt := firstKnown(a.UpdatedAt, a.FinishedAt, a.StartedAt), firstKnown(b.UpdatedAt, b.FinishedAt, b.StartedAt)
	if !at.Equal(bt) {
		return at.After(bt)
	}
	return a.SequenceNumber > b.SequenceNumber
}

func firstKnown(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func envType(t devops.EnvironmentType) devops.EnvironmentType {
	if t.Valid() {
		return t
	}
	return devops.EnvironmentUnmapped
}

func environmentLabel(t devops.EnvironmentType) string {
	switch envType(t) {
	case devops.EnvironmentDevelopment:
		return "Development"
	case devops.EnvironmentTesting:
		return "Testing"
	case devops.EnvironmentStaging:
		return "Staging"
	case devops.EnvironmentProduction:
		return "Production"
	}
	return "Unmapped"
}

func buildLozenge(s devops.BuildState) templates.Lozenge {
	switch s {
	case devops.BuildSuccessful:
		return templates.Lozenge{Label: "Successful", Tone: templates.ToneSuccess}
	case devops.BuildFailed:
		return templates.Lozenge{Label: "Failed", Tone: templates.ToneFailed}
	case devops.BuildInProgress:
		return templates.Lozenge{Label: "In progress", Tone: templates.ToneInProgress}
	case devops.BuildPending:
		return templates.Lozenge{Label: "Pending", Tone: templates.ToneNeutral}
	case devops.BuildCancelled:
		return templates.Lozenge{Label: "Cancelled", Tone: templates.ToneNeutral}
	}
	return templates.Lozenge{Label: "Unknown", Tone: templates.ToneNeutral}
}

func deploymentLozenge(s devops.DeploymentState) templates.Lozenge {
	switch s {
	case devops.DeploymentSuccessful:
		return templates.Lozenge{Label: "Successful", Tone: templates.ToneSuccess}
	case devops.DeploymentFailed:
		return templates.Lozenge{Label: "Failed", Tone: templates.ToneFailed}
	case devops.DeploymentInProgress:
		return templates.Lozenge{Label: "In progress", Tone: templates.ToneInProgress}
	case devops.DeploymentPending:
		return templates.Lozenge{Label: "Pending", Tone: templates.ToneNeutral}
	case devops.DeploymentCancelled:
		return templates.Lozenge{Label: "Cancelled", Tone: templates.ToneNeutral}
	case devops.DeploymentRolledBack:
		return templates.Lozenge{Label: "Rolled back", Tone: templates.ToneMoved}
	}
	return templates.Lozenge{Label: "Unknown", Tone: templates.ToneNeutral}
}

func pullRequestLozenge(s devops.PullRequestState) templates.Lozenge {
	switch s {
	case devops.PullRequestOpen:
		return templates.Lozenge{Label: "Open", Tone: templates.ToneInProgress}
	case devops.PullRequestDraft:
		return templates.Lozenge{Label: "Draft", Tone: templates.ToneNeutral}
	case devops.PullRequestMerged:
		return templates.Lozenge{Label: "Merged", Tone: templates.ToneSuccess}
	case devops.PullRequestDeclined:
		return templates.Lozenge{Label: "Declined", Tone: templates.ToneFailed}
	}
	return templates.Lozenge{Label: "Unknown", Tone: templates.ToneNeutral}
}

func incidentLozenge(s devops.IncidentStatus) templates.Lozenge {
	switch s {
	case devops.IncidentOpen:
		return templates.Lozenge{Label: "Open", Tone: templates.ToneFailed}
	case devops.IncidentResolved:
		return templates.Lozenge{Label: "Resolved", Tone: templates.ToneSuccess}
	}
	return templates.Lozenge{Label: "Unknown", Tone: templates.ToneNeutral}
}

func approvalLozenge(a devops.ApprovalStatus) templates.Lozenge {
	switch a {
	case devops.ApprovalApproved:
		return templates.Lozenge{Label: "Approved", Tone: templates.ToneSuccess}
	case devops.ApprovalNeedsWork:
		return templates.Lozenge{Label: "Needs work", Tone: templates.ToneMoved}
	}
	return templates.Lozenge{Label: "Not approved", Tone: templates.ToneNeutral}
}

// moment formats t for the page: relative to now for reading, exact in UTC
// for the tooltip. Times more than 30 days old read as a date, since "5 w
// ago" is harder to place than "3 Oct".
func moment(t time.Time, now time.Time) templates.Moment {
	if t.IsZero() {
		return templates.Moment{}
	}
	t = t.UTC()
	m := templates.Moment{ISO: t.Format(time.RFC3339), Exact: t.Format("2 Jan 2006, 15:04 UTC")}
	d := now.Sub(t)
	switch {
	case d < -time.Minute:
		m.Relative = "in " + humanDuration(-d)
	case d < time.Minute:
		m.Relative = "just now"
	case d < 30*24*time.Hour:
		m.Relative = humanDuration(d) + " ago"
	case t.Year() == now.UTC().Year():
		m.Relative = t.Format("2 Jan")
	default:
		m.Relative = t.Format("2 Jan 2006")
	}
	return m
}

// humanDuration writes d in the largest unit that fits, rounded: "45 min",
// "3 h", "2 d", "5 w". Under a minute is "< 1 min".
func humanDuration(d time.Duration) string {
	d = d.Abs()
	round := func(unit time.Duration) int { return int(math.Round(float64(d) / float64(unit))) }
	const day, week = 24 * time.Hour, 7 * 24 * time.Hour
	switch {
	case d < 30*time.Second:
		return "< 1 min"
	case round(time.Minute) < 60:
		return strconv.Itoa(round(time.Minute)) + " min"
	case round(time.Hour) < 24:
		return strconv.Itoa(round(time.Hour)) + " h"
	case round(day) < 14:
		return strconv.Itoa(round(day)) + " d"
	}
	return strconv.Itoa(round(week)) + " w"
}

// firstLine is a commit message's subject, shortened for one row.
func firstLine(msg string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
	return devops.Excerpt(strings.TrimSpace(line), maxCommitMessageBytes)
}

func shortSHA(sha string) string {
	if len(sha) > shortSHALen {
		return sha[:shortSHALen]
	}
	return sha
}

// number writes a pull request, build or deployment number as "#42"; zero
// means none.
func number(n int64) string {
	if n <= 0 {
		return ""
	}
	return "#" + strconv.FormatInt(n, 10)
}

// pipelineRun names one run of a pipeline: "Shop CI #562".
func pipelineRun(name, id string, n int64) string {
	return strings.TrimSpace(cmp.Or(name, id) + " " + number(n))
}

func personName(p devops.Person) string { return cmp.Or(p.Name, p.Username) }

// safeURL keeps only absolute http and https URLs. The store already drops
// anything else at ingestion; this keeps a link in the panel from ever
// depending on that alone.
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return raw
}
