package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
)

// Tests of release_days, the per-day rollup of lead and cycle times
// (migration 00013, PostgreSQL only): the triggers on the fact tables, and
// the queue they apply as each transaction commits, keep it equal to what
// the facts give; and reads through it give what reads of the facts give.

// utcDay is the UTC day the rollup files a time under.
const utcDay = 24 * time.Hour

// daysEnv is an environment the randomized histories deploy to.
type daysEnv struct {
	id, name string
	typ      devops.EnvironmentType
}

// daysEnvs are two production environments (one named in upper case, which
// the environment filter matches case-insensitively) and a staging one.
func daysEnvs() []daysEnv {
	return []daysEnv{
		{"prod-1", "production", devops.EnvironmentProduction},
		{"eu-1", "EU", devops.EnvironmentProduction},
		{"stage", "stage", devops.EnvironmentStaging},
	}
}

// daysHistory writes a randomized history to one site through the store's
// public writes: pushes, pull requests merged before and after the
// deployment that shipped them, deployments of every outcome re-sent with
// another state, range or time, and Jira issues started, moved and deleted.
type daysHistory struct {
	t      *testing.T
	x      *site
	rnd    *rand.Rand
	clock  time.Time // deployments happen at and after it
	jiraAt time.Time // Jira events' update times, increasing so that none is stale
	head   string    // label of main's last commit
	main   []string  // labels of main's commits, oldest first
	late   []devops.Batch
	sent   []devops.Deployment // as last sent
	issues map[string]string   // live issue key → issue id
	n      int                 // makes labels and ids unique
	seq    int64
	first  time.Time // the first deployment's time
	ops    map[string]int
}

func newDaysHistory(t *testing.T, x *site, seed uint64, start time.Time) *daysHistory {
	return &daysHistory{t: t, x: x, rnd: rand.New(rand.NewPCG(seed, seed*7+1)), clock: start,
		jiraAt: start.Add(90 * utcDay), issues: map[string]string{}, ops: map[string]int{}}
}

// key is an issue key of one of three projects.
func (h *daysHistory) key() string {
	switch h.rnd.IntN(3) {
	case 0:
		return fmt.Sprintf("KL-%d", 1+h.rnd.IntN(6))
	case 1:
		return fmt.Sprintf("OPS-%d", 1+h.rnd.IntN(4))
	}
	return fmt.Sprintf("WEB-%d", 1+h.rnd.IntN(3))
}

// keys is the issue keys part of a label: none, one, or several (often of
// several projects, sometimes the same key twice).
func (h *daysHistory) keys() string {
	var sb strings.Builder
	for range []int{0, 1, 1, 1, 2, 2, 3}[h.rnd.IntN(7)] {
		sb.WriteString(" " + h.key())
	}
	return sb.String()
}

// micros is a random duration below d, to the microsecond.
func (h *daysHistory) micros(d time.Duration) time.Duration {
	return time.Duration(h.rnd.Int64N(int64(d/time.Microsecond))) * time.Microsecond
}

func (h *daysHistory) label(prefix string) string {
	h.n++
	return fmt.Sprintf("%s%d%s", prefix, h.n, h.keys())
}

// step makes one random change to the site.
func (h *daysHistory) step() {
	h.t.Helper()
	switch r := h.rnd.IntN(100); {
	case r < 28 || h.head == "":
		h.push()
	case r < 36:
		h.feature()
	case r < 70:
		h.deploy()
	case r < 78 && len(h.sent) > 0:
		h.resend()
	case r < 83 && len(h.late) > 0:
		h.latePR()
	case r < 97:
		h.jira()
	default:
		h.zero()
	}
}

func (h *daysHistory) push() {
	h.t.Helper()
	var cs []labelled
	for range 1 + h.rnd.IntN(3) {
		cs = append(cs, labelled{h.label("c"), h.clock.Add(-h.micros(72 * time.Hour))})
	}
	h.x.record(pushAt("main", h.head, cs...))
	for _, c := range cs {
		h.main = append(h.main, c.label)
	}
	h.head = cs[len(cs)-1].label
	h.ops["push"]++
}

// feature pushes a branch and its merge into main, and merges its pull
// request now or, later, after a deployment shipped it (which re-links
// that deployment).
func (h *daysHistory) feature() {
	h.t.Helper()
	h.n++
	branch := fmt.Sprintf("feature/f%d", h.n)
	var cs []labelled
	for range 1 + h.rnd.IntN(2) {
		cs = append(cs, labelled{h.label("b"), h.clock.Add(-h.micros(96 * time.Hour))})
	}
	h.x.record(pushAt(branch, h.head, cs...))
	mg := labelled{h.label("mg"), h.clock.Add(-h.micros(time.Hour))}
	h.x.record(pushAt("main", h.head, append(cs, mg)...))
	for _, c := range append(cs, mg) {
		h.main = append(h.main, c.label)
	}
	h.head = mg.label
	pr := merged(int64(h.n), branch, mg.label, "PR"+h.keys(), mg.at)
	if h.rnd.IntN(2) == 0 {
		h.x.record(pr)
		h.ops["pull request"]++
	} else {
		h.late = append(h.late, pr)
	}
}

func (h *daysHistory) latePR() {
	h.t.Helper()
	i := h.rnd.IntN(len(h.late))
	h.x.record(h.late[i])
	h.late = slices.Delete(h.late, i, i+1)
	h.ops["late pull request"]++
}

func (h *daysHistory) send(d devops.Deployment) {
	h.t.Helper()
	h.x.record(devops.Batch{Repository: repo, Deployments: []devops.Deployment{d}})
}

func (h *daysHistory) state() devops.DeploymentState {
	return []devops.DeploymentState{devops.DeploymentSuccessful, devops.DeploymentSuccessful,
		devops.DeploymentSuccessful, devops.DeploymentSuccessful, devops.DeploymentFailed,
		devops.DeploymentRolledBack}[h.rnd.IntN(6)]
}

func (h *daysHistory) deploy() {
	h.t.Helper()
	// Up to nine hours later: most days have a few deployments, some none.
	h.clock = h.clock.Add(h.micros(9 * time.Hour))
	commit := h.head
	switch r := h.rnd.IntN(20); {
	case r < 3:
		commit = h.main[h.rnd.IntN(len(h.main))] // an older commit: a rollback, or a lagging environment
	case r < 6:
		commit = h.label("u") // never pushed: no commit time is known
	}
	if h.first.IsZero() {
		h.first = h.clock
	}
	// Sometimes one delivery reports the commit's deployments to two
	// environments: one transaction changes the facts of both.
	envs := daysEnvs()
	h.rnd.Shuffle(len(envs), func(i, j int) { envs[i], envs[j] = envs[j], envs[i] })
	b := devops.Batch{Repository: repo}
	for _, e := range envs[:1+h.rnd.IntN(5)/4] {
		h.seq++
		d := devops.Deployment{PipelineID: "42/deploy-" + e.id, EnvironmentID: e.id, EnvironmentName: e.name,
			EnvironmentType: e.typ, SequenceNumber: h.seq, State: h.state(), RepositoryID: repo.ID,
			CommitSHA: sha(commit), Service: []string{"checkout", "search"}[h.rnd.IntN(2)],
			FinishedAt: h.clock.Add(h.micros(time.Hour)), UpdatedAt: h.clock}
		b.Deployments = append(b.Deployments, d)
		h.sent = append(h.sent, d)
		h.ops["deploy "+string(d.State)]++
	}
	if len(b.Deployments) > 1 {
		h.ops["deliveries of two deployments"]++
	}
	h.x.record(b)
}

// resend re-sends a deployment, newer, with another state, commit or time
// (possibly on another day).
func (h *daysHistory) resend() {
	h.t.Helper()
	i := h.rnd.IntN(len(h.sent))
	d := h.sent[i]
	d.UpdatedAt = d.UpdatedAt.Add(time.Minute + h.micros(time.Hour))
	switch h.rnd.IntN(4) {
	case 0:
		d.State = h.state()
	case 1:
		d.CommitSHA = sha(h.main[h.rnd.IntN(len(h.main))])
	case 2:
		d.FinishedAt = d.FinishedAt.Add(h.micros(60*time.Hour) - 30*time.Hour)
	default:
		d.State, d.CommitSHA = h.state(), sha(h.main[h.rnd.IntN(len(h.main))])
		d.FinishedAt = d.FinishedAt.Add(h.micros(60*time.Hour) - 30*time.Hour)
	}
	h.send(d)
	h.sent[i] = d
	h.ops["resend"]++
}

// apply sends a Jira issue event for issue id, now known as key.
func (h *daysHistory) apply(id, key string, transitions ...store.JiraTransition) {
	h.t.Helper()
	h.jiraAt = h.jiraAt.Add(time.Minute)
	err := h.x.s.ApplyJiraIssueEvent(context.Background(), h.x.tn, store.JiraIssueEvent{
		Issue: store.JiraIssue{IssueID: id, IssueKey: key, ProjectKey: devops.ProjectOf(key), Summary: "s",
			StatusName: "In Progress", StatusCategory: "indeterminate", UpdatedAt: h.jiraAt},
		Transitions: transitions,
	})
	if err != nil {
		h.t.Fatalf("ApplyJiraIssueEvent(%s %s): %v", id, key, err)
	}
}

func daysStarted(at time.Time) store.JiraTransition {
	return store.JiraTransition{FromStatus: "To Do", ToStatus: "In Progress", ToCategory: "indeterminate", At: at}
}

// jira starts an issue (before or after its deployments), moves one to
// another key, or deletes one.
func (h *daysHistory) jira() {
	h.t.Helper()
	key := h.key()
	id, live := h.issues[key]
	switch r := h.rnd.IntN(10); {
	case r < 6 || !live:
		if !live {
			h.n++
			id = fmt.Sprint(10000 + h.n)
			h.issues[key] = id
		}
		h.apply(id, key, daysStarted(h.clock.Add(h.micros(120*time.Hour)-100*time.Hour)))
		h.ops["issue started"]++
	case r < 8:
		to := h.key()
		if _, taken := h.issues[to]; taken {
			h.n++
			to = fmt.Sprintf("%s-%d", devops.ProjectOf(to), 50+h.n) // a key of its project never used
		}
		h.apply(id, to)
		delete(h.issues, key)
		h.issues[to] = id
		h.ops["issue moved"]++
	default:
		h.jiraAt = h.jiraAt.Add(time.Minute)
		if err := h.x.s.DeleteJiraIssue(context.Background(), h.x.tn, id, h.jiraAt); err != nil {
			h.t.Fatalf("DeleteJiraIssue(%s): %v", id, err)
		}
		delete(h.issues, key)
		h.ops["issue deleted"]++
	}
}

// zero ships, at one instant, a commit authored at that instant (a lead
// time of 0 s), one authored after it (a negative lead time) and an issue
// started at that instant (a cycle time of 0): values the rollup keeps as
// they are, and which a zero stands for when nothing is known.
func (h *daysHistory) zero() {
	h.t.Helper()
	h.clock = h.clock.Add(h.micros(3 * time.Hour))
	h.n++
	key := fmt.Sprintf("KL-%d", 100+h.n)
	c0 := labelled{fmt.Sprintf("z%d %s", h.n, key), h.clock}
	c1 := labelled{fmt.Sprintf("z%d-after", h.n), h.clock.Add(2 * time.Hour)}
	h.x.record(pushAt("main", h.head, c0, c1))
	h.main = append(h.main, c0.label, c1.label)
	h.head = c1.label
	h.seq++
	e := daysEnvs()[0]
	d := devops.Deployment{PipelineID: "42/deploy-" + e.id, EnvironmentID: e.id, EnvironmentName: e.name,
		EnvironmentType: e.typ, SequenceNumber: h.seq, State: devops.DeploymentSuccessful, RepositoryID: repo.ID,
		CommitSHA: sha(c1.label), Service: "checkout", FinishedAt: h.clock, UpdatedAt: h.clock}
	h.send(d)
	h.sent = append(h.sent, d)
	h.n++
	id := fmt.Sprint(10000 + h.n)
	h.issues[key] = id
	h.apply(id, key, daysStarted(h.clock))
	h.ops["zero"]++
}

// daysFactsSQL is release_days recomputed from the fact tables, one row
// per value, written apart from the migration's functions so that a
// mistake in them shows.
const daysFactsSQL = `
	SELECT f.tenant_id, 'lead'::text AS measure, f.environment_type, p.project,
		(f.deployed_at AT TIME ZONE 'UTC')::date AS day, f.service, f.environment_name,
		COALESCE(f.lead_seconds, 0) AS v
	FROM change_first_deployments f
		CROSS JOIN LATERAL (SELECT '' UNION SELECT split_part(k, '-', 1)
			FROM regexp_split_to_table(f.issue_keys, ' ') AS k WHERE k <> '') AS p (project)
	UNION ALL
	SELECT f.tenant_id, 'cycle', f.environment_type, p.project,
		(f.deployed_at AT TIME ZONE 'UTC')::date, f.service, f.environment_name,
		CASE WHEN f.issue_started_at IS NULL THEN 0
			ELSE (EXTRACT(EPOCH FROM f.deployed_at - f.issue_started_at) * 1000000)::bigint END
	FROM issue_first_deployments f
		CROSS JOIN LATERAL (VALUES (''), (split_part(f.issue_key, '-', 1))) AS p (project)`

// daysRollupSQL is release_days, one row per value.
const daysRollupSQL = `
	SELECT tenant_id, measure, environment_type, project, day, service, environment_name, unnest(vals) AS v
	FROM release_days`

// checkDays fails the test unless release_days holds exactly what the fact
// tables give (both ways, as multisets), every array sorted, one
// dimensional, without NULLs, and none empty, with no queue left in
// release_day_pending. It returns how many values the facts give, so
// callers can tell the comparison was not vacuous.
func checkDays(t *testing.T, s *store.Store, step string) int {
	t.Helper()
	var (
		extra, missing, facts, empty, unsorted, odd, pending int
		extraRows, missingRows                               string
	)
	err := s.ScanOne(context.Background(), `WITH f AS (`+daysFactsSQL+`), r AS (`+daysRollupSQL+`),
		extra AS (SELECT * FROM r EXCEPT ALL SELECT * FROM f),
		missing AS (SELECT * FROM f EXCEPT ALL SELECT * FROM r)
		SELECT (SELECT count(*) FROM extra), (SELECT count(*) FROM missing), (SELECT count(*) FROM f),
			(SELECT count(*) FROM release_days WHERE cardinality(vals) = 0),
			(SELECT count(*) FROM release_days
				WHERE vals IS DISTINCT FROM (SELECT array_agg(v ORDER BY v) FROM unnest(vals) AS v)),
			(SELECT count(*) FROM release_days
				WHERE array_ndims(vals) IS DISTINCT FROM 1 OR array_position(vals, NULL) IS NOT NULL),
			(SELECT count(*) FROM release_day_pending),
			COALESCE((SELECT string_agg(format('%s', e), ' ') FROM (SELECT * FROM extra LIMIT 8) AS e), ''),
			COALESCE((SELECT string_agg(format('%s', m), ' ') FROM (SELECT * FROM missing LIMIT 8) AS m), '')`,
		&extra, &missing, &facts, &empty, &unsorted, &odd, &pending, &extraRows, &missingRows)
	if err != nil {
		t.Fatalf("%s: compare release_days: %v", step, err)
	}
	if extra > 0 || missing > 0 {
		t.Errorf("%s: release_days has %d values the facts do not (%s) and lacks %d they have (%s)",
			step, extra, extraRows, missing, missingRows)
	}
	if pending > 0 {
		// Each transaction applies its queue as it commits.
		t.Errorf("%s: release_day_pending keeps %d rows of committed transactions", step, pending)
	}
	if empty > 0 || unsorted > 0 || odd > 0 {
		t.Errorf("%s: release_days has %d empty arrays, %d unsorted, %d not one-dimensional or with NULLs",
			step, empty, unsorted, odd)
	}
	return facts
}

// daysRows counts release_days rows matching cond.
func daysRows(t *testing.T, s *store.Store, cond string) int {
	t.Helper()
	var n int
	if err := s.ScanOne(context.Background(), `SELECT count(*) FROM release_days WHERE `+cond, &n); err != nil {
		t.Fatalf("count release_days: %v", err)
	}
	return n
}

// TestReleaseDaysFollowFacts checks release_days against the facts after
// every few writes of a randomized history of two sites, the second of
// which is deleted half-way.
func TestReleaseDaysFollowFacts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		if s.Dialect() == store.DialectSQLite {
			t.Skip("release_days exists only on PostgreSQL: SQLite's migration 00013 adds nothing")
		}
		ctx := context.Background()
		x := newSite(t, s, "release-days-a")
		y := newSite(t, s, "release-days-b")
		start := t0.Add(-9 * utcDay)
		hx, hy := newDaysHistory(t, x, 1, start), newDaysHistory(t, y, 2, start)
		rnd := rand.New(rand.NewPCG(3, 4))
		next := 1
		for i := range 330 {
			switch {
			case i == 180:
				if n := daysRows(t, s, fmt.Sprintf("tenant_id = %d", y.tn.ID)); n < 10 {
					t.Fatalf("the site to delete has %d release_days rows: too few to tell", n)
				}
				if err := s.DeleteTenant(ctx, y.tn); err != nil {
					t.Fatal(err)
				}
				checkDays(t, s, "site deleted")
				if n := daysRows(t, s, fmt.Sprintf("tenant_id = %d", y.tn.ID)); n != 0 {
					t.Errorf("the deleted site keeps %d release_days rows", n)
				}
			case i < 180 && i%3 == 2:
				hy.step()
			default:
				hx.step()
			}
			if next--; next == 0 {
				checkDays(t, s, fmt.Sprintf("step %d", i))
				next = 1 + rnd.IntN(4)
			}
			if t.Failed() {
				t.Fatalf("stopped at step %d; the history so far: %v", i, hx.ops)
			}
		}
		facts := checkDays(t, s, "end")
		t.Logf("history: %v; %d values", hx.ops, facts)
		// The comparison must have had something to compare.
		for _, c := range []struct {
			what string
			n    int
			min  int
		}{
			{"values", facts, 300},
			{"projects", daysRows(t, s, `project IN ('KL', 'OPS', 'WEB') AND measure = 'lead'`), 20},
			{"staging rows", daysRows(t, s, `environment_type = 'staging'`), 10},
			{"rows of several values", daysRows(t, s, `cardinality(vals) > 1`), 20},
			{"known cycle times", daysRows(t, s, `measure = 'cycle' AND vals <> array_fill(0::bigint, ARRAY[cardinality(vals)])`), 5},
			{"re-sent deployments", hx.ops["resend"], 10},
			{"late pull requests", hx.ops["late pull request"], 3},
			{"moved issues", hx.ops["issue moved"], 2},
			{"deleted issues", hx.ops["issue deleted"], 2},
			{"deliveries of two deployments", hx.ops["deliveries of two deployments"], 3},
		} {
			if c.n < c.min {
				t.Errorf("only %d %s (want %d or more): the history is too thin to tell", c.n, c.what, c.min)
			}
		}
	})
}

// daysRow is a read's row as compared: its time, and its value (seconds or
// microseconds) when Known.
type daysRow struct {
	at    time.Time
	known bool
	v     int64
}

func leadRows(cs []store.ChangeLead) []daysRow {
	out := make([]daysRow, len(cs))
	for i, c := range cs {
		out[i] = daysRow{c.DeployedAt, c.Known, int64(c.Lead / time.Second)}
	}
	return out
}

func cycleRows(cs []store.IssueCycle) []daysRow {
	out := make([]daysRow, len(cs))
	for i, c := range cs {
		out[i] = daysRow{c.DeployedAt, c.Known, int64(c.Cycle / time.Microsecond)}
	}
	return out
}

// daysSummary is what a report takes of a read's rows: per span between
// consecutive cuts, the UTC day and (Known, value) of each row, sorted.
// The rollup knows no more than the day; and it keeps an unknown value as
// zero, so a Known zero (a lead time under a second, a start at the very
// deployment) reads back as not Known: both count as zero in the figures.
func daysSummary(rows []daysRow, cuts []time.Time) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		span := 0
		for _, c := range cuts {
			if !r.at.Before(c) {
				span++
			}
		}
		out[i] = fmt.Sprintf("span %d %s known=%v %d", span, r.at.UTC().Truncate(utcDay).Format(time.DateOnly),
			r.known && r.v != 0, r.v)
	}
	slices.Sort(out)
	return out
}

// reportCuts are the inner bounds of a report's periods (as
// release.periods makes them): weeks from Monday, or months, in loc.
func reportCuts(from, to time.Time, loc *time.Location, monthly bool) []time.Time {
	f := from.In(loc)
	start := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, loc)
	start = start.AddDate(0, 0, -((int(start.Weekday()) + 6) % 7))
	next := func(t time.Time) time.Time { return t.AddDate(0, 0, 7) }
	if monthly {
		start = time.Date(f.Year(), f.Month(), 1, 0, 0, 0, 0, loc)
		next = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	}
	var out []time.Time
	for c := next(start); c.Before(to); c = next(c) {
		out = append(out, c)
	}
	return out
}

// dailyCuts are the midnights in loc strictly inside (from, to).
func dailyCuts(from, to time.Time, loc *time.Location) []time.Time {
	f := from.In(loc)
	var out []time.Time
	for c := time.Date(f.Year(), f.Month(), f.Day()+1, 0, 0, 0, 0, loc); c.Before(to); c = c.AddDate(0, 0, 1) {
		out = append(out, c)
	}
	return out
}

// TestReleaseDaysReadsMatchFacts compares ChangeLeads and IssueCycles as
// they read (through release_days where they can) with the same reads of
// the facts alone, for many scopes, windows and report periods, span by
// span. On SQLite both are reads of the facts.
func TestReleaseDaysReadsMatchFacts(t *testing.T) {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		x := newSite(t, s, "release-days-reads")
		other := newSite(t, s, "release-days-reads-other")
		start := t0.Add(-9 * utcDay)
		h, ho := newDaysHistory(t, x, 5, start), newDaysHistory(t, other, 6, start)
		// SQLite reads the facts both ways: a shorter history does there.
		steps := 260
		if s.Dialect() == store.DialectSQLite {
			steps = 120
		}
		began := time.Now()
		for i := range steps {
			h.step()
			if i%4 == 0 {
				ho.step() // the same days and keys at another site, which no read may take
			}
		}
		t.Logf("history: %v, written in %v", h.ops, time.Since(began))
		lo, hi := h.first, h.clock
		mid := lo.UTC().Truncate(utcDay)
		type window struct {
			name     string
			from, to time.Time
		}
		windows := []window{
			{"UTC midnights", mid.Add(-utcDay), hi.UTC().Truncate(utcDay).Add(2 * utcDay)},
			{"off midnight", lo.Add(7*time.Hour + 13*time.Minute + 17*time.Microsecond), hi.Add(-5 * time.Hour)},
			// 2025-03-09 is the first day of daylight saving time in New York.
			{"New York, across DST", time.Date(2025, 3, 3, 0, 0, 0, 0, newYork), time.Date(2025, 3, 17, 0, 0, 0, 0, newYork)},
			{"Kolkata midnights", time.Date(2025, 3, 2, 0, 0, 0, 0, kolkata), time.Date(2025, 3, 16, 0, 0, 0, 0, kolkata)},
			{"shorter than a day", mid.Add(5*utcDay + 3*time.Hour), mid.Add(5*utcDay + 20*time.Hour)},
			{"one UTC day", mid.Add(6 * utcDay), mid.Add(7 * utcDay)},
			{"from midnight to a part day", mid.Add(4 * utcDay), mid.Add(6*utcDay + time.Hour)},
		}
		both := []devops.EnvironmentType{devops.EnvironmentProduction, devops.EnvironmentStaging}
		var filters []store.ReleaseScope
		for _, types := range [][]devops.EnvironmentType{nil, {devops.EnvironmentStaging}, both} {
			for _, projects := range [][]string{nil, {"KL"}, {"OPS"}, {"KL", "OPS"}} {
				for _, service := range []string{"", "search"} {
					for _, env := range []string{"", "EU", " Production "} {
						filters = append(filters, store.ReleaseScope{Types: types, Projects: projects,
							Service: service, Environment: env})
					}
				}
			}
		}
		rnd := rand.New(rand.NewPCG(9, 10))
		var (
			reads, rows, dayRows, mixed, knownZero, differ int
		)
		compare := func(what string, sc store.ReleaseScope, got, want []daysRow) {
			t.Helper()
			reads++
			rows += len(want)
			for name, rs := range map[string][]daysRow{"read": got, "facts": want} {
				if !slices.IsSortedFunc(rs, func(a, b daysRow) int { return a.at.Compare(b.at) }) {
					t.Errorf("%s %+v: %s rows not in time order", what, sc, name)
				}
				for _, r := range rs {
					if r.at.Before(sc.From.Truncate(time.Microsecond)) || !r.at.Before(sc.To) {
						t.Errorf("%s %+v: %s row at %v outside the window", what, sc, name, r.at)
					}
				}
			}
			exact := map[int64]bool{} // the facts' times, in microseconds
			for _, r := range want {
				exact[r.at.UnixMicro()] = true
				if !r.known && r.v != 0 {
					t.Errorf("%s %+v: facts give a value %d not known", what, sc, r.v)
				}
				if r.known && r.v == 0 {
					knownZero++
				}
			}
			days, facts := 0, 0
			for _, r := range got {
				if exact[r.at.UnixMicro()] {
					facts++
				} else if r.at.Equal(r.at.Truncate(utcDay)) {
					days++
				} else {
					t.Errorf("%s %+v: read row at %v, neither a fact's time nor a UTC midnight", what, sc, r.at)
				}
			}
			dayRows += days
			if days > 0 && facts > 0 {
				mixed++
			}
			for _, r := range got {
				// A read that took the rollup keeps every value as it does.
				if days > 0 && r.known != (r.v != 0) {
					t.Errorf("%s %+v: read row %+v: a rollup read knows exactly its non-zero values", what, sc, r)
				}
			}
			cuts := slices.Clone(sc.Cuts)
			slices.SortFunc(cuts, time.Time.Compare)
			g, w := daysSummary(got, cuts), daysSummary(want, cuts)
			if !slices.Equal(g, w) {
				// The difference as multisets: each value with how many more
				// times one side has it.
				n := map[string]int{}
				for _, v := range g {
					n[v]++
				}
				for _, v := range w {
					n[v]--
				}
				var only []string
				for v, k := range n {
					if k != 0 {
						only = append(only, fmt.Sprintf("%+d × %s", k, v))
					}
				}
				slices.Sort(only)
				t.Errorf("%s %+v: %d rows read, %d from the facts; read minus facts: %v", what, sc, len(g), len(w), only)
				if differ++; differ == 10 {
					t.Fatal("stopped after 10 reads that differ")
				}
			}
		}
		for _, w := range windows {
			// In a fixed order, so that a seed gives the same reads every run.
			type cutSet struct {
				name string
				cuts []time.Time
			}
			cutSets := []cutSet{
				{"no", nil},
				{"UTC month", reportCuts(w.from, w.to, time.UTC, true)},
				{"UTC week", reportCuts(w.from, w.to, time.UTC, false)},
				{"New York week", reportCuts(w.from, w.to, newYork, false)},
				{"Kolkata week", reportCuts(w.from, w.to, kolkata, false)},
				{"UTC day", dailyCuts(w.from, w.to, time.UTC)},
				{"New York day", dailyCuts(w.from, w.to, newYork)},
				{"Kolkata day", dailyCuts(w.from, w.to, kolkata)},
			}
			// Instants anywhere, at midnight or not, repeated, and outside
			// the window.
			var random []time.Time
			for range 6 {
				at := w.from.Add(time.Duration(rnd.Int64N(int64(w.to.Sub(w.from)))))
				random = append(random, at.Truncate(time.Second), at.UTC().Truncate(utcDay))
			}
			cutSets = append(cutSets, cutSet{"random",
				append(random, random[0], w.from.Add(-time.Hour), w.to.Add(30*time.Hour))})
			for _, cs := range cutSets {
				name, cuts := cs.name, cs.cuts
				if len(cuts) > store.MaxReleaseCuts {
					continue
				}
				// Production and staging without a filter, and some others.
				picked := []store.ReleaseScope{filters[0], filters[24]}
				for range 6 {
					picked = append(picked, filters[rnd.IntN(len(filters))])
				}
				for _, sc := range picked {
					sc.From, sc.To, sc.Cuts = w.from, w.to, cuts
					what := w.name + ", " + name + " cuts"
					leads, err := s.ChangeLeads(ctx, x.tn, sc)
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					factLeads, err := s.ChangeLeads(store.FactsOnly(ctx), x.tn, sc)
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					compare(what+", lead times", sc, leadRows(leads), leadRows(factLeads))
					cycles, err := s.IssueCycles(ctx, x.tn, sc)
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					factCycles, err := s.IssueCycles(store.FactsOnly(ctx), x.tn, sc)
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					compare(what+", cycle times", sc, cycleRows(cycles), cycleRows(factCycles))
				}
			}
		}
		t.Logf("%d reads, %d rows; %d rows of the rollup, in %d reads mixed with facts; %d known zeros",
			reads, rows, dayRows, mixed, knownZero)
		if rows < 20*steps {
			t.Errorf("only %d rows compared", rows)
		}
		if s.Dialect() == store.DialectPostgres && (dayRows < 1000 || mixed < 20) {
			// Otherwise both reads may have read the facts.
			t.Errorf("only %d rows came from the rollup, %d reads mixed it with facts", dayRows, mixed)
		}
		if s.Dialect() == store.DialectSQLite && dayRows > 0 {
			t.Errorf("SQLite read %d rows at midnight that no fact has", dayRows)
		}
		if knownZero == 0 {
			t.Error("no known zero lead or cycle time: the history does not test them")
		}
	})
}

// deadlockCounter counts the store's log records about deadlocks (which
// store.tx retries), discarding every record.
type deadlockCounter struct{ n *atomic.Int64 }

func (h deadlockCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h deadlockCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h deadlockCounter) WithGroup(string) slog.Handler            { return h }
func (h deadlockCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "deadlock") {
		h.n.Add(1)
	}
	return nil
}

// TestReleaseDaysConcurrentWriters: eight writers ship different commits to
// the same service and environment on two UTC days at once, all into the
// same release_days rows, and re-send some of their deployments, moving
// them to the other day or failing them; the rollup must still equal the
// facts. With their own pipelines and unrelated commits of their own
// issues, the writers share nothing but the rollup's rows; on one pipeline
// and one history their commit ranges and issues overlap too. A deadlock,
// whether store.tx ran the transaction again or the write failed, fails
// the test.
func TestReleaseDaysConcurrentWriters(t *testing.T) {
	const (
		writers = 8
		each    = 5
		rounds  = 2
	)
	for _, c := range []struct {
		name   string
		shared bool
	}{
		{"own pipelines and commits", false},
		{"one pipeline and history", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			var deadlocks atomic.Int64
			s, err := store.OpenPostgres(ctx, dbtest.Postgres(t), dbtest.Sealer(t), slog.New(deadlockCounter{&deadlocks}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Error(err)
				}
			})
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			x := newSite(t, s, "release-days-concurrent")
			// Every commit the writers will ship, authored over the days
			// before: one history pushed to main, or unrelated commits each
			// of its own issues.
			var commits []labelled
			for i := range writers * each * rounds {
				keys := fmt.Sprintf("KL-%d OPS-%d", i%7, i%5)
				if !c.shared {
					keys = fmt.Sprintf("KL-%d OPS-%d", 100+i, 100+i)
				}
				commits = append(commits, labelled{fmt.Sprintf("w%d %s", i, keys),
					t0.Add(-time.Duration(i+1) * 37 * time.Minute)})
			}
			if c.shared {
				x.record(pushAt("main", "", commits...))
			} else {
				b := devops.Batch{Repository: repo}
				for _, l := range commits {
					b.Commits = append(b.Commits, devops.Commit{SHA: sha(l.label), RepositoryID: repo.ID, Message: l.label,
						AuthoredAt: l.at, IssueKeys: devops.ExtractIssueKeys(l.label)})
				}
				x.record(b)
			}
			for r := range rounds {
				// Writers ship to one of two days, half to each, and move
				// deployments to the other day: the rows of both days are
				// then wanted in both orders.
				first := t0.UTC().Truncate(utcDay).Add(time.Duration(2+2*r) * utcDay)
				days := []time.Time{first, first.Add(utcDay)}
				startLine := make(chan struct{})
				errs := make(chan error, writers*each*2)
				var wg sync.WaitGroup
				for g := range writers {
					rnd := rand.New(rand.NewPCG(uint64(r), uint64(g)))
					home, away := days[g%2], days[1-g%2]
					someTime := func(day time.Time) time.Time {
						return day.Add(time.Duration(rnd.Int64N(int64(utcDay/time.Microsecond))) * time.Microsecond)
					}
					pipeline := "42/deploy"
					if !c.shared {
						pipeline = fmt.Sprintf("42/deploy-%d", g)
					}
					wg.Go(func() {
						<-startLine
						n := 0
						send := func(d devops.Deployment) {
							n++
							err := s.RecordEvent(ctx, x.tn, x.src, accepted(fmt.Sprintf("r%d-g%d-%d", r, g, n)),
								&devops.Batch{Repository: repo, Deployments: []devops.Deployment{d}})
							if err != nil {
								errs <- fmt.Errorf("writer %d, deployment %d: %w", g, d.SequenceNumber, err)
							}
						}
						var sent []devops.Deployment
						for i := range each {
							at := someTime(home)
							d := devops.Deployment{PipelineID: pipeline, EnvironmentID: "production",
								EnvironmentName: "production", EnvironmentType: devops.EnvironmentProduction,
								SequenceNumber: int64(1000*r + 100*g + i), State: devops.DeploymentSuccessful,
								RepositoryID: repo.ID, CommitSHA: sha(commits[(r*writers+g)*each+i].label),
								Service: "checkout", FinishedAt: at, UpdatedAt: at}
							send(d)
							sent = append(sent, d)
						}
						// Re-sent: finished on the other day after all, or failed.
						for i, d := range sent[:2] {
							d.UpdatedAt = d.UpdatedAt.Add(time.Minute)
							if i == 0 || rnd.IntN(2) == 0 {
								d.FinishedAt = someTime(away)
							} else {
								d.State = devops.DeploymentFailed
							}
							send(d)
						}
					})
				}
				close(startLine)
				wg.Wait()
				close(errs)
				for err := range errs {
					if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "40P01" {
						t.Errorf("round %d: a write failed with a deadlock: %v\n%s\n%s", r, err, pgErr.Detail, pgErr.Where)
					} else {
						t.Errorf("round %d: %v", r, err)
					}
				}
				facts := checkDays(t, s, fmt.Sprintf("round %d", r))
				if facts < writers*each {
					t.Errorf("round %d: only %d values in the facts", r, facts)
				}
				for _, day := range days {
					if n := daysRows(t, s, fmt.Sprintf(`day = '%s' AND project = '' AND measure = 'lead'
						AND cardinality(vals) >= %d`, day.Format(time.DateOnly), writers/2)); n != 1 {
						t.Errorf("round %d: %d rows of %s hold the writers' lead times, want 1", r, n, day)
					}
				}
			}
			if n := deadlocks.Load(); n > 0 {
				// The rollup's rows are its writers' last locks, taken in key
				// order at commit, and a line's deployments are written one
				// at a time: no wait can close a cycle.
				t.Errorf("store.tx retried %d transactions PostgreSQL ended to break a deadlock", n)
			}
		})
	}
}
