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
	UpdatedAt      time.Time // Jira's "updated" time of this version
}

// The WHERE on DO UPDATE drops stale events: webhooks can arrive out of
// order, and an older version must not overwrite a newer one. A deleted issue
// stays deleted (Jira has no undelete), whatever arrives later.
const upsertJiraIssueSQL = `INSERT INTO jira_issues (tenant_id, issue_id, issue_key, project_key,
	summary, status_name, status_category, updated_at, deleted_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)
ON CONFLICT (tenant_id, issue_id) DO UPDATE SET
	issue_key = excluded.issue_key,
	project_key = excluded.project_key,
	summary = excluded.summary,
	status_name = excluded.status_name,
	status_category = excluded.status_category,
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
	err := s.db.WithContext(ctx).Exec(upsertJiraIssueSQL,
		t.ID, is.IssueID, is.IssueKey, is.ProjectKey,
		is.Summary, is.StatusName, is.StatusCategory, s.ts(is.UpdatedAt),
	).Error
	if err != nil {
		return fmt.Errorf("store: upsert jira issue: %w", err)
	}
	return nil
}

// DeleteJiraIssue marks an issue of t deleted at at and removes the links
// recorded under its key, unless another live issue of t now holds that key.
// Deleting an unknown or already deleted issue is not an error.
func (s *Store) DeleteJiraIssue(ctx context.Context, t *tenant.Tenant, issueID string, at time.Time) error {
	if err := checkTenant(t); err != nil {
		return fmt.Errorf("store: delete jira issue: %w", err)
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var key string
		err := queryRow(tx, `UPDATE jira_issues SET deleted_at = ?
			WHERE tenant_id = ? AND issue_id = ? AND deleted_at IS NULL
			RETURNING issue_key`,
			s.ts(at), t.ID, issueID).Scan(&key)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return tx.Exec(`DELETE FROM issue_links
			WHERE tenant_id = ? AND issue_key = ?
				AND NOT EXISTS (SELECT 1 FROM jira_issues
					WHERE tenant_id = ? AND issue_key = ? AND deleted_at IS NULL)`,
			t.ID, key, t.ID, key).Error
	})
	if err != nil {
		return fmt.Errorf("store: delete jira issue: %w", err)
	}
	return nil
}

// JiraIssueByKey returns the live issue of t with the given key, or an error
// wrapping ErrNotFound. Should two live rows share a key (a move whose
// webhook was missed), the most recently updated wins.
func (s *Store) JiraIssueByKey(ctx context.Context, t *tenant.Tenant, key string) (*JiraIssue, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: jira issue by key: %w", err)
	}
	var is JiraIssue
	err := queryRow(s.db.WithContext(ctx), `SELECT issue_id, issue_key, project_key, summary,
			status_name, status_category, updated_at
		FROM jira_issues
		WHERE tenant_id = ? AND issue_key = ? AND deleted_at IS NULL
		ORDER BY updated_at DESC LIMIT 1`,
		t.ID, key,
	).Scan(&is.IssueID, &is.IssueKey, &is.ProjectKey, &is.Summary,
		&is.StatusName, &is.StatusCategory, &is.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: jira issue by key: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: jira issue by key: %w", err)
	}
	is.UpdatedAt = fromDB(is.UpdatedAt)
	return &is, nil
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
