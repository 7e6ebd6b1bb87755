package ingest

import (
	"net/mail"
	"strings"
	"time"

	"github.com/keyline/keyline/app/devops"
)

type bbRepository struct {
	UUID     string `json:"uuid"`
	FullName string `json:"full_name"`
	Links    struct {
		HTML struct {
			Href string `json:"href"`
		} `json:"html"`
	} `json:"links"`
	MainBranch struct {
		Name string `json:"name"`
	} `json:"mainbranch"`
}

func (r bbRepository) domain() (*devops.Repository, error) {
	if blank(r.UUID) || blank(r.FullName) {
		return nil, malformed("repository.uuid and repository.full_name are required")
	}
	return &devops.Repository{ID: r.UUID, Name: r.FullName, URL: r.Links.HTML.Href, DefaultBranch: r.MainBranch.Name}, nil
}

type bbCommit struct {
	Hash    string `json:"hash"`
	Message string `json:"message"`
	Date    string `json:"date"`
	Author  struct {
		Raw string `json:"raw"`
	} `json:"author"`
	Links struct {
		HTML struct {
			Href string `json:"href"`
		} `json:"html"`
	} `json:"links"`
}

// person reads Bitbucket's "Name <email>" author string.
func bbPerson(raw string) devops.Person {
	if a, err := mail.ParseAddress(raw); err == nil {
		return devops.Person{Name: a.Name, Email: a.Address}
	}
	return devops.Person{Name: strings.TrimSpace(raw)}
}

// ParseBitbucket turns one Bitbucket Cloud webhook delivery into an Event.
// event is the X-Event-Key header.
func ParseBitbucket(event string, body []byte) (*Event, error) {
	switch {
	case event == "repo:push":
		return bitbucketPush(body)
	case strings.HasPrefix(event, "pullrequest:"):
		return bitbucketPullRequest(event, body)
	case event == "repo:commit_status_created" || event == "repo:commit_status_updated":
		return bitbucketCommitStatus(event, body)
	case event == "":
		return nil, malformed("X-Event-Key header is missing")
	}
	return ignored(event, "Keyline does not use Bitbucket "+event+" events"), nil
}

func bitbucketPush(body []byte) (*Event, error) {
	var p struct {
		Repository bbRepository `json:"repository"`
		Push       struct {
			Changes []struct {
				New *struct {
					Type   string   `json:"type"`
					Name   string   `json:"name"`
					Target bbCommit `json:"target"`
				} `json:"new"`
				Old *struct {
					Target struct {
						Hash string `json:"hash"`
					} `json:"target"`
				} `json:"old"`
				Created   bool       `json:"created"`
				Closed    bool       `json:"closed"`
				Forced    bool       `json:"forced"`
				Truncated bool       `json:"truncated"`
				Commits   []bbCommit `json:"commits"`
			} `json:"changes"`
		} `json:"push"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	repo, err := p.Repository.domain()
	if err != nil {
		return nil, err
	}
	ev := &Event{Name: "repo:push", Repository: repo}
	// One delivery may carry several ref changes; Keyline records the first
	// branch change as the push and the commits of all of them.
	for _, ch := range p.Push.Changes {
		if ch.New == nil || ch.New.Type != "branch" {
			continue
		}
		if blank(ch.New.Name) {
			return nil, malformed("push.changes[].new.name is required for a branch")
		}
		after, err := requireSHA("push.changes[].new.target.hash", ch.New.Target.Hash)
		if err != nil {
			return nil, err
		}
		push := &devops.Push{RepositoryID: repo.ID, Ref: "refs/heads/" + ch.New.Name, After: after, Created: ch.Created, Forced: ch.Forced, Truncated: ch.Truncated}
		if ch.Old != nil && devops.ValidCommitSHA(ch.Old.Target.Hash) {
			push.Before = ch.Old.Target.Hash
		}
		// Bitbucket lists commits newest first; the chain needs oldest first.
		for i := len(ch.Commits) - 1; i >= 0; i-- {
			c := ch.Commits[i]
			sha, err := requireSHA("commits[].hash", c.Hash)
			if err != nil {
				return nil, err
			}
			at, err := flexTime(c.Date)
			if err != nil {
				return nil, err
			}
			ev.Commits = append(ev.Commits, devops.Commit{SHA: sha, RepositoryID: repo.ID, Message: c.Message, Author: bbPerson(c.Author.Raw),
				AuthoredAt: at, URL: c.Links.HTML.Href, IssueKeys: devops.ExtractIssueKeys(c.Message)})
			push.CommitSHAs = append(push.CommitSHAs, sha)
		}
		push.TotalCommits = len(push.CommitSHAs)
		if ev.Push == nil {
			ev.Push = push
		}
		ev.Branches = append(ev.Branches, devops.Branch{RepositoryID: repo.ID, Name: ch.New.Name,
			URL: strings.TrimSuffix(repo.URL, "/") + "/branch/" + ch.New.Name, LastCommitSHA: after, IssueKeys: devops.ExtractIssueKeys(ch.New.Name)})
	}
	if ev.Push == nil {
		return ignored("repo:push", "no branch was updated (tags and deletions are not recorded)"), nil
	}
	return ev, nil
}

func bitbucketPullRequest(event string, body []byte) (*Event, error) {
	var p struct {
		Repository  bbRepository `json:"repository"`
		PullRequest struct {
			ID          int64  `json:"id"`
			Title       string `json:"title"`
			Description string `json:"description"`
			State       string `json:"state"`
			Draft       bool   `json:"draft"`
			Source      struct {
				Branch struct{ Name string } `json:"branch"`
			} `json:"source"`
			Destination struct {
				Branch struct{ Name string } `json:"branch"`
			} `json:"destination"`
			MergeCommit *struct {
				Hash string `json:"hash"`
			} `json:"merge_commit"`
			CreatedOn string `json:"created_on"`
			UpdatedOn string `json:"updated_on"`
			Author    struct {
				DisplayName string `json:"display_name"`
			} `json:"author"`
			Participants []struct {
				Role     string `json:"role"`
				Approved bool   `json:"approved"`
				State    string `json:"state"`
				User     struct {
					DisplayName string `json:"display_name"`
				} `json:"user"`
			} `json:"participants"`
			Links struct {
				HTML struct{ Href string } `json:"html"`
			} `json:"links"`
		} `json:"pullrequest"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	repo, err := p.Repository.domain()
	if err != nil {
		return nil, err
	}
	r := p.PullRequest
	if r.ID <= 0 {
		return nil, malformed("pullrequest.id is required")
	}
	pr := devops.PullRequest{
		ID: repo.ID + "#" + itoa(r.ID), RepositoryID: repo.ID, Number: r.ID, Title: r.Title,
		BodyExcerpt: devops.Excerpt(r.Description, devops.MaxExcerptLen), State: devops.BitbucketPullRequestState(r.State, r.Draft),
		SourceBranch: r.Source.Branch.Name, DestinationBranch: r.Destination.Branch.Name,
		Author: devops.Person{Name: r.Author.DisplayName}, URL: r.Links.HTML.Href,
		IssueKeys: devops.ExtractIssueKeys(r.Title, r.Source.Branch.Name, r.Description),
	}
	if err := times([]*time.Time{&pr.CreatedAt, &pr.UpdatedAt}, r.CreatedOn, r.UpdatedOn); err != nil {
		return nil, err
	}
	switch pr.State {
	case devops.PullRequestMerged:
		pr.MergedAt = pr.UpdatedAt
		if r.MergeCommit != nil && devops.ValidCommitSHA(r.MergeCommit.Hash) {
			pr.MergeCommitSHA = r.MergeCommit.Hash
		}
	case devops.PullRequestDeclined:
		pr.ClosedAt = pr.UpdatedAt
	}
	for _, pt := range r.Participants {
		if pt.Role != "REVIEWER" && !pt.Approved {
			continue
		}
		pr.Reviewers = append(pr.Reviewers, devops.Reviewer{Person: devops.Person{Name: pt.User.DisplayName}, Approval: devops.BitbucketParticipantApproval(pt.Approved, pt.State)})
	}
	return &Event{Name: event, Repository: repo, PullRequests: []devops.PullRequest{pr}}, nil
}

func bitbucketCommitStatus(event string, body []byte) (*Event, error) {
	var p struct {
		Repository bbRepository `json:"repository"`
		Status     struct {
			Key       string                `json:"key"`
			Name      string                `json:"name"`
			State     string                `json:"state"`
			URL       string                `json:"url"`
			Refname   string                `json:"refname"`
			Commit    struct{ Hash string } `json:"commit"`
			CreatedOn string                `json:"created_on"`
			UpdatedOn string                `json:"updated_on"`
		} `json:"commit_status"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	repo, err := p.Repository.domain()
	if err != nil {
		return nil, err
	}
	s := p.Status
	if blank(s.Key) {
		return nil, malformed("commit_status.key is required")
	}
	sha, err := requireSHA("commit_status.commit.hash", s.Commit.Hash)
	if err != nil {
		return nil, err
	}
	b := devops.Build{
		// A status key names one pipeline run per commit; the commit makes it unique.
		PipelineID: repo.ID + "/" + s.Key, PipelineName: firstNonEmpty(s.Name, s.Key), BuildNumber: buildNumberFromKey(s.Key, sha),
		State: devops.BitbucketBuildState(s.State), RepositoryID: repo.ID, CommitSHA: sha, Ref: s.Refname, URL: s.URL,
		IssueKeys: devops.ExtractIssueKeys(s.Refname, s.Name),
	}
	if err := times([]*time.Time{&b.StartedAt, &b.UpdatedAt}, s.CreatedOn, s.UpdatedOn); err != nil {
		return nil, err
	}
	if b.State.Final() {
		b.FinishedAt = b.UpdatedAt
	}
	return &Event{Name: event, Repository: repo, Builds: []devops.Build{b}}, nil
}

// buildNumberFromKey derives a stable build number for a commit status: the
// number in keys like "pipeline-42", else one taken from the commit hash so the
// same status on the same commit is the same build.
func buildNumberFromKey(key, sha string) int64 {
	if i := strings.LastIndexAny(key, "-#"); i >= 0 {
		if n, err := parseInt(key[i+1:]); err == nil && n > 0 {
			return n
		}
	}
	var n int64
	for i := 0; i < 12 && i < len(sha); i++ {
		n = n<<4 | int64(hexVal(sha[i]))
	}
	// Build numbers are positive everywhere else; only a hash starting with
	// twelve zeros gets here, and its builds are build 1.
	return max(n, 1)
}

func hexVal(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}
