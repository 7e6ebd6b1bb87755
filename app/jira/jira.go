// Package jira calls a tenant's Jira REST API as the app, through the signed
// Connect client: who may administer the site, who may see an issue, which
// issue an id names, and which issues a fix version holds. Results are cached
// briefly so panels, macros and API calls do not cost a product round trip
// each, and concurrent identical questions share one round trip, so a
// failing Jira is not asked once per waiting page.
package jira

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/tenant"
)

// ErrNotFound means Jira answered 404: it does not know the issue, or the app may not see it.
var ErrNotFound = errors.New("jira: not found")

// ErrBadRequest means Jira answered 400: it refused the question, as a JQL
// search naming a fix version that no listed project has.
var ErrBadRequest = errors.New("jira: bad request")

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
	// group lets concurrent askers of one question share a single call.
	group singleflight.Group
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

// maxFlight bounds one shared call to Jira, retries and their waits
// included. It is the call's own deadline, since the call does not end with
// the first caller who gives up: others may be waiting on it.
const maxFlight = 30 * time.Second

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

// ask answers question q of t from the cache or else by fn, which runs once
// for all the callers asking q at the same time. Answers are cached for the
// TTL; failures are not cached, so the next request asks Jira again, but
// while Jira fails each question costs one call at a time (with the bounded
// retries of connect.Client), not one per waiting caller.
func (c *Client) ask(ctx context.Context, t *tenant.Tenant, q string, fn func(ctx context.Context) (any, error)) (any, error) {
	if v, ok := c.cached(t, q); ok {
		return v, nil
	}
	return c.shared(ctx, t, q, func(ctx context.Context) (any, error) {
		v, err := fn(ctx)
		if err == nil {
			c.remember(t, q, v)
		}
		return v, err
	})
}

// shared runs fn once for all concurrent callers with the same tenant and
// key. The call keeps the first caller's values but not its cancellation,
// and is bounded by maxFlight; each caller still stops waiting when its own
// context ends.
func (c *Client) shared(ctx context.Context, t *tenant.Tenant, key string, fn func(ctx context.Context) (any, error)) (any, error) {
	ch := c.group.DoChan(strconv.FormatInt(t.ID, 10)+"\x00"+key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxFlight)
		defer cancel()
		return fn(fctx)
	})
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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
	Projects    []int64  `json:"projects,omitempty"`
}

type permissionGrants struct {
	GlobalPermissions  []string `json:"globalPermissions"`
	ProjectPermissions []struct {
		Permission string  `json:"permission"`
		Issues     []int64 `json:"issues"`
		Projects   []int64 `json:"projects"`
	} `json:"projectPermissions"`
}

// IsAdmin reports whether the user administers the Jira site.
func (c *Client) IsAdmin(ctx context.Context, t *tenant.Tenant, accountID string) (bool, error) {
	if accountID == "" {
		return false, nil
	}
	v, err := c.ask(ctx, t, "admin:"+accountID, func(ctx context.Context) (any, error) {
		var g permissionGrants
		if err := c.post(ctx, t, "/rest/api/3/permissions/check", permissionsCheck{AccountID: accountID, GlobalPermissions: []string{"ADMINISTER"}}, &g); err != nil {
			return nil, err
		}
		admin := false
		for _, p := range g.GlobalPermissions {
			admin = admin || p == "ADMINISTER"
		}
		return admin, nil
	})
	if err != nil {
		return false, fmt.Errorf("jira: check admin permission: %w", err)
	}
	return v.(bool), nil
}

// CanBrowseIssue reports whether the user may see the issue with this id.
func (c *Client) CanBrowseIssue(ctx context.Context, t *tenant.Tenant, accountID string, issueID int64) (bool, error) {
	if accountID == "" {
		return false, nil
	}
	q := "browse:" + accountID + ":" + strconv.FormatInt(issueID, 10)
	v, err := c.ask(ctx, t, q, func(ctx context.Context) (any, error) {
		var g permissionGrants
		body := permissionsCheck{AccountID: accountID, ProjectPermissions: []projectPermissions{{Permissions: []string{"BROWSE_PROJECTS"}, Issues: []int64{issueID}}}}
		if err := c.post(ctx, t, "/rest/api/3/permissions/check", body, &g); err != nil {
			return nil, err
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
		return ok, nil
	})
	if err != nil {
		return false, fmt.Errorf("jira: check browse permission: %w", err)
	}
	return v.(bool), nil
}

// CanBrowseProjects reports, for each of projectKeys, whether the user may
// browse that Jira project. A key Jira does not know (or does not show the
// app) is false, and so is every key for an anonymous user, who is not asked
// about. Project ids and answers are cached per tenant (and account) like
// the other questions; only the keys not cached cost one permission check.
func (c *Client) CanBrowseProjects(ctx context.Context, t *tenant.Tenant, accountID string, projectKeys []string) (map[string]bool, error) {
	out := make(map[string]bool, len(projectKeys))
	for _, k := range projectKeys {
		out[k] = false
	}
	if accountID == "" {
		return out, nil
	}
	ids := map[string]int64{}
	var ask []int64
	for _, k := range projectKeys {
		if _, done := ids[k]; done {
			continue
		}
		if v, ok := c.cached(t, browseProjectQuestion(accountID, k)); ok {
			out[k] = v.(bool)
			continue
		}
		id, err := c.projectID(ctx, t, k)
		if err != nil {
			return nil, err
		}
		if id == 0 {
			continue // no such project: false
		}
		ids[k] = id
		if !slices.Contains(ask, id) {
			ask = append(ask, id)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	// Concurrent askers of the same projects share the check; its answer
	// is cached per project below, not as a whole.
	slices.Sort(ask)
	key := "browseprojects:" + accountID
	for _, id := range ask {
		key += ":" + strconv.FormatInt(id, 10)
	}
	v, err := c.shared(ctx, t, key, func(ctx context.Context) (any, error) {
		var g permissionGrants
		body := permissionsCheck{AccountID: accountID, ProjectPermissions: []projectPermissions{{Permissions: []string{"BROWSE_PROJECTS"}, Projects: ask}}}
		if err := c.post(ctx, t, "/rest/api/3/permissions/check", body, &g); err != nil {
			return nil, err
		}
		granted := map[int64]bool{}
		for _, p := range g.ProjectPermissions {
			if p.Permission != "BROWSE_PROJECTS" {
				continue
			}
			for _, id := range p.Projects {
				granted[id] = true
			}
		}
		return granted, nil
	})
	if err != nil {
		return nil, fmt.Errorf("jira: check project browse permission: %w", err)
	}
	granted := v.(map[int64]bool) // shared by the callers: read only
	for k, id := range ids {
		out[k] = granted[id]
		c.remember(t, browseProjectQuestion(accountID, k), out[k])
	}
	return out, nil
}

func browseProjectQuestion(accountID, projectKey string) string {
	return "browseproject:" + accountID + ":" + projectKey
}

// projectID returns the id of the project with this key, or 0 when Jira
// does not know it (404). Ids are what the permission check takes.
func (c *Client) projectID(ctx context.Context, t *tenant.Tenant, key string) (int64, error) {
	v, err := c.ask(ctx, t, "projectid:"+key, func(ctx context.Context) (any, error) {
		var out struct {
			ID string `json:"id"`
		}
		err := c.get(ctx, t, "/rest/api/3/project/"+url.PathEscape(key), &out)
		switch {
		case errors.Is(err, ErrNotFound):
			return int64(0), nil
		case err != nil:
			return nil, err
		}
		id, err := strconv.ParseInt(out.ID, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("bad id %q", out.ID)
		}
		return id, nil
	})
	if err != nil {
		return 0, fmt.Errorf("jira: get project %s: %w", key, err)
	}
	return v.(int64), nil
}

// IssueKey returns the current key of the issue with this id; keys change when
// an issue moves between projects, ids do not.
func (c *Client) IssueKey(ctx context.Context, t *tenant.Tenant, issueID int64) (string, error) {
	v, err := c.ask(ctx, t, "key:"+strconv.FormatInt(issueID, 10), func(ctx context.Context) (any, error) {
		var out struct {
			Key string `json:"key"`
		}
		if err := c.get(ctx, t, "/rest/api/3/issue/"+strconv.FormatInt(issueID, 10)+"?fields=project", &out); err != nil {
			return nil, err
		}
		return out.Key, nil
	})
	if err != nil {
		return "", fmt.Errorf("jira: get issue %d: %w", issueID, err)
	}
	return v.(string), nil
}

// MaxFixVersionIssues bounds the issues IssuesInFixVersion returns: one
// page of Jira's search, as much as a release page shows.
const MaxFixVersionIssues = 100

// IssuesInFixVersion returns the keys of the issues of projects whose fix
// version is version, ordered by key, at most limit of them (1 to
// MaxFixVersionIssues); more reports that Jira has further ones. A version
// no listed project has gives an error wrapping ErrBadRequest.
func (c *Client) IssuesInFixVersion(ctx context.Context, t *tenant.Tenant, projects []string, version string, limit int) (keys []string, more bool, err error) {
	if len(projects) == 0 || version == "" {
		return nil, false, errors.New("jira: issues in fix version: projects and a version are required")
	}
	limit = min(max(limit, 1), MaxFixVersionIssues)
	quoted := make([]string, len(projects))
	for i, p := range projects {
		quoted[i] = jqlString(p)
	}
	jql := "project in (" + strings.Join(quoted, ", ") + ") AND fixVersion = " + jqlString(version) + " ORDER BY key ASC"
	q := "fixversion:" + strconv.Itoa(limit) + ":" + jql
	v, err := c.ask(ctx, t, q, func(ctx context.Context) (any, error) {
		// The enhanced search (/search/jql) replaced /search in 2025. It
		// returns only ids unless fields are named, so it is asked for the
		// summary.
		query := url.Values{"jql": {jql}, "fields": {"summary"}, "maxResults": {strconv.Itoa(limit)}}
		var out struct {
			Issues []struct {
				Key string `json:"key"`
			} `json:"issues"`
			NextPageToken string `json:"nextPageToken"`
		}
		// Spaces go as %20: what the canonical query of the qsh writes too.
		path := "/rest/api/3/search/jql?" + strings.ReplaceAll(query.Encode(), "+", "%20")
		if err := c.get(ctx, t, path, &out); err != nil {
			return nil, err
		}
		var a fixVersionAnswer
		for _, is := range out.Issues {
			if is.Key != "" && len(a.keys) < limit {
				a.keys = append(a.keys, is.Key)
			}
		}
		a.more = out.NextPageToken != "" || len(out.Issues) > limit
		return a, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("jira: issues in fix version %q: %w", version, err)
	}
	// The answer is cached and shared: each caller gets a copy of its keys.
	a := v.(fixVersionAnswer)
	return slices.Clone(a.keys), a.more, nil
}

type fixVersionAnswer struct {
	keys []string
	more bool
}

// jqlString quotes s as a JQL string literal: double quotes, with
// backslashes and double quotes escaped, so a version name cannot end the
// literal and add clauses of its own.
func jqlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
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
	case resp.StatusCode == http.StatusBadRequest:
		return ErrBadRequest
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("unexpected status %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}
