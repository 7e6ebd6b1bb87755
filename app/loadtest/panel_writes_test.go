package loadtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
