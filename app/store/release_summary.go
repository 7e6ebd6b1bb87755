package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/tenant"
)

// A deployment summary is what the deployment figures of a report need
// without the deployments themselves: the window's deployments are read
// narrow (time, state, line) and folded as they arrive into counts per span
// between the caller's cuts (its local days), the failures with their
// recoveries, and the places deployed to. Reading, decoding and keeping a
// year's hundred thousand full rows was the costliest part of a site's
// year; counting or finding recoveries in PostgreSQL instead (grouping by
// span, a window function per line) sorted those rows and cost more.

// MaxSummarySpans bounds the spans a summary counts: a day each for the
// longest window, and its period bounds.
const MaxSummarySpans = 2*366 + 2 + MaxReleaseCuts

// DeploymentSummary is what ReleaseDeploymentSummary found.
type DeploymentSummary struct {
	// Spans counts the deployments of each span between the window's
	// start, the cuts and its end, in order.
	Spans []DeploymentSpan
	// Suspected are the deployments of the window that an incident
	// suspects, oldest first.
	Suspected []SummaryDeployment
	// Failures are its failed and rolled-back deployments, oldest first,
	// each with its recovery (RecoveredAt as ReleaseDeployment has it).
	Failures []SummaryDeployment
	// Latest are its latest deployments, as ReleaseDeployments returns
	// them, oldest first.
	Latest []ReleaseDeployment
	// Total counts its deployments.
	Total int
	// Places are the services and environments (by name, or id when it
	// has none) its deployments went to, each pair once, sorted.
	Places []DeploymentPlace
}

// DeploymentSpan counts the deployments of a span starting at From:
// Successful ones, and Failed ones (failed or rolled back).
type DeploymentSpan struct {
	From               time.Time
	Successful, Failed int
}

// SummaryDeployment is one deployment of a summary: when it finished, its
// state, and for a failure, when the same service and environment next
// deployed successfully (zero until it has).
type SummaryDeployment struct {
	FinishedAt  time.Time
	State       devops.DeploymentState
	RecoveredAt time.Time
}

// DeploymentPlace is a service and an environment deployed to.
type DeploymentPlace struct {
	Service, Environment string
}

// ReleaseDeploymentSummary summarises sc's deployments as
// ReleaseDeployments lists them, counted per span between the window's
// start, cuts (increasing, inside the window) and end, with the latest of
// them listed in full.
func (s *Store) ReleaseDeploymentSummary(ctx context.Context, t *tenant.Tenant, sc ReleaseScope, cuts []time.Time,
	latest int) (*DeploymentSummary, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: deployment summary: %w", err)
	}
	sc, err := sc.check()
	if err != nil {
		return nil, fmt.Errorf("store: deployment summary: %w", err)
	}
	starts := make([]time.Time, 0, len(cuts)+1)
	starts = append(starts, normTime(sc.From))
	for _, c := range cuts {
		c = normTime(c)
		if !c.After(starts[len(starts)-1]) || !c.Before(normTime(sc.To)) {
			return nil, fmt.Errorf("store: deployment summary: cuts must be increasing and inside the window")
		}
		starts = append(starts, c)
	}
	if len(starts) > MaxSummarySpans {
		return nil, fmt.Errorf("store: deployment summary: at most %d spans", MaxSummarySpans)
	}
	if latest < 0 || latest > MaxSummaryLatest {
		return nil, fmt.Errorf("store: deployment summary: at most %d latest deployments", MaxSummaryLatest)
	}
	where, args := s.deploymentWhere(t, sc)
	// The incidents' suspects first: a site has few incidents beside its
	// deployments, and the fold tells the suspected deployments by id.
	// Joined to the deployments in SQL, they cost a second scan of them.
	suspects, err := s.suspectCounts(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("store: deployment summary: %w", err)
	}
	sum := &DeploymentSummary{}
	parts := s.deploymentParts(sc, args)
	folds := make([]*summaryFold, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	for i, pargs := range parts {
		folds[i] = newSummaryFold(sc, starts, suspects)
		g.Go(func() error { return s.foldDeployments(gctx, where, pargs, folds[i]) })
	}
	g.Go(func() (err error) {
		sum.Latest, err = s.summaryLatest(gctx, t, where, args, latest, suspects)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("store: deployment summary: %w", err)
	}
	lookups := joinFolds(sum, folds, starts)
	err = s.lookUpRecoveries(ctx, t, lookups, func(i int, next time.Time) { sum.Failures[i].RecoveredAt = next })
	if err != nil {
		return nil, fmt.Errorf("store: deployment summary: recoveries: %w", err)
	}
	return sum, nil
}

// MaxSummaryLatest bounds the latest deployments a summary lists.
const MaxSummaryLatest = 1000

// summaryFold folds one time-ordered read of deployments into a summary's
// parts.
type summaryFold struct {
	sc     ReleaseScope
	starts []time.Time
	spans  []DeploymentSpan
	span   int // the span of the last row: rows come in time order
	total  int
	// failures, oldest first; those still waiting for a success of their
	// line are listed in their line's pending.
	failures []SummaryDeployment
	// suspects counts the incidents suspecting each deployment, by id;
	// suspected lists those of the read, oldest first.
	suspects  map[string]int
	suspected []SummaryDeployment
	lines     map[string]*foldLine       // by service, type and environment name
	places    map[string]DeploymentPlace // by service and shown environment
	key       []byte                     // scratch space for map keys
}

// foldLine is what a fold knows of one line.
type foldLine struct {
	line     recoveryLine
	complete bool
	// pending are the failures (indexes in failures) that no success of
	// the line in the read followed yet, oldest first.
	pending []int
	// firstSuccess is the line's first success in the read.
	firstSuccess time.Time
}

func newSummaryFold(sc ReleaseScope, starts []time.Time, suspects map[string]int) *summaryFold {
	return &summaryFold{sc: sc, starts: starts, spans: make([]DeploymentSpan, len(starts)), suspects: suspects,
		lines: map[string]*foldLine{}, places: map[string]DeploymentPlace{}}
}

// add folds one deployment in: its id, its line (service, type, stored
// environment name), the environment as shown (name, or id), its state and
// time. The byte slices are only read during the call.
func (f *summaryFold) add(id, service, typ, env, shown []byte, state devops.DeploymentState, at time.Time) {
	for f.span+1 < len(f.starts) && !at.Before(f.starts[f.span+1]) {
		f.span++
	}
	f.total++
	if f.suspects[string(id)] > 0 { // looked up without allocating
		f.suspected = append(f.suspected, SummaryDeployment{FinishedAt: at, State: state})
	}
	f.key = append(append(append(append(append(f.key[:0], service...), 0), typ...), 0), env...)
	l := f.lines[string(f.key)] // looked up without allocating
	if l == nil {
		l = &foldLine{line: recoveryLine{string(service), string(typ), string(env)}}
		l.complete = completeLine(f.sc, l.line)
		f.lines[string(f.key)] = l
	}
	f.key = append(append(append(f.key[:0], service...), 0), shown...)
	if _, ok := f.places[string(f.key)]; !ok {
		f.places[string(f.key)] = DeploymentPlace{string(service), string(shown)}
	}
	if state == devops.DeploymentSuccessful {
		f.spans[f.span].Successful++
		if l.firstSuccess.IsZero() {
			l.firstSuccess = at
		}
		if l.complete && len(l.pending) > 0 {
			// The next success strictly after each waiting failure: all
			// but those that finished at this same instant.
			keep := l.pending[:0]
			for _, i := range l.pending {
				if f.failures[i].FinishedAt.Before(at) {
					f.failures[i].RecoveredAt = at
				} else {
					keep = append(keep, i)
				}
			}
			l.pending = keep
		}
		return
	}
	f.spans[f.span].Failed++
	l.pending = append(l.pending, len(f.failures))
	f.failures = appendRow(f.failures, SummaryDeployment{FinishedAt: at, State: state})
}

// foldDeployments reads the deployments of where (in time order) into f.
func (s *Store) foldDeployments(ctx context.Context, where string, args []any, f *summaryFold) error {
	var (
		raw                                 rawRows
		id, service, typ, env, shown, state string
		finished                            time.Time
		dest                                = []any{&id, &service, &typ, &env, &shown, &state, &finished}
		succ                                = string(devops.DeploymentSuccessful)
		failed, rolledBack                  = string(devops.DeploymentFailed), string(devops.DeploymentRolledBack)
	)
	stateOf := func(b []byte) (devops.DeploymentState, error) {
		switch string(b) { // compared without allocating
		case succ:
			return devops.DeploymentSuccessful, nil
		case failed:
			return devops.DeploymentFailed, nil
		case rolledBack:
			return devops.DeploymentRolledBack, nil
		}
		return "", fmt.Errorf("deployment state %q", b)
	}
	err := s.eachRow(ctx, `SELECT d.id, d.service, d.environment_type, d.environment_name,
			COALESCE(NULLIF(d.environment_name, ''), d.environment_id), d.state, d.finished_at
		FROM deployments d WHERE `+where+` ORDER BY d.finished_at`, args, func(r rowScanner) error {
		if v := raw.values(r, oidText, oidText, oidText, oidText, oidText, oidText, oidTimestamptz); v != nil {
			for i := range 6 {
				if v[i] == nil {
					return fmt.Errorf("column %d: %w", i, errRawNull)
				}
			}
			at, ok, err := rawTime(v[6])
			if err != nil || !ok {
				return fmt.Errorf("finished at: %w", cmp.Or(err, errRawNull))
			}
			st, err := stateOf(v[5])
			if err != nil {
				return err
			}
			f.add(v[0], v[1], v[2], v[3], v[4], st, at)
			return nil
		}
		if err := r.Scan(dest...); err != nil {
			return err
		}
		st, err := stateOf([]byte(state))
		if err != nil {
			return err
		}
		f.add([]byte(id), []byte(service), []byte(typ), []byte(env), []byte(shown), st, fromDB(finished))
		return nil
	})
	if err != nil {
		return fmt.Errorf("deployments: %w", err)
	}
	return nil
}

// joinFolds puts the folds of consecutive parts of the window together
// into sum and returns the recoveries left to look up: a failure still
// waiting at the end of its part recovers with its line's first success in
// a later part, if any, else with the first after the window.
func joinFolds(sum *DeploymentSummary, folds []*summaryFold, starts []time.Time) []pending {
	sum.Spans = make([]DeploymentSpan, len(starts))
	for i, st := range starts {
		sum.Spans[i].From = st
	}
	places := map[DeploymentPlace]bool{}
	var (
		lookups []pending
		offsets = make([]int, len(folds))
	)
	for fi, f := range folds {
		offsets[fi] = len(sum.Failures)
		sum.Failures = append(sum.Failures, f.failures...)
		sum.Suspected = append(sum.Suspected, f.suspected...)
		sum.Total += f.total
		for i, sp := range f.spans {
			sum.Spans[i].Successful += sp.Successful
			sum.Spans[i].Failed += sp.Failed
		}
		for _, p := range f.places {
			places[p] = true
		}
	}
	for fi, f := range folds {
		for key, l := range f.lines {
			if len(l.pending) == 0 {
				continue
			}
			waiting := make([]int, len(l.pending))
			for k, i := range l.pending {
				waiting[k] = offsets[fi] + i
			}
			if !l.complete {
				// The read holds only some of the line's deployments:
				// each failure's next success is looked up.
				for _, i := range waiting {
					lookups = append(lookups, pending{l.line, sum.Failures[i].FinishedAt, []int{i}})
				}
				continue
			}
			var next time.Time
			for _, later := range folds[fi+1:] {
				if ll := later.lines[key]; ll != nil && !ll.firstSuccess.IsZero() {
					next = ll.firstSuccess
					break
				}
			}
			if next.IsZero() {
				// No success of the line follows the first of them in the
				// window, so the next one after it answers for all.
				lookups = append(lookups, pending{l.line, sum.Failures[waiting[0]].FinishedAt, waiting})
				continue
			}
			for _, i := range waiting {
				sum.Failures[i].RecoveredAt = next
			}
		}
	}
	for p := range places {
		sum.Places = append(sum.Places, p)
	}
	slices.SortFunc(sum.Places, DeploymentPlace.Compare)
	return lookups
}

// summaryLatest lists the window's n latest deployments in full, oldest
// first, ordered as ReleaseDeployments orders them (ties by id), each with
// its count from suspects and, for a failure, its recovery.
func (s *Store) summaryLatest(ctx context.Context, t *tenant.Tenant, where string, args []any, n int,
	suspects map[string]int) ([]ReleaseDeployment, error) {
	if n == 0 {
		return nil, nil
	}
	// Ties in id order as ReleaseDeployments puts them, which compares
	// bytes: so do SQLite's default collation and PostgreSQL's "C".
	byID := `d.id`
	if s.dialect == DialectPostgres {
		byID += ` COLLATE "C"`
	}
	q := `SELECT ` + releaseDeploymentColumns + ` FROM deployments d WHERE ` + where +
		` ORDER BY d.finished_at DESC, ` + byID + ` DESC LIMIT ?`
	rows, err := s.readReleaseDeployments(ctx, q, append(slices.Clone(args), n), suspects)
	if err != nil {
		return nil, fmt.Errorf("latest: %w", err)
	}
	out := joinChunks(rows)
	slices.Reverse(out)
	// Each failure is looked up on its own: the rows hold only the
	// window's end of each line.
	rec := recoveries{}
	for i, d := range out {
		rec.add(recoveryLine{d.Service, string(d.Type), d.storedEnvironment}, i, d.State, d.FinishedAt)
	}
	if err := s.recover(ctx, t, out, rec, func(recoveryLine) bool { return false }); err != nil {
		return nil, fmt.Errorf("latest: recoveries: %w", err)
	}
	return out, nil
}
