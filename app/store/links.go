package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyline/keyline/app/tenant"
)

// AddIssueLink records that a development entity (entityType such as
// "branch", "commit", "pullrequest"; entityID unique within that type) refers
// to issueKey on t's site. Adding the same link again is a no-op.
func (s *Store) AddIssueLink(ctx context.Context, t *tenant.Tenant, issueKey, entityType, entityID string) error {
	if err := checkTenant(t); err != nil {
		return fmt.Errorf("store: add issue link: %w", err)
	}
	if issueKey == "" || entityType == "" || entityID == "" {
		return errors.New("store: add issue link: issue key, entity type and entity id are required")
	}
	err := s.db.WithContext(ctx).Exec(`INSERT INTO issue_links
			(tenant_id, issue_key, entity_type, entity_id, created_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, issue_key, entity_type, entity_id) DO NOTHING`,
		t.ID, issueKey, entityType, entityID, s.ts(s.now()),
	).Error
	if err != nil {
		return fmt.Errorf("store: add issue link: %w", err)
	}
	return nil
}

// CountIssueLinks returns, for one issue key of t, the number of linked
// entities per entity type. No links gives an empty, non-nil map.
func (s *Store) CountIssueLinks(ctx context.Context, t *tenant.Tenant, issueKey string) (map[string]int, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: count issue links: %w", err)
	}
	rows, err := s.db.WithContext(ctx).Raw(`SELECT entity_type, COUNT(*) FROM issue_links
		WHERE tenant_id = ? AND issue_key = ?
		GROUP BY entity_type`,
		t.ID, issueKey,
	).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: count issue links: %w", err)
	}
	defer rows.Close()
	counts := make(map[string]int)
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			return nil, fmt.Errorf("store: count issue links: %w", err)
		}
		counts[typ] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count issue links: %w", err)
	}
	return counts, nil
}
