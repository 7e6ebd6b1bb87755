package web

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/keyline/keyline/app/jira"
	"github.com/keyline/keyline/app/tenant"
)

// fakeJira stands in for each site's Jira: per tenant (client key), which
// accounts administer it, which issue ids exist with which keys, who may
// browse them, which issues each fix version holds, and which projects an
// account may not browse (every signed-in account may browse every other).
type fakeJira struct {
	mu            sync.Mutex
	admins        map[string]bool            // clientKey/accountId
	issues        map[string]string          // clientKey/issueId → key
	browse        map[string]map[string]bool // clientKey/issueId → accountId
	versions      map[string][]string        // clientKey/version → keys
	denied        map[string]bool            // clientKey/accountId/projectKey
	projectsDown  map[string]bool            // clientKey: the project permission check fails
	projectChecks int                        // CanBrowseProjects calls
}

func newFakeJira() *fakeJira {
	return &fakeJira{admins: map[string]bool{}, issues: map[string]string{}, browse: map[string]map[string]bool{},
		versions: map[string][]string{}, denied: map[string]bool{}, projectsDown: map[string]bool{}}
}

// denyProjects keeps accountID from browsing projects in clientKey's Jira.
func (f *fakeJira) denyProjects(clientKey, accountID string, projects ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range projects {
		f.denied[clientKey+"/"+accountID+"/"+p] = true
	}
}

// failProjectChecks makes clientKey's Jira unreachable for project permission checks.
func (f *fakeJira) failProjectChecks(clientKey string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.projectsDown[clientKey] = true
}

// CanBrowseProjects answers like app/jira: nobody anonymous, and every
// account every project not denied to it.
func (f *fakeJira) CanBrowseProjects(_ context.Context, t *tenant.Tenant, accountID string, projectKeys []string) (map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.projectChecks++
	if f.projectsDown[t.ClientKey] {
		return nil, errJiraDown
	}
	out := make(map[string]bool, len(projectKeys))
	for _, p := range projectKeys {
		out[p] = accountID != "" && !f.denied[t.ClientKey+"/"+accountID+"/"+p]
	}
	return out, nil
}

// addFixVersion gives clientKey's Jira a fix version holding keys.
func (f *fakeJira) addFixVersion(clientKey, version string, keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions[clientKey+"/"+version] = keys
}

// errJiraDown is what the fake answers for fix version "down".
var errJiraDown = errors.New("fake jira: unreachable")

// IssuesInFixVersion answers from the versions added, keeping the keys of
// projects; an unknown version is Jira's 400.
func (f *fakeJira) IssuesInFixVersion(_ context.Context, t *tenant.Tenant, projects []string, version string, limit int) ([]string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if version == "down" {
		return nil, false, errJiraDown
	}
	all, ok := f.versions[t.ClientKey+"/"+version]
	if !ok {
		return nil, false, jira.ErrBadRequest
	}
	var keys []string
	for _, k := range all {
		if slices.Contains(projects, strings.Split(k, "-")[0]) {
			keys = append(keys, k)
		}
	}
	if len(keys) > limit {
		return keys[:limit], true, nil
	}
	return keys, false, nil
}

func (f *fakeJira) addIssue(clientKey, id, key string, viewers ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.issues[clientKey+"/"+id] = key
	f.browse[clientKey+"/"+id] = map[string]bool{}
	for _, v := range viewers {
		f.browse[clientKey+"/"+id][v] = true
	}
}

func (f *fakeJira) IsAdmin(_ context.Context, t *tenant.Tenant, accountID string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.admins[t.ClientKey+"/"+accountID], nil
}

func (f *fakeJira) CanBrowseIssue(_ context.Context, t *tenant.Tenant, accountID string, issueID int64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.browse[t.ClientKey+"/"+itoa(issueID)][accountID], nil
}

func (f *fakeJira) IssueKey(_ context.Context, t *tenant.Tenant, issueID int64) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.issues[t.ClientKey+"/"+itoa(issueID)]
	if !ok {
		return "", jira.ErrNotFound
	}
	return k, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
