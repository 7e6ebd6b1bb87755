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

// JiraTransition is one status change of a Jira issue.
type JiraTransition struct {
	IssueID      string
	IssueKey     string // the key when the status changed; keys change on moves
	FromStatus   string // "" for the status the issue was created in
	FromStatusID string // "" when unknown
	ToStatus     string
	ToStatusID   string // "" when unknown
	// ToCategory is the status category of ToStatus: "new", "indeterminate"
	// or "done"; "" when the webhook did not tell.
	ToCategory string
	At         time.Time
}

// JiraIssueEvent is one Jira issue webhook, applied by ApplyJiraIssueEvent.
type JiraIssueEvent struct {
	// DeliveryID is the webhook's X-Atlassian-Webhook-Identifier, the same on
	// every retry of one delivery; "" when Jira sent none.
	DeliveryID string
	// Deleted marks jira:issue_deleted: the issue Issue.IssueID is deleted at
	// Issue.UpdatedAt, and Transitions must be empty.
	Deleted bool
	// Issue is the issue as the webhook showed it.
	Issue JiraIssue
	// Transitions are the status changes the webhook reports. Their IssueID
	// and IssueKey are ignored: Issue supplies both.
	Transitions []JiraTransition
}

// JiraWebhookClaimTTL is how long a Jira webhook identifier stays claimed.
// Jira retries a delivery for hours, not days, so a week is generous while
// keeping the claims table bounded.
const JiraWebhookClaimTTL = 7 * 24 * time.Hour

// Claiming is an insert that yields no row when the identifier is taken, so
// the claim and the duplicate check are one statement and concurrent
// deliveries of one identifier queue on the primary key instead of racing.
const claimJiraWebhookSQL = `INSERT INTO jira_webhook_claims (tenant_id, webhook_id, claimed_at)
VALUES (?, ?, ?)
ON CONFLICT (tenant_id, webhook_id) DO NOTHING
RETURNING webhook_id`

// The key of jira_transitions is the change itself, so replaying an event
// (a redelivery without an identifier, or after its claim expired) adds nothing.
const insertJiraTransitionSQL = `INSERT INTO jira_transitions (tenant_id, issue_id, transitioned_at,
	from_status, to_status, from_status_id, to_status_id, to_category, issue_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant_id, issue_id, transitioned_at, from_status, to_status) DO NOTHING`

// The derived times are recomputed from every recorded transition rather
// than updated from the one at hand, because webhooks arrive out of order: a
// late "To Do -> In Progress" must still become started_at, and a late
// "Done -> Reopened" must clear done_at. Transitions with an unknown category
// say nothing either way and are left out.
//
// done_at is the first "done" transition that no known non-done transition
// follows (at the same instant or later): the start of the issue's current
// done period, or NULL when its last known transition left done. A move
// between two done statuses does not restart that period.
const deriveJiraIssueTimesSQL = `UPDATE jira_issues SET
	started_at = (SELECT MIN(transitioned_at) FROM jira_transitions
		WHERE tenant_id = ? AND issue_id = ? AND to_category IN ('indeterminate', 'done')),
	done_at = (SELECT MIN(d.transitioned_at) FROM jira_transitions d
		WHERE d.tenant_id = ? AND d.issue_id = ? AND d.to_category = 'done'
			AND NOT EXISTS (SELECT 1 FROM jira_transitions n
				WHERE n.tenant_id = d.tenant_id AND n.issue_id = d.issue_id
					AND n.to_category NOT IN ('done', '')
					AND n.transitioned_at >= d.transitioned_at))
WHERE tenant_id = ? AND issue_id = ?`

// ApplyJiraIssueEvent records one Jira issue webhook of t: the issue's latest
// state (or its deletion), its status transitions, and the issue's derived
// started and done times.
//
// When ev.DeliveryID is set, the event claims it for t in the same
// transaction as the writes: if the identifier was claimed before, nothing is
// written and an error wrapping ErrDuplicate is returned; if any write fails,
// the claim is rolled back with it, so the sender's retry is processed.
// Claims expire after JiraWebhookClaimTTL.
func (s *Store) ApplyJiraIssueEvent(ctx context.Context, t *tenant.Tenant, ev JiraIssueEvent) error {
	if err := checkTenant(t); err != nil {
		return fmt.Errorf("store: apply jira issue event: %w", err)
	}
	if err := ev.validate(); err != nil {
		return fmt.Errorf("store: apply jira issue event: %w", err)
	}
	// What an issue event changes is shown only for the issue's key, and
	// for the key it had before a move or when it was deleted.
	var touched []string // stays nil unless the write is known to have ended well
	defer func() { s.changedIssues(t.ID, touched) }()
	var prev string
	deliveryID := ""
	if ev.DeliveryID != "" {
		deliveryID = cleanDeliveryID(ev.DeliveryID)
	}
	now := s.now()
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if deliveryID != "" {
			var claimed string
			err := queryRow(tx, claimJiraWebhookSQL, t.ID, deliveryID, s.ts(now)).Scan(&claimed)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("webhook %q: %w", ev.DeliveryID, ErrDuplicate)
			}
			if err != nil {
				return fmt.Errorf("claim webhook: %w", err)
			}
		}
		if ev.Deleted {
			var err error
			prev, err = s.deleteJiraIssue(tx, t, ev.Issue.IssueID, ev.Issue.UpdatedAt)
			return err
		}
		var err error
		prev, err = s.upsertJiraIssue(tx, t, ev.Issue)
		if err != nil {
			return fmt.Errorf("upsert issue: %w", err)
		}
		if len(ev.Transitions) == 0 {
			if !moved(prev, ev.Issue.IssueKey) {
				return nil // most issue events: nothing the facts copy changed
			}
			return syncIssueStarts(tx, t, prev, ev.Issue.IssueKey)
		}
		for _, tr := range ev.Transitions {
			err := tx.Exec(insertJiraTransitionSQL,
				t.ID, ev.Issue.IssueID, s.ts(tr.At),
				tr.FromStatus, tr.ToStatus, tr.FromStatusID, tr.ToStatusID, tr.ToCategory,
				ev.Issue.IssueKey,
			).Error
			if err != nil {
				return fmt.Errorf("record transition: %w", err)
			}
		}
		id := ev.Issue.IssueID
		if err := tx.Exec(deriveJiraIssueTimesSQL, t.ID, id, t.ID, id, t.ID, id).Error; err != nil {
			return fmt.Errorf("derive issue times: %w", err)
		}
		return syncIssueStarts(tx, t, prev, ev.Issue.IssueKey)
	})
	if err != nil {
		return fmt.Errorf("store: apply jira issue event: %w", err)
	}
	// cleanKeys drops the empty key and keeps only keys a panel can be
	// asked for, which also keeps them fit for an announcement.
	touched = cleanKeys([]string{ev.Issue.IssueKey, prev})
	if deliveryID != "" {
		// Pruning is housekeeping: the event is stored whether or not it
		// works, and the next claim of t tries again. The (tenant_id,
		// claimed_at) index keeps it a short range scan.
		err := s.db.WithContext(ctx).Exec(`DELETE FROM jira_webhook_claims
			WHERE tenant_id = ? AND claimed_at < ?`,
			t.ID, s.ts(now.Add(-JiraWebhookClaimTTL))).Error
		if err != nil {
			s.log.Warn("store: prune jira webhook claims", "tenant", t.ID, "err", err)
		}
	}
	return nil
}

func (ev JiraIssueEvent) validate() error {
	if ev.Issue.IssueID == "" || (!ev.Deleted && ev.Issue.IssueKey == "") {
		return errors.New("issue id and key are required")
	}
	if ev.Issue.UpdatedAt.IsZero() {
		return errors.New("event time is required")
	}
	if ev.Deleted && len(ev.Transitions) > 0 {
		return errors.New("a deletion has no transitions")
	}
	for _, tr := range ev.Transitions {
		if tr.ToStatus == "" || tr.At.IsZero() {
			return errors.New("a transition needs a target status and a time")
		}
	}
	return nil
}

// JiraIssueTransitions returns the recorded status changes of t's issue
// issueID, deleted or not, oldest first; none for an unknown issue.
func (s *Store) JiraIssueTransitions(ctx context.Context, t *tenant.Tenant, issueID string) ([]JiraTransition, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: jira issue transitions: %w", err)
	}
	// Ties in time are rare (Jira stamps in milliseconds); ordering the
	// creation status first and then by name keeps the answer stable.
	rows, err := s.db.WithContext(ctx).Raw(`SELECT issue_id, issue_key, from_status, from_status_id,
			to_status, to_status_id, to_category, transitioned_at
		FROM jira_transitions
		WHERE tenant_id = ? AND issue_id = ?
		ORDER BY transitioned_at, CASE WHEN from_status = '' THEN 0 ELSE 1 END, from_status, to_status`,
		t.ID, issueID,
	).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: jira issue transitions: %w", err)
	}
	defer rows.Close()
	out := []JiraTransition{}
	for rows.Next() {
		var tr JiraTransition
		err := rows.Scan(&tr.IssueID, &tr.IssueKey, &tr.FromStatus, &tr.FromStatusID,
			&tr.ToStatus, &tr.ToStatusID, &tr.ToCategory, &tr.At)
		if err != nil {
			return nil, fmt.Errorf("store: jira issue transitions: %w", err)
		}
		tr.At = fromDB(tr.At)
		out = append(out, tr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: jira issue transitions: %w", err)
	}
	return out, nil
}
