package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/ingest"
)

const (
	testSourceToken  = "tok_4f9Qk2"
	testSourceSecret = "5ec2e7-0123456789abcdef0123456789"
)

// testNow is the reporter's clock in tests: the default of --updated-at.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// seenRequest is one request the fake endpoint received, with what the real
// endpoint's building blocks make of it.
type seenRequest struct {
	path     string
	header   http.Header
	body     []byte
	sigErr   error         // ingest.VerifySignature
	event    *ingest.Event // ingest.ParseGeneric, when the path names an entity
	parseErr error
}

// fakeKeyline stands in for the ingest endpoint of one generic source. It
// verifies and parses every request as the contract says the real one does;
// answer decides the response to the nth request (from 1), given what was
// seen, and defaults to answerLikeKeyline.
type fakeKeyline struct {
	srv    *httptest.Server
	answer func(n int, r *seenRequest) (status int, body string)
	mu     sync.Mutex
	seen   []*seenRequest
}

func newFakeKeyline(t *testing.T, answer func(n int, r *seenRequest) (int, string)) *fakeKeyline {
	t.Helper()
	if answer == nil {
		answer = answerLikeKeyline
	}
	f := &fakeKeyline{answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve)) // listens on 127.0.0.1
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKeyline) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sr := &seenRequest{path: r.URL.Path, header: r.Header.Clone(), body: body}
	sr.sigErr = ingest.VerifySignature(ingest.KindGeneric, r.Header, body, [][]byte{[]byte(testSourceSecret)})
	if entity, ok := strings.CutPrefix(r.URL.Path, "/ingest/"+testSourceToken+"/"); ok {
		sr.event, sr.parseErr = ingest.ParseGeneric(entity, body)
	}
	f.mu.Lock()
	f.seen = append(f.seen, sr)
	n := len(f.seen)
	f.mu.Unlock()
	status, reply := f.answer(n, sr)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, reply)
}

func (f *fakeKeyline) requests() []*seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

func (f *fakeKeyline) env() map[string]string {
	return map[string]string{"KEYLINE_URL": f.srv.URL + "/ingest/" + testSourceToken, "KEYLINE_TOKEN": testSourceSecret}
}

// answerLikeKeyline answers as the ingest contract describes.
func answerLikeKeyline(_ int, r *seenRequest) (int, string) {
	switch {
	case r.event == nil && r.parseErr == nil:
		return http.StatusNotFound, `{"error":"unknown source"}`
	case r.sigErr != nil:
		return http.StatusUnauthorized, `{"error":"bad signature"}`
	case r.parseErr != nil:
		b, _ := json.Marshal(map[string]string{"error": r.parseErr.Error()})
		return http.StatusBadRequest, string(b)
	}
	b, _ := json.Marshal(map[string]string{"outcome": "accepted", "event": r.event.Name, "delivery_id": r.header.Get("Idempotency-Key")})
	return http.StatusOK, string(b)
}

func testReporter() reporter {
	return reporter{
		attempts: 3,
		backoff:  func(int) time.Duration { return time.Millisecond },
		now:      func() time.Time { return testNow },
	}
}

// runReport runs "keyline report args..." with the test reporter and
// returns the exit status run would give and the outputs.
func runReport(t *testing.T, env map[string]string, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if err := testReporter().run(context.Background(), args, env, stdin, &out, &errb); err != nil {
		code = 1
		errb.WriteString("keyline: " + oneLine(err.Error()) + "\n")
	}
	return code, out.String(), errb.String()
}

func withEnv(base map[string]string, extra map[string]string) map[string]string {
	env := map[string]string{}
	for k, v := range base {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// githubEnv and gitlabEnv are what a job of each CI system has.
func githubEnv() map[string]string {
	return map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_SHA": "A1B2C3D4E5F60718293A4B5C6D7E8F9012345678",
		"GITHUB_REF": "refs/pull/9/merge", "GITHUB_HEAD_REF": "OPS-77-login", "GITHUB_REPOSITORY_ID": "123456",
		"GITHUB_RUN_NUMBER": "41", "GITHUB_RUN_ID": "987654321", "GITHUB_SERVER_URL": "https://github.com",
		"GITHUB_REPOSITORY": "acme/web",
		// Another system's variables must not leak in.
		"CI_COMMIT_SHA": "ffffffffffffffffffffffffffffffffffffffff",
	}
}

func gitlabEnv() map[string]string {
	return map[string]string{
		"GITLAB_CI": "true", "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
		"CI_COMMIT_REF_NAME": "main", "CI_PROJECT_ID": "4242", "CI_PIPELINE_IID": "318",
		"CI_PIPELINE_URL": "https://gitlab.example.com/acme/web/-/pipelines/99001",
	}
}

func TestReportSendsSignedPayloads(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		path  string
		check func(t *testing.T, ev *ingest.Event)
	}{
		{
			name: "minimal build",
			args: []string{"build", "--pipeline-id", "ci", "--number", "7", "--state", "success"},
			path: "/builds",
			check: func(t *testing.T, ev *ingest.Event) {
				b := ev.Builds[0]
				if b.PipelineID != "ci" || b.PipelineName != "ci" || b.BuildNumber != 7 || b.State != devops.BuildSuccessful {
					t.Errorf("build = %+v", b)
				}
				if !b.UpdatedAt.Equal(testNow) || !b.FinishedAt.Equal(testNow) {
					t.Errorf("updated %v finished %v, want both %v (the default of --updated-at)", b.UpdatedAt, b.FinishedAt, testNow)
				}
				if b.CommitSHA != "" || b.Tests != nil || b.IssueKeys != nil {
					t.Errorf("outside CI nothing may be defaulted: %+v", b)
				}
			},
		},
		{
			name: "full build",
			args: []string{"build", "--pipeline-id", "acme/web/ci", "--pipeline-name", "CI", "--number", "12",
				"--state", "in_progress", "--url", "https://ci.example.com/12", "--started-at", "2026-03-01T11:58:00+01:00",
				"--updated-at", "2026-03-01T11:59:30Z", "--ref", "feature/OPS-12-login", "--commit", "ABCDEF1234567",
				"--repository", "123456", "--issue-key", "ops-1, OPS-2", "--issue-key", "OPS-3",
				"--tests-passed", "5", "--tests-failed", "1", "--tests-skipped", "2"},
			path: "/builds",
			check: func(t *testing.T, ev *ingest.Event) {
				b := ev.Builds[0]
				if b.PipelineName != "CI" || b.State != devops.BuildInProgress || b.URL != "https://ci.example.com/12" || b.Ref != "feature/OPS-12-login" {
					t.Errorf("build = %+v", b)
				}
				if b.CommitSHA != "abcdef1234567" || b.RepositoryID != "123456" {
					t.Errorf("commit %q repository %q", b.CommitSHA, b.RepositoryID)
				}
				if !b.StartedAt.Equal(time.Date(2026, 3, 1, 10, 58, 0, 0, time.UTC)) || !b.UpdatedAt.Equal(time.Date(2026, 3, 1, 11, 59, 30, 0, time.UTC)) || !b.FinishedAt.IsZero() {
					t.Errorf("times: started %v updated %v finished %v", b.StartedAt, b.UpdatedAt, b.FinishedAt)
				}
				if want := []string{"OPS-1", "OPS-2", "OPS-3", "OPS-12"}; !slices.Equal(b.IssueKeys, want) {
					t.Errorf("issue keys %v, want %v", b.IssueKeys, want)
				}
				if want := (devops.TestSummary{Total: 8, Passed: 5, Failed: 1, Skipped: 2}); b.Tests == nil || *b.Tests != want {
					t.Errorf("tests %+v, want %+v", b.Tests, want)
				}
			},
		},
		{
			name: "build in GitHub Actions",
			env:  githubEnv(),
			args: []string{"build", "--pipeline-id", "acme/web/ci", "--state", "failure"},
			path: "/builds",
			check: func(t *testing.T, ev *ingest.Event) {
				b := ev.Builds[0]
				if b.BuildNumber != 41 || b.State != devops.BuildFailed || b.CommitSHA != "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678" ||
					b.RepositoryID != "123456" || b.Ref != "OPS-77-login" || b.URL != "https://github.com/acme/web/actions/runs/987654321" {
					t.Errorf("build = %+v", b)
				}
				if !slices.Equal(b.IssueKeys, []string{"OPS-77"}) {
					t.Errorf("issue keys %v, want those of GITHUB_HEAD_REF", b.IssueKeys)
				}
			},
		},
		{
			name: "build in GitLab CI, flags beat defaults",
			env:  gitlabEnv(),
			args: []string{"build", "--pipeline-id", "web", "--state", "canceled", "--number", "5", "--commit", "", "--ref", "OPS-5-fix"},
			path: "/builds",
			check: func(t *testing.T, ev *ingest.Event) {
				b := ev.Builds[0]
				if b.BuildNumber != 5 || b.State != devops.BuildCancelled || b.CommitSHA != "" || b.RepositoryID != "" ||
					b.Ref != "OPS-5-fix" || b.URL != "https://gitlab.example.com/acme/web/-/pipelines/99001" {
					t.Errorf("build = %+v", b)
				}
			},
		},
		{
			name: "deployment",
			env:  gitlabEnv(),
			args: []string{"deployment", "--pipeline-id", "deploy", "--pipeline-name", "Deploy", "--environment-id", "prod-eu",
				"--environment-name", "Production EU", "--environment-type", "Production", "--state", "success",
				"--service", "checkout", "--issue-key", "OPS-9", "--environment-url", "https://shop.example.com"},
			path: "/deployments",
			check: func(t *testing.T, ev *ingest.Event) {
				d := ev.Deployments[0]
				if d.PipelineID != "deploy" || d.PipelineName != "Deploy" || d.EnvironmentID != "prod-eu" || d.EnvironmentName != "Production EU" ||
					d.EnvironmentType != devops.EnvironmentProduction || d.SequenceNumber != 318 || d.State != devops.DeploymentSuccessful ||
					d.Service != "checkout" || d.EnvironmentURL != "https://shop.example.com" {
					t.Errorf("deployment = %+v", d)
				}
				if d.CommitSHA != "0123456789abcdef0123456789abcdef01234567" || d.RepositoryID != "4242" || d.Ref != "main" {
					t.Errorf("commit %q repository %q ref %q: want the CI defaults", d.CommitSHA, d.RepositoryID, d.Ref)
				}
				if !slices.Equal(d.IssueKeys, []string{"OPS-9"}) || !d.FinishedAt.Equal(testNow) {
					t.Errorf("keys %v finished %v", d.IssueKeys, d.FinishedAt)
				}
			},
		},
		{
			name: "incident",
			env:  githubEnv(),
			args: []string{"incident", "--id", "INC-7", "--summary", "Checkout down", "--severity", "P1", "--status", "resolved",
				"--service", "checkout", "--opened-at", "2026-03-01T10:00:00Z", "--resolved-at", "2026-03-01T11:00:00Z",
				"--deployment-pipeline", "deploy", "--deployment-environment", "prod-eu", "--deployment-sequence", "318",
				"--issue-key", "OPS-10"},
			path: "/incidents",
			check: func(t *testing.T, ev *ingest.Event) {
				in := ev.Incidents[0]
				if in.SourceID != "INC-7" || in.Title != "Checkout down" || in.Severity != "P1" || in.Status != devops.IncidentResolved || in.Service != "checkout" {
					t.Errorf("incident = %+v", in)
				}
				if want := (devops.DeploymentKey{PipelineID: "deploy", EnvironmentID: "prod-eu", SequenceNumber: 318}); in.Deployment == nil || *in.Deployment != want {
					t.Errorf("deployment %+v, want %+v", in.Deployment, want)
				}
				if in.CommitSHA != "" {
					t.Errorf("commit %q: an incident's commit must never come from CI", in.CommitSHA)
				}
				if !in.OpenedAt.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) || !in.UpdatedAt.Equal(testNow) || !slices.Equal(in.IssueKeys, []string{"OPS-10"}) {
					t.Errorf("opened %v updated %v keys %v", in.OpenedAt, in.UpdatedAt, in.IssueKeys)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeKeyline(t, nil)
			code, out, errs := runReport(t, withEnv(f.env(), tc.env), nil, tc.args...)
			if code != 0 {
				t.Fatalf("code %d, stderr %q", code, errs)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if want := "/ingest/" + testSourceToken + tc.path; r.path != want {
				t.Errorf("path %q, want %q", r.path, want)
			}
			if r.sigErr != nil {
				t.Errorf("signature: %v", r.sigErr)
			}
			if r.header.Get("Authorization") != "" || strings.Contains(string(r.body), testSourceSecret) {
				t.Error("the secret itself was sent")
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			key := r.header.Get("Idempotency-Key")
			if !strings.HasPrefix(key, "report-") || checkIdempotencyKey(key) != nil {
				t.Errorf("Idempotency-Key %q, want a generated report-… key", key)
			}
			if r.parseErr != nil {
				t.Fatalf("ParseGeneric refused the body: %v\n%s", r.parseErr, r.body)
			}
			tc.check(t, r.event)
			if want := "accepted " + r.event.Name + " (delivery " + key + ")\n"; out != want {
				t.Errorf("stdout %q, want %q", out, want)
			}
			if errs != "" {
				t.Errorf("stderr %q", errs)
			}
		})
	}
}

func TestReportServerRefusals(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{http.StatusBadRequest, `{"error":"malformed payload: state must be one of pending, in_progress"}`, "400 Bad Request: malformed payload: state must be one of"},
		{http.StatusUnauthorized, `{"error":"bad signature"}`, "401 Unauthorized: bad signature"},
		{http.StatusNotFound, `{"error":"unknown source"}`, "404 Not Found: unknown source"},
		{http.StatusRequestEntityTooLarge, `{"error":"body larger than 5 MiB"}`, "413 Request Entity Too Large: body larger than 5 MiB"},
		{http.StatusForbidden, `<html>proxy says no</html>`, "403 Forbidden"},
		{http.StatusPermanentRedirect, `{}`, "308 Permanent Redirect: a redirect"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			f := newFakeKeyline(t, func(int, *seenRequest) (int, string) { return tc.status, tc.body })
			code, out, errs := runReport(t, f.env(), nil, "build", "--pipeline-id", "ci", "--number", "1", "--state", "failed")
			if code != 1 {
				t.Errorf("code %d, want 1", code)
			}
			if !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
				t.Errorf("stderr %q, want one line containing %q", errs, tc.want)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d requests: a 4xx must not be retried", n)
			}
		})
	}
}

func TestReportRetries(t *testing.T) {
	t.Run("503 then accepted", func(t *testing.T) {
		f := newFakeKeyline(t, func(n int, r *seenRequest) (int, string) {
			if n < 3 {
				return http.StatusServiceUnavailable, `{"error":"internal error"}`
			}
			return answerLikeKeyline(n, r)
		})
		code, out, errs := runReport(t, f.env(), nil, "deployment", "--pipeline-id", "p", "--environment-id", "prod", "--sequence", "3", "--state", "successful")
		if code != 0 {
			t.Fatalf("code %d, stderr %q", code, errs)
		}
		reqs := f.requests()
		if len(reqs) != 3 {
			t.Fatalf("%d requests, want 3", len(reqs))
		}
		key := reqs[0].header.Get("Idempotency-Key")
		for i, r := range reqs {
			if got := r.header.Get("Idempotency-Key"); got != key || key == "" {
				t.Errorf("attempt %d: Idempotency-Key %q, want %q on every attempt", i+1, got, key)
			}
			if !bytes.Equal(r.body, reqs[0].body) || r.sigErr != nil {
				t.Errorf("attempt %d: body changed or signature bad (%v)", i+1, r.sigErr)
			}
		}
		if strings.Count(errs, "retrying") != 2 || !strings.Contains(errs, "503 Service Unavailable: internal error") {
			t.Errorf("stderr %q, want two retry notes naming the 503", errs)
		}
		if !strings.HasPrefix(out, "accepted deployment") {
			t.Errorf("stdout %q", out)
		}
	})
	t.Run("always 503", func(t *testing.T) {
		f := newFakeKeyline(t, func(int, *seenRequest) (int, string) {
			return http.StatusServiceUnavailable, `{"error":"internal error"}`
		})
		code, _, errs := runReport(t, f.env(), nil, "build", "--pipeline-id", "ci", "--number", "1", "--state", "failed")
		if code != 1 || !strings.Contains(errs, "internal error (gave up after 3 attempts)") {
			t.Errorf("code %d, stderr %q", code, errs)
		}
		if n := len(f.requests()); n != 3 {
			t.Errorf("%d requests, want 3", n)
		}
	})
	t.Run("time-out", func(t *testing.T) {
		// Each attempt is held until the client gives up on it.
		f := &fakeKeyline{answer: answerLikeKeyline}
		f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The server notices the client hanging up only once the body is read.
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			f.serve(w, r)
		}))
		t.Cleanup(f.srv.Close)
		code, _, errs := runReport(t, f.env(), nil, "build", "--pipeline-id", "ci", "--number", "1", "--state", "failed", "--timeout", "50ms")
		if code != 1 || !strings.Contains(errs, "gave up after 3 attempts") || !strings.Contains(errs, "Timeout") {
			t.Errorf("code %d, stderr %q", code, errs)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		f := newFakeKeyline(t, nil)
		env := f.env()
		f.srv.Close()
		code, _, errs := runReport(t, env, nil, "build", "--pipeline-id", "ci", "--number", "1", "--state", "failed")
		if code != 1 || !strings.Contains(errs, "gave up after 3 attempts") || strings.Count(errs, "retrying") != 2 {
			t.Errorf("code %d, stderr %q", code, errs)
		}
		if strings.Contains(errs, testSourceToken) {
			t.Errorf("stderr %q shows the URL's token", errs)
		}
	})
}

func TestReportLocalErrors(t *testing.T) {
	build := []string{"build", "--pipeline-id", "ci", "--number", "1", "--state", "successful"}
	tests := []struct {
		name  string
		env   func(f *fakeKeyline) map[string]string
		stdin io.Reader
		args  []string
		want  string
	}{
		{"no KEYLINE_URL", func(f *fakeKeyline) map[string]string { return map[string]string{"KEYLINE_TOKEN": testSourceSecret} },
			nil, build, "KEYLINE_URL is not set"},
		{"no KEYLINE_TOKEN", func(f *fakeKeyline) map[string]string {
			return map[string]string{"KEYLINE_URL": f.env()["KEYLINE_URL"]}
		}, nil, build, "KEYLINE_TOKEN is not set"},
		{"empty --token-stdin", nil, strings.NewReader("\n"), append(slices.Clone(build), "--token-stdin"), "standard input is empty"},
		{"plain http", func(f *fakeKeyline) map[string]string {
			return withEnv(f.env(), map[string]string{"KEYLINE_URL": "http://keyline.example.com/ingest/" + testSourceToken})
		}, nil, build, "must use https"},
		{"entity in URL", func(f *fakeKeyline) map[string]string {
			return withEnv(f.env(), map[string]string{"KEYLINE_URL": f.env()["KEYLINE_URL"] + "/builds"})
		}, nil, build, "ends in /builds"},
		{"query in URL", func(f *fakeKeyline) map[string]string {
			return withEnv(f.env(), map[string]string{"KEYLINE_URL": f.env()["KEYLINE_URL"] + "?x=1"})
		}, nil, build, "no user, query or fragment"},
		{"unknown state", nil, nil, []string{"build", "--pipeline-id", "ci", "--number", "1", "--state", "done"}, "state must be one of pending, in_progress"},
		{"no pipeline", nil, nil, []string{"build", "--number", "1", "--state", "failed"}, "--pipeline-id is required"},
		{"no number outside CI", nil, nil, []string{"build", "--pipeline-id", "ci", "--state", "failed"}, "--number is required"},
		{"bad commit", nil, nil, append(slices.Clone(build), "--commit", "HEAD"), `--commit "HEAD" is not a commit hash`},
		{"repository without commit", nil, nil, append(slices.Clone(build), "--repository", "1"), "--repository needs --commit"},
		{"bad time", nil, nil, append(slices.Clone(build), "--started-at", "yesterday"), `--started-at "yesterday" is not an RFC 3339 time`},
		{"bad issue key", nil, nil, append(slices.Clone(build), "--issue-key", "OPS-01"), `"OPS-01" is not a Jira issue key`},
		{"tests do not add up", nil, nil, append(slices.Clone(build), "--tests-total", "2", "--tests-passed", "3"), "--tests-total 2 is less than"},
		{"long ref", nil, nil, append(slices.Clone(build), "--ref", strings.Repeat("r", 256)), "ref is longer than 255"},
		{"bad environment type", nil, nil, []string{"deployment", "--pipeline-id", "p", "--environment-id", "e", "--sequence", "1",
			"--state", "failed", "--environment-type", "prod"}, "environment.type must be one of"},
		{"half a deployment reference", nil, nil, []string{"incident", "--id", "1", "--status", "open", "--opened-at", "2026-03-01T10:00:00Z",
			"--deployment-pipeline", "p"}, "go together"},
		{"incident without opened-at", nil, nil, []string{"incident", "--id", "1", "--status", "open"}, "--opened-at is required"},
		{"bad idempotency key", nil, nil, append(slices.Clone(build), "--idempotency-key", "a b"), "printable ASCII without spaces"},
		{"unknown kind", nil, nil, []string{"release"}, `unknown kind "release"`},
		{"no kind", nil, nil, nil, "missing kind"},
		{"stray argument", nil, nil, append(slices.Clone(build), "extra"), `unexpected argument "extra"`},
		{"secret as a flag", nil, nil, append(slices.Clone(build), "--token", testSourceSecret), "flag provided but not defined: -token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeKeyline(t, nil)
			env := f.env()
			if tc.env != nil {
				env = tc.env(f)
			}
			code, out, errs := runReport(t, env, tc.stdin, tc.args...)
			if code != 1 || !strings.Contains(errs, tc.want) {
				t.Errorf("code %d, stderr %q; want 1 and %q", code, errs, tc.want)
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
			if n := len(f.requests()); n != 0 {
				t.Errorf("%d requests sent; a local error must send nothing", n)
			}
		})
	}
}

func TestReportDryRunPrintsTheExactBody(t *testing.T) {
	args := []string{"deployment", "--pipeline-id", "deploy", "--environment-id", "staging", "--sequence", "4", "--state", "in_progress", "--issue-key", "OPS-4"}
	// No KEYLINE_URL or KEYLINE_TOKEN: a dry run needs neither.
	code, out, errs := runReport(t, githubEnv(), nil, append(slices.Clone(args), "--dry-run")...)
	if code != 0 {
		t.Fatalf("code %d, stderr %q", code, errs)
	}
	if _, err := ingest.ParseGeneric(ingest.GenericDeployment, []byte(out)); err != nil {
		t.Errorf("ParseGeneric refused the dry run's output: %v\n%s", err, out)
	}
	for _, empty := range []string{"null", `""`, `"startedAt"`, `"displayName"`} {
		if strings.Contains(out, empty) {
			t.Errorf("output holds an empty member (%s):\n%s", empty, out)
		}
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got["lastUpdated"] != testNow.Format(time.RFC3339) || got["ref"] != "OPS-77-login" {
		t.Errorf("defaults missing: %v", got)
	}

	f := newFakeKeyline(t, nil)
	if code, _, errs := runReport(t, withEnv(f.env(), githubEnv()), nil, args...); code != 0 {
		t.Fatalf("send: code %d, stderr %q", code, errs)
	}
	if sent := f.requests()[0].body; string(sent)+"\n" != out {
		t.Errorf("sent body differs from the dry run:\nsent %s\ndry  %s", sent, out)
	}
}

func TestReportTokenStdinAndKeys(t *testing.T) {
	var replies []string
	f := newFakeKeyline(t, func(n int, r *seenRequest) (int, string) {
		if n == 2 {
			return http.StatusOK, `{"outcome":"duplicate","event":"incident","delivery_id":"inc-7-resolved"}`
		}
		if n == 3 {
			return http.StatusAccepted, `{"outcome":"ignored","reason":"nothing to record"}`
		}
		return answerLikeKeyline(n, r)
	})
	env := withEnv(f.env(), map[string]string{"KEYLINE_TOKEN": "not-the-secret"})
	args := []string{"incident", "--id", "7", "--status", "resolved", "--opened-at", "2026-03-01T10:00:00Z",
		"--idempotency-key", "inc-7-resolved", "--token-stdin", "--json"}
	for i := 0; i < 3; i++ {
		code, out, errs := runReport(t, env, strings.NewReader(testSourceSecret+"\r\n"), args...)
		if code != 0 {
			t.Fatalf("attempt %d: code %d, stderr %q", i+1, code, errs)
		}
		replies = append(replies, out)
	}
	for i, r := range f.requests() {
		if r.sigErr != nil {
			t.Errorf("request %d: %v (the secret from stdin must sign, not KEYLINE_TOKEN)", i+1, r.sigErr)
		}
		if k := r.header.Get("Idempotency-Key"); k != "inc-7-resolved" {
			t.Errorf("request %d: Idempotency-Key %q", i+1, k)
		}
	}
	var first map[string]string
	if err := json.Unmarshal([]byte(replies[0]), &first); err != nil || first["outcome"] != "accepted" {
		t.Errorf("--json printed %q (%v)", replies[0], err)
	}
	if !strings.Contains(replies[1], `"outcome": "duplicate"`) {
		t.Errorf("--json printed %q", replies[1])
	}

	// Without --json: one line per outcome.
	code, out, _ := runReport(t, f.env(), nil, "incident", "--id", "7", "--status", "open", "--opened-at", "2026-03-01T10:00:00Z")
	if code != 0 || out != "accepted incident (delivery "+f.requests()[3].header.Get("Idempotency-Key")+")\n" {
		t.Errorf("code %d, stdout %q", code, out)
	}
	g := newFakeKeyline(t, func(int, *seenRequest) (int, string) {
		return http.StatusAccepted, `{"outcome":"ignored","reason":"nothing to record"}`
	})
	code, out, _ = runReport(t, g.env(), nil, "incident", "--id", "7", "--status", "open", "--opened-at", "2026-03-01T10:00:00Z")
	if code != 0 || out != "ignored: nothing to record\n" {
		t.Errorf("code %d, stdout %q", code, out)
	}

	// Generated keys differ between invocations, so two reports are never
	// taken for one.
	keys := map[string]bool{}
	for _, r := range f.requests()[3:] {
		keys[r.header.Get("Idempotency-Key")] = true
	}
	code, _, _ = runReport(t, f.env(), nil, "incident", "--id", "7", "--status", "open", "--opened-at", "2026-03-01T10:00:00Z")
	if last := f.requests()[len(f.requests())-1].header.Get("Idempotency-Key"); code != 0 || keys[last] {
		t.Errorf("code %d; key %q reused", code, last)
	}
}

func TestReportThroughRun(t *testing.T) {
	f := newFakeKeyline(t, nil)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"report", "build", "--pipeline-id", "ci", "--number", "2", "--state", "successful"}, f.env(), &out, &errb)
	if code != 0 || !strings.HasPrefix(out.String(), "accepted build") {
		t.Errorf("code %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code = run(context.Background(), []string{"report", "build", "--pipeline-id", "ci", "--number", "2", "--state", "successful"}, map[string]string{}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "KEYLINE_URL is not set") {
		t.Errorf("code %d, stderr %q", code, errb.String())
	}
}

func TestReportHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"report", "help"}, []string{"KEYLINE_URL", "KEYLINE_TOKEN", "--token-stdin", "3 attempts"}},
		{[]string{"report", "build", "-h"}, []string{"-pipeline-id", "-tests-total", "GITHUB_RUN_NUMBER", "-keyline-url", "-dry-run"}},
		{[]string{"report", "deployment", "--help"}, []string{"-environment-type", "-sequence", "-service"}},
		{[]string{"report", "incident", "-h"}, []string{"-opened-at", "-deployment-sequence", "no CI default"}},
		{[]string{"help"}, []string{"report"}},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, nil, &out, &errb); code != 0 {
			t.Errorf("%v: code %d, stderr %q", tc.args, code, errb.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
}

func TestPruneJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":"","b":null,"c":{"d":""},"f":0,"g":[],"h":false}`, `{"f":0,"h":false}`},
		{`{"z":"1","a":{"y":"","x":[{"k":"","v":"2"}]}}`, `{"z":"1","a":{"x":[{"v":"2"}]}}`},
		{`{"keys":["A-1",""]}`, `{"keys":["A-1",""]}`},
	}
	for _, tc := range tests {
		got, keep, err := pruneJSON([]byte(tc.in))
		if err != nil || !keep || string(got) != tc.want {
			t.Errorf("pruneJSON(%s) = %s, %v, %v; want %s", tc.in, got, keep, err, tc.want)
		}
	}
	if _, keep, err := pruneJSON([]byte(`{"a":{"b":null}}`)); keep || err != nil {
		t.Errorf("an object of empty members must be dropped (keep %v, err %v)", keep, err)
	}
	if _, _, err := pruneJSON([]byte(`{"a":`)); err == nil {
		t.Error("truncated JSON must fail")
	}
}
