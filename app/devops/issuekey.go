// Package devops is Keyline's domain: the DevOps entities, how they link to Jira
// issues, and the metrics computed from them. It knows nothing of HTTP, Connect
// or the database.
package devops

import "strings"

// MaxIssueKeyLen bounds issue keys accepted from outside (a 255-character
// project key plus a number is far beyond any real site).
const MaxIssueKeyLen = 300

// ValidIssueKey reports whether s is a Jira issue key in canonical form:
// an upper-case project key (a letter, then letters, digits or '_') , '-', and
// a number without a leading zero.
func ValidIssueKey(s string) bool {
	if len(s) < 3 || len(s) > MaxIssueKeyLen {
		return false
	}
	project, number, ok := strings.Cut(s, "-")
	return ok && ValidProjectKey(project) && validIssueNumber(number)
}

// ValidProjectKey reports whether s is a Jira project key in canonical form.
func ValidProjectKey(s string) bool {
	if len(s) < 1 || len(s) > 255 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validIssueNumber(s string) bool {
	if s == "" || len(s) > 18 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ProjectOf returns the project key of a valid issue key.
func ProjectOf(issueKey string) string {
	p, _, _ := strings.Cut(issueKey, "-")
	return p
}
