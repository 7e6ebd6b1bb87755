package loadtest

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

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
	fmt.Fprint(w, panelPage(q.Get("issueKey"), panelDevelopment))
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

// panelDevelopment is the start of a panel's development: its summary line.
const panelDevelopment = `<ul class="summary" aria-label="Summary" data-testid="summary"><li data-testid="summary-branches">1 branch</li></ul>`

// panelPage is a page shaped like Keyline's issue panel: the layout, the
// heading with the issue's key, then extra (panelDevelopment, the empty
// state) and a list that mentions the issue.
func panelPage(key, extra string) string {
	return `<!DOCTYPE html>
<html lang="en"><head><title>Keyline</title></head><body>
<article class="panel" aria-labelledby="devops-heading" data-testid="issue-panel">
<header class="panel-header"><h2 id="devops-heading">DevOps for <span data-testid="issue-key">` + key + `</span></h2>
<dl class="meta"><div><dt>Site</dt><dd data-testid="site">one.atlassian.net</dd></div></dl></header>` + extra + `
<section data-testid="commits"><ul><li>PAY-1 Retry card authorisations (a1b2c3d)</li></ul></section>
</article>
</body>
</html>
`
}

func TestCheckPanel(t *testing.T) {
	page := panelPage("PAY-1", panelDevelopment)
	for _, c := range []struct {
		name, query, body string
		status            int
		label             string
		wantErr           string // "" = accepted
	}{
		{name: "the panel", body: page, label: "panel"},
		{name: "key not first in the query", query: "cp=&issueKey=PAY-1&jwt=x", body: page, label: "panel"},
		{name: "escaped key", query: "issueKey=PAY%2D1&jwt=x", body: page, label: "panel"},
		{name: "no trailing newline", body: strings.TrimSpace(page), label: "panel"},
		{name: "another issue", body: panelPage("PAY-10", panelDevelopment), label: "wrong page", wantErr: `does not show issue "PAY-1"`},
		{name: "a key the requested one starts", query: "issueKey=PAY-10&jwt=x", body: page, label: "wrong page",
			wantErr: `does not show issue "PAY-10"`},
		{name: "key inside another", body: panelPage("XPAY-1", panelDevelopment), label: "wrong page", wantErr: "does not show"},
		// The page mentions PAY-1 (a commit message) but is another issue's.
		{name: "key elsewhere only", body: panelPage("WEB-2", panelDevelopment+"<p>PAY-1</p>"), label: "wrong page", wantErr: "does not show"},
		{name: "no key asked for", query: "issueId=10001&jwt=x", body: page, label: "wrong page", wantErr: `does not show issue ""`},
		{name: "error page with 200", body: `<!DOCTYPE html><html><body><section data-testid="error"><p>no</p></section></body></html>`,
			label: "wrong page", wantErr: "does not show"},
		{name: "cut before the end", body: strings.TrimSuffix(strings.TrimSpace(page), "</html>"), label: "truncated",
			wantErr: "ends before </html>"},
		{name: "cut in the middle", body: page[:strings.Index(page, "</header>")], label: "truncated", wantErr: "ends before </html>"},
		{name: "empty", body: "", label: "wrong page", wantErr: "does not show"},
		{name: "empty state", body: panelPage("PAY-1", `<div class="empty" data-testid="empty-state">No DevOps data</div>`),
			label: "empty panel", wantErr: "shows no development"},
		{name: "neither summary nor empty state", body: panelPage("PAY-1", ""), label: "no summary", wantErr: "neither a summary"},
		// The summary of another part of the page does not count for the
		// panel: only what follows the heading does.
		{name: "summary before the heading", body: panelDevelopment + panelPage("PAY-1", ""), label: "no summary",
			wantErr: "neither a summary"},
		{name: "cut after the summary", body: page[:strings.Index(page, "</ul>")], label: "truncated", wantErr: "ends before </html>"},
		{name: "error page", status: 401, body: `<section class="error" role="alert" data-testid="error">
			<h2>Keyline cannot show this page</h2>
			<p>qsh does not match the request</p></section>`, label: "status 401", wantErr: "status 401: qsh does not match the request"},
		{name: "json error", status: 503, body: `{"error":"Keyline is temporarily unavailable"}`, label: "status 503",
			wantErr: "status 503: Keyline is temporarily unavailable"},
		{name: "bare status", status: 502, body: `bad gateway`, label: "status 502", wantErr: "status 502: Bad Gateway"},
		{name: "the panel with another status", status: 500, body: page, label: "status 500", wantErr: "status 500"},
	} {
		t.Run(c.name, func(t *testing.T) {
			query := c.query
			if query == "" {
				query = "issueKey=PAY-1&issueId=10001&jwt=x"
			}
			status := c.status
			if status == 0 {
				status = http.StatusOK
			}
			req := httptest.NewRequest(http.MethodGet, "/jira/panel?"+query, nil)
			label, err := CheckPanel(req, status, []byte(c.body))
			if label != c.label {
				t.Errorf("label %q, want %q", label, c.label)
			}
			switch {
			case c.wantErr == "" && err != nil:
				t.Error(err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

// TestPanelTokensAreGolangJWTs checks the generator's hand-written tokens
// against golang-jwt: its parser verifies them with the site's secret, and
// SignedString of the same claims gives the same token, byte for byte, for
// sites whose client keys JSON has to escape and times between seconds.
func TestPanelTokensAreGolangJWTs(t *testing.T) {
	sites := []PanelSite{
		{ClientKey: "site-one", BaseURL: "https://one.atlassian.net", SharedSecret: []byte("secret-one-0123456789abcdef0123456789"),
			Issues: []PanelIssue{PanelIssueN(1), PanelIssueN(10)}},
		{ClientKey: `odd "site" <&> é`, BaseURL: "https://odd.atlassian.net/wiki path", SharedSecret: []byte{0, 1, 2, 255},
			Issues: []PanelIssue{{Key: "A B-1", ID: "1&2", ProjectKey: "A B"}}},
	}
	for _, c := range []struct {
		name     string
		at       time.Time
		lifetime time.Duration
	}{
		{"whole seconds", time.Unix(1764088800, 0), 3 * time.Minute},
		{"between seconds", time.Unix(1764088800, 999_999_999), 90*time.Second + 500*time.Millisecond},
		{"default lifetime", time.Date(2026, 11, 25, 17, 0, 0, 123, time.UTC), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			gen, err := IssuePanels{BaseURL: "http://127.0.0.1:8080", AppKey: testPanelAppKey, Sites: sites,
				TokenLifetime: c.lifetime, Now: func() time.Time { return c.at }}.Generator()
			if err != nil {
				t.Fatal(err)
			}
			lifetime := c.lifetime
			if lifetime == 0 {
				lifetime = DefaultTokenLifetime
			}
			next := gen(3)
			seen := map[string]bool{}
			for range 200 {
				req, err := next()
				if err != nil {
					t.Fatal(err)
				}
				seen[req.URL.Query().Get("issueKey")] = true
				checkPanelToken(t, sites, req, c.at, lifetime)
			}
			if len(seen) != 3 {
				t.Errorf("loaded issues %v, want all three", seen)
			}
		})
	}
}

// checkPanelToken checks req's token as TestPanelTokensAreGolangJWTs says.
func checkPanelToken(t *testing.T, sites []PanelSite, req *http.Request, at time.Time, lifetime time.Duration) {
	t.Helper()
	q := req.URL.Query()
	tok := q.Get("jwt")
	raw, _, ok := strings.Cut(req.URL.RawQuery, "&jwt=")
	if !ok {
		t.Fatalf("no token in %s", req.URL)
	}
	var claims connect.Claims
	site := sites[0]
	parsed, err := jwt.ParseWithClaims(tok, &claims, func(tk *jwt.Token) (any, error) {
		for _, s := range sites {
			if c, ok := tk.Claims.(*connect.Claims); ok && c.Issuer == s.ClientKey {
				site = s
				return s.SharedSecret, nil
			}
		}
		return nil, fmt.Errorf("unknown issuer")
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return at }))
	if err != nil || !parsed.Valid {
		t.Fatalf("golang-jwt refuses %s: %v", tok, err)
	}
	if !slices.Contains(testAccounts(site.ClientKey), claims.Subject) {
		t.Errorf("sub %q is none of %s's users", claims.Subject, site.ClientKey)
	}
	qsh, err := connect.QSH(http.MethodGet, PanelModulePath, raw, jiraBasePath)
	if err != nil {
		t.Fatal(err)
	}
	// What the generator signed before it wrote tokens itself.
	want, err := jwt.NewWithClaims(jwt.SigningMethodHS256, connect.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: site.ClientKey, Subject: claims.Subject,
			IssuedAt: jwt.NewNumericDate(at), ExpiresAt: jwt.NewNumericDate(at.Add(lifetime))},
		QSH: qsh, Context: json.RawMessage(`{}`),
	}).SignedString(site.SharedSecret)
	if err != nil {
		t.Fatal(err)
	}
	gotPayload, wantPayload := tokenPayload(t, tok), tokenPayload(t, want)
	if !reflect.DeepEqual(gotPayload, wantPayload) {
		t.Errorf("claims %v, SignedString's %v", gotPayload, wantPayload)
	}
	if tok != want {
		t.Errorf("token\n%s\nSignedString's\n%s", tok, want)
	}
}

// tokenPayload decodes a token's claims as JSON.
func tokenPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", tok, len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("claims %s: %v", raw, err)
	}
	return m
}

// testAccounts are a site's synthetic users' account ids.
func testAccounts(clientKey string) []string {
	var out []string
	for i := range usersPerSite {
		sum := sha1.Sum([]byte(clientKey + "/user/" + strconv.Itoa(i)))
		out = append(out, hex.EncodeToString(sum[:12]))
	}
	return out
}

// TestPanelRequestsAreTheirOwn checks that a request stays as it was built
// when the worker builds the next: the generator reuses its buffers.
func TestPanelRequestsAreTheirOwn(t *testing.T) {
	var tick atomic.Int64
	gen, err := IssuePanels{BaseURL: "http://127.0.0.1:8080/base/", AppKey: testPanelAppKey, Sites: testPanelSites(),
		Now: func() time.Time { return time.Unix(1764088800+tick.Add(1), 0) }}.Generator()
	if err != nil {
		t.Fatal(err)
	}
	next := gen(0)
	first, err := next()
	if err != nil {
		t.Fatal(err)
	}
	was := first.URL.String()
	if !strings.HasPrefix(was, "http://127.0.0.1:8080/base/jira/panel?issueKey=") || first.Host != "127.0.0.1:8080" {
		t.Fatalf("request to %s (host %q)", was, first.Host)
	}
	tokens := map[string]bool{first.URL.Query().Get("jwt"): true}
	for range 50 {
		req, err := next()
		if err != nil {
			t.Fatal(err)
		}
		tok := req.URL.Query().Get("jwt")
		if tokens[tok] {
			t.Fatalf("token %s issued twice", tok)
		}
		tokens[tok] = true
	}
	if first.URL.String() != was {
		t.Errorf("first request's URL changed to %s", first.URL)
	}
}

func TestJWTHeaderHS256(t *testing.T) {
	tok, err := jwt.New(jwt.SigningMethodHS256).SigningString()
	if err != nil {
		t.Fatal(err)
	}
	if head, _, _ := strings.Cut(tok, "."); head != jwtHeaderHS256 {
		t.Errorf("golang-jwt's HS256 header is %s, the generator writes %s", head, jwtHeaderHS256)
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

// BenchmarkCheckPanel measures the check of one answer, on a page of the
// real panel's size (about 12.5 KB) with the key in its heading.
func BenchmarkCheckPanel(b *testing.B) {
	var items strings.Builder
	for items.Len() < 12_000 {
		items.WriteString(`<li class="item" data-testid="commit"><a href="https://github.com/loadtest/checkout-api/commit/a1b2c3d">a1b2c3d</a> PAY-17 Retry card authorisations</li>` + "\n")
	}
	body := []byte(panelPage("PAY-17", panelDevelopment+items.String()))
	req := httptest.NewRequest(http.MethodGet, "/jira/panel?issueKey=PAY-17&issueId=10017&jwt=x", nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CheckPanel(req, http.StatusOK, body); err != nil {
			b.Fatal(err)
		}
	}
}
