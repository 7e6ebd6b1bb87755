package release_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"golang.org/x/sync/errgroup"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/metrics"
	"github.com/keyline/keyline/app/preview"
	"github.com/keyline/keyline/app/release"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// engineSeedNow ends the seeded history. It is not a UTC midnight, so the
// windows ending at it start and end inside a day that the day rollup
// (PostgreSQL's release_days) cannot serve whole; 2026-03-18 is a
// Wednesday, ten days after New York's spring change.
var engineSeedNow = time.Date(2026, 3, 18, 15, 37, 21, 0, time.UTC)

// engineHistoryDays is how far back the seeded history reaches: the year
// windows ending before engineSeedNow start inside it.
const engineHistoryDays = 400

// TestReportsAgreeAcrossEngines builds the same reports over the same
// history on SQLite, which reads the fact tables row by row, and on
// PostgreSQL, which reads whole UTC days from the day rollup: every figure
// must be the same. The rollup dates its rows at the day's start, so it is
// exact only if the store reads from the facts every day a period bound
// splits and the window's part days; the locations put those bounds at
// 00:00 (UTC), 04:00 and 05:00 (New York), 18:30 (Kolkata), 10:15 and
// 11:15 (Chatham), and 03:00 and 04:00 (Santiago, which skips the midnight
// of 2025-09-07) UTC.
func TestReportsAgreeAcrossEngines(t *testing.T) {
	ctx := context.Background()
	lite := dbtest.SQLiteStore(t)
	// The sessions' time zone is not UTC, as on a server set up in India:
	// the rollup's reads must not depend on it (comparing its dates with
	// timestamps would). The schema is the test's alone and dropped after
	// it, so its commits need not wait for the disk (a second of the
	// seeding's eight).
	dsn := dbtest.Postgres(t) + "&synchronous_commit=off&options=-ctimezone%3DAsia%2FKolkata"
	pg, err := store.OpenPostgres(ctx, dsn, dbtest.Sealer(t), nil)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() {
		if err := pg.Close(); err != nil {
			t.Errorf("close postgres: %v", err)
		}
	})
	if err := pg.Migrate(ctx); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}

	locations := []*time.Location{time.UTC, mustLoad(t, "America/New_York"), mustLoad(t, "Asia/Kolkata"),
		mustLoad(t, "Pacific/Chatham"), mustLoad(t, "America/Santiago")}
	const d = 24 * time.Hour
	// off is another end off midnight: two days after New York's spring
	// change (2026-03-08), so its week-long window spans it.
	off := time.Date(2026, 3, 10, 21, 12, 45, 0, time.UTC)
	monday := time.Date(2025, 10, 6, 0, 0, 0, 0, time.UTC)
	windows := []struct {
		name     string
		from, to time.Time
	}{
		{"36h to now", engineSeedNow.Add(-36 * time.Hour), engineSeedNow},
		{"7d to now", engineSeedNow.Add(-7 * d), engineSeedNow},
		{"30d to now", engineSeedNow.Add(-30 * d), engineSeedNow},
		{"90d to now", engineSeedNow.Add(-90 * d), engineSeedNow},
		{"365d to now", engineSeedNow.Add(-365 * d), engineSeedNow},
		{"7d to off", off.Add(-7 * d), off},
		{"30d to off", off.Add(-30 * d), off},
		{"90d to off", off.Add(-90 * d), off},
		{"365d to off", off.Add(-365 * d), off},
		{"90d from a UTC midnight", monday, monday.Add(90 * d)},
		{"200d from a UTC midnight", monday.Add(-120 * d), monday.Add(80 * d)},
	}
	var edges []time.Time
	for _, w := range windows {
		edges = append(edges, w.from, w.to)
	}

	pgSite, liteSite := seedEngines(t, ctx, pg, lite, edges, locations)
	assertRollupInUse(t, ctx, dsn, pg, lite, pgSite, liteSite)

	prod, staging, dev := devops.EnvironmentProduction, devops.EnvironmentStaging, devops.EnvironmentDevelopment
	types := func(ts ...devops.EnvironmentType) []devops.EnvironmentType { return ts }
	filters := []struct {
		name string
		f    release.Filter
	}{
		// No types means production: the site's filter is Types {production}.
		{"site", release.Filter{}},
		{"project PAY", release.Filter{Projects: []string{"PAY"}}},
		{"project NITE", release.Filter{Projects: []string{"NITE"}}},
		{"project ED_GE, staging", release.Filter{Projects: []string{"ED_GE"}, Types: types(staging)}},
		{"projects PAY+WEB", release.Filter{Projects: []string{"PAY", "WEB"}}},
		{"projects NITE+ED_GE", release.Filter{Projects: []string{"NITE", "ED_GE"}}},
		{"service checkout-api", release.Filter{Service: "checkout-api"}},
		{"service night-batch", release.Filter{Service: "night-batch"}},
		{"environment Prod-EU", release.Filter{Environment: "Prod-EU"}},
		{"types staging", release.Filter{Types: types(staging)}},
		{"types production+staging", release.Filter{Types: types(prod, staging)}},
		// The demo's development deployments follow merges at any hour.
		{"types development", release.Filter{Types: types(dev)}},
		{"project WEB, development", release.Filter{Projects: []string{"WEB"}, Types: types(dev)}},
		{"service edge-cache, environment staging", release.Filter{Service: "edge-cache", Environment: "staging",
			Types: types(staging)}},
	}
	pgCounted := &summaryCounter{Store: pg}
	compared, summarised, start := 0, 0, time.Now()
	for li, loc := range locations {
		for wi, w := range windows {
			for _, fc := range filters {
				f := fc.f
				f.Slowest = 5
				f.Window = metrics.Window{From: w.from, To: w.to, Location: loc}
				name := fmt.Sprintf("%s, %s, %s", fc.name, w.name, loc)
				// In half the reports PostgreSQL lists only the latest
				// deployments, as for a page, and so summarises the rest
				// (store.ReleaseDeploymentSummary), while SQLite lists
				// them all: the figures must agree all the same.
				pf := f
				if (li+wi)%2 == 1 {
					pf.Latest = 40
					name += ", latest 40 on PostgreSQL"
					summarised++
				}
				// Both at once: SQLite works in this process, PostgreSQL in
				// the server's.
				var want, got *release.Report
				g, gctx := errgroup.WithContext(ctx)
				g.Go(func() (err error) {
					want, err = release.Build(gctx, lite, liteSite, f)
					return wrap("sqlite", err)
				})
				g.Go(func() (err error) {
					got, err = release.Build(gctx, pgCounted, pgSite, pf)
					return wrap("postgres", err)
				})
				if err := g.Wait(); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, diff := range reportDiffs(want, got) {
					t.Errorf("%s: %s", name, diff)
				}
				if want.Changes > 0 && want.CycleTime.N > 0 {
					compared++
				}
			}
		}
	}
	n := len(locations) * len(windows) * len(filters)
	if got := int(pgCounted.summaries.Load()); got != summarised {
		t.Errorf("PostgreSQL summarised %d reports' deployments, want %d", got, summarised)
	}
	t.Logf("compared %d reports (%d from a deployment summary), %d with changes and cycle times, in %s", n,
		summarised, compared, time.Since(start).Round(time.Millisecond))
	// A history that left the reports empty would agree trivially.
	if compared < n/2 {
		t.Errorf("only %d of %d reports have changes and cycle times: the seeded history is too thin to compare",
			compared, n)
	}
}

// seedEngines writes the same history to both stores, at once since the
// writing is most of the test's time, and returns the site on each. The
// history is the demo's (preview.Seed is deterministic for a fixed Now: its
// random source has a fixed seed and its times are relative to Now) and a
// night shift on the same site (nightShift).
func seedEngines(t *testing.T, ctx context.Context, pg, lite *store.Store, edges []time.Time,
	locations []*time.Location) (pgSite, liteSite *tenant.Tenant) {
	t.Helper()
	var demos [2]*preview.Demo
	var events [2]int
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for i, st := range []*store.Store{pg, lite} {
		g.Go(func() error {
			d, err := preview.Seed(gctx, st, preview.SeedOptions{AppKeyPrefix: "dev.keyline",
				SiteURL: "http://127.0.0.1:9", Now: engineSeedNow, Days: engineHistoryDays})
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			demos[i] = d
			// Each store gets its own copy of the plan: RecordEvent may
			// normalise a batch in place.
			night := nightShift(engineSeedNow.AddDate(0, 0, -engineHistoryDays), engineSeedNow, edges, locations)
			events[i] = d.Events + len(night)
			if err := recordNightShift(gctx, st, d.Jira, night); err != nil {
				return fmt.Errorf("night shift: %w", err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("seed: %v", err)
	}
	if events[0] != events[1] {
		t.Fatalf("recorded %d events on PostgreSQL and %d on SQLite", events[0], events[1])
	}
	t.Logf("seeded %d events on each engine in %s", events[0], time.Since(start).Round(time.Millisecond))
	return demos[0].Jira, demos[1].Jira
}

// nightDelivery is one delivery of the night shift, or one Jira webhook
// when issue is set.
type nightDelivery struct {
	batch devops.Batch
	issue *store.JiraIssueEvent
}

// nightShift plans a history of two services (projects NITE and ED_GE)
// whose deployments finish where the rollup's day arithmetic can go
// wrong, where the demo's office hours never reach: at UTC midnights and
// a second or some minutes either side, at the local midnights the
// periods are cut at (Mondays and first days of months among them), at
// the windows' edges (edges), and anywhere, some with microseconds. Its
// changes carry keys of one or both projects or none; lead and cycle
// times are sometimes zero or negative; some deployments fail, some are
// rolled back, some are delivered after the next one; Jira tells of some
// issues only after their changes shipped, and of some starts only after
// the issue's end, so the rollup's rows are updated as well as inserted.
// The plan is the same on every call.
func nightShift(from, to time.Time, edges []time.Time, locations []*time.Location) []nightDelivery {
	rnd := rand.New(rand.NewPCG(20260318, 1545))
	const day = 24 * time.Hour
	days := int(to.Sub(from) / day)
	// A UTC midnight inside the history.
	midnight := func() time.Time { return from.Truncate(day).Add(time.Duration(1+rnd.IntN(days-1)) * day) }
	near := []time.Duration{-time.Second, 0, 0, time.Microsecond, time.Second, -20 * time.Minute,
		20 * time.Minute, -59 * time.Minute, 59*time.Minute + 59*time.Second}
	var instants []time.Time
	for range 260 {
		var at time.Time
		switch rnd.IntN(4) {
		case 0:
			at = from.Add(time.Duration(rnd.Int64N(int64(to.Sub(from))))).Truncate(time.Microsecond)
		case 1:
			at = midnight().Add(near[rnd.IntN(len(near))])
		case 2:
			loc := locations[rnd.IntN(len(locations))]
			l := midnight().In(loc)
			m := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
			switch rnd.IntN(3) {
			case 0: // a week's start
				m = m.AddDate(0, 0, -((int(m.Weekday()) + 6) % 7))
			case 1: // a month's
				m = time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, loc)
			}
			at = m.Add(near[rnd.IntN(len(near))])
		case 3:
			at = edges[rnd.IntN(len(edges))].Add(near[rnd.IntN(len(near))])
		}
		if !at.Before(from) && at.Before(to) {
			instants = append(instants, at)
		}
	}
	slices.SortFunc(instants, time.Time.Compare)

	type service struct {
		name, project string
		repo          devops.Repository
		head          string
		seq           map[string]int64
		held          *devops.Batch // a deployment delivered after the next one
	}
	services := []*service{
		{name: "night-batch", project: "NITE", repo: devops.Repository{ID: "night-1", Name: "keyline-demo/night-batch",
			URL: "https://github.com/keyline-demo/night-batch", DefaultBranch: "main"}},
		{name: "edge-cache", project: "ED_GE", repo: devops.Repository{ID: "night-2", Name: "keyline-demo/edge-cache",
			URL: "https://github.com/keyline-demo/edge-cache", DefaultBranch: "main"}},
	}
	environments := []struct {
		id, name string
		typ      devops.EnvironmentType
	}{
		{"production", "production", devops.EnvironmentProduction},
		{"prod-eu", "Prod-EU", devops.EnvironmentProduction},
		{"staging", "staging", devops.EnvironmentStaging},
	}
	const issuesPerProject = 25
	key := func(project string) string { return project + "-" + strconv.Itoa(1+rnd.IntN(issuesPerProject)) }
	var (
		out     []nightDelivery
		commits int
		deploys []devops.DeploymentKey
	)
	for _, at := range instants {
		s := services[rnd.IntN(len(services))]
		if s.seq == nil {
			s.seq = map[string]int64{}
		}
		push := devops.Batch{Repository: &s.repo, Push: &devops.Push{RepositoryID: s.repo.ID, Ref: "refs/heads/main",
			Before: s.head, Created: s.head == "", PushedAt: at.Add(-2 * time.Minute)}}
		for range rnd.IntN(4) {
			commits++
			msg := "Tune the nightly jobs"
			switch k := rnd.IntN(10); {
			case k < 6:
				msg = key(s.project) + " " + msg
			case k < 8:
				other := services[0].project
				if other == s.project {
					other = services[1].project
				}
				msg = key(s.project) + " " + key(other) + " " + msg
			}
			var lead time.Duration
			switch k := rnd.IntN(20); {
			case k == 0: // the author's clock ran ahead
				lead = -time.Duration(1+rnd.IntN(600)) * time.Second
			case k == 1: // committed the second it shipped
			case k < 12:
				lead = time.Duration(rnd.Int64N(int64(3 * day)))
			default:
				lead = time.Duration(rnd.Int64N(int64(40 * day)))
			}
			sha := fmt.Sprintf("%040x", 0xfeed0000+commits)
			push.Commits = append(push.Commits, devops.Commit{SHA: sha, RepositoryID: s.repo.ID, Message: msg,
				AuthoredAt: at.Add(-lead).Truncate(time.Second), URL: s.repo.URL + "/commit/" + sha,
				IssueKeys: devops.ExtractIssueKeys(msg)})
			push.Push.CommitSHAs = append(push.Push.CommitSHAs, sha)
			s.head = sha
		}
		if len(push.Commits) > 0 {
			push.Push.After = s.head
			out = append(out, nightDelivery{batch: push})
		}
		if s.head == "" {
			continue
		}
		env := environments[rnd.IntN(len(environments))]
		s.seq[env.id]++
		dep := devops.Deployment{PipelineID: s.repo.ID + "/deploy", PipelineName: "Deploy " + s.name,
			EnvironmentID: env.id, EnvironmentName: env.name, EnvironmentType: env.typ,
			EnvironmentBasis: devops.BasisProvider, SequenceNumber: s.seq[env.id], State: devops.DeploymentSuccessful,
			RepositoryID: s.repo.ID, CommitSHA: s.head, Ref: "main", Service: s.name,
			URL:       fmt.Sprintf("https://deploy.keyline-demo.example/%s/%s/%d", s.name, env.id, s.seq[env.id]),
			StartedAt: at.Add(-5 * time.Minute), FinishedAt: at, UpdatedAt: at}
		deploys = append(deploys, dep.Key())
		k := rnd.IntN(10)
		if k == 0 {
			dep.State = devops.DeploymentFailed
		}
		b := devops.Batch{Repository: &s.repo, Deployments: []devops.Deployment{dep}}
		if s.held != nil {
			out = append(out, nightDelivery{batch: b}, nightDelivery{batch: *s.held})
			s.held = nil
		} else if k == 1 {
			s.held = &b
		} else {
			out = append(out, nightDelivery{batch: b})
		}
		if k == 2 {
			// Rolled back fifty minutes on: the same deployment, updated.
			dep.State, dep.FinishedAt, dep.UpdatedAt = devops.DeploymentRolledBack, at.Add(50*time.Minute),
				at.Add(50*time.Minute)
			out = append(out, nightDelivery{batch: devops.Batch{Repository: &s.repo, Deployments: []devops.Deployment{dep}}})
		}
		if rnd.IntN(12) == 0 {
			in := devops.Incident{SourceID: fmt.Sprintf("NIGHT%03d", len(out)), Title: "Nightly job overran",
				Severity: "P3", Status: devops.IncidentOpen, Service: s.name, OpenedAt: at.Add(10 * time.Minute),
				UpdatedAt: at.Add(10 * time.Minute), IssueKeys: []string{key(s.project)}}
			if rnd.IntN(2) == 0 {
				suspect := deploys[rnd.IntN(len(deploys))]
				in.Deployment = &suspect
			}
			if rnd.IntN(4) > 0 {
				in.Status, in.ResolvedAt = devops.IncidentResolved, in.OpenedAt.Add(time.Duration(rnd.Int64N(int64(2*day))))
				in.UpdatedAt = in.ResolvedAt
			}
			out = append(out, nightDelivery{batch: devops.Batch{Incidents: []devops.Incident{in}}})
		}
	}
	for _, s := range services {
		if s.held != nil {
			out = append(out, nightDelivery{batch: *s.held})
		}
	}

	// The issues: half are told of before the deliveries, half after (the
	// facts then learn their start by update). For some, Jira's webhook of
	// the start arrives after a later one of the issue's end, which the
	// facts first take as its start; one issue is deleted at the end.
	var before, after []nightDelivery
	id := 70000
	for _, s := range services {
		for n := 1; n <= issuesPerProject; n++ {
			id++
			k := s.project + "-" + strconv.Itoa(n)
			issue := store.JiraIssue{IssueID: strconv.Itoa(id), IssueKey: k, ProjectKey: s.project,
				Summary: "Night shift " + k, StatusName: "To Do", StatusCategory: "new", IssueType: "Task"}
			created := from.Add(time.Duration(rnd.Int64N(int64(to.Sub(from) / 2)))).Truncate(time.Second)
			issue.UpdatedAt = created
			ev := &store.JiraIssueEvent{Issue: issue,
				Transitions: []store.JiraTransition{{ToStatus: "To Do", ToCategory: "new", At: created}}}
			when := &before
			if rnd.IntN(2) == 0 {
				when = &after
			}
			started := created.Add(time.Duration(rnd.Int64N(int64(to.Sub(created))))).Truncate(time.Microsecond)
			switch rnd.IntN(5) {
			case 0: // never started
			case 1:
				done := started.Add(time.Duration(rnd.Int64N(int64(10 * day))))
				end := issue
				end.StatusName, end.StatusCategory, end.UpdatedAt = "Done", "done", done
				before = append(before, nightDelivery{issue: &store.JiraIssueEvent{Issue: end,
					Transitions: []store.JiraTransition{{FromStatus: "In Progress", ToStatus: "Done", ToCategory: "done",
						At: done}}}})
				when = &after
				fallthrough
			default:
				ev.Issue.StatusName, ev.Issue.StatusCategory, ev.Issue.UpdatedAt = "In Progress", "indeterminate", started
				ev.Transitions = append(ev.Transitions, store.JiraTransition{FromStatus: "To Do",
					ToStatus: "In Progress", ToCategory: "indeterminate", At: started})
			}
			*when = append(*when, nightDelivery{issue: ev})
		}
	}
	after = append(after, nightDelivery{issue: &store.JiraIssueEvent{Deleted: true,
		Issue: store.JiraIssue{IssueID: "70002", IssueKey: "NITE-2", UpdatedAt: to}}})
	return append(append(before, out...), after...)
}

// recordNightShift writes the night shift's deliveries to st, for site t,
// through one GitHub source.
func recordNightShift(ctx context.Context, st *store.Store, t *tenant.Tenant, night []nightDelivery) error {
	src, _, _, err := st.CreateSource(ctx, t, store.SourceGitHub, "GitHub: night shift")
	if err != nil {
		return fmt.Errorf("create source: %w", err)
	}
	for i, nd := range night {
		if nd.issue != nil {
			if err := st.ApplyJiraIssueEvent(ctx, t, *nd.issue); err != nil {
				return fmt.Errorf("issue %s: %w", nd.issue.Issue.IssueKey, err)
			}
			continue
		}
		d := store.Delivery{DeliveryID: "night-" + strconv.Itoa(i), Event: "night", Outcome: store.DeliveryAccepted,
			Status: 200, ReceivedAt: engineSeedNow}
		if err := st.RecordEvent(ctx, t, src.ID, d, &nd.batch); err != nil {
			return fmt.Errorf("delivery %d: %w", i, err)
		}
	}
	return nil
}

// assertRollupInUse checks that PostgreSQL's reads take the day rollup, so
// that the comparison tests it: release_days holds the site's days, and a
// year's read of one project gives rows dated at a UTC midnight where
// SQLite's give the deployments' own times.
func assertRollupInUse(t *testing.T, ctx context.Context, dsn string, pg, lite *store.Store, pgSite, liteSite *tenant.Tenant) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	defer db.Close()
	var (
		lead, cycle int
		zone        string
	)
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FILTER (WHERE measure = 'lead'),
			COUNT(*) FILTER (WHERE measure = 'cycle'), current_setting('TimeZone')
		FROM release_days WHERE tenant_id = $1`, pgSite.ID).Scan(&lead, &cycle, &zone); err != nil {
		t.Fatalf("count release_days: %v", err)
	}
	if zone != "Asia/Kolkata" {
		t.Errorf("the PostgreSQL sessions' time zone is %s, want Asia/Kolkata", zone)
	}
	if lead == 0 || cycle == 0 {
		t.Fatalf("release_days holds %d lead and %d cycle rows for the site, want both", lead, cycle)
	}

	sc := store.ReleaseScope{From: engineSeedNow.Add(-365 * 24 * time.Hour), To: engineSeedNow,
		Projects: []string{"PAY"}}
	midnights := func(st *store.Store, site *tenant.Tenant) (leads, cycles, n int) {
		t.Helper()
		cl, err := st.ChangeLeads(ctx, site, sc)
		if err != nil {
			t.Fatalf("change leads: %v", err)
		}
		ic, err := st.IssueCycles(ctx, site, sc)
		if err != nil {
			t.Fatalf("issue cycles: %v", err)
		}
		for _, c := range cl {
			if c.DeployedAt.Equal(c.DeployedAt.Truncate(24 * time.Hour)) {
				leads++
			}
		}
		for _, c := range ic {
			if c.DeployedAt.Equal(c.DeployedAt.Truncate(24 * time.Hour)) {
				cycles++
			}
		}
		return leads, cycles, len(cl) + len(ic)
	}
	// The demo's production deployments keep office hours: none of PAY's
	// rows is at a midnight unless the rollup dated it so.
	pgLeads, pgCycles, pgRows := midnights(pg, pgSite)
	liteLeads, liteCycles, liteRows := midnights(lite, liteSite)
	if pgRows != liteRows {
		t.Errorf("PAY's year read %d rows on PostgreSQL and %d on SQLite", pgRows, liteRows)
	}
	if liteLeads != 0 || liteCycles != 0 {
		t.Fatalf("%d change and %d issue rows of PAY are at a UTC midnight on SQLite: the rollup's cannot be told apart",
			liteLeads, liteCycles)
	}
	if pgLeads == 0 || pgCycles == 0 {
		t.Errorf("PAY's year read on PostgreSQL gave %d change and %d issue rows from the rollup, want some of both",
			pgLeads, pgCycles)
	}
}

// reportDiffs lists how got differs from want in what the report shows:
// its figures, bands and trend, and how many deployments, incidents,
// changes and slowest changes it lists.
func reportDiffs(want, got *release.Report) []string {
	var out []string
	diff := func(what string, w, g any) {
		if !reflect.DeepEqual(w, g) {
			out = append(out, fmt.Sprintf("%s = %+v, want %+v", what, g, w))
		}
	}
	figures := func(what string, w, g release.Figures) {
		// Field by field, so that a difference names the figure.
		wv, gv := reflect.ValueOf(w), reflect.ValueOf(g)
		for i := range wv.NumField() {
			diff(what+wv.Type().Field(i).Name, wv.Field(i).Interface(), gv.Field(i).Interface())
		}
	}
	figures("", want.Figures, got.Figures)
	diff("bands", want.Bands, got.Bands)
	diff("granularity", want.Granularity, got.Granularity)
	diff("changes", want.Changes, got.Changes)
	diff("deployment count", want.DeploymentCount, got.DeploymentCount)
	diff("places", want.Places, got.Places)
	wl, gl := deploymentLines(want.Deployments), deploymentLines(got.Deployments)
	if n := got.Filter.Latest; n > 0 && want.Filter.Latest == 0 && len(wl) > n {
		wl = wl[len(wl)-n:] // the latest are the last
	}
	if len(wl) != len(gl) {
		out = append(out, fmt.Sprintf("%d deployments listed, want %d", len(gl), len(wl)))
	} else {
		for i := range wl {
			if wl[i] != gl[i] {
				out = append(out, fmt.Sprintf("deployment %d is %s, want %s", i, gl[i], wl[i]))
				break
			}
		}
	}
	diff("incidents", len(want.Incidents), len(got.Incidents))
	diff("slowest", len(want.Slowest), len(got.Slowest))
	if len(want.Trend) != len(got.Trend) {
		return append(out, fmt.Sprintf("%d trend periods, want %d", len(got.Trend), len(want.Trend)))
	}
	for i, w := range want.Trend {
		g := got.Trend[i]
		if !w.Start.Equal(g.Start) || !w.End.Equal(g.End) {
			out = append(out, fmt.Sprintf("period %d is %s – %s, want %s – %s", i, g.Start, g.End, w.Start, w.End))
		}
		start := w.Start.In(want.Filter.Window.Location).Format("2006-01-02 15:04 MST")
		figures(fmt.Sprintf("period %d (%s) ", i, start), w.Figures, g.Figures)
	}
	return out
}

// summaryCounter counts the deployment summaries its store gave.
type summaryCounter struct {
	*store.Store
	summaries atomic.Int64
}

func (c *summaryCounter) ReleaseDeploymentSummary(ctx context.Context, t *tenant.Tenant, sc store.ReleaseScope,
	cuts []time.Time, latest int) (*store.DeploymentSummary, error) {
	c.summaries.Add(1)
	return c.Store.ReleaseDeploymentSummary(ctx, t, sc, cuts, latest)
}

// deploymentLines describes deps one line each, with what the figures and
// the page read of them, but the ids, whose source part is random.
func deploymentLines(deps []store.ReleaseDeployment) []string {
	out := make([]string, len(deps))
	for i, d := range deps {
		out[i] = fmt.Sprintf("%s %s/%s/%s #%d %s at %s recovered %s, %d suspecting", d.PipelineName, d.Service, d.Type,
			d.Environment, d.Sequence, d.State, d.FinishedAt.UTC().Format(time.RFC3339Nano),
			d.RecoveredAt.UTC().Format(time.RFC3339Nano), d.SuspectOf)
	}
	return out
}

// wrap adds what failed to err, if any.
func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}
