package devops

import (
	"strings"
	"testing"
	"time"
)

func TestStateValidAndFinal(t *testing.T) {
	builds := map[BuildState]bool{ // value: final
		BuildPending: false, BuildInProgress: false, BuildUnknown: false,
		BuildSuccessful: true, BuildFailed: true, BuildCancelled: true,
	}
	for s, final := range builds {
		if !s.Valid() || s.Final() != final {
			t.Errorf("build %s: valid %v final %v", s, s.Valid(), s.Final())
		}
	}
	deployments := map[DeploymentState]bool{
		DeploymentUnknown: false, DeploymentPending: false, DeploymentInProgress: false,
		DeploymentCancelled: true, DeploymentFailed: true, DeploymentRolledBack: true, DeploymentSuccessful: true,
	}
	for s, final := range deployments {
		if !s.Valid() || s.Final() != final {
			t.Errorf("deployment %s: valid %v final %v", s, s.Valid(), s.Final())
		}
	}
	prs := map[PullRequestState]bool{
		PullRequestOpen: false, PullRequestDraft: false, PullRequestDeclined: false,
		PullRequestUnknown: false, PullRequestMerged: true,
	}
	for s, final := range prs {
		if !s.Valid() || s.Final() != final {
			t.Errorf("pull request %s: valid %v final %v", s, s.Valid(), s.Final())
		}
	}
	for _, s := range []IncidentStatus{IncidentOpen, IncidentResolved, IncidentUnknown} {
		if !s.Valid() || s.Final() {
			t.Errorf("incident %s: valid %v final %v", s, s.Valid(), s.Final())
		}
	}
	for _, bad := range []string{"", "success", "SUCCESSFUL", "in-progress", "closed"} {
		if BuildState(bad).Valid() || DeploymentState(bad).Valid() || IncidentStatus(bad).Valid() {
			t.Errorf("%q should be invalid", bad)
		}
	}
	for _, bad := range []string{"", "open", "CLOSED", "SUPERSEDED"} {
		if PullRequestState(bad).Valid() {
			t.Errorf("pull request %q should be invalid", bad)
		}
	}
	for _, a := range []ApprovalStatus{ApprovalApproved, ApprovalUnapproved, ApprovalNeedsWork} {
		if !a.Valid() {
			t.Errorf("%s should be valid", a)
		}
	}
	if ApprovalStatus("approved").Valid() {
		t.Error("lower-case approval should be invalid")
	}
}

func TestParseStates(t *testing.T) {
	if s, ok := ParseBuildState(" In_Progress "); !ok || s != BuildInProgress {
		t.Errorf("ParseBuildState = %q, %v", s, ok)
	}
	if s, ok := ParseDeploymentState("ROLLED_BACK"); !ok || s != DeploymentRolledBack {
		t.Errorf("ParseDeploymentState = %q, %v", s, ok)
	}
	if s, ok := ParsePullRequestState("merged"); !ok || s != PullRequestMerged {
		t.Errorf("ParsePullRequestState = %q, %v", s, ok)
	}
	if s, ok := ParseIncidentStatus("Resolved"); !ok || s != IncidentResolved {
		t.Errorf("ParseIncidentStatus = %q, %v", s, ok)
	}
	for _, bad := range []string{"", "done", "in progress"} {
		if _, ok := ParseBuildState(bad); ok {
			t.Errorf("ParseBuildState(%q) accepted", bad)
		}
		if _, ok := ParseDeploymentState(bad); ok {
			t.Errorf("ParseDeploymentState(%q) accepted", bad)
		}
		if _, ok := ParsePullRequestState(bad); ok {
			t.Errorf("ParsePullRequestState(%q) accepted", bad)
		}
		if _, ok := ParseIncidentStatus(bad); ok {
			t.Errorf("ParseIncidentStatus(%q) accepted", bad)
		}
	}
}

func TestAdvanceBuild(t *testing.T) {
	tests := []struct {
		current, next BuildState
		want          bool
	}{
		{"", BuildPending, true},
		{"", BuildSuccessful, true},
		{"garbage", BuildPending, true},
		{BuildPending, "", false},
		{BuildPending, "garbage", false},
		{BuildPending, BuildInProgress, true},
		{BuildPending, BuildSuccessful, true},
		{BuildInProgress, BuildInProgress, true}, // redelivery: harmless
		{BuildInProgress, BuildFailed, true},
		{BuildInProgress, BuildPending, false},
		{BuildSuccessful, BuildInProgress, false}, // the example
		{BuildSuccessful, BuildPending, false},
		{BuildFailed, BuildSuccessful, true}, // re-run outcome
		{BuildSuccessful, BuildFailed, true},
		{BuildSuccessful, BuildCancelled, true},
		{BuildUnknown, BuildPending, true},
		{BuildUnknown, BuildUnknown, true},
		{BuildPending, BuildUnknown, false},
		{BuildSuccessful, BuildUnknown, false},
	}
	for _, tt := range tests {
		if got := AdvanceBuild(tt.current, tt.next); got != tt.want {
			t.Errorf("AdvanceBuild(%q, %q) = %v, want %v", tt.current, tt.next, got, tt.want)
		}
	}
}

func TestAdvanceDeployment(t *testing.T) {
	tests := []struct {
		current, next DeploymentState
		want          bool
	}{
		{"", DeploymentPending, true},
		{DeploymentPending, DeploymentInProgress, true},
		{DeploymentInProgress, DeploymentPending, false},
		{DeploymentInProgress, DeploymentSuccessful, true},
		{DeploymentSuccessful, DeploymentInProgress, false},
		{DeploymentSuccessful, DeploymentRolledBack, true},
		{DeploymentRolledBack, DeploymentSuccessful, true},
		{DeploymentFailed, DeploymentSuccessful, true},
		{DeploymentSuccessful, DeploymentUnknown, false}, // GitHub "inactive"
		{DeploymentCancelled, DeploymentPending, false},
	}
	for _, tt := range tests {
		if got := AdvanceDeployment(tt.current, tt.next); got != tt.want {
			t.Errorf("AdvanceDeployment(%q, %q) = %v, want %v", tt.current, tt.next, got, tt.want)
		}
	}
}

func TestAdvancePullRequest(t *testing.T) {
	tests := []struct {
		current, next PullRequestState
		want          bool
	}{
		{"", PullRequestOpen, true},
		{PullRequestOpen, PullRequestDraft, true},
		{PullRequestDraft, PullRequestOpen, true},
		{PullRequestOpen, PullRequestDeclined, true},
		{PullRequestOpen, PullRequestMerged, true},
		{PullRequestDeclined, PullRequestOpen, false}, // reopening needs a newer time
		{PullRequestDeclined, PullRequestMerged, true},
		{PullRequestMerged, PullRequestOpen, false},
		{PullRequestMerged, PullRequestDeclined, false},
		{PullRequestMerged, PullRequestUnknown, false},
		{PullRequestOpen, "open", false},
	}
	for _, tt := range tests {
		if got := AdvancePullRequest(tt.current, tt.next); got != tt.want {
			t.Errorf("AdvancePullRequest(%q, %q) = %v, want %v", tt.current, tt.next, got, tt.want)
		}
	}
}

func TestAdvanceIncident(t *testing.T) {
	tests := []struct {
		current, next IncidentStatus
		want          bool
	}{
		{"", IncidentOpen, true},
		{IncidentOpen, IncidentResolved, true},
		{IncidentResolved, IncidentOpen, false},
		{IncidentResolved, IncidentResolved, true},
		{IncidentOpen, IncidentUnknown, false},
		{IncidentUnknown, IncidentOpen, true},
	}
	for _, tt := range tests {
		if got := AdvanceIncident(tt.current, tt.next); got != tt.want {
			t.Errorf("AdvanceIncident(%q, %q) = %v, want %v", tt.current, tt.next, got, tt.want)
		}
	}
}

func TestAdvanceWithTimes(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	var zero time.Time
	build := []struct {
		name      string
		current   BuildState
		currentAt time.Time
		next      BuildState
		nextAt    time.Time
		want      bool
	}{
		{"re-run outcome replaces first", BuildFailed, t0, BuildSuccessful, t1, true},
		{"late first outcome ignored", BuildSuccessful, t1, BuildFailed, t0, false},
		{"re-run start ignored", BuildSuccessful, t0, BuildInProgress, t1, false},
		{"late start ignored", BuildInProgress, t1, BuildPending, t0, false},
		{"newer non-final may step back", BuildInProgress, t0, BuildPending, t1, true},
		{"older forward move ignored", BuildPending, t1, BuildInProgress, t0, false},
		{"same instant: order decides", BuildInProgress, t0, BuildPending, t0, false},
		{"same instant forward", BuildPending, t0, BuildInProgress, t0, true},
		{"same instant between finals", BuildFailed, t0, BuildSuccessful, t0, true},
		{"missing current time", BuildSuccessful, zero, BuildFailed, t0, true},
		{"missing next time", BuildInProgress, t0, BuildPending, zero, false},
		{"unknown never wins even if newer", BuildPending, t0, BuildUnknown, t1, false},
		{"empty current", "", zero, BuildPending, t0, true},
		{"same instant in another zone", BuildInProgress, t0, BuildPending, t0.In(time.FixedZone("X", 3600)), false},
	}
	for _, tt := range build {
		if got := Advance(tt.current, tt.currentAt, tt.next, tt.nextAt); got != tt.want {
			t.Errorf("%s: Advance(%q@%v, %q@%v) = %v, want %v", tt.name, tt.current, tt.currentAt, tt.next, tt.nextAt, got, tt.want)
		}
	}
	pr := []struct {
		name      string
		current   PullRequestState
		currentAt time.Time
		next      PullRequestState
		nextAt    time.Time
		want      bool
	}{
		{"reopen", PullRequestDeclined, t0, PullRequestOpen, t1, true},
		{"late close after reopen", PullRequestOpen, t1, PullRequestDeclined, t0, false},
		{"late draft after ready", PullRequestOpen, t1, PullRequestDraft, t0, false},
		{"merged is for ever", PullRequestMerged, t0, PullRequestOpen, t1, false},
	}
	for _, tt := range pr {
		if got := Advance(tt.current, tt.currentAt, tt.next, tt.nextAt); got != tt.want {
			t.Errorf("%s: Advance(%q, %q) = %v, want %v", tt.name, tt.current, tt.next, got, tt.want)
		}
	}
	if !Advance(IncidentResolved, t0, IncidentOpen, t1) {
		t.Error("a newer reopen should reopen an incident")
	}
	if Advance(IncidentOpen, t1, IncidentResolved, t0) {
		t.Error("a resolve older than a reopen should be ignored")
	}
	if !Advance(DeploymentSuccessful, t0, DeploymentRolledBack, t1) {
		t.Error("a newer rollback should apply")
	}
}

func TestGitHubRunState(t *testing.T) {
	tests := []struct {
		status, conclusion string
		want               BuildState
	}{
		{"requested", "", BuildPending},
		{"queued", "", BuildPending},
		{"waiting", "", BuildPending},
		{"pending", "", BuildPending},
		{"in_progress", "", BuildInProgress},
		{"completed", "success", BuildSuccessful},
		{"completed", "neutral", BuildSuccessful},
		{"completed", "skipped", BuildCancelled},
		{"completed", "failure", BuildFailed},
		{"completed", "timed_out", BuildFailed},
		{"completed", "startup_failure", BuildFailed},
		{"completed", "cancelled", BuildCancelled},
		{"completed", "stale", BuildCancelled},
		{"completed", "action_required", BuildPending},
		{"completed", "", BuildUnknown},
		{"completed", "mystery", BuildUnknown},
		{"COMPLETED", "SUCCESS", BuildSuccessful},
		{"", "success", BuildUnknown},
	}
	for _, tt := range tests {
		if got := GitHubRunState(tt.status, tt.conclusion); got != tt.want {
			t.Errorf("GitHubRunState(%q, %q) = %s, want %s", tt.status, tt.conclusion, got, tt.want)
		}
	}
}

// stringMapCase is one row of a provider-value table.
type stringMapCase[S ~string] struct {
	in   string
	want S
}

func checkStringMap[S ~string](t *testing.T, name string, f func(string) S, cases []stringMapCase[S]) {
	t.Helper()
	for _, c := range cases {
		if got := f(c.in); got != c.want {
			t.Errorf("%s(%q) = %s, want %s", name, c.in, got, c.want)
		}
		if got := f(strings.ToUpper(c.in)); got != c.want {
			t.Errorf("%s(%q) = %s, want %s (case)", name, strings.ToUpper(c.in), got, c.want)
		}
	}
}

func TestProviderStateMaps(t *testing.T) {
	checkStringMap(t, "GitHubDeploymentState", GitHubDeploymentState, []stringMapCase[DeploymentState]{
		{"queued", DeploymentPending}, {"waiting", DeploymentPending},
		{"pending", DeploymentInProgress}, {"in_progress", DeploymentInProgress},
		{"success", DeploymentSuccessful}, {"failure", DeploymentFailed}, {"error", DeploymentFailed},
		{"inactive", DeploymentUnknown}, {"", DeploymentUnknown},
	})
	checkStringMap(t, "GitLabPipelineState", GitLabPipelineState, []stringMapCase[BuildState]{
		{"created", BuildPending}, {"waiting_for_resource", BuildPending}, {"preparing", BuildPending},
		{"pending", BuildPending}, {"scheduled", BuildPending}, {"manual", BuildPending},
		{"running", BuildInProgress}, {"success", BuildSuccessful}, {"failed", BuildFailed},
		{"canceled", BuildCancelled}, {"canceling", BuildCancelled}, {"skipped", BuildCancelled},
		{"", BuildUnknown}, {"bogus", BuildUnknown},
	})
	checkStringMap(t, "GitLabDeploymentState", GitLabDeploymentState, []stringMapCase[DeploymentState]{
		{"created", DeploymentPending}, {"blocked", DeploymentPending}, {"running", DeploymentInProgress},
		{"success", DeploymentSuccessful}, {"failed", DeploymentFailed},
		{"canceled", DeploymentCancelled}, {"skipped", DeploymentCancelled}, {"", DeploymentUnknown},
	})
	checkStringMap(t, "GitLabEnvironmentType", GitLabEnvironmentType, []stringMapCase[EnvironmentType]{
		{"production", EnvironmentProduction}, {"staging", EnvironmentStaging}, {"testing", EnvironmentTesting},
		{"development", EnvironmentDevelopment}, {"other", EnvironmentUnmapped}, {"", EnvironmentUnmapped},
		{"unmapped", EnvironmentUnmapped},
	})
	checkStringMap(t, "BitbucketBuildState", BitbucketBuildState, []stringMapCase[BuildState]{
		{"INPROGRESS", BuildInProgress}, {"SUCCESSFUL", BuildSuccessful}, {"FAILED", BuildFailed},
		{"STOPPED", BuildCancelled}, {"", BuildUnknown}, {"PAUSED", BuildUnknown},
	})
	checkStringMap(t, "OpsgenieIncidentStatus", OpsgenieIncidentStatus, []stringMapCase[IncidentStatus]{
		{"Create", IncidentOpen}, {"Acknowledge", IncidentOpen}, {"UnAcknowledge", IncidentOpen},
		{"Escalate", IncidentOpen}, {"Close", IncidentResolved}, {"AddNote", IncidentUnknown},
		{"AssignOwnership", IncidentUnknown}, {"Delete", IncidentUnknown}, {"", IncidentUnknown},
	})
	checkStringMap(t, "GitHubReviewApproval", GitHubReviewApproval, []stringMapCase[ApprovalStatus]{
		{"approved", ApprovalApproved}, {"changes_requested", ApprovalNeedsWork},
		{"commented", ApprovalUnapproved}, {"dismissed", ApprovalUnapproved}, {"", ApprovalUnapproved},
	})
	checkStringMap(t, "GitLabReviewerApproval", GitLabReviewerApproval, []stringMapCase[ApprovalStatus]{
		{"approved", ApprovalApproved}, {"requested_changes", ApprovalNeedsWork},
		{"unreviewed", ApprovalUnapproved}, {"reviewed", ApprovalUnapproved},
	})
}

func TestPullRequestStateMaps(t *testing.T) {
	gh := []struct {
		state         string
		draft, merged bool
		want          PullRequestState
	}{
		{"open", false, false, PullRequestOpen},
		{"open", true, false, PullRequestDraft},
		{"closed", false, false, PullRequestDeclined},
		{"closed", false, true, PullRequestMerged},
		{"closed", true, true, PullRequestMerged},
		{"", false, false, PullRequestUnknown},
	}
	for _, tt := range gh {
		if got := GitHubPullRequestState(tt.state, tt.draft, tt.merged); got != tt.want {
			t.Errorf("GitHubPullRequestState(%q, %v, %v) = %s, want %s", tt.state, tt.draft, tt.merged, got, tt.want)
		}
	}
	gl := []struct {
		state string
		draft bool
		want  PullRequestState
	}{
		{"opened", false, PullRequestOpen},
		{"opened", true, PullRequestDraft},
		{"reopened", false, PullRequestOpen},
		{"locked", false, PullRequestOpen},
		{"closed", false, PullRequestDeclined},
		{"merged", false, PullRequestMerged},
		{"", false, PullRequestUnknown},
	}
	for _, tt := range gl {
		if got := GitLabMergeRequestState(tt.state, tt.draft); got != tt.want {
			t.Errorf("GitLabMergeRequestState(%q, %v) = %s, want %s", tt.state, tt.draft, got, tt.want)
		}
	}
	bb := []struct {
		state string
		draft bool
		want  PullRequestState
	}{
		{"OPEN", false, PullRequestOpen},
		{"OPEN", true, PullRequestDraft},
		{"MERGED", false, PullRequestMerged},
		{"DECLINED", false, PullRequestDeclined},
		{"SUPERSEDED", false, PullRequestDeclined},
		{"", false, PullRequestUnknown},
	}
	for _, tt := range bb {
		if got := BitbucketPullRequestState(tt.state, tt.draft); got != tt.want {
			t.Errorf("BitbucketPullRequestState(%q, %v) = %s, want %s", tt.state, tt.draft, got, tt.want)
		}
	}
	approvals := []struct {
		approved bool
		state    string
		want     ApprovalStatus
	}{
		{true, "", ApprovalApproved},
		{false, "approved", ApprovalApproved},
		{false, "changes_requested", ApprovalNeedsWork},
		{false, "", ApprovalUnapproved},
	}
	for _, tt := range approvals {
		if got := BitbucketParticipantApproval(tt.approved, tt.state); got != tt.want {
			t.Errorf("BitbucketParticipantApproval(%v, %q) = %s, want %s", tt.approved, tt.state, got, tt.want)
		}
	}
}

func TestIncidentAndEnvironmentProviderMaps(t *testing.T) {
	pd := []struct {
		eventType, status string
		want              IncidentStatus
	}{
		{"incident.triggered", "triggered", IncidentOpen},
		{"incident.acknowledged", "acknowledged", IncidentOpen},
		{"incident.resolved", "resolved", IncidentResolved},
		{"incident.reopened", "triggered", IncidentOpen},
		{"incident.annotated", "resolved", IncidentResolved}, // data.status wins
		{"incident.priority_updated", "", IncidentUnknown},
		{"incident.annotated", "", IncidentUnknown},
		{"incident.resolved", "", IncidentResolved},
		{"incident.reopened", "", IncidentOpen},
		{"incident.escalated", "", IncidentOpen},
		{"", "", IncidentUnknown},
	}
	for _, tt := range pd {
		if got := PagerDutyIncidentStatus(tt.eventType, tt.status); got != tt.want {
			t.Errorf("PagerDutyIncidentStatus(%q, %q) = %s, want %s", tt.eventType, tt.status, got, tt.want)
		}
	}
	if GitHubEnvironmentType(true) != EnvironmentProduction || GitHubEnvironmentType(false) != EnvironmentUnmapped {
		t.Error("GitHubEnvironmentType")
	}
}

// TestProviderMapsYieldValidStates guards every map against returning a
// value outside its type, whatever the input.
func TestProviderMapsYieldValidStates(t *testing.T) {
	inputs := []string{"", " ", "success", "SUCCESS", "completed", "closed", "open", "\x00", "ünïcode"}
	for _, a := range inputs {
		for _, b := range inputs {
			for _, ok := range []bool{
				GitHubRunState(a, b).Valid(), GitHubDeploymentState(a).Valid(),
				GitHubPullRequestState(a, true, false).Valid(), GitHubReviewApproval(a).Valid(),
				GitLabPipelineState(a).Valid(), GitLabDeploymentState(a).Valid(), GitLabEnvironmentType(a).Valid(),
				GitLabMergeRequestState(a, false).Valid(), GitLabReviewerApproval(a).Valid(),
				BitbucketBuildState(a).Valid(), BitbucketPullRequestState(a, false).Valid(),
				BitbucketParticipantApproval(false, a).Valid(),
				PagerDutyIncidentStatus(a, b).Valid(), OpsgenieIncidentStatus(a).Valid(),
			} {
				if !ok {
					t.Fatalf("a map returned an invalid value for %q, %q", a, b)
				}
			}
		}
	}
}
