package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

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
	// A new link shows on the issue's own panel only.
	defer s.changedIssues(t.ID, cleanKeys([]string{issueKey}))
	err := s.tx(ctx, func(tx *gorm.DB) error {
		err := tx.Exec(`INSERT INTO issue_links
				(tenant_id, issue_key, entity_type, entity_id, created_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id, issue_key, entity_type, entity_id) DO NOTHING`,
			t.ID, issueKey, entityType, entityID, s.ts(s.now()),
		).Error
		if err != nil || entityType != EntityDeployment {
			return err
		}
		return (&batchWriter{s: s, t: t, tx: tx}).addLinkedProjects(entityID, []string{issueKey})
	})
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

// addLinks links one entity to keys, keeping links it already has.
func (w *batchWriter) addLinks(entityType, entityID string, keys []string) error {
	if w.deferring {
		ids := make([]string, len(keys))
		for i := range ids {
			ids[i] = entityID
		}
		w.deferLinks(entityType, keys, ids)
		return nil
	}
	rows := make([][]any, 0, len(keys))
	at := w.s.ts(w.now)
	for _, k := range keys {
		rows = append(rows, []any{w.t.ID, k, entityType, entityID, at})
	}
	return w.insertRows(`INSERT INTO issue_links (tenant_id, issue_key, entity_type, entity_id, created_at)`,
		`ON CONFLICT (tenant_id, issue_key, entity_type, entity_id) DO NOTHING`, rows)
}

// setLinks makes keys the whole set of issues one entity is linked to:
// links to other keys are removed (a retitled pull request, a deployment
// whose commit range shrank), and links that stay keep their creation time.
func (w *batchWriter) setLinks(entityType, entityID string, keys []string) error {
	typ, err := entityTypeLiteral(entityType)
	if err != nil {
		return err
	}
	q := `DELETE FROM issue_links WHERE tenant_id = ? AND entity_type = ` + typ + ` AND entity_id = ?`
	args := []any{w.t.ID, entityID}
	if len(keys) > 0 {
		q += ` AND issue_key NOT IN (` + inList(len(keys)) + `)`
		args = anys(args, keys)
	}
	if err := w.exec(q, args...); err != nil {
		return err
	}
	return w.addLinks(entityType, entityID, keys)
}

// entityTypeLiteral returns one of the entity types as a SQL literal. Lookups
// by entity write the type into the SQL rather than binding it, so the
// planner can tell that a query for a deployment's links may use
// issue_links_entity_idx, which leaves commits out.
func entityTypeLiteral(entityType string) (string, error) {
	switch entityType {
	case EntityCommit, EntityBranch, EntityPullRequest, EntityBuild, EntityDeployment, EntityIncident:
		return "'" + entityType + "'", nil
	}
	return "", fmt.Errorf("unknown entity type %q", entityType)
}

// Link is one issue link: an entity that refers to an issue key.
type Link struct {
	IssueKey   string
	EntityType string
	EntityID   string
}

// IssueLinks returns every entity t links to issueKey, ordered by type and id.
func (s *Store) IssueLinks(ctx context.Context, t *tenant.Tenant, issueKey string) ([]Link, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: issue links: %w", err)
	}
	rows, err := s.db.WithContext(ctx).Raw(`SELECT issue_key, entity_type, entity_id FROM issue_links
		WHERE tenant_id = ? AND issue_key = ?
		ORDER BY entity_type, entity_id`, t.ID, issueKey).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: issue links: %w", err)
	}
	defer rows.Close()
	out := []Link{}
	for rows.Next() {
		var l Link
		if err := rows.Scan(&l.IssueKey, &l.EntityType, &l.EntityID); err != nil {
			return nil, fmt.Errorf("store: issue links: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: issue links: %w", err)
	}
	return out, nil
}

// EntityLinks returns the issue keys t links one entity to, sorted.
func (s *Store) EntityLinks(ctx context.Context, t *tenant.Tenant, entityType, entityID string) ([]string, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: entity links: %w", err)
	}
	typ, err := entityTypeLiteral(entityType)
	if err != nil {
		return nil, fmt.Errorf("store: entity links: %w", err)
	}
	var keys []string
	err = s.db.WithContext(ctx).Raw(`SELECT issue_key FROM issue_links
		WHERE tenant_id = ? AND entity_type = `+typ+` AND entity_id = ?
		ORDER BY issue_key`, t.ID, entityID).Scan(&keys).Error
	if err != nil {
		return nil, fmt.Errorf("store: entity links: %w", err)
	}
	return keys, nil
}
