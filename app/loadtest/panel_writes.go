package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyline/keyline/app/connect"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/ingest"
)

// PanelWriteSite is one panel site to write to while its panels are loaded:
// a generic source of the site and the issues the writes pick from.
type PanelWriteSite struct {
	Source Source
	Issues []PanelIssue
}

// PanelWritesPipeline is the display name of the writes' CI pipeline, as
// the issue panel shows it.
const PanelWritesPipeline = "Load-test writes"

// PanelWrites generates signed generic-API build deliveries to the panel
// sites while their panels are loaded. Each is a new state of one finished
// build of one issue picked at random from the site, newer than the last
// (a later time, its own URL, a new sequence number and delivery id), so
// the server stores it, the site's data version changes and the site's
// cached panels must be read again. Each issue has one such build per
// source, re-run again and again, rather than a new build per write: the
// panels stay the size they were seeded with (one build more), so runs at
// different rates, and re-runs, load the same pages. Deliveries go
// round-robin over Sites, in the order the workers take them, whatever the
// number of workers.
type PanelWrites struct {
	// BaseURL is where Keyline listens; deliveries go to
	// BaseURL/ingest/<token>/builds.
	BaseURL string
	Sites   []PanelWriteSite
	// RunID makes build URLs and delivery ids unique to one run: a
	// repeated delivery id is a duplicate, which stores nothing.
	RunID string
	// Now stamps the builds; nil means time.Now.
	Now func() time.Time
}

// PanelWritesPipelineID is the pipeline id of the writes' builds. A
// build's identity is its source, pipeline and number; the number is the
// issue's place in its site's Issues, from 1.
const PanelWritesPipelineID = "loadtest-writes"

// PanelWriteURL is the URL of the n-th write of run runID, to issueKey's
// build, which the panel links: a test finds a write in the panel by it.
func PanelWriteURL(runID, issueKey string, n int64) string {
	return "https://ci.loadtest.example/" + runID + "/" + issueKey + "/writes/" + strconv.FormatInt(n, 10)
}

// Generator returns the generator for Run. The writes' numbers (n, which
// is each one's sequence number) come from one counter shared by the
// workers, so they are unique within the run and the n-th goes to site
// (n−1) mod len(Sites); everything else is the worker's own.
func (g PanelWrites) Generator() (Generator, error) {
	if len(g.Sites) == 0 {
		return nil, errors.New("loadtest: no sites to write to")
	}
	if g.RunID == "" {
		return nil, errors.New("loadtest: panel writes need a run id")
	}
	for i, s := range g.Sites {
		if s.Source.Token == "" || s.Source.Secret == "" {
			return nil, fmt.Errorf("loadtest: write site %d has no source token or secret", i+1)
		}
		if len(s.Issues) == 0 {
			return nil, fmt.Errorf("loadtest: write site %d has no issues", i+1)
		}
	}
	now := g.Now
	if now == nil {
		now = time.Now
	}
	base := strings.TrimSuffix(g.BaseURL, "/")
	seq := new(atomic.Int64) // shared by the workers: one numbering per run
	return func(w int) NextFunc {
		rnd := rand.New(rand.NewPCG(uint64(w), 0x77726974657321)) // per worker
		return func() (*http.Request, error) {
			n := seq.Add(1)
			site := &g.Sites[(n-1)%int64(len(g.Sites))]
			i := rnd.IntN(len(site.Issues))
			is := site.Issues[i]
			at := now().UTC()
			total := 400 + int(n%40)
			body, err := json.Marshal(ingest.GenericBuildPayload{
				PipelineID:           PanelWritesPipelineID,
				BuildNumber:          int64(i + 1),
				UpdateSequenceNumber: n,
				DisplayName:          PanelWritesPipeline,
				URL:                  PanelWriteURL(g.RunID, is.Key, n),
				State:                string(devops.BuildSuccessful),
				// Nanoseconds: the store keeps the build's newest state by
				// this time, and writes to one issue can come within a
				// second.
				LastUpdated: at.Format(time.RFC3339Nano),
				StartedAt:   at.Add(-2 * time.Minute).Format(time.RFC3339Nano),
				IssueKeys:   []string{is.Key},
				Ref:         "refs/heads/main",
				TestInfo:    &devops.TestSummary{Total: total, Passed: total},
			})
			if err != nil {
				return nil, fmt.Errorf("build payload: %w", err)
			}
			req, err := http.NewRequest(http.MethodPost, base+"/ingest/"+site.Source.Token+"/"+ingest.GenericBuild, bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "keyline-loadtest")
			req.Header.Set("Idempotency-Key", g.RunID+"-write-"+strconv.FormatInt(n, 10))
			req.Header.Set(ingest.HeaderKeylineSignature, ingest.SignatureSHA256([]byte(site.Source.Secret), body))
			return req, nil
		}
	}, nil
}

// PanelIssueEventPath is where Jira posts an issue's updates to Keyline
// (the descriptor's jira:issue_updated webhook), under the Jira app's base
// path.
const PanelIssueEventPath = jiraBasePath + "/webhooks/issue-updated"

// panelEventStatus is one Jira status the issue events move issues to.
type panelEventStatus struct {
	id, name, category string
}

// panelEventStatuses are the statuses each written issue goes through, in
// turn: every event changes the status its panel shows. The ids are
// Jira's usual ones for these statuses.
var panelEventStatuses = []panelEventStatus{
	{"3", "In Progress", "indeterminate"},
	{"10002", "In Review", "indeterminate"},
	{"10001", "Done", "done"},
}

// PanelEventStatuses are the names of the statuses PanelIssueEvents moves
// issues to, in the order each issue goes through them.
func PanelEventStatuses() []string {
	names := make([]string, len(panelEventStatuses))
	for i, st := range panelEventStatuses {
		names[i] = st.name
	}
	return names
}

// PanelIssueEvents generates the Jira issue events the panel sites' Jira
// would send while their panels are loaded: jira:issue_updated webhooks,
// POSTed to BaseURL/jira/webhooks/issue-updated with a JWT that Jira signs
// with the site's shared secret, iss the site's client key and a qsh bound
// to the POST. Each moves one issue picked at random from its site to the
// next of PanelEventStatuses, the way a status transition is reported
// (the issue's snapshot and a changelog item for the status), with a
// timestamp later than any earlier event of the run and a webhook
// identifier of its own, so the server stores it and the panel of that
// issue, and only that one, must be read again. Events go round-robin over
// Sites, in the order the workers take them, whatever the number of
// workers.
type PanelIssueEvents struct {
	// BaseURL is where Keyline listens.
	BaseURL string
	Sites   []PanelSite
	// RunID makes webhook identifiers unique to one run: a repeated one is
	// a redelivery, which stores nothing.
	RunID string
	// TokenLifetime is exp − iat; zero means DefaultTokenLifetime.
	TokenLifetime time.Duration
	// Now stamps the events and tokens; nil means time.Now.
	Now func() time.Time
}

// panelEventIssue is the part of an issue event's issue Keyline reads,
// with the fields Jira always sends beside them.
type panelEventIssue struct {
	ID     string `json:"id"`
	Self   string `json:"self"`
	Key    string `json:"key"`
	Fields struct {
		Summary string `json:"summary"`
		Status  struct {
			Self           string `json:"self"`
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
}

// panelEventChange is one item of an issue event's changelog.
type panelEventChange struct {
	Field      string `json:"field"`
	FieldType  string `json:"fieldtype"`
	FieldID    string `json:"fieldId"`
	From       string `json:"from"`
	FromString string `json:"fromString"`
	To         string `json:"to"`
	ToString   string `json:"toString"`
}

// panelEvent is a jira:issue_updated webhook body.
type panelEvent struct {
	Timestamp    int64  `json:"timestamp"`
	WebhookEvent string `json:"webhookEvent"`
	EventType    string `json:"issue_event_type_name"`
	User         struct {
		AccountID string `json:"accountId"`
	} `json:"user"`
	Issue     panelEventIssue `json:"issue"`
	Changelog struct {
		ID    string             `json:"id"`
		Items []panelEventChange `json:"items"`
	} `json:"changelog"`
}

// Generator returns the generator for Run. The events' numbers, their
// timestamps and each issue's place in PanelEventStatuses come from state
// shared by the workers, under one lock, so that within a run an issue's
// later event has the later timestamp (the server keeps the newest by
// timestamp, whatever order the events arrive in) and always a new
// status; the issue picked and the token are the worker's own.
func (g PanelIssueEvents) Generator() (Generator, error) {
	if len(g.Sites) == 0 {
		return nil, errors.New("loadtest: no sites to send issue events to")
	}
	if g.RunID == "" {
		return nil, errors.New("loadtest: issue events need a run id")
	}
	lifetime, now := tokenClock(g.TokenLifetime, g.Now)
	base := strings.TrimSuffix(g.BaseURL, "/")
	if u, err := url.Parse(base + PanelIssueEventPath); err != nil || u.Host == "" {
		return nil, fmt.Errorf("loadtest: base URL %q: want http(s)://host[:port][/path]", g.BaseURL)
	}
	// Jira signs the webhook's POST with no query; the path is relative
	// to the Jira app's base path, as for any request Jira signs.
	qsh, err := connect.QSH(http.MethodPost, PanelIssueEventPath, "", jiraBasePath)
	if err != nil {
		return nil, fmt.Errorf("loadtest: qsh of the issue event: %w", err)
	}
	targets := make([]panelTarget, len(g.Sites))
	secrets := make([][]byte, len(g.Sites))
	accountIDs := make([][]string, len(g.Sites))
	for i, s := range g.Sites {
		if s.ClientKey == "" || len(s.SharedSecret) == 0 {
			return nil, fmt.Errorf("loadtest: site %q has no client key or shared secret", s.BaseURL)
		}
		if len(s.Issues) == 0 {
			return nil, fmt.Errorf("loadtest: site %q has no issues", s.ClientKey)
		}
		for _, is := range s.Issues {
			if !devops.ValidIssueKey(is.Key) || is.ID == "" || strings.Trim(is.ID, "0123456789") != "" {
				return nil, fmt.Errorf("loadtest: site %q: issue %q (id %q) is not a Jira issue", s.ClientKey, is.Key, is.ID)
			}
		}
		secrets[i] = s.SharedSecret
		accountIDs[i] = panelAccountIDs(s.ClientKey)
		targets[i] = panelTarget{site: i,
			claimsHead: `{"iss":` + jsonString(s.ClientKey) + `,"sub":`,
			claimsTail: `,"qsh":` + jsonString(qsh) + `,"context":{}}`}
		for _, a := range accountIDs[i] {
			targets[i].accounts = append(targets[i].accounts, jsonString(a))
		}
	}
	var (
		mu   sync.Mutex
		seq  int64
		last int64 // the last event's timestamp, Unix milliseconds
		// moves[site][issue] counts the run's events of each issue, which
		// picks its next status.
		moves = make([][]int, len(g.Sites))
	)
	for i, s := range g.Sites {
		moves[i] = make([]int, len(s.Issues))
	}
	return func(w int) NextFunc {
		rnd := rand.New(rand.NewPCG(uint64(w), 0x6a697261657674)) // per worker
		signer := newPanelSigner(secrets)
		return func() (*http.Request, error) {
			at := now()
			mu.Lock()
			seq++
			n := seq
			si := int((n - 1) % int64(len(g.Sites)))
			ii := rnd.IntN(len(g.Sites[si].Issues))
			k := moves[si][ii]
			moves[si][ii]++
			ms := max(at.UnixMilli(), last+1)
			last = ms
			mu.Unlock()

			site := &g.Sites[si]
			is := site.Issues[ii]
			from := panelEventStatuses[(k+len(panelEventStatuses)-1)%len(panelEventStatuses)]
			to := panelEventStatuses[k%len(panelEventStatuses)]
			user := rnd.IntN(len(accountIDs[si]))
			siteURL := strings.TrimSuffix(site.BaseURL, "/")
			ev := panelEvent{Timestamp: ms, WebhookEvent: "jira:issue_updated", EventType: "issue_generic"}
			ev.User.AccountID = accountIDs[si][user]
			ev.Issue.ID, ev.Issue.Key = is.ID, is.Key
			ev.Issue.Self = siteURL + "/rest/api/2/issue/" + is.ID
			ev.Issue.Fields.Summary = is.Summary
			ev.Issue.Fields.Project.Key = is.ProjectKey
			st := &ev.Issue.Fields.Status
			st.Self, st.ID, st.Name, st.StatusCategory.Key = siteURL+"/rest/api/2/status/"+to.id, to.id, to.name, to.category
			ev.Changelog.ID = strconv.FormatInt(n, 10)
			ev.Changelog.Items = []panelEventChange{{Field: "status", FieldType: "jira", FieldID: "status",
				From: from.id, FromString: from.name, To: to.id, ToString: to.name}}
			body, err := json.Marshal(&ev)
			if err != nil {
				return nil, fmt.Errorf("issue event: %w", err)
			}
			req, err := http.NewRequest(http.MethodPost, base+PanelIssueEventPath, bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			// A fresh token for each event, as Jira signs each webhook.
			tok := signer.sign(&targets[si], targets[si].accounts[user], at, lifetime)
			req.Header.Set("Authorization", "JWT "+string(tok))
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
			req.Header.Set("User-Agent", "Atlassian Webhook HTTP Client (keyline-loadtest)")
			req.Header.Set(webhookIDHeader, g.RunID+"-"+strconv.FormatInt(n, 10))
			return req, nil
		}
	}, nil
}

// webhookIDHeader names a Jira webhook delivery; Keyline ignores a second
// delivery under the same identifier.
const webhookIDHeader = "X-Atlassian-Webhook-Identifier"

// CheckIssueEvent accepts the 204 with which Keyline answers a Jira issue
// event it recorded, and labels any other answer with its status and the
// reason Keyline gives.
func CheckIssueEvent(status int, body []byte) (string, error) {
	if status == http.StatusNoContent {
		return "recorded", nil
	}
	reason := errorPageReason(body)
	if reason == "" {
		reason = http.StatusText(status)
	}
	return fmt.Sprintf("status %d", status), fmt.Errorf("status %d: %s", status, reason)
}

// PanelRun is the panel scenario with writes: the panel loads and, at the
// same time, the writes to the panels' sites, each with the driver's Run.
type PanelRun struct {
	Panels Config
	// Writes is left out when its Concurrency is 0: the panels are then
	// loaded with nothing written.
	Writes Config
}

// PanelReport is what a PanelRun measured, the two sides apart.
type PanelReport struct {
	Panels *Report `json:"panels"`
	// Writes is nil when nothing was written.
	Writes *Report `json:"writes"`
}

// Run drives both sides at the same time and returns both reports. A
// configuration error of either side stops before anything is sent; ctx's
// error is returned with the reports so far.
func (p PanelRun) Run(ctx context.Context) (*PanelReport, error) {
	sides := []Config{p.Panels}
	if p.Writes.Concurrency > 0 {
		sides = append(sides, p.Writes)
	}
	reports, err := runSides(ctx, sides)
	if reports == nil {
		return nil, err
	}
	r := &PanelReport{Panels: reports[0]}
	if len(reports) > 1 {
		r.Writes = reports[1]
	}
	return r, err
}

// Err says why the run failed: any panel load that was not answered 200
// with the requested issue's panel, or any write its Check refused (a
// build not answered 200 "accepted", an issue event not answered 204).
func (r *PanelReport) Err() error {
	var parts []string
	if err := r.Panels.Err(); err != nil {
		parts = append(parts, "panels: "+err.Error())
	}
	if r.Writes != nil {
		if err := r.Writes.Err(); err != nil {
			parts = append(parts, "writes: "+err.Error())
		}
	}
	if len(parts) == 0 {
		return nil
	}
	// One line, for the command's one-line error.
	return errors.New(strings.Join(parts, "; "))
}

// WriteText prints the panel loads' report and, when there were writes,
// theirs under it.
func (r *PanelReport) WriteText(w io.Writer) error {
	if r.Writes == nil {
		return r.Panels.WriteText(w)
	}
	if _, err := io.WriteString(w, "panels\n"); err != nil {
		return err
	}
	if err := r.Panels.WriteText(indent{w}); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "writes\n"); err != nil {
		return err
	}
	return r.Writes.WriteText(indent{w})
}
