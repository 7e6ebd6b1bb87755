package jira

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/tenant"
)

const secret = "fake-jira-shared-secret-0123456789abcdef01234"

// fakeProjects are the fake Jira's projects by key; "dev-1" may browse
// OPS and WEB, not PAY.
var fakeProjects = map[string]string{"OPS": "10000", "WEB": "10001", "PAY": "10002"}

// fakeJira answers the endpoints like Jira: the admin is "admin-1", user
// "dev-1" may browse issue 10007 only and projects OPS and WEB, issue 10007
// is OPS-7, and fix version "2.0" of project OPS holds OPS-7 and OPS-8
// (pages of maxResults issues).
func fakeJira(t *testing.T, calls *atomic.Int64) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		auth := r.Header.Get("Authorization")
		tok, err := jwt.Parse(strings.TrimPrefix(auth, "JWT "), func(*jwt.Token) (any, error) { return []byte(secret), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("com.example.keyline.jira"))
		if !strings.HasPrefix(auth, "JWT ") || err != nil || !tok.Valid {
			http.Error(w, "bad jwt", http.StatusUnauthorized)
			return
		}
		qsh, _ := connect.QSH(r.Method, r.URL.Path, r.URL.RawQuery, "")
		if tok.Claims.(jwt.MapClaims)["qsh"] != qsh {
			http.Error(w, "bad qsh", http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/rest/api/3/permissions/check":
			var in permissionsCheck
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			out := map[string]any{"globalPermissions": []string{}, "projectPermissions": []any{}}
			if in.AccountID == "admin-1" && len(in.GlobalPermissions) == 1 && in.GlobalPermissions[0] == "ADMINISTER" {
				out["globalPermissions"] = []string{"ADMINISTER"}
			}
			if len(in.ProjectPermissions) == 1 && in.AccountID == "dev-1" {
				ok, okProjects := []int64{}, []int64{}
				for _, id := range in.ProjectPermissions[0].Issues {
					if id == 10007 {
						ok = append(ok, id)
					}
				}
				for _, id := range in.ProjectPermissions[0].Projects {
					if id == 10000 || id == 10001 {
						okProjects = append(okProjects, id)
					}
				}
				out["projectPermissions"] = []any{map[string]any{"permission": "BROWSE_PROJECTS", "issues": ok, "projects": okProjects}}
			}
			json.NewEncoder(w).Encode(out)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/rest/api/3/project/"):
			id, ok := fakeProjects[strings.TrimPrefix(r.URL.Path, "/rest/api/3/project/")]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				json.NewEncoder(w).Encode(map[string]any{"errorMessages": []string{"No project could be found with key."}})
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"id": id, "key": strings.TrimPrefix(r.URL.Path, "/rest/api/3/project/"), "name": "n"})
		case r.Method == http.MethodGet && r.URL.Path == "/rest/api/3/issue/10007":
			json.NewEncoder(w).Encode(map[string]any{"id": "10007", "key": "OPS-7"})
		case r.Method == http.MethodGet && r.URL.Path == "/rest/api/3/search/jql":
			q := r.URL.Query()
			if q.Get("fields") == "" {
				http.Error(w, "without fields only ids come back", http.StatusBadRequest)
				return
			}
			var keys []string
			switch q.Get("jql") {
			case `project in ("OPS") AND fixVersion = "2.0" ORDER BY key ASC`,
				`project in ("OPS", "WEB") AND fixVersion = "2.0" ORDER BY key ASC`:
				keys = []string{"OPS-7", "OPS-8"}
			case `project in ("OPS") AND fixVersion = "3.0" ORDER BY key ASC`:
			default:
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]any{"errorMessages": []string{"The value does not exist for the field 'fixVersion'."}})
				return
			}
			n, _ := strconv.Atoi(q.Get("maxResults"))
			out := map[string]any{"isLast": true}
			if n < len(keys) {
				keys, out["nextPageToken"], out["isLast"] = keys[:n], "page-2", false
			}
			var issues []map[string]any
			for _, k := range keys {
				issues = append(issues, map[string]any{"id": "1" + k[4:], "key": k, "fields": map[string]any{"summary": "s"}})
			}
			out["issues"] = issues
			json.NewEncoder(w).Encode(out)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClient(t *testing.T) {
	var calls atomic.Int64
	srv := fakeJira(t, &calls)
	tn := &tenant.Tenant{ID: 1, AppKey: "com.example.keyline.jira", ClientKey: "c1", BaseURL: srv.URL, SharedSecret: []byte(secret), Installed: true}
	now := time.Now()
	c := New(tn.AppKey, srv.Client(), WithClock(func() time.Time { return now }))
	ctx := context.Background()

	for _, tt := range []struct {
		account string
		want    bool
	}{{"admin-1", true}, {"dev-1", false}, {"", false}} {
		got, err := c.IsAdmin(ctx, tn, tt.account)
		if err != nil || got != tt.want {
			t.Errorf("IsAdmin(%q) = %v, %v; want %v", tt.account, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		account string
		issue   int64
		want    bool
	}{{"dev-1", 10007, true}, {"dev-1", 10008, false}, {"other", 10007, false}} {
		got, err := c.CanBrowseIssue(ctx, tn, tt.account, tt.issue)
		if err != nil || got != tt.want {
			t.Errorf("CanBrowseIssue(%q, %d) = %v, %v; want %v", tt.account, tt.issue, got, err, tt.want)
		}
	}
	key, err := c.IssueKey(ctx, tn, 10007)
	if err != nil || key != "OPS-7" {
		t.Errorf("IssueKey(10007) = %q, %v", key, err)
	}
	if _, err := c.IssueKey(ctx, tn, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("IssueKey(99) err = %v, want ErrNotFound", err)
	}

	// Answers are cached per tenant until the TTL passes.
	before := calls.Load()
	c.IsAdmin(ctx, tn, "admin-1")
	c.CanBrowseIssue(ctx, tn, "dev-1", 10007)
	c.IssueKey(ctx, tn, 10007)
	if calls.Load() != before {
		t.Errorf("cached answers made %d product calls", calls.Load()-before)
	}
	other := *tn
	other.ID = 2
	c.IsAdmin(ctx, &other, "admin-1")
	if calls.Load() != before+1 {
		t.Errorf("another tenant's question was answered from the first tenant's cache")
	}
	now = now.Add(61 * time.Second)
	c.IsAdmin(ctx, tn, "admin-1")
	if calls.Load() != before+2 {
		t.Errorf("expired answer was not asked again")
	}
}

func TestIssuesInFixVersion(t *testing.T) {
	var calls atomic.Int64
	srv := fakeJira(t, &calls)
	tn := &tenant.Tenant{ID: 1, AppKey: "com.example.keyline.jira", ClientKey: "c1", BaseURL: srv.URL, SharedSecret: []byte(secret), Installed: true}
	now := time.Now()
	c := New(tn.AppKey, srv.Client(), WithClock(func() time.Time { return now }))
	ctx := context.Background()

	for _, tt := range []struct {
		projects []string
		version  string
		limit    int
		want     []string
		more     bool
	}{
		{[]string{"OPS"}, "2.0", 50, []string{"OPS-7", "OPS-8"}, false},
		{[]string{"OPS", "WEB"}, "2.0", 0, []string{"OPS-7"}, true},
		{[]string{"OPS"}, "2.0", 1, []string{"OPS-7"}, true},
		{[]string{"OPS"}, "3.0", 10, nil, false},
	} {
		keys, more, err := c.IssuesInFixVersion(ctx, tn, tt.projects, tt.version, tt.limit)
		if err != nil || !slices.Equal(keys, tt.want) || more != tt.more {
			t.Errorf("IssuesInFixVersion(%v, %q, %d) = %v, %v, %v; want %v, %v", tt.projects, tt.version, tt.limit, keys, more, err, tt.want, tt.more)
		}
	}
	// A quote in the version stays inside the JQL string: the fake knows
	// no such version and says so with a 400.
	if _, _, err := c.IssuesInFixVersion(ctx, tn, []string{"OPS"}, `2.0" OR project = "WEB`, 10); !errors.Is(err, ErrBadRequest) {
		t.Errorf("version with a quote: err = %v, want ErrBadRequest", err)
	}
	if got, want := jqlString(`a"b\c`), `"a\"b\\c"`; got != want {
		t.Errorf("jqlString = %s, want %s", got, want)
	}
	if _, _, err := c.IssuesInFixVersion(ctx, tn, nil, "2.0", 10); err == nil {
		t.Error("no projects accepted")
	}

	// Answers are cached per tenant and question until the TTL passes;
	// the cached slice is the caller's to change.
	before := calls.Load()
	keys, _, _ := c.IssuesInFixVersion(ctx, tn, []string{"OPS"}, "2.0", 50)
	keys[0] = "changed"
	keys, _, _ = c.IssuesInFixVersion(ctx, tn, []string{"OPS"}, "2.0", 50)
	if calls.Load() != before || keys[0] != "OPS-7" {
		t.Errorf("cached answer: %d calls, keys %v", calls.Load()-before, keys)
	}
	other := *tn
	other.ID = 2
	c.IssuesInFixVersion(ctx, &other, []string{"OPS"}, "2.0", 50)
	if calls.Load() != before+1 {
		t.Error("another tenant's question was answered from the first tenant's cache")
	}
	now = now.Add(61 * time.Second)
	c.IssuesInFixVersion(ctx, tn, []string{"OPS"}, "2.0", 50)
	if calls.Load() != before+2 {
		t.Error("expired answer was not asked again")
	}
}

func TestCanBrowseProjects(t *testing.T) {
	var calls atomic.Int64
	srv := fakeJira(t, &calls)
	tn := &tenant.Tenant{ID: 1, AppKey: "com.example.keyline.jira", ClientKey: "c1", BaseURL: srv.URL, SharedSecret: []byte(secret), Installed: true}
	now := time.Now()
	c := New(tn.AppKey, srv.Client(), WithClock(func() time.Time { return now }))
	ctx := context.Background()

	// Four project lookups (NOPE is Jira's 404) and one permission check.
	got, err := c.CanBrowseProjects(ctx, tn, "dev-1", []string{"OPS", "PAY", "WEB", "NOPE"})
	want := map[string]bool{"OPS": true, "PAY": false, "WEB": true, "NOPE": false}
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("CanBrowseProjects(dev-1) = %v, %v; want %v", got, err, want)
	}
	if n := calls.Load(); n != 5 {
		t.Errorf("first answer made %d product calls, want 5", n)
	}

	// Answers are cached per account and project; ids per tenant.
	before := calls.Load()
	got, err = c.CanBrowseProjects(ctx, tn, "dev-1", []string{"WEB", "OPS", "PAY", "NOPE"})
	if err != nil || !maps.Equal(got, want) || calls.Load() != before {
		t.Errorf("cached answer = %v, %v after %d calls", got, err, calls.Load()-before)
	}
	got, err = c.CanBrowseProjects(ctx, tn, "other", []string{"OPS", "PAY"})
	if err != nil || got["OPS"] || got["PAY"] || calls.Load() != before+1 {
		t.Errorf("another account = %v, %v after %d calls; want both false after 1 permission check", got, err, calls.Load()-before)
	}
	other := *tn
	other.ID = 2
	before = calls.Load()
	if got, _ := c.CanBrowseProjects(ctx, &other, "dev-1", []string{"OPS"}); !got["OPS"] || calls.Load() != before+2 {
		t.Errorf("another tenant = %v after %d calls; want a lookup and a check of its own", got, calls.Load()-before)
	}
	now = now.Add(61 * time.Second)
	before = calls.Load()
	c.CanBrowseProjects(ctx, tn, "dev-1", []string{"OPS"})
	if calls.Load() != before+2 {
		t.Errorf("expired answer made %d calls, want 2", calls.Load()-before)
	}

	// Anonymous users are never asked about.
	before = calls.Load()
	got, err = c.CanBrowseProjects(ctx, tn, "", []string{"OPS", "WEB"})
	if err != nil || !maps.Equal(got, map[string]bool{"OPS": false, "WEB": false}) || calls.Load() != before {
		t.Errorf("anonymous = %v, %v after %d calls", got, err, calls.Load()-before)
	}
}

func TestCanBrowseProjectsRequest(t *testing.T) {
	var body permissionsCheck
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/rest/api/3/project/OPS":
			w.Write([]byte(`{"id":"10000","key":"OPS"}`))
		case "/rest/api/3/project/PAY":
			w.Write([]byte(`{"id":"10002","key":"PAY"}`))
		case "/rest/api/3/permissions/check":
			json.NewDecoder(r.Body).Decode(&body)
			// Grants of another permission, or of issues, are not the project's.
			w.Write([]byte(`{"projectPermissions":[{"permission":"BROWSE_PROJECTS","issues":[10002],"projects":[10000]},` +
				`{"permission":"ADMINISTER_PROJECTS","projects":[10002]}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tn := &tenant.Tenant{ID: 1, AppKey: "k.jira", ClientKey: "c1", BaseURL: srv.URL, SharedSecret: []byte(secret), Installed: true}
	c := New(tn.AppKey, srv.Client())
	got, err := c.CanBrowseProjects(context.Background(), tn, "acc-1", []string{"OPS", "PAY"})
	if err != nil || !maps.Equal(got, map[string]bool{"OPS": true, "PAY": false}) {
		t.Errorf("CanBrowseProjects = %v, %v", got, err)
	}
	if body.AccountID != "acc-1" || len(body.ProjectPermissions) != 1 ||
		!slices.Equal(body.ProjectPermissions[0].Permissions, []string{"BROWSE_PROJECTS"}) ||
		!slices.Equal(body.ProjectPermissions[0].Projects, []int64{10000, 10002}) || len(body.ProjectPermissions[0].Issues) != 0 {
		t.Errorf("permission check body = %+v", body)
	}
}

func TestClientErrors(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "check") {
			w.Write([]byte("{not json"))
			return
		}
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer srv.Close()
	tn := &tenant.Tenant{ID: 1, AppKey: "k.jira", ClientKey: "c1", BaseURL: srv.URL, SharedSecret: []byte(secret), Installed: true}
	c := New(tn.AppKey, srv.Client(), WithConnectOptions(connect.WithMaxRetries(0)))
	if ok, err := c.IsAdmin(context.Background(), tn, "admin-1"); err == nil || ok {
		t.Errorf("IsAdmin with a broken answer = %v, %v; want an error", ok, err)
	}
	if _, err := c.IssueKey(context.Background(), tn, 1); err == nil {
		t.Error("IssueKey on a 500 succeeded")
	}
	if got, err := c.CanBrowseProjects(context.Background(), tn, "dev-1", []string{"OPS"}); err == nil {
		t.Errorf("CanBrowseProjects on a 500 = %v; want an error", got)
	}
}

// TestFailingJiraIsNotHammered: while Jira fails, concurrent askers of one
// question share a single call (with connect.Client's bounded retries)
// instead of making one each; the failure is not cached, so the next
// question asks again, and once Jira answers the answer is cached.
func TestFailingJiraIsNotHammered(t *testing.T) {
	const (
		callers    = 16
		maxRetries = 1
	)
	var calls atomic.Int64
	var healthy atomic.Bool
	first := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case first <- struct{}{}:
		default:
		}
		<-release
		if healthy.Load() {
			w.Write([]byte(`{"globalPermissions":["ADMINISTER"]}`))
			return
		}
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	tn := &tenant.Tenant{ID: 1, AppKey: "k.jira", ClientKey: "c1", BaseURL: srv.URL, SharedSecret: []byte(secret), Installed: true}
	c := New(tn.AppKey, srv.Client(), WithConnectOptions(connect.WithMaxRetries(maxRetries)))
	ctx := context.Background()

	// Jira holds the first request until every caller has asked.
	var started, done sync.WaitGroup
	errs := make([]error, callers)
	for i := range callers {
		started.Add(1)
		done.Go(func() {
			started.Done()
			_, errs[i] = c.IsAdmin(ctx, tn, "admin-1")
		})
	}
	started.Wait()
	<-first
	close(release)
	done.Wait()
	for i, err := range errs {
		if !errors.Is(err, connect.ErrRetriesExhausted) {
			t.Errorf("caller %d: err = %v, want the failure", i, err)
		}
	}
	// Without sharing, each caller makes maxRetries+1 calls.
	if n := calls.Load(); n >= callers {
		t.Errorf("%d callers made %d calls to a failing Jira; concurrent askers must share one", callers, n)
	}

	before := calls.Load()
	if _, err := c.IsAdmin(ctx, tn, "admin-1"); err == nil || calls.Load() != before+maxRetries+1 {
		t.Errorf("asking again: err %v after %d calls; want the failure not cached and %d calls", err, calls.Load()-before, maxRetries+1)
	}
	healthy.Store(true)
	if admin, err := c.IsAdmin(ctx, tn, "admin-1"); err != nil || !admin {
		t.Fatalf("after Jira recovered: %v, %v", admin, err)
	}
	before = calls.Load()
	if admin, err := c.IsAdmin(ctx, tn, "admin-1"); err != nil || !admin || calls.Load() != before {
		t.Errorf("cached answer: %v, %v after %d calls", admin, err, calls.Load()-before)
	}
}

// TestSharedCallOutlivesAGivingUpCaller: a caller whose context ends stops
// waiting, but the call it started carries on for the others.
func TestSharedCallOutlivesAGivingUpCaller(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		w.Write([]byte(`{"id":"10007","key":"OPS-7"}`))
	}))
	defer srv.Close()
	tn := &tenant.Tenant{ID: 1, AppKey: "k.jira", ClientKey: "c1", BaseURL: srv.URL, SharedSecret: []byte(secret), Installed: true}
	c := New(tn.AppKey, srv.Client())

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := c.IssueKey(ctx, tn, 10007)
		gaveUp <- err
	}()
	<-arrived
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: err = %v, want context.Canceled", err)
	}
	// The call is still on its way; its answer is cached for everyone.
	close(release)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if key, ok := c.cached(tn, "key:10007"); ok {
			if key != "OPS-7" {
				t.Fatalf("cached %v, want OPS-7", key)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the call was dropped with the caller who gave up")
		}
	}
}
