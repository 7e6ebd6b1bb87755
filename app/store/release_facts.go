package store

import (
	"cmp"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/tenant"
)

// Change kinds, as change_first_deployments names them.
const (
	ChangePullRequest = "pullrequest"
	ChangeCommit      = "commit"
)

// factChange is one change a deployment brought: a merged pull request with
// the commits of its branch, or a commit that came without one.
type factChange struct {
	kind, id      string
	firstCommitAt time.Time // zero when unknown
	keys          []string
}

// recordFirstDeployments rewrites the release facts of deployment id (see
// migration 00008): for a successful deployment, each change in its commit
// range and each issue it is linked to is recorded as first deployed by it
// to its environment type, unless an earlier successful deployment to an
// environment of that type already holds the row. shas and keys are the
// range and the issue keys relinkDeployment just stored.
//
// Removing the deployment's old rows first keeps the facts in step when a
// range shrinks or a deployment stops being successful. A change whose row
// is removed that way and that a later deployment also shipped regains its
// row when that deployment is next re-linked.
func (w *batchWriter) recordFirstDeployments(id string, shas, keys []string) error {
	for _, q := range []string{
		`DELETE FROM change_first_deployments WHERE tenant_id = ? AND deployment_id = ?`,
		`DELETE FROM issue_first_deployments WHERE tenant_id = ? AND deployment_id = ?`,
	} {
		if err := w.tx.Exec(q, w.t.ID, id).Error; err != nil {
			return err
		}
	}
	var (
		state, envType, service, envName string
		finished                         sql.NullTime
	)
	err := queryRow(w.tx, `SELECT state, environment_type, service,
			COALESCE(NULLIF(environment_name, ''), environment_id), finished_at
		FROM deployments WHERE tenant_id = ? AND id = ?`, w.t.ID, id,
	).Scan(&state, &envType, &service, &envName, &finished)
	if err != nil {
		return err
	}
	if state != string(devops.DeploymentSuccessful) || !finished.Valid {
		return nil
	}
	at := fromDB(finished.Time)
	changes, err := w.changesOf(shas)
	if err != nil {
		return err
	}
	// In key order, as are the issue keys below: two deployments whose
	// ranges share changes (concurrent deliveries to one environment)
	// then take the rows' locks in the same order instead of deadlocking.
	slices.SortFunc(changes, func(a, b factChange) int {
		return cmp.Or(strings.Compare(a.kind, b.kind), strings.Compare(a.id, b.id))
	})
	rows := make([][]any, 0, len(changes))
	for _, c := range changes {
		var first, lead any
		if !c.firstCommitAt.IsZero() {
			first = w.s.ts(c.firstCommitAt)
			lead = int64(at.Sub(c.firstCommitAt) / time.Second)
		}
		rows = append(rows, []any{w.t.ID, envType, c.kind, c.id, id, service, envName, w.s.ts(at), first, lead,
			keysText(c.keys)})
	}
	err = w.insertRows(`INSERT INTO change_first_deployments (tenant_id, environment_type, change_kind, change_id,
			deployment_id, service, environment_name, deployed_at, first_commit_at, lead_seconds, issue_keys)`,
		`ON CONFLICT (tenant_id, environment_type, change_kind, change_id) DO UPDATE SET
			deployment_id = excluded.deployment_id, service = excluded.service,
			environment_name = excluded.environment_name, deployed_at = excluded.deployed_at,
			first_commit_at = excluded.first_commit_at, lead_seconds = excluded.lead_seconds,
			issue_keys = excluded.issue_keys
		WHERE excluded.deployed_at < change_first_deployments.deployed_at`, rows)
	if err != nil {
		return err
	}
	rows = rows[:0]
	keys = slices.Sorted(slices.Values(keys))
	for _, k := range keys {
		rows = append(rows, []any{w.t.ID, envType, k, id, service, envName, w.s.ts(at)})
	}
	err = w.insertRows(`INSERT INTO issue_first_deployments (tenant_id, environment_type, issue_key,
			deployment_id, service, environment_name, deployed_at)`,
		`ON CONFLICT (tenant_id, environment_type, issue_key) DO UPDATE SET
			deployment_id = excluded.deployment_id, service = excluded.service,
			environment_name = excluded.environment_name, deployed_at = excluded.deployed_at
		WHERE excluded.deployed_at < issue_first_deployments.deployed_at`, rows)
	if err != nil || len(keys) == 0 {
		return err
	}
	// A row this deployment now holds may be new: give it its issue's
	// start. Rows it did not win already carry theirs.
	return w.tx.Exec(`UPDATE issue_first_deployments SET issue_started_at = `+issueStartedSQL+`
		WHERE tenant_id = ? AND deployment_id = ?`, w.t.ID, id).Error
}

// issueStartedSQL is the start of work on an issue_first_deployments row's
// issue: the earliest recorded start of a live issue with its key (two live
// issues share a key only after a move whose webhook was missed).
const issueStartedSQL = `(SELECT MIN(j.started_at) FROM jira_issues j
	WHERE j.tenant_id = issue_first_deployments.tenant_id AND j.issue_key = issue_first_deployments.issue_key
		AND j.deleted_at IS NULL)`

// syncIssueStarts copies the start of work on each of keys ("" ignored)
// onto its issue_first_deployments rows, after an issue event may have
// changed it: a transition, a deletion, or a move to or from the key.
// Recomputing from jira_issues rather than applying the event keeps the
// copy right whatever order events arrive in.
func syncIssueStarts(tx *gorm.DB, t *tenant.Tenant, keys ...string) error {
	var valid []string
	for _, k := range keys {
		if k != "" && !slices.Contains(valid, k) {
			valid = append(valid, k)
		}
	}
	if len(valid) == 0 {
		return nil
	}
	// Every environment type is named so that the primary key (tenant,
	// type, key) finds the rows: without it PostgreSQL scanned all of a
	// site's facts for each issue event, 0.4 s for the seeded history.
	types := devops.EnvironmentTypes()
	args := make([]any, 0, 1+len(types)+len(valid))
	args = append(args, t.ID)
	for _, ty := range types {
		args = append(args, string(ty))
	}
	err := tx.Exec(`UPDATE issue_first_deployments SET issue_started_at = `+issueStartedSQL+`
		WHERE tenant_id = ? AND environment_type IN (`+inList(len(types))+`)
			AND issue_key IN (`+inList(len(valid))+`)`, anys(args, valid)...).Error
	if err != nil {
		return fmt.Errorf("sync issue starts: %w", err)
	}
	return nil
}

// changesOf groups a commit range into changes. A merged pull request whose
// merge commit is in the range is one change, and so is every commit of the
// range first pushed to that pull request's branch; its first commit is
// the earliest of those commits and of the branch's recorded first commit,
// so a squash merge, whose branch commits never reach the trunk, is still
// measured from where the work began. Every other commit is a change of its
// own.
func (w *batchWriter) changesOf(shas []string) ([]factChange, error) {
	if len(shas) == 0 {
		return nil, nil
	}
	type commitRow struct {
		repo, branch string
		authored     time.Time
		keys         []string
	}
	commits := map[string]commitRow{}
	for _, part := range chunks(shas, maxInList) {
		rows, err := w.tx.Raw(`SELECT sha, repository_id, branch, authored_at, issue_keys FROM commits
			WHERE tenant_id = ? AND sha IN (`+inList(len(part))+`)`, anys([]any{w.t.ID}, part)...).Rows()
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var sha, repo, branch, keys string
			var authored sql.NullTime
			if err := rows.Scan(&sha, &repo, &branch, &authored, &keys); err != nil {
				rows.Close()
				return nil, err
			}
			commits[sha] = commitRow{repo: repo, branch: branch, authored: nullTime(authored), keys: textKeys(keys)}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	type prRow struct {
		id, source, repo, branch, merge string
		created                         time.Time
		keys                            []string
	}
	var prs []prRow
	for _, part := range chunks(shas, maxInList) {
		rows, err := w.tx.Raw(`SELECT id, source_id, repository_id, source_branch, merge_commit_sha, created_at, issue_keys
			FROM pull_requests WHERE tenant_id = ? AND state = 'MERGED' AND merge_commit_sha IN (`+inList(len(part))+`)
			ORDER BY id`, anys([]any{w.t.ID}, part)...).Rows()
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var p prRow
			var created sql.NullTime
			var keys string
			if err := rows.Scan(&p.id, &p.source, &p.repo, &p.branch, &p.merge, &created, &keys); err != nil {
				rows.Close()
				return nil, err
			}
			p.created, p.keys = nullTime(created), textKeys(keys)
			prs = append(prs, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	merges := map[string]bool{}
	branchIDs := make([]string, 0, len(prs))
	for _, p := range prs {
		merges[p.merge] = true
		branchIDs = append(branchIDs, BranchID(p.source, p.repo, p.branch))
	}
	branchStart := map[string]time.Time{}
	if len(branchIDs) > 0 {
		rows, err := w.tx.Raw(`SELECT id, first_commit_at FROM branches
			WHERE tenant_id = ? AND first_commit_at IS NOT NULL AND id IN (`+inList(len(branchIDs))+`)`,
			anys([]any{w.t.ID}, branchIDs)...).Rows()
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var at sql.NullTime
			if err := rows.Scan(&id, &at); err != nil {
				rows.Close()
				return nil, err
			}
			branchStart[id] = nullTime(at)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	out := make([]factChange, 0, len(prs)+len(commits))
	folded := map[string]bool{}
	for i, p := range prs {
		c := factChange{kind: ChangePullRequest, id: p.id, firstCommitAt: branchStart[branchIDs[i]]}
		keys := [][]string{p.keys}
		for _, sha := range shas {
			cm, ok := commits[sha]
			if !ok || merges[sha] || folded[sha] || cm.branch == "" || cm.branch != p.branch || cm.repo != p.repo {
				continue
			}
			folded[sha] = true
			c.firstCommitAt = earlierOf(c.firstCommitAt, cm.authored)
			keys = append(keys, cm.keys)
		}
		merge := commits[p.merge]
		keys = append(keys, merge.keys)
		switch {
		case !c.firstCommitAt.IsZero():
		case !p.created.IsZero():
			c.firstCommitAt = p.created
		default:
			c.firstCommitAt = merge.authored
		}
		c.keys = cleanKeys(keys...)
		out = append(out, c)
	}
	for _, sha := range shas {
		cm, ok := commits[sha]
		if merges[sha] || folded[sha] {
			continue
		}
		c := factChange{kind: ChangeCommit, id: sha}
		if ok {
			c.firstCommitAt, c.keys = cm.authored, cm.keys
		}
		out = append(out, c)
	}
	return out, nil
}

// recordFirstDeploymentsOf rewrites the release facts of deployments ids,
// which shipped a pull request's merge commit: the pull request, reported
// after they were linked, turns its commits into one change.
func (w *batchWriter) recordFirstDeploymentsOf(ids []string) error {
	for _, id := range ids {
		var shas, keys []string
		if err := w.tx.Raw(`SELECT sha FROM deployment_commits WHERE tenant_id = ? AND deployment_id = ?`,
			w.t.ID, id).Scan(&shas).Error; err != nil {
			return err
		}
		if err := w.tx.Raw(`SELECT issue_key FROM issue_links WHERE tenant_id = ? AND entity_type = 'deployment'
			AND entity_id = ?`, w.t.ID, id).Scan(&keys).Error; err != nil {
			return err
		}
		if err := w.recordFirstDeployments(id, shas, keys); err != nil {
			return err
		}
	}
	return nil
}
