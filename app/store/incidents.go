package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/tenant"
)

// IncidentID is the id under which a source's incident is stored and linked.
func IncidentID(sourceID, providerID string) string { return entityID(sourceID, providerID) }

// How an incident's suspect deployment was found.
const (
	// SuspectExplicit: the incident named the deployment.
	SuspectExplicit = "explicit"
	// SuspectCommit: the incident named a commit; the suspect is the first
	// successful deployment that shipped it, production preferred.
	SuspectCommit = "commit"
	// SuspectService: the last successful production deployment of the
	// incident's service before it opened.
	SuspectService = "service"
)

// IncidentRecord is a stored incident with its suspect deployment.
type IncidentRecord struct {
	devops.Incident
	ID       string
	SourceID string
	// SuspectDeploymentID is the deployment that most likely caused the
	// incident, "" when none is known; SuspectBasis says how it was found.
	SuspectDeploymentID string
	SuspectBasis        string
}

const incidentColumns = `provider_id, title, severity, status, service, url, ref_pipeline_id, ref_environment_id,
	ref_sequence_number, commit_sha, issue_keys, opened_at, resolved_at, updated_at`

func scanIncident(r rowScanner, extra ...any) (*devops.Incident, error) {
	var (
		in                devops.Incident
		status, keys      string
		ref               devops.DeploymentKey
		resolved, updated sql.NullTime
	)
	dest := append([]any{&in.SourceID, &in.Title, &in.Severity, &status, &in.Service, &in.URL, &ref.PipelineID,
		&ref.EnvironmentID, &ref.SequenceNumber, &in.CommitSHA, &keys, &in.OpenedAt, &resolved, &updated}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	in.Status = devops.IncidentStatus(status)
	if ref.PipelineID != "" {
		in.Deployment = &ref
	}
	in.IssueKeys = textKeys(keys)
	in.OpenedAt = fromDB(in.OpenedAt)
	in.ResolvedAt, in.UpdatedAt = nullTime(resolved), nullTime(updated)
	return &in, nil
}

func cleanIncident(in devops.Incident) devops.Incident {
	in.SourceID = cleanText(in.SourceID, maxIDLen)
	in.Title = cleanText(in.Title, maxTitleLen)
	in.Severity = cleanText(in.Severity, maxIDLen)
	in.Service = strings.ToLower(cleanText(in.Service, maxNameLen))
	in.URL = cleanURL(in.URL)
	in.CommitSHA = cleanSHA(in.CommitSHA)
	in.IssueKeys = cleanKeys(in.IssueKeys)
	if d := in.Deployment; d != nil {
		k := devops.DeploymentKey{PipelineID: cleanText(d.PipelineID, maxIDLen),
			EnvironmentID: cleanText(d.EnvironmentID, maxIDLen), SequenceNumber: d.SequenceNumber}
		in.Deployment = nil
		if k.PipelineID != "" && k.EnvironmentID != "" {
			in.Deployment = &k
		}
	}
	return in
}

// mergeIncident combines the stored incident with a newly delivered version:
// the newer event decides status and text; references and keys accumulate.
func mergeIncident(cur, next devops.Incident) devops.Incident {
	out := cur
	if devops.Advance(cur.Status, cur.UpdatedAt, next.Status, next.UpdatedAt) {
		out = next
		out.Title = firstSet(next.Title, cur.Title)
		out.Severity = firstSet(next.Severity, cur.Severity)
		out.Service = firstSet(next.Service, cur.Service)
		out.URL = firstSet(next.URL, cur.URL)
		if next.Status != devops.IncidentResolved {
			out.ResolvedAt = cur.ResolvedAt
			if next.Status == devops.IncidentOpen {
				out.ResolvedAt = next.ResolvedAt // reopened
			}
		}
	}
	out.OpenedAt = earlierOf(cur.OpenedAt, next.OpenedAt)
	out.UpdatedAt = laterOf(cur.UpdatedAt, next.UpdatedAt)
	if out.Deployment == nil {
		out.Deployment = cur.Deployment
	}
	out.CommitSHA = firstSet(out.CommitSHA, cur.CommitSHA)
	out.IssueKeys = cleanKeys(cur.IssueKeys, next.IssueKeys)
	return out
}

func (w *batchWriter) incident(raw devops.Incident) error {
	next := cleanIncident(raw)
	if next.SourceID == "" || !next.Status.Valid() {
		return errors.New("incident id and a valid status are required")
	}
	if next.OpenedAt.IsZero() {
		next.OpenedAt = w.now
	}
	if next.UpdatedAt.IsZero() {
		next.UpdatedAt = w.now
	}
	if next.Status == devops.IncidentResolved && next.ResolvedAt.IsZero() {
		next.ResolvedAt = next.UpdatedAt
	}
	id := IncidentID(w.src, next.SourceID)
	inserted, err := w.insertIfAbsent(`INSERT INTO incidents (tenant_id, id, source_id, `+incidentColumns+`,
			suspect_deployment_id, suspect_basis)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '')
		ON CONFLICT (tenant_id, id) DO NOTHING`, w.incidentArgs(id, next)...)
	if err != nil {
		return err
	}
	in := next
	if !inserted {
		cur, err := scanIncident(queryRow(w.tx, `SELECT `+incidentColumns+` FROM incidents
			WHERE tenant_id = ? AND id = ?`+w.forUpdate(), w.t.ID, id))
		if err != nil {
			return err
		}
		in = mergeIncident(*cur, next)
		err = w.tx.Exec(`UPDATE incidents SET (`+incidentColumns+`) =
			(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			WHERE tenant_id = ? AND id = ?`, append(w.incidentArgs(id, in)[3:], w.t.ID, id)...).Error
		if err != nil {
			return err
		}
	}
	suspect, basis, err := w.suspectDeployment(in)
	if err != nil {
		return err
	}
	err = w.tx.Exec(`UPDATE incidents SET suspect_deployment_id = ?, suspect_basis = ?
		WHERE tenant_id = ? AND id = ?`, suspect, basis, w.t.ID, id).Error
	if err != nil {
		return err
	}
	return w.setLinks(EntityIncident, id, in.IssueKeys)
}

func (w *batchWriter) incidentArgs(id string, in devops.Incident) []any {
	var ref devops.DeploymentKey
	if in.Deployment != nil {
		ref = *in.Deployment
	}
	return []any{w.t.ID, id, w.src, in.SourceID, in.Title, in.Severity, string(in.Status), in.Service, in.URL,
		ref.PipelineID, ref.EnvironmentID, ref.SequenceNumber, in.CommitSHA, keysText(in.IssueKeys),
		w.s.ts(in.OpenedAt), w.s.optTime(in.ResolvedAt), w.s.optTime(in.UpdatedAt)}
}

// suspectDeployment finds the deployment that most likely caused an
// incident: the one it names; else the first successful deployment that
// shipped the commit it names (production first); else the last successful
// production deployment of its service that finished before it opened.
func (w *batchWriter) suspectDeployment(in devops.Incident) (id, basis string, err error) {
	first := func(q string, args ...any) (string, error) {
		var found string
		err := queryRow(w.tx, q, args...).Scan(&found)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		return found, err
	}
	if k := in.Deployment; k != nil {
		// A deployment key does not name its source: prefer the incident's
		// own source (a generic source reporting both), then any.
		id, err := first(`SELECT id FROM deployments
			WHERE tenant_id = ? AND pipeline_id = ? AND environment_id = ? AND sequence_number = ?
			ORDER BY CASE WHEN source_id = ? THEN 0 ELSE 1 END, id LIMIT 1`,
			w.t.ID, k.PipelineID, k.EnvironmentID, k.SequenceNumber, w.src)
		if err != nil || id != "" {
			return id, SuspectExplicit, err
		}
	}
	if sha := in.CommitSHA; sha != "" {
		if len(sha) < 40 {
			if sha, err = w.resolveSHA(sha); err != nil {
				return "", "", err
			}
		}
		id, err := first(`SELECT d.id FROM deployment_commits dc JOIN deployments d
				ON d.tenant_id = dc.tenant_id AND d.id = dc.deployment_id
			WHERE dc.tenant_id = ? AND dc.sha = ? AND d.state = 'successful'
			ORDER BY CASE WHEN d.environment_type = 'production' THEN 0 ELSE 1 END, d.finished_at, d.id
			LIMIT 1`, w.t.ID, sha)
		if err != nil || id != "" {
			return id, SuspectCommit, err
		}
	}
	if in.Service != "" {
		id, err := first(`SELECT id FROM deployments
			WHERE tenant_id = ? AND service = ? AND environment_type = 'production' AND state = 'successful'
				AND finished_at <= ?
			ORDER BY finished_at DESC, id LIMIT 1`, w.t.ID, in.Service, w.s.ts(in.OpenedAt))
		if err != nil || id != "" {
			return id, SuspectService, err
		}
	}
	return "", "", nil
}

// Incident returns t's incident id (see IncidentID), or an error wrapping
// ErrNotFound.
func (s *Store) Incident(ctx context.Context, t *tenant.Tenant, id string) (*IncidentRecord, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: incident: %w", err)
	}
	rec := IncidentRecord{ID: id}
	in, err := scanIncident(queryRow(s.db.WithContext(ctx), `SELECT `+incidentColumns+`,
			source_id, suspect_deployment_id, suspect_basis
		FROM incidents WHERE tenant_id = ? AND id = ?`, t.ID, id),
		&rec.SourceID, &rec.SuspectDeploymentID, &rec.SuspectBasis)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: incident: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: incident: %w", err)
	}
	rec.Incident = *in
	return &rec, nil
}
