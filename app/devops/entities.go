package devops

import (
	"strings"
	"time"
	"unicode/utf8"
)

// The entities below are what Keyline stores from webhooks and the generic
// API, independent of any provider's payload shape. Ids are the provider's
// own, as strings (GitHub's numbers, GitLab's, Bitbucket's {uuid}s), unique
// within a source. JSON names follow Jira's DevOps APIs where one exists.
// Times are UTC; a zero time means "not known" and is left out of JSON.

// Person is a commit author, pull request author or reviewer as the provider
// names them. Email links them to an Atlassian account when it matches.
type Person struct {
	Name     string `json:"name,omitempty"`
	Email    string `json:"email,omitempty"`
	Username string `json:"username,omitempty"`
}

// Repository is a source code repository.
type Repository struct {
	ID            string `json:"id"`
	Name          string `json:"name"` // full name: "org/repo", "group/sub/project"
	URL           string `json:"url,omitempty"`
	DefaultBranch string `json:"defaultBranch,omitempty"`
}

// Commit is one commit. Message is kept whole; the store and the Jira client
// shorten it where they must.
type Commit struct {
	SHA          string    `json:"hash"`
	RepositoryID string    `json:"repositoryId"`
	Message      string    `json:"message"`
	Author       Person    `json:"author"`
	AuthoredAt   time.Time `json:"authorTimestamp,omitzero"`
	URL          string    `json:"url,omitempty"`
	Merge        bool      `json:"merge,omitempty"` // more than one parent, when the provider says
	IssueKeys    []string  `json:"issueKeys,omitempty"`
}

// Push is one push to a ref: the commits it added, oldest first, between
// Before and After. Pushes are what let a deployment's commit range be known
// without asking the provider. Providers cap the commits they send (GitLab
// 20, Bitbucket 5); Truncated says the list is incomplete rather than
// guessing the rest.
type Push struct {
	RepositoryID string    `json:"repositoryId"`
	Ref          string    `json:"ref"` // refs/heads/main, refs/tags/v1
	Before       string    `json:"before,omitempty"`
	After        string    `json:"after"`
	CommitSHAs   []string  `json:"commits"`
	TotalCommits int       `json:"totalCommits,omitempty"` // as the provider counts them, when it does
	Truncated    bool      `json:"truncated,omitempty"`
	Forced       bool      `json:"forced,omitempty"`
	Created      bool      `json:"created,omitempty"`
	Deleted      bool      `json:"deleted,omitempty"`
	PushedAt     time.Time `json:"pushedAt,omitzero"`
}

// Branch is a branch of a repository.
type Branch struct {
	RepositoryID  string    `json:"repositoryId"`
	Name          string    `json:"name"`
	URL           string    `json:"url,omitempty"`
	LastCommitSHA string    `json:"lastCommit,omitempty"`
	UpdatedAt     time.Time `json:"lastUpdated,omitzero"`
	IssueKeys     []string  `json:"issueKeys,omitempty"`
	// Deleted says the branch was deleted; the store keeps the row so links
	// to it still explain where a commit came from.
	Deleted bool `json:"deleted,omitempty"`
	// FirstCommitAt is when the earliest commit pushed to the branch was
	// authored, as far as Keyline saw: where a pull request from the branch
	// began, even after a squash merge hides its commits from the trunk.
	FirstCommitAt time.Time `json:"firstCommitAt,omitzero"`
}

// Reviewer is a pull request reviewer and their verdict.
type Reviewer struct {
	Person
	Approval ApprovalStatus `json:"approvalStatus"`
}

// PullRequest is a pull request (GitLab: merge request).
type PullRequest struct {
	ID                string           `json:"id"`
	RepositoryID      string           `json:"repositoryId"`
	Number            int64            `json:"number"`
	Title             string           `json:"title"`
	BodyExcerpt       string           `json:"body,omitempty"` // see Excerpt
	State             PullRequestState `json:"status"`
	SourceBranch      string           `json:"sourceBranch"`
	DestinationBranch string           `json:"destinationBranch"`
	Author            Person           `json:"author"`
	Reviewers         []Reviewer       `json:"reviewers,omitempty"`
	CreatedAt         time.Time        `json:"createdAt,omitzero"`
	UpdatedAt         time.Time        `json:"lastUpdate,omitzero"`
	MergedAt          time.Time        `json:"mergedAt,omitzero"`
	ClosedAt          time.Time        `json:"closedAt,omitzero"`
	URL               string           `json:"url,omitempty"`
	MergeCommitSHA    string           `json:"mergeCommit,omitempty"`
	IssueKeys         []string         `json:"issueKeys,omitempty"`
}

// TestSummary counts a build's tests (GitLab: jobs).
type TestSummary struct {
	Total   int `json:"totalNumber"`
	Passed  int `json:"numberPassed"`
	Failed  int `json:"numberFailed"`
	Skipped int `json:"numberSkipped"`
}

// Build is one run of a CI pipeline.
type Build struct {
	PipelineID   string       `json:"pipelineId"`
	PipelineName string       `json:"pipelineName,omitempty"`
	BuildNumber  int64        `json:"buildNumber"`
	State        BuildState   `json:"state"`
	RepositoryID string       `json:"repositoryId,omitempty"`
	CommitSHA    string       `json:"commit,omitempty"`
	Ref          string       `json:"ref,omitempty"`
	URL          string       `json:"url,omitempty"`
	StartedAt    time.Time    `json:"startedAt,omitzero"`
	FinishedAt   time.Time    `json:"finishedAt,omitzero"`
	UpdatedAt    time.Time    `json:"lastUpdated,omitzero"`
	Tests        *TestSummary `json:"testInfo,omitempty"`
	IssueKeys    []string     `json:"issueKeys,omitempty"`
}

// DeploymentKey identifies a deployment as Jira does: a pipeline, an
// environment and a sequence number increasing within them.
type DeploymentKey struct {
	PipelineID     string `json:"pipelineId"`
	EnvironmentID  string `json:"environmentId"`
	SequenceNumber int64  `json:"deploymentSequenceNumber"`
}

// Deployment is one deployment of a commit to an environment.
type Deployment struct {
	PipelineID       string          `json:"pipelineId"`
	PipelineName     string          `json:"pipelineName,omitempty"`
	EnvironmentID    string          `json:"environmentId"`
	EnvironmentName  string          `json:"environmentName"`
	EnvironmentType  EnvironmentType `json:"environmentType"`
	EnvironmentBasis Basis           `json:"environmentTypeBasis"` // why it has that type
	EnvironmentURL   string          `json:"environmentUrl,omitempty"`
	SequenceNumber   int64           `json:"deploymentSequenceNumber"`
	State            DeploymentState `json:"state"`
	RepositoryID     string          `json:"repositoryId,omitempty"`
	CommitSHA        string          `json:"commit,omitempty"`
	Ref              string          `json:"ref,omitempty"`
	Service          string          `json:"service,omitempty"`
	URL              string          `json:"url,omitempty"`
	StartedAt        time.Time       `json:"startedAt,omitzero"`
	FinishedAt       time.Time       `json:"finishedAt,omitzero"`
	UpdatedAt        time.Time       `json:"lastUpdated,omitzero"`
	// IssueKeys are the keys the deployment names itself (a generic payload's
	// issueKeys, its ref); keys reached through its commits are derived from
	// the stored commit range, not kept here.
	IssueKeys []string `json:"issueKeys,omitempty"`
}

// Key returns the deployment's identity.
func (d Deployment) Key() DeploymentKey {
	return DeploymentKey{PipelineID: d.PipelineID, EnvironmentID: d.EnvironmentID, SequenceNumber: d.SequenceNumber}
}

// Incident is an incident from PagerDuty, Opsgenie or the generic API.
// Deployment and CommitSHA are explicit references to what caused it; without
// them the store links the last successful production deployment of Service
// before OpenedAt.
type Incident struct {
	SourceID   string         `json:"id"` // the incident tool's id
	Title      string         `json:"summary"`
	Severity   string         `json:"severity,omitempty"` // as the tool says: P1, high, SEV2
	Status     IncidentStatus `json:"status"`
	Service    string         `json:"service,omitempty"`
	URL        string         `json:"url,omitempty"`
	OpenedAt   time.Time      `json:"createdDate,omitzero"`
	ResolvedAt time.Time      `json:"resolvedDate,omitzero"`
	UpdatedAt  time.Time      `json:"lastUpdated,omitzero"`
	Deployment *DeploymentKey `json:"deployment,omitempty"`
	CommitSHA  string         `json:"commit,omitempty"`
	IssueKeys  []string       `json:"issueKeys,omitempty"`
}

// Batch is what one delivery reports: the entities a parser found in it, in
// Keyline's terms. The store records a batch in one transaction.
type Batch struct {
	Repository   *Repository
	Push         *Push
	Commits      []Commit
	Branches     []Branch
	PullRequests []PullRequest
	Builds       []Build
	Deployments  []Deployment
	Incidents    []Incident
}

// MaxExcerptLen is the length, in bytes, to which Excerpt shortens text such
// as pull request bodies: enough for a summary, not a copy of the document.
const MaxExcerptLen = 1024

// Excerpt returns s shortened to at most n bytes without splitting a UTF-8
// character, with "…" at the end when anything was cut. Keys are extracted
// from the whole text before it is shortened.
func Excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	if n < len(ellipsis) {
		return ""
	}
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimRight(s[:cut], " \t\r\n") + ellipsis
}

// BranchOfRef returns the branch named by a Git ref ("refs/heads/x" is "x")
// and whether ref names a branch. A bare name is taken as a branch name, as
// GitHub's workflow_run head_branch and GitLab's ref are.
func BranchOfRef(ref string) (string, bool) {
	if name, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return name, name != ""
	}
	if strings.HasPrefix(ref, "refs/") || ref == "" {
		return "", false
	}
	return ref, true
}

// ValidCommitSHA reports whether s is a full or abbreviated commit hash:
// 7 to 64 lower-case hex digits (64 for SHA-256 repositories).
func ValidCommitSHA(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// RootCauseCommit returns the commit named by a "root cause: <sha>" line in
// an incident's text (the Four Keys convention), lower-cased, or "".
func RootCauseCommit(text string) string {
	const marker = "root cause:"
	for rest := text; ; {
		i := indexFold(rest, marker)
		if i < 0 {
			return ""
		}
		rest = rest[i+len(marker):]
		word := strings.TrimLeft(rest, " \t")
		end := 0
		for end < len(word) && isASCIIAlnum(word[end]) {
			end++
		}
		if sha := strings.ToLower(word[:end]); ValidCommitSHA(sha) {
			return sha
		}
	}
}

// indexFold is strings.Index without regard to ASCII case; marker must be
// lower-case ASCII.
func indexFold(s, marker string) int {
	for i := 0; i+len(marker) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(marker)], marker) {
			return i
		}
	}
	return -1
}
