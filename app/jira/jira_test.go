package jira

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/tenant"
)

const secret = "fake-jira-shared-secret-0123456789abcdef01234"

// fakeJira answers the two endpoints like Jira: the admin is "admin-1", user
// "dev-1" may browse issue 10007 only, issue 10007 is OPS-7.
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
				var ok []int64
				for _, id := range in.ProjectPermissions[0].Issues {
					if id == 10007 {
						ok = append(ok, id)
					}
				}
				out["projectPermissions"] = []any{map[string]any{"permission": "BROWSE_PROJECTS", "issues": ok, "projects": []int64{}}}
			}
			json.NewEncoder(w).Encode(out)
		case r.Method == http.MethodGet && r.URL.Path == "/rest/api/3/issue/10007":
			json.NewEncoder(w).Encode(map[string]any{"id": "10007", "key": "OPS-7"})
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
}
