package devops

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestExcerpt(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"hello world, long", 10, "hello w…"},
		{"hello   world", 11, "hello…"},
		{"ääää", 7, "ää…"},
		{"ääää", 6, "ä…"}, // never split the two-byte ä
		{"abc", 2, ""},
		{"", 0, ""},
	}
	for _, tt := range tests {
		got := Excerpt(tt.in, tt.n)
		if got != tt.want {
			t.Errorf("Excerpt(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if len(got) > tt.n || !utf8.ValidString(got) {
			t.Errorf("Excerpt(%q, %d) = %q: too long or broken UTF-8", tt.in, tt.n, got)
		}
	}
	long := strings.Repeat("日本語", 1000)
	if got := Excerpt(long, MaxExcerptLen); len(got) > MaxExcerptLen || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("long excerpt: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

func TestBranchOfRef(t *testing.T) {
	tests := []struct {
		ref    string
		want   string
		branch bool
	}{
		{"refs/heads/main", "main", true},
		{"refs/heads/feature/OPS-1", "feature/OPS-1", true},
		{"main", "main", true},
		{"feature/ops-2", "feature/ops-2", true},
		{"refs/tags/v1.0", "", false},
		{"refs/pull/1/merge", "", false},
		{"refs/heads/", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got, ok := BranchOfRef(tt.ref); got != tt.want || ok != tt.branch {
			t.Errorf("BranchOfRef(%q) = %q, %v; want %q, %v", tt.ref, got, ok, tt.want, tt.branch)
		}
	}
}

func TestValidCommitSHA(t *testing.T) {
	for _, s := range []string{"abc1234", "0123456789abcdef0123456789abcdef01234567", strings.Repeat("f", 64)} {
		if !ValidCommitSHA(s) {
			t.Errorf("%q should be valid", s)
		}
	}
	for _, s := range []string{"", "abc123", "ABC1234", "abc123g", strings.Repeat("f", 65), "abc 1234"} {
		if ValidCommitSHA(s) {
			t.Errorf("%q should be invalid", s)
		}
	}
}

func TestRootCauseCommit(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"root cause: 1a2b3c4d", "1a2b3c4d"},
		{"Outage.\nRoot Cause:\tABCDEF0123\nmore", "abcdef0123"},
		{"root cause: the cache\nroot cause: deadbeef", "deadbeef"},
		{"root cause: abc", ""},
		{"root cause: deadbeefx", ""},
		{"root cause:", ""},
		{"no marker deadbeef", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := RootCauseCommit(tt.in); got != tt.want {
			t.Errorf("RootCauseCommit(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDeploymentKey(t *testing.T) {
	d := Deployment{PipelineID: "deploy.yml", EnvironmentID: "prod", SequenceNumber: 42}
	if got := d.Key(); got != (DeploymentKey{PipelineID: "deploy.yml", EnvironmentID: "prod", SequenceNumber: 42}) {
		t.Errorf("Key = %+v", got)
	}
}

func TestEntityJSON(t *testing.T) {
	pr := PullRequest{
		ID: "7", RepositoryID: "1", Number: 7, Title: "OPS-1 login", State: PullRequestOpen,
		Reviewers: []Reviewer{{Person: Person{Username: "jane"}, Approval: ApprovalApproved}},
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	b, err := json.Marshal(pr)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"status":"OPEN"`, `"reviewers":[{"username":"jane","approvalStatus":"APPROVED"}]`, `"createdAt":"2026-01-02T03:04:05Z"`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON %s lacks %s", s, want)
		}
	}
	for _, absent := range []string{"mergedAt", "closedAt", "lastUpdate"} {
		if strings.Contains(s, absent) {
			t.Errorf("JSON %s has zero time %s", s, absent)
		}
	}
	var back PullRequest
	if err := json.Unmarshal(b, &back); err != nil || back.Reviewers[0].Approval != ApprovalApproved || !back.CreatedAt.Equal(pr.CreatedAt) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	inc := Incident{SourceID: "P1", Status: IncidentOpen, Deployment: &DeploymentKey{PipelineID: "p", EnvironmentID: "e", SequenceNumber: 3}}
	b, _ = json.Marshal(inc)
	if !strings.Contains(string(b), `"deployment":{"pipelineId":"p","environmentId":"e","deploymentSequenceNumber":3}`) {
		t.Errorf("incident JSON %s", b)
	}
}
