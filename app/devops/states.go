package devops

import (
	"strings"
	"time"
)

// Entity states, spelled as in Jira's DevOps APIs so they pass through to Jira
// and to the generic API unchanged.
//
// Each state type has an order used to refuse moving an entity backwards when
// webhooks arrive late or twice. Ranks, lowest first (states of equal rank
// may replace each other):
//
//	BuildState:       unknown < pending < in_progress < successful = failed = cancelled (final)
//	DeploymentState:  unknown < pending < in_progress < successful = failed = cancelled = rolled_back (final)
//	PullRequestState: UNKNOWN < OPEN = DRAFT < DECLINED < MERGED (final)
//	IncidentStatus:   unknown < open < resolved
//
// A declined pull request and a resolved incident are not final: they can be
// reopened, which only a newer event may do (see Advance).

// BuildState is the state of a build (a CI pipeline run).
type BuildState string

// Build states.
const (
	BuildPending    BuildState = "pending"
	BuildInProgress BuildState = "in_progress"
	BuildSuccessful BuildState = "successful"
	BuildFailed     BuildState = "failed"
	BuildCancelled  BuildState = "cancelled"
	BuildUnknown    BuildState = "unknown"
)

// Valid reports whether s is one of the build states.
func (s BuildState) Valid() bool { return s.rank() >= 0 }

// Final reports whether the build has finished: successful, failed or
// cancelled.
func (s BuildState) Final() bool { return s.rank() == rankFinal }

func (s BuildState) rank() int {
	switch s {
	case BuildUnknown:
		return rankUnknown
	case BuildPending:
		return rankPending
	case BuildInProgress:
		return rankInProgress
	case BuildSuccessful, BuildFailed, BuildCancelled:
		return rankFinal
	}
	return rankInvalid
}

// DeploymentState is the state of a deployment.
type DeploymentState string

// Deployment states.
const (
	DeploymentUnknown    DeploymentState = "unknown"
	DeploymentPending    DeploymentState = "pending"
	DeploymentInProgress DeploymentState = "in_progress"
	DeploymentCancelled  DeploymentState = "cancelled"
	DeploymentFailed     DeploymentState = "failed"
	DeploymentRolledBack DeploymentState = "rolled_back"
	DeploymentSuccessful DeploymentState = "successful"
)

// Valid reports whether s is one of the deployment states.
func (s DeploymentState) Valid() bool { return s.rank() >= 0 }

// Final reports whether the deployment has finished: successful, failed,
// cancelled or rolled back.
func (s DeploymentState) Final() bool { return s.rank() == rankFinal }

func (s DeploymentState) rank() int {
	switch s {
	case DeploymentUnknown:
		return rankUnknown
	case DeploymentPending:
		return rankPending
	case DeploymentInProgress:
		return rankInProgress
	case DeploymentSuccessful, DeploymentFailed, DeploymentCancelled, DeploymentRolledBack:
		return rankFinal
	}
	return rankInvalid
}

// PullRequestState is the state of a pull (merge) request, upper-case as in
// Jira's development information API.
type PullRequestState string

// Pull request states.
const (
	PullRequestOpen     PullRequestState = "OPEN"
	PullRequestDraft    PullRequestState = "DRAFT"
	PullRequestMerged   PullRequestState = "MERGED"
	PullRequestDeclined PullRequestState = "DECLINED"
	PullRequestUnknown  PullRequestState = "UNKNOWN"
)

// Valid reports whether s is one of the pull request states.
func (s PullRequestState) Valid() bool { return s.rank() >= 0 }

// Final reports whether the pull request is merged. A declined (closed) pull
// request can be reopened.
func (s PullRequestState) Final() bool { return s == PullRequestMerged }

func (s PullRequestState) rank() int {
	switch s {
	case PullRequestUnknown:
		return rankUnknown
	case PullRequestOpen, PullRequestDraft:
		return rankPending
	case PullRequestDeclined:
		return rankInProgress
	case PullRequestMerged:
		return rankFinal
	}
	return rankInvalid
}

// IncidentStatus is the status of an incident, as in Jira's operations API.
type IncidentStatus string

// Incident statuses.
const (
	IncidentOpen     IncidentStatus = "open"
	IncidentResolved IncidentStatus = "resolved"
	IncidentUnknown  IncidentStatus = "unknown"
)

// Valid reports whether s is one of the incident statuses.
func (s IncidentStatus) Valid() bool { return s.rank() >= 0 }

// Final is always false: PagerDuty and Opsgenie reopen resolved incidents.
func (s IncidentStatus) Final() bool { return false }

func (s IncidentStatus) rank() int {
	switch s {
	case IncidentUnknown:
		return rankUnknown
	case IncidentOpen:
		return rankPending
	case IncidentResolved:
		return rankInProgress
	}
	return rankInvalid
}

// Ranks shared by the state types.
const (
	rankInvalid    = -1
	rankUnknown    = 0
	rankPending    = 1
	rankInProgress = 2
	rankFinal      = 3
)

// Lifecycle is satisfied by the four entity state types.
type Lifecycle interface {
	BuildState | DeploymentState | PullRequestState | IncidentStatus
	Valid() bool
	Final() bool
	rank() int
}

// Advance reports whether an event carrying state next, which happened at
// nextAt, should replace the stored state current, recorded for an event at
// currentAt. Zero times mean "not known". The rules, in order:
//
//  1. An invalid next never applies; anything applies over an invalid or
//     empty current (nothing stored yet).
//  2. Unknown never replaces a known state: a provider status Keyline does
//     not understand (GitHub's "inactive" deployment) adds no information.
//  3. A final state is never replaced by a non-final one: a late
//     "in_progress" after "successful" is ignored, and so is the start of a
//     re-run of a finished run (its outcome, final again, will apply).
//  4. When both times are known and differ, the newer event wins: between
//     final states this lets a re-run's outcome replace the first one, and a
//     reopened pull request or incident reopen, while a late event from
//     before the stored one is ignored.
//  5. Otherwise (same instant, or a time missing) the order decides: next
//     applies if its rank is not lower, so a redelivery applies again
//     harmlessly and a later delivery between equal ranks wins.
func Advance[S Lifecycle](current S, currentAt time.Time, next S, nextAt time.Time) bool {
	switch {
	case !next.Valid():
		return false
	case !current.Valid():
		return true
	case next.rank() == rankUnknown:
		return current.rank() == rankUnknown
	case current.Final() && !next.Final():
		return false
	case !currentAt.IsZero() && !nextAt.IsZero() && !currentAt.Equal(nextAt):
		return nextAt.After(currentAt)
	}
	return next.rank() >= current.rank()
}

// AdvanceBuild is Advance for builds when event times are not known.
func AdvanceBuild(current, next BuildState) bool {
	return Advance(current, time.Time{}, next, time.Time{})
}

// AdvanceDeployment is Advance for deployments when event times are not known.
func AdvanceDeployment(current, next DeploymentState) bool {
	return Advance(current, time.Time{}, next, time.Time{})
}

// AdvancePullRequest is Advance for pull requests when event times are not
// known.
func AdvancePullRequest(current, next PullRequestState) bool {
	return Advance(current, time.Time{}, next, time.Time{})
}

// AdvanceIncident is Advance for incidents when event times are not known.
func AdvanceIncident(current, next IncidentStatus) bool {
	return Advance(current, time.Time{}, next, time.Time{})
}

// ParseBuildState reads a build state from the generic API, without regard to
// case or surrounding space.
func ParseBuildState(s string) (BuildState, bool) {
	st := BuildState(strings.ToLower(strings.TrimSpace(s)))
	return st, st.Valid()
}

// ParseDeploymentState reads a deployment state from the generic API, without
// regard to case or surrounding space.
func ParseDeploymentState(s string) (DeploymentState, bool) {
	st := DeploymentState(strings.ToLower(strings.TrimSpace(s)))
	return st, st.Valid()
}

// ParsePullRequestState reads a pull request state without regard to case or
// surrounding space.
func ParsePullRequestState(s string) (PullRequestState, bool) {
	st := PullRequestState(strings.ToUpper(strings.TrimSpace(s)))
	return st, st.Valid()
}

// ParseIncidentStatus reads an incident status from the generic API, without
// regard to case or surrounding space.
func ParseIncidentStatus(s string) (IncidentStatus, bool) {
	st := IncidentStatus(strings.ToLower(strings.TrimSpace(s)))
	return st, st.Valid()
}

// ApprovalStatus is a pull request reviewer's verdict, as in Jira's
// development information API.
type ApprovalStatus string

// Approval statuses.
const (
	ApprovalApproved   ApprovalStatus = "APPROVED"
	ApprovalUnapproved ApprovalStatus = "UNAPPROVED"
	ApprovalNeedsWork  ApprovalStatus = "NEEDSWORK"
)

// Valid reports whether a is one of the approval statuses.
func (a ApprovalStatus) Valid() bool {
	switch a {
	case ApprovalApproved, ApprovalUnapproved, ApprovalNeedsWork:
		return true
	}
	return false
}
