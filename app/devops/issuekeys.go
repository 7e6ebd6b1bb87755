package devops

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxIssueKeyLen bounds issue keys accepted from outside (a 255-character
// project key plus a number is far beyond any real site).
const MaxIssueKeyLen = 300

// MaxIssueKeysPerEntity caps the keys linked to one entity. Jira's DevOps APIs
// take at most 500 associations per entity, and a message naming more keys
// than that is a changelog or a generated file, not a reference.
const MaxIssueKeysPerEntity = 500

// Limits of an issue key as found in free text.
const (
	maxProjectKeyLen  = 255 // as ValidProjectKey; Jira's own limit
	minProjectKeyLen  = 2   // Jira project keys have at least two characters; "B-52" is not a key
	maxIssueNumberLen = 18  // fits in an int64
)

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
	if s == "" || len(s) > maxIssueNumberLen || s[0] == '0' {
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

// ExtractIssueKeys returns the Jira issue keys mentioned in texts, upper-cased,
// without duplicates, in order of first appearance, and at most
// MaxIssueKeysPerEntity of them. It returns nil when there are none.
//
// A key is a letter followed by 1–254 letters, digits or underscores, a '-',
// and a number of 1–18 digits without a leading zero, matched without regard
// to case. It must not touch a letter or digit on either side, so "[OPS-1]",
// "(ops-1)", "#OPS-1", "feature/OPS-1-login" and URLs all yield OPS-1, while
// "22-123", "JRA 123", "OPS-01", "9OPS-1" and "OPS-1a" yield nothing. Letters of the
// Latin script outside ASCII count as touching too, so "ÖPS-1" is not read as
// PS-1; other scripts do not, so a key written straight after Chinese or
// Japanese text is still found. CVE identifiers such as CVE-2024-1234 are not
// keys.
//
// The scan is a single left-to-right pass, linear in the total length of texts
// whatever they contain.
func ExtractIssueKeys(texts ...string) []string {
	var set keySet
	for _, s := range texts {
		if !scanIssueKeys(s, &set) {
			break
		}
	}
	return set.keys
}

// scanIssueKeys adds the keys in s to set and reports whether set has room
// for more.
func scanIssueKeys(s string, set *keySet) bool {
	for i := 0; i < len(s); {
		if !isASCIILetter(s[i]) || !keyStartsAt(s, i) {
			i++
			continue
		}
		// s[i:end] is a run of word bytes. Every key start inside it
		// (s[i], or a letter after an '_') shares the same end, so the run is
		// read once and only its tail is searched for the leftmost start that
		// leaves a project key of legal length.
		end := i + 1
		for end < len(s) && isWordByte(s[end]) {
			end++
		}
		if end >= len(s) || s[end] != '-' {
			i = end
			continue
		}
		digits := end + 1
		n := digits
		for n < len(s) && n-digits <= maxIssueNumberLen && isASCIIDigit(s[n]) {
			n++
		}
		numLen := n - digits
		if numLen == 0 || numLen > maxIssueNumberLen || s[digits] == '0' || !keyEndsAt(s, n) {
			i = end + 1
			continue
		}
		start := leftmostProjectStart(s, i, end)
		if start < 0 || isCVE(s[start:end], s[digits:n], s[n:]) {
			i = n
			continue
		}
		if !set.add(s[start:n]) {
			return false
		}
		i = n
	}
	return true
}

// leftmostProjectStart returns the first position p in [runStart, end) where
// a project key s[p:end] may begin, or -1. A key begins at runStart (its left
// boundary was checked) or at a letter right after an '_'.
func leftmostProjectStart(s string, runStart, end int) int {
	p := max(runStart, end-maxProjectKeyLen)
	for ; p <= end-minProjectKeyLen; p++ {
		if isASCIILetter(s[p]) && (p == runStart || s[p-1] == '_') {
			return p
		}
	}
	return -1
}

// isCVE reports whether project-number followed by rest reads as a CVE
// identifier: project CVE, a year-like number and another "-digits".
func isCVE(project, number, rest string) bool {
	return len(project) == 3 && strings.EqualFold(project, "CVE") &&
		len(number) == 4 && (number[:2] == "19" || number[:2] == "20") &&
		len(rest) >= 2 && rest[0] == '-' && isASCIIDigit(rest[1])
}

// keyStartsAt reports whether s[i] has no letter or digit before it.
func keyStartsAt(s string, i int) bool {
	if i == 0 {
		return true
	}
	if b := s[i-1]; b < utf8.RuneSelf {
		return !isASCIIAlnum(b)
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return !isLatinWordRune(r)
}

// keyEndsAt reports whether the key ending before s[i] has no letter or digit
// after it.
func keyEndsAt(s string, i int) bool {
	if i >= len(s) {
		return true
	}
	if b := s[i]; b < utf8.RuneSelf {
		return !isASCIIAlnum(b)
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return !isLatinWordRune(r)
}

// isLatinWordRune reports whether a non-ASCII rune continues a Latin word:
// an accented or other Latin letter, or a combining mark (a decomposed
// accent). Such a rune next to a key means the "key" is part of a word.
func isLatinWordRune(r rune) bool {
	return unicode.Is(unicode.Latin, r) || unicode.Is(unicode.Mn, r)
}

func isASCIILetter(b byte) bool { return b|0x20 >= 'a' && b|0x20 <= 'z' }
func isASCIIDigit(b byte) bool  { return b >= '0' && b <= '9' }
func isASCIIAlnum(b byte) bool  { return isASCIILetter(b) || isASCIIDigit(b) }
func isWordByte(b byte) bool    { return isASCIIAlnum(b) || b == '_' }

// keySetIndexAt is the size from which keySet indexes its keys in a map;
// below it a linear scan is faster than hashing.
const keySetIndexAt = 16

// keySet collects distinct upper-cased keys in order of first appearance.
type keySet struct {
	keys  []string
	index map[string]struct{}
}

// add records the key spelled by raw (ASCII, any case) and reports whether
// there is room for more keys.
func (ks *keySet) add(raw string) bool {
	var buf [MaxIssueKeyLen]byte
	upper := buf[:len(raw)]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		upper[i] = c
	}
	if !ks.has(upper) {
		// A fresh string, never a slice of the text: a key kept for storage
		// must not pin a multi-megabyte webhook body in memory.
		key := string(upper)
		if ks.keys == nil {
			ks.keys = make([]string, 0, 4) // most texts name a few keys
		}
		ks.keys = append(ks.keys, key)
		if ks.index != nil {
			ks.index[key] = struct{}{}
		} else if len(ks.keys) >= keySetIndexAt {
			ks.index = make(map[string]struct{}, 2*keySetIndexAt)
			for _, k := range ks.keys {
				ks.index[k] = struct{}{}
			}
		}
	}
	return len(ks.keys) < MaxIssueKeysPerEntity
}

func (ks *keySet) has(key []byte) bool {
	if ks.index != nil {
		_, ok := ks.index[string(key)] // no allocation: the compiler reads key in place
		return ok
	}
	for _, k := range ks.keys {
		if k == string(key) {
			return true
		}
	}
	return false
}

// KeyFilter is the set of project keys a Jira site is known to have. Keys
// that merely look like issue keys ("UTF-8", "SHA-256", "ISO-9001") are
// dropped once the site's project list is known. A nil KeyFilter means the
// list is not known and keeps every key; an empty, non-nil one keeps none.
type KeyFilter map[string]struct{}

// NewKeyFilter returns a filter that knows the given project keys, matched
// without regard to case. Strings that are not project keys are ignored.
func NewKeyFilter(projectKeys ...string) KeyFilter {
	f := make(KeyFilter, len(projectKeys))
	for _, p := range projectKeys {
		p = strings.ToUpper(strings.TrimSpace(p))
		if ValidProjectKey(p) {
			f[p] = struct{}{}
		}
	}
	return f
}

// Knows reports whether the filter keeps keys of project (canonical, upper
// case).
func (f KeyFilter) Knows(project string) bool {
	if f == nil {
		return true
	}
	_, ok := f[project]
	return ok
}

// Apply returns the keys whose project the filter knows, in their order. It
// never modifies keys; a nil filter returns keys itself.
func (f KeyFilter) Apply(keys []string) []string {
	if f == nil {
		return keys
	}
	var kept []string
	for _, k := range keys {
		if f.Knows(ProjectOf(k)) {
			kept = append(kept, k)
		}
	}
	return kept
}

// SummarySlug is a branch-name form of an issue summary, as Jira's "Create
// branch" offers it after the key: lower-case letters and digits, other
// runs as one dash, at most about 40 characters.
func SummarySlug(summary string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(summary) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	return strings.TrimRight(b.String(), "-")
}
