package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/tenant"
)

// deadlineStore records the deadline of the context UpsertTenant gets.
type deadlineStore struct {
	Store
	deadline time.Time
	has      bool
}

func (s *deadlineStore) UpsertTenant(ctx context.Context, in tenant.Install) (*tenant.Tenant, error) {
	s.deadline, s.has = ctx.Deadline()
	return s.Store.UpsertTenant(ctx, in)
}

// What a handler does on a request's behalf (here an install's database
// write) runs under a deadline of HandlerTimeout.
func TestHandlersRunUnderADeadline(t *testing.T) {
	h := newHarness(t, dbtest.SQLiteStore(t))
	st := &deadlineStore{Store: h.store}
	deps := h.server.deps
	deps.Store = st
	srv, err := New(deps)
	if err != nil {
		t.Fatal(err)
	}
	h.server = srv
	before := time.Now()
	h.install(acme, jiraKey)
	after := time.Now()
	if !st.has {
		t.Fatal("the handler's context has no deadline")
	}
	if st.deadline.Before(before.Add(HandlerTimeout)) || st.deadline.After(after.Add(HandlerTimeout)) {
		t.Errorf("deadline %s after the request, want %s", st.deadline.Sub(before), HandlerTimeout)
	}
}

// A request whose deadline has passed is not worked on: the context the
// handler sees is already done.
func TestWithDeadlineCancels(t *testing.T) {
	var ctxErr error
	h := withDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // returns at once: the deadline is zero
		ctxErr = r.Context().Err()
	}), 0)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if ctxErr != context.DeadlineExceeded {
		t.Errorf("context error %v, want deadline exceeded", ctxErr)
	}
}

// Every route with a body has a limit: 1 MB through the body-limit
// middleware, deliveries 5 MiB in the receiver (tested in ingest_test.go).
// Here a lifecycle, a Jira webhook and an API route, without a valid token:
// the size is refused before anything else is looked at.
func TestBodyLimitOnEveryRouteWithABody(t *testing.T) {
	h := newHarness(t, dbtest.SQLiteStore(t))
	big := strings.Repeat("x", 1<<20+1)
	for _, route := range []struct{ method, path string }{
		{http.MethodPost, "/jira/installed"},
		{http.MethodPost, "/confluence/uninstalled"},
		{http.MethodPost, "/jira/enabled"},
		{http.MethodPost, "/jira/webhooks/issue-updated"},
		{http.MethodPost, "/jira/api/sources"},
		{http.MethodPut, "/jira/api/sources/src_x/environment-rules"},
	} {
		if rec := h.do(route.method, route.path, "", big); rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s %s with a body over 1 MB: %d, want 413", route.method, route.path, rec.Code)
		}
	}
}
