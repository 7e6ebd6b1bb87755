package web

import (
	"context"
	"strconv"
	"sync"

	"github.com/keyline/keyline/app/jira"
	"github.com/keyline/keyline/app/tenant"
)

// fakeJira stands in for each site's Jira: per tenant (client key), which
// accounts administer it, which issue ids exist with which keys, and who may
// browse them.
type fakeJira struct {
	mu     sync.Mutex
	admins map[string]bool            // clientKey/accountId
	issues map[string]string          // clientKey/issueId → key
	browse map[string]map[string]bool // clientKey/issueId → accountId
}

func newFakeJira() *fakeJira {
	return &fakeJira{admins: map[string]bool{}, issues: map[string]string{}, browse: map[string]map[string]bool{}}
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
