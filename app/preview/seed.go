package preview

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// The demo site's client keys: fixed, so a demo started again on the same
// data directory finds its site.
const (
	DemoJiraClientKey       = "6b1f3c2e-4d5a-4e6f-8a7b-9c0d1e2f3a01"
	DemoConfluenceClientKey = "6b1f3c2e-4d5a-4e6f-8a7b-9c0d1e2f3a02"
)

// DefaultHistoryDays is how far back the demo history reaches.
const DefaultHistoryDays = 120

// SeedOptions describe the demo site Seed creates.
type SeedOptions struct {
	// AppKeyPrefix is Keyline's KEYLINE_APP_KEY.
	AppKeyPrefix string
	// SiteURL is the demo site's URL: the origin of the preview host, which
	// plays the site, e.g. "http://127.0.0.1:8080". It must be a loopback
	// address (see New).
	SiteURL string
	// Now ends the history; zero means time.Now().
	Now time.Time
	// Days is the length of the history; zero means DefaultHistoryDays.
	Days int
}

// Demo is a seeded demo site.
type Demo struct {
	Jira, Confluence *tenant.Tenant
	Projects         []Project
	// Issues are every issue of the site, Featured first.
	Issues []Issue
	// Featured has the fullest story: a failed then fixed build, a merged
	// pull request, all three environments, and an incident.
	Featured string
	// Quiet has no development at all: the panel's empty state.
	Quiet string
	// Reused is true when the site already existed and only its URL was updated.
	Reused bool
	// Events counts the deliveries recorded.
	Events int
}

// HostOptions are Options for a preview host of this demo site.
func (d *Demo) HostOptions(st IssueStore, appKeyPrefix, keylineURL string) Options {
	return Options{KeylineURL: keylineURL, AppKeyPrefix: appKeyPrefix, Jira: d.Jira, Confluence: d.Confluence,
		Store: st, Issues: d.Issues, Projects: d.Projects}
}

// Seed creates the demo site in st: a Jira and a Confluence tenant on one
// site, three projects with their issues and status history, and months of
// DevOps history for one service each (pushes, branches, pull requests,
// builds, deployments to development, staging and production including a
// failed one and a rollback, and incidents with their suspect deployments).
// The history is the same on every run, relative to o.Now.
//
// When the site already exists (a demo restarted on its data directory),
// Seed only points its tenants at o.SiteURL and returns it with Reused set.
func Seed(ctx context.Context, st *store.Store, o SeedOptions) (*Demo, error) {
	if o.AppKeyPrefix == "" {
		return nil, errors.New("preview: seed: the app key prefix is required")
	}
	if err := requireLoopback(o.SiteURL); err != nil {
		return nil, fmt.Errorf("preview: seed: %w", err)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Days <= 0 {
		o.Days = DefaultHistoryDays
	}
	site := strings.TrimRight(o.SiteURL, "/")
	jiraKey, confKey := o.AppKeyPrefix+".jira", o.AppKeyPrefix+".confluence"

	d := &Demo{}
	secrets := map[string][]byte{}
	for _, k := range []struct{ app, client string }{{jiraKey, DemoJiraClientKey}, {confKey, DemoConfluenceClientKey}} {
		t, err := st.TenantByClientKey(ctx, k.app, k.client)
		switch {
		case err == nil && t.Installed:
			secrets[k.app] = t.SharedSecret
			d.Reused = true
		case err == nil || errors.Is(err, tenant.ErrNotFound):
			s, err := newSecret()
			if err != nil {
				return nil, err
			}
			secrets[k.app] = s
		default:
			return nil, fmt.Errorf("preview: seed: %w", err)
		}
	}
	var err error
	d.Jira, err = st.UpsertTenant(ctx, tenant.Install{AppKey: jiraKey, ClientKey: DemoJiraClientKey,
		BaseURL: site, DisplayURL: site, ProductType: "jira", Description: "Keyline demo site (Jira)",
		SharedSecret: secrets[jiraKey]})
	if err != nil {
		return nil, fmt.Errorf("preview: seed: %w", err)
	}
	d.Confluence, err = st.UpsertTenant(ctx, tenant.Install{AppKey: confKey, ClientKey: DemoConfluenceClientKey,
		BaseURL: site + "/wiki", DisplayURL: site + "/wiki", ProductType: "confluence",
		Description: "Keyline demo site (Confluence)", SharedSecret: secrets[confKey]})
	if err != nil {
		return nil, fmt.Errorf("preview: seed: %w", err)
	}
	g := newHistory(o.Now, o.Days)
	for _, p := range demoProjects {
		d.Projects = append(d.Projects, Project{Key: p.key, ID: p.id, Name: p.name})
	}
	d.Issues, d.Featured, d.Quiet = g.issues()
	if d.Reused {
		return d, nil
	}
	g.plan()
	n, err := g.record(ctx, st, d.Jira)
	d.Events = n
	if err != nil {
		return nil, err
	}
	return d, nil
}

// newSecret is a shared secret like the ones Atlassian sends: 32 random
// bytes, base64.
func newSecret() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("preview: seed: shared secret: %w", err)
	}
	return []byte(base64.RawURLEncoding.EncodeToString(b)), nil
}

// The demo site. Each project has one repository that builds one service.
// Issue plans: "done" goes all the way to production, "review" has an open
// pull request, "draft" a draft one, "todo" no development at all.
type demoProject struct {
	key, id, name, service, repo string
	issues                       []demoIssue
}

type demoIssue struct {
	summary, plan string
}

var demoProjects = []demoProject{
	{key: "PAY", id: "10000", name: "Payments", service: "checkout-api", repo: "checkout-api", issues: []demoIssue{
		{"Retry card authorisations on gateway timeouts", "done"},
		{"Support 3-D Secure 2 challenge flow", "done"},
		{"Idempotency keys for refund requests", "done"},
		{"Show Apple Pay in checkout for Safari users", "done"},
		{"Reconcile settlement reports nightly", "done"},
		{"Fix rounding of multi-currency totals", "done"},
		{"Add fraud score to payment events", "featured"},
		{"Rotate PSP API credentials without downtime", "done"},
		{"Expose payment method health on the status page", "review"},
		{"Migrate the payments database to PostgreSQL 17", "todo"},
		{"Document chargeback handling", "todo"},
	}},
	{key: "WEB", id: "10100", name: "Storefront", service: "storefront-web", repo: "storefront-web", issues: []demoIssue{
		{"Lazy-load product images below the fold", "done"},
		{"Persist the basket across devices", "done"},
		{"Accessible colour contrast on product cards", "done"},
		{"Search suggestions while typing", "done"},
		{"Dark theme for the storefront", "done"},
		{"Fix layout shift on the product page", "done"},
		{"Server-side render category pages", "rollback"},
		{"Add a size guide to apparel products", "done"},
		{"Track add-to-basket in analytics", "done"},
		{"Localise checkout into German and French", "review"},
		{"Collect feedback on the new navigation", "todo"},
	}},
	{key: "OPS", id: "10200", name: "Platform", service: "platform-gateway", repo: "platform-gateway", issues: []demoIssue{
		{"Autoscale the gateway on request latency", "review"},
		{"Alert on error budget burn rate", "done"},
		{"Upgrade the ingress controller to 1.12", "done"},
		{"Blue-green deploys for checkout-api", "done"},
		{"Nightly database backups to a second region", "done"},
		{"Rate-limit abusive clients at the edge", "done"},
		{"Structured logs for all services", "draft"},
		{"On-call handbook: escalation policy", "todo"},
	}},
}

// demoOrg is the demo's GitHub organisation; the URLs point nowhere real.
const demoOrg = "keyline-demo"

var demoPeople = []devops.Person{
	{Name: "Ana Lima", Email: "ana.lima@keyline-demo.example", Username: "analima"},
	{Name: "Ben Okafor", Email: "ben.okafor@keyline-demo.example", Username: "bokafor"},
	{Name: "Chen Wei", Email: "chen.wei@keyline-demo.example", Username: "chenwei"},
	{Name: "Dana Kowalski", Email: "dana.kowalski@keyline-demo.example", Username: "dkowalski"},
	{Name: "Eli Haddad", Email: "eli.haddad@keyline-demo.example", Username: "ehaddad"},
	{Name: "Farah Nasser", Email: "farah.nasser@keyline-demo.example", Username: "fnasser"},
}

var dependabot = devops.Person{Name: "dependabot[bot]", Email: "49699333+dependabot[bot]@users.noreply.github.com", Username: "dependabot[bot]"}

var followUps = []string{
	"Cover the edge cases in tests",
	"Address review feedback",
	"Log the decision path",
	"Update the README",
	"Extract a helper for readability",
}

var dependencies = []string{
	"golang.org/x/net", "github.com/jackc/pgx/v5", "actions/checkout", "github.com/prometheus/client_golang",
	"google.golang.org/grpc", "github.com/stretchr/testify",
}

// Environments, in promotion order.
var environments = []struct {
	id  string
	typ devops.EnvironmentType
}{
	{"development", devops.EnvironmentDevelopment},
	{"staging", devops.EnvironmentStaging},
	{"production", devops.EnvironmentProduction},
}

// source names which of the demo's three sources reports an event.
type source int

const (
	fromGitHub source = iota
	fromPipeline
	fromPagerDuty
)

// event is one delivery, or one Jira webhook when issue is set.
type event struct {
	at    time.Time
	src   source
	name  string
	batch devops.Batch
	issue *store.JiraIssueEvent
}

// history builds the demo's events. It is deterministic: a fixed seed and
// times relative to now.
type history struct {
	now, start time.Time
	rnd        *mrand.Rand
	events     []event
	issueIDs   map[string]string // key → id
	status     map[string]string // key → current status, while planning
	seq        int
}

func newHistory(now time.Time, days int) *history {
	now = now.UTC().Truncate(time.Second)
	return &history{
		now:      now,
		start:    now.AddDate(0, 0, -days).Truncate(24 * time.Hour),
		rnd:      mrand.New(mrand.NewPCG(20260324, 4)),
		issueIDs: map[string]string{},
		status:   map[string]string{},
	}
}

// issues lists the site's issues, the featured one first, and gives them
// ids. It returns the featured issue and the first without development.
func (g *history) issues() (out []Issue, featured, quiet string) {
	id := 10001
	for _, p := range demoProjects {
		for i, is := range p.issues {
			key := p.key + "-" + strconv.Itoa(i+1)
			g.issueIDs[key] = strconv.Itoa(id)
			id++
			out = append(out, Issue{Key: key, ID: g.issueIDs[key], Summary: is.summary})
			switch {
			case is.plan == "featured":
				featured = key
			case is.plan == "todo" && quiet == "":
				quiet = key
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Issue) int {
		switch {
		case a.Key == featured:
			return -1
		case b.Key == featured:
			return 1
		}
		return 0
	})
	return out, featured, quiet
}

// repo is one repository's state while the history is planned.
type repo struct {
	p        demoProject
	r        devops.Repository
	head     string
	heads    []mainHead // main's history, oldest first
	build    int64
	pr       int64
	deploy   map[string]int64 // environment → last sequence number
	deployed map[string]string
	merges   []merge
	next     time.Time // when the next chore is due
}

type mainHead struct {
	at  time.Time
	sha string
}

// merge is a merged change: which issue, and when main got it.
type merge struct {
	key string
	at  time.Time
	sha string
}

func (g *history) add(at time.Time, src source, name string, b devops.Batch) {
	if at.After(g.now.Add(-10 * time.Minute)) {
		return // the future has not happened yet
	}
	g.events = append(g.events, event{at: at, src: src, name: name, batch: b})
}

func (g *history) sha() string {
	return fmt.Sprintf("%016x%016x%08x", g.rnd.Uint64(), g.rnd.Uint64(), g.rnd.Uint32())
}

func (g *history) person() devops.Person { return demoPeople[g.rnd.IntN(len(demoPeople))] }

// workday returns a time on the first working day at or after t, at hour h
// plus up to jitter minutes.
func (g *history) workday(t time.Time, h, jitter int) time.Time {
	d := t.UTC().Truncate(24 * time.Hour)
	for d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
		d = d.AddDate(0, 0, 1)
	}
	m := 0
	if jitter > 0 {
		m = g.rnd.IntN(jitter)
	}
	return d.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

// plan lays out every project's history.
func (g *history) plan() {
	var repos []*repo
	for _, p := range demoProjects {
		rp := &repo{p: p, deploy: map[string]int64{}, deployed: map[string]string{},
			r: devops.Repository{ID: strconv.Itoa(700000 + len(repos)*1000 + len(p.key)), Name: demoOrg + "/" + p.repo,
				URL: "https://github.com/" + demoOrg + "/" + p.repo, DefaultBranch: "main"}}
		// The repository's first commit, before the history starts.
		root := g.sha()
		rp.head = root
		rp.heads = []mainHead{{g.start.Add(-24 * time.Hour), root}}
		g.add(g.start.Add(-24*time.Hour), fromGitHub, "push", devops.Batch{Repository: &rp.r,
			Commits: []devops.Commit{{SHA: root, RepositoryID: rp.r.ID, Message: "Initial commit",
				Author: demoPeople[0], AuthoredAt: g.start.Add(-24 * time.Hour), URL: rp.r.URL + "/commit/" + root}},
			Push: &devops.Push{RepositoryID: rp.r.ID, Ref: "refs/heads/main", After: root, CommitSHAs: []string{root},
				Created: true, PushedAt: g.start.Add(-24 * time.Hour)}})
		repos = append(repos, rp)
		for i, is := range p.issues {
			key := p.key + "-" + strconv.Itoa(i+1)
			g.status[key] = "To Do"
			g.issueEvent(key, p, is.summary, g.start.Add(time.Duration(i)*time.Hour), "", "To Do", "new")
		}
	}
	for _, rp := range repos {
		g.planRepo(rp)
	}
	for _, rp := range repos {
		g.planDeployments(rp)
	}
	slices.SortStableFunc(g.events, func(a, b event) int { return a.at.Compare(b.at) })
}

// planRepo schedules the repository's changes: the issues' work spread over
// the history, the featured one recent, and dependency bumps in between.
func (g *history) planRepo(rp *repo) {
	type slot struct {
		at   time.Time
		key  string
		plan string
		sum  string
	}
	var slots []slot
	var done []int
	for i, is := range rp.p.issues {
		if is.plan == "done" || is.plan == "rollback" {
			done = append(done, i)
		}
	}
	span := g.now.Add(-16 * 24 * time.Hour).Sub(g.start.Add(3 * 24 * time.Hour))
	for n, i := range done {
		at := g.start.Add(3*24*time.Hour + span*time.Duration(n)/time.Duration(len(done)))
		slots = append(slots, slot{at: at, key: rp.p.key + "-" + strconv.Itoa(i+1), plan: rp.p.issues[i].plan, sum: rp.p.issues[i].summary})
	}
	for i, is := range rp.p.issues {
		key := rp.p.key + "-" + strconv.Itoa(i+1)
		switch is.plan {
		case "featured":
			slots = append(slots, slot{at: g.now.Add(-13 * 24 * time.Hour), key: key, plan: is.plan, sum: is.summary})
		case "review", "draft":
			slots = append(slots, slot{at: g.now.Add(-6 * 24 * time.Hour), key: key, plan: is.plan, sum: is.summary})
		}
	}
	// Dependency bumps every week or so.
	for at := g.start.Add(2 * 24 * time.Hour); at.Before(g.now.Add(-2 * 24 * time.Hour)); at = at.Add(time.Duration(5+g.rnd.IntN(5)) * 24 * time.Hour) {
		slots = append(slots, slot{at: at})
	}
	slices.SortStableFunc(slots, func(a, b slot) int { return a.at.Compare(b.at) })
	for _, s := range slots {
		g.change(rp, s.at, s.key, s.sum, s.plan)
	}
}

// change is one piece of work on a branch: commits, their builds, a pull
// request and, unless it is still in review, its merge to main with the
// build and development deployment that follow. key "" is a dependency bump.
func (g *history) change(rp *repo, at time.Time, key, summary, plan string) {
	at = g.workday(at, 9, 120)
	author := g.person()
	var branch, title string
	commits := 1
	if key != "" {
		branch = "feature/" + key + "-" + devops.SummarySlug(summary)
		title = key + " " + summary
		commits = 1 + g.rnd.IntN(3)
		g.transition(key, rp.p, at, "In Progress", "indeterminate")
	} else {
		author = dependabot
		dep := dependencies[g.rnd.IntN(len(dependencies))]
		minor := 10 + g.rnd.IntN(30)
		title = fmt.Sprintf("Bump %s from 1.%d.0 to 1.%d.0", dep, minor, minor+1)
		branch = fmt.Sprintf("dependabot/go_modules/%s-1.%d.0", dep, minor+1)
	}
	failFirst := plan == "featured" || plan == "review" && rp.p.key == "WEB"
	if failFirst && commits < 2 {
		commits = 2
	}
	// The branch starts at what main held when the work began.
	before := rp.heads[0].sha
	for _, h := range rp.heads {
		if !h.at.After(at) {
			before = h.sha
		}
	}
	var shas []string
	t := at
	keys := devops.ExtractIssueKeys(title)
	for i := 0; i < commits; i++ {
		msg := title
		switch {
		case key == "":
		case i == 1 && failFirst:
			msg = key + " Fix the flaky test the first build caught"
		case i > 0:
			msg = key + " " + followUps[g.rnd.IntN(len(followUps))]
		}
		if key == "" {
			msg += "\n\nBumps " + title[len("Bump "):] + ".\n\nSigned-off-by: dependabot[bot] <support@github.com>"
		} else if i == 0 {
			msg += "\n\n" + "Why: " + strings.ToLower(summary[:1]) + summary[1:] + " was the team's next step."
		}
		sha := g.sha()
		shas = append(shas, sha)
		c := devops.Commit{SHA: sha, RepositoryID: rp.r.ID, Message: msg, Author: author, AuthoredAt: t,
			URL: rp.r.URL + "/commit/" + sha, IssueKeys: devops.ExtractIssueKeys(msg, branch)}
		g.add(t.Add(2*time.Minute), fromGitHub, "push", devops.Batch{
			Repository: &rp.r, Commits: []devops.Commit{c},
			Push: &devops.Push{RepositoryID: rp.r.ID, Ref: "refs/heads/" + branch, Before: before, After: sha,
				CommitSHAs: []string{sha}, Created: i == 0, PushedAt: t.Add(2 * time.Minute)},
			Branches: []devops.Branch{{RepositoryID: rp.r.ID, Name: branch, URL: rp.r.URL + "/tree/" + branch,
				LastCommitSHA: sha, UpdatedAt: t.Add(2 * time.Minute), IssueKeys: keys}},
		})
		state := devops.BuildSuccessful
		if i == 0 && failFirst {
			state = devops.BuildFailed
		}
		if plan == "review" && failFirst && i == commits-1 {
			state = devops.BuildFailed // still red: the review asks for changes
		}
		g.build(rp, t.Add(3*time.Minute), sha, "refs/heads/"+branch, state, keys)
		before = sha
		t = t.Add(time.Duration(2+g.rnd.IntN(20)) * time.Hour)
	}
	rp.pr++
	pr := devops.PullRequest{ID: strconv.FormatInt(900000+rp.pr, 10), RepositoryID: rp.r.ID, Number: rp.pr,
		Title: title, State: devops.PullRequestOpen, SourceBranch: branch, DestinationBranch: "main",
		Author: author, CreatedAt: at.Add(30 * time.Minute), UpdatedAt: at.Add(30 * time.Minute),
		URL: rp.r.URL + "/pull/" + strconv.FormatInt(rp.pr, 10), IssueKeys: keys,
		BodyExcerpt: "Closes " + key + ".\n\nHow to test: run the service locally and follow the steps in the issue."}
	if key == "" {
		pr.BodyExcerpt = "Bumps the dependency. Release notes are in the upstream changelog."
	}
	if plan == "draft" {
		pr.State = devops.PullRequestDraft
	}
	g.add(pr.CreatedAt, fromGitHub, "pull_request", devops.Batch{Repository: &rp.r, PullRequests: []devops.PullRequest{pr}})
	if key != "" && plan != "draft" {
		g.transition(key, rp.p, pr.CreatedAt.Add(time.Minute), "In Review", "indeterminate")
	}
	reviewer := g.person()
	for reviewer.Username == author.Username {
		reviewer = g.person()
	}
	if plan == "review" || plan == "draft" {
		if plan == "review" {
			pr.UpdatedAt = t
			approval := devops.ApprovalUnapproved
			if failFirst {
				approval = devops.ApprovalNeedsWork
			}
			pr.Reviewers = []devops.Reviewer{{Person: reviewer, Approval: approval}}
			g.add(t, fromGitHub, "pull_request_review", devops.Batch{Repository: &rp.r, PullRequests: []devops.PullRequest{pr}})
		}
		return
	}
	mergedAt := t.Add(time.Duration(1+g.rnd.IntN(6)) * time.Hour)
	// Main moves forward in time: a change never lands before the one
	// merged ahead of it.
	if last := rp.heads[len(rp.heads)-1].at; !mergedAt.After(last) {
		mergedAt = last.Add(time.Duration(20+g.rnd.IntN(40)) * time.Minute)
	}
	mergeSHA := g.sha()
	pr.State, pr.MergedAt, pr.UpdatedAt, pr.MergeCommitSHA = devops.PullRequestMerged, mergedAt, mergedAt, mergeSHA
	pr.Reviewers = []devops.Reviewer{{Person: reviewer, Approval: devops.ApprovalApproved}}
	g.add(mergedAt, fromGitHub, "pull_request", devops.Batch{Repository: &rp.r, PullRequests: []devops.PullRequest{pr}})
	mergeMsg := fmt.Sprintf("Merge pull request #%d from %s/%s\n\n%s", rp.pr, demoOrg, branch, title)
	mc := devops.Commit{SHA: mergeSHA, RepositoryID: rp.r.ID, Message: mergeMsg, Author: reviewer, AuthoredAt: mergedAt,
		URL: rp.r.URL + "/commit/" + mergeSHA, Merge: true, IssueKeys: devops.ExtractIssueKeys(mergeMsg)}
	pushed := append(append([]string{}, shas...), mergeSHA)
	g.add(mergedAt.Add(time.Minute), fromGitHub, "push", devops.Batch{Repository: &rp.r, Commits: []devops.Commit{mc},
		Push: &devops.Push{RepositoryID: rp.r.ID, Ref: "refs/heads/main", Before: rp.head, After: mergeSHA,
			CommitSHAs: pushed, PushedAt: mergedAt.Add(time.Minute)},
		Branches: []devops.Branch{{RepositoryID: rp.r.ID, Name: branch, URL: rp.r.URL + "/tree/" + branch,
			LastCommitSHA: shas[len(shas)-1], UpdatedAt: mergedAt.Add(time.Minute), IssueKeys: keys, Deleted: true}},
	})
	rp.head = mergeSHA
	rp.heads = append(rp.heads, mainHead{mergedAt.Add(time.Minute), mergeSHA})
	rp.merges = append(rp.merges, merge{key: key, at: mergedAt, sha: mergeSHA})
	g.build(rp, mergedAt.Add(2*time.Minute), mergeSHA, "refs/heads/main", devops.BuildSuccessful, keys)
}

// build records a CI run of sha, from queued to its final state.
func (g *history) build(rp *repo, at time.Time, sha, ref string, state devops.BuildState, keys []string) {
	rp.build++
	finished := at.Add(time.Duration(4+g.rnd.IntN(8)) * time.Minute)
	tests := &devops.TestSummary{Total: 412 + int(rp.build%37), Passed: 412 + int(rp.build%37)}
	if state == devops.BuildFailed {
		tests.Passed, tests.Failed = tests.Total-1, 1
	}
	b := devops.Build{PipelineID: rp.r.ID + "/ci", PipelineName: "CI", BuildNumber: rp.build, State: state,
		RepositoryID: rp.r.ID, CommitSHA: sha, Ref: ref, URL: fmt.Sprintf("%s/actions/runs/%d", rp.r.URL, 4100000+rp.build),
		StartedAt: at, FinishedAt: finished, UpdatedAt: finished, Tests: tests, IssueKeys: keys}
	g.add(finished, fromGitHub, "workflow_run", devops.Batch{Repository: &rp.r, Builds: []devops.Build{b}})
}

// planDeployments promotes main: every merge to development at once, what
// main holds to staging each working day at 14:00, and what staging holds to
// production on Tuesdays and Thursdays at 10:00. One production deployment of
// checkout-api fails and is retried the next working day; one of
// storefront-web is rolled back after the incident it caused.
func (g *history) planDeployments(rp *repo) {
	for _, h := range rp.heads[1:] {
		g.deployment(rp, "development", h.sha, h.at.Add(15*time.Minute), devops.DeploymentSuccessful)
	}
	staged := rp.heads[0].sha
	var stagedLog []mainHead
	failedOnce, rolledBack := false, false
	for day := g.start; day.Before(g.now); day = day.AddDate(0, 0, 1) {
		if day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
			continue
		}
		if (day.Weekday() == time.Tuesday || day.Weekday() == time.Thursday) && len(stagedLog) > 0 {
			at := day.Add(10*time.Hour + time.Duration(g.rnd.IntN(30))*time.Minute)
			cand := ""
			for _, s := range stagedLog {
				if s.at.Before(at) {
					cand = s.sha
				}
			}
			if cand != "" && cand != rp.deployed["production"] {
				g.promote(rp, cand, at, &failedOnce, &rolledBack)
			}
		}
		at := day.Add(14*time.Hour + time.Duration(g.rnd.IntN(20))*time.Minute)
		head := ""
		for _, h := range rp.heads {
			if h.at.Before(at) {
				head = h.sha
			}
		}
		if head != staged {
			g.deployment(rp, "staging", head, at, devops.DeploymentSuccessful)
			staged = head
			stagedLog = append(stagedLog, mainHead{at, head})
		}
	}
	g.incidents(rp)
}

// promote deploys sha to production, with the demo's one failure and one
// rollback.
func (g *history) promote(rp *repo, sha string, at time.Time, failedOnce, rolledBack *bool) {
	progress := float64(at.Sub(g.start)) / float64(g.now.Sub(g.start))
	switch {
	case rp.p.service == "checkout-api" && !*failedOnce && progress > 0.55 && g.shipsAnIssue(rp, sha):
		*failedOnce = true
		g.deployment(rp, "production", sha, at, devops.DeploymentFailed)
		// Retried the next working day, once the health check was fixed.
		g.deployment(rp, "production", sha, g.workday(at.Add(24*time.Hour), 10, 30), devops.DeploymentSuccessful)
		g.markDone(rp, sha, at.Add(24*time.Hour))
	case rp.p.service == "storefront-web" && !*rolledBack && g.shipsPlan(rp, sha, "rollback"):
		*rolledBack = true
		previous := rp.deployed["production"]
		seq := g.deployment(rp, "production", sha, at, devops.DeploymentSuccessful)
		bad := devops.DeploymentKey{PipelineID: rp.pipeline(), EnvironmentID: "production", SequenceNumber: seq}
		opened := at.Add(35 * time.Minute)
		g.incident(rp, "Product pages return 500 for some locales", "P1", opened, opened.Add(80*time.Minute),
			&bad, g.keyOfPlan(rp, "rollback"))
		// The release is rolled back: its deployment is marked so, and the
		// previous release goes out again.
		g.deployment(rp, "production", sha, at, devops.DeploymentRolledBack)
		g.deployment(rp, "production", previous, opened.Add(20*time.Minute), devops.DeploymentSuccessful)
	default:
		g.deployment(rp, "production", sha, at, devops.DeploymentSuccessful)
		g.markDone(rp, sha, at)
	}
}

func (r *repo) pipeline() string { return "deploy-" + r.p.service }

// deployment records one deployment of sha to env, finished some minutes
// after at; rolled back deployments update the last sequence number instead
// of taking a new one. It returns the sequence number.
func (g *history) deployment(rp *repo, env, sha string, at time.Time, state devops.DeploymentState) int64 {
	typ := devops.EnvironmentUnmapped
	for _, e := range environments {
		if e.id == env {
			typ = e.typ
		}
	}
	if state != devops.DeploymentRolledBack {
		rp.deploy[env]++
	}
	seq := rp.deploy[env]
	finished := at.Add(time.Duration(3+g.rnd.IntN(6)) * time.Minute)
	updated := finished
	if state == devops.DeploymentRolledBack {
		finished = at.Add(50 * time.Minute)
		updated = finished
	}
	host := rp.p.service + ".keyline-demo.example"
	if env != "production" {
		host = env + "." + host
	}
	d := devops.Deployment{PipelineID: rp.pipeline(), PipelineName: "Deploy " + rp.p.service,
		EnvironmentID: env, EnvironmentName: env, EnvironmentType: typ, EnvironmentBasis: devops.BasisProvider,
		EnvironmentURL: "https://" + host, SequenceNumber: seq, State: state, RepositoryID: rp.r.ID,
		CommitSHA: sha, Ref: "main", Service: rp.p.service,
		URL:       fmt.Sprintf("https://deploy.keyline-demo.example/%s/%s/%d", rp.p.service, env, seq),
		StartedAt: at, FinishedAt: finished, UpdatedAt: updated}
	g.add(updated, fromPipeline, "deployment", devops.Batch{Repository: &rp.r, Deployments: []devops.Deployment{d}})
	if state == devops.DeploymentSuccessful {
		rp.deployed[env] = sha
	}
	return seq
}

// shipsPlan reports whether main at sha holds the merge of an issue with plan.
func (g *history) shipsPlan(rp *repo, sha, plan string) bool {
	key := g.keyOfPlan(rp, plan)
	if key == "" || rp.deployed["production"] == "" {
		return false
	}
	return g.contains(rp, sha, key) && !g.contains(rp, rp.deployed["production"], key)
}

// shipsAnIssue reports whether deploying sha to production ships an
// issue's change for the first time.
func (g *history) shipsAnIssue(rp *repo, sha string) bool {
	for _, m := range rp.merges {
		if m.key != "" && g.contains(rp, sha, m.key) && !g.contains(rp, rp.deployed["production"], m.key) {
			return true
		}
	}
	return false
}

func (g *history) keyOfPlan(rp *repo, plan string) string {
	for i, is := range rp.p.issues {
		if is.plan == plan {
			return rp.p.key + "-" + strconv.Itoa(i+1)
		}
	}
	return ""
}

// contains reports whether main at sha includes key's merge.
func (g *history) contains(rp *repo, sha, key string) bool {
	for _, m := range rp.merges {
		if m.key == key {
			for _, h := range rp.heads {
				if h.sha == m.sha {
					return true
				}
				if h.sha == sha {
					return false
				}
			}
		}
	}
	return false
}

// markDone moves the issues that production at sha shipped for the first
// time to Done, shortly after the release.
func (g *history) markDone(rp *repo, sha string, at time.Time) {
	for _, m := range rp.merges {
		if m.key != "" && g.status[m.key] != "Done" && g.contains(rp, sha, m.key) {
			g.transition(m.key, rp.p, at.Add(30*time.Minute), "Done", "done")
		}
	}
}

// incidents adds each service's incidents: the featured issue's release
// caused one, and the platform has one still open.
func (g *history) incidents(rp *repo) {
	switch rp.p.service {
	case "checkout-api":
		featured := g.keyOfPlan(rp, "featured")
		for _, m := range rp.merges {
			if m.key != featured {
				continue
			}
			// The first production release with the change: the incident opens
			// two hours later and the suspect is found by service.
			for _, e := range g.events {
				for _, d := range e.batch.Deployments {
					if d.Service == rp.p.service && d.EnvironmentType == devops.EnvironmentProduction &&
						d.State == devops.DeploymentSuccessful && g.contains(rp, d.CommitSHA, featured) && d.FinishedAt.After(m.at) {
						opened := d.FinishedAt.Add(2 * time.Hour)
						g.incident(rp, "Elevated payment declines after release", "P2", opened, opened.Add(3*time.Hour), nil, featured)
						return
					}
				}
			}
		}
	case "storefront-web":
		opened := g.workday(g.start.Add(20*24*time.Hour), 16, 60)
		g.incident(rp, "Basket page slow for logged-in users", "P3", opened, opened.Add(5*time.Hour), nil, "")
	case "platform-gateway":
		opened := g.now.Add(-5 * time.Hour)
		g.incident(rp, "Gateway p99 latency above SLO", "P3", opened, time.Time{}, nil, g.keyOfPlan(rp, "review"))
	}
}

// incident records an incident as PagerDuty reports it: opened, then
// resolved unless resolved is zero. key is an issue the responders linked.
func (g *history) incident(rp *repo, title, severity string, opened, resolved time.Time, suspect *devops.DeploymentKey, key string) {
	g.seq++
	id := fmt.Sprintf("Q%dDEMO%04d", 3+g.seq, 17*g.seq)
	in := devops.Incident{SourceID: id, Title: title, Severity: severity, Status: devops.IncidentOpen,
		Service: rp.p.service, URL: "https://keyline-demo.pagerduty.com/incidents/" + id,
		OpenedAt: opened, UpdatedAt: opened, Deployment: suspect}
	if key != "" {
		in.IssueKeys = []string{key}
	}
	g.add(opened, fromPagerDuty, "incident.triggered", devops.Batch{Incidents: []devops.Incident{in}})
	if !resolved.IsZero() {
		in.Status, in.ResolvedAt, in.UpdatedAt = devops.IncidentResolved, resolved, resolved
		g.add(resolved, fromPagerDuty, "incident.resolved", devops.Batch{Incidents: []devops.Incident{in}})
	}
}

// issueEvent queues a Jira issue webhook; transition queues a status change.
func (g *history) issueEvent(key string, p demoProject, summary string, at time.Time, from, to, category string) {
	ev := &store.JiraIssueEvent{Issue: store.JiraIssue{IssueID: g.issueIDs[key], IssueKey: key, ProjectKey: p.key,
		Summary: summary, StatusName: to, StatusCategory: category, UpdatedAt: at},
		Transitions: []store.JiraTransition{{FromStatus: from, ToStatus: to, ToCategory: category, At: at}}}
	if at.After(g.now) {
		return
	}
	g.events = append(g.events, event{at: at, name: "jira:issue_updated", issue: ev})
}

func (g *history) transition(key string, p demoProject, at time.Time, to, category string) {
	from := g.status[key]
	if from == to || at.After(g.now) {
		return
	}
	g.status[key] = to
	summary := ""
	for i, is := range p.issues {
		if p.key+"-"+strconv.Itoa(i+1) == key {
			summary = is.summary
		}
	}
	g.issueEvent(key, p, summary, at, from, to, category)
}

// record writes the planned events in time order, as the sources would
// have delivered them.
func (g *history) record(ctx context.Context, st *store.Store, t *tenant.Tenant) (int, error) {
	var ids [3]string
	for i, s := range []struct{ kind, name string }{
		{store.SourceGitHub, "GitHub: " + demoOrg},
		{store.SourceGeneric, "Release pipeline"},
		{store.SourcePagerDuty, "PagerDuty"},
	} {
		src, _, _, err := st.CreateSource(ctx, t, s.kind, s.name)
		if err != nil {
			return 0, fmt.Errorf("preview: seed: create source: %w", err)
		}
		if store.TakesProvidedSecret(s.kind) {
			// As if PagerDuty had issued one, so the configure page's test
			// button works on the demo site as on a connected one.
			if err := st.SetSourceSecret(ctx, t, src.ID, "demo-"+s.kind+"-"+rand.Text(), 0); err != nil {
				return 0, fmt.Errorf("preview: seed: set source secret: %w", err)
			}
		}
		ids[i] = src.ID
	}
	for i, e := range g.events {
		if e.issue != nil {
			if err := st.ApplyJiraIssueEvent(ctx, t, *e.issue); err != nil {
				return i, fmt.Errorf("preview: seed: %s %s: %w", e.name, e.issue.Issue.IssueKey, err)
			}
			continue
		}
		d := store.Delivery{DeliveryID: "demo-" + strconv.Itoa(i+1), Event: e.name, Outcome: store.DeliveryAccepted,
			Status: 200, ReceivedAt: e.at}
		b := e.batch
		if err := st.RecordEvent(ctx, t, ids[e.src], d, &b); err != nil {
			return i, fmt.Errorf("preview: seed: %s at %s: %w", e.name, e.at.Format(time.RFC3339), err)
		}
	}
	return len(g.events), nil
}
