package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/tenant"
)

// DeploymentID is the id under which a source's deployment is stored and linked.
func DeploymentID(sourceID string, k devops.DeploymentKey) string {
	return entityID(sourceID, k.PipelineID, k.EnvironmentID, strconv.FormatInt(k.SequenceNumber, 10))
}

// Bounds on the commit range walk. A deployment's range is normally a few
// commits; the bounds stop a first deployment, or one whose predecessor is
// not an ancestor, from walking a whole history.
const (
	// MaxRangeCommits is the longest commit range recorded for one deployment.
	MaxRangeCommits = 1000
	// maxWalkRows bounds the rows the walk may produce: a commit reached by
	// several paths is produced once per path length.
	maxWalkRows = 5 * MaxRangeCommits
	// maxRelinks bounds the deployments one delivery re-links.
	maxRelinks = 20
)

// DeploymentRecord is a stored deployment with what the store derived for it.
type DeploymentRecord struct {
	devops.Deployment
	ID       string
	SourceID string
	// CommitCount is the number of commits the deployment brought to its
	// environment; CommitsComplete says whether that range is known to be
	// whole (see MaxRangeCommits and truncated pushes).
	CommitCount     int
	CommitsComplete bool
}

const deploymentColumns = `pipeline_id, pipeline_name, environment_id, environment_name, environment_type,
	environment_basis, environment_url, sequence_number, state, repository_id, commit_sha, ref, service, url,
	issue_keys, started_at, finished_at, updated_at`

func scanDeployment(r rowScanner, extra ...any) (*devops.Deployment, error) {
	var (
		d                           devops.Deployment
		envType, basis, state, keys string
		started, finished, updated  sql.NullTime
	)
	dest := append([]any{&d.PipelineID, &d.PipelineName, &d.EnvironmentID, &d.EnvironmentName, &envType, &basis,
		&d.EnvironmentURL, &d.SequenceNumber, &state, &d.RepositoryID, &d.CommitSHA, &d.Ref, &d.Service, &d.URL,
		&keys, &started, &finished, &updated}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	d.EnvironmentType, d.EnvironmentBasis = devops.EnvironmentType(envType), devops.Basis(basis)
	d.State = devops.DeploymentState(state)
	d.IssueKeys = textKeys(keys)
	d.StartedAt, d.FinishedAt, d.UpdatedAt = nullTime(started), nullTime(finished), nullTime(updated)
	return &d, nil
}

func cleanDeployment(d devops.Deployment) devops.Deployment {
	d.PipelineID = cleanText(d.PipelineID, maxIDLen)
	d.PipelineName = cleanText(d.PipelineName, maxNameLen)
	d.EnvironmentID = cleanText(d.EnvironmentID, maxIDLen)
	d.EnvironmentName = cleanText(d.EnvironmentName, maxNameLen)
	if !d.EnvironmentType.Valid() {
		d.EnvironmentType, d.EnvironmentBasis = devops.EnvironmentUnmapped, ""
	}
	d.EnvironmentBasis = devops.Basis(cleanText(string(d.EnvironmentBasis), maxIDLen))
	d.EnvironmentURL = cleanURL(d.EnvironmentURL)
	d.RepositoryID = cleanText(d.RepositoryID, maxIDLen)
	d.CommitSHA = cleanSHA(d.CommitSHA)
	d.Ref = cleanText(d.Ref, maxRefLen)
	d.Service = strings.ToLower(cleanText(d.Service, maxNameLen))
	d.URL = cleanURL(d.URL)
	d.IssueKeys = cleanKeys(d.IssueKeys)
	return d
}

// mergeDeployment combines the stored deployment with a newly delivered
// version: the newer event decides; blanks in it keep what was known;
// explicit issue keys accumulate.
func mergeDeployment(cur, next devops.Deployment) devops.Deployment {
	out := cur
	if devops.Advance(cur.State, cur.UpdatedAt, next.State, next.UpdatedAt) {
		out = next
		out.PipelineName = firstSet(next.PipelineName, cur.PipelineName)
		out.EnvironmentName = firstSet(next.EnvironmentName, cur.EnvironmentName)
		out.EnvironmentURL = firstSet(next.EnvironmentURL, cur.EnvironmentURL)
		out.RepositoryID = firstSet(next.RepositoryID, cur.RepositoryID)
		out.CommitSHA = firstSet(next.CommitSHA, cur.CommitSHA)
		out.Ref = firstSet(next.Ref, cur.Ref)
		out.Service = firstSet(next.Service, cur.Service)
		out.URL = firstSet(next.URL, cur.URL)
		if !next.State.Final() {
			out.FinishedAt = cur.FinishedAt
		}
	}
	out.StartedAt = earlierOf(cur.StartedAt, next.StartedAt)
	out.UpdatedAt = laterOf(cur.UpdatedAt, next.UpdatedAt)
	out.IssueKeys = cleanKeys(cur.IssueKeys, next.IssueKeys)
	return out
}

// lockDeploymentLines serialises, on PostgreSQL, the transactions that
// write deployments of one pipeline to one environment: each re-links the
// line's later deployments, so two at once re-linked each other's rows
// and deadlocked (TestReleaseDaysConcurrentWriters). A batch's lines are
// locked before any of its deployments is written, in the order of their
// lock keys, so batches naming several lines cannot deadlock on the locks
// either. The locks end with the transaction. SQLite's writers already
// run one at a time.
func (w *batchWriter) lockDeploymentLines(ds []devops.Deployment) error {
	if w.s.dialect != DialectPostgres || len(ds) == 0 {
		return nil
	}
	keys := make([]int64, 0, len(ds))
	for _, d := range ds {
		d = cleanDeployment(d)
		h := fnv.New64a()
		fmt.Fprintf(h, "%d\x00%s\x00%s\x00%s", w.t.ID, w.src, d.PipelineID, d.EnvironmentID)
		keys = append(keys, int64(h.Sum64()))
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if err := w.tx.Exec(`SELECT pg_advisory_xact_lock(?)`, k).Error; err != nil {
			return fmt.Errorf("lock deployment line: %w", err)
		}
	}
	return nil
}

func (w *batchWriter) deployment(in devops.Deployment) error {
	next := cleanDeployment(in)
	if next.PipelineID == "" || next.EnvironmentID == "" || !next.State.Valid() {
		return errors.New("deployment pipeline id, environment id and a valid state are required")
	}
	if next.UpdatedAt.IsZero() {
		next.UpdatedAt = w.now
	}
	if next.State.Final() && next.FinishedAt.IsZero() {
		next.FinishedAt = next.UpdatedAt
	}
	if next.CommitSHA != "" && len(next.CommitSHA) < 40 {
		full, err := w.resolveSHA(next.CommitSHA)
		if err != nil {
			return err
		}
		next.CommitSHA = full
	}
	if next.Service == "" && next.RepositoryID != "" {
		// Code hosts' deployments name no service; the repository's short
		// name is what incident tools usually call it.
		var name string
		err := queryRow(w.tx, `SELECT name FROM repositories WHERE tenant_id = ? AND source_id = ? AND id = ?`,
			w.t.ID, w.src, next.RepositoryID).Scan(&name)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		next.Service = strings.ToLower(path.Base(name))
		if next.Service == "." || next.Service == "/" {
			next.Service = ""
		}
	}
	id := DeploymentID(w.src, next.Key())
	inserted, err := w.insertIfAbsent(`INSERT INTO deployments (tenant_id, id, source_id, `+deploymentColumns+`,
			commit_count, commits_complete)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)
		ON CONFLICT (tenant_id, id) DO NOTHING`, append(w.deploymentArgs(id, next), false)...)
	if err != nil {
		return err
	}
	d := next
	if !inserted {
		cur, err := scanDeployment(queryRow(w.tx, `SELECT `+deploymentColumns+` FROM deployments
			WHERE tenant_id = ? AND id = ?`+w.forUpdate(), w.t.ID, id))
		if err != nil {
			return err
		}
		d = mergeDeployment(*cur, next)
		err = w.tx.Exec(`UPDATE deployments SET (`+deploymentColumns+`) =
			(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			WHERE tenant_id = ? AND id = ?`, append(w.deploymentArgs(id, d)[3:], w.t.ID, id)...).Error
		if err != nil {
			return err
		}
	}
	if err := w.relinkDeployment(id); err != nil {
		return err
	}
	if d.State != devops.DeploymentSuccessful {
		return nil
	}
	// A deployment that succeeds closes the ranges of later ones to the same
	// environment that arrived first: each later deployment up to the next
	// successful one walked past this one's commits.
	var later []struct {
		ID    string
		State string
	}
	err = w.tx.Raw(`SELECT id, state FROM deployments
		WHERE tenant_id = ? AND source_id = ? AND pipeline_id = ? AND environment_id = ? AND sequence_number > ?
		ORDER BY sequence_number LIMIT ?`,
		w.t.ID, w.src, d.PipelineID, d.EnvironmentID, d.SequenceNumber, maxRelinks).Scan(&later).Error
	if err != nil {
		return err
	}
	for _, l := range later {
		if err := w.relinkDeployment(l.ID); err != nil {
			return err
		}
		if l.State == string(devops.DeploymentSuccessful) {
			break
		}
	}
	return nil
}

func (w *batchWriter) deploymentArgs(id string, d devops.Deployment) []any {
	return []any{w.t.ID, id, w.src, d.PipelineID, d.PipelineName, d.EnvironmentID, d.EnvironmentName,
		string(d.EnvironmentType), string(d.EnvironmentBasis), d.EnvironmentURL, d.SequenceNumber, string(d.State),
		d.RepositoryID, d.CommitSHA, d.Ref, d.Service, d.URL, keysText(d.IssueKeys),
		w.s.optTime(d.StartedAt), w.s.optTime(d.FinishedAt), w.s.optTime(d.UpdatedAt)}
}

// resolveSHA expands an abbreviated hash to the one known commit it names,
// or returns it unchanged when none or several match.
func (w *batchWriter) resolveSHA(short string) (string, error) {
	var shas []string
	err := w.tx.Raw(`SELECT sha FROM commits WHERE tenant_id = ? AND substr(sha, 1, ?) = ? LIMIT 2`,
		w.t.ID, len(short), short).Scan(&shas).Error
	if err != nil {
		return "", err
	}
	if len(shas) == 1 {
		return shas[0], nil
	}
	return short, nil
}

// deployedBefore is true for a commit already brought to the deployment's
// environment by an earlier successful deployment of the same pipeline. %s
// is the commit column; the binds are deployedBeforeArgs.
const deployedBefore = `EXISTS (SELECT 1 FROM deployment_commits dc JOIN deployments pd
		ON pd.tenant_id = dc.tenant_id AND pd.id = dc.deployment_id
	WHERE dc.tenant_id = ? AND dc.sha = %s AND pd.source_id = ? AND pd.pipeline_id = ?
		AND pd.environment_id = ? AND pd.state = 'successful' AND pd.sequence_number < ?)`

// walkSQL walks back from a deployment's commit through the recorded commit
// order, stopping at commits the environment already had. Each row is a
// commit reached, at what depth, whether the edge into it crossed a gap, and
// whether the walk stopped there.
var walkSQL = `WITH RECURSIVE walk(sha, depth, gap, stopped) AS (
	SELECT CAST(? AS TEXT), 0, FALSE, ` + fmt.Sprintf(deployedBefore, "?") + `
	UNION
	SELECT p.parent_sha, w.depth + 1, p.gap, ` + fmt.Sprintf(deployedBefore, "p.parent_sha") + `
	FROM walk w JOIN (
		SELECT tenant_id, sha, parent_sha, parent_gap AS gap FROM commits WHERE parent_sha <> ''
		UNION ALL
		SELECT tenant_id, sha, parent_sha, gap FROM commit_parents
	) p ON p.tenant_id = ? AND p.sha = w.sha
	WHERE NOT w.stopped AND w.depth < ?
)
SELECT sha, depth, gap, stopped FROM walk LIMIT ?`

// relinkDeployment recomputes a deployment's commit range and issue links:
// the commits between the previous successful deployment of its pipeline to
// its environment and its own commit, found by walking the commit order
// pushes recorded; the issues of those commits and of pull requests merged
// by them; and the keys it named itself.
func (w *batchWriter) relinkDeployment(id string) error {
	var d struct {
		SourceID, PipelineID, EnvironmentID, CommitSHA, IssueKeys string
		SequenceNumber                                            int64
	}
	err := queryRow(w.tx, `SELECT source_id, pipeline_id, environment_id, commit_sha, issue_keys, sequence_number
		FROM deployments WHERE tenant_id = ? AND id = ?`, w.t.ID, id,
	).Scan(&d.SourceID, &d.PipelineID, &d.EnvironmentID, &d.CommitSHA, &d.IssueKeys, &d.SequenceNumber)
	if err != nil {
		return err
	}
	var shas []string
	complete := d.CommitSHA != ""
	if d.CommitSHA != "" {
		env := []any{w.t.ID, d.SourceID, d.PipelineID, d.EnvironmentID, d.SequenceNumber}
		args := append([]any{d.CommitSHA, w.t.ID, d.CommitSHA}, env[1:]...)
		args = append(append(args, env...), w.t.ID, MaxRangeCommits, maxWalkRows)
		rows, err := w.tx.Raw(walkSQL, args...).Rows()
		if err != nil {
			return fmt.Errorf("walk commits: %w", err)
		}
		seen := map[string]bool{}
		var n int
		var gap, stopped, bounded bool
		for rows.Next() {
			var (
				sha          string
				depth        int
				isGap, isEnd bool
			)
			if err := rows.Scan(&sha, &depth, &isGap, &isEnd); err != nil {
				rows.Close()
				return fmt.Errorf("walk commits: %w", err)
			}
			n++
			gap = gap || isGap
			stopped = stopped || isEnd
			if !isEnd && !seen[sha] {
				seen[sha] = true
				shas = append(shas, sha)
				bounded = bounded || depth >= MaxRangeCommits
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("walk commits: %w", err)
		}
		if n >= maxWalkRows || len(shas) > MaxRangeCommits {
			bounded = true
			shas = shas[:min(len(shas), MaxRangeCommits)]
		}
		// Without an earlier successful deployment there is nothing to stop
		// at: the range is all known history, which is whole if nothing
		// bounded it. With one, the walk must have reached what it shipped.
		// Whether one exists, not how many: counting read every earlier
		// success of a long-lived pipeline on each delivery.
		var earlier bool
		err = queryRow(w.tx, `SELECT EXISTS (SELECT 1 FROM deployments
			WHERE tenant_id = ? AND source_id = ? AND pipeline_id = ? AND environment_id = ?
				AND state = 'successful' AND sequence_number < ?)`, env...).Scan(&earlier)
		if err != nil {
			return err
		}
		complete = !gap && !bounded && (stopped || !earlier)
	}
	if err := w.tx.Exec(`DELETE FROM deployment_commits WHERE tenant_id = ? AND deployment_id = ?`, w.t.ID, id).Error; err != nil {
		return err
	}
	rows := make([][]any, 0, len(shas))
	for _, sha := range shas {
		rows = append(rows, []any{w.t.ID, id, sha})
	}
	err = w.insertRows(`INSERT INTO deployment_commits (tenant_id, deployment_id, sha)`,
		`ON CONFLICT (tenant_id, deployment_id, sha) DO NOTHING`, rows)
	if err != nil {
		return err
	}
	commitKeys, err := w.commitKeys(shas)
	if err != nil {
		return err
	}
	prKeys, err := w.keysWhere(`SELECT issue_keys FROM pull_requests
		WHERE tenant_id = ? AND state = 'MERGED' AND issue_keys <> '' AND merge_commit_sha IN (%s)`, shas)
	if err != nil {
		return err
	}
	keys := cleanKeys(textKeys(d.IssueKeys), commitKeys, prKeys)
	if err := w.setLinks(EntityDeployment, id, keys); err != nil {
		return err
	}
	if err := w.recordFirstDeployments(id, shas, keys); err != nil {
		return fmt.Errorf("release facts: %w", err)
	}
	return w.tx.Exec(`UPDATE deployments SET commit_count = ?, commits_complete = ?, linked_projects = ?
		WHERE tenant_id = ? AND id = ?`,
		len(shas), complete, strings.Join(projectsOf(keys), " "), w.t.ID, id).Error
}

// relinkDeploymentsOf re-links the deployments of any of shas.
func (w *batchWriter) relinkDeploymentsOf(shas []string) error {
	var ids []string
	for _, part := range chunks(shas, maxInList) {
		var found []string
		err := w.tx.Raw(`SELECT id FROM deployments WHERE tenant_id = ? AND commit_sha IN (`+inList(len(part))+`)
			LIMIT ?`, append(anys([]any{w.t.ID}, part), maxRelinks)...).Scan(&found).Error
		if err != nil {
			return err
		}
		ids = append(ids, found...)
	}
	for i, id := range ids {
		if i >= maxRelinks {
			break
		}
		if err := w.relinkDeployment(id); err != nil {
			return err
		}
	}
	return nil
}

// Deployment returns t's deployment id (see DeploymentID), or an error
// wrapping ErrNotFound.
func (s *Store) Deployment(ctx context.Context, t *tenant.Tenant, id string) (*DeploymentRecord, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: deployment: %w", err)
	}
	rec := DeploymentRecord{ID: id}
	d, err := scanDeployment(queryRow(s.db.WithContext(ctx), `SELECT `+deploymentColumns+`,
			source_id, commit_count, commits_complete
		FROM deployments WHERE tenant_id = ? AND id = ?`, t.ID, id),
		&rec.SourceID, &rec.CommitCount, &rec.CommitsComplete)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: deployment: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: deployment: %w", err)
	}
	rec.Deployment = *d
	return &rec, nil
}

// DeploymentCommits returns the commits t's deployment id brought to its
// environment, sorted by hash.
func (s *Store) DeploymentCommits(ctx context.Context, t *tenant.Tenant, id string) ([]string, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: deployment commits: %w", err)
	}
	var shas []string
	err := s.db.WithContext(ctx).Raw(`SELECT sha FROM deployment_commits
		WHERE tenant_id = ? AND deployment_id = ? ORDER BY sha`, t.ID, id).Scan(&shas).Error
	if err != nil {
		return nil, fmt.Errorf("store: deployment commits: %w", err)
	}
	return shas, nil
}
