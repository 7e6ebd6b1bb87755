package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/tenant"
)

// Entity types, as issue_links names them.
const (
	EntityCommit      = "commit"
	EntityBranch      = "branch"
	EntityPullRequest = "pullrequest"
	EntityBuild       = "build"
	EntityDeployment  = "deployment"
	EntityIncident    = "incident"
)

// RecordEvent records one verified delivery of t's live source sourceID: its
// delivery-log line d and, for an accepted delivery, the entities b carries
// with their issue links. Both are written in one transaction, so when
// RecordEvent returns nil everything is committed, and when it returns an
// error nothing is (the sender should retry).
//
// d.Outcome must be DeliveryAccepted or DeliveryIgnored (b is then ignored):
// both claim d.DeliveryID, and a delivery whose id was already claimed
// writes nothing and returns ErrDuplicate. A missing or deleted source gives
// ErrNotFound.
//
// Entities never move backwards: each state change goes through
// devops.Advance, so a late or repeated event leaves a newer one in place.
func (s *Store) RecordEvent(ctx context.Context, t *tenant.Tenant, sourceID string, d Delivery, b *devops.Batch) error {
	if err := checkTenant(t); err != nil {
		return fmt.Errorf("store: record event: %w", err)
	}
	if d.Outcome == DeliveryAccepted && b != nil {
		defer s.changed(t.ID)
	}
	if !d.Outcome.claims() {
		return fmt.Errorf("store: record event: outcome %q is not accepted or ignored", d.Outcome)
	}
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = s.now()
	}
	if d.Outcome == DeliveryAccepted && b != nil && s.dialect == DialectPostgres && codeOnly(b) {
		id, err := s.writeCodeAtOnce(ctx, t, sourceID, d, b)
		if err == nil {
			s.trimDeliveries(ctx, t, sourceID, id)
			return nil
		}
		if !errors.Is(err, errNeedsTransaction) {
			return fmt.Errorf("store: record event: %w", err)
		}
	}
	id, err := s.recordInTransaction(ctx, t, sourceID, d, b)
	if err != nil {
		return fmt.Errorf("store: record event: %w", err)
	}
	s.trimDeliveries(ctx, t, sourceID, id)
	return nil
}

// recordInTransaction is RecordEvent's general path: the delivery line and
// the batch's writes, one statement at a time in a transaction. It returns
// the delivery line's id.
func (s *Store) recordInTransaction(ctx context.Context, t *tenant.Tenant, sourceID string, d Delivery, b *devops.Batch) (int64, error) {
	var id int64
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var err error
		if id, err = s.insertDelivery(tx, t, sourceID, d); err != nil {
			return err
		}
		if d.Outcome != DeliveryAccepted || b == nil {
			return nil
		}
		w := &batchWriter{s: s, tx: tx, t: t, src: sourceID, now: normTime(d.ReceivedAt)}
		return w.write(b)
	})
	return id, err
}

// codeOnly reports whether a batch holds only code entities: repository,
// push, commits and branches, whose writes are all plain upserts that read
// nothing back. Pushes, by far the most frequent deliveries, are such
// batches.
func codeOnly(b *devops.Batch) bool {
	return len(b.PullRequests)+len(b.Builds)+len(b.Deployments)+len(b.Incidents) == 0
}

// errNeedsTransaction says a code-only batch touches commits of known
// deployments, which must be re-linked in the same transaction.
var errNeedsTransaction = errors.New("batch needs a transaction")

// sqlStateAbort is the SQLSTATE raised by keyline_abort (migration 00007).
const sqlStateAbort = "KL001"

// writeCodeAtOnce records a code-only batch on PostgreSQL in one statement
// that commits on its own: the entity upserts are data-modifying WITH
// clauses of the delivery insert. One round trip instead of a dozen (and no
// BEGIN and COMMIT) is what lets a small server take thousands of pushes a
// second. The statement aborts itself, writing nothing, through
// keyline_abort when the delivery id was already claimed (ErrDuplicate) or
// when a pushed commit is the commit of a known deployment, whose range must
// then be recomputed in a transaction (errNeedsTransaction).
func (s *Store) writeCodeAtOnce(ctx context.Context, t *tenant.Tenant, sourceID string, d Delivery, b *devops.Batch) (int64, error) {
	w := &batchWriter{s: s, t: t, src: sourceID, now: normTime(d.ReceivedAt), deferring: true}
	if err := w.write(b); err != nil {
		return 0, err
	}
	dargs, err := s.deliveryArgs(t, sourceID, d)
	if err != nil {
		return 0, err
	}
	// The text is written with PostgreSQL's own placeholders, numbered as
	// it goes: rewriting a few hundred "?" is a measurable share of a
	// push's CPU in gorm.
	const relink = ` WHEN EXISTS (SELECT 1 FROM deployments WHERE tenant_id = ? AND commit_sha = ANY (?::text[]))
			THEN keyline_abort('relink')`
	size, nargs := len(insertDeliveryPostgres)+len(relink)+160, len(dargs)+2
	for _, st := range w.deferred {
		size += len(st.q) + len(st.name) + 16
		nargs += len(st.args)
	}
	var sb strings.Builder
	sb.Grow(size)
	args := make([]any, 0, nargs)
	n := 0
	sb.WriteString("WITH ")
	for i, st := range w.deferred {
		if st.name != "" {
			sb.WriteString(st.name)
		} else {
			sb.WriteByte('w')
			sb.WriteString(strconv.Itoa(i))
		}
		sb.WriteString(" AS (")
		n = writeNumbered(&sb, st.q, n)
		sb.WriteString("),\n")
		args = append(args, st.args...)
	}
	sb.WriteString("d AS (")
	n = writeNumbered(&sb, insertDeliveryPostgres, n)
	sb.WriteString(")\n")
	args = append(args, dargs...)
	sb.WriteString("SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM d) THEN keyline_abort('duplicate')")
	if shas := w.pushedSHAs; len(shas) > 0 {
		writeNumbered(&sb, relink, n)
		args = append(args, t.ID, shas)
	}
	sb.WriteString(" ELSE (SELECT id FROM d) END")
	var id int64
	err = s.queryRowPgx(ctx, sb.String(), args, &id)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == sqlStateAbort {
		if pgErr.Message == "relink" {
			return 0, errNeedsTransaction
		}
		return 0, s.notInserted(s.db.WithContext(ctx), t, sourceID, d)
	}
	return id, err
}

// dollarPlaceholders numbers the "?" placeholders of q as $1, $2, ...; q
// must hold no "?" other than placeholders.
func dollarPlaceholders(q string) string {
	var sb strings.Builder
	sb.Grow(len(q) + len(q)/8)
	writeNumbered(&sb, q, 0)
	return sb.String()
}

// writeNumbered writes q to sb with its "?" placeholders numbered from
// n+1, and returns the last number written.
func writeNumbered(sb *strings.Builder, q string, n int) int {
	var num [20]byte
	for {
		i := strings.IndexByte(q, '?')
		if i < 0 {
			sb.WriteString(q)
			return n
		}
		n++
		sb.WriteString(q[:i])
		sb.WriteByte('$')
		sb.Write(strconv.AppendInt(num[:0], int64(n), 10))
		q = q[i+1:]
	}
}

// batchWriter writes one delivery's entities inside its transaction.
type batchWriter struct {
	s   *Store
	tx  *gorm.DB
	t   *tenant.Tenant
	src string
	now time.Time // when the delivery arrived: the time of facts with none of their own

	// deferring collects plain upserts into deferred instead of running
	// them, for writeCode; pushedSHAs are the commits the batch carried.
	deferring  bool
	deferred   []statement
	pushedSHAs []string
}

// statement is one SQL statement and its bind arguments; name, when set,
// is the WITH clause name later deferred statements refer to it by.
type statement struct {
	q    string
	args []any
	name string
}

// exec runs a statement that reads nothing back, or defers it.
func (w *batchWriter) exec(q string, args ...any) error {
	if w.deferring {
		w.deferred = append(w.deferred, statement{q: q, args: args})
		return nil
	}
	return w.tx.Exec(q, args...).Error
}

func (w *batchWriter) write(b *devops.Batch) error {
	if b.Repository != nil {
		if err := w.repository(*b.Repository); err != nil {
			return fmt.Errorf("repository: %w", err)
		}
	}
	var pushed string
	if b.Push != nil {
		pushed, _ = devops.BranchOfRef(b.Push.Ref)
	}
	if err := w.commits(b.Commits, pushParents(b.Push), cleanText(pushed, maxRefLen)); err != nil {
		return fmt.Errorf("commits: %w", err)
	}
	if b.Push != nil {
		p := *b.Push
		if p.PushedAt.IsZero() {
			// The newest commit's time keeps the key the same on redelivery.
			for _, c := range b.Commits {
				p.PushedAt = laterOf(p.PushedAt, c.AuthoredAt)
			}
		}
		if err := w.push(p); err != nil {
			return fmt.Errorf("push: %w", err)
		}
	}
	// The pushed branch's first commit time only ever moves earlier.
	var earliest time.Time
	if b.Push != nil {
		for _, c := range b.Commits {
			earliest = earlierOf(earliest, c.AuthoredAt)
		}
	}
	for _, br := range b.Branches {
		if pushed != "" && br.Name == pushed && br.RepositoryID == b.Push.RepositoryID {
			br.FirstCommitAt = earlierOf(br.FirstCommitAt, earliest)
		}
		if err := w.branch(br); err != nil {
			return fmt.Errorf("branch: %w", err)
		}
	}
	for _, pr := range b.PullRequests {
		if err := w.pullRequest(pr); err != nil {
			return fmt.Errorf("pull request: %w", err)
		}
	}
	for _, bd := range b.Builds {
		if err := w.build(bd); err != nil {
			return fmt.Errorf("build: %w", err)
		}
	}
	if err := w.lockDeploymentLines(b.Deployments); err != nil {
		return err
	}
	for _, d := range b.Deployments {
		if err := w.deployment(d); err != nil {
			return fmt.Errorf("deployment: %w", err)
		}
	}
	for _, in := range b.Incidents {
		if err := w.incident(in); err != nil {
			return fmt.Errorf("incident: %w", err)
		}
	}
	if len(b.Commits) > 0 {
		// Commits that arrive after the deployment that shipped them (the
		// push webhook is often slower than the deploy job) complete its range.
		shas := make([]string, 0, len(b.Commits))
		for _, c := range b.Commits {
			if sha := cleanSHA(c.SHA); sha != "" {
				shas = append(shas, sha)
			}
		}
		if w.deferring {
			w.pushedSHAs = shas
			return nil
		}
		if err := w.relinkDeploymentsOf(shas); err != nil {
			return fmt.Errorf("relink deployments: %w", err)
		}
	}
	return nil
}

// forUpdate locks the row a read-modify-write reads, on PostgreSQL. SQLite
// has no row locks and needs none: its transactions take the write lock at
// BEGIN (see the DSN), so they never interleave.
func (w *batchWriter) forUpdate() string {
	if w.s.dialect == DialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// insertIfAbsent runs an INSERT ... ON CONFLICT DO NOTHING and reports
// whether it inserted. When it did not, the caller reads the existing row
// with forUpdate and merges: on PostgreSQL the INSERT waited for any
// concurrent writer of the same row, so the read sees its result.
func (w *batchWriter) insertIfAbsent(q string, args ...any) (bool, error) {
	res := w.tx.Exec(q, args...)
	if res.Error != nil {
		return false, res.Error
	}
	return res.RowsAffected > 0, nil
}

// maxBindArgs keeps multi-row statements under both engines' limits on bind
// parameters (SQLite's is 32766, PostgreSQL's 65535).
const maxBindArgs = 30000

// insertRows runs "head VALUES (...), (...) tail" for rows, each of the same
// width, in as few statements as the bind limit allows.
func (w *batchWriter) insertRows(head, tail string, rows [][]any) error {
	stmts, err := valuesStatements(head, tail, rows)
	if err != nil {
		return err
	}
	for _, st := range stmts {
		if err := w.exec(st.q, st.args...); err != nil {
			return err
		}
	}
	return nil
}

// valuesStatements builds "head VALUES (...), (...) tail" for rows, split
// so that no statement exceeds maxBindArgs.
func valuesStatements(head, tail string, rows [][]any) ([]statement, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	width := len(rows[0])
	per := max(1, maxBindArgs/width)
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	var out []statement
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		var sb strings.Builder
		sb.WriteString(head)
		sb.WriteString(" VALUES ")
		args := make([]any, 0, len(chunk)*width)
		for i, r := range chunk {
			if len(r) != width {
				return nil, errors.New("insert rows: rows of different widths")
			}
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(tuple)
			args = append(args, r...)
		}
		sb.WriteString(" ")
		sb.WriteString(tail)
		out = append(out, statement{q: sb.String(), args: args})
	}
	return out, nil
}

// chunks splits a list for IN (...) clauses.
func chunks(list []string, n int) [][]string {
	var out [][]string
	for len(list) > n {
		out = append(out, list[:n])
		list = list[n:]
	}
	if len(list) > 0 {
		out = append(out, list)
	}
	return out
}

// inList is "?, ?, ?" for n values.
func inList(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// anys converts strings to bind arguments.
func anys(prefix []any, list []string) []any {
	out := append(make([]any, 0, len(prefix)+len(list)), prefix...)
	for _, s := range list {
		out = append(out, s)
	}
	return out
}

// maxInList bounds the values of one IN (...) clause.
const maxInList = 500
