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
	"strconv"
	"strings"
	"sync/atomic"
	"time"

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
// with the requested issue's panel, or any write not answered 200
// "accepted".
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
