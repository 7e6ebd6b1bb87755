package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
)

// maxIssueEventBody bounds a Jira issue webhook; issues with huge descriptions
// still fit, floods do not.
const maxIssueEventBody = 512 << 10

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
				Name           string `json:"name"`
				StatusCategory struct {
					Key string `json:"key"`
				} `json:"statusCategory"`
			} `json:"status"`
			Project struct {
				Key string `json:"key"`
			} `json:"project"`
		} `json:"fields"`
	} `json:"issue"`
}

// receiveIssueEvent records what Jira says about an issue, so panels can show
// its status and later metrics its transitions.
func (s *Server) receiveIssueEvent(event string) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := readBody(c, maxIssueEventBody)
		if err != nil {
			return err
		}
		var ev issueEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			return badRequest("webhook body is not valid JSON")
		}
		if ev.WebhookEvent != event {
			return badRequest(fmt.Sprintf("webhookEvent %q does not match this URL (%s)", ev.WebhookEvent, event))
		}
		if ev.Issue == nil || !devops.ValidIssueKey(ev.Issue.Key) {
			return badRequest("issue.key is missing or is not a Jira issue key")
		}
		if _, err := strconv.ParseUint(ev.Issue.ID, 10, 63); err != nil {
			return badRequest("issue.id is missing or not numeric")
		}
		at := s.deps.Now().UTC()
		if ev.Timestamp > 0 {
			at = time.UnixMilli(ev.Timestamp).UTC()
		}
		t := identity(c).Tenant
		ctx := c.Request().Context()
		if event == "jira:issue_deleted" {
			if err := s.deps.Store.DeleteJiraIssue(ctx, t, ev.Issue.ID, at); err != nil {
				return fmt.Errorf("delete issue %s: %w", ev.Issue.Key, err)
			}
			return c.NoContent(http.StatusNoContent)
		}
		is := store.JiraIssue{
			IssueID:    ev.Issue.ID,
			IssueKey:   ev.Issue.Key,
			ProjectKey: devops.ProjectOf(ev.Issue.Key),
			Summary:    truncate(ev.Issue.Fields.Summary, 1000),
			UpdatedAt:  at,
		}
		if st := ev.Issue.Fields.Status; st != nil {
			is.StatusName = truncate(st.Name, 255)
			is.StatusCategory = truncate(st.StatusCategory.Key, 32)
		}
		if err := s.deps.Store.UpsertJiraIssue(ctx, t, is); err != nil {
			return fmt.Errorf("record issue %s: %w", ev.Issue.Key, err)
		}
		return c.NoContent(http.StatusNoContent)
	}
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
