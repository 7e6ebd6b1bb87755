package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/tenant"
)

// What the Confluence macro reads: how far a list of issues has come on its
// way to production (IssueReadiness), and what was recently deployed for a
// set of Jira projects (RecentDeployments). Both read one Jira tenant's
// data only; the macro passes the Jira tenant of its own site.

// Bounds of the macro's reads. A macro is one box on a wiki page: it shows
// a release's worth of issues and a few screens of deployments, never a
// site's whole history.
const (
	// MaxReadinessIssues bounds the issue keys of one IssueReadiness call.
	MaxReadinessIssues = 100
	// DefaultRecentDeployments and MaxRecentDeployments bound the list
	// RecentDeployments returns.
	DefaultRecentDeployments = 50
	MaxRecentDeployments     = 200
	// DefaultPerEnvironment and MaxPerEnvironment bound the deployments of
	// one environment, so a busy development environment cannot push
	// production out of the list.
	DefaultPerEnvironment = 10
	MaxPerEnvironment     = 50
	// MaxDeploymentIssueKeys bounds the issue keys returned per deployment;
	// IssueCount has the full number.
	MaxDeploymentIssueKeys = 10
	// maxFilterProjects bounds the project keys of a DeploymentFilter.
	maxFilterProjects = 50
)

// DeploymentScope narrows deployments to one service and one environment.
// Empty fields match everything.
type DeploymentScope struct {
	// Service is compared case-insensitively (services are stored
	// lower-case).
	Service string
	// Environment matches an environment's name or id, case-insensitively,
	// or its type ("production" matches every production environment).
	Environment string
}

// where returns the scope's conditions on deployments aliased e, each
// starting with " AND ", and their binds.
func (sc DeploymentScope) where() (string, []any) {
	var sb strings.Builder
	var args []any
	if svc := strings.TrimSpace(sc.Service); svc != "" {
		sb.WriteString(` AND e.service = ?`)
		args = append(args, strings.ToLower(svc))
	}
	if env := strings.ToLower(strings.TrimSpace(sc.Environment)); env != "" {
		sb.WriteString(` AND (lower(e.environment_name) = ? OR lower(e.environment_id) = ? OR e.environment_type = ?)`)
		args = append(args, env, env, env)
	}
	return sb.String(), args
}

// IssueReadiness is how far one issue has come: what Jira says of it, its
// pull requests, its latest build and the latest deployment to each
// environment it reached.
type IssueReadiness struct {
	IssueKey string
	// Issue is what Jira's webhooks last reported; nil when none did.
	Issue *JiraIssue
	// PullRequests counts the linked pull requests by state.
	PullRequests map[devops.PullRequestState]int
	// LatestBuild is the most recently changed linked build; nil without
	// builds.
	LatestBuild *BuildRecord
	// Environments holds, for each environment (by name, as the issue
	// panel groups them) that linked deployments went to, the latest of
	// them, ordered by environment name.
	Environments []DeploymentRecord
}

// latestDeploymentFirst orders deployments the way the issue panel picks an
// environment's latest one: by last change, then sequence number. updated_at
// is always set by the store; the other times only guard older rows.
const latestDeploymentFirst = `COALESCE(e.updated_at, e.finished_at, e.started_at) DESC NULLS LAST,
	e.sequence_number DESC, e.id`

// environmentOf is the key the issue panel groups deployments by: the
// environment's name, or its id when the provider gave no name.
const environmentOf = `COALESCE(NULLIF(e.environment_name, ''), e.environment_id)`

// IssueReadiness returns the readiness of each of keys in t, in the order
// of keys (duplicates and invalid keys dropped). Deployments outside scope
// are left out of Environments. An issue nothing is known of still gets an
// entry, with a nil Issue and empty lists.
func (s *Store) IssueReadiness(ctx context.Context, t *tenant.Tenant, keys []string, scope DeploymentScope) ([]IssueReadiness, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: issue readiness: %w", err)
	}
	keys = cleanKeys(keys)
	if len(keys) > MaxReadinessIssues {
		return nil, fmt.Errorf("store: issue readiness: %d issue keys, at most %d", len(keys), MaxReadinessIssues)
	}
	out := make([]IssueReadiness, len(keys))
	byKey := make(map[string]*IssueReadiness, len(keys))
	for i, k := range keys {
		out[i] = IssueReadiness{IssueKey: k, PullRequests: map[devops.PullRequestState]int{}}
		byKey[k] = &out[i]
	}
	if len(keys) == 0 {
		return out, nil
	}
	db := s.db.WithContext(ctx)
	in := inList(len(keys))
	binds := anys([]any{t.ID}, keys)

	issues, err := liveJiraIssues(db, t, keys)
	if err != nil {
		return nil, fmt.Errorf("store: issue readiness: %w", err)
	}
	for k, is := range issues {
		byKey[k].Issue = is
	}

	rows, err := db.Raw(`SELECT l.issue_key, e.state, COUNT(*) FROM issue_links l
		JOIN pull_requests e ON e.tenant_id = l.tenant_id AND e.id = l.entity_id
		WHERE l.tenant_id = ? AND l.entity_type = '`+EntityPullRequest+`' AND l.issue_key IN (`+in+`)
		GROUP BY l.issue_key, e.state`, binds...).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: issue readiness: pull requests: %w", err)
	}
	err = scanAll(rows, func(r rowScanner) error {
		var key, state string
		var n int
		if err := r.Scan(&key, &state, &n); err != nil {
			return err
		}
		byKey[key].PullRequests[devops.PullRequestState(state)] += n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: issue readiness: pull requests: %w", err)
	}

	// The latest build is the one the panel's summary picks: by when it
	// last changed (finished, else updated, else started).
	rows, err = db.Raw(`SELECT e.issue_key, e.id, e.source_id, `+qualified("e", buildColumns)+` FROM (
			SELECT l.issue_key, e.*, ROW_NUMBER() OVER (PARTITION BY l.issue_key
				ORDER BY COALESCE(e.finished_at, e.updated_at, e.started_at) DESC NULLS LAST, e.id) AS rn
			FROM issue_links l JOIN builds e ON e.tenant_id = l.tenant_id AND e.id = l.entity_id
			WHERE l.tenant_id = ? AND l.entity_type = '`+EntityBuild+`' AND l.issue_key IN (`+in+`)
		) e WHERE e.rn = 1`, binds...).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: issue readiness: builds: %w", err)
	}
	err = scanAll(rows, func(r rowScanner) error {
		var key string
		var rec BuildRecord
		b, err := scanBuild(prefixScanner{r, []any{&key, &rec.ID, &rec.SourceID}})
		if err != nil {
			return err
		}
		rec.Build = *b
		byKey[key].LatestBuild = &rec
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: issue readiness: builds: %w", err)
	}

	scoped, scopeArgs := scope.where()
	rows, err = db.Raw(`SELECT e.issue_key, `+deploymentRecordColumns+` FROM (
			SELECT l.issue_key, e.*, ROW_NUMBER() OVER (PARTITION BY l.issue_key, `+environmentOf+`
				ORDER BY `+latestDeploymentFirst+`) AS rn
			FROM issue_links l JOIN deployments e ON e.tenant_id = l.tenant_id AND e.id = l.entity_id
			WHERE l.tenant_id = ? AND l.entity_type = '`+EntityDeployment+`' AND l.issue_key IN (`+in+`)`+scoped+`
		) e WHERE e.rn = 1
		ORDER BY e.issue_key, `+environmentOf,
		append(binds, scopeArgs...)...).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: issue readiness: deployments: %w", err)
	}
	err = scanAll(rows, func(r rowScanner) error {
		var key string
		rec, err := scanDeploymentRecord(prefixScanner{r, []any{&key}})
		if err != nil {
			return err
		}
		byKey[key].Environments = append(byKey[key].Environments, *rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: issue readiness: deployments: %w", err)
	}
	return out, nil
}

// DeploymentFilter selects the deployments RecentDeployments returns.
type DeploymentFilter struct {
	DeploymentScope
	// Projects are Jira project keys: a deployment qualifies when it is
	// linked to an issue of one of them. At least one is required.
	Projects []string
	// Limit bounds the whole list (zero: DefaultRecentDeployments, at most
	// MaxRecentDeployments); PerEnvironment bounds each environment's part
	// of it (zero: DefaultPerEnvironment, at most MaxPerEnvironment).
	Limit, PerEnvironment int
}

// RecentDeployment is a deployment with the issues of the filter's
// projects it is linked to.
type RecentDeployment struct {
	DeploymentRecord
	// IssueKeys are some of the linked issues of the filter's projects,
	// shortest (lowest-numbered) first, at most MaxDeploymentIssueKeys;
	// IssueCount counts them all.
	IssueKeys  []string
	IssueCount int
}

// RecentDeployments returns t's latest deployments linked to issues of
// f.Projects and inside f's scope, newest first, at most f.PerEnvironment
// per environment and f.Limit in all.
func (s *Store) RecentDeployments(ctx context.Context, t *tenant.Tenant, f DeploymentFilter) ([]RecentDeployment, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: recent deployments: %w", err)
	}
	var projects []string
	for _, p := range f.Projects {
		if !devops.ValidProjectKey(p) {
			return nil, fmt.Errorf("store: recent deployments: %q is not a project key", p)
		}
		if !slices.Contains(projects, p) {
			projects = append(projects, p)
		}
	}
	switch {
	case len(projects) == 0:
		return nil, errors.New("store: recent deployments: at least one project key is required")
	case len(projects) > maxFilterProjects:
		return nil, fmt.Errorf("store: recent deployments: %d project keys, at most %d", len(projects), maxFilterProjects)
	}
	limit := bound(f.Limit, DefaultRecentDeployments, MaxRecentDeployments)
	perEnv := bound(f.PerEnvironment, DefaultPerEnvironment, MaxPerEnvironment)

	// Issue keys are "<project>-<number>" and project keys have no '-', so
	// comparing the key's start with "<project>-" finds a project's issues
	// exactly. LIKE would need '_', legal in project keys, escaped.
	var match []string
	var matchArgs []any
	for _, p := range projects {
		match = append(match, `substr(l.issue_key, 1, ?) = ?`)
		matchArgs = append(matchArgs, len(p)+1, p+"-")
	}
	ofProjects := `(` + strings.Join(match, ` OR `) + `)`
	scoped, scopeArgs := f.where()
	db := s.db.WithContext(ctx)

	// The entity type is written into the SQL so the planner may use
	// issue_links_entity_idx, which leaves commits out.
	args := append(append([]any{t.ID}, scopeArgs...), matchArgs...)
	args = append(args, perEnv, limit)
	rows, err := db.Raw(`SELECT `+deploymentRecordColumns+` FROM (
			SELECT e.*, ROW_NUMBER() OVER (PARTITION BY `+environmentOf+` ORDER BY `+latestDeploymentFirst+`) AS rn
			FROM deployments e
			WHERE e.tenant_id = ?`+scoped+`
				AND EXISTS (SELECT 1 FROM issue_links l
					WHERE l.tenant_id = e.tenant_id AND l.entity_type = '`+EntityDeployment+`' AND l.entity_id = e.id
						AND `+ofProjects+`)
		) e WHERE e.rn <= ?
		ORDER BY `+latestDeploymentFirst+`
		LIMIT ?`, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: recent deployments: %w", err)
	}
	var out []RecentDeployment
	byID := map[string]int{}
	err = scanAll(rows, func(r rowScanner) error {
		rec, err := scanDeploymentRecord(r)
		if err != nil {
			return err
		}
		byID[rec.ID] = len(out)
		out = append(out, RecentDeployment{DeploymentRecord: *rec})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: recent deployments: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}

	// A deployment can carry hundreds of issues (a first deployment ships
	// all known history), so only the first few keys of each are read, and
	// the window counts the rest.
	ids := make([]string, len(out))
	for i, d := range out {
		ids[i] = d.ID
	}
	for _, part := range chunks(ids, maxInList) {
		args := append(anys([]any{t.ID}, part), matchArgs...)
		args = append(args, MaxDeploymentIssueKeys)
		rows, err := db.Raw(`SELECT entity_id, issue_key, n FROM (
				SELECT l.entity_id, l.issue_key, COUNT(*) OVER (PARTITION BY l.entity_id) AS n,
					ROW_NUMBER() OVER (PARTITION BY l.entity_id ORDER BY length(l.issue_key), l.issue_key) AS rn
				FROM issue_links l
				WHERE l.tenant_id = ? AND l.entity_type = '`+EntityDeployment+`'
					AND l.entity_id IN (`+inList(len(part))+`) AND `+ofProjects+`
			) x WHERE x.rn <= ?
			ORDER BY entity_id, rn`, args...).Rows()
		if err != nil {
			return nil, fmt.Errorf("store: recent deployments: issues: %w", err)
		}
		err = scanAll(rows, func(r rowScanner) error {
			var id, key string
			var n int
			if err := r.Scan(&id, &key, &n); err != nil {
				return err
			}
			d := &out[byID[id]]
			d.IssueKeys = append(d.IssueKeys, key)
			d.IssueCount = n
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: recent deployments: issues: %w", err)
		}
	}
	return out, nil
}

// bound returns n, or def when n is not positive, and never more than ceiling.
func bound(n, def, ceiling int) int {
	if n <= 0 {
		return def
	}
	return min(n, ceiling)
}
