package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

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
	if !d.Outcome.claims() {
		return fmt.Errorf("store: record event: outcome %q is not accepted or ignored", d.Outcome)
	}
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = s.now()
	}
	var id int64
	err := s.tx(ctx, func(tx *gorm.DB) error {
		w := &batchWriter{s: s, tx: tx, t: t, src: sourceID, now: normTime(d.ReceivedAt)}
		if d.Outcome == DeliveryAccepted && b != nil && s.dialect == DialectPostgres && codeOnly(b) {
			var err error
			id, err = w.writeCode(d, b)
			return err
		}
		var err error
		if id, err = s.insertDelivery(tx, t, sourceID, d); err != nil {
			return err
		}
		if d.Outcome != DeliveryAccepted || b == nil {
			return nil
		}
		return w.write(b)
	})
	if err != nil {
		return fmt.Errorf("store: record event: %w", err)
	}
	s.trimDeliveries(ctx, t, sourceID, id)
	return nil
}

// codeOnly reports whether a batch holds only code entities: repository,
// push, commits and branches, whose writes are all plain upserts that read
// nothing back. Pushes, by far the most frequent deliveries, are such
// batches.
func codeOnly(b *devops.Batch) bool {
	return len(b.PullRequests)+len(b.Builds)+len(b.Deployments)+len(b.Incidents) == 0
}

// writeCode records a code-only batch on PostgreSQL in one statement: the
// entity upserts run as data-modifying WITH clauses of the delivery insert,
// whose RETURNING also names the deployments of the pushed commits. One
// round trip instead of ten is what lets a 2-core server take thousands of
// pushes a second. A duplicate delivery inserts no log line; the whole
// transaction is then rolled back, entities included.
func (w *batchWriter) writeCode(d Delivery, b *devops.Batch) (int64, error) {
	w.deferring = true
	if err := w.write(b); err != nil {
		return 0, err
	}
	w.deferring = false
	args, err := w.s.deliveryArgs(w.t, w.src, d)
	if err != nil {
		return 0, err
	}
	var sb strings.Builder
	var all []any
	for i, st := range w.deferred {
		if i == 0 {
			sb.WriteString("WITH ")
		} else {
			sb.WriteString(",\n")
		}
		fmt.Fprintf(&sb, "w%d AS (%s)", i, st.q)
		all = append(all, st.args...)
	}
	sb.WriteString("\n")
	sb.WriteString(strings.TrimSuffix(insertDeliveryPostgres, "RETURNING id"))
	all = append(all, args...)
	shas := w.pushedSHAs
	sb.WriteString("RETURNING id, ''")
	if len(shas) > 0 {
		sb.WriteString(` || COALESCE((SELECT string_agg(id, ' ') FROM (SELECT id FROM deployments
			WHERE tenant_id = ? AND commit_sha IN (` + inList(len(shas)) + `) LIMIT ?) r), '')`)
		all = append(anys(append(all, w.t.ID), shas), maxRelinks)
	}
	var (
		id      int64
		relinks string
	)
	err = queryRow(w.tx, sb.String(), all...).Scan(&id, &relinks)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, w.s.notInserted(w.tx, w.t, w.src, d)
	}
	if err != nil {
		return 0, err
	}
	for _, dep := range strings.Fields(relinks) {
		if err := w.relinkDeployment(dep); err != nil {
			return 0, fmt.Errorf("relink deployments: %w", err)
		}
	}
	return id, nil
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

// statement is one SQL statement and its bind arguments.
type statement struct {
	q    string
	args []any
}

// exec runs a statement that reads nothing back, or defers it.
func (w *batchWriter) exec(q string, args ...any) error {
	if w.deferring {
		w.deferred = append(w.deferred, statement{q, args})
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
	if err := w.commits(b.Commits); err != nil {
		return fmt.Errorf("commits: %w", err)
	}
	if b.Push != nil {
		if err := w.push(*b.Push); err != nil {
			return fmt.Errorf("push: %w", err)
		}
	}
	for _, br := range b.Branches {
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
	if len(rows) == 0 {
		return nil
	}
	width := len(rows[0])
	per := max(1, maxBindArgs/width)
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		var sb strings.Builder
		sb.WriteString(head)
		sb.WriteString(" VALUES ")
		args := make([]any, 0, len(chunk)*width)
		for i, r := range chunk {
			if len(r) != width {
				return errors.New("insert rows: rows of different widths")
			}
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(tuple)
			args = append(args, r...)
		}
		sb.WriteString(" ")
		sb.WriteString(tail)
		if err := w.exec(sb.String(), args...); err != nil {
			return err
		}
	}
	return nil
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
