package templates

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/a-h/templ"
	"golang.org/x/net/html"
)

// doc is a rendered page parsed back into a tree, with the queries the
// component tests need.
type doc struct {
	t    *testing.T
	root *html.Node
	raw  string
}

func render(t *testing.T, c templ.Component) doc {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	root, err := html.Parse(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatalf("parse rendered HTML: %v", err)
	}
	return doc{t: t, root: root, raw: buf.String()}
}

func attr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

// all returns the elements under n for which match is true, in document order.
func all(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
	}
	return out
}

func tag(name string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Data == name }
}

func testID(id string) func(*html.Node) bool {
	return func(n *html.Node) bool { v, _ := attr(n, "data-testid"); return v == id }
}

// one returns the single element with data-testid id under n.
func (d doc) one(n *html.Node, id string) *html.Node {
	d.t.Helper()
	found := all(n, testID(id))
	if len(found) != 1 {
		d.t.Fatalf("%d elements with data-testid=%q, want 1", len(found), id)
	}
	return found[0]
}

// text is n's text content with white space collapsed.
func text(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// fullView has one of everything, with hostile text and URLs in places a
// provider controls.
func fullView() IssuePanelView {
	ok := Lozenge{Label: "Successful", Tone: ToneSuccess}
	at := Moment{Relative: "3 h ago", ISO: "2026-11-20T09:00:00Z", Exact: "20 Nov 2026, 09:00 UTC"}
	commits := []CommitItem{
		{SHA: "4444444444444444444444444444444444444444", ShortSHA: "4444444", Message: "<script>alert(1)</script> <img src=x onerror=alert(2)>",
			Author: "<b>Mallory</b>", Authored: at, URL: "javascript:alert(document.cookie)"},
		{SHA: "2222222222222222222222222222222222222222", ShortSHA: "2222222", Message: "OPS-7: validate the login form", Author: "Ada Lovelace",
			Authored: at, URL: "https://github.com/acme/shop/commit/2222222222222222222222222222222222222222"},
	}
	for i := range 6 {
		commits = append(commits, CommitItem{SHA: fmt.Sprintf("%040d", i), ShortSHA: fmt.Sprintf("%07d", i), Message: fmt.Sprintf("older commit %d", i), Authored: at})
	}
	return IssuePanelView{
		Page:         Page{Title: "DevOps", StaticPrefix: "/jira/static", AssetVersion: "test"},
		IssueKey:     "OPS-7",
		SiteHost:     "acme.atlassian.net",
		ConfigureURL: "https://acme.atlassian.net/plugins/servlet/ac/dev.keyline.jira/configure",
		Development: DevelopmentView{
			Total: 20,
			Summary: SummaryView{
				Branches: "1 branch", Commits: "10 commits", PullRequests: "1 pull request",
				PullRequestStates: []Lozenge{{Label: "1 merged", Tone: ToneSuccess}},
				LatestBuild:       &Lozenge{Label: "Failed", Tone: ToneFailed}, LatestBuildName: "Shop CI #13",
				Environments: []EnvironmentSummary{
					{Name: "staging-eu", Type: "staging", TypeLabel: "Staging", State: ok},
					{Name: "production", Type: "production", TypeLabel: "Production", State: Lozenge{Label: "Rolled back", Tone: ToneMoved}},
				},
				Incidents: "1 open incident", OpenIncidents: 1,
			},
			Timeline: []TimelineStep{
				{Kind: "commit", Label: "First commit", Detail: "2222222 OPS-7: validate the login form", When: at},
				{Kind: "deployment", Label: "Reached staging-eu", Detail: "Staging · Deploy #4", When: at, Elapsed: "2 d", URL: "javascript:alert(3)"},
			},
			Branches: List[BranchItem]{Items: []BranchItem{{Name: "feature/OPS-7-login", URL: "https://github.com/acme/shop/tree/feature/OPS-7-login", LastCommit: "2222222", Updated: at}}, Visible: 5, Total: 1},
			Commits:  List[CommitItem]{Items: commits, Visible: 5, Total: 10},
			PullRequests: List[PullRequestItem]{Items: []PullRequestItem{{Number: "#7", Title: "OPS-7 login", URL: "https://github.com/acme/shop/pull/7",
				State: Lozenge{Label: "Merged", Tone: ToneSuccess}, SourceBranch: "feature/OPS-7-login", DestinationBranch: "main", Author: "Ada Lovelace",
				Reviewers: []ReviewerItem{{Name: "Grace", Verdict: Lozenge{Label: "Approved", Tone: ToneSuccess}}}, Approvals: "1 of 1 approved", Updated: at}},
				Visible: 5, Total: 1},
			Builds: List[BuildItem]{Items: []BuildItem{{Pipeline: "Shop CI", Number: "#13", State: Lozenge{Label: "Failed", Tone: ToneFailed},
				HasTests: true, TestsPassed: 119, TestsFailed: 1, When: at, URL: "https://ci.example.com/13"}}, Visible: 5, Total: 1},
			Environments: []EnvironmentView{
				{Name: "staging-eu", Type: "staging", TypeLabel: "Staging", Latest: ok, Deployments: List[DeploymentItem]{Items: []DeploymentItem{
					{Pipeline: "Deploy", Number: "#4", State: ok, When: at, URL: "https://ci.example.com/deploy/4", Commits: 2},
				}, Visible: 3, Total: 1}},
				{Name: "production", Type: "production", TypeLabel: "Production", Latest: Lozenge{Label: "Rolled back", Tone: ToneMoved}, Deployments: List[DeploymentItem]{Items: []DeploymentItem{
					{Pipeline: "Deploy", Number: "#5", State: Lozenge{Label: "Rolled back", Tone: ToneMoved}, When: at, CommitsIncomplete: true},
				}, Visible: 3, Total: 1}},
			},
			DeploymentsTotal: 2,
			Incidents: List[IncidentItem]{Items: []IncidentItem{{ID: "INC-42", Title: "Checkout returns 500", Severity: "critical",
				Status: Lozenge{Label: "Open", Tone: ToneFailed}, Opened: at, URL: "https://status.example.com/42",
				Suspect: &SuspectView{Deployment: "Deploy #5", Environment: "production", State: ok, When: at, URL: "https://ci.example.com/deploy/5", Basis: "named by the incident"}}},
				Visible: 5, Total: 1},
		},
	}
}

func TestIssuePanelSections(t *testing.T) {
	d := render(t, IssuePanel(fullView()))
	body := d.root
	for _, id := range []string{"summary", "timeline", "branches", "commits", "pull-requests", "builds", "deployments", "incidents"} {
		d.one(body, id)
	}
	if n := all(body, testID("empty-state")); len(n) != 0 {
		t.Error("a panel with data shows the empty state")
	}

	summary := text(d.one(body, "summary"))
	for _, want := range []string{"1 branch", "10 commits", "1 pull request 1 merged", "Latest build Failed", "staging-eu Staging Successful",
		"production Rolled back", "1 open incident"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary %q lacks %q", summary, want)
		}
	}
	// An environment named after its type does not repeat it.
	if strings.Contains(summary, "production Production") {
		t.Errorf("summary repeats the type of an environment named after it: %q", summary)
	}

	commits := d.one(body, "commits")
	if rows := all(commits, testID("commit")); len(rows) != 8 {
		t.Errorf("%d commit rows, want all 8 loaded", len(rows))
	}
	details := all(commits, tag("details"))
	if len(details) != 1 || text(all(details[0], tag("summary"))[0]) != "Show 3 more commits" || len(all(details[0], testID("commit"))) != 3 {
		t.Errorf("commits fold: %d details, want one holding 3 commits behind \"Show 3 more commits\"", len(details))
	}
	if _, open := attr(details[0], "open"); open {
		t.Error("the fold starts open")
	}
	if got := text(commits); !strings.Contains(got, "2 more commits not shown.") || !strings.HasPrefix(got, "Commits 10") {
		t.Errorf("commits section reads %q; want its total and what was not loaded", got)
	}
	first := all(commits, testID("commit"))[1]
	if got := text(first); got != "2222222 OPS-7: validate the login form Ada Lovelace 3 h ago" {
		t.Errorf("commit row reads %q", got)
	}
	times := all(first, tag("time"))
	if len(times) != 1 {
		t.Fatalf("commit row has %d <time> elements", len(times))
	}
	if dt, _ := attr(times[0], "datetime"); dt != "2026-11-20T09:00:00Z" {
		t.Errorf("datetime %q", dt)
	}

	if got := text(d.one(body, "pull-requests")); !strings.Contains(got, "Merged #7 OPS-7 login") || !strings.Contains(got, "1 of 1 approved: Grace Approved") {
		t.Errorf("pull request section reads %q", got)
	}
	if got := text(d.one(body, "builds")); !strings.Contains(got, "Failed Shop CI #13") || !strings.Contains(got, "119 passed 1 failed") {
		t.Errorf("builds section reads %q", got)
	}

	envs := all(d.one(body, "deployments"), testID("environment"))
	if len(envs) != 2 {
		t.Fatalf("%d environments, want 2", len(envs))
	}
	if typ, _ := attr(envs[0], "data-environment-type"); typ != "staging" || !strings.HasPrefix(text(envs[0]), "staging-eu Staging Successful") {
		t.Errorf("first environment %q (%s)", text(envs[0]), typ)
	}
	if len(all(envs[0], testID("commits-incomplete"))) != 0 || len(all(envs[1], testID("commits-incomplete"))) != 1 {
		t.Error("the commit-range hint shows on the wrong deployments")
	}

	in := d.one(body, "incidents")
	if got := text(in); !strings.Contains(got, "Open Severity critical Checkout returns 500") || !strings.Contains(got, "Suspect deployment: Deploy #5 to production Successful 3 h ago (named by the incident)") {
		t.Errorf("incidents section reads %q", got)
	}

	steps := all(d.one(body, "timeline"), testID("timeline-step"))
	if len(steps) != 2 || text(steps[1]) != "2 d later Reached staging-eu Staging · Deploy #4 3 h ago" {
		t.Errorf("timeline steps %d, second reads %q", len(steps), text(steps[len(steps)-1]))
	}

	// Provider links open in a new tab without handing over the opener.
	for _, a := range all(body, tag("a")) {
		if target, _ := attr(a, "target"); target != "_blank" {
			continue
		}
		if rel, _ := attr(a, "rel"); rel != "noopener noreferrer" {
			t.Errorf("link %q opens a new tab with rel %q", text(a), rel)
		}
	}
}

func TestIssuePanelRendersHostileContentInert(t *testing.T) {
	d := render(t, IssuePanel(fullView()))

	// The only scripts are the two in the head; none inline.
	scripts := all(d.root, tag("script"))
	if len(scripts) != 2 {
		t.Errorf("%d <script> elements, want all.js and keyline.js only", len(scripts))
	}
	for _, s := range scripts {
		if src, ok := attr(s, "src"); !ok || src == "" || s.FirstChild != nil {
			t.Errorf("inline or source-less script %q", src)
		}
	}
	if imgs := all(d.root, tag("img")); len(imgs) != 0 {
		t.Errorf("markup from a commit message became %d <img> elements", len(imgs))
	}
	if bs := all(d.root, tag("b")); len(bs) != 0 {
		t.Error("markup from an author name became an element")
	}
	for n := range d.root.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		for _, a := range n.Attr {
			v := strings.ToLower(strings.TrimSpace(a.Val))
			if strings.HasPrefix(a.Key, "on") || a.Key == "style" || strings.HasPrefix(v, "javascript:") || strings.Contains(v, "about:invalid") {
				t.Errorf("<%s %s=%q>", n.Data, a.Key, a.Val)
			}
		}
	}
	// The hostile texts are there to read, as text.
	row := all(d.one(d.root, "commits"), testID("commit"))[0]
	if got := text(row); !strings.Contains(got, "<script>alert(1)</script> <img src=x onerror=alert(2)>") || !strings.Contains(got, "<b>Mallory</b>") {
		t.Errorf("hostile commit row reads %q", got)
	}
	if len(all(row, tag("a"))) != 0 {
		t.Error("a javascript: commit URL became a link")
	}
	if !strings.Contains(d.raw, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the commit message is not escaped in the markup")
	}
	// The timeline step with a javascript: URL is plain text too.
	if step := all(d.one(d.root, "timeline"), testID("timeline-step"))[1]; len(all(step, tag("a"))) != 0 {
		t.Error("a javascript: timeline URL became a link")
	}
}

func TestLinkable(t *testing.T) {
	for u, want := range map[string]bool{
		"https://github.com/acme/shop": true,
		"HTTP://ci.example.com/1":      true,
		"javascript:alert(1)":          false,
		"javascript://%0aalert(1)":     false,
		" https://example.com":         false,
		"data:text/html,x":             false,
		"//evil.example.com":           false,
		"/relative":                    false,
		"https://":                     false,
		"":                             false,
	} {
		if got := Linkable(u); got != want {
			t.Errorf("Linkable(%q) = %v, want %v", u, got, want)
		}
	}
}

func TestIssuePanelEmptyState(t *testing.T) {
	base := IssuePanelView{Page: Page{Title: "DevOps"}, IssueKey: "OPS-7", SiteHost: "acme.atlassian.net",
		ConfigureURL: "https://acme.atlassian.net/plugins/servlet/ac/dev.keyline.jira/configure"}
	for _, tt := range []struct {
		name     string
		admin    bool
		wantLink bool
		wantText string
	}{
		{"admin", true, true, "add a source on the configuration page"},
		{"everyone else", false, false, "Ask a Jira administrator"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := base
			v.ViewerIsAdmin = tt.admin
			d := render(t, IssuePanel(v))
			empty := d.one(d.root, "empty-state")
			if got := text(empty); !strings.HasPrefix(got, "No DevOps data is linked to OPS-7 yet.") || !strings.Contains(got, tt.wantText) {
				t.Errorf("empty state reads %q", got)
			}
			links := all(empty, tag("a"))
			if tt.wantLink {
				if len(links) != 1 {
					t.Fatalf("%d links in the admin's empty state", len(links))
				}
				href, _ := attr(links[0], "href")
				target, _ := attr(links[0], "target")
				if href != base.ConfigureURL || target != "_top" {
					t.Errorf("configure link href=%q target=%q", href, target)
				}
			} else if len(links) != 0 || strings.Contains(d.raw, "/configure") {
				t.Error("a non-admin is pointed at the configure page")
			}
			for _, id := range []string{"summary", "timeline", "commits", "deployments"} {
				if len(all(d.root, testID(id))) != 0 {
					t.Errorf("empty panel has a %s section", id)
				}
			}
		})
	}
}

func TestIssueSummaryIsCompact(t *testing.T) {
	d := render(t, IssueSummary(fullView()))
	if got := text(d.one(d.root, "summary")); !strings.Contains(got, "10 commits") || !strings.Contains(got, "staging-eu") {
		t.Errorf("summary reads %q", got)
	}
	for _, id := range []string{"timeline", "branches", "commits", "pull-requests", "builds", "deployments", "incidents", "empty-state"} {
		if len(all(d.root, testID(id))) != 0 {
			t.Errorf("the right-column summary has a %s section", id)
		}
	}
	empty := render(t, IssueSummary(IssuePanelView{IssueKey: "OPS-7"}))
	if got := text(empty.one(empty.root, "empty-state")); got != "No DevOps data linked to OPS-7 yet." {
		t.Errorf("empty summary reads %q", got)
	}
}

// panelOf200 is a panel with 200 linked entities: 20 branches, 60 commits,
// 30 pull requests with two reviewers each, 40 builds, 40 deployments over
// four environments and 10 incidents with suspects, plus a full timeline.
func panelOf200() IssuePanelView {
	v := fullView()
	at := Moment{Relative: "3 h ago", ISO: "2026-11-20T09:00:00Z", Exact: "20 Nov 2026, 09:00 UTC"}
	ok := Lozenge{Label: "Successful", Tone: ToneSuccess}
	dev := &v.Development
	dev.Branches, dev.Commits, dev.PullRequests, dev.Builds, dev.Incidents = List[BranchItem]{Visible: 5}, List[CommitItem]{Visible: 5},
		List[PullRequestItem]{Visible: 5}, List[BuildItem]{Visible: 5}, List[IncidentItem]{Visible: 5}
	for i := range 20 {
		dev.Branches.Items = append(dev.Branches.Items, BranchItem{Name: fmt.Sprintf("feature/OPS-7-part-%d", i), URL: "https://github.com/acme/shop/tree/x", LastCommit: "2222222", Updated: at})
	}
	for i := range 60 {
		dev.Commits.Items = append(dev.Commits.Items, CommitItem{SHA: fmt.Sprintf("%040d", i), ShortSHA: fmt.Sprintf("%07d", i),
			Message: "OPS-7: a commit message of ordinary length <with> & markup", Author: "Ada Lovelace", Authored: at, URL: "https://github.com/acme/shop/commit/1"})
	}
	for i := range 30 {
		dev.PullRequests.Items = append(dev.PullRequests.Items, PullRequestItem{Number: fmt.Sprintf("#%d", i), Title: "OPS-7 login", URL: "https://github.com/acme/shop/pull/7",
			State: ok, SourceBranch: "feature/OPS-7", DestinationBranch: "main", Author: "Ada", Approvals: "1 of 2 approved", Updated: at,
			Reviewers: []ReviewerItem{{Name: "Grace", Verdict: ok}, {Name: "Linus", Verdict: Lozenge{Label: "Needs work", Tone: ToneMoved}}}})
	}
	for i := range 40 {
		dev.Builds.Items = append(dev.Builds.Items, BuildItem{Pipeline: "Shop CI", Number: fmt.Sprintf("#%d", i), State: ok, HasTests: true, TestsPassed: 100, TestsFailed: 2, When: at, URL: "https://ci.example.com/1"})
	}
	dev.Environments = nil
	for e, name := range []string{"dev", "qa", "staging", "production"} {
		env := EnvironmentView{Name: name, Type: name, TypeLabel: name, Latest: ok, Deployments: List[DeploymentItem]{Visible: 3}}
		for i := range 10 {
			env.Deployments.Items = append(env.Deployments.Items, DeploymentItem{Pipeline: "Deploy", Number: fmt.Sprintf("#%d", e*10+i), State: ok, When: at,
				URL: "https://ci.example.com/d", Commits: 3, CommitsIncomplete: i%3 == 0})
		}
		env.Deployments.Total = len(env.Deployments.Items)
		dev.Environments = append(dev.Environments, env)
	}
	for i := range 10 {
		dev.Incidents.Items = append(dev.Incidents.Items, IncidentItem{ID: fmt.Sprintf("INC-%d", i), Title: "Checkout returns 500", Severity: "P1",
			Status: ok, Opened: at, Resolved: at, URL: "https://status.example.com/1",
			Suspect: &SuspectView{Deployment: "Deploy #31", Environment: "production", State: ok, When: at, URL: "https://ci.example.com/d", Basis: "named by the incident"}})
	}
	dev.Branches.Total, dev.Commits.Total, dev.PullRequests.Total, dev.Builds.Total, dev.Incidents.Total =
		len(dev.Branches.Items), len(dev.Commits.Items), len(dev.PullRequests.Items), len(dev.Builds.Items), len(dev.Incidents.Items)
	dev.DeploymentsTotal, dev.Total = 40, 200
	for range 4 {
		dev.Timeline = append(dev.Timeline, dev.Timeline[0])
	}
	return v
}

func TestPanelOf200Renders(t *testing.T) {
	d := render(t, IssuePanel(panelOf200()))
	n := 0
	for _, id := range []string{"branch", "commit", "pull-request", "build", "deployment", "incident"} {
		n += len(all(d.root, testID(id)))
	}
	if n != 200 {
		t.Errorf("%d entity rows rendered, want 200", n)
	}
}

// BenchmarkRenderIssuePanel200 renders the panel of an issue with 200
// linked entities into a pooled buffer, as the server does; the budget is
// 1 ms per render.
func BenchmarkRenderIssuePanel200(b *testing.B) {
	c := IssuePanel(panelOf200())
	ctx := context.Background()
	var size int
	for b.Loop() {
		buf := templ.GetBuffer()
		if err := c.Render(ctx, buf); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
		templ.ReleaseBuffer(buf)
	}
	b.ReportMetric(float64(size), "bytes/page")
}
