package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Flood is two runs at once against one server: victims, sites sending at
// a modest, paced rate, and a flooder, one site sending as fast as its
// workers can or at the rate Flooder.Rate sets. It shows whether the flood slows the victims down: their
// report is compared with a run of the victims alone (Flooder.Concurrency
// 0), the flooder's shows how much of its flood the server turned away.
type Flood struct {
	Victims Config
	// Flooder is left out when its Concurrency is 0: the victims then run
	// alone, for the comparison.
	Flooder Config
}

// FloodReport is what a Flood measured, the two sides apart.
type FloodReport struct {
	Victims *Report `json:"victims"`
	// Flooder is nil when the victims ran alone.
	Flooder *Report `json:"flooder"`
}

// Run drives both sides at the same time, each with the driver's Run, and
// returns both reports. A configuration error of either side stops before
// anything is sent; ctx's error is returned with the reports so far.
func (f Flood) Run(ctx context.Context) (*FloodReport, error) {
	sides := []Config{f.Victims}
	if f.Flooder.Concurrency > 0 {
		sides = append(sides, f.Flooder)
	}
	reports, err := runSides(ctx, sides)
	if reports == nil {
		return nil, err
	}
	r := &FloodReport{Victims: reports[0]}
	if len(reports) > 1 {
		r.Flooder = reports[1]
	}
	return r, err
}

// runSides runs every configuration at the same time with Run and returns
// their reports in order. All are validated first: Run checks them too, but
// only once it starts, and a bad second side must not let the first run
// alone while seeming to be the combined run.
func runSides(ctx context.Context, sides []Config) ([]*Report, error) {
	for i := range sides {
		if err := sides[i].validate(); err != nil {
			return nil, err
		}
	}
	reports := make([]*Report, len(sides))
	errs := make([]error, len(sides))
	var wg sync.WaitGroup
	for i, cfg := range sides {
		wg.Go(func() { reports[i], errs[i] = Run(ctx, cfg) })
	}
	wg.Wait()
	return reports, errors.Join(errs...)
}

// Labels of the flooder's answers: stored, or refused by which limit.
const (
	LabelAccepted     = "accepted"
	LabelSourceLimit  = "429 source limit"
	LabelSiteLimit    = "429 site limit"
	LabelOtherLimit   = "429"
	rateLimitedPrefix = "rate limit of the "
)

// CheckFlooder judges the flooder's answers: a 200 "accepted" (within its
// limits) and a 429 (past them) are both what a flood should get; the 429s
// are labelled with the limit the server named. Anything else is a failure:
// the server should turn a flood away, not break under it.
func CheckFlooder(status int, body []byte) (string, error) {
	if status != http.StatusTooManyRequests {
		return CheckIngest(status, body)
	}
	var ans struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &ans)
	switch {
	case strings.HasPrefix(ans.Error, rateLimitedPrefix+"source"):
		return LabelSourceLimit, nil
	case strings.HasPrefix(ans.Error, rateLimitedPrefix+"site"):
		return LabelSiteLimit, nil
	}
	return LabelOtherLimit, nil
}

// Err says why the run failed: any victim answer other than 200 accepted
// (a 429 included: the flood must not cost the victims their limits), or
// any flooder answer other than 200 accepted and 429.
func (r *FloodReport) Err() error {
	var parts []string
	if err := r.Victims.Err(); err != nil {
		parts = append(parts, "victims: "+err.Error())
	}
	if r.Flooder != nil {
		if err := r.Flooder.Err(); err != nil {
			parts = append(parts, "flooder: "+err.Error())
		}
	}
	if len(parts) == 0 {
		return nil
	}
	// One line, for the command's one-line error (errors.Join breaks lines).
	return errors.New(strings.Join(parts, "; "))
}

// Refused is how many of the flooder's answers were 429s.
func (r *FloodReport) Refused() int {
	if r.Flooder == nil {
		return 0
	}
	return r.Flooder.Status[http.StatusTooManyRequests]
}

// WriteText prints both reports for people, victims first, and what
// became of the flood.
func (r *FloodReport) WriteText(w io.Writer) error {
	if _, err := io.WriteString(w, "victims\n"); err != nil {
		return err
	}
	if err := r.Victims.WriteText(indent{w}); err != nil {
		return err
	}
	if r.Flooder == nil {
		_, err := io.WriteString(w, "flooder      none: the victims ran alone\n")
		return err
	}
	if _, err := io.WriteString(w, "flooder\n"); err != nil {
		return err
	}
	if err := r.Flooder.WriteText(indent{w}); err != nil {
		return err
	}
	f := r.Flooder
	secs := f.Window.Seconds()
	_, err := fmt.Fprintf(w, "flood        %.1f/s answered: %.1f/s stored, %.1f/s refused with 429\n",
		float64(f.Sent-f.TransportErrors-f.GeneratorErrors)/secs, float64(f.Labels[LabelAccepted])/secs,
		float64(r.Refused())/secs)
	return err
}

// indent prefixes every line written through it with two spaces; each
// Write is whole lines, as Report.WriteText makes it.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	s := strings.TrimSuffix(string(p), "\n")
	out := "  " + strings.ReplaceAll(s, "\n", "\n  ")
	if strings.HasSuffix(string(p), "\n") {
		out += "\n"
	}
	if _, err := io.WriteString(i.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}
