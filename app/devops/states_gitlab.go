package devops

import "strings"

// GitLabPipelineState maps a GitLab pipeline status (Pipeline Hook
// object_attributes.status) to a build state, as the GitLab for Jira app
// does; "manual" (waiting for someone to start a job) is pending and
// "canceling" is already cancelled.
func GitLabPipelineState(status string) BuildState {
	switch strings.ToLower(status) {
	case "created", "waiting_for_resource", "preparing", "pending", "scheduled", "manual", "waiting_for_callback":
		return BuildPending
	case "running":
		return BuildInProgress
	case "success":
		return BuildSuccessful
	case "failed":
		return BuildFailed
	case "canceled", "canceling", "skipped":
		return BuildCancelled
	}
	return BuildUnknown
}

// GitLabDeploymentState maps a GitLab deployment status (Deployment Hook
// status) to a deployment state, as the GitLab for Jira app does.
func GitLabDeploymentState(status string) DeploymentState {
	switch strings.ToLower(status) {
	case "created", "blocked":
		return DeploymentPending
	case "running":
		return DeploymentInProgress
	case "success":
		return DeploymentSuccessful
	case "failed":
		return DeploymentFailed
	case "canceled", "skipped":
		return DeploymentCancelled
	}
	return DeploymentUnknown
}

// GitLabEnvironmentType maps a GitLab environment tier. "other" and anything
// unknown yield unmapped, so the rules and heuristic decide.
func GitLabEnvironmentType(tier string) EnvironmentType {
	switch t := EnvironmentType(strings.ToLower(tier)); t {
	case EnvironmentDevelopment, EnvironmentTesting, EnvironmentStaging, EnvironmentProduction:
		return t
	}
	return EnvironmentUnmapped
}

// GitLabMergeRequestState maps a merge request's state and draft flag.
// "locked" is the brief state while GitLab merges, so still open.
func GitLabMergeRequestState(state string, draft bool) PullRequestState {
	switch strings.ToLower(state) {
	case "merged":
		return PullRequestMerged
	case "closed":
		return PullRequestDeclined
	case "opened", "reopened", "locked":
		if draft {
			return PullRequestDraft
		}
		return PullRequestOpen
	}
	return PullRequestUnknown
}

// GitLabReviewerApproval maps a merge request reviewer's state.
func GitLabReviewerApproval(state string) ApprovalStatus {
	switch strings.ToLower(state) {
	case "approved":
		return ApprovalApproved
	case "requested_changes":
		return ApprovalNeedsWork
	}
	return ApprovalUnapproved // unreviewed, review_started, reviewed, unapproved
}
