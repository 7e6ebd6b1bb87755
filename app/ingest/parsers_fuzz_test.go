package ingest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/keyline/keyline/app/devops"
)

// The fuzz targets below drive every webhook parser through parse, the
// receiver's own dispatch, with arbitrary bodies and event names (for the
// generic API, arbitrary entity names). Whatever the input, a parser must not
// panic, and must either refuse it with ErrMalformed (400, nothing stored) or
// return an event the store can record as it is: an event that breaks an
// invariant here would make the store fail (503, and the provider retries the
// same delivery forever) or keep an entity nobody can find again.
//
// Seeds are the provider fixtures in testdata/<kind>/ and the hostile inputs
// below; crashers found by `go test -fuzz` stay in testdata/fuzz/<target>/.
// docs/fuzzing.md has the commands.

// FuzzParseGitHub fuzzes GitHub deliveries; the string is X-GitHub-Event.
func FuzzParseGitHub(f *testing.F) {
	fuzzKind(f, KindGitHub, githubEvent,
		[2]string{"", `{}`},
		[2]string{"push", `{"after":"aaaaaaa","repository":{"id":1,"full_name":"a/b"},"ref":"refs/heads/"}`},
		[2]string{"create", `{"ref":" ","ref_type":"branch","repository":{"id":1,"full_name":"a/b"}}`},
		[2]string{"deployment_status", `{"deployment":{"id":1,"sha":"3333333","environment":"\u0000","payload":{"issueKeys":["OPS-1","ops-1",7]}},"repository":{"id":1,"full_name":"a/b"}}`},
		[2]string{"workflow_run", `{"workflow_run":{"workflow_id":1,"run_number":1,"head_sha":"3333333","run_started_at":"0000-01-01T00:00:00Z"},"repository":{"id":1,"full_name":"a/b"}}`},
	)
}

// FuzzParseGitLab fuzzes GitLab deliveries; the string is X-Gitlab-Event
// (the body's object_kind decides what is parsed).
func FuzzParseGitLab(f *testing.F) {
	fuzzKind(f, KindGitLab, func(name string) string {
		return map[string]string{"push": "Push Hook", "merge_request_merged": "Merge Request Hook",
			"pipeline_success": "Pipeline Hook", "deployment_success": "Deployment Hook"}[name]
	},
		[2]string{"Push Hook", `{"object_kind":"push","after":"0000000000000000000000000000000000000000","project":{"id":1,"path_with_namespace":"a/b"}}`},
		[2]string{"Deployment Hook", `{"object_kind":"deployment","deployment_id":1,"environment":" ","short_sha":"abcdef1","project":{"id":1,"path_with_namespace":"a/b"}}`},
		[2]string{"", `{"object_kind":"note"}`},
	)
}

// FuzzParseBitbucket fuzzes Bitbucket Cloud deliveries; the string is X-Event-Key.
func FuzzParseBitbucket(f *testing.F) {
	fuzzKind(f, KindBitbucket, func(name string) string {
		return map[string]string{"repo_push": "repo:push", "pullrequest_fulfilled": "pullrequest:fulfilled",
			"commit_status_successful": "repo:commit_status_updated"}[name]
	},
		[2]string{"repo:push", `{"repository":{"uuid":"{x}","full_name":"a/b"},"push":{"changes":[{"new":{"type":"branch","name":"","target":{"hash":"abcdef1"}}}]}}`},
		[2]string{"repo:commit_status_created", `{"repository":{"uuid":"{x}","full_name":"a/b"},"commit_status":{"key":"k","state":"SUCCESSFUL","commit":{"hash":"000000000000000"}}}`},
		[2]string{"pullrequest:created", `{"repository":{"uuid":" ","full_name":"a/b"},"pullrequest":{"id":1,"state":"OPEN"}}`},
	)
}

// FuzzParsePagerDuty fuzzes PagerDuty v3 webhooks. PagerDuty sends its event
// type in the body; the string is ignored by the parser but still fuzzed.
func FuzzParsePagerDuty(f *testing.F) {
	fuzzKind(f, KindPagerDuty, func(string) string { return "" },
		[2]string{"", `{"event":{"id":"e","event_type":"incident.triggered","resource_type":"incident","occurred_at":"2026-01-01T00:00:00Z","data":{"id":"\t"}}}`},
	)
}

// FuzzParseOpsgenie fuzzes Opsgenie outgoing webhooks (no event header).
func FuzzParseOpsgenie(f *testing.F) {
	fuzzKind(f, KindOpsgenie, func(string) string { return "" },
		[2]string{"", `{"action":"Create","alert":{"alertId":"a","createdAt":9223372036854775807}}`},
		[2]string{"", `{"action":"Close","alert":{"alertId":"a","createdAt":1,"updatedAt":-1}}`},
	)
}

// FuzzParseGeneric fuzzes Keyline's generic API; the string is the entity
// path segment (builds, deployments, incidents, or anything else).
func FuzzParseGeneric(f *testing.F) {
	fuzzKind(f, KindGeneric, func(name string) string { return name + "s" },
		[2]string{GenericBuild, `{"pipelineId":" ","buildNumber":1,"state":"successful","lastUpdated":"2026-01-01T00:00:00Z"}`},
		[2]string{GenericBuild, `{"pipelineId":"p","buildNumber":1,"state":"successful","lastUpdated":"2026-01-01T00:00:00Z","testInfo":{"totalNumber":-1}}`},
		[2]string{GenericIncident, `{"id":"i","status":"open","createdDate":"2026-01-01T00:00:00Z","deployment":{"pipelineId":"p","environmentId":"\n","deploymentSequenceNumber":1}}`},
		[2]string{"secrets", `{}`},
	)
}

// fuzzKind seeds a target with every fixture of kind (event names from
// eventFor, given the file name without .json) and with extra (name, body)
// pairs, then checks each parse.
func fuzzKind(f *testing.F, kind string, eventFor func(fixture string) string, extra ...[2]string) {
	files, err := filepath.Glob(filepath.Join("testdata", kind, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no %s fixtures: %v", kind, err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(eventFor(strings.TrimSuffix(filepath.Base(file), ".json")), body)
	}
	for _, e := range extra {
		f.Add(e[0], []byte(e[1]))
	}
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		// The receiver passes a generic source's entity as both; providers
		// never get one (entityMismatch refuses it before parsing).
		entity := ""
		if kind == KindGeneric {
			entity = name
		}
		ev, err := parse(kind, name, entity, body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not marked malformed: %v", err)
			}
			if ev != nil {
				t.Fatalf("event %+v returned with error %v", ev, err)
			}
			return
		}
		checkEvent(t, ev)
	})
}

// githubEvent names the X-GitHub-Event of a GitHub fixture.
func githubEvent(fixture string) string {
	switch fixture {
	case "create_branch":
		return "create"
	case "delete_branch":
		return "delete"
	case "issues_incident":
		return "issues"
	}
	for _, e := range []string{"pull_request_review", "pull_request", "workflow_run", "check_suite", "deployment_status", "push"} {
		if strings.HasPrefix(fixture, e) {
			return e
		}
	}
	return fixture
}

// blankForStore reports whether the store would keep s as "": it turns
// control characters into spaces and trims (cleanText in app/store).
func blankForStore(s string) bool {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) == ""
}

// checkEvent asserts what every parsed event must satisfy, whatever the
// input, for the store to record it as the receiver hands it over.
func checkEvent(t *testing.T, ev *Event) {
	t.Helper()
	if ev == nil {
		t.Fatal("nil event without an error")
	}
	b := ev.Batch()
	empty := b.Repository == nil && b.Push == nil && len(b.Commits)+len(b.Branches)+len(b.PullRequests)+
		len(b.Builds)+len(b.Deployments)+len(b.Incidents) == 0
	if ev.Ignored != "" {
		// The receiver drops an ignored event's batch; one that carried
		// entities would be losing data silently.
		if !empty {
			t.Fatalf("ignored event (%s) carries entities: %+v", ev.Ignored, b)
		}
		return
	}
	if empty {
		t.Fatalf("accepted event %q carries nothing", ev.Name)
	}
	// The receiver classifies environments before storing; so does this.
	ev.Classify(nil)

	id := func(what, s string) {
		t.Helper()
		if blankForStore(s) {
			t.Fatalf("%s is blank: %q", what, s)
		}
	}
	sha := func(what, s string, optional bool) {
		t.Helper()
		if (s != "" || !optional) && !devops.ValidCommitSHA(s) {
			t.Fatalf("%s %q is not a commit hash", what, s)
		}
	}
	keys := func(what string, ks []string) {
		t.Helper()
		if len(ks) > devops.MaxIssueKeysPerEntity {
			t.Fatalf("%s: %d issue keys", what, len(ks))
		}
		seen := map[string]bool{}
		for _, k := range ks {
			if !devops.ValidIssueKey(k) || seen[k] {
				t.Fatalf("%s: invalid or repeated issue key %q in %q", what, k, ks)
			}
			seen[k] = true
		}
	}
	repo := func(what, s string) {
		t.Helper()
		if b.Repository != nil && s != b.Repository.ID {
			t.Fatalf("%s: repository %q, event's repository %q", what, s, b.Repository.ID)
		}
	}

	if r := b.Repository; r != nil {
		id("repository id", r.ID)
		id("repository name", r.Name)
	}
	if p := b.Push; p != nil {
		repo("push", p.RepositoryID)
		sha("push after", p.After, false)
		sha("push before", p.Before, true)
		for _, s := range p.CommitSHAs {
			sha("push commit", s, false)
		}
		if p.TotalCommits < len(p.CommitSHAs) {
			t.Fatalf("push counts %d commits but lists %d", p.TotalCommits, len(p.CommitSHAs))
		}
	}
	for _, c := range b.Commits {
		sha("commit", c.SHA, false)
		repo("commit", c.RepositoryID)
		keys("commit", c.IssueKeys)
	}
	for _, br := range b.Branches {
		id("branch name", br.Name)
		repo("branch", br.RepositoryID)
		sha("branch last commit", br.LastCommitSHA, true)
		keys("branch", br.IssueKeys)
	}
	for _, p := range b.PullRequests {
		id("pull request id", p.ID)
		repo("pull request", p.RepositoryID)
		if p.Number <= 0 || !p.State.Valid() {
			t.Fatalf("pull request number %d, state %q", p.Number, p.State)
		}
		for _, r := range p.Reviewers {
			if !r.Approval.Valid() {
				t.Fatalf("reviewer approval %q", r.Approval)
			}
		}
		sha("merge commit", p.MergeCommitSHA, true)
		keys("pull request", p.IssueKeys)
	}
	for _, bd := range b.Builds {
		id("build pipeline id", bd.PipelineID)
		if bd.BuildNumber <= 0 || !bd.State.Valid() {
			t.Fatalf("build number %d, state %q", bd.BuildNumber, bd.State)
		}
		if ts := bd.Tests; ts != nil && (ts.Total < 0 || ts.Passed < 0 || ts.Failed < 0 || ts.Skipped < 0) {
			t.Fatalf("negative test counts %+v", *ts)
		}
		if bd.RepositoryID != "" {
			repo("build", bd.RepositoryID)
		}
		sha("build commit", bd.CommitSHA, true)
		keys("build", bd.IssueKeys)
	}
	for _, d := range b.Deployments {
		id("deployment pipeline id", d.PipelineID)
		id("deployment environment id", d.EnvironmentID)
		id("deployment environment name", d.EnvironmentName)
		if d.SequenceNumber <= 0 || !d.State.Valid() || !d.EnvironmentType.Valid() || !d.EnvironmentBasis.Valid() {
			t.Fatalf("deployment sequence %d, state %q, environment %q (%q)", d.SequenceNumber, d.State, d.EnvironmentType, d.EnvironmentBasis)
		}
		if d.RepositoryID != "" {
			repo("deployment", d.RepositoryID)
		}
		sha("deployment commit", d.CommitSHA, true)
		keys("deployment", d.IssueKeys)
	}
	for _, in := range b.Incidents {
		id("incident id", in.SourceID)
		if !in.Status.Valid() {
			t.Fatalf("incident status %q", in.Status)
		}
		if k := in.Deployment; k != nil {
			id("incident deployment pipeline", k.PipelineID)
			id("incident deployment environment", k.EnvironmentID)
			if k.SequenceNumber <= 0 {
				t.Fatalf("incident deployment sequence %d", k.SequenceNumber)
			}
		}
		sha("incident commit", in.CommitSHA, true)
		keys("incident", in.IssueKeys)
	}
	// Entities are shown through JSON APIs; a time outside years 0–9999
	// cannot be encoded there (nor stored as PostgreSQL's timestamptz).
	if _, err := json.Marshal(b); err != nil {
		t.Fatalf("batch cannot be encoded: %v", err)
	}
}
