package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/keyline/keyline/app/devops"
)

// Generic entity kinds: the path segment after a generic source's URL.
const (
	GenericBuild      = "builds"
	GenericDeployment = "deployments"
	GenericIncident   = "incidents"
)

// maxGenericText bounds free-text fields of the generic API.
const maxGenericText = 255

type genericCommit struct {
	SHA        string `json:"sha"`
	Repository string `json:"repository"`
}

// GenericBuildPayload is the body of POST <source URL>/builds. Field names
// follow Jira's builds API where it has one; see docs/ingest.md.
type GenericBuildPayload struct {
	PipelineID           string              `json:"pipelineId"`
	BuildNumber          int64               `json:"buildNumber"`
	UpdateSequenceNumber int64               `json:"updateSequenceNumber"`
	DisplayName          string              `json:"displayName"`
	URL                  string              `json:"url"`
	State                string              `json:"state"`
	LastUpdated          string              `json:"lastUpdated"`
	StartedAt            string              `json:"startedAt"`
	IssueKeys            []string            `json:"issueKeys"`
	Commit               *genericCommit      `json:"commit"`
	Ref                  string              `json:"ref"`
	TestInfo             *devops.TestSummary `json:"testInfo"`
}

// GenericDeploymentPayload is the body of POST <source URL>/deployments.
type GenericDeploymentPayload struct {
	Pipeline struct {
		ID          string `json:"id"`
		DisplayName string `json:"displayName"`
		URL         string `json:"url"`
	} `json:"pipeline"`
	Environment struct {
		ID          string `json:"id"`
		DisplayName string `json:"displayName"`
		Type        string `json:"type"`
		URL         string `json:"url"`
	} `json:"environment"`
	DeploymentSequenceNumber int64           `json:"deploymentSequenceNumber"`
	UpdateSequenceNumber     int64           `json:"updateSequenceNumber"`
	State                    string          `json:"state"`
	DisplayName              string          `json:"displayName"`
	URL                      string          `json:"url"`
	LastUpdated              string          `json:"lastUpdated"`
	StartedAt                string          `json:"startedAt"`
	Service                  string          `json:"service"`
	Ref                      string          `json:"ref"`
	IssueKeys                []string        `json:"issueKeys"`
	Commits                  []genericCommit `json:"commits"`
}

// GenericIncidentPayload is the body of POST <source URL>/incidents.
type GenericIncidentPayload struct {
	ID           string                `json:"id"`
	Summary      string                `json:"summary"`
	Severity     string                `json:"severity"`
	Status       string                `json:"status"`
	CreatedDate  string                `json:"createdDate"`
	ResolvedDate string                `json:"resolvedDate"`
	LastUpdated  string                `json:"lastUpdated"`
	URL          string                `json:"url"`
	Service      string                `json:"service"`
	IssueKeys    []string              `json:"issueKeys"`
	Commit       string                `json:"commit"`
	Deployment   *devops.DeploymentKey `json:"deployment"`
}

// strict decodes a generic payload, refusing unknown fields: this is
// Keyline's own API, and a misspelt field should fail loudly, not vanish.
func strict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed("%v", err)
	}
	if dec.More() {
		return malformed("body holds more than one JSON value")
	}
	return nil
}

// explicitKeys validates keys a caller names itself: bad ones are an error,
// not silently dropped, so a pipeline learns of its mistake.
func explicitKeys(keys []string) ([]string, error) {
	if len(keys) > devops.MaxIssueKeysPerEntity {
		return nil, malformed("at most %d issueKeys", devops.MaxIssueKeysPerEntity)
	}
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		k = strings.ToUpper(strings.TrimSpace(k))
		if !devops.ValidIssueKey(k) {
			return nil, malformed("%q is not a Jira issue key", truncateForError(k))
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

func checkText(field, s string) error {
	if len(s) > maxGenericText {
		return malformed("%s is longer than %d characters", field, maxGenericText)
	}
	return nil
}

// ParseGeneric parses a generic-API delivery of one entity kind.
func ParseGeneric(kind string, body []byte) (*Event, error) {
	switch kind {
	case GenericBuild:
		return genericBuild(body)
	case GenericDeployment:
		return genericDeployment(body)
	case GenericIncident:
		return genericIncident(body)
	}
	return nil, malformed("unknown entity %q: use builds, deployments or incidents", truncateForError(kind))
}

func genericBuild(body []byte) (*Event, error) {
	var p GenericBuildPayload
	if err := strict(body, &p); err != nil {
		return nil, err
	}
	if blank(p.PipelineID) || p.BuildNumber <= 0 {
		return nil, malformed("pipelineId and a positive buildNumber are required")
	}
	state, ok := devops.ParseBuildState(p.State)
	if !ok {
		return nil, malformed("state must be one of pending, in_progress, successful, failed, cancelled, unknown")
	}
	for f, v := range map[string]string{"pipelineId": p.PipelineID, "displayName": p.DisplayName, "ref": p.Ref} {
		if err := checkText(f, v); err != nil {
			return nil, err
		}
	}
	if ts := p.TestInfo; ts != nil && (ts.Total < 0 || ts.Passed < 0 || ts.Failed < 0 || ts.Skipped < 0) {
		return nil, malformed("testInfo counts must not be negative")
	}
	keys, err := explicitKeys(p.IssueKeys)
	if err != nil {
		return nil, err
	}
	b := devops.Build{PipelineID: p.PipelineID, PipelineName: firstNonEmpty(p.DisplayName, p.PipelineID), BuildNumber: p.BuildNumber,
		State: state, Ref: p.Ref, URL: p.URL, Tests: p.TestInfo}
	if p.Commit != nil {
		if b.CommitSHA, err = requireSHA("commit.sha", strings.ToLower(p.Commit.SHA)); err != nil {
			return nil, err
		}
		b.RepositoryID = p.Commit.Repository
	}
	if err := times([]*time.Time{&b.UpdatedAt, &b.StartedAt}, p.LastUpdated, p.StartedAt); err != nil {
		return nil, err
	}
	if b.UpdatedAt.IsZero() {
		return nil, malformed("lastUpdated is required")
	}
	if state.Final() {
		b.FinishedAt = b.UpdatedAt
	}
	b.IssueKeys = mergeKeys(keys, devops.ExtractIssueKeys(p.Ref))
	return &Event{Name: "build", Builds: []devops.Build{b}}, nil
}

func genericDeployment(body []byte) (*Event, error) {
	var p GenericDeploymentPayload
	if err := strict(body, &p); err != nil {
		return nil, err
	}
	if blank(p.Pipeline.ID) || blank(p.Environment.ID) || p.DeploymentSequenceNumber <= 0 {
		return nil, malformed("pipeline.id, environment.id and a positive deploymentSequenceNumber are required")
	}
	state, ok := devops.ParseDeploymentState(p.State)
	if !ok {
		return nil, malformed("state must be one of unknown, pending, in_progress, cancelled, failed, rolled_back, successful")
	}
	envType := devops.EnvironmentUnmapped
	if p.Environment.Type != "" {
		if envType, ok = devops.ParseEnvironmentType(p.Environment.Type); !ok {
			return nil, malformed("environment.type must be one of unmapped, development, testing, staging, production")
		}
	}
	for f, v := range map[string]string{"pipeline.id": p.Pipeline.ID, "environment.id": p.Environment.ID, "environment.displayName": p.Environment.DisplayName, "service": p.Service, "ref": p.Ref} {
		if err := checkText(f, v); err != nil {
			return nil, err
		}
	}
	keys, err := explicitKeys(p.IssueKeys)
	if err != nil {
		return nil, err
	}
	d := devops.Deployment{
		PipelineID: p.Pipeline.ID, PipelineName: firstNonEmpty(p.Pipeline.DisplayName, p.Pipeline.ID),
		EnvironmentID: p.Environment.ID, EnvironmentName: firstNonEmpty(p.Environment.DisplayName, p.Environment.ID),
		EnvironmentType: envType, EnvironmentURL: p.Environment.URL, SequenceNumber: p.DeploymentSequenceNumber, State: state,
		Service: p.Service, Ref: p.Ref, URL: firstNonEmpty(p.URL, p.Pipeline.URL),
	}
	if len(p.Commits) > 1 {
		return nil, malformed("one deployed commit per deployment (commits holds %d)", len(p.Commits))
	}
	if len(p.Commits) == 1 {
		if d.CommitSHA, err = requireSHA("commits[0].sha", strings.ToLower(p.Commits[0].SHA)); err != nil {
			return nil, err
		}
		d.RepositoryID = p.Commits[0].Repository
	}
	if err := times([]*time.Time{&d.UpdatedAt, &d.StartedAt}, p.LastUpdated, p.StartedAt); err != nil {
		return nil, err
	}
	if d.UpdatedAt.IsZero() {
		return nil, malformed("lastUpdated is required")
	}
	if state.Final() {
		d.FinishedAt = d.UpdatedAt
	}
	d.IssueKeys = mergeKeys(keys, devops.ExtractIssueKeys(p.Ref))
	return &Event{Name: "deployment", Deployments: []devops.Deployment{d}}, nil
}

func genericIncident(body []byte) (*Event, error) {
	var p GenericIncidentPayload
	if err := strict(body, &p); err != nil {
		return nil, err
	}
	if blank(p.ID) {
		return nil, malformed("id is required")
	}
	status, ok := devops.ParseIncidentStatus(p.Status)
	if !ok {
		return nil, malformed("status must be one of open, resolved, unknown")
	}
	for f, v := range map[string]string{"id": p.ID, "summary": p.Summary, "severity": p.Severity, "service": p.Service} {
		if err := checkText(f, v); err != nil {
			return nil, err
		}
	}
	keys, err := explicitKeys(p.IssueKeys)
	if err != nil {
		return nil, err
	}
	in := devops.Incident{SourceID: p.ID, Title: p.Summary, Severity: p.Severity, Status: status, Service: p.Service, URL: p.URL,
		IssueKeys: keys, Deployment: p.Deployment}
	if p.Commit != "" {
		if in.CommitSHA, err = requireSHA("commit", strings.ToLower(p.Commit)); err != nil {
			return nil, err
		}
	}
	if err := times([]*time.Time{&in.OpenedAt, &in.ResolvedAt, &in.UpdatedAt}, p.CreatedDate, p.ResolvedDate, p.LastUpdated); err != nil {
		return nil, err
	}
	if in.OpenedAt.IsZero() {
		return nil, malformed("createdDate is required")
	}
	if in.UpdatedAt.IsZero() {
		in.UpdatedAt = in.OpenedAt
		if !in.ResolvedAt.IsZero() {
			in.UpdatedAt = in.ResolvedAt
		}
	}
	if d := p.Deployment; d != nil && (blank(d.PipelineID) || blank(d.EnvironmentID) || d.SequenceNumber <= 0) {
		return nil, malformed("deployment needs pipelineId, environmentId and deploymentSequenceNumber")
	}
	return &Event{Name: "incident", Incidents: []devops.Incident{in}}, nil
}

func mergeKeys(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range append(append([]string{}, a...), b...) {
		if !seen[k] && len(out) < devops.MaxIssueKeysPerEntity {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
