package devops

import "strings"

// PagerDutyIncidentStatus maps a PagerDuty v3 webhook to an incident status.
// The incident's own data.status (triggered, acknowledged, resolved) is
// preferred because every incident event carries it; the event type
// (incident.triggered, incident.resolved, …) is the fallback. Events that
// say nothing about the status (annotated, priority_updated, …) yield
// unknown, which never overwrites a known status.
func PagerDutyIncidentStatus(eventType, dataStatus string) IncidentStatus {
	switch strings.ToLower(dataStatus) {
	case "triggered", "acknowledged":
		return IncidentOpen
	case "resolved":
		return IncidentResolved
	}
	switch strings.ToLower(eventType) {
	case "incident.triggered", "incident.acknowledged", "incident.unacknowledged",
		"incident.reopened", "incident.escalated", "incident.reassigned", "incident.delegated":
		return IncidentOpen
	case "incident.resolved":
		return IncidentResolved
	}
	return IncidentUnknown
}

// OpsgenieIncidentStatus maps an Opsgenie outgoing-webhook action. Only
// actions that open or close an alert carry a status: a note added to a
// closed alert must not reopen it. "Delete" is unknown; the caller decides
// whether a deleted alert is dropped.
func OpsgenieIncidentStatus(action string) IncidentStatus {
	switch strings.ToLower(action) {
	case "create", "acknowledge", "unacknowledge", "escalate":
		return IncidentOpen
	case "close":
		return IncidentResolved
	}
	return IncidentUnknown
}
