package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/ingest"
)

func writeSites() []PanelWriteSite {
	return []PanelWriteSite{
		{Source: Source{Token: "tok-a", Secret: "secret-a"}, Issues: []PanelIssue{PanelIssueN(1), PanelIssueN(2)}},
		{Source: Source{Token: "tok-b", Secret: "secret-b"}, Issues: []PanelIssue{PanelIssueN(3)}},
		{Source: Source{Token: "tok-c", Secret: "secret-c"}, Issues: []PanelIssue{PanelIssueN(4), PanelIssueN(5), PanelIssueN(6)}},
	}
}

// Every write is a new state of the build of one of its site's issues, in
// the generic API's format, signed with its site's source secret, with a
// delivery id, sequence number and URL of its own; the n-th write of the
// run, by whichever worker, goes to site (n−1) mod len(Sites).
func TestPanelWritesAreSignedNewBuilds(t *testing.T) {
	sites := writeSites()
	now := time.Date(2026, 11, 25, 17, 0, 0, 123456789, time.UTC)
	gen, err := PanelWrites{BaseURL: "http://127.0.0.1:8080/", Sites: sites, RunID: "r1", Now: func() time.Time { return now }}.Generator()
	if err != nil {
		t.Fatal(err)
	}
	workers := []NextFunc{gen(0), gen(1)}
	ids := map[string]bool{}
	urls := map[string]bool{}
	for i := range 9 {
		req, err := workers[i%3%2]() // the workers take turns unevenly
		if err != nil {
			t.Fatal(err)
		}
		site := sites[i%len(sites)]
		if want := "/ingest/" + site.Source.Token + "/builds"; req.Method != http.MethodPost || req.URL.Path != want || req.URL.Host != "127.0.0.1:8080" {
			t.Fatalf("write %d: %s %s, want POST %s", i, req.Method, req.URL, want)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		if err := ingest.VerifySignature(ingest.KindGeneric, req.Header, body, [][]byte{[]byte(site.Source.Secret)}); err != nil {
			t.Errorf("write %d: signature: %v", i, err)
		}
		id := ingest.DeliveryID(ingest.KindGeneric, req.Header)
		if id == "" || ids[id] {
			t.Errorf("write %d: delivery id %q empty or repeated", i, id)
		}
		ids[id] = true
		ev, err := ingest.ParseGeneric(ingest.GenericBuild, body)
		if err != nil {
			t.Fatalf("write %d: the server would refuse it: %v\n%s", i, err, body)
		}
		if len(ev.Builds) != 1 {
			t.Fatalf("write %d: %d builds", i, len(ev.Builds))
		}
		b := ev.Builds[0]
		if urls[b.URL] {
			t.Errorf("write %d: URL %s repeated", i, b.URL)
		}
		urls[b.URL] = true
		if len(b.IssueKeys) != 1 {
			t.Fatalf("write %d: issue keys %v", i, b.IssueKeys)
		}
		// The issue's own build: numbered by the issue's place in its site.
		at := slices.IndexFunc(site.Issues, func(is PanelIssue) bool { return is.Key == b.IssueKeys[0] })
		if at < 0 || b.BuildNumber != int64(at+1) {
			t.Errorf("write %d: build #%d of %v, want one of site %d's issues, numbered by its place", i, b.BuildNumber, b.IssueKeys, i%len(sites))
		}
		if b.PipelineID != PanelWritesPipelineID || b.PipelineName != PanelWritesPipeline || b.State != devops.BuildSuccessful ||
			b.URL != PanelWriteURL("r1", b.IssueKeys[0], int64(i+1)) || !b.UpdatedAt.Equal(now) || !b.FinishedAt.Equal(now) {
			t.Errorf("write %d: build %+v", i, b)
		}
	}
	// A second run numbers its builds afresh, under a pipeline and
	// delivery ids of its own.
	gen2, err := PanelWrites{BaseURL: "http://127.0.0.1:8080", Sites: sites, RunID: "r2"}.Generator()
	if err != nil {
		t.Fatal(err)
	}
	req, err := gen2(0)()
	if err != nil {
		t.Fatal(err)
	}
	if id := ingest.DeliveryID(ingest.KindGeneric, req.Header); ids[id] {
		t.Errorf("the second run repeats delivery id %q", id)
	}
}

func eventSites() []PanelSite {
	return []PanelSite{
		{ClientKey: "client-a", BaseURL: "https://a.atlassian.invalid", SharedSecret: []byte("secret-a"),
			Issues: []PanelIssue{PanelIssueN(1), PanelIssueN(2)}},
		{ClientKey: "client-b", BaseURL: "https://b.atlassian.invalid/", SharedSecret: []byte("secret-b"),
			Issues: []PanelIssue{PanelIssueN(3)}},
	}
}

// sentEvent is what the server reads of a Jira issue event (web's
// issueEvent), decoded as strictly as it does: a field of the wrong type
// fails.
type sentEvent struct {
	Timestamp    int64  `json:"timestamp"`
	WebhookEvent string `json:"webhookEvent"`
	Issue        *struct {
		ID     string `json:"id"`
		Key    string `json:"key"`
		Fields struct {
			Summary string `json:"summary"`
			Status  *struct {
				ID             string `json:"id"`
				Name           string `json:"name"`
				StatusCategory struct {
					Key string `json:"key"`
				} `json:"statusCategory"`
			} `json:"status"`
			Project struct {
				Key string `json:"key"`
			} `json:"project"`
		} `json:"fields"`
	} `json:"issue"`
	Changelog *struct {
		Items []struct {
			Field      string `json:"field"`
			FieldType  string `json:"fieldtype"`
			From       string `json:"from"`
			FromString string `json:"fromString"`
			To         string `json:"to"`
			ToString   string `json:"toString"`
		} `json:"items"`
	} `json:"changelog"`
}

// Every issue event is a jira:issue_updated webhook to the Jira app's
// webhook URL, with a token golang-jwt verifies with its site's shared
// secret, whose qsh is the request's; it moves one of its site's issues to
// the next status, keeping its summary and project, later than every
// earlier event, under a webhook identifier of its own. The n-th event of
// the run, by whichever worker, goes to site (n−1) mod len(Sites).
func TestPanelIssueEventsAreSignedStatusChanges(t *testing.T) {
	sites := eventSites()
	now := time.Date(2026, 11, 25, 17, 0, 0, 123456789, time.UTC)
	const lifetime = 2 * time.Minute
	gen, err := PanelIssueEvents{BaseURL: "http://127.0.0.1:8080/", Sites: sites, RunID: "r1", TokenLifetime: lifetime,
		Now: func() time.Time { return now }}.Generator()
	if err != nil {
		t.Fatal(err)
	}
	statuses := map[string]panelEventStatus{}
	for _, st := range panelEventStatuses {
		statuses[st.name] = st
	}
	workers := []NextFunc{gen(0), gen(1)}
	ids := map[string]bool{}
	lastStatus := map[string]string{} // site/issue → status of its previous event
	var lastTimestamp int64
	for i := range 30 {
		req, err := workers[i%3%2]() // the workers take turns unevenly
		if err != nil {
			t.Fatal(err)
		}
		site := sites[i%len(sites)]
		if req.Method != http.MethodPost || req.URL.Path != "/jira/webhooks/issue-updated" || req.URL.Host != "127.0.0.1:8080" || req.URL.RawQuery != "" {
			t.Fatalf("event %d: %s %s, want POST /jira/webhooks/issue-updated", i, req.Method, req.URL)
		}
		tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "JWT ")
		if !ok {
			t.Fatalf("event %d: Authorization %q", i, req.Header.Get("Authorization"))
		}
		var claims connect.Claims
		_, err = jwt.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return site.SharedSecret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now }),
			jwt.WithIssuer(site.ClientKey))
		if err != nil {
			t.Fatalf("event %d: token of %s: %v", i, site.ClientKey, err)
		}
		qsh, err := connect.QSH(req.Method, req.URL.Path, req.URL.RawQuery, "/jira")
		if err != nil {
			t.Fatal(err)
		}
		if claims.QSH != qsh || !claims.IssuedAt.Equal(now.Truncate(time.Second)) ||
			!claims.ExpiresAt.Equal(now.Add(lifetime).Truncate(time.Second)) ||
			!slices.Contains(panelAccountIDs(site.ClientKey), claims.Subject) {
			t.Errorf("event %d: claims %+v, want qsh %s", i, claims, qsh)
		}
		id := req.Header.Get("X-Atlassian-Webhook-Identifier")
		if id == "" || ids[id] {
			t.Errorf("event %d: webhook identifier %q empty or repeated", i, id)
		}
		ids[id] = true

		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		var ev sentEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("event %d: the server would refuse it: %v\n%s", i, err, body)
		}
		if ev.WebhookEvent != "jira:issue_updated" || ev.Issue == nil || ev.Issue.Fields.Status == nil || ev.Changelog == nil {
			t.Fatalf("event %d: %s", i, body)
		}
		at := slices.IndexFunc(site.Issues, func(is PanelIssue) bool { return is.Key == ev.Issue.Key })
		if at < 0 {
			t.Fatalf("event %d: issue %s is not one of site %d's", i, ev.Issue.Key, i%len(sites))
		}
		is := site.Issues[at]
		if !devops.ValidIssueKey(ev.Issue.Key) || ev.Issue.ID != is.ID || ev.Issue.Fields.Summary != is.Summary || is.Summary == "" ||
			ev.Issue.Fields.Project.Key != is.ProjectKey {
			t.Errorf("event %d: issue %+v, want %+v", i, ev.Issue, is)
		}
		if _, err := strconv.ParseUint(ev.Issue.ID, 10, 63); err != nil {
			t.Errorf("event %d: issue id %q is not numeric", i, ev.Issue.ID)
		}
		if ev.Timestamp <= lastTimestamp || ev.Timestamp < now.UnixMilli() {
			t.Errorf("event %d: timestamp %d not after the last, %d, and now", i, ev.Timestamp, lastTimestamp)
		}
		lastTimestamp = ev.Timestamp
		st := ev.Issue.Fields.Status
		want, ok := statuses[st.Name]
		if !ok || st.ID != want.id || st.StatusCategory.Key != want.category {
			t.Errorf("event %d: status %+v", i, st)
		}
		if items := ev.Changelog.Items; len(items) != 1 || items[0].Field != "status" || items[0].FieldType != "jira" ||
			items[0].To != st.ID || items[0].ToString != st.Name || statuses[items[0].FromString].id != items[0].From {
			t.Errorf("event %d: changelog %+v, status %+v", i, ev.Changelog, st)
		}
		// Each event changes the status of its issue: from the one its
		// previous event set, to another.
		key := fmt.Sprint(i%len(sites), "/", is.Key)
		if prev, seen := lastStatus[key]; seen && (prev == st.Name || ev.Changelog.Items[0].FromString != prev) {
			t.Errorf("event %d: %s moves %s → %s after its previous event set %s", i, key, ev.Changelog.Items[0].FromString, st.Name, prev)
		}
		lastStatus[key] = st.Name
	}
	if len(lastStatus) != 3 {
		t.Errorf("30 events wrote %d of the 3 issues", len(lastStatus))
	}
	// A second run's webhook identifiers are its own.
	gen2, err := PanelIssueEvents{BaseURL: "http://127.0.0.1:8080", Sites: sites, RunID: "r2"}.Generator()
	if err != nil {
		t.Fatal(err)
	}
	req, err := gen2(0)()
	if err != nil {
		t.Fatal(err)
	}
	if id := req.Header.Get("X-Atlassian-Webhook-Identifier"); ids[id] {
		t.Errorf("the second run repeats webhook identifier %q", id)
	}
}

func TestPanelIssueEventsRejectsBadConfig(t *testing.T) {
	site := func(f func(*PanelSite)) []PanelSite {
		s := eventSites()
		f(&s[1])
		return s
	}
	for _, tc := range []struct {
		name string
		g    PanelIssueEvents
	}{
		{"no sites", PanelIssueEvents{RunID: "r"}},
		{"no run id", PanelIssueEvents{Sites: eventSites()}},
		{"bad base URL", PanelIssueEvents{RunID: "r", BaseURL: "127.0.0.1:8080", Sites: eventSites()}},
		{"no client key", PanelIssueEvents{RunID: "r", Sites: site(func(s *PanelSite) { s.ClientKey = "" })}},
		{"no secret", PanelIssueEvents{RunID: "r", Sites: site(func(s *PanelSite) { s.SharedSecret = nil })}},
		{"no issues", PanelIssueEvents{RunID: "r", Sites: site(func(s *PanelSite) { s.Issues = nil })}},
		{"bad issue key", PanelIssueEvents{RunID: "r", Sites: site(func(s *PanelSite) { s.Issues = []PanelIssue{{Key: "a b", ID: "1"}} })}},
		{"bad issue id", PanelIssueEvents{RunID: "r", Sites: site(func(s *PanelSite) { s.Issues = []PanelIssue{{Key: "PAY-1", ID: "x1"}} })}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.g.Generator(); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := (PanelIssueEvents{RunID: "r", BaseURL: "http://127.0.0.1:8080", Sites: eventSites()}).Generator(); err != nil {
		t.Errorf("a good configuration: %v", err)
	}
}

func TestCheckIssueEvent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		wantLabel string
		wantErr   string // "" for accepted
	}{
		{name: "recorded", status: 204, wantLabel: "recorded"},
		{name: "200 is not Keyline's answer", status: 200, body: "{}", wantLabel: "status 200", wantErr: "status 200: OK"},
		{name: "JSON error", status: 400, body: `{"error":"issue.id is missing or not numeric"}`, wantLabel: "status 400",
			wantErr: "status 400: issue.id is missing or not numeric"},
		{name: "no reason", status: 502, wantLabel: "status 502", wantErr: "status 502: Bad Gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			label, err := CheckIssueEvent(tc.status, []byte(tc.body))
			if label != tc.wantLabel || (err == nil) != (tc.wantErr == "") || err != nil && err.Error() != tc.wantErr {
				t.Errorf("CheckIssueEvent(%d, %q) = %q, %v; want %q, %q", tc.status, tc.body, label, err, tc.wantLabel, tc.wantErr)
			}
		})
	}
}

func TestPanelWritesRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		g    PanelWrites
	}{
		{"no sites", PanelWrites{RunID: "r"}},
		{"no run id", PanelWrites{Sites: writeSites()}},
		{"no token", PanelWrites{RunID: "r", Sites: []PanelWriteSite{{Source: Source{Secret: "s"}, Issues: []PanelIssue{PanelIssueN(1)}}}}},
		{"no secret", PanelWrites{RunID: "r", Sites: []PanelWriteSite{{Source: Source{Token: "t"}, Issues: []PanelIssue{PanelIssueN(1)}}}}},
		{"no issues", PanelWrites{RunID: "r", Sites: []PanelWriteSite{{Source: Source{Token: "t", Secret: "s"}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.g.Generator(); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// panelWriteServer answers panel loads 200 and writes 200 "accepted", or
// 429 when limited, counting the writes.
type panelWriteServer struct {
	limited bool
	writes  atomic.Int64
}

func (s *panelWriteServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if r.Method == http.MethodGet {
		_, _ = io.WriteString(w, "<html>panel</html>")
		return
	}
	s.writes.Add(1)
	w.Header().Set("Content-Type", "application/json")
	if s.limited {
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":"rate limit of the source exceeded"}`)
		return
	}
	_, _ = io.WriteString(w, `{"outcome":"accepted"}`)
}

// The loads and the writes run at once and are reported apart; a write
// answered other than 200 "accepted" fails the run.
func TestPanelRunReportsBothSides(t *testing.T) {
	for _, tc := range []struct {
		name    string
		writers int
		limited bool
		wantErr string // "" for a passing run
	}{
		{name: "loads and writes", writers: 2},
		{name: "loads alone", writers: 0},
		{name: "a refused write fails the run", writers: 2, limited: true, wantErr: "writes: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &panelWriteServer{limited: tc.limited}
			url := serve(t, srv)
			loads := func(int) NextFunc {
				return func() (*http.Request, error) { return http.NewRequest(http.MethodGet, url+PanelModulePath, nil) }
			}
			writes, err := PanelWrites{BaseURL: url, Sites: writeSites(), RunID: "t"}.Generator()
			if err != nil {
				t.Fatal(err)
			}
			run := PanelRun{Panels: Config{Concurrency: 2, Duration: 200 * time.Millisecond, Generator: loads}}
			if tc.writers > 0 {
				run.Writes = Config{Concurrency: tc.writers, Duration: 200 * time.Millisecond, Rate: 50, Generator: writes, Check: CheckIngest}
			}
			rep, err := run.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Panels == nil || rep.Panels.Sent == 0 {
				t.Fatalf("panels measured nothing: %+v", rep.Panels)
			}
			if tc.writers == 0 {
				if rep.Writes != nil || srv.writes.Load() != 0 {
					t.Errorf("writes were sent: %+v, %d", rep.Writes, srv.writes.Load())
				}
			} else if rep.Writes == nil || rep.Writes.Sent == 0 || int64(rep.Writes.Sent) > srv.writes.Load() {
				t.Errorf("writes: %+v, server saw %d", rep.Writes, srv.writes.Load())
			}
			err = rep.Err()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Err() = %v, want %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "panels:") {
				t.Errorf("the panel loads failed: %v", err)
			}

			var text strings.Builder
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			wants := []string{"requests ", "latency      p50 "}
			if tc.writers > 0 {
				wants = append(wants, "panels\n  requests ", "writes\n  requests ", "paced at 50/s")
			}
			for _, want := range wants {
				if !strings.Contains(text.String(), want) {
					t.Errorf("text lacks %q:\n%s", want, text.String())
				}
			}
			if tc.writers == 0 && strings.Contains(text.String(), "writes") {
				t.Errorf("text of a run without writes mentions them:\n%s", text.String())
			}
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			var back struct {
				Panels map[string]any `json:"panels"`
				Writes map[string]any `json:"writes"`
			}
			if err := json.Unmarshal(b, &back); err != nil || back.Panels["sent"] == nil || (back.Writes != nil) != (tc.writers > 0) {
				t.Errorf("JSON %s (%v)", b, err)
			}
		})
	}
}

// A write side the driver would refuse stops the run before the loads
// start alone, which would pass for loads that writes did not disturb.
func TestPanelRunRefusesABadSide(t *testing.T) {
	loads := func(int) NextFunc { return func() (*http.Request, error) { return nil, nil } }
	run := PanelRun{Panels: Config{Concurrency: 1, Duration: time.Second, Generator: loads},
		Writes: Config{Concurrency: 1, Duration: time.Second, Rate: -1, Generator: loads}}
	if rep, err := run.Run(context.Background()); err == nil || rep != nil {
		t.Errorf("a run with a bad write side: %+v, %v", rep, err)
	}
}
