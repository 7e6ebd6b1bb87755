package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
)

// maxIssueEventBody bounds a Jira issue webhook; issues with huge descriptions
// still fit, floods do not.
const maxIssueEventBody = 512 << 10

// webhookIDHeader names a Jira webhook delivery; retries of one delivery
// repeat it, so it is the de-duplication key.
const webhookIDHeader = "X-Atlassian-Webhook-Identifier"

// issueEvent is the part of Jira's issue webhook Keyline reads.
type issueEvent struct {
	Timestamp    int64  `json:"timestamp"`
	WebhookEvent string `json:"webhookEvent"`
	Issue        *struct {
		ID     string `json:"id"`
		Key    string `json:"key"`
		Fields struct {
			Summary string `json:"summary"`
			Status  *struct {
				ID             string `json:"id"`
				Name           string `json:"name"`
				StatusCategory struct {
					Key string `json:"key"`
				} `json:"statusCategory"`
			} `json:"status"`
			Project struct {
				Key string `json:"key"`
			} `json:"project"`
			IssueType struct {
				Name string `json:"name"`
			} `json:"issuetype"`
		} `json:"fields"`
	} `json:"issue"`
	Changelog *struct {
		Items []changelogItem `json:"items"`
	} `json:"changelog"`
}

// changelogItem is one changed field. The values stay raw until the item is
// known to be the status: other fields are none of Keyline's business, and
// an odd value in one of them must not cost the whole event.
type changelogItem struct {
	Field      string          `json:"field"`
	FieldType  string          `json:"fieldtype"`
	From       json.RawMessage `json:"from"`
	FromString json.RawMessage `json:"fromString"`
	To         json.RawMessage `json:"to"`
	ToString   json.RawMessage `json:"toString"`
}

// receiveIssueEvent records what Jira says about an issue, so panels can show
// its status and metrics its transitions. A delivery Jira repeats (same
// X-Atlassian-Webhook-Identifier) is answered 204 and changes nothing; one
// that fails to store is answered 5xx and claims nothing, so Jira's retry is
// processed.
func (s *Server) receiveIssueEvent(event string) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := readBody(c, maxIssueEventBody)
		if err != nil {
			return err
		}
		var ev issueEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				return badRequest(fmt.Sprintf("webhook body field %s has the wrong type", te.Field))
			}
			return badRequest("webhook body is not valid JSON")
		}
		if ev.WebhookEvent != event {
			return badRequest(fmt.Sprintf("webhookEvent %q does not match this URL (%s)", ev.WebhookEvent, event))
		}
		if ev.Issue == nil || !devops.ValidIssueKey(ev.Issue.Key) {
			return badRequest("issue.key is missing or is not a Jira issue key")
		}
		if !numericID(ev.Issue.ID) {
			return badRequest("issue.id is missing or not numeric")
		}
		at := s.deps.Now().UTC()
		if ev.Timestamp > 0 {
			at = time.UnixMilli(ev.Timestamp).UTC()
		}
		// Beyond year 9999 stored times lose their fixed width, and with it
		// their order on SQLite.
		if at.Year() > 9999 {
			return badRequest("timestamp is out of range")
		}
		rec := store.JiraIssueEvent{
			DeliveryID: strings.TrimSpace(c.Request().Header.Get(webhookIDHeader)),
			Issue: store.JiraIssue{
				IssueID:    ev.Issue.ID,
				IssueKey:   ev.Issue.Key,
				ProjectKey: devops.ProjectOf(ev.Issue.Key),
				UpdatedAt:  at,
			},
		}
		if event == "jira:issue_deleted" {
			rec.Deleted = true
		} else {
			rec.Issue.Summary = truncate(ev.Issue.Fields.Summary, 1000)
			rec.Issue.IssueType = truncate(ev.Issue.Fields.IssueType.Name, 255)
			if st := ev.Issue.Fields.Status; st != nil {
				rec.Issue.StatusName = truncate(st.Name, 255)
				rec.Issue.StatusCategory = truncate(st.StatusCategory.Key, 32)
			}
			if rec.Transitions, err = statusTransitions(&ev, at); err != nil {
				return badRequest(err.Error())
			}
		}
		t := identity(c).Tenant
		err = s.deps.Store.ApplyJiraIssueEvent(c.Request().Context(), t, rec)
		if errors.Is(err, store.ErrDuplicate) {
			s.log.Debug("jira webhook redelivered", slog.String("event", event), slog.String("issue", ev.Issue.Key))
			return c.NoContent(http.StatusNoContent)
		}
		if err != nil {
			return fmt.Errorf("record %s of %s: %w", event, ev.Issue.Key, err)
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// statusTransitions reads the status changes an issue event reports: the
// status an issue was created in, and every status item of the changelog.
//
// The category comes from the event's issue snapshot, which normally shows
// the status the change led to. Should it show another status (a later
// change already applied), the category is left unknown rather than
// guessed, because a wrong one would corrupt the derived started/done times.
func statusTransitions(ev *issueEvent, at time.Time) ([]store.JiraTransition, error) {
	cur := ev.Issue.Fields.Status
	if cur != nil && cur.ID != "" && !numericID(cur.ID) {
		return nil, errors.New("issue.fields.status.id is not numeric")
	}
	categoryOf := func(id, name string) string {
		switch {
		case cur == nil:
			return ""
		case id != "" && cur.ID != "" && id != cur.ID:
			return ""
		case (id == "" || cur.ID == "") && name != truncate(cur.Name, 255):
			return ""
		}
		return truncate(cur.StatusCategory.Key, 32)
	}
	var out []store.JiraTransition
	if ev.WebhookEvent == "jira:issue_created" && cur != nil && cur.Name != "" {
		name := truncate(cur.Name, 255)
		out = append(out, store.JiraTransition{
			ToStatus: name, ToStatusID: cur.ID, ToCategory: categoryOf(cur.ID, name), At: at,
		})
	}
	if ev.Changelog == nil {
		return out, nil
	}
	for i, it := range ev.Changelog.Items {
		// A custom field may be called "status" too; Jira's own is a "jira" field.
		if it.Field != "status" || it.FieldType == "custom" {
			continue
		}
		var fromID, toID, fromName, toName string
		for _, v := range []struct {
			name string
			raw  json.RawMessage
			dst  *string
		}{{"from", it.From, &fromID}, {"to", it.To, &toID}, {"fromString", it.FromString, &fromName}, {"toString", it.ToString, &toName}} {
			if len(v.raw) == 0 {
				continue
			}
			// A JSON null leaves the string empty, which is what an absent value means.
			if err := json.Unmarshal(v.raw, v.dst); err != nil {
				return nil, fmt.Errorf("changelog.items[%d].%s is not a string", i, v.name)
			}
		}
		if toName == "" {
			return nil, fmt.Errorf("changelog.items[%d] changes the status but has no toString", i)
		}
		if (fromID != "" && !numericID(fromID)) || (toID != "" && !numericID(toID)) {
			return nil, fmt.Errorf("changelog.items[%d] has a status id that is not numeric", i)
		}
		toName = truncate(toName, 255)
		out = append(out, store.JiraTransition{
			FromStatus: truncate(fromName, 255), FromStatusID: fromID,
			ToStatus: toName, ToStatusID: toID, ToCategory: categoryOf(toID, toName),
			At: at,
		})
	}
	return out, nil
}

// numericID reports whether s is one of Jira's numeric ids.
func numericID(s string) bool {
	_, err := strconv.ParseUint(s, 10, 63)
	return err == nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so stored text stays valid UTF-8.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
