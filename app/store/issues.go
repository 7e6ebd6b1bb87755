package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/keyline/keyline/app/tenant"
)

// JiraIssue is a Jira issue as last reported by the issue webhooks.
type JiraIssue struct {
	IssueID        string // Jira's numeric id as a string; stable across moves
	IssueKey       string // e.g. "KL-12"; changes when the issue moves project
	ProjectKey     string
	Summary        string
	StatusName     string
	StatusCategory string    // "new", "indeterminate" or "done"
	IssueType      string    // "Bug", "Story", ...; '' when Jira did not say
	UpdatedAt      time.Time // Jira's "updated" time of this version
	// StartedAt is when the issue first entered category indeterminate or
	// done, whichever came first; zero when no recorded transition says.
	// Read-only: derived from the recorded transitions.
	StartedAt time.Time
	// DoneAt is when the issue last entered category done from another
	// category, zero while it is not done or no recorded transition says.
	// Read-only: derived from the recorded transitions.
	DoneAt time.Time
}

// The WHERE on DO UPDATE drops stale events: webhooks can arrive out of
// order, and an older version must not overwrite a newer one. A deleted issue
// stays deleted (Jira has no undelete), whatever arrives later.
const upsertJiraIssueSQL = `INSERT INTO jira_issues (tenant_id, issue_id, issue_key, project_key,
	summary, status_name, status_category, issue_type, updated_at, deleted_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
ON CONFLICT (tenant_id, issue_id) DO UPDATE SET
	issue_key = excluded.issue_key,
	project_key = excluded.project_key,
	summary = excluded.summary,
	status_name = excluded.status_name,
	status_category = excluded.status_category,
	issue_type = excluded.issue_type,
	updated_at = excluded.updated_at
WHERE jira_issues.deleted_at IS NULL AND jira_issues.updated_at <= excluded.updated_at`

// UpsertJiraIssue records the latest state of an issue of t. An event older
// than the stored version, or about a deleted issue, is ignored.
func (s *Store) UpsertJiraIssue(ctx context.Context, t *tenant.Tenant, is JiraIssue) error {
	if err := checkTenant(t); err != nil {
		return fmt.Errorf("store: upsert jira issue: %w", err)
	}
	if is.IssueID == "" || is.IssueKey == "" {
		return errors.New("store: upsert jira issue: issue id and key are required")
	}
	var touched []string // stays nil unless the write is known to have ended well
	defer func() { s.changedIssues(t.ID, touched) }()
	var prev string
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var err error
		prev, err = s.upsertJiraIssue(tx, t, is)
		if err != nil || !moved(prev, is.IssueKey) {
			return err
		}
		return syncIssueStarts(tx, t, prev, is.IssueKey)
	})
	if err != nil {
		return fmt.Errorf("store: upsert jira issue: %w", err)
	}
	touched = cleanKeys([]string{is.IssueKey, prev})
	return nil
}

// moved reports whether an issue event moved the issue from key prev to
// key: only then, or when its transitions changed, can the start of work
// its release facts copy change. A new issue has no start yet.
func moved(prev, key string) bool { return prev != "" && prev != key }

// upsertJiraIssue is UpsertJiraIssue inside the caller's transaction, less
// the release facts: it returns the key the issue had before ("" when it
// was new), so that the caller can bring the facts of both keys in step
// once all of its writes are done.
func (s *Store) upsertJiraIssue(tx *gorm.DB, t *tenant.Tenant, is JiraIssue) (string, error) {
	var prev string
	err := queryRow(tx, `SELECT issue_key FROM jira_issues WHERE tenant_id = ? AND issue_id = ?`,
		t.ID, is.IssueID).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	err = tx.Exec(upsertJiraIssueSQL,
		t.ID, is.IssueID, is.IssueKey, is.ProjectKey,
		is.Summary, is.StatusName, is.StatusCategory, is.IssueType, s.ts(is.UpdatedAt),
	).Error
	return prev, err
}

// DeleteJiraIssue marks an issue of t deleted at at and removes the links
// recorded under its key, unless another live issue of t now holds that key.
// Deleting an unknown or already deleted issue is not an error.
func (s *Store) DeleteJiraIssue(ctx context.Context, t *tenant.Tenant, issueID string, at time.Time) error {
	if err := checkTenant(t); err != nil {
		return fmt.Errorf("store: delete jira issue: %w", err)
	}
	var touched []string // stays nil unless the write is known to have ended well
	defer func() { s.changedIssues(t.ID, touched) }()
	var key string
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var err error
		key, err = s.deleteJiraIssue(tx, t, issueID, at)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete jira issue: %w", err)
	}
	touched = cleanKeys([]string{key})
	return nil
}

// deleteJiraIssue is DeleteJiraIssue inside the caller's transaction.
func (s *Store) deleteJiraIssue(tx *gorm.DB, t *tenant.Tenant, issueID string, at time.Time) (key string, err error) {
	err = queryRow(tx, `UPDATE jira_issues SET deleted_at = ?
		WHERE tenant_id = ? AND issue_id = ? AND deleted_at IS NULL
		RETURNING issue_key`,
		s.ts(at), t.ID, issueID).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var deployments []string
	err = tx.Raw(`SELECT entity_id FROM issue_links
		WHERE tenant_id = ? AND issue_key = ? AND entity_type = 'deployment'`, t.ID, key).Scan(&deployments).Error
	if err != nil {
		return "", err
	}
	err = tx.Exec(`DELETE FROM issue_links
		WHERE tenant_id = ? AND issue_key = ?
			AND NOT EXISTS (SELECT 1 FROM jira_issues
				WHERE tenant_id = ? AND issue_key = ? AND deleted_at IS NULL)`,
		t.ID, key, t.ID, key).Error
	if err != nil {
		return "", err
	}
	if err := syncLinkedProjects(tx, t, deployments); err != nil {
		return "", fmt.Errorf("linked projects: %w", err)
	}
	return key, syncIssueStarts(tx, t, key)
}

// JiraIssueByKey returns the live issue of t with the given key, or an error
// wrapping ErrNotFound. Should two live rows share a key (a move whose
// webhook was missed), the most recently updated wins.
func (s *Store) JiraIssueByKey(ctx context.Context, t *tenant.Tenant, key string) (*JiraIssue, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: jira issue by key: %w", err)
	}
	var (
		is            JiraIssue
		started, done sql.NullTime
	)
	err := queryRow(s.db.WithContext(ctx), `SELECT issue_id, issue_key, project_key, summary,
			status_name, status_category, issue_type, updated_at, started_at, done_at
		FROM jira_issues
		WHERE tenant_id = ? AND issue_key = ? AND deleted_at IS NULL
		ORDER BY updated_at DESC LIMIT 1`,
		t.ID, key,
	).Scan(&is.IssueID, &is.IssueKey, &is.ProjectKey, &is.Summary,
		&is.StatusName, &is.StatusCategory, &is.IssueType, &is.UpdatedAt, &started, &done)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: jira issue by key: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: jira issue by key: %w", err)
	}
	is.UpdatedAt = fromDB(is.UpdatedAt)
	if started.Valid {
		is.StartedAt = fromDB(started.Time)
	}
	if done.Valid {
		is.DoneAt = fromDB(done.Time)
	}
	return &is, nil
}

// liveJiraIssues returns the live issues of t with any of keys, by key.
// Rows are read oldest first, so that of two live rows sharing a key (a
// move whose webhook was missed) the most recently updated wins, as in
// JiraIssueByKey.
func liveJiraIssues(db *gorm.DB, t *tenant.Tenant, keys []string) (map[string]*JiraIssue, error) {
	out := map[string]*JiraIssue{}
	for _, part := range chunks(keys, maxInList) {
		rows, err := db.Raw(`SELECT issue_id, issue_key, project_key, summary, status_name, status_category,
				issue_type, updated_at, started_at, done_at
			FROM jira_issues
			WHERE tenant_id = ? AND issue_key IN (`+inList(len(part))+`) AND deleted_at IS NULL
			ORDER BY updated_at, issue_id`, anys([]any{t.ID}, part)...).Rows()
		if err != nil {
			return nil, fmt.Errorf("jira issues: %w", err)
		}
		err = scanAll(rows, func(r rowScanner) error {
			var (
				is            JiraIssue
				started, done sql.NullTime
			)
			if err := r.Scan(&is.IssueID, &is.IssueKey, &is.ProjectKey, &is.Summary, &is.StatusName,
				&is.StatusCategory, &is.IssueType, &is.UpdatedAt, &started, &done); err != nil {
				return err
			}
			is.UpdatedAt, is.StartedAt, is.DoneAt = fromDB(is.UpdatedAt), nullTime(started), nullTime(done)
			out[is.IssueKey] = &is
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("jira issues: %w", err)
		}
	}
	return out, nil
}

// CountJiraIssues returns how many live issues of t are known in the project
// projectKey.
func (s *Store) CountJiraIssues(ctx context.Context, t *tenant.Tenant, projectKey string) (int, error) {
	if err := checkTenant(t); err != nil {
		return 0, fmt.Errorf("store: count jira issues: %w", err)
	}
	var n int
	err := queryRow(s.db.WithContext(ctx), `SELECT COUNT(*) FROM jira_issues
		WHERE tenant_id = ? AND project_key = ? AND deleted_at IS NULL`,
		t.ID, projectKey,
	).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count jira issues: %w", err)
	}
	return n, nil
}
