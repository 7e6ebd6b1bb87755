package ingest

import (
	"strings"
	"time"

	"github.com/keyline/keyline/app/devops"
)

// ParsePagerDuty turns a PagerDuty v3 webhook into an Event. PagerDuty puts
// its idempotency key in the body (event.id), so DeliveryID is set here.
func ParsePagerDuty(body []byte) (*Event, error) {
	var p struct {
		Event struct {
			ID           string `json:"id"`
			EventType    string `json:"event_type"`
			ResourceType string `json:"resource_type"`
			OccurredAt   string `json:"occurred_at"`
			Data         struct {
				ID       string `json:"id"`
				Status   string `json:"status"`
				Title    string `json:"title"`
				HTMLURL  string `json:"html_url"`
				Urgency  string `json:"urgency"`
				Priority *struct {
					Summary string `json:"summary"`
				} `json:"priority"`
				Service struct {
					Summary string `json:"summary"`
				} `json:"service"`
				Body *struct {
					Details string `json:"details"`
				} `json:"body"`
			} `json:"data"`
		} `json:"event"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	e := p.Event
	if blank(e.ID) || blank(e.EventType) {
		return nil, malformed("event.id and event.event_type are required")
	}
	if e.ResourceType != "incident" {
		return &Event{Name: e.EventType, DeliveryID: e.ID, Ignored: "only incident events are recorded"}, nil
	}
	if blank(e.Data.ID) {
		return nil, malformed("event.data.id is required")
	}
	at, err := flexTime(e.OccurredAt)
	if err != nil {
		return nil, err
	}
	if at.IsZero() {
		return nil, malformed("event.occurred_at is required")
	}
	in := devops.Incident{
		SourceID: e.Data.ID, Title: e.Data.Title, Status: devops.PagerDutyIncidentStatus(e.EventType, e.Data.Status),
		Service: e.Data.Service.Summary, URL: e.Data.HTMLURL, UpdatedAt: at, Severity: e.Data.Urgency,
	}
	if e.Data.Priority != nil && e.Data.Priority.Summary != "" {
		in.Severity = e.Data.Priority.Summary
	}
	switch e.EventType {
	case "incident.triggered":
		in.OpenedAt = at
	case "incident.resolved":
		in.ResolvedAt = at
	}
	text := e.Data.Title
	if e.Data.Body != nil {
		text += "\n" + e.Data.Body.Details
	}
	in.CommitSHA = devops.RootCauseCommit(text)
	in.IssueKeys = devops.ExtractIssueKeys(text)
	return &Event{Name: e.EventType, DeliveryID: e.ID, Incidents: []devops.Incident{in}}, nil
}

// ParseOpsgenie turns an Opsgenie outgoing-webhook alert into an Event.
// Opsgenie sends no delivery id; alert id, action and update time make one.
func ParseOpsgenie(body []byte) (*Event, error) {
	var p struct {
		Action string `json:"action"`
		Alert  struct {
			AlertID     string   `json:"alertId"`
			Message     string   `json:"message"`
			Description string   `json:"description"`
			Tags        []string `json:"tags"`
			Priority    string   `json:"priority"`
			Entity      string   `json:"entity"`
			CreatedAt   int64    `json:"createdAt"`
			UpdatedAt   int64    `json:"updatedAt"`
		} `json:"alert"`
	}
	if err := decode(body, &p); err != nil {
		return nil, err
	}
	a := p.Alert
	if blank(a.AlertID) || blank(p.Action) {
		return nil, malformed("action and alert.alertId are required")
	}
	status := devops.OpsgenieIncidentStatus(p.Action)
	if status == devops.IncidentUnknown {
		return ignored(p.Action, "Opsgenie "+p.Action+" does not change an incident"), nil
	}
	if a.CreatedAt <= 0 {
		return nil, malformed("alert.createdAt is required")
	}
	// Milliseconds past year 9999 are no time Opsgenie sends; they cannot be
	// stored (PostgreSQL) or shown (JSON), so refuse them here.
	if a.CreatedAt > maxUnixMilli || a.UpdatedAt > maxUnixMilli {
		return nil, malformed("alert.createdAt and updatedAt must be Unix milliseconds before year 10000")
	}
	updated := a.UpdatedAt
	if updated <= 0 {
		updated = a.CreatedAt
	}
	in := devops.Incident{
		SourceID: a.AlertID, Title: a.Message, Severity: a.Priority, Status: status,
		Service: opsgenieService(a.Tags, a.Entity), OpenedAt: time.UnixMilli(a.CreatedAt).UTC(), UpdatedAt: time.UnixMilli(updated).UTC(),
		CommitSHA: devops.RootCauseCommit(a.Message + "\n" + a.Description), IssueKeys: devops.ExtractIssueKeys(a.Message, a.Description),
	}
	if status == devops.IncidentResolved {
		in.ResolvedAt = in.UpdatedAt
	}
	return &Event{Name: p.Action, DeliveryID: a.AlertID + "/" + strings.ToLower(p.Action) + "/" + itoa(updated), Incidents: []devops.Incident{in}}, nil
}

// maxUnixMilli is 9999-12-31T23:59:59.999Z in Unix milliseconds.
const maxUnixMilli = 253402300799999

// opsgenieService takes the service from a "service:<name>" tag, the
// convention Keyline documents, else the alert's entity.
func opsgenieService(tags []string, entity string) string {
	for _, t := range tags {
		if s, ok := strings.CutPrefix(t, "service:"); ok && s != "" {
			return s
		}
	}
	return entity
}
