package preview_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/jira"
	"github.com/keyline/keyline/app/preview"
	"github.com/keyline/keyline/app/secret"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

const prefix = "dev.keyline"

// fixture is a seeded demo site on a temporary SQLite database, shared by
// the tests of this file: seeding months of history takes a moment.
type fixture struct {
	st   *store.Store
	demo *preview.Demo
	site *httptest.Server // the preview host, which is the demo site
	host *preview.Host
	now  time.Time
}

var (
	fixOnce   sync.Once
	fix       *fixture
	fixErr    error
	sharedDir string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyline-preview-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedDir = dir
	code := m.Run()
	if fix != nil {
		fix.site.Close()
		fix.st.Close()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func openStore(dir string) (*store.Store, error) {
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := secret.NewSealer(key)
	if err != nil {
		return nil, err
	}
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "keyline.db"), sealer, nil)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(context.Background()); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// seeded seeds once per test binary; the directory outlives the first test,
// so it is made by hand and removed in TestMain.
func seeded(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		f := &fixture{now: time.Now()}
		var err error
		if f.st, err = openStore(sharedDir); err != nil {
			fixErr = err
			return
		}
		f.site = httptest.NewUnstartedServer(nil)
		f.demo, err = preview.Seed(context.Background(), f.st, preview.SeedOptions{
			AppKeyPrefix: prefix, SiteURL: "http://" + f.site.Listener.Addr().String(), Now: f.now})
		if err != nil {
			fixErr = err
			return
		}
		f.host, err = preview.New(f.demo.HostOptions(f.st, prefix, "http://127.0.0.1:1"))
		if err != nil {
			fixErr = err
			return
		}
		f.site.Config.Handler = f.host
		f.site.Start()
		fix = f
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func TestSeedTellsTheFeaturedStory(t *testing.T) {
	f := seeded(t)
	d := f.demo
	if d.Featured == "" || d.Issues[0].Key != d.Featured {
		t.Fatalf("featured issue %q should come first in %v", d.Featured, d.Issues[:1])
	}
	if len(d.Projects) != 3 || len(d.Issues) < 25 {
		t.Fatalf("%d projects, %d issues", len(d.Projects), len(d.Issues))
	}
	dev, err := f.st.IssueDevelopment(context.Background(), d.Jira, d.Featured, store.DevelopmentLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(dev.Commits) < 2 || len(dev.Branches) == 0 || len(dev.PullRequests) != 1 {
		t.Errorf("featured: %d commits, %d branches, %d pull requests", len(dev.Commits), len(dev.Branches), len(dev.PullRequests))
	}
	if len(dev.PullRequests) == 1 && dev.PullRequests[0].State != devops.PullRequestMerged {
		t.Errorf("featured pull request is %s, want merged", dev.PullRequests[0].State)
	}
	var builds []devops.BuildState
	for _, b := range dev.Builds {
		builds = append(builds, b.State)
	}
	if !slices.Contains(builds, devops.BuildFailed) || !slices.Contains(builds, devops.BuildSuccessful) {
		t.Errorf("featured builds %v: want a failed one and a successful one", builds)
	}
	envs := map[string]bool{}
	for _, dep := range dev.Deployments {
		if dep.State == devops.DeploymentSuccessful {
			envs[dep.EnvironmentName] = true
		}
	}
	for _, e := range []string{"development", "staging", "production"} {
		if !envs[e] {
			t.Errorf("featured issue never reached %s: %v", e, envs)
		}
	}
	if len(dev.Incidents) != 1 || dev.Incidents[0].SuspectDeploymentID == "" {
		t.Fatalf("featured incidents: %+v", dev.Incidents)
	}
	if s := dev.Suspects[dev.Incidents[0].SuspectDeploymentID]; s.EnvironmentType != devops.EnvironmentProduction {
		t.Errorf("suspect deployment %+v is not a production one", s)
	}
	is, err := f.st.JiraIssueByKey(context.Background(), d.Jira, d.Featured)
	if err != nil || is.StatusName != "Done" || is.DoneAt.IsZero() || is.StartedAt.IsZero() {
		t.Errorf("featured issue in Jira: %+v, %v", is, err)
	}
}

func TestSeedHasAFailedDeploymentARollbackAndAnOpenIncident(t *testing.T) {
	f := seeded(t)
	ctx := context.Background()
	states := map[devops.DeploymentState]int{}
	open := 0
	for _, is := range f.demo.Issues {
		dev, err := f.st.IssueDevelopment(ctx, f.demo.Jira, is.Key, store.DevelopmentLimits{Deployments: store.MaxDevelopmentLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dev.Deployments {
			if d.EnvironmentType == devops.EnvironmentProduction {
				states[d.State]++
			}
		}
		for _, in := range dev.Incidents {
			if in.Status == devops.IncidentOpen {
				open++
			}
		}
		// The story must read forwards: nothing deploys a change before it merged.
		for _, pr := range dev.PullRequests {
			for _, d := range dev.Deployments {
				if pr.State == devops.PullRequestMerged && d.FinishedAt.Before(pr.MergedAt) {
					t.Errorf("%s: deployment %s #%d to %s finished %s, before its pull request merged %s", is.Key,
						d.PipelineID, d.SequenceNumber, d.EnvironmentName, d.FinishedAt, pr.MergedAt)
				}
			}
		}
	}
	if states[devops.DeploymentFailed] == 0 || states[devops.DeploymentRolledBack] == 0 || states[devops.DeploymentSuccessful] < 10 {
		t.Errorf("production deployment states linked to issues: %v", states)
	}
	if open == 0 {
		t.Error("no open incident linked to an issue")
	}
}

func TestSeedAgainReusesTheSite(t *testing.T) {
	f := seeded(t)
	again, err := preview.Seed(context.Background(), f.st, preview.SeedOptions{AppKeyPrefix: prefix, SiteURL: "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused || again.Events != 0 {
		t.Fatalf("second seed: reused %v, %d events", again.Reused, again.Events)
	}
	if string(again.Jira.SharedSecret) != string(f.demo.Jira.SharedSecret) {
		t.Error("reseeding changed the shared secret: open pages would stop verifying")
	}
	// Put the site back where the fixture serves it.
	if _, err := preview.Seed(context.Background(), f.st, preview.SeedOptions{AppKeyPrefix: prefix, SiteURL: f.site.URL}); err != nil {
		t.Fatal(err)
	}
}

func TestSeedRefusesARealSite(t *testing.T) {
	f := seeded(t)
	_, err := preview.Seed(context.Background(), f.st, preview.SeedOptions{AppKeyPrefix: prefix, SiteURL: "https://acme.atlassian.net"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("seeding a real site: %v", err)
	}
	real := *f.demo.Jira
	real.BaseURL = "https://acme.atlassian.net"
	opts := f.demo.HostOptions(f.st, prefix, "")
	opts.Jira = &real
	if _, err := preview.New(opts); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("a host for a real site: %v", err)
	}
}

var iframeSrc = regexp.MustCompile(`<iframe id="frame-([a-z-]+)"[^>]* src="([^"]+)"`)

// frames loads the host page and returns its iframe URLs by frame id.
func frames(t *testing.T, base, query string) map[string]string {
	t.Helper()
	res, err := http.Get(base + "/" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("host page: %d %s", res.StatusCode, body)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-src http://127.0.0.1:1") ||
		strings.Contains(csp, "unsafe-inline") {
		t.Errorf("host page CSP %q", csp)
	}
	out := map[string]string{}
	for _, m := range iframeSrc.FindAllStringSubmatch(string(body), -1) {
		out[m[1]] = strings.ReplaceAll(m[2], "&amp;", "&")
	}
	return out
}

func TestHostPageSignsEachFrameLikeTheProducts(t *testing.T) {
	f := seeded(t)
	v := connect.NewVerifier(tenant.NewCache(f.st))
	got := frames(t, f.site.URL, "?issue=WEB-7")
	want := []string{"issue-panel", "issue-summary", "macro-status", "macro-deployments", "project-page", "jira-configure", "confluence-configure"}
	for _, id := range want {
		src, ok := got[id]
		if !ok {
			t.Errorf("no iframe %s in %v", id, got)
			continue
		}
		if !strings.HasPrefix(src, "http://127.0.0.1:1/") {
			t.Errorf("%s: src %s is not on Keyline", id, src)
		}
		for _, p := range []string{"xdm_e=" + strings.ReplaceAll(f.site.URL, ":", "%3A"), "xdm_c=channel-dev.keyline.", "cp=", "lic=none", "cv=", "xdm_deprecated_addon_key_do_not_use=dev.keyline.", "&jwt="} {
			if !strings.Contains(strings.ReplaceAll(src, "%2F", "/"), strings.ReplaceAll(p, "%2F", "/")) {
				t.Errorf("%s: src lacks %s: %s", id, p, src)
			}
		}
		r := httptest.NewRequest(http.MethodGet, src, nil)
		app, base := prefix+".jira", "/jira"
		if strings.HasPrefix(r.URL.Path, "/confluence/") {
			app, base = prefix+".confluence", "/confluence"
		}
		id2, err := v.Verify(context.Background(), r, app, base, connect.QSHComputed)
		if err != nil {
			t.Errorf("%s: Keyline's verifier refuses the frame URL: %v", id, err)
			continue
		}
		if id2.AccountID != preview.AdminAccountID {
			t.Errorf("%s: account %q", id, id2.AccountID)
		}
		// A context-token route must refuse the iframe token (spec §4.5).
		if _, err := v.Verify(context.Background(), r, app, base, connect.QSHContext); err == nil {
			t.Errorf("%s: iframe token accepted as a context token", id)
		}
	}
	panel := got["issue-panel"]
	for _, p := range []string{"/jira/panel?", "issueKey=WEB-7", "issueId=10018", "projectKey=WEB"} {
		if !strings.Contains(panel, p) {
			t.Errorf("panel src lacks %s: %s", p, panel)
		}
	}
	if m := got["macro-deployments"]; !strings.Contains(m, "view=deployments") || !strings.Contains(m, "projects=PAY%2CWEB%2COPS") {
		t.Errorf("macro src %s", m)
	}
}

func TestHostPageAsViewerHidesTheConfigurePage(t *testing.T) {
	f := seeded(t)
	got := frames(t, f.site.URL, "?as=viewer")
	if _, ok := got["jira-configure"]; ok {
		t.Error("a team member sees Jira's configure page, which has the user_is_admin condition")
	}
	if _, ok := got["issue-panel"]; !ok {
		t.Error("no issue panel for the featured issue")
	}
	if src := got["issue-panel"]; !strings.Contains(src, "issueKey="+f.demo.Featured) {
		t.Errorf("default issue: %s", src)
	}
}

func TestHostPageUnknownIssue(t *testing.T) {
	f := seeded(t)
	got := frames(t, f.site.URL, "?issue=NOPE-1")
	if _, ok := got["issue-panel"]; ok {
		t.Error("an issue the site does not have got a panel")
	}
	if _, ok := got["macro-status"]; !ok {
		t.Error("the Confluence page needs no issue")
	}
}

func TestContextTokens(t *testing.T) {
	f := seeded(t)
	v := connect.NewVerifier(tenant.NewCache(f.st))
	for _, tc := range []struct{ frame, app, base, account string }{
		{"issue-panel", prefix + ".jira", "/jira", preview.AdminAccountID},
		{"macro-status", prefix + ".confluence", "/confluence", preview.ViewerAccountID},
	} {
		q := "?frame=" + tc.frame
		if tc.account == preview.ViewerAccountID {
			q += "&as=viewer"
		}
		res, err := http.Get(f.site.URL + "/preview/token" + q)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Token string }
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != 200 || body.Token == "" {
			t.Fatalf("%s: %d", tc.frame, res.StatusCode)
		}
		r := httptest.NewRequest(http.MethodGet, "https://keyline.example"+tc.base+"/api/anything", nil)
		r.Header.Set("Authorization", "JWT "+body.Token)
		id, err := v.Verify(context.Background(), r, tc.app, tc.base, connect.QSHContext)
		if err != nil {
			t.Fatalf("%s: context token refused: %v", tc.frame, err)
		}
		if id.AccountID != tc.account {
			t.Errorf("%s: account %q, want %q", tc.frame, id.AccountID, tc.account)
		}
		if _, err := v.Verify(context.Background(), r, tc.app, tc.base, connect.QSHComputed); err == nil {
			t.Errorf("%s: a context token opened a module route", tc.frame)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.site.URL+"/preview/token?frame=issue-panel", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site page got a token: %d", res.StatusCode)
	}
}

// TestFakeJiraAnswersKeylinesQuestions drives the fake through Keyline's own
// Jira client, which signs each call with the tenant's secret.
func TestFakeJiraAnswersKeylinesQuestions(t *testing.T) {
	f := seeded(t)
	ctx := context.Background()
	c := jira.New(prefix+".jira", f.site.Client())
	jt, err := f.st.TenantByClientKey(ctx, prefix+".jira", preview.DemoJiraClientKey)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.IsAdmin(ctx, jt, preview.AdminAccountID); err != nil || !ok {
		t.Errorf("admin: %v %v", ok, err)
	}
	if ok, err := c.IsAdmin(ctx, jt, preview.ViewerAccountID); err != nil || ok {
		t.Errorf("viewer is admin: %v %v", ok, err)
	}
	featured := f.demo.Issues[0]
	id := mustInt(t, featured.ID)
	if key, err := c.IssueKey(ctx, jt, id); err != nil || key != featured.Key {
		t.Errorf("IssueKey(%d) = %q, %v", id, key, err)
	}
	if ok, err := c.CanBrowseIssue(ctx, jt, preview.ViewerAccountID, id); err != nil || !ok {
		t.Errorf("viewer may not browse: %v %v", ok, err)
	}
	if _, err := c.IssueKey(ctx, jt, 99999); !errors.Is(err, jira.ErrNotFound) {
		t.Errorf("unknown issue: %v", err)
	}
	// A call signed with another secret is refused.
	forged := *jt
	forged.SharedSecret = []byte("not-the-secret-not-the-secret-not-the-secret")
	if _, err := c.IsAdmin(ctx, &forged, "someone-else"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("forged call: %v", err)
	}
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": prefix + ".jira", "qsh": "wrong",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()}).SignedString(jt.SharedSecret)
	req, _ := http.NewRequest(http.MethodGet, f.site.URL+"/rest/api/3/issue/"+featured.ID, nil)
	req.Header.Set("Authorization", "JWT "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong qsh: %d", res.StatusCode)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestProductLinksLandOnTheHostPage(t *testing.T) {
	f := seeded(t)
	c := f.site.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for path, want := range map[string]string{
		"/browse/PAY-3": "/?issue=PAY-3",
		"/plugins/servlet/ac/dev.keyline.jira/configure":       "/#jira-configure",
		"/plugins/servlet/ac/dev.keyline.confluence/configure": "/#confluence-configure",
	} {
		res, err := c.Get(f.site.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || loc != want {
			t.Errorf("%s: %d → %q, want %q", path, res.StatusCode, loc, want)
		}
	}
}

func TestAllJSStub(t *testing.T) {
	f := seeded(t)
	res, err := http.Get(f.site.URL + "/preview/all.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/javascript") || string(body) != string(preview.AllJS()) {
		t.Errorf("stub served as %q", res.Header.Get("Content-Type"))
	}
	for _, api := range []string{"resize:", "sizeToParent:", "getToken:", "getContext:", "events:", "navigator:"} {
		if !strings.Contains(string(body), api) {
			t.Errorf("stub lacks AP %s", api)
		}
	}
}
