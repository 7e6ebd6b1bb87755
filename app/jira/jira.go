// Package jira calls a tenant's Jira REST API as the app, through the signed
// Connect client: who may administer the site, who may see an issue, and which
// issue an id names. Results are cached briefly so panels and API calls do not
// cost a product round trip each.
package jira

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/tenant"
)

// ErrNotFound means Jira answered 404: it does not know the issue, or the app may not see it.
var ErrNotFound = errors.New("jira: not found")

// maxResponse bounds what Keyline reads from Jira for these small calls.
const maxResponse = 1 << 20

// Client asks Jira questions on behalf of Keyline's Jira app.
type Client struct {
	appKey string
	http   *http.Client
	ttl    time.Duration
	now    func() time.Time
	opts   []connect.ClientOption

	mu    sync.Mutex
	cache map[cacheKey]cacheEntry
}

type cacheKey struct {
	tenantID int64
	question string
}

type cacheEntry struct {
	value   any
	expires time.Time
}

// Option configures a Client.
type Option func(*Client)

// WithTTL sets how long answers are cached (default 60 s). Permissions change
// rarely; a minute bounds how long a revoked user keeps seeing counts.
func WithTTL(d time.Duration) Option { return func(c *Client) { c.ttl = d } }

// WithClock replaces time.Now in tests.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// WithConnectOptions passes options to every signed connect.Client.
func WithConnectOptions(o ...connect.ClientOption) Option {
	return func(c *Client) { c.opts = append(c.opts, o...) }
}

// maxCacheEntries keeps a flood of distinct questions from growing memory.
const maxCacheEntries = 50_000

// New returns a client for the Jira app appKey; httpClient carries timeouts.
func New(appKey string, httpClient *http.Client, opts ...Option) *Client {
	c := &Client{appKey: appKey, http: httpClient, ttl: time.Minute, now: time.Now, cache: map[cacheKey]cacheEntry{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

func (c *Client) cached(t *tenant.Tenant, q string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cache[cacheKey{t.ID, q}]
	if !ok || c.now().After(e.expires) {
		return nil, false
	}
	return e.value, true
}

func (c *Client) remember(t *tenant.Tenant, q string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cache) >= maxCacheEntries {
		now := c.now()
		for k, e := range c.cache {
			if now.After(e.expires) {
				delete(c.cache, k)
			}
		}
		if len(c.cache) >= maxCacheEntries {
			clear(c.cache)
		}
	}
	c.cache[cacheKey{t.ID, q}] = cacheEntry{value: v, expires: c.now().Add(c.ttl)}
}

// permissionsCheck is the body of POST /rest/api/3/permissions/check. A
// Connect app may ask it about any user from its server without being an
// administrator itself.
type permissionsCheck struct {
	AccountID          string               `json:"accountId"`
	GlobalPermissions  []string             `json:"globalPermissions,omitempty"`
	ProjectPermissions []projectPermissions `json:"projectPermissions,omitempty"`
}

type projectPermissions struct {
	Permissions []string `json:"permissions"`
	Issues      []int64  `json:"issues,omitempty"`
}

type permissionGrants struct {
	GlobalPermissions  []string `json:"globalPermissions"`
	ProjectPermissions []struct {
		Permission string  `json:"permission"`
		Issues     []int64 `json:"issues"`
	} `json:"projectPermissions"`
}

// IsAdmin reports whether the user administers the Jira site.
func (c *Client) IsAdmin(ctx context.Context, t *tenant.Tenant, accountID string) (bool, error) {
	if accountID == "" {
		return false, nil
	}
	q := "admin:" + accountID
	if v, ok := c.cached(t, q); ok {
		return v.(bool), nil
	}
	var g permissionGrants
	if err := c.post(ctx, t, "/rest/api/3/permissions/check", permissionsCheck{AccountID: accountID, GlobalPermissions: []string{"ADMINISTER"}}, &g); err != nil {
		return false, fmt.Errorf("jira: check admin permission: %w", err)
	}
	admin := false
	for _, p := range g.GlobalPermissions {
		admin = admin || p == "ADMINISTER"
	}
	c.remember(t, q, admin)
	return admin, nil
}

// CanBrowseIssue reports whether the user may see the issue with this id.
func (c *Client) CanBrowseIssue(ctx context.Context, t *tenant.Tenant, accountID string, issueID int64) (bool, error) {
	if accountID == "" {
		return false, nil
	}
	q := "browse:" + accountID + ":" + strconv.FormatInt(issueID, 10)
	if v, ok := c.cached(t, q); ok {
		return v.(bool), nil
	}
	var g permissionGrants
	body := permissionsCheck{AccountID: accountID, ProjectPermissions: []projectPermissions{{Permissions: []string{"BROWSE_PROJECTS"}, Issues: []int64{issueID}}}}
	if err := c.post(ctx, t, "/rest/api/3/permissions/check", body, &g); err != nil {
		return false, fmt.Errorf("jira: check browse permission: %w", err)
	}
	ok := false
	for _, p := range g.ProjectPermissions {
		if p.Permission != "BROWSE_PROJECTS" {
			continue
		}
		for _, id := range p.Issues {
			ok = ok || id == issueID
		}
	}
	c.remember(t, q, ok)
	return ok, nil
}

// IssueKey returns the current key of the issue with this id; keys change when
// an issue moves between projects, ids do not.
func (c *Client) IssueKey(ctx context.Context, t *tenant.Tenant, issueID int64) (string, error) {
	q := "key:" + strconv.FormatInt(issueID, 10)
	if v, ok := c.cached(t, q); ok {
		return v.(string), nil
	}
	var out struct {
		Key string `json:"key"`
	}
	if err := c.get(ctx, t, "/rest/api/3/issue/"+strconv.FormatInt(issueID, 10)+"?fields=project", &out); err != nil {
		return "", fmt.Errorf("jira: get issue %d: %w", issueID, err)
	}
	c.remember(t, q, out.Key)
	return out.Key, nil
}

func (c *Client) client(t *tenant.Tenant) *connect.Client {
	return connect.NewClient(c.appKey, t, c.http, c.opts...)
}

func (c *Client) post(ctx context.Context, t *tenant.Tenant, path string, in, out any) error {
	resp, err := c.client(t).PostJSON(ctx, path, in)
	if err != nil {
		return err
	}
	return decode(resp, out)
}

func (c *Client) get(ctx context.Context, t *tenant.Tenant, pathAndQuery string, out any) error {
	resp, err := c.client(t).Get(ctx, pathAndQuery)
	if err != nil {
		return err
	}
	return decode(resp, out)
}

func decode(resp *http.Response, out any) error {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrNotFound
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("unexpected status %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}
