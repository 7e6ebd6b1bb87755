package ingest

import (
	"strconv"
	"strings"
	"time"

	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/keyline/keyline/app/devops"
)

// GitHub payload shapes: only the fields Keyline reads (devops-reference (c)).
type ghRepository struct {
	ID            int64  `json:"id"`
	FullName      string `json:"full_name"`
	HTMLURL       string `json:"html_url"`
	DefaultBranch string `json:"default_branch"`
}

type ghUser struct {
	Login    string `json:"login"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Username string `json:"username"`
}

type ghCommit struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	URL       string `json:"url"`
	Author    ghUser `json:"author"`
}

type ghPullRequest struct {
	ID             int64    `json:"id"`
	Number         int64    `json:"number"`
	State          string   `json:"state"`
	Title          string   `json:"title"`
	Body           string   `json:"body"`
	Draft          bool     `json:"draft"`
	Merged         bool     `json:"merged"`
	MergedAt       string   `json:"merged_at"`
	CreatedAt      string   `json:"created_at"`
	UpdatedAt      string   `json:"updated_at"`
	ClosedAt       string   `json:"closed_at"`
	HTMLURL        string   `json:"html_url"`
	MergeCommitSHA string   `json:"merge_commit_sha"`
	User           ghUser   `json:"user"`
	Reviewers      []ghUser `json:"requested_reviewers"`
	Head           struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

// ParseGitHub turns one GitHub webhook delivery into an Event. event is the
// X-GitHub-Event header.
func ParseGitHub(event string, body []byte) (*Event, error) {
	switch event {
	case "push":
		return githubPush(body)
	case "pull_request":
		return githubPullRequest(body)
	case "pull_request_review":
		return githubReview(body)
	case "workflow_run":
		return githubWorkflowRun(body)
	case "check_suite":
		return githubCheckSuite(body)
	case "deployment_status":
		return githubDeploymentStatus(body)
	case "create", "delete":
		return githubRefEvent(event, body)
	case "ping":
		return ignored(event, "ping: the webhook is set up"), nil
	case "":
		return nil, malformed("X-GitHub-Event header is missing")
	}
	return ignored(event, "Keyline does not use GitHub "+event+" events"), nil
}

func (r ghRepository) domain() (*devops.Repository, error) {
	if r.ID <= 0 || blank(r.FullName) {
		return nil, malformed("repository.id and repository.full_name are required")
	}
	return &devops.Repository{ID: strconv.FormatInt(r.ID, 10), Name: r.FullName, URL: r.HTMLURL, DefaultBranch: r.DefaultBranch}, nil
}

func (u ghUser) person() devops.Person {
	return devops.Person{Name: u.Name, Email: u.Email, Username: firstNonEmpty(u.Username, u.Login)}
}

// ghPush is a push event's payload.
type ghPush struct {
	Ref        string       `json:"ref"`
	Before     string       `json:"before"`
	After      string       `json:"after"`
	Created    bool         `json:"created"`
	Deleted    bool         `json:"deleted"`
	Forced     bool         `json:"forced"`
	Repository ghRepository `json:"repository"`
	Commits    []ghCommit   `json:"commits"`
}

// decodePush decodes a push payload, reporting JSON errors as ErrMalformed.
// Pushes are most of what Keyline receives, so they are decoded with
// go-json-experiment/json/v1: encoding/json's API and reading of the bytes
// on the engine proposed as encoding/json/v2, which decodes a push about
// two and a half times faster with a third of the allocations.
// TestPushDecodeMatchesEncodingJSON holds it to encoding/json's reading.
func decodePush(body []byte) (ghPush, error) {
	var p ghPush
	if err := jsonv1.Unmarshal(body, &p); err != nil {
		return p, malformed("body is not valid JSON of the expected shape: %v", err)
	}
	return p, nil
}

func githubPush(body []byte) (*Event, error) {
	p, err := decodePush(body)
	if err != nil {
		return nil, err
	}
	repo, err := p.Repository.domain()
	if err != nil {
		return nil, err
	}
	after, err := requireSHA("after", p.After)
	if err != nil {
		return nil, err
	}
	ev := &Event{Name: "push", Repository: repo}
	push := &devops.Push{RepositoryID: repo.ID, Ref: p.Ref, After: after, Created: p.Created, Deleted: p.Deleted, Forced: p.Forced, TotalCommits: len(p.Commits)}
	if devops.ValidCommitSHA(p.Before) && strings.Trim(p.Before, "0") != "" {
		push.Before = p.Before
	}
	if len(p.Commits) > 0 {
		ev.Commits = make([]devops.Commit, 0, len(p.Commits))
		push.CommitSHAs = make([]string, 0, len(p.Commits))
	}
	for _, c := range p.Commits {
		sha, err := requireSHA("commits[].id", c.ID)
		if err != nil {
			return nil, err
		}
		at, err := flexTime(c.Timestamp)
		if err != nil {
			return nil, err
		}
		ev.Commits = append(ev.Commits, devops.Commit{
			SHA: sha, RepositoryID: repo.ID, Message: c.Message, Author: c.Author.person(),
			AuthoredAt: at, URL: c.URL, IssueKeys: devops.ExtractIssueKeys(c.Message),
		})
		push.CommitSHAs = append(push.CommitSHAs, sha)
	}
	ev.Push = push
	if name, ok := devops.BranchOfRef(p.Ref); ok && !blank(name) && !p.Deleted {
		ev.Branches = append(ev.Branches, devops.Branch{
			RepositoryID: repo.ID, Name: name, URL: strings.TrimSuffix(repo.URL, "/") + "/tree/" + name,
			LastCommitSHA: after, IssueKeys: devops.ExtractIssueKeys(name),
		})
	}
	return ev, nil
}

// domain converts the pull request; reviews carry verdicts the payload's
// requested_reviewers list does not (a review event brings exactly one).
func (pr ghPullRequest) domain(repoID string, reviews ...devops.Reviewer) (devops.PullRequest, error) {
	if pr.ID <= 0 || pr.Number <= 0 {
		return devops.PullRequest{}, malformed("pull_request.id and number are required")
	}
	out := devops.PullRequest{
		ID: strconv.FormatInt(pr.ID, 10), RepositoryID: repoID, Number: pr.Number, Title: pr.Title,
		BodyExcerpt:  devops.Excerpt(pr.Body, devops.MaxExcerptLen),
		State:        devops.GitHubPullRequestState(pr.State, pr.Draft, pr.Merged),
		SourceBranch: pr.Head.Ref, DestinationBranch: pr.Base.Ref, Author: pr.User.person(),
		URL: pr.HTMLURL, IssueKeys: devops.ExtractIssueKeys(pr.Title, pr.Head.Ref, pr.Body),
	}
	if pr.Merged && devops.ValidCommitSHA(pr.MergeCommitSHA) {
		out.MergeCommitSHA = pr.MergeCommitSHA
	}
	if err := times([]*time.Time{&out.CreatedAt, &out.UpdatedAt, &out.MergedAt, &out.ClosedAt}, pr.CreatedAt, pr.UpdatedAt, pr.MergedAt, pr.ClosedAt); err != nil {
		return out, err
	}
	for _, r := range pr.Reviewers {
		out.Reviewers = append(out.Reviewers, devops.Reviewer{Person: r.person(), Approval: devops.ApprovalUnapproved})
	}
	out.Reviewers = append(out.Reviewers, reviews...)
	return out, nil
}

func githubPullRequest(body []byte) (*Event, error) {
	var p struct {
		Action      string        `json:"action"`
		PullRequest ghPullRequest `json:"pull_request"`
		Repository  ghRepository  `json:"repository"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	repo, err := p.Repository.domain()
	if err != nil {
		return nil, err
	}
	pr, err := p.PullRequest.domain(repo.ID)
	if err != nil {
		return nil, err
	}
	return &Event{Name: "pull_request", Repository: repo, PullRequests: []devops.PullRequest{pr}}, nil
}

func githubReview(body []byte) (*Event, error) {
	var p struct {
		Review struct {
			State string `json:"state"`
			User  ghUser `json:"user"`
		} `json:"review"`
		PullRequest ghPullRequest `json:"pull_request"`
		Repository  ghRepository  `json:"repository"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	repo, err := p.Repository.domain()
	if err != nil {
		return nil, err
	}
	login := firstNonEmpty(p.Review.User.Login, p.Review.User.Username)
	if login == "" {
		return nil, malformed("review.user.login is required")
	}
	pr, err := p.PullRequest.domain(repo.ID, devops.Reviewer{Person: devops.Person{Username: login}, Approval: devops.GitHubReviewApproval(p.Review.State)})
	if err != nil {
		return nil, err
	}
	return &Event{Name: "pull_request_review", Repository: repo, PullRequests: []devops.PullRequest{pr}}, nil
}

func githubWorkflowRun(body []byte) (*Event, error) {
	var p struct {
		Run struct {
			ID           int64    `json:"id"`
			Name         string   `json:"name"`
			WorkflowID   int64    `json:"workflow_id"`
			RunNumber    int64    `json:"run_number"`
			Status       string   `json:"status"`
			Conclusion   string   `json:"conclusion"`
			HeadBranch   string   `json:"head_branch"`
			HeadSHA      string   `json:"head_sha"`
			HeadCommit   ghCommit `json:"head_commit"`
			HTMLURL      string   `json:"html_url"`
			RunStartedAt string   `json:"run_started_at"`
			UpdatedAt    string   `json:"updated_at"`
			PullRequests []struct {
				Head struct {
					Ref string `json:"ref"`
				} `json:"head"`
			} `json:"pull_requests"`
		} `json:"workflow_run"`
		Repository ghRepository `json:"repository"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	repo, err := p.Repository.domain()
	if err != nil {
		return nil, err
	}
	r := p.Run
	if r.WorkflowID <= 0 || r.RunNumber <= 0 {
		return nil, malformed("workflow_run.workflow_id and run_number are required")
	}
	sha, err := requireSHA("workflow_run.head_sha", r.HeadSHA)
	if err != nil {
		return nil, err
	}
	b := devops.Build{
		PipelineID: repo.ID + "/" + strconv.FormatInt(r.WorkflowID, 10), PipelineName: r.Name, BuildNumber: r.RunNumber,
		State: devops.GitHubRunState(r.Status, r.Conclusion), RepositoryID: repo.ID, CommitSHA: sha, Ref: r.HeadBranch, URL: r.HTMLURL,
	}
	if err := times([]*time.Time{&b.StartedAt, &b.UpdatedAt}, r.RunStartedAt, r.UpdatedAt); err != nil {
		return nil, err
	}
	if b.State.Final() {
		b.FinishedAt = b.UpdatedAt
	}
	texts := []string{r.HeadBranch, r.HeadCommit.Message}
	for _, pr := range r.PullRequests {
		texts = append(texts, pr.Head.Ref)
	}
	b.IssueKeys = devops.ExtractIssueKeys(texts...)
	return &Event{Name: "workflow_run", Repository: repo, Builds: []devops.Build{b}}, nil
}

func githubCheckSuite(body []byte) (*Event, error) {
	var p struct {
		Suite struct {
			ID         int64    `json:"id"`
			HeadBranch string   `json:"head_branch"`
			HeadSHA    string   `json:"head_sha"`
			Status     string   `json:"status"`
			Conclusion string   `json:"conclusion"`
			CreatedAt  string   `json:"created_at"`
			UpdatedAt  string   `json:"updated_at"`
			HeadCommit ghCommit `json:"head_commit"`
			App        struct {
				Slug string `json:"slug"`
				Name string `json:"name"`
			} `json:"app"`
		} `json:"check_suite"`
		Repository ghRepository `json:"repository"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	s := p.Suite
	// GitHub Actions runs arrive as workflow_run; counting their check
	// suites too would show every run twice.
	if s.App.Slug == "github-actions" {
		return ignored("check_suite", "GitHub Actions check suites are recorded from workflow_run"), nil
	}
	repo, err := p.Repository.domain()
	if err != nil {
		return nil, err
	}
	if s.ID <= 0 || blank(s.App.Slug) {
		return nil, malformed("check_suite.id and app.slug are required")
	}
	sha, err := requireSHA("check_suite.head_sha", s.HeadSHA)
	if err != nil {
		return nil, err
	}
	b := devops.Build{
		PipelineID: repo.ID + "/" + s.App.Slug, PipelineName: firstNonEmpty(s.App.Name, s.App.Slug), BuildNumber: s.ID,
		State: devops.GitHubRunState(s.Status, s.Conclusion), RepositoryID: repo.ID, CommitSHA: sha, Ref: s.HeadBranch,
		URL:       strings.TrimSuffix(repo.URL, "/") + "/commit/" + sha + "/checks",
		IssueKeys: devops.ExtractIssueKeys(s.HeadBranch, s.HeadCommit.Message),
	}
	if err := times([]*time.Time{&b.StartedAt, &b.UpdatedAt}, s.CreatedAt, s.UpdatedAt); err != nil {
		return nil, err
	}
	if b.State.Final() {
		b.FinishedAt = b.UpdatedAt
	}
	return &Event{Name: "check_suite", Repository: repo, Builds: []devops.Build{b}}, nil
}

func githubDeploymentStatus(body []byte) (*Event, error) {
	var p struct {
		Status struct {
			ID             int64  `json:"id"`
			State          string `json:"state"`
			Environment    string `json:"environment"`
			EnvironmentURL string `json:"environment_url"`
			TargetURL      string `json:"target_url"`
			LogURL         string `json:"log_url"`
			CreatedAt      string `json:"created_at"`
			UpdatedAt      string `json:"updated_at"`
		} `json:"deployment_status"`
		Deployment struct {
			ID          int64  `json:"id"`
			SHA         string `json:"sha"`
			Ref         string `json:"ref"`
			Task        string `json:"task"`
			Environment string `json:"environment"`
			Payload     any    `json:"payload"`
			Production  bool   `json:"production_environment"`
			CreatedAt   string `json:"created_at"`
			URL         string `json:"url"`
		} `json:"deployment"`
		Repository ghRepository `json:"repository"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	repo, err := p.Repository.domain()
	if err != nil {
		return nil, err
	}
	d, s := p.Deployment, p.Status
	if d.ID <= 0 {
		return nil, malformed("deployment.id is required")
	}
	sha, err := requireSHA("deployment.sha", d.SHA)
	if err != nil {
		return nil, err
	}
	env := firstNonEmpty(s.Environment, d.Environment)
	if blank(env) {
		return nil, malformed("deployment.environment is required")
	}
	task := firstNonEmpty(d.Task, "deploy")
	out := devops.Deployment{
		PipelineID: repo.ID + "/" + task, PipelineName: repo.Name + " " + task,
		EnvironmentID: env, EnvironmentName: env, EnvironmentType: devops.GitHubEnvironmentType(d.Production),
		EnvironmentURL: s.EnvironmentURL, SequenceNumber: d.ID, State: devops.GitHubDeploymentState(s.State),
		RepositoryID: repo.ID, CommitSHA: sha, Ref: d.Ref, URL: firstNonEmpty(s.TargetURL, s.LogURL, repo.URL),
		IssueKeys: devops.ExtractIssueKeys(append([]string{d.Ref}, payloadIssueKeys(d.Payload)...)...),
	}
	if err := times([]*time.Time{&out.StartedAt, &out.UpdatedAt}, d.CreatedAt, firstNonEmpty(s.UpdatedAt, s.CreatedAt)); err != nil {
		return nil, err
	}
	if out.State.Final() {
		out.FinishedAt = out.UpdatedAt
	}
	return &Event{Name: "deployment_status", Repository: repo, Deployments: []devops.Deployment{out}}, nil
}

// payloadIssueKeys reads explicit keys from a deployment payload: GitHub lets
// the deployer attach any JSON, and {"issueKeys": [...]} is Keyline's
// documented convention for promotions that carry no new commits.
func payloadIssueKeys(payload any) []string {
	m, ok := payload.(map[string]any)
	if !ok {
		return nil
	}
	list, _ := m["issueKeys"].([]any)
	var out []string
	for i, v := range list {
		if i >= devops.MaxIssueKeysPerEntity {
			break
		}
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// githubRefEvent records branch creation and deletion; tags are not branches
// and are ignored.
func githubRefEvent(event string, body []byte) (*Event, error) {
	var p struct {
		Ref        string       `json:"ref"`
		RefType    string       `json:"ref_type"`
		Repository ghRepository `json:"repository"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	if p.RefType != "branch" {
		return ignored(event, "only branches are recorded"), nil
	}
	repo, err := p.Repository.domain()
	if err != nil {
		return nil, err
	}
	if blank(p.Ref) {
		return nil, malformed("ref is required")
	}
	return &Event{Name: event, Repository: repo, Branches: []devops.Branch{{
		RepositoryID: repo.ID, Name: p.Ref, URL: strings.TrimSuffix(repo.URL, "/") + "/tree/" + p.Ref,
		IssueKeys: devops.ExtractIssueKeys(p.Ref), Deleted: event == "delete",
	}}}, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
