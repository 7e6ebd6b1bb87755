package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/tenant"
)

// BuildID is the id under which a source's build is stored and linked.
func BuildID(sourceID, pipelineID string, number int64) string {
	return entityID(sourceID, pipelineID, strconv.FormatInt(number, 10))
}

const buildColumns = `pipeline_id, pipeline_name, build_number, state, repository_id, commit_sha, ref, url,
	tests_total, tests_passed, tests_failed, tests_skipped, issue_keys, started_at, finished_at, updated_at`

func scanBuild(r rowScanner) (*devops.Build, error) {
	var (
		b                              devops.Build
		state, keys                    string
		total, passed, failed, skipped sql.NullInt64
		started, finished, updated     sql.NullTime
	)
	err := r.Scan(&b.PipelineID, &b.PipelineName, &b.BuildNumber, &state, &b.RepositoryID, &b.CommitSHA, &b.Ref,
		&b.URL, &total, &passed, &failed, &skipped, &keys, &started, &finished, &updated)
	if err != nil {
		return nil, err
	}
	b.State = devops.BuildState(state)
	if total.Valid {
		b.Tests = &devops.TestSummary{Total: int(total.Int64), Passed: int(passed.Int64),
			Failed: int(failed.Int64), Skipped: int(skipped.Int64)}
	}
	b.IssueKeys = textKeys(keys)
	b.StartedAt, b.FinishedAt, b.UpdatedAt = nullTime(started), nullTime(finished), nullTime(updated)
	return &b, nil
}

func cleanBuild(b devops.Build) devops.Build {
	b.PipelineID = cleanText(b.PipelineID, maxIDLen)
	b.PipelineName = cleanText(b.PipelineName, maxNameLen)
	b.RepositoryID = cleanText(b.RepositoryID, maxIDLen)
	b.CommitSHA = cleanSHA(b.CommitSHA)
	b.Ref = cleanText(b.Ref, maxRefLen)
	b.URL = cleanURL(b.URL)
	b.IssueKeys = cleanKeys(b.IssueKeys)
	if t := b.Tests; t != nil && (t.Total < 0 || t.Passed < 0 || t.Failed < 0 || t.Skipped < 0) {
		b.Tests = nil
	}
	return b
}

// mergeBuild combines the stored build with a newly delivered version: the
// newer event decides; blanks in it keep what was known.
func mergeBuild(cur, next devops.Build) devops.Build {
	out := cur
	if devops.Advance(cur.State, cur.UpdatedAt, next.State, next.UpdatedAt) {
		out = next
		out.PipelineName = firstSet(next.PipelineName, cur.PipelineName)
		out.RepositoryID = firstSet(next.RepositoryID, cur.RepositoryID)
		out.CommitSHA = firstSet(next.CommitSHA, cur.CommitSHA)
		out.Ref = firstSet(next.Ref, cur.Ref)
		out.URL = firstSet(next.URL, cur.URL)
		if next.Tests == nil {
			out.Tests = cur.Tests
		}
		if !next.State.Final() {
			out.FinishedAt = cur.FinishedAt
		}
	}
	out.StartedAt = earlierOf(cur.StartedAt, next.StartedAt)
	out.UpdatedAt = laterOf(cur.UpdatedAt, next.UpdatedAt)
	out.IssueKeys = cleanKeys(cur.IssueKeys, next.IssueKeys)
	return out
}

func (w *batchWriter) build(in devops.Build) error {
	next := cleanBuild(in)
	if next.PipelineID == "" || !next.State.Valid() {
		return errors.New("build pipeline id and a valid state are required")
	}
	if next.UpdatedAt.IsZero() {
		next.UpdatedAt = w.now
	}
	if next.State.Final() && next.FinishedAt.IsZero() {
		next.FinishedAt = next.UpdatedAt
	}
	if next.CommitSHA != "" {
		// A build is about its commit, so it reaches the commit's issues.
		keys, err := w.commitKeys([]string{next.CommitSHA})
		if err != nil {
			return err
		}
		next.IssueKeys = cleanKeys(next.IssueKeys, keys)
	}
	id := BuildID(w.src, next.PipelineID, next.BuildNumber)
	inserted, err := w.insertIfAbsent(`INSERT INTO builds (tenant_id, id, source_id, `+buildColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, id) DO NOTHING`, w.buildArgs(id, next)...)
	if err != nil {
		return err
	}
	b := next
	if !inserted {
		cur, err := scanBuild(queryRow(w.tx, `SELECT `+buildColumns+` FROM builds
			WHERE tenant_id = ? AND id = ?`+w.forUpdate(), w.t.ID, id))
		if err != nil {
			return err
		}
		b = mergeBuild(*cur, next)
		err = w.tx.Exec(`UPDATE builds SET (`+buildColumns+`) =
			(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			WHERE tenant_id = ? AND id = ?`, append(w.buildArgs(id, b)[3:], w.t.ID, id)...).Error
		if err != nil {
			return err
		}
	}
	return w.setLinks(EntityBuild, id, b.IssueKeys)
}

func (w *batchWriter) buildArgs(id string, b devops.Build) []any {
	var total, passed, failed, skipped any
	if t := b.Tests; t != nil {
		total, passed, failed, skipped = t.Total, t.Passed, t.Failed, t.Skipped
	}
	return []any{w.t.ID, id, w.src, b.PipelineID, b.PipelineName, b.BuildNumber, string(b.State), b.RepositoryID,
		b.CommitSHA, b.Ref, b.URL, total, passed, failed, skipped, keysText(b.IssueKeys),
		w.s.optTime(b.StartedAt), w.s.optTime(b.FinishedAt), w.s.optTime(b.UpdatedAt)}
}

// commitKeys returns the issue keys of the known commits among shas.
func (w *batchWriter) commitKeys(shas []string) ([]string, error) {
	return w.keysWhere(`SELECT issue_keys FROM commits WHERE tenant_id = ? AND issue_keys <> '' AND sha IN (%s)`, shas)
}

// keysWhere runs a query of issue_keys columns over shas, in chunks, and
// returns the keys found.
func (w *batchWriter) keysWhere(q string, shas []string) ([]string, error) {
	var keys []string
	for _, part := range chunks(shas, maxInList) {
		var lists []string
		if err := w.tx.Raw(fmt.Sprintf(q, inList(len(part))), anys([]any{w.t.ID}, part)...).Scan(&lists).Error; err != nil {
			return nil, err
		}
		for _, l := range lists {
			keys = append(keys, textKeys(l)...)
		}
	}
	return keys, nil
}

// Build returns t's build id (see BuildID), or an error wrapping ErrNotFound.
func (s *Store) Build(ctx context.Context, t *tenant.Tenant, id string) (*devops.Build, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: build: %w", err)
	}
	b, err := scanBuild(queryRow(s.db.WithContext(ctx), `SELECT `+buildColumns+` FROM builds
		WHERE tenant_id = ? AND id = ?`, t.ID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: build: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: build: %w", err)
	}
	return b, nil
}
