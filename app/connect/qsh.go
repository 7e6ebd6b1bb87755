package connect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// QSHMode is the route class of an inbound symmetric token: it decides which
// qsh claim a route accepts (spec §4.5).
type QSHMode int

const (
	// QSHComputed is for descriptor module URLs, webhooks and enabled/disabled:
	// the qsh claim must be the hash of this very request.
	QSHComputed QSHMode = iota
	// QSHContext is for the app's own JSON endpoints called from iframes: the
	// qsh claim must be the literal ContextQSH.
	QSHContext
)

// ContextQSH is the fixed qsh claim of context tokens (AP.context.getToken()).
const ContextQSH = "context-qsh"

// jwtParam is the query parameter that carries the token itself; it is never
// part of the hash.
const jwtParam = "jwt"

// CanonicalRequest builds "METHOD&PATH&QUERY" exactly as spec §4.4 describes.
//
// path is the decoded request path (r.URL.Path) because the product hashes the
// decoded path; rawQuery is r.URL.RawQuery, parsed by hand because
// url.ParseQuery drops pairs containing ';' and would change the hash;
// basePath is the app's base path ("/jira", "/confluence", or "/wiki" for
// outbound Confluence calls), stripped only on a segment boundary so that
// "/jira" never eats the front of "/jiraX". An invalid percent escape in the
// query is an error: guessing how the product decoded it would be unsafe.
func CanonicalRequest(method, path, rawQuery, basePath string) (string, error) {
	query, err := canonicalQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("canonical request: %w", err)
	}
	return strings.ToUpper(method) + "&" + canonicalPath(path, basePath) + "&" + query, nil
}

// QSH returns the lowercase hex SHA-256 of the canonical request.
func QSH(method, path, rawQuery, basePath string) (string, error) {
	cr, err := CanonicalRequest(method, path, rawQuery, basePath)
	if err != nil {
		return "", err
	}
	return hashString(cr), nil
}

func hashString(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// canonicalPath applies the PATH rules of spec §4.4.
func canonicalPath(path, basePath string) string {
	path = stripBasePath(path, basePath)
	if path == "" {
		path = "/"
	}
	// '&' would let a crafted path masquerade as query parameters.
	path = strings.ReplaceAll(path, "&", "%26")
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if len(path) > 1 && strings.HasSuffix(path, "/") {
		path = path[:len(path)-1]
	}
	return path
}

// stripBasePath removes basePath from the front of path if, and only if, it
// ends on a segment boundary.
func stripBasePath(path, basePath string) string {
	bp := normaliseBasePath(basePath)
	if bp == "" {
		return path
	}
	if path == bp {
		return ""
	}
	if strings.HasPrefix(path, bp) && path[len(bp)] == '/' {
		return path[len(bp):]
	}
	return path
}

// normaliseBasePath turns "", "/", "jira", "/jira/" into "", "", "/jira", "/jira".
func normaliseBasePath(basePath string) string {
	bp := strings.TrimRight(basePath, "/")
	if bp != "" && bp[0] != '/' {
		bp = "/" + bp
	}
	return bp
}

// queryParam is one decoded query pair with its name already encoded, which is
// the form the canonical query sorts on.
type queryParam struct {
	encName  string
	rawValue string
}

// canonicalQuery applies the QUERY rules of spec §4.4.
func canonicalQuery(rawQuery string) (string, error) {
	if rawQuery == "" {
		return "", nil
	}
	params := make([]queryParam, 0, strings.Count(rawQuery, "&")+1)
	err := forEachQueryPair(rawQuery, func(name, value string) {
		if name == "" || name == jwtParam {
			return
		}
		params = append(params, queryParam{encName: encodeRFC3986(name), rawValue: value})
	})
	if err != nil {
		return "", err
	}
	// Names sort by their encoded form (as the product does), values of one
	// name by their raw form; sorting on both makes the result independent of
	// the order the parameters arrived in.
	sort.Slice(params, func(i, j int) bool {
		if params[i].encName != params[j].encName {
			return params[i].encName < params[j].encName
		}
		return params[i].rawValue < params[j].rawValue
	})
	var b strings.Builder
	b.Grow(len(rawQuery))
	for i, p := range params {
		if i > 0 && params[i-1].encName == p.encName {
			b.WriteByte(',')
		} else {
			if i > 0 {
				b.WriteByte('&')
			}
			b.WriteString(p.encName)
			b.WriteByte('=')
		}
		b.WriteString(encodeRFC3986(p.rawValue))
	}
	return b.String(), nil
}

// forEachQueryPair splits a raw query (or form body) on '&', splits each piece
// at its first '=' and form-decodes both halves. A piece without '=' has the
// value "". Empty pieces are skipped. Any invalid escape aborts with an error.
func forEachQueryPair(raw string, fn func(name, value string)) error {
	for raw != "" {
		var piece string
		piece, raw, _ = strings.Cut(raw, "&")
		if piece == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(piece, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return fmt.Errorf("decode query parameter name: %w", err)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return fmt.Errorf("decode value of query parameter %q: %w", name, err)
		}
		fn(name, value)
	}
	return nil
}

// encodeRFC3986 percent-encodes every byte outside A–Z a–z 0–9 - . _ ~ with
// uppercase hex. url.QueryEscape does exactly that except that it writes a
// space as '+'; a literal '+' comes out as %2B, so the replacement is safe.
func encodeRFC3986(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
