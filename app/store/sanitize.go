package store

import (
	"database/sql"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/keyline/keyline/app/devops"
)

// Limits on what the store keeps of delivered text. Deliveries are verified
// but still written by third parties, so no column may be unbounded.
const (
	maxNameLen    = 255
	maxTitleLen   = 1024
	maxMessageLen = 16 << 10
	maxURLLen     = 2048
	maxIDLen      = 255
	maxRefLen     = 1024
)

// cleanMessage is cleanText for multi-line text such as commit messages: it
// keeps line breaks and tabs, drops other control characters (PostgreSQL
// refuses NUL) and shortens to max bytes on a character boundary.
func cleanMessage(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return -1
		case unicode.IsControl(r):
			return ' '
		}
		return r
	}, s)
	return cutUTF8(strings.TrimRight(s, " \t\n"), max)
}

// cleanURL keeps absolute http and https URLs and drops anything else: links
// are rendered into pages, and a "javascript:" URL from a hostile payload
// must never reach one.
func cleanURL(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxURLLen {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}

// cleanSHA keeps a commit hash in the form the store compares: lower case.
// Anything that is not a hash is dropped.
func cleanSHA(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if !devops.ValidCommitSHA(s) {
		return ""
	}
	return s
}

// cleanKeys keeps valid, upper-case, distinct issue keys, at most
// devops.MaxIssueKeysPerEntity of them, in their first order.
func cleanKeys(lists ...[]string) []string {
	var out []string
	seen := map[string]bool{}
	for _, keys := range lists {
		for _, k := range keys {
			k = strings.ToUpper(strings.TrimSpace(k))
			if seen[k] || !devops.ValidIssueKey(k) || len(out) >= devops.MaxIssueKeysPerEntity {
				continue
			}
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// keysText and textKeys convert a key list to and from its column.
func keysText(keys []string) string { return strings.Join(keys, " ") }
func textKeys(s string) []string    { return strings.Fields(s) }

// entityID derives the id of a delivered entity from its provider identity.
// Each part is path-escaped, so "/" separates parts unambiguously and the id
// stays readable in logs and URLs.
func entityID(parts ...string) string {
	esc := make([]string, len(parts))
	for i, p := range parts {
		esc[i] = url.PathEscape(p)
	}
	return strings.Join(esc, "/")
}

// optTime is the bind argument of an optional time: NULL when unknown.
func (s *Store) optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.ts(t)
}

// nullTime reads an optional time back; zero when NULL.
func nullTime(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return fromDB(t.Time)
}

// laterOf returns the later of two times, ignoring zero ones.
func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// earlierOf returns the earlier of two times, ignoring zero ones.
func earlierOf(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}
