package ingest

import (
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyline/keyline/app/devops"
)

type glProject struct {
	ID                int64  `json:"id"`
	PathWithNamespace string `json:"path_with_namespace"`
	WebURL            string `json:"web_url"`
	DefaultBranch     string `json:"default_branch"`
}

type glCommit struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	URL       string `json:"url"`
	Author    struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"author"`
}

func (p glProject) domain() (*devops.Repository, error) {
	if p.ID <= 0 || blank(p.PathWithNamespace) {
		return nil, malformed("project.id and project.path_with_namespace are required")
	}
	return &devops.Repository{ID: strconv.FormatInt(p.ID, 10), Name: p.PathWithNamespace, URL: p.WebURL, DefaultBranch: p.DefaultBranch}, nil
}

func (c glCommit) domain(repoID string) (devops.Commit, error) {
	sha, err := requireSHA("commit id", c.ID)
	if err != nil {
		return devops.Commit{}, err
	}
	at, err := flexTime(c.Timestamp)
	if err != nil {
		return devops.Commit{}, err
	}
	return devops.Commit{
		SHA: sha, RepositoryID: repoID, Message: c.Message, AuthoredAt: at, URL: c.URL,
		Author: devops.Person{Name: c.Author.Name, Email: c.Author.Email}, IssueKeys: devops.ExtractIssueKeys(c.Message),
	}, nil
}

// ParseGitLab turns one GitLab webhook delivery into an Event. event is the
// X-Gitlab-Event header ("Push Hook", …); the body's object_kind decides.
func ParseGitLab(event string, body []byte) (*Event, error) {
	var head struct {
		ObjectKind string `json:"object_kind"`
	}
	if err := decode(body, &head); err != nil {
		return nil, err
	}
	switch head.ObjectKind {
	case "push":
		return gitlabPush(body)
	case "merge_request":
		return gitlabMergeRequest(body)
	case "pipeline":
		return gitlabPipeline(body)
	case "deployment":
		return gitlabDeployment(body)
	case "":
		return nil, malformed("object_kind is missing")
	}
	return ignored(firstNonEmpty(event, head.ObjectKind), "Keyline does not use GitLab "+head.ObjectKind+" events"), nil
}

func gitlabPush(body []byte) (*Event, error) {
	var p struct {
		Ref               string     `json:"ref"`
		Before            string     `json:"before"`
		After             string     `json:"after"`
		Project           glProject  `json:"project"`
		Commits           []glCommit `json:"commits"`
		TotalCommitsCount int        `json:"total_commits_count"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	repo, err := p.Project.domain()
	if err != nil {
		return nil, err
	}
	after, err := requireSHA("after", p.After)
	if err != nil {
		return nil, err
	}
	ev := &Event{Name: "push", Repository: repo}
	deleted := strings.Trim(after, "0") == ""
	push := &devops.Push{RepositoryID: repo.ID, Ref: p.Ref, After: after, TotalCommits: max(p.TotalCommitsCount, len(p.Commits)), Deleted: deleted}
	if devops.ValidCommitSHA(p.Before) && strings.Trim(p.Before, "0") != "" {
		push.Before = p.Before
	} else {
		push.Created = true
	}
	for _, c := range p.Commits {
		dc, err := c.domain(repo.ID)
		if err != nil {
			return nil, err
		}
		ev.Commits = append(ev.Commits, dc)
	}
	// GitLab sends at most 20 commits and does not promise their order; the
	// chain needs oldest first.
	slices.SortStableFunc(ev.Commits, func(a, b devops.Commit) int { return a.AuthoredAt.Compare(b.AuthoredAt) })
	for _, c := range ev.Commits {
		push.CommitSHAs = append(push.CommitSHAs, c.SHA)
	}
	push.Truncated = p.TotalCommitsCount > len(p.Commits)
	ev.Push = push
	if name, ok := devops.BranchOfRef(p.Ref); ok && !blank(name) && !deleted {
		ev.Branches = []devops.Branch{{RepositoryID: repo.ID, Name: name, URL: strings.TrimSuffix(repo.URL, "/") + "/-/tree/" + name,
			LastCommitSHA: after, IssueKeys: devops.ExtractIssueKeys(name)}}
	}
	return ev, nil
}

func gitlabMergeRequest(body []byte) (*Event, error) {
	var p struct {
		User    struct{ Username, Name string } `json:"user"`
		Project glProject                       `json:"project"`
		Attrs   struct {
			ID             int64    `json:"id"`
			IID            int64    `json:"iid"`
			Title          string   `json:"title"`
			Description    string   `json:"description"`
			State          string   `json:"state"`
			Draft          bool     `json:"draft"`
			SourceBranch   string   `json:"source_branch"`
			TargetBranch   string   `json:"target_branch"`
			CreatedAt      string   `json:"created_at"`
			UpdatedAt      string   `json:"updated_at"`
			MergeCommitSHA string   `json:"merge_commit_sha"`
			URL            string   `json:"url"`
			AuthorID       int64    `json:"author_id"`
			LastCommit     glCommit `json:"last_commit"`
		} `json:"object_attributes"`
		Reviewers []struct {
			Username string `json:"username"`
			Name     string `json:"name"`
			State    string `json:"state"`
		} `json:"reviewers"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	repo, err := p.Project.domain()
	if err != nil {
		return nil, err
	}
	a := p.Attrs
	if a.ID <= 0 || a.IID <= 0 {
		return nil, malformed("object_attributes.id and iid are required")
	}
	pr := devops.PullRequest{
		ID: strconv.FormatInt(a.ID, 10), RepositoryID: repo.ID, Number: a.IID, Title: a.Title,
		BodyExcerpt: devops.Excerpt(a.Description, devops.MaxExcerptLen), State: devops.GitLabMergeRequestState(a.State, a.Draft),
		SourceBranch: a.SourceBranch, DestinationBranch: a.TargetBranch, URL: a.URL,
		IssueKeys: devops.ExtractIssueKeys(a.Title, a.SourceBranch, a.Description),
	}
	if err := times([]*time.Time{&pr.CreatedAt, &pr.UpdatedAt}, a.CreatedAt, a.UpdatedAt); err != nil {
		return nil, err
	}
	if pr.State == devops.PullRequestMerged {
		pr.MergedAt = pr.UpdatedAt
		if devops.ValidCommitSHA(a.MergeCommitSHA) {
			pr.MergeCommitSHA = a.MergeCommitSHA
		}
	}
	if pr.State == devops.PullRequestDeclined {
		pr.ClosedAt = pr.UpdatedAt
	}
	for _, r := range p.Reviewers {
		pr.Reviewers = append(pr.Reviewers, devops.Reviewer{Person: devops.Person{Name: r.Name, Username: r.Username}, Approval: devops.GitLabReviewerApproval(r.State)})
	}
	return &Event{Name: "merge_request", Repository: repo, PullRequests: []devops.PullRequest{pr}}, nil
}

func gitlabPipeline(body []byte) (*Event, error) {
	var p struct {
		Attrs struct {
			ID         int64  `json:"id"`
			IID        int64  `json:"iid"`
			Ref        string `json:"ref"`
			Tag        bool   `json:"tag"`
			SHA        string `json:"sha"`
			Status     string `json:"status"`
			CreatedAt  string `json:"created_at"`
			FinishedAt string `json:"finished_at"`
			URL        string `json:"url"`
		} `json:"object_attributes"`
		MergeRequest *struct {
			Title        string `json:"title"`
			SourceBranch string `json:"source_branch"`
		} `json:"merge_request"`
		Project glProject `json:"project"`
		Commit  glCommit  `json:"commit"`
		Builds  []struct {
			Status string `json:"status"`
		} `json:"builds"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	repo, err := p.Project.domain()
	if err != nil {
		return nil, err
	}
	a := p.Attrs
	if a.ID <= 0 {
		return nil, malformed("object_attributes.id is required")
	}
	sha, err := requireSHA("object_attributes.sha", a.SHA)
	if err != nil {
		return nil, err
	}
	b := devops.Build{
		PipelineID: repo.ID, PipelineName: repo.Name, BuildNumber: a.ID, State: devops.GitLabPipelineState(a.Status),
		RepositoryID: repo.ID, CommitSHA: sha, Ref: a.Ref, URL: firstNonEmpty(a.URL, strings.TrimSuffix(repo.URL, "/")+"/-/pipelines/"+strconv.FormatInt(a.ID, 10)),
	}
	if err := times([]*time.Time{&b.StartedAt, &b.FinishedAt}, a.CreatedAt, a.FinishedAt); err != nil {
		return nil, err
	}
	b.UpdatedAt = b.StartedAt
	if !b.FinishedAt.IsZero() {
		b.UpdatedAt = b.FinishedAt
	}
	// GitLab for Jira counts jobs as tests; so does Keyline.
	if len(p.Builds) > 0 {
		ts := &devops.TestSummary{Total: len(p.Builds)}
		for _, j := range p.Builds {
			switch j.Status {
			case "success":
				ts.Passed++
			case "failed":
				ts.Failed++
			case "skipped", "canceled", "manual":
				ts.Skipped++
			}
		}
		b.Tests = ts
	}
	texts := []string{a.Ref, p.Commit.Message}
	if p.MergeRequest != nil {
		texts = append(texts, p.MergeRequest.Title, p.MergeRequest.SourceBranch)
	}
	b.IssueKeys = devops.ExtractIssueKeys(texts...)
	return &Event{Name: "pipeline", Repository: repo, Builds: []devops.Build{b}}, nil
}

func gitlabDeployment(body []byte) (*Event, error) {
	var p struct {
		Status          string    `json:"status"`
		StatusChangedAt string    `json:"status_changed_at"`
		DeploymentID    int64     `json:"deployment_id"`
		DeployableURL   string    `json:"deployable_url"`
		Environment     string    `json:"environment"`
		EnvironmentTier string    `json:"environment_tier"`
		ExternalURL     string    `json:"environment_external_url"`
		Project         glProject `json:"project"`
		ShortSHA        string    `json:"short_sha"`
		CommitURL       string    `json:"commit_url"`
		CommitTitle     string    `json:"commit_title"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	repo, err := p.Project.domain()
	if err != nil {
		return nil, err
	}
	if p.DeploymentID <= 0 || blank(p.Environment) {
		return nil, malformed("deployment_id and environment are required")
	}
	// The hook carries only a short sha; the full one is the last segment of commit_url.
	sha := p.ShortSHA
	if u, err := url.Parse(p.CommitURL); err == nil && devops.ValidCommitSHA(path.Base(u.Path)) {
		sha = path.Base(u.Path)
	}
	if sha, err = requireSHA("commit_url", sha); err != nil {
		return nil, err
	}
	d := devops.Deployment{
		PipelineID: repo.ID, PipelineName: repo.Name, EnvironmentID: p.Environment, EnvironmentName: p.Environment,
		EnvironmentType: devops.GitLabEnvironmentType(p.EnvironmentTier), EnvironmentURL: p.ExternalURL,
		SequenceNumber: p.DeploymentID, State: devops.GitLabDeploymentState(p.Status), RepositoryID: repo.ID, CommitSHA: sha,
		URL:       firstNonEmpty(p.DeployableURL, strings.TrimSuffix(repo.URL, "/")+"/-/environments"),
		IssueKeys: devops.ExtractIssueKeys(p.CommitTitle),
	}
	if err := times([]*time.Time{&d.UpdatedAt}, p.StatusChangedAt); err != nil {
		return nil, err
	}
	if d.State.Final() {
		d.FinishedAt = d.UpdatedAt
	}
	return &Event{Name: "deployment", Repository: repo, Deployments: []devops.Deployment{d}}, nil
}
