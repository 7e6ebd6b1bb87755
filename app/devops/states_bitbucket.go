package devops

import "strings"

// BitbucketBuildState maps a Bitbucket Cloud commit status state
// (repo:commit_status_created|updated) to a build state.
func BitbucketBuildState(state string) BuildState {
	switch strings.ToUpper(state) {
	case "INPROGRESS":
		return BuildInProgress
	case "SUCCESSFUL":
		return BuildSuccessful
	case "FAILED":
		return BuildFailed
	case "STOPPED":
		return BuildCancelled
	}
	return BuildUnknown
}

// BitbucketPullRequestState maps a Bitbucket pull request's state and draft
// flag; a superseded pull request is declined.
func BitbucketPullRequestState(state string, draft bool) PullRequestState {
	switch strings.ToUpper(state) {
	case "MERGED":
		return PullRequestMerged
	case "DECLINED", "SUPERSEDED":
		return PullRequestDeclined
	case "OPEN":
		if draft {
			return PullRequestDraft
		}
		return PullRequestOpen
	}
	return PullRequestUnknown
}

// BitbucketParticipantApproval maps a pull request participant's approved
// flag and state.
func BitbucketParticipantApproval(approved bool, state string) ApprovalStatus {
	switch {
	case approved || strings.EqualFold(state, "approved"):
		return ApprovalApproved
	case strings.EqualFold(state, "changes_requested"):
		return ApprovalNeedsWork
	}
	return ApprovalUnapproved
}
