package devops

import "strings"

// GitHubRunState maps a GitHub Actions workflow_run's (or a check_suite's)
// status and conclusion to a build state. It follows GitHub for Jira except
// that a queued or waiting run is pending rather than in progress (Jira
// has a pending state; nothing is running yet) and a skipped run is
// cancelled rather than successful (nothing ran; GitLab's skipped maps the
// same way).
func GitHubRunState(status, conclusion string) BuildState {
	switch strings.ToLower(status) {
	case "requested", "queued", "pending", "waiting":
		return BuildPending
	case "in_progress":
		return BuildInProgress
	case "completed":
		switch strings.ToLower(conclusion) {
		case "success", "neutral":
			return BuildSuccessful
		case "failure", "timed_out", "startup_failure":
			return BuildFailed
		case "cancelled", "stale", "skipped":
			return BuildCancelled
		case "action_required":
			return BuildPending
		}
	}
	return BuildUnknown
}

// GitHubDeploymentState maps a GitHub deployment_status state to a deployment
// state, as GitHub for Jira does: "pending" is in progress because GitHub
// goes straight from pending to success, and a deployment waiting on a
// protection rule is pending rather than unknown. "inactive" (a newer
// deployment to the environment superseded this one) is unknown, which
// never overwrites the outcome already recorded.
func GitHubDeploymentState(state string) DeploymentState {
	switch strings.ToLower(state) {
	case "queued", "waiting":
		return DeploymentPending
	case "pending", "in_progress":
		return DeploymentInProgress
	case "success":
		return DeploymentSuccessful
	case "failure", "error":
		return DeploymentFailed
	}
	return DeploymentUnknown
}

// GitHubEnvironmentType is the environment type GitHub states itself: the
// deployment's production_environment flag. A false flag says nothing (it is
// false unless set, except for an environment named "production"), so it
// yields unmapped and the rules and heuristic decide.
func GitHubEnvironmentType(productionEnvironment bool) EnvironmentType {
	if productionEnvironment {
		return EnvironmentProduction
	}
	return EnvironmentUnmapped
}

// GitHubPullRequestState maps a pull_request's state, draft and merged fields.
func GitHubPullRequestState(state string, draft, merged bool) PullRequestState {
	switch {
	case merged:
		return PullRequestMerged
	case strings.EqualFold(state, "closed"):
		return PullRequestDeclined
	case strings.EqualFold(state, "open") && draft:
		return PullRequestDraft
	case strings.EqualFold(state, "open"):
		return PullRequestOpen
	}
	return PullRequestUnknown
}

// GitHubReviewApproval maps a pull_request_review's state (lower case in
// webhooks, upper case in the REST API).
func GitHubReviewApproval(state string) ApprovalStatus {
	switch strings.ToLower(state) {
	case "approved":
		return ApprovalApproved
	case "changes_requested":
		return ApprovalNeedsWork
	}
	return ApprovalUnapproved // commented, dismissed, pending
}
