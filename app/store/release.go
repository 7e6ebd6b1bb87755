package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"golang.org/x/sync/errgroup"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/tenant"
)

// What the release metrics and release notes read. The deployment rows
// come from deployments itself (one index range per environment type);
// changes and issues from the facts recordFirstDeployments keeps, so no
// read walks commit ranges.

// Bounds of the release reads.
const (
	// MaxReleaseWindow is the longest window one read covers.
	MaxReleaseWindow = 2 * 366 * 24 * time.Hour
	// MaxSlowestChanges bounds SlowestChanges.
	MaxSlowestChanges = 100
	// MaxShippedIssues bounds ShippedIssues.
	MaxShippedIssues = 500
	// MaxReleaseTypes bounds the environment types counted as production.
	MaxReleaseTypes = 5
	// MaxReleaseCuts bounds ReleaseScope.Cuts.
	MaxReleaseCuts = 64
)

// ReleaseScope selects what release figures cover: deployments to
// environments of Types (production when empty) finished in [From, To),
// optionally only those of one service, one environment (by name, case
// insensitive), or linked to issues of Projects.
type ReleaseScope struct {
	Types       []devops.EnvironmentType
	Projects    []string
	Service     string
	Environment string
	From, To    time.Time
	// Cuts are the instants inside the window at which the caller splits
	// rows into periods (a report's weeks or months). ChangeLeads and
	// IssueCycles may give a row the start of its UTC day as its time when
	// no cut falls inside that day (see release_days.go).
	Cuts []time.Time
}

// check validates the scope and fills its defaults.
func (sc ReleaseScope) check() (ReleaseScope, error) {
	if len(sc.Types) == 0 {
		sc.Types = []devops.EnvironmentType{devops.EnvironmentProduction}
	}
	if len(sc.Types) > MaxReleaseTypes {
		return sc, fmt.Errorf("at most %d environment types", MaxReleaseTypes)
	}
	for _, ty := range sc.Types {
		if !ty.Valid() {
			return sc, fmt.Errorf("environment type %q is not valid", ty)
		}
	}
	if len(sc.Projects) > maxFilterProjects {
		return sc, fmt.Errorf("at most %d projects", maxFilterProjects)
	}
	for _, p := range sc.Projects {
		if !devops.ValidProjectKey(p) {
			return sc, fmt.Errorf("%q is not a project key", p)
		}
	}
	if !sc.From.Before(sc.To) || sc.To.Sub(sc.From) > MaxReleaseWindow {
		return sc, fmt.Errorf("the window must be non-empty and at most %d days", int(MaxReleaseWindow.Hours()/24))
	}
	if len(sc.Cuts) > MaxReleaseCuts {
		return sc, fmt.Errorf("at most %d cuts", MaxReleaseCuts)
	}
	sc.Service = strings.ToLower(strings.TrimSpace(sc.Service))
	sc.Environment = strings.ToLower(strings.TrimSpace(sc.Environment))
	return sc, nil
}

func (sc ReleaseScope) typeArgs() []any {
	out := make([]any, len(sc.Types))
	for i, ty := range sc.Types {
		out[i] = string(ty)
	}
	return out
}

// likeKeyPrefix is a LIKE pattern (with ESCAPE '\') matching keys of
// project p: "_" is a wildcard in LIKE and allowed in project keys.
func likeKeyPrefix(p string) string {
	return strings.ReplaceAll(p, "_", `\_`) + "-%"
}

// projectLinked is the condition that entity column col (of type typ) is
// linked to an issue of one of projects, and its binds.
func projectLinked(typ, col string, projects []string) (string, []any) {
	if len(projects) == 0 {
		return "", nil
	}
	var sb strings.Builder
	args := []any{}
	sb.WriteString(` AND EXISTS (SELECT 1 FROM issue_links l WHERE l.tenant_id = ? AND l.entity_type = '` + typ +
		`' AND l.entity_id = ` + col + ` AND (`)
	for i, p := range projects {
		if i > 0 {
			sb.WriteString(" OR ")
		}
		sb.WriteString(`l.issue_key LIKE ? ESCAPE '\'`)
		args = append(args, likeKeyPrefix(p))
	}
	sb.WriteString("))")
	return sb.String(), args
}

// ReleaseDeployment is a deployment the release figures count.
type ReleaseDeployment struct {
	ID           string
	PipelineName string
	Sequence     int64
	Service      string
	Environment  string // its name, or id when it has none
	Type         devops.EnvironmentType
	State        devops.DeploymentState
	FinishedAt   time.Time
	URL          string
	CommitCount  int
	SuspectOf    int       // incidents naming it as their suspect
	RecoveredAt  time.Time // for a failed or rolled-back one: the next success to the same service and environment

	storedEnvironment string // environment_name as stored, which recoveries match on
}

// ReleaseDeployments returns the deployments in sc that took place
// (successful, failed or rolled back), oldest first, each with how many
// incidents suspect it and, when it failed, when the same service and
// environment next deployed successfully (at any time after).
func (s *Store) ReleaseDeployments(ctx context.Context, t *tenant.Tenant, sc ReleaseScope) ([]ReleaseDeployment, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: release deployments: %w", err)
	}
	sc, err := sc.check()
	if err != nil {
		return nil, fmt.Errorf("store: release deployments: %w", err)
	}
	suspects, err := s.suspectCounts(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("store: release deployments: %w", err)
	}
	where, args := s.deploymentWhere(t, sc)
	q := `SELECT ` + releaseDeploymentColumns + ` FROM deployments d WHERE ` + where
	// Ordered by time alone, the rows come straight from the index
	// (deployments_release_idx); ties are put in id order below. Sorting
	// a year's rows by (finished_at, id) in the server spilled to disk.
	q += ` ORDER BY d.finished_at`
	parts := s.deploymentParts(sc, args)
	chunks := make([]*rowChunks[ReleaseDeployment], len(parts))
	g, gctx := errgroup.WithContext(ctx)
	for i, pargs := range parts {
		g.Go(func() (err error) {
			chunks[i], err = s.readReleaseDeployments(gctx, q, pargs, suspects)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("store: release deployments: %w", err)
	}
	out := joinChunks(chunks...)
	rec := recoveries{}
	for lo := 0; lo < len(out); {
		hi := lo + 1
		for hi < len(out) && out[hi].FinishedAt.Equal(out[lo].FinishedAt) {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(out[lo:hi], func(a, b ReleaseDeployment) int { return strings.Compare(a.ID, b.ID) })
		}
		lo = hi
	}
	for i, d := range out {
		rec.add(recoveryLine{d.Service, string(d.Type), d.storedEnvironment}, i, d.State, d.FinishedAt)
	}
	complete := func(l recoveryLine) bool { return completeLine(sc, l) }
	if err := s.recover(ctx, t, out, rec, complete); err != nil {
		return nil, fmt.Errorf("store: release deployments: recoveries: %w", err)
	}
	return out, nil
}

// releaseDeploymentColumns are the columns of a ReleaseDeployment, as
// readReleaseDeployments reads them, of deployments d.
const releaseDeploymentColumns = `d.id, d.pipeline_name, d.sequence_number, d.service,
	COALESCE(NULLIF(d.environment_name, ''), d.environment_id), d.environment_name, d.environment_type,
	d.state, d.finished_at, d.url, d.commit_count`

// deploymentWhere is the condition on the deployments d that sc covers
// (those that took place: successful, failed or rolled back), and its
// binds: the tenant, the types, then the window's bounds, and the filters'.
func (s *Store) deploymentWhere(t *tenant.Tenant, sc ReleaseScope) (string, []any) {
	q := `d.tenant_id = ? AND d.environment_type IN (` + inList(len(sc.Types)) + `)
			AND d.state IN ('successful', 'failed', 'rolled_back')
			AND d.finished_at >= ? AND d.finished_at < ?`
	args := append([]any{t.ID}, sc.typeArgs()...)
	args = append(args, s.ts(sc.From), s.ts(sc.To))
	if sc.Service != "" {
		q += ` AND d.service = ?`
		args = append(args, sc.Service)
	}
	if sc.Environment != "" {
		q += ` AND lower(COALESCE(NULLIF(d.environment_name, ''), d.environment_id)) = ?`
		args = append(args, sc.Environment)
	}
	if len(sc.Projects) > 0 {
		// The projects of the deployment's links, as the row keeps them:
		// filtered in the index rather than probing issue_links per row.
		conds := make([]string, len(sc.Projects))
		for i, p := range sc.Projects {
			conds[i] = `(' ' || d.linked_projects || ' ') LIKE ? ESCAPE '\'`
			args = append(args, linkedProjectsLike(p))
		}
		q += ` AND (` + strings.Join(conds, " OR ") + `)`
	}
	return q, args
}

// completeLine reports whether a read of sc's deployments holds every
// deployment of line l in its window: not when a filter picks among them
// (projects, or an environment filter when deployments without a name
// are told apart by id).
func completeLine(sc ReleaseScope, l recoveryLine) bool {
	return len(sc.Projects) == 0 && (sc.Environment == "" || l.environment != "")
}

// splitDeploymentsAfter is the window from which ReleaseDeployments reads
// on PostgreSQL in two halves at once: a year site-wide took 130 ms read
// whole.
const splitDeploymentsAfter = 180 * 24 * time.Hour

// deploymentParts returns the binds of each part of sc's window that a read
// of its deployments (args, from deploymentWhere) runs on its own
// connection, oldest part first: on PostgreSQL, a window of
// splitDeploymentsAfter or more is read as two halves at once, since the
// server's scan and the decoding of its rows took turns rather than
// overlapping, and a long window's deployments were most of its report's
// time. Elsewhere the window is one part.
func (s *Store) deploymentParts(sc ReleaseScope, args []any) [][]any {
	if s.dialect != DialectPostgres || sc.To.Sub(sc.From) < splitDeploymentsAfter {
		return [][]any{args}
	}
	bounds := 1 + len(sc.Types) // the window's bounds are binds bounds and bounds+1
	mid := sc.From.Add(sc.To.Sub(sc.From) / 2)
	parts := make([][]any, 2)
	for i, span := range [2][2]time.Time{{sc.From, mid}, {mid, sc.To}} {
		parts[i] = slices.Clone(args)
		parts[i][bounds], parts[i][bounds+1] = s.ts(span[0]), s.ts(span[1])
	}
	return parts
}

// Compare orders places by service, then environment.
func (p DeploymentPlace) Compare(q DeploymentPlace) int {
	return cmp.Or(strings.Compare(p.Service, q.Service), strings.Compare(p.Environment, q.Environment))
}

// readReleaseDeployments runs ReleaseDeployments' query q and returns its
// rows, in the query's order, each with its count from suspects.
func (s *Store) readReleaseDeployments(ctx context.Context, q string, args []any, suspects map[string]int) (*rowChunks[ReleaseDeployment], error) {
	var (
		out rowChunks[ReleaseDeployment]
		// Scan targets are reused for every row: a busy quarter has tens
		// of thousands, and a fresh set per row was most of the read's
		// allocations.
		d          ReleaseDeployment
		typ, state string
		finished   time.Time // the window's bounds exclude NULL
		dest       = []any{&d.ID, &d.PipelineName, &d.Sequence, &d.Service, &d.Environment, &d.storedEnvironment,
			&typ, &state, &finished, &d.URL, &d.CommitCount}
		raw      rawRows
		strs     = interner{}
		idAndURL []byte
	)
	err := s.eachRow(ctx, q, args, func(r rowScanner) error {
		if v := raw.values(r, oidText, oidText, oidInt8, oidText, oidText, oidText, oidText, oidText,
			oidTimestamptz, oidText, oidInt4); v != nil {
			if err := decodeReleaseDeployment(v, &d, strs, &idAndURL); err != nil {
				return err
			}
		} else {
			if err := r.Scan(dest...); err != nil {
				return err
			}
			d.Type, d.State = devops.EnvironmentType(typ), devops.DeploymentState(state)
			d.FinishedAt = fromDB(finished)
		}
		d.SuspectOf = suspects[d.ID]
		out.add(d)
		return nil
	})
	return &out, err
}

// decodeReleaseDeployment decodes a row of ReleaseDeployments' query from
// PostgreSQL's raw values (see rawRows) into d. The columns that repeat
// from row to row (pipeline, service, environment, type, state) come from
// strs; the id and the URL, unique to the row, share one allocation, with
// buf as scratch space.
func decodeReleaseDeployment(v [][]byte, d *ReleaseDeployment, strs interner, buf *[]byte) error {
	for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 9, 10} {
		if v[i] == nil {
			return fmt.Errorf("column %d: %w", i, errRawNull)
		}
	}
	*buf = append(append((*buf)[:0], v[0]...), v[9]...)
	both := string(*buf)
	d.ID, d.URL = both[:len(v[0])], both[len(v[0]):]
	// d holds the previous row's values: most rows repeat its environment,
	// type and state, and comparing is cheaper than a map lookup.
	d.PipelineName = strs.again(d.PipelineName, v[1])
	seq, _, err := rawInt(v[2])
	if err != nil {
		return fmt.Errorf("sequence number: %w", err)
	}
	d.Sequence = seq
	d.Service, d.Environment = strs.again(d.Service, v[3]), strs.again(d.Environment, v[4])
	d.storedEnvironment = strs.again(d.storedEnvironment, v[5])
	d.Type = devops.EnvironmentType(strs.again(string(d.Type), v[6]))
	d.State = devops.DeploymentState(strs.again(string(d.State), v[7]))
	at, ok, err := rawTime(v[8])
	if err != nil {
		return fmt.Errorf("finished at: %w", err)
	}
	if !ok {
		return fmt.Errorf("finished at: %w", errRawNull)
	}
	d.FinishedAt = at
	n, _, err := rawInt(v[10])
	if err != nil {
		return fmt.Errorf("commit count: %w", err)
	}
	d.CommitCount = int(n)
	return nil
}

// suspectCounts returns how many of t's incidents suspect each deployment,
// by deployment id: one grouped scan of the site's incidents, which are
// few beside its deployments, instead of a probe per deployment. Joined to
// the deployments in SQL it cost PostgreSQL a hash join that lost the
// index's time order.
func (s *Store) suspectCounts(ctx context.Context, t *tenant.Tenant) (map[string]int, error) {
	out := map[string]int{}
	var (
		id   string
		n    int
		dest = []any{&id, &n}
	)
	err := s.eachRow(ctx, `SELECT suspect_deployment_id, COUNT(*) FROM incidents
		WHERE tenant_id = ? AND suspect_deployment_id <> '' GROUP BY suspect_deployment_id`, []any{t.ID},
		func(r rowScanner) error {
			if err := r.Scan(dest...); err != nil {
				return err
			}
			out[id] = n
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("suspect counts: %w", err)
	}
	return out, nil
}

// recoveryLine is what a failed deployment's recovery must share with it:
// the next successful deployment of the same service to the same
// environment (by type and stored name).
type recoveryLine struct{ service, environmentType, environment string }

// recoveries gathers, per line, the read's successes (their times, in
// order) and failures (their indexes in the read's rows).
type recoveries map[recoveryLine]*lineDeployments

type lineDeployments struct {
	successes []time.Time
	failures  []int
}

func (r recoveries) add(l recoveryLine, i int, state devops.DeploymentState, at time.Time) {
	ld := r[l]
	if ld == nil {
		ld = &lineDeployments{}
		r[l] = ld
	}
	if state == devops.DeploymentSuccessful {
		ld.successes = append(ld.successes, at)
	} else {
		ld.failures = append(ld.failures, i)
	}
}

// pending is a recovery recover asks the database for: the first success
// of line after a time, which failures (indexes in the read's rows) share.
type pending struct {
	line     recoveryLine
	after    time.Time
	failures []int
}

// lookUpRecoveries finds, for each of lookups, the first success of its
// line after its time, and calls set with it for each of its failures
// (with the zero time when there is none yet).
func (s *Store) lookUpRecoveries(ctx context.Context, t *tenant.Tenant, lookups []pending, set func(i int, next time.Time)) error {
	if len(lookups) == 0 {
		return nil
	}
	if s.dialect == DialectPostgres {
		return s.lookUpRecoveriesPostgres(ctx, t, lookups, set)
	}
	// On SQLite, lookups go in batches of scalar subqueries, one statement
	// each, so the number of round trips stays small whatever the filter.
	const batch = 100
	for start := 0; start < len(lookups); start += batch {
		part := lookups[start:min(start+batch, len(lookups))]
		var (
			sb   strings.Builder
			args []any
		)
		for k, p := range part {
			if k > 0 {
				sb.WriteString(" UNION ALL ")
			}
			fmt.Fprintf(&sb, `SELECT %d, (SELECT MIN(finished_at) FROM deployments WHERE tenant_id = ? AND service = ?
				AND environment_type = ? AND environment_name = ? AND state = 'successful' AND finished_at > ?)`, k)
			args = append(args, t.ID, p.line.service, p.line.environmentType, p.line.environment, s.ts(p.after))
		}
		var (
			k    int
			next anyTime
			dest = []any{&k, &next}
		)
		err := s.eachRow(ctx, sb.String(), args, func(r rowScanner) error {
			if err := r.Scan(dest...); err != nil {
				return err
			}
			if k < 0 || k >= len(part) {
				return fmt.Errorf("recovery lookup %d of %d", k, len(part))
			}
			for _, i := range part[k].failures {
				set(i, next.Time)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// lookUpRecoveriesPostgres is lookUpRecoveries in one statement: the
// lookups' lines and times go as arrays, and each is one probe of
// deployments_service_idx. A project's year has thousands of failures to
// look up; as batches of a hundred scalar subqueries, planning them cost
// more than the probes.
func (s *Store) lookUpRecoveriesPostgres(ctx context.Context, t *tenant.Tenant, lookups []pending, set func(i int, next time.Time)) error {
	var (
		services = make([]string, len(lookups))
		types    = make([]string, len(lookups))
		envs     = make([]string, len(lookups))
		afters   = make([]time.Time, len(lookups))
	)
	for i, p := range lookups {
		services[i], types[i], envs[i], afters[i] = p.line.service, p.line.environmentType, p.line.environment,
			normTime(p.after)
	}
	var (
		k    int64
		next anyTime
		dest = []any{&k, &next}
	)
	return s.eachRow(ctx, `SELECT u.k, (SELECT MIN(d.finished_at) FROM deployments d
			WHERE d.tenant_id = ? AND d.service = u.service AND d.environment_type = u.typ
				AND d.environment_name = u.env AND d.state = 'successful' AND d.finished_at > u.after)
		FROM unnest(?::text[], ?::text[], ?::text[], ?::timestamptz[]) WITH ORDINALITY AS u(service, typ, env, after, k)`,
		[]any{t.ID, services, types, envs, afters}, func(r rowScanner) error {
			if err := r.Scan(dest...); err != nil {
				return err
			}
			if k < 1 || k > int64(len(lookups)) {
				return fmt.Errorf("recovery lookup %d of %d", k, len(lookups))
			}
			for _, i := range lookups[k-1].failures {
				set(i, next.Time)
			}
			return nil
		})
}

// recover sets RecoveredAt on the failed deployments of rows: the first
// successful deployment of the same line that finished after it. Where the
// read holds all of a line's deployments (complete), that success is
// found among the rows themselves, and only the failures after the line's
// last success in the window need the database: one lookup per line,
// since they share the answer. Other failures are looked up one by one.
// A site-wide quarter has thousands of failures and a few dozen lines.
func (s *Store) recover(ctx context.Context, t *tenant.Tenant, rows []ReleaseDeployment, rec recoveries,
	complete func(recoveryLine) bool) error {
	var lookups []pending
	for l, ld := range rec {
		if len(ld.failures) == 0 {
			continue
		}
		if !complete(l) {
			for _, i := range ld.failures {
				lookups = append(lookups, pending{l, rows[i].FinishedAt, []int{i}})
			}
			continue
		}
		var tail []int
		for _, i := range ld.failures {
			at := rows[i].FinishedAt
			// The first success strictly after the failure.
			j, _ := slices.BinarySearchFunc(ld.successes, at, func(s, at time.Time) int {
				if s.After(at) {
					return 1
				}
				return -1
			})
			if j < len(ld.successes) {
				rows[i].RecoveredAt = ld.successes[j]
			} else {
				tail = append(tail, i)
			}
		}
		if len(tail) > 0 {
			// No success of the line in the window follows the first of
			// these, so the next one after it is the answer for all.
			lookups = append(lookups, pending{l, rows[tail[0]].FinishedAt, tail})
		}
	}
	return s.lookUpRecoveries(ctx, t, lookups, func(i int, next time.Time) { rows[i].RecoveredAt = next })
}

// ChangeLead is one change's first deployment in a scope and its lead time.
type ChangeLead struct {
	// DeployedAt is when the change was first deployed, or the start of
	// that UTC day when the day rollup gave the row (see ReleaseScope.Cuts).
	DeployedAt time.Time
	// Lead is first commit → deployment; Known is false when no commit
	// time of the change is known. The rollup keeps an unknown lead time
	// as zero, so its rows with a zero lead time are not Known either:
	// the figures exclude both alike.
	Lead  time.Duration
	Known bool
}

// ChangeLeads returns the changes whose first successful deployment to an
// environment of sc's types finished in sc's window (see migration 00008
// for what a change is). With several types, a change counts once, at the
// earliest of its deployments in the window. The service and environment
// filters apply to that first deployment; projects to the change's issue
// keys.
func (s *Store) ChangeLeads(ctx context.Context, t *tenant.Tenant, sc ReleaseScope) ([]ChangeLead, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: change leads: %w", err)
	}
	sc, err := sc.check()
	if err != nil {
		return nil, fmt.Errorf("store: change leads: %w", err)
	}
	if plan, ok := s.usesDays(ctx, sc); ok {
		var out rowChunks[ChangeLead]
		err := s.readDays(ctx, t, sc, plan, "lead", "change_first_deployments", leadDayValue, "issue_keys",
			func(at time.Time, v int64) {
				out.add(ChangeLead{DeployedAt: at, Lead: time.Duration(v) * time.Second, Known: v != 0})
			})
		if err != nil {
			return nil, fmt.Errorf("store: change leads: %w", err)
		}
		return joinChunks(&out), nil
	}
	multi := len(sc.Types) > 1
	cols := `deployed_at, lead_seconds`
	if multi {
		cols += `, change_kind, change_id`
	}
	where, args := s.factWhere(t, sc, "issue_keys")
	// database/sql directly: at a busy site this read returns a hundred
	// thousand rows, and gorm's per-row overhead would be most of its cost.
	// In time order, so that a report can cut its periods as runs of rows;
	// for one environment type the time index already yields that order.
	var (
		out      []ChangeLead
		seen     = map[string]int{}
		deployed time.Time
		lead     pgtype.Int8 // NULL when no commit time is known; scans without allocating
		kind, id string
		dest     = []any{&deployed, &lead} // reused for every row, as in ReleaseDeployments
	)
	if multi {
		dest = append(dest, &kind, &id)
	}
	oids := []uint32{oidTimestamptz, oidInt8}
	if multi {
		oids = append(oids, oidText, oidText)
	}
	var raw rawRows
	err = s.eachRow(ctx, `SELECT `+cols+` FROM change_first_deployments f WHERE `+where+` ORDER BY f.deployed_at`, args,
		func(r rowScanner) error {
			var c ChangeLead
			if v := raw.values(r, oids...); v != nil {
				at, ok, err := rawTime(v[0])
				if err != nil || !ok {
					return fmt.Errorf("deployed at: %w", cmp.Or(err, errRawNull))
				}
				n, known, err := rawInt(v[1])
				if err != nil {
					return fmt.Errorf("lead seconds: %w", err)
				}
				c = ChangeLead{DeployedAt: at, Lead: time.Duration(n) * time.Second, Known: known}
				if multi {
					kind, id = string(v[2]), string(v[3])
				}
			} else {
				if err := r.Scan(dest...); err != nil {
					return err
				}
				c = ChangeLead{DeployedAt: fromDB(deployed)}
				if lead.Valid {
					c.Lead, c.Known = time.Duration(lead.Int64)*time.Second, true
				}
			}
			if multi {
				k := kind + " " + id
				if i, ok := seen[k]; ok {
					if c.DeployedAt.Before(out[i].DeployedAt) {
						out[i] = c
					}
					return nil
				}
				seen[k] = len(out)
			}
			out = appendRow(out, c)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("store: change leads: %w", err)
	}
	return out, nil
}

// factWhere is the WHERE clause (without the keyword) of a read of one of
// the fact tables, aliased f, in sc, and its binds; keysCol is the column
// holding the row's issue key or keys, for the project filter.
func (s *Store) factWhere(t *tenant.Tenant, sc ReleaseScope, keysCol string) (string, []any) {
	args := append([]any{t.ID}, sc.typeArgs()...)
	args = append(args, s.ts(sc.From), s.ts(sc.To))
	cond, cargs := factFilters(sc, keysCol)
	return `f.tenant_id = ? AND f.environment_type IN (` + inList(len(sc.Types)) +
		`) AND f.deployed_at >= ? AND f.deployed_at < ?` + cond, append(args, cargs...)
}

// placeFilters is the condition on sc's service and environment of the
// fact or rollup row aliased alias (conditions each starting with " AND "),
// and its binds.
func placeFilters(alias string, sc ReleaseScope) (string, []any) {
	var (
		cond string
		args []any
	)
	if sc.Service != "" {
		cond += ` AND ` + alias + `.service = ?`
		args = append(args, sc.Service)
	}
	if sc.Environment != "" {
		cond += ` AND lower(` + alias + `.environment_name) = ?`
		args = append(args, sc.Environment)
	}
	return cond, args
}

// factFilters is the part of factWhere for sc's service, environment and
// projects: conditions each starting with " AND ", and their binds.
func factFilters(sc ReleaseScope, keysCol string) (string, []any) {
	var sb strings.Builder
	cond, args := placeFilters("f", sc)
	sb.WriteString(cond)
	if len(sc.Projects) > 0 {
		sb.WriteString(` AND (`)
		for i, p := range sc.Projects {
			if i > 0 {
				sb.WriteString(" OR ")
			}
			// Keys are space-separated; a leading space puts one before
			// every key.
			sb.WriteString(`(' ' || f.` + keysCol + `) LIKE ? ESCAPE '\'`)
			args = append(args, `% `+likeKeyPrefix(p))
		}
		sb.WriteString(`)`)
	}
	return sb.String(), args
}

// placeholders adapts a query written with "?" for database/sql on the
// store's dialect.
func (s *Store) placeholders(q string) string {
	if s.dialect == DialectPostgres {
		return dollarPlaceholders(q)
	}
	return q
}

// ChangeRecord is a change (a merged pull request or a commit) and its
// first deployment in a scope.
type ChangeRecord struct {
	Kind        string // ChangePullRequest or ChangeCommit
	ID          string // pull request id or commit sha
	Title       string
	Number      int64 // pull request number; 0 for a commit
	URL         string
	IssueKeys   []string
	Lead        time.Duration
	FirstCommit time.Time
	DeployedAt  time.Time
	Service     string
	Environment string
}

// SlowestChanges returns the n changes of sc with the longest known lead
// times, slowest first.
func (s *Store) SlowestChanges(ctx context.Context, t *tenant.Tenant, sc ReleaseScope, n int) ([]ChangeRecord, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: slowest changes: %w", err)
	}
	sc, err := sc.check()
	if err != nil {
		return nil, fmt.Errorf("store: slowest changes: %w", err)
	}
	n = bound(n, 10, MaxSlowestChanges)
	where, args := s.factWhere(t, sc, "issue_keys")
	q := `SELECT f.change_kind, f.change_id, f.lead_seconds, f.first_commit_at, f.deployed_at, f.service,
			f.environment_name, f.issue_keys,
			COALESCE(p.title, c.message, ''), COALESCE(p.number, 0), COALESCE(p.url, c.url, '')
		FROM (SELECT * FROM change_first_deployments f
			WHERE ` + where + ` AND f.lead_seconds IS NOT NULL
			ORDER BY f.lead_seconds DESC, f.change_id LIMIT ?) f
		LEFT JOIN pull_requests p ON f.change_kind = 'pullrequest' AND p.tenant_id = f.tenant_id AND p.id = f.change_id
		LEFT JOIN commits c ON f.change_kind = 'commit' AND c.tenant_id = f.tenant_id AND c.sha = f.change_id
		ORDER BY f.lead_seconds DESC, f.change_id`
	// The limit sits on the fact rows alone: with the joins above it,
	// PostgreSQL sorted every change of the window in full (spilling to
	// disk for a busy quarter) instead of keeping the top few.
	// Through eachRow, so that PostgreSQL plans for this window: the
	// slowest-first index pays for a year and not for a month.
	var out []ChangeRecord
	seen := map[string]bool{}
	err = s.eachRow(ctx, q, append(args, n*len(sc.Types)), func(r rowScanner) error {
		c, err := scanChangeRecord(r)
		if err != nil {
			return err
		}
		if seen[c.Kind+" "+c.ID] || len(out) == n {
			return nil
		}
		seen[c.Kind+" "+c.ID] = true
		out = append(out, *c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: slowest changes: %w", err)
	}
	return out, nil
}

// scanChangeRecord reads a change as SlowestChanges selects it, then extra.
func scanChangeRecord(r rowScanner, extra ...any) (*ChangeRecord, error) {
	var (
		c               ChangeRecord
		lead            int64
		first, deployed sql.NullTime
		keys            string
	)
	dest := append([]any{&c.Kind, &c.ID, &lead, &first, &deployed, &c.Service, &c.Environment, &keys,
		&c.Title, &c.Number, &c.URL}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	c.Lead = time.Duration(lead) * time.Second
	c.FirstCommit, c.DeployedAt = nullTime(first), nullTime(deployed)
	c.IssueKeys = textKeys(keys)
	if c.Kind == ChangeCommit {
		c.Title, _, _ = strings.Cut(c.Title, "\n")
	}
	return &c, nil
}

// ReleaseIncident is an incident the release figures count.
type ReleaseIncident struct {
	ID                  string
	Title               string
	Severity            string
	Service             string
	OpenedAt            time.Time
	ResolvedAt          time.Time // zero while open
	SuspectDeploymentID string
}

// ReleaseIncidents returns the incidents opened in sc's window, oldest
// first: of sc's service when set, and of sc's projects (linked to one of
// their issues, or suspecting a deployment that is) when set.
func (s *Store) ReleaseIncidents(ctx context.Context, t *tenant.Tenant, sc ReleaseScope) ([]ReleaseIncident, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: release incidents: %w", err)
	}
	sc, err := sc.check()
	if err != nil {
		return nil, fmt.Errorf("store: release incidents: %w", err)
	}
	q := `SELECT i.id, i.title, i.severity, i.service, i.opened_at, i.resolved_at, i.suspect_deployment_id
		FROM incidents i WHERE i.tenant_id = ? AND i.opened_at >= ? AND i.opened_at < ?`
	args := []any{t.ID, s.ts(sc.From), s.ts(sc.To)}
	if sc.Service != "" {
		q += ` AND i.service = ?`
		args = append(args, sc.Service)
	}
	if len(sc.Projects) > 0 {
		own, oargs := projectLinked(EntityIncident, "i.id", sc.Projects)
		via, vargs := projectLinked(EntityDeployment, "i.suspect_deployment_id", sc.Projects)
		q += ` AND (` + strings.TrimPrefix(own, " AND ") + ` OR ` + strings.TrimPrefix(via, " AND ") + `)`
		args = append(append(append(append(args, t.ID), oargs...), t.ID), vargs...)
	}
	q += ` ORDER BY i.opened_at, i.id`
	rows, err := s.db.WithContext(ctx).Raw(q, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: release incidents: %w", err)
	}
	defer rows.Close()
	var out []ReleaseIncident
	for rows.Next() {
		var (
			in               ReleaseIncident
			opened, resolved sql.NullTime
		)
		if err := rows.Scan(&in.ID, &in.Title, &in.Severity, &in.Service, &opened, &resolved,
			&in.SuspectDeploymentID); err != nil {
			return nil, fmt.Errorf("store: release incidents: %w", err)
		}
		in.OpenedAt, in.ResolvedAt = nullTime(opened), nullTime(resolved)
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: release incidents: %w", err)
	}
	return out, nil
}

// ShippedIssue is an issue's first deployment in a scope, with what Jira's
// webhooks told of it.
type ShippedIssue struct {
	Key          string
	DeploymentID string
	DeployedAt   time.Time
	Service      string
	Environment  string
	// Issue is nil when Jira's webhooks never mentioned the issue.
	Issue *JiraIssue
}

// ShippedIssues returns the issues whose first successful deployment to an
// environment of sc's types finished in sc's window, oldest first, at most
// limit of them, and whether more were left out. With several types an
// issue counts once, at its earliest deployment in the window.
func (s *Store) ShippedIssues(ctx context.Context, t *tenant.Tenant, sc ReleaseScope, limit int) ([]ShippedIssue, bool, error) {
	if err := checkTenant(t); err != nil {
		return nil, false, fmt.Errorf("store: shipped issues: %w", err)
	}
	sc, err := sc.check()
	if err != nil {
		return nil, false, fmt.Errorf("store: shipped issues: %w", err)
	}
	limit = bound(limit, MaxShippedIssues, MaxShippedIssues)
	where, args := s.factWhere(t, sc, "issue_key")
	q := `SELECT f.issue_key, f.deployment_id, f.deployed_at, f.service, f.environment_name,
			j.issue_id, j.summary, j.status_name, j.status_category, j.issue_type, j.started_at
		FROM issue_first_deployments f
		LEFT JOIN jira_issues j ON j.tenant_id = f.tenant_id AND j.issue_key = f.issue_key AND j.deleted_at IS NULL
		WHERE ` + where + ` ORDER BY f.deployed_at, f.issue_key LIMIT ?`
	rows, err := s.db.WithContext(ctx).Raw(q, append(args, (limit+1)*len(sc.Types))...).Rows()
	if err != nil {
		return nil, false, fmt.Errorf("store: shipped issues: %w", err)
	}
	defer rows.Close()
	var out []ShippedIssue
	seen := map[string]bool{}
	more := false
	for rows.Next() {
		var (
			si                                  ShippedIssue
			deployed, started                   sql.NullTime
			id, summary, status, category, kind sql.NullString
		)
		if err := rows.Scan(&si.Key, &si.DeploymentID, &deployed, &si.Service, &si.Environment,
			&id, &summary, &status, &category, &kind, &started); err != nil {
			return nil, false, fmt.Errorf("store: shipped issues: %w", err)
		}
		if seen[si.Key] {
			continue
		}
		seen[si.Key] = true
		if len(out) == limit {
			more = true
			continue
		}
		si.DeployedAt = nullTime(deployed)
		if id.Valid {
			si.Issue = &JiraIssue{IssueID: id.String, IssueKey: si.Key, ProjectKey: devops.ProjectOf(si.Key),
				Summary: summary.String, StatusName: status.String, StatusCategory: category.String,
				IssueType: kind.String, StartedAt: nullTime(started)}
		}
		out = append(out, si)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("store: shipped issues: %w", err)
	}
	return out, more, nil
}

// IssueCycle is an issue's first deployment in a scope and its cycle time.
type IssueCycle struct {
	// DeployedAt is when the issue was first deployed, or the start of
	// that UTC day when the day rollup gave the row (see ReleaseScope.Cuts).
	DeployedAt time.Time
	// Cycle is start of work → DeployedAt's exact time; Known is false when
	// no recorded transition says when work started. As for ChangeLead,
	// rollup rows with a zero cycle time are not Known either.
	Cycle time.Duration
	Known bool
}

// IssueCycles returns, for every issue first deployed in sc's window (as
// ShippedIssues, without a bound), its cycle time, oldest first.
func (s *Store) IssueCycles(ctx context.Context, t *tenant.Tenant, sc ReleaseScope) ([]IssueCycle, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: issue cycles: %w", err)
	}
	sc, err := sc.check()
	if err != nil {
		return nil, fmt.Errorf("store: issue cycles: %w", err)
	}
	if plan, ok := s.usesDays(ctx, sc); ok {
		var out rowChunks[IssueCycle]
		err := s.readDays(ctx, t, sc, plan, "cycle", "issue_first_deployments", cycleDayValue, "issue_key",
			func(at time.Time, v int64) {
				out.add(IssueCycle{DeployedAt: at, Cycle: time.Duration(v) * time.Microsecond, Known: v != 0})
			})
		if err != nil {
			return nil, fmt.Errorf("store: issue cycles: %w", err)
		}
		return joinChunks(&out), nil
	}
	where, args := s.factWhere(t, sc, "issue_key")
	// The start is the copy the fact row keeps (migration 00011), so a
	// busy quarter is one index-only range scan of
	// issue_first_deployments_cycle_idx, not a probe into jira_issues per
	// issue. SQLite may read it back as text, which anyTime parses.
	q := `SELECT f.issue_key, f.deployed_at, f.issue_started_at
		FROM issue_first_deployments f
		WHERE ` + where
	type row struct {
		key                 string
		deployed, startedAt time.Time
	}
	var (
		rows     []row
		seen     = map[string]int{}
		c        row
		deployed time.Time
		started  anyTime
		dest     = []any{&c.key, &deployed, &started} // reused for every row, as in ReleaseDeployments
	)
	var raw rawRows
	err = s.eachRow(ctx, q, args, func(r rowScanner) error {
		if v := raw.values(r, oidText, oidTimestamptz, oidTimestamptz); v != nil {
			if v[0] == nil {
				return fmt.Errorf("issue key: %w", errRawNull)
			}
			at, ok, err := rawTime(v[1])
			if err != nil || !ok {
				return fmt.Errorf("deployed at: %w", cmp.Or(err, errRawNull))
			}
			startedAt, _, err := rawTime(v[2])
			if err != nil {
				return fmt.Errorf("started at: %w", err)
			}
			c.deployed, c.startedAt = at, startedAt
			if len(sc.Types) > 1 { // the key is needed only to keep an issue's earliest row
				c.key = string(v[0])
			}
		} else {
			if err := r.Scan(dest...); err != nil {
				return err
			}
			c.deployed, c.startedAt = fromDB(deployed), started.Time
		}
		if len(sc.Types) == 1 {
			rows = appendRow(rows, c) // the primary key makes it the issue's only row
			return nil
		}
		if i, ok := seen[c.key]; ok {
			if c.deployed.Before(rows[i].deployed) {
				rows[i] = c
			}
			return nil
		}
		seen[c.key] = len(rows)
		rows = appendRow(rows, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: issue cycles: %w", err)
	}
	out := make([]IssueCycle, len(rows))
	for i, r := range rows {
		out[i].DeployedAt = r.deployed
		if !r.startedAt.IsZero() {
			out[i].Cycle, out[i].Known = r.deployed.Sub(r.startedAt), true
		}
	}
	slices.SortFunc(out, func(a, b IssueCycle) int { return a.DeployedAt.Compare(b.DeployedAt) })
	return out, nil
}

// DeploymentsNumbered returns t's successful deployments numbered seq to
// the environment named environment (case-insensitive), of service when
// set: the ends of a "shipped between two deployments" range. Sequence
// numbers are per pipeline, so more than one may match.
func (s *Store) DeploymentsNumbered(ctx context.Context, t *tenant.Tenant, environment, service string, seq int64) ([]ReleaseDeployment, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: deployments numbered: %w", err)
	}
	q := `SELECT id, pipeline_name, sequence_number, service, COALESCE(NULLIF(environment_name, ''), environment_id),
			environment_type, state, finished_at, url, commit_count
		FROM deployments WHERE tenant_id = ? AND sequence_number = ? AND state = 'successful'
			AND finished_at IS NOT NULL AND lower(COALESCE(NULLIF(environment_name, ''), environment_id)) = ?`
	args := []any{t.ID, seq, strings.ToLower(strings.TrimSpace(environment))}
	if svc := strings.ToLower(strings.TrimSpace(service)); svc != "" {
		q += ` AND service = ?`
		args = append(args, svc)
	}
	rows, err := s.db.WithContext(ctx).Raw(q+` ORDER BY finished_at, id LIMIT 10`, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: deployments numbered: %w", err)
	}
	defer rows.Close()
	var out []ReleaseDeployment
	for rows.Next() {
		var (
			d          ReleaseDeployment
			typ, state string
			finished   sql.NullTime
		)
		if err := rows.Scan(&d.ID, &d.PipelineName, &d.Sequence, &d.Service, &d.Environment, &typ, &state,
			&finished, &d.URL, &d.CommitCount); err != nil {
			return nil, fmt.Errorf("store: deployments numbered: %w", err)
		}
		d.Type, d.State, d.FinishedAt = devops.EnvironmentType(typ), devops.DeploymentState(state), nullTime(finished)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: deployments numbered: %w", err)
	}
	return out, nil
}

// IssuesShipped returns, for each of keys (in order, invalid ones dropped),
// its first successful deployment to an environment of types (production
// when none; zero DeployedAt when it has none) and what Jira's webhooks
// told of it: the release notes of a fix version.
func (s *Store) IssuesShipped(ctx context.Context, t *tenant.Tenant, keys []string, types []devops.EnvironmentType) ([]ShippedIssue, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: issues shipped: %w", err)
	}
	sc, err := ReleaseScope{Types: types, From: time.Unix(0, 0), To: time.Unix(1, 0)}.check()
	if err != nil {
		return nil, fmt.Errorf("store: issues shipped: %w", err)
	}
	var valid []string
	for _, k := range keys {
		if devops.ValidIssueKey(k) && !slices.Contains(valid, k) {
			valid = append(valid, k)
		}
	}
	if len(valid) > MaxShippedIssues {
		return nil, fmt.Errorf("store: issues shipped: at most %d keys", MaxShippedIssues)
	}
	if len(valid) == 0 {
		return nil, nil
	}
	byKey := map[string]*ShippedIssue{}
	out := make([]ShippedIssue, len(valid))
	for i, k := range valid {
		out[i] = ShippedIssue{Key: k}
		byKey[k] = &out[i]
	}
	args := append(append([]any{t.ID}, sc.typeArgs()...), anys(nil, valid)...)
	rows, err := s.db.WithContext(ctx).Raw(`SELECT issue_key, deployment_id, deployed_at, service, environment_name
		FROM issue_first_deployments WHERE tenant_id = ? AND environment_type IN (`+inList(len(sc.Types))+`)
			AND issue_key IN (`+inList(len(valid))+`)`, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: issues shipped: %w", err)
	}
	for rows.Next() {
		var (
			key, id, svc, env string
			at                sql.NullTime
		)
		if err := rows.Scan(&key, &id, &at, &svc, &env); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: issues shipped: %w", err)
		}
		si := byKey[key]
		if when := nullTime(at); si != nil && (si.DeployedAt.IsZero() || when.Before(si.DeployedAt)) {
			si.DeploymentID, si.DeployedAt, si.Service, si.Environment = id, when, svc, env
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: issues shipped: %w", err)
	}
	issues, err := liveJiraIssues(s.db.WithContext(ctx), t, valid)
	if err != nil {
		return nil, fmt.Errorf("store: issues shipped: %w", err)
	}
	for i := range out {
		out[i].Issue = issues[out[i].Key]
	}
	return out, nil
}
