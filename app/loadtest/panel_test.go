package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
	"github.com/keyline/keyline/descriptor"
)

const testPanelAppKey = "com.example.keyline.jira"

// TestPanelModuleMatchesDescriptor keeps the generator's URL equal to the
// one Keyline's Jira descriptor registers, so the load test requests what
// Jira would.
func TestPanelModuleMatchesDescriptor(t *testing.T) {
	r, err := descriptor.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := r.Render(descriptor.Jira, descriptor.Params{BaseURL: "https://keyline.example.com", KeyPrefix: "com.example.keyline"})
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Modules struct {
			JiraIssueContents []struct {
				Key    string `json:"key"`
				Target struct {
					URL string `json:"url"`
				} `json:"target"`
			} `json:"jiraIssueContents"`
		} `json:"modules"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range d.Modules.JiraIssueContents {
		if m.Key != panelModuleKey {
			continue
		}
		found = true
		if want := strings.TrimPrefix(PanelModulePath, descriptor.Jira.BasePath()) + "?" + PanelModuleQuery; m.Target.URL != want {
			t.Errorf("descriptor's panel URL %q, the load test requests %q", m.Target.URL, want)
		}
	}
	if !found {
		t.Fatalf("no jiraIssueContents module %q in the descriptor", panelModuleKey)
	}
	if descriptor.Jira.BasePath() != jiraBasePath {
		t.Errorf("Jira base path %q, the load test hashes against %q", descriptor.Jira.BasePath(), jiraBasePath)
	}
}

// panelLookup is the Keyline side's tenant store: the sites' install records.
type panelLookup map[string]*tenant.Tenant

func (l panelLookup) Tenant(_ context.Context, appKey, clientKey string, _ bool) (*tenant.Tenant, error) {
	t, ok := l[clientKey]
	if !ok || t.AppKey != appKey {
		return nil, tenant.ErrNotFound
	}
	return t, nil
}

// fakePanels answers /jira/panel as Keyline does, after checking the token
// with connect's verifier and the iframe parameters Jira sends.
type fakePanels struct {
	verifier *connect.Verifier
	sites    map[string]PanelSite

	mu       sync.Mutex
	problems []string
	tokens   map[string]bool
	served   int
	perSite  map[string]int
	lifetime time.Duration
}

func newFakePanels(sites []PanelSite, now func() time.Time) *fakePanels {
	lookup := panelLookup{}
	f := &fakePanels{sites: map[string]PanelSite{}, tokens: map[string]bool{}, perSite: map[string]int{}}
	for i, s := range sites {
		lookup[s.ClientKey] = &tenant.Tenant{ID: int64(i + 1), AppKey: testPanelAppKey, ClientKey: s.ClientKey,
			BaseURL: s.BaseURL, SharedSecret: s.SharedSecret, Installed: true, Enabled: true}
		f.sites[s.ClientKey] = s
	}
	f.verifier = connect.NewVerifier(lookup, connect.WithClock(now))
	return f
}

func (f *fakePanels) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := f.verifier.Verify(r.Context(), r, testPanelAppKey, "/jira", connect.QSHComputed)
	if err != nil {
		f.problem("verify: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `<section data-testid="error"><h2>Keyline cannot show this page</h2><p>%s</p></section>`, err)
		return
	}
	q := r.URL.Query()
	site := f.sites[id.Tenant.ClientKey]
	var issue *PanelIssue
	for i := range site.Issues {
		if site.Issues[i].Key == q.Get("issueKey") {
			issue = &site.Issues[i]
		}
	}
	switch {
	case r.Method != http.MethodGet || r.URL.Path != "/jira/panel":
		f.problem("%s %s", r.Method, r.URL.Path)
	case issue == nil:
		f.problem("issue %q is not one of %s's", q.Get("issueKey"), site.ClientKey)
	case q.Get("issueId") != issue.ID || q.Get("projectKey") != issue.ProjectKey:
		f.problem("issue %s with id %q, project %q", issue.Key, q.Get("issueId"), q.Get("projectKey"))
	case q.Get("xdm_e") != site.BaseURL || q.Get("xdm_c") != "channel-"+testPanelAppKey+"__devops-panel" ||
		q.Get("xdm_deprecated_addon_key_do_not_use") != testPanelAppKey || !q.Has("cp") || q.Get("lic") != "none" || q.Get("cv") == "":
		f.problem("iframe parameters %v", q)
	case id.Claims.Subject == "":
		f.problem("token without a user")
	case id.Claims.ExpiresAt.Sub(id.Claims.IssuedAt.Time) != f.lifetime:
		f.problem("token valid from %v to %v", id.Claims.IssuedAt, id.Claims.ExpiresAt)
	case !strings.Contains(r.Header.Get("Accept"), "text/html"):
		f.problem("Accept %q", r.Header.Get("Accept"))
	}
	f.mu.Lock()
	if f.tokens[q.Get("jwt")] {
		f.problems = append(f.problems, "token used twice")
	}
	f.tokens[q.Get("jwt")] = true
	f.served++
	f.perSite[site.ClientKey]++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><h2>DevOps for <span data-testid="issue-key">%s</span></h2>`, q.Get("issueKey"))
}

func (f *fakePanels) problem(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func testPanelSites() []PanelSite {
	issues := []PanelIssue{PanelIssueN(1), PanelIssueN(2), PanelIssueN(3), PanelIssueN(10)}
	return []PanelSite{
		{ClientKey: "site-one", BaseURL: "https://one.atlassian.net", SharedSecret: []byte("secret-one-0123456789abcdef0123456789"), Issues: issues},
		{ClientKey: "site-two", BaseURL: "https://two.atlassian.net", SharedSecret: []byte("secret-two-0123456789abcdef0123456789"), Issues: issues},
	}
}

// TestRunLoadsIssuePanelsWithFreshTokens drives the generator against a
// server that verifies every token as Keyline does. The clock moves one
// second per token, so a token reused from a pool would show as a repeat.
func TestRunLoadsIssuePanelsWithFreshTokens(t *testing.T) {
	sites := testPanelSites()
	var tick atomic.Int64
	start := time.Now()
	now := func() time.Time { return start.Add(time.Duration(tick.Add(1)) * time.Second) }
	fake := newFakePanels(sites, func() time.Time { return start.Add(time.Duration(tick.Load()) * time.Second) })
	// The clock moves with every token, so a worker stalled while the others
	// sign ninety tokens would present an expired one under a 90 s
	// lifetime (seen on a loaded CI machine). A day outlasts any run; the
	// lifetime check above still compares exp − iat exactly.
	fake.lifetime = 24 * time.Hour
	gen, err := IssuePanels{BaseURL: serve(t, fake) + "/", AppKey: testPanelAppKey, Sites: sites,
		TokenLifetime: fake.lifetime, Now: now}.Generator()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Config{Client: NewClient(4, 5*time.Second), Concurrency: 4,
		Warmup: 20 * time.Millisecond, Duration: 300 * time.Millisecond, Generator: gen, CheckRequest: CheckPanel})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("run failed: %v", err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	for _, p := range fake.problems {
		t.Error(p)
	}
	if rep.Sent == 0 || rep.OK != rep.Sent || rep.Labels["panel"] != rep.Sent || rep.Status[200] != rep.Sent {
		t.Errorf("sent %d, ok %d, status %v, outcomes %v", rep.Sent, rep.OK, rep.Status, rep.Labels)
	}
	if fake.served != rep.Sent+rep.WarmupRequests || len(fake.tokens) != fake.served {
		t.Errorf("served %d with %d distinct tokens; report has %d + %d warm-up", fake.served, len(fake.tokens), rep.Sent, rep.WarmupRequests)
	}
	for _, s := range sites {
		if fake.perSite[s.ClientKey] == 0 {
			t.Errorf("no panel of %s was loaded", s.ClientKey)
		}
	}
}

// TestRunReportsPanelRefusals points the generator at a Keyline that knows
// the sites under other secrets: every load is refused, and the report says
// why in the verifier's words.
func TestRunReportsPanelRefusals(t *testing.T) {
	sites := testPanelSites()
	installed := testPanelSites()
	for i := range installed {
		installed[i].SharedSecret = []byte("another-secret-0123456789abcdef0123456789")
	}
	fake := newFakePanels(installed, time.Now)
	gen, err := IssuePanels{BaseURL: serve(t, fake), AppKey: testPanelAppKey, Sites: sites}.Generator()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Config{Concurrency: 2, Duration: 100 * time.Millisecond, Generator: gen, CheckRequest: CheckPanel})
	if err != nil {
		t.Fatal(err)
	}
	runErr := rep.Err()
	if rep.OK != 0 || rep.Status[401] != rep.Sent || runErr == nil {
		t.Fatalf("ok %d, status %v, err %v", rep.OK, rep.Status, runErr)
	}
	if !strings.Contains(runErr.Error(), "status 401: ") || !strings.Contains(runErr.Error(), "invalid signature") {
		t.Errorf("error %q does not give the 401's reason", runErr)
	}
}

func TestCheckPanel(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/jira/panel?issueKey=PAY-1&issueId=10001&jwt=x", nil)
	for _, c := range []struct {
		name, body string
		status     int
		label      string
		wantErr    string // "" = accepted
	}{
		{name: "the panel", status: 200, body: `<h2>DevOps for <span>PAY-1</span></h2>`, label: "panel"},
		{name: "key at the end", status: 200, body: `PAY-1`, label: "panel"},
		{name: "another issue", status: 200, body: `<h2>DevOps for <span>PAY-10</span></h2>`, label: "wrong page", wantErr: `does not show issue "PAY-1"`},
		{name: "key inside another", status: 200, body: `XPAY-1`, label: "wrong page", wantErr: "does not show"},
		{name: "empty state", status: 200, body: `<span>PAY-1</span><p data-testid="empty-state">No DevOps data</p>`,
			label: "empty panel", wantErr: "shows no development"},
		{name: "error page", status: 401, body: `<section class="error" role="alert" data-testid="error">
			<h2>Keyline cannot show this page</h2>
			<p>qsh does not match the request</p></section>`, label: "status 401", wantErr: "status 401: qsh does not match the request"},
		{name: "json error", status: 503, body: `{"error":"Keyline is temporarily unavailable"}`, label: "status 503",
			wantErr: "status 503: Keyline is temporarily unavailable"},
		{name: "bare status", status: 502, body: `bad gateway`, label: "status 502", wantErr: "status 502: Bad Gateway"},
	} {
		label, err := CheckPanel(req, c.status, []byte(c.body))
		if label != c.label {
			t.Errorf("%s: label %q, want %q", c.name, label, c.label)
		}
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.wantErr)
		}
	}
}

func TestIssuePanelsRejectsBadConfig(t *testing.T) {
	sites := testPanelSites()
	for name, g := range map[string]IssuePanels{
		"no app key": {Sites: sites},
		"no sites":   {AppKey: testPanelAppKey},
		"no secret":  {AppKey: testPanelAppKey, Sites: []PanelSite{{ClientKey: "x", Issues: sites[0].Issues}}},
		"no issues":  {AppKey: testPanelAppKey, Sites: []PanelSite{{ClientKey: "x", SharedSecret: []byte("s")}}},
	} {
		if _, err := g.Generator(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestSeedPanel seeds a site on both engines and checks that every issue
// has the history the panel shows, that the plans (shipped, staging, in
// review, with an incident) come out as documented, and that seeding again
// writes the same rows rather than more.
func TestSeedPanel(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ten, err := st.UpsertTenant(ctx, tenant.Install{AppKey: testPanelAppKey, ClientKey: "seed-site",
			BaseURL: "https://seed.atlassian.net", ProductType: "jira", SharedSecret: []byte("seed-secret")})
		if err != nil {
			t.Fatal(err)
		}
		src, _, _, err := st.CreateSource(ctx, ten, store.SourceGeneric, "loadtest-panel")
		if err != nil {
			t.Fatal(err)
		}
		until := time.Now().UTC().Truncate(24 * time.Hour)
		const n = 20
		issues, err := SeedPanel(ctx, st, ten, src.ID, PanelSeed{Issues: n, Until: until, RunID: "one"})
		if err != nil {
			t.Fatal(err)
		}
		if len(issues) != n {
			t.Fatalf("%d issues", len(issues))
		}
		totals := map[string]map[string]int{}
		for i, is := range issues {
			if is != PanelIssueN(i+1) {
				t.Errorf("issue %d is %+v, PanelIssueN says %+v", i+1, is, PanelIssueN(i+1))
			}
			ji, err := st.JiraIssueByKey(ctx, ten, is.Key)
			if err != nil {
				t.Fatalf("%s: %v", is.Key, err)
			}
			dev, err := st.IssueDevelopment(ctx, ten, is.Key, store.DevelopmentLimits{})
			if err != nil {
				t.Fatal(err)
			}
			totals[is.Key] = dev.Totals
			if dev.Totals[store.EntityCommit] == 0 || dev.Totals[store.EntityBranch] != 1 ||
				dev.Totals[store.EntityPullRequest] != 1 || dev.Totals[store.EntityBuild] == 0 {
				t.Errorf("%s: totals %v", is.Key, dev.Totals)
			}
			envs := map[devops.EnvironmentType]bool{}
			for _, d := range dev.Deployments {
				if d.State == devops.DeploymentSuccessful {
					envs[d.EnvironmentType] = true
				}
			}
			num := i + 1
			switch {
			case num%10 == 8:
				if len(dev.Deployments) != 0 || dev.PullRequests[0].State != devops.PullRequestOpen || ji.StatusName != "In Review" {
					t.Errorf("%s in review: %d deployments, pull request %s, status %s", is.Key, len(dev.Deployments), dev.PullRequests[0].State, ji.StatusName)
				}
			case num%10 == 7:
				// Its own pipeline run stops at staging; the next release of
				// its service (PAY-10 for PAY-7) takes it to production.
				if !envs[devops.EnvironmentStaging] {
					t.Errorf("%s: deployed to %v, want staging", is.Key, envs)
				}
				for _, d := range dev.Deployments {
					if d.EnvironmentType == devops.EnvironmentProduction && d.CommitSHA == dev.PullRequests[0].MergeCommitSHA {
						t.Errorf("%s: its own merge went to production", is.Key)
					}
				}
			default:
				if !envs[devops.EnvironmentDevelopment] || !envs[devops.EnvironmentStaging] || !envs[devops.EnvironmentProduction] ||
					ji.StatusCategory != "done" || ji.DoneAt.IsZero() {
					t.Errorf("%s shipped: deployed to %v, status %s/%s done %v", is.Key, envs, ji.StatusName, ji.StatusCategory, ji.DoneAt)
				}
			}
			if wantIncident := num%8 == 5 && num%10 != 7 && num%10 != 8; (len(dev.Incidents) == 1) != wantIncident {
				t.Errorf("%s: %d incidents", is.Key, len(dev.Incidents))
			} else if wantIncident {
				in := dev.Incidents[0]
				if s, ok := dev.Suspects[in.SuspectDeploymentID]; !ok || s.EnvironmentType != devops.EnvironmentProduction {
					t.Errorf("%s: incident's suspect %q is not its production deployment", is.Key, in.SuspectDeploymentID)
				}
			}
		}

		if _, err := SeedPanel(ctx, st, ten, src.ID, PanelSeed{Issues: n, Until: until, RunID: "two"}); err != nil {
			t.Fatalf("seeding again: %v", err)
		}
		for _, is := range issues {
			counts, err := st.CountIssueLinks(ctx, ten, is.Key)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(counts) != fmt.Sprint(totals[is.Key]) {
				t.Errorf("%s after seeding again: %v, first %v", is.Key, counts, totals[is.Key])
			}
		}
	})
}

func TestSeedPanelRejectsBadOptions(t *testing.T) {
	ten := &tenant.Tenant{ID: 1, ClientKey: "x"}
	for _, o := range []PanelSeed{{Issues: 0, Until: time.Now()}, {Issues: 1}, {Issues: maxPanelIssues + 1, Until: time.Now()}} {
		if _, err := SeedPanel(context.Background(), nil, ten, "src", o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// BenchmarkIssuePanelsNext measures the load generator's own work per panel
// load: choosing a site and issue, signing a fresh token and building the
// request. It runs on the same cores as the server in a local load run.
func BenchmarkIssuePanelsNext(b *testing.B) {
	sites := testPanelSites()
	gen, err := IssuePanels{BaseURL: "http://127.0.0.1:8080", AppKey: testPanelAppKey, Sites: sites}.Generator()
	if err != nil {
		b.Fatal(err)
	}
	next := gen(0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := next(); err != nil {
			b.Fatal(err)
		}
	}
}
