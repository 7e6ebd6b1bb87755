package loadtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckFlooder(t *testing.T) {
	for _, tc := range []struct {
		status  int
		body    string
		label   string
		failure bool
	}{
		{200, `{"outcome":"accepted"}`, LabelAccepted, false},
		{429, `{"error":"rate limit of the source exceeded: this source sent more deliveries than Keyline takes; retry after 1 s"}`, LabelSourceLimit, false},
		{429, `{"error":"rate limit of the site exceeded: this site's sources together sent more deliveries than Keyline takes; retry after 2 s"}`, LabelSiteLimit, false},
		{429, `Too Many Requests`, LabelOtherLimit, false}, // a proxy's 429 is still a refusal
		{200, `{"outcome":"duplicate"}`, "duplicate", true},
		{503, `{"error":"the delivery could not be stored; retry later"}`, "status 503", true},
		{401, `{"error":"bad signature"}`, "status 401", true},
	} {
		label, err := CheckFlooder(tc.status, []byte(tc.body))
		if label != tc.label || (err != nil) != tc.failure {
			t.Errorf("%d %s: label %q, error %v; want %q, failure %v", tc.status, tc.body, label, err, tc.label, tc.failure)
		}
	}
}

// floodServer answers victims' deliveries 200 accepted (429 when
// victimsLimited is set) and refuses every other flooder delivery with the
// site limit's 429.
type floodServer struct {
	victimsLimited bool
	flood          atomic.Int64
}

func (s *floodServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	limited := func() {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":"rate limit of the site exceeded: this site's sources together sent more deliveries than Keyline takes; retry after 1 s"}`)
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/ingest/flood-"):
		if s.flood.Add(1)%2 == 0 {
			limited()
			return
		}
	case s.victimsLimited:
		limited()
		return
	}
	io.WriteString(w, `{"outcome":"accepted"}`)
}

func floodConfigs(t *testing.T, url string, floodWorkers int) Flood {
	t.Helper()
	victims, err := GitHubPushes{BaseURL: url, Commits: 2, RunID: "v",
		Sources: []Source{{Token: "victim-1", Secret: "s1"}, {Token: "victim-2", Secret: "s2"}}}.Generator()
	if err != nil {
		t.Fatal(err)
	}
	flooder, err := GitHubPushes{BaseURL: url, Commits: 2, RunID: "f",
		Sources: []Source{{Token: "flood-1", Secret: "s3"}}}.Generator()
	if err != nil {
		t.Fatal(err)
	}
	return Flood{
		Victims: Config{Concurrency: 2, Duration: 300 * time.Millisecond, Rate: 50, Generator: victims, Check: CheckIngest},
		Flooder: Config{Concurrency: floodWorkers, Duration: 300 * time.Millisecond, Generator: flooder, Check: CheckFlooder},
	}
}

// Both sides run at once and are reported apart: the flooder's 429s are
// what it should get, a victim's 429 fails the run.
func TestFloodReportsBothSides(t *testing.T) {
	for _, tc := range []struct {
		name           string
		victimsLimited bool
		floodWorkers   int
		wantErr        string // "" for a passing run
	}{
		{name: "flood turned away, victims served", floodWorkers: 4},
		{name: "victims alone", floodWorkers: 0},
		{name: "a victim's 429 fails the run", victimsLimited: true, floodWorkers: 4, wantErr: "victims: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := serve(t, &floodServer{victimsLimited: tc.victimsLimited})
			rep, err := floodConfigs(t, url, tc.floodWorkers).Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Victims == nil || rep.Victims.Sent == 0 {
				t.Fatalf("victims measured nothing: %+v", rep.Victims)
			}
			if tc.floodWorkers == 0 {
				if rep.Flooder != nil || rep.Refused() != 0 {
					t.Errorf("a flooder ran: %+v", rep.Flooder)
				}
			} else if rep.Flooder == nil || rep.Flooder.Labels[LabelSiteLimit] == 0 || rep.Flooder.Labels[LabelAccepted] == 0 || rep.Refused() == 0 {
				t.Errorf("flooder: %+v", rep.Flooder)
			}
			err = rep.Err()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Err() = %v, want %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "flooder:") {
				t.Errorf("the flooder's 429s counted as failures: %v", err)
			}

			var text strings.Builder
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			wants := []string{"victims\n  requests ", "  latency      p50 "}
			if tc.floodWorkers > 0 {
				wants = append(wants, "flooder\n  requests ", "429 site limit: ", "flood        ", "refused with 429")
			} else {
				wants = append(wants, "the victims ran alone")
			}
			for _, want := range wants {
				if !strings.Contains(text.String(), want) {
					t.Errorf("text lacks %q:\n%s", want, text.String())
				}
			}
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			var back struct {
				Victims map[string]any `json:"victims"`
				Flooder map[string]any `json:"flooder"`
			}
			if err := json.Unmarshal(b, &back); err != nil || back.Victims["sent"] == nil || (back.Flooder != nil) != (tc.floodWorkers > 0) {
				t.Errorf("JSON %s (%v)", b, err)
			}
		})
	}
}

// A flooder the driver would refuse stops the run before the victims start
// alone, which would pass for a flood that did no harm.
func TestFloodRefusesABadSide(t *testing.T) {
	f := floodConfigs(t, "http://127.0.0.1:1", 4)
	f.Flooder.Generator = nil
	if _, err := f.Run(context.Background()); err == nil {
		t.Error("a flooder without a generator ran")
	}
}
