package ingest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/keyline/keyline/app/devops"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseGitHubPush(t *testing.T) {
	ev, err := ParseGitHub("push", fixture(t, "github/push.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Ignored != "" || ev.Repository.ID != "123456" || ev.Repository.Name != "acme/shop" {
		t.Fatalf("event = %+v", ev)
	}
	p := ev.Push
	if p.Before != "1111111111111111111111111111111111111111" || p.After != "3333333333333333333333333333333333333333" || p.Ref != "refs/heads/feature/OPS-7-login" {
		t.Errorf("push = %+v", p)
	}
	if !slices.Equal(p.CommitSHAs, []string{"2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333"}) {
		t.Errorf("commit order = %v", p.CommitSHAs)
	}
	if len(ev.Commits) != 2 {
		t.Fatalf("commits = %d", len(ev.Commits))
	}
	if got := ev.Commits[0].IssueKeys; !slices.Equal(got, []string{"OPS-7"}) {
		t.Errorf("first commit keys = %v", got)
	}
	// [ops-8] and (WEB-12) count; CVE-2024-1234 and OPS-01 do not.
	if got := ev.Commits[1].IssueKeys; !slices.Equal(got, []string{"OPS-8", "WEB-12"}) {
		t.Errorf("second commit keys = %v", got)
	}
	if want := time.Date(2026, 11, 20, 9, 15, 0, 0, time.UTC); !ev.Commits[0].AuthoredAt.Equal(want) || ev.Commits[0].AuthoredAt.Location() != time.UTC {
		t.Errorf("authored at = %v, want %v in UTC", ev.Commits[0].AuthoredAt, want)
	}
	if len(ev.Branches) != 1 || ev.Branches[0].Name != "feature/OPS-7-login" || !slices.Equal(ev.Branches[0].IssueKeys, []string{"OPS-7"}) {
		t.Errorf("branches = %+v", ev.Branches)
	}
}

func TestParseGitHubEntities(t *testing.T) {
	t.Run("merged pull request", func(t *testing.T) {
		ev, err := ParseGitHub("pull_request", fixture(t, "github/pull_request_closed_merged.json"))
		if err != nil {
			t.Fatal(err)
		}
		pr := ev.PullRequests[0]
		if pr.State != devops.PullRequestMerged || pr.MergeCommitSHA != "4444444444444444444444444444444444444444" || pr.Number != 17 {
			t.Errorf("pr = %+v", pr)
		}
		if !slices.Equal(pr.IssueKeys, []string{"OPS-7", "OPS-9"}) {
			t.Errorf("keys = %v", pr.IssueKeys)
		}
		if pr.MergedAt.IsZero() || pr.SourceBranch != "feature/OPS-7-login" || pr.DestinationBranch != "main" {
			t.Errorf("pr = %+v", pr)
		}
	})
	t.Run("approval", func(t *testing.T) {
		ev, err := ParseGitHub("pull_request_review", fixture(t, "github/pull_request_review_approved.json"))
		if err != nil {
			t.Fatal(err)
		}
		rs := ev.PullRequests[0].Reviewers
		if len(rs) != 1 || rs[0].Username != "grace" || rs[0].Approval != devops.ApprovalApproved {
			t.Errorf("reviewers = %+v", rs)
		}
	})
	builds := []struct {
		file  string
		state devops.BuildState
	}{
		{"workflow_run_completed_success.json", devops.BuildSuccessful},
		{"workflow_run_completed_failure.json", devops.BuildFailed},
		{"workflow_run_in_progress.json", devops.BuildInProgress},
	}
	for _, tt := range builds {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := ParseGitHub("workflow_run", fixture(t, "github/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			b := ev.Builds[0]
			if b.State != tt.state || b.PipelineID != "123456/161335" || b.BuildNumber != 562 || b.CommitSHA != "3333333333333333333333333333333333333333" {
				t.Errorf("build = %+v", b)
			}
			if !slices.Equal(b.IssueKeys, []string{"OPS-7"}) {
				t.Errorf("keys = %v", b.IssueKeys)
			}
			if b.State.Final() == b.FinishedAt.IsZero() {
				t.Errorf("finished at %v for state %s", b.FinishedAt, b.State)
			}
		})
	}
	t.Run("check suite of another CI", func(t *testing.T) {
		ev, err := ParseGitHub("check_suite", fixture(t, "github/check_suite_completed.json"))
		if err != nil {
			t.Fatal(err)
		}
		if b := ev.Builds[0]; b.State != devops.BuildFailed || b.PipelineID != "123456/circleci-checks" {
			t.Errorf("build = %+v", b)
		}
	})
	deployments := []struct {
		file  string
		state devops.DeploymentState
	}{
		{"deployment_status_success.json", devops.DeploymentSuccessful},
		{"deployment_status_in_progress.json", devops.DeploymentInProgress},
	}
	for _, tt := range deployments {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := ParseGitHub("deployment_status", fixture(t, "github/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			d := ev.Deployments[0]
			if d.State != tt.state || d.SequenceNumber != 555001 || d.EnvironmentName != "production" || d.EnvironmentType != devops.EnvironmentProduction {
				t.Errorf("deployment = %+v", d)
			}
			if !slices.Equal(d.IssueKeys, []string{"OPS-11"}) {
				t.Errorf("keys from the deployment payload = %v", d.IssueKeys)
			}
		})
	}
}

func TestParseGitHubIgnoredAndHostile(t *testing.T) {
	for _, event := range []string{"ping", "star", "issues"} {
		ev, err := ParseGitHub(event, fixture(t, "github/ping.json"))
		if err != nil || ev.Ignored == "" {
			t.Errorf("%s: %+v, %v; want ignored", event, ev, err)
		}
	}
	hostile := []struct {
		name, event, body string
	}{
		{"broken JSON", "push", `{"ref":`},
		{"array body", "push", `[]`},
		{"no repository", "push", `{"after":"3333333333333333333333333333333333333333"}`},
		{"bad after sha", "push", `{"after":"zz","repository":{"id":1,"full_name":"a/b"}}`},
		{"bad commit sha", "push", `{"after":"3333333","repository":{"id":1,"full_name":"a/b"},"commits":[{"id":"<script>"}]}`},
		{"bad timestamp", "push", `{"after":"3333333","repository":{"id":1,"full_name":"a/b"},"commits":[{"id":"3333333","timestamp":"yesterday"}]}`},
		{"string id", "push", `{"after":"3333333","repository":{"id":"1","full_name":"a/b"}}`},
		{"pr without number", "pull_request", `{"pull_request":{"id":1},"repository":{"id":1,"full_name":"a/b"}}`},
		{"deployment without sha", "deployment_status", `{"deployment":{"id":1,"environment":"prod"},"repository":{"id":1,"full_name":"a/b"}}`},
		{"deployment without environment", "deployment_status", `{"deployment":{"id":1,"sha":"3333333"},"repository":{"id":1,"full_name":"a/b"}}`},
		{"missing event header", "", `{}`},
	}
	for _, tt := range hostile {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseGitHub(tt.event, []byte(tt.body)); !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestParseGitHubHostilePushAndBranchEvents(t *testing.T) {
	ev, err := ParseGitHub("push", fixture(t, "github/push_hostile.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Keys are found wherever they hide, upper-cased, without the false ones.
	if got := ev.Commits[1].IssueKeys; !slices.Equal(got, []string{"OPS-11", "WEB_2-3"}) {
		t.Errorf("keys in odd places = %q", got)
	}
	if got := ev.Commits[0].IssueKeys; !slices.Equal(got, []string{"OPS-10"}) {
		t.Errorf("keys in markup = %q", got)
	}
	if got := ev.Branches[0].IssueKeys; !slices.Equal(got, []string{"OPS-9"}) {
		t.Errorf("branch keys = %q", got)
	}
	for _, tc := range []struct {
		event   string
		deleted bool
	}{{"create", false}, {"delete", true}} {
		ev, err := ParseGitHub(tc.event, fixture(t, "github/"+tc.event+"_branch.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Branches) != 1 || ev.Branches[0].Name != "feature/OPS-12-search" || ev.Branches[0].Deleted != tc.deleted ||
			!slices.Equal(ev.Branches[0].IssueKeys, []string{"OPS-12"}) {
			t.Errorf("%s: branches = %+v", tc.event, ev.Branches)
		}
	}
}

// pushDecodeSeeds are push bodies on which encoding/json's leniencies show:
// the push decoder must read each exactly as encoding/json does, so that
// changing decoders changed no delivery's meaning.
var pushDecodeSeeds = []string{
	`{"REF":"refs/heads/main","Repository":{"ID":1,"Full_Name":"a/b"},"commits":[{"ID":"abcdef1","MESSAGE":"x"}]}`,
	`{"repository":{"fullname":0,"full-name":0,"FULL_NAME":"a/b"}}`, // the underscore must match
	`{"ref":"refs/heads/a","ref":"refs/heads/b","repository":{"id":1,"full_name":"a/b","id":2}}`,
	`{"ref":"a","Ref":"b","commits":[{"id":"abcdef1"}],"commits":[{"id":"abcdef2"}]}`,
	"{\"ref\":\"refs/heads/\xff\xfe\",\"commits\":[{\"id\":\"abcdef1\",\"message\":\"caf\xc3\"}]}",
	`{"ref":"\ud800 \udfff \u00e9 \u0000"}`,
	`{"ref":null,"created":null,"repository":null,"commits":null}`,
	`{"commits":[]}`,
	`null`,
	`{"repository":{"id":1.0}}`,
	`{"repository":{"id":1e3}}`,
	`{"repository":{"id":-0}}`,
	`{"repository":{"id":99999999999999999999}}`,
	`{"repository":{"id":"1"}}`,
	`{"created":"true"}`,
	`{"created":1}`,
	`{"commits":{}}`,
	`{"commits":[null,{"author":null}]}`,
	`{} {}`,
	`{}x`,
	` {"ref":"x"} `,
	`[]`,
	``,
	`{"ref":"x",}`,
	`{"ref":'x'}`,
	`{"unknown":{"deep":[1,2,{"a":[]}]},"ref":"x"}`,
}

func TestPushDecodeMatchesEncodingJSON(t *testing.T) {
	bodies := [][]byte{fixture(t, "github/push.json"), fixture(t, "github/push_hostile.json")}
	for _, s := range pushDecodeSeeds {
		bodies = append(bodies, []byte(s))
	}
	for _, body := range bodies {
		checkPushDecode(t, body)
	}
}

// FuzzPushDecodeMatchesEncodingJSON looks for bodies the push decoder reads
// differently from encoding/json.
func FuzzPushDecodeMatchesEncodingJSON(f *testing.F) {
	f.Add(fixture(f, "github/push.json"))
	f.Add(fixture(f, "github/push_hostile.json"))
	for _, s := range pushDecodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkPushDecode)
}

func checkPushDecode(t *testing.T, body []byte) {
	t.Helper()
	var want ghPush
	wantErr := json.Unmarshal(body, &want)
	got, gotErr := decodePush(body)
	switch {
	case (wantErr == nil) != (gotErr == nil):
		t.Errorf("body %q: encoding/json error %v, push decoder error %v", body, wantErr, gotErr)
	case gotErr != nil && !errors.Is(gotErr, ErrMalformed):
		t.Errorf("body %q: error %v is not ErrMalformed", body, gotErr)
	case gotErr == nil && !reflect.DeepEqual(got, want):
		t.Errorf("body %q:\npush decoder  %+v\nencoding/json %+v", body, got, want)
	}
}
