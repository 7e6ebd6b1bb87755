package ingest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keyline/keyline/app/devops"
)

func TestParseGitLab(t *testing.T) {
	ev, err := ParseGitLab("Push Hook", fixture(t, "gitlab/push.json"))
	if err != nil {
		t.Fatal(err)
	}
	// 2 of 25 commits arrived: kept, and the push is marked truncated.
	if !ev.Push.Truncated || ev.Push.TotalCommits != 25 || len(ev.Commits) != 2 {
		t.Errorf("push = %+v", ev.Push)
	}
	if !slices.Equal(ev.Commits[1].IssueKeys, []string{"OPS-8"}) || ev.Push.CommitSHAs[0] != "2222222222222222222222222222222222222222" {
		t.Errorf("commits = %+v", ev.Commits)
	}

	ev, err = ParseGitLab("Merge Request Hook", fixture(t, "gitlab/merge_request_merged.json"))
	if err != nil {
		t.Fatal(err)
	}
	pr := ev.PullRequests[0]
	if pr.State != devops.PullRequestMerged || pr.MergedAt.IsZero() || !slices.Equal(pr.IssueKeys, []string{"OPS-7", "OPS-9"}) {
		t.Errorf("merge request = %+v", pr)
	}
	if want := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC); !pr.UpdatedAt.Equal(want) {
		t.Errorf("GitLab time = %v, want %v", pr.UpdatedAt, want)
	}

	ev, err = ParseGitLab("Pipeline Hook", fixture(t, "gitlab/pipeline_success.json"))
	if err != nil {
		t.Fatal(err)
	}
	b := ev.Builds[0]
	if b.State != devops.BuildSuccessful || b.Tests == nil || b.Tests.Total != 2 || b.Tests.Failed != 1 || !slices.Equal(b.IssueKeys, []string{"OPS-7", "OPS-8"}) {
		t.Errorf("pipeline = %+v tests %+v", b, b.Tests)
	}

	ev, err = ParseGitLab("Deployment Hook", fixture(t, "gitlab/deployment_success.json"))
	if err != nil {
		t.Fatal(err)
	}
	d := ev.Deployments[0]
	if d.CommitSHA != "4444444444444444444444444444444444444444" || d.EnvironmentType != devops.EnvironmentStaging || d.State != devops.DeploymentSuccessful {
		t.Errorf("deployment = %+v", d)
	}
	if want := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC); !d.UpdatedAt.Equal(want) {
		t.Errorf("status_changed_at = %v, want %v", d.UpdatedAt, want)
	}
}

func TestParseBitbucket(t *testing.T) {
	ev, err := ParseBitbucket("repo:push", fixture(t, "bitbucket/repo_push.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Newest-first commits are reversed so the chain runs oldest first.
	if !slices.Equal(ev.Push.CommitSHAs, []string{"2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333"}) || !ev.Push.Truncated {
		t.Errorf("push = %+v", ev.Push)
	}
	if ev.Commits[0].Author.Email != "ada@example.com" || ev.Commits[0].Author.Name != "Ada Lovelace" {
		t.Errorf("author = %+v", ev.Commits[0].Author)
	}
	ev, err = ParseBitbucket("pullrequest:fulfilled", fixture(t, "bitbucket/pullrequest_fulfilled.json"))
	if err != nil {
		t.Fatal(err)
	}
	pr := ev.PullRequests[0]
	if pr.State != devops.PullRequestMerged || len(pr.Reviewers) != 1 || pr.Reviewers[0].Approval != devops.ApprovalApproved {
		t.Errorf("pr = %+v", pr)
	}
	ev, err = ParseBitbucket("repo:commit_status_updated", fixture(t, "bitbucket/commit_status_successful.json"))
	if err != nil {
		t.Fatal(err)
	}
	if b := ev.Builds[0]; b.State != devops.BuildSuccessful || b.BuildNumber != 42 || !slices.Equal(b.IssueKeys, []string{"OPS-7"}) {
		t.Errorf("build = %+v", b)
	}
}

func TestParseIncidents(t *testing.T) {
	ev, err := ParsePagerDuty(fixture(t, "pagerduty/incident_triggered.json"))
	if err != nil {
		t.Fatal(err)
	}
	in := ev.Incidents[0]
	if ev.DeliveryID != "01DEN1HNPO3QAJ4ZZK8BQ0ZVDJ" || in.Status != devops.IncidentOpen || in.Severity != "P1" || in.Service != "shop" || in.OpenedAt.IsZero() {
		t.Errorf("pagerduty = %+v, %+v", ev, in)
	}
	ev, err = ParsePagerDuty(fixture(t, "pagerduty/incident_resolved.json"))
	if err != nil {
		t.Fatal(err)
	}
	if in := ev.Incidents[0]; in.Status != devops.IncidentResolved || in.ResolvedAt.IsZero() || !in.OpenedAt.IsZero() {
		t.Errorf("resolved = %+v", in)
	}
	ev, err = ParseOpsgenie(fixture(t, "opsgenie/alert_create.json"))
	if err != nil {
		t.Fatal(err)
	}
	if in := ev.Incidents[0]; in.Service != "shop" || in.Status != devops.IncidentOpen || !in.OpenedAt.Equal(time.UnixMilli(1763722800000)) || ev.DeliveryID == "" {
		t.Errorf("opsgenie = %+v", in)
	}
}

func TestParseGeneric(t *testing.T) {
	ev, err := ParseGeneric(GenericDeployment, fixture(t, "generic/deployment.json"))
	if err != nil {
		t.Fatal(err)
	}
	d := ev.Deployments[0]
	if d.EnvironmentType != devops.EnvironmentProduction || d.SequenceNumber != 118 || d.CommitSHA != "4444444444444444444444444444444444444444" || !slices.Equal(d.IssueKeys, []string{"OPS-11"}) {
		t.Errorf("deployment = %+v", d)
	}
	ev, err = ParseGeneric(GenericBuild, fixture(t, "generic/build.json"))
	if err != nil {
		t.Fatal(err)
	}
	if b := ev.Builds[0]; b.Tests == nil || b.Tests.Failed != 1 || !slices.Equal(b.IssueKeys, []string{"OPS-7"}) {
		t.Errorf("build = %+v", b)
	}
	ev, err = ParseGeneric(GenericIncident, fixture(t, "generic/incident.json"))
	if err != nil {
		t.Fatal(err)
	}
	if in := ev.Incidents[0]; in.Deployment == nil || in.Deployment.SequenceNumber != 118 {
		t.Errorf("incident = %+v", in)
	}
}

func TestParsersRejectHostileInput(t *testing.T) {
	tests := []struct {
		name  string
		parse func() (*Event, error)
	}{
		{"gitlab broken JSON", func() (*Event, error) { return ParseGitLab("Push Hook", []byte(`{"object_kind":"push",`)) }},
		{"gitlab no kind", func() (*Event, error) { return ParseGitLab("Push Hook", []byte(`{}`)) }},
		{"gitlab deployment without sha", func() (*Event, error) {
			return ParseGitLab("", []byte(`{"object_kind":"deployment","deployment_id":1,"environment":"prod","project":{"id":1,"path_with_namespace":"a/b"},"commit_url":"javascript:alert(1)"}`))
		}},
		{"gitlab bad time", func() (*Event, error) {
			return ParseGitLab("", []byte(`{"object_kind":"pipeline","object_attributes":{"id":1,"sha":"3333333","created_at":"soon"},"project":{"id":1,"path_with_namespace":"a/b"}}`))
		}},
		{"bitbucket no repository", func() (*Event, error) { return ParseBitbucket("repo:push", []byte(`{"push":{}}`)) }},
		{"bitbucket bad hash", func() (*Event, error) {
			return ParseBitbucket("repo:push", []byte(`{"repository":{"uuid":"{x}","full_name":"a/b"},"push":{"changes":[{"new":{"type":"branch","name":"m","target":{"hash":"<b>"}}}]}}`))
		}},
		{"bitbucket missing event", func() (*Event, error) { return ParseBitbucket("", []byte(`{}`)) }},
		{"pagerduty no id", func() (*Event, error) { return ParsePagerDuty([]byte(`{"event":{"event_type":"incident.triggered"}}`)) }},
		{"pagerduty no time", func() (*Event, error) {
			return ParsePagerDuty([]byte(`{"event":{"id":"e","event_type":"incident.triggered","resource_type":"incident","data":{"id":"i"}}}`))
		}},
		{"opsgenie no alert id", func() (*Event, error) { return ParseOpsgenie([]byte(`{"action":"Create","alert":{}}`)) }},
		{"generic unknown field", func() (*Event, error) {
			return ParseGeneric(GenericBuild, []byte(`{"pipelineId":"p","buildNumber":1,"state":"successful","lastUpdated":"2026-01-01T00:00:00Z","sate":"x"}`))
		}},
		{"generic bad state", func() (*Event, error) {
			return ParseGeneric(GenericBuild, []byte(`{"pipelineId":"p","buildNumber":1,"state":"green","lastUpdated":"2026-01-01T00:00:00Z"}`))
		}},
		{"generic bad issue key", func() (*Event, error) {
			return ParseGeneric(GenericDeployment, []byte(`{"pipeline":{"id":"p"},"environment":{"id":"e"},"deploymentSequenceNumber":1,"state":"successful","lastUpdated":"2026-01-01T00:00:00Z","issueKeys":["<script>"]}`))
		}},
		{"generic bad environment type", func() (*Event, error) {
			return ParseGeneric(GenericDeployment, []byte(`{"pipeline":{"id":"p"},"environment":{"id":"e","type":"prod"},"deploymentSequenceNumber":1,"state":"successful","lastUpdated":"2026-01-01T00:00:00Z"}`))
		}},
		{"generic two values", func() (*Event, error) {
			return ParseGeneric(GenericIncident, []byte(`{"id":"i","status":"open","createdDate":"2026-01-01T00:00:00Z"}{}`))
		}},
		{"generic unknown entity", func() (*Event, error) { return ParseGeneric("secrets", []byte(`{}`)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ev, err := tt.parse(); !errors.Is(err, ErrMalformed) {
				t.Errorf("got %+v, %v; want ErrMalformed", ev, err)
			}
		})
	}
}

func TestIgnoredEvents(t *testing.T) {
	for name, parse := range map[string]func() (*Event, error){
		"gitlab issue":   func() (*Event, error) { return ParseGitLab("Issue Hook", []byte(`{"object_kind":"issue"}`)) },
		"bitbucket fork": func() (*Event, error) { return ParseBitbucket("repo:fork", []byte(`{}`)) },
		"pagerduty service": func() (*Event, error) {
			return ParsePagerDuty([]byte(`{"event":{"id":"e","event_type":"service.updated","resource_type":"service"}}`))
		},
		"opsgenie add note": func() (*Event, error) {
			return ParseOpsgenie([]byte(`{"action":"AddNote","alert":{"alertId":"a","createdAt":1}}`))
		},
		"bitbucket tag push": func() (*Event, error) {
			return ParseBitbucket("repo:push", []byte(`{"repository":{"uuid":"{x}","full_name":"a/b"},"push":{"changes":[{"new":{"type":"tag","name":"v1"}}]}}`))
		},
	} {
		ev, err := parse()
		if err != nil || ev.Ignored == "" {
			t.Errorf("%s: %+v, %v; want ignored", name, ev, err)
		}
	}
}
