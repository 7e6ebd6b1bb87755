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
	if plainURL(s) {
		return s
	}
	return parsedURL(s)
}

// parsedURL is cleanURL for any text: url.Parse decides, and String writes
// the URL back in its normal form.
func parsedURL(s string) string {
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

// plainURL reports whether s is an http or https URL that parsedURL would
// return unchanged: a lower-case scheme, a host of letters, digits, dots and
// hyphens, and a path of unreserved characters and slashes, with no spaces,
// port, user, query, fragment or escapes. Provider URLs (a dozen in each
// push) are nearly always of this form, and parsing each one was about 2%
// of the receiver's CPU. FuzzCleanURLPlainMatchesParsed holds it to
// parsedURL.
func plainURL(s string) bool {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "http://"); !ok {
			return false
		}
	}
	if len(s) > maxURLLen {
		return false
	}
	host := true
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-':
		case c == '/':
			if i == 0 {
				return false // no host
			}
			host = false
		case (c == '_' || c == '~') && !host:
		default:
			return false
		}
	}
	return rest != ""
}

// lowerHex holds the bytes of a commit hash as the store keeps it.
var lowerHex = [256]bool{'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true,
	'8': true, '9': true, 'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true}

// cleanSHA keeps a commit hash in the form the store compares: lower case.
// Anything that is not a hash is dropped. A push has each hash cleaned
// several times, nearly always already clean: that case is one pass over
// the bytes.
func cleanSHA(s string) string {
	if len(s) >= 7 && len(s) <= 64 {
		clean := true
		for i := 0; i < len(s) && clean; i++ {
			clean = lowerHex[s[i]]
		}
		if clean {
			return s
		}
	}
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
