package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/tenant"
)

// Development is everything a site's sources linked to one Jira issue: what
// the issue panel, the summary and the Confluence macro show. Each list is
// newest first and cut at the limit the caller asked for; Totals has the
// full counts, so a page can say "and 40 more".
type Development struct {
	IssueKey     string
	Branches     []BranchRecord
	Commits      []CommitRecord
	PullRequests []PullRequestRecord
	Builds       []BuildRecord
	Deployments  []DeploymentRecord
	Incidents    []IncidentRecord
	// Suspects are the incidents' suspect deployments, by id, whether or not
	// they are linked to the issue themselves.
	Suspects map[string]DeploymentRecord
	// SuspectChanges are, per suspect deployment id, the changes it was
	// the first to bring to its environment type (at most
	// MaxSuspectChanges each), slowest first; SuspectChangeCounts counts
	// them all.
	SuspectChanges      map[string][]ChangeRecord
	SuspectChangeCounts map[string]int
	// Totals counts every linked entity by type (EntityCommit, ...).
	Totals map[string]int
}

// BranchRecord is a stored branch with its ids.
type BranchRecord struct {
	devops.Branch
	ID       string
	SourceID string
}

// CommitRecord is a stored commit with the source that reported it.
type CommitRecord struct {
	devops.Commit
	SourceID string
}

// PullRequestRecord is a stored pull request with its ids.
type PullRequestRecord struct {
	devops.PullRequest
	StoreID  string // the id issue_links uses; PullRequest.ID is the provider's
	SourceID string
}

// BuildRecord is a stored build with its ids.
type BuildRecord struct {
	devops.Build
	ID       string
	SourceID string
}

// DevelopmentLimits bounds each list of an IssueDevelopment answer; zero
// means DefaultDevelopmentLimit.
type DevelopmentLimits struct {
	Branches, Commits, PullRequests, Builds, Deployments, Incidents int
}

// DefaultDevelopmentLimit is the length of a list when the caller sets none:
// enough for a panel, which collapses long lists anyway.
const DefaultDevelopmentLimit = 50

// MaxDevelopmentLimit bounds any list, whatever the caller asks.
const MaxDevelopmentLimit = 500

func limitOr(n int) int { return bound(n, DefaultDevelopmentLimit, MaxDevelopmentLimit) }

// IssueDevelopment returns what t's sources linked to issueKey. An issue
// with no links gives empty lists, not an error.
func (s *Store) IssueDevelopment(ctx context.Context, t *tenant.Tenant, issueKey string, lim DevelopmentLimits) (*Development, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: issue development: %w", err)
	}
	db := s.db.WithContext(ctx)
	dev := &Development{IssueKey: issueKey}
	counts, err := s.CountIssueLinks(ctx, t, issueKey)
	if err != nil {
		return nil, fmt.Errorf("store: issue development: %w", err)
	}
	dev.Totals = counts
	// Each list joins issue_links on its entity type, so it costs one index
	// range of the issue's links and one primary-key lookup per row.
	link := func(entityType, column string) string {
		return ` JOIN issue_links l ON l.tenant_id = e.tenant_id AND l.entity_type = '` + entityType +
			`' AND l.entity_id = e.` + column + ` WHERE e.tenant_id = ? AND l.issue_key = ?`
	}
	if counts[EntityBranch] > 0 {
		rows, err := db.Raw(`SELECT e.id, e.source_id, e.repository_id, e.name, e.url, e.last_commit_sha,
				e.issue_keys, e.deleted, e.updated_at, e.first_commit_at FROM branches e`+link(EntityBranch, "id")+`
			ORDER BY e.updated_at DESC, e.id LIMIT ?`, t.ID, issueKey, limitOr(lim.Branches)).Rows()
		if err != nil {
			return nil, fmt.Errorf("store: issue development: branches: %w", err)
		}
		err = scanAll(rows, func(r rowScanner) error {
			var b BranchRecord
			var keys string
			var first sql.NullTime
			if err := r.Scan(&b.ID, &b.SourceID, &b.RepositoryID, &b.Name, &b.URL, &b.LastCommitSHA, &keys,
				&b.Deleted, &b.UpdatedAt, &first); err != nil {
				return err
			}
			b.IssueKeys, b.UpdatedAt, b.FirstCommitAt = textKeys(keys), fromDB(b.UpdatedAt), nullTime(first)
			dev.Branches = append(dev.Branches, b)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: issue development: branches: %w", err)
		}
	}
	if counts[EntityCommit] > 0 {
		rows, err := db.Raw(`SELECT e.sha, e.source_id, e.repository_id, e.message, e.author_name, e.author_email,
				e.author_username, e.authored_at, e.url, e.merge, e.issue_keys FROM commits e`+link(EntityCommit, "sha")+`
			ORDER BY e.authored_at DESC, e.first_seen_at DESC, e.sha LIMIT ?`, t.ID, issueKey, limitOr(lim.Commits)).Rows()
		if err != nil {
			return nil, fmt.Errorf("store: issue development: commits: %w", err)
		}
		err = scanAll(rows, func(r rowScanner) error {
			var c CommitRecord
			var keys string
			var at sql.NullTime
			if err := r.Scan(&c.SHA, &c.SourceID, &c.RepositoryID, &c.Message, &c.Author.Name, &c.Author.Email,
				&c.Author.Username, &at, &c.URL, &c.Merge, &keys); err != nil {
				return err
			}
			c.AuthoredAt, c.IssueKeys = nullTime(at), textKeys(keys)
			dev.Commits = append(dev.Commits, c)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: issue development: commits: %w", err)
		}
	}
	if counts[EntityPullRequest] > 0 {
		rows, err := db.Raw(`SELECT e.id, e.source_id, `+qualified("e", prColumns)+` FROM pull_requests e`+
			link(EntityPullRequest, "id")+`
			ORDER BY e.updated_at DESC, e.id LIMIT ?`, t.ID, issueKey, limitOr(lim.PullRequests)).Rows()
		if err != nil {
			return nil, fmt.Errorf("store: issue development: pull requests: %w", err)
		}
		err = scanAll(rows, func(r rowScanner) error {
			var rec PullRequestRecord
			pr, err := scanPullRequest(prefixScanner{r, []any{&rec.StoreID, &rec.SourceID}})
			if err != nil {
				return err
			}
			rec.PullRequest = *pr
			dev.PullRequests = append(dev.PullRequests, rec)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: issue development: pull requests: %w", err)
		}
	}
	if counts[EntityBuild] > 0 {
		rows, err := db.Raw(`SELECT e.id, e.source_id, `+qualified("e", buildColumns)+` FROM builds e`+
			link(EntityBuild, "id")+`
			ORDER BY e.updated_at DESC, e.id LIMIT ?`, t.ID, issueKey, limitOr(lim.Builds)).Rows()
		if err != nil {
			return nil, fmt.Errorf("store: issue development: builds: %w", err)
		}
		err = scanAll(rows, func(r rowScanner) error {
			var rec BuildRecord
			b, err := scanBuild(prefixScanner{r, []any{&rec.ID, &rec.SourceID}})
			if err != nil {
				return err
			}
			rec.Build = *b
			dev.Builds = append(dev.Builds, rec)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: issue development: builds: %w", err)
		}
	}
	if counts[EntityDeployment] > 0 {
		rows, err := db.Raw(`SELECT `+deploymentRecordColumns+` FROM deployments e`+link(EntityDeployment, "id")+`
			ORDER BY e.updated_at DESC, e.id LIMIT ?`, t.ID, issueKey, limitOr(lim.Deployments)).Rows()
		if err != nil {
			return nil, fmt.Errorf("store: issue development: deployments: %w", err)
		}
		err = scanAll(rows, func(r rowScanner) error {
			rec, err := scanDeploymentRecord(r)
			if err == nil {
				dev.Deployments = append(dev.Deployments, *rec)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("store: issue development: deployments: %w", err)
		}
	}
	if counts[EntityIncident] > 0 {
		rows, err := db.Raw(`SELECT e.id, `+qualified("e", incidentColumns)+`, e.source_id, e.suspect_deployment_id,
				e.suspect_basis FROM incidents e`+link(EntityIncident, "id")+`
			ORDER BY e.opened_at DESC, e.id LIMIT ?`, t.ID, issueKey, limitOr(lim.Incidents)).Rows()
		if err != nil {
			return nil, fmt.Errorf("store: issue development: incidents: %w", err)
		}
		err = scanAll(rows, func(r rowScanner) error {
			var rec IncidentRecord
			in, err := scanIncident(prefixScanner{r, []any{&rec.ID}}, &rec.SourceID, &rec.SuspectDeploymentID, &rec.SuspectBasis)
			if err != nil {
				return err
			}
			rec.Incident = *in
			dev.Incidents = append(dev.Incidents, rec)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: issue development: incidents: %w", err)
		}
	}
	dev.Suspects = map[string]DeploymentRecord{}
	var suspects []string
	for _, in := range dev.Incidents {
		if in.SuspectDeploymentID != "" {
			suspects = append(suspects, in.SuspectDeploymentID)
		}
	}
	for _, part := range chunks(suspects, maxInList) {
		rows, err := db.Raw(`SELECT `+deploymentRecordColumns+` FROM deployments e
			WHERE e.tenant_id = ? AND e.id IN (`+inList(len(part))+`)`,
			anys([]any{t.ID}, part)...).Rows()
		if err != nil {
			return nil, fmt.Errorf("store: issue development: suspects: %w", err)
		}
		err = scanAll(rows, func(r rowScanner) error {
			rec, err := scanDeploymentRecord(r)
			if err == nil {
				dev.Suspects[rec.ID] = *rec
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("store: issue development: suspects: %w", err)
		}
	}
	if err := s.suspectChanges(db, t, suspects, dev); err != nil {
		return nil, fmt.Errorf("store: issue development: suspect changes: %w", err)
	}
	return dev, nil
}

// MaxSuspectChanges bounds the changes listed per suspect deployment.
const MaxSuspectChanges = 5

// suspectChanges loads what each suspect deployment newly shipped, from
// the release facts: the changes an incident most likely came with.
func (s *Store) suspectChanges(db *gorm.DB, t *tenant.Tenant, ids []string, dev *Development) error {
	dev.SuspectChanges, dev.SuspectChangeCounts = map[string][]ChangeRecord{}, map[string]int{}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids[:min(len(ids), maxInList)] {
		rows, err := db.Raw(`SELECT f.change_kind, f.change_id, COALESCE(f.lead_seconds, 0), f.first_commit_at,
				f.deployed_at, f.service, f.environment_name, f.issue_keys,
				COALESCE(p.title, c.message, ''), COALESCE(p.number, 0), COALESCE(p.url, c.url, ''),
				COUNT(*) OVER ()
			FROM change_first_deployments f
			LEFT JOIN pull_requests p ON f.change_kind = 'pullrequest' AND p.tenant_id = f.tenant_id AND p.id = f.change_id
			LEFT JOIN commits c ON f.change_kind = 'commit' AND c.tenant_id = f.tenant_id AND c.sha = f.change_id
			WHERE f.tenant_id = ? AND f.deployment_id = ?
			ORDER BY f.lead_seconds DESC, f.change_id LIMIT ?`, t.ID, id, MaxSuspectChanges).Rows()
		if err != nil {
			return err
		}
		err = scanAll(rows, func(r rowScanner) error {
			var total int
			c, err := scanChangeRecord(r, &total)
			if err != nil {
				return err
			}
			dev.SuspectChanges[id] = append(dev.SuspectChanges[id], *c)
			dev.SuspectChangeCounts[id] = total
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// deploymentRecordColumns is what scanDeploymentRecord reads, from
// deployments aliased e.
var deploymentRecordColumns = `e.id, ` + qualified("e", deploymentColumns) + `, e.source_id, e.commit_count, e.commits_complete`

func scanDeploymentRecord(r rowScanner) (*DeploymentRecord, error) {
	var rec DeploymentRecord
	d, err := scanDeployment(prefixScanner{r, []any{&rec.ID}}, &rec.SourceID, &rec.CommitCount, &rec.CommitsComplete)
	if err != nil {
		return nil, err
	}
	rec.Deployment = *d
	return &rec, nil
}

// prefixScanner scans leading columns into before, then hands the rest to
// the wrapped scan; it lets the entity scanners read joined queries.
type prefixScanner struct {
	r      rowScanner
	before []any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.r.Scan(append(append([]any{}, p.before...), dest...)...)
}

// scanAll calls fn for each row and closes rows.
func scanAll(rows interface {
	rowScanner
	Next() bool
	Err() error
	Close() error
}, fn func(rowScanner) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
