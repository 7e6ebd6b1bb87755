package connect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

const (
	// maxTokenLen bounds what the parsers are asked to decode; real product
	// tokens are well under 4 KiB even with a context claim.
	maxTokenLen = 16 << 10
	// maxFormBody bounds how much of a form body is read to look for a token.
	maxFormBody = 1 << 20
	// authPrefix is the exact Authorization scheme Connect uses.
	authPrefix = "JWT "
	// formContentType is the only body type a token may travel in.
	formContentType = "application/x-www-form-urlencoded"
)

// ExtractToken finds the token of a Connect request: the query parameter
// "jwt", the form field "jwt" (only for application/x-www-form-urlencoded
// bodies of POST, PUT and PATCH), or the header "Authorization: JWT <token>".
//
// A token in more than one place is rejected: the qsh then no longer tells
// which of them the product meant, and an attacker-added copy could shadow
// the real one. An Authorization header that is not exactly "JWT <token>" is
// rejected rather than ignored, for the same reason. No token at all gives an
// *AuthError wrapping ErrNoToken.
//
// When the form is inspected, the body is buffered and put back so handlers
// can still read it.
func ExtractToken(r *http.Request) (string, error) {
	var (
		tokens []string
		places []string
	)
	if r.URL != nil {
		tok, ok, err := queryToken(r.URL.RawQuery)
		if err != nil {
			return "", authErr("malformed query string", err)
		}
		if ok {
			tokens, places = append(tokens, tok), append(places, "query")
		}
	}
	tok, ok, err := formToken(r)
	if err != nil {
		return "", authErr("malformed form body", err)
	}
	if ok {
		tokens, places = append(tokens, tok), append(places, "form")
	}
	tok, ok, err = headerToken(r.Header)
	if err != nil {
		return "", authErr("Authorization header is not a Connect JWT", err)
	}
	if ok {
		tokens, places = append(tokens, tok), append(places, "header")
	}

	switch {
	case len(tokens) == 0:
		return "", authErr("missing token", ErrNoToken)
	case len(tokens) > 1:
		return "", authErr("token supplied in more than one place", fmt.Errorf("found in %s", strings.Join(places, " and ")))
	case tokens[0] == "":
		return "", authErr("empty token", nil)
	case len(tokens[0]) > maxTokenLen:
		return "", authErr("token too large", nil)
	}
	return tokens[0], nil
}

// queryToken returns the value of the "jwt" query parameter.
func queryToken(rawQuery string) (string, bool, error) {
	var (
		tok   string
		count int
	)
	err := forEachQueryPair(rawQuery, func(name, value string) {
		if name == jwtParam {
			tok = value
			count++
		}
	})
	if err != nil {
		return "", false, err
	}
	if count > 1 {
		return "", false, errors.New("more than one jwt query parameter")
	}
	return tok, count == 1, nil
}

// formToken returns the "jwt" field of a form-encoded body.
func formToken(r *http.Request) (string, bool, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return "", false, nil
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return "", false, nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != formContentType {
		return "", false, nil
	}
	// Someone already parsed the form, so the body is gone; use their result.
	if r.PostForm != nil {
		vs := r.PostForm[jwtParam]
		if len(vs) > 1 {
			return "", false, errors.New("more than one jwt form field")
		}
		if len(vs) == 1 {
			return vs[0], true, nil
		}
		return "", false, nil
	}

	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody+1))
	// Put back what was read, followed by anything unread, so the handler
	// sees the body unchanged whatever happens below.
	r.Body = readCloser{Reader: io.MultiReader(bytes.NewReader(body), r.Body), Closer: r.Body}
	if err != nil {
		return "", false, fmt.Errorf("read form body: %w", err)
	}
	if len(body) > maxFormBody {
		return "", false, fmt.Errorf("form body larger than %d bytes", maxFormBody)
	}
	return queryToken(string(body))
}

// headerToken returns the token of an "Authorization: JWT <token>" header.
func headerToken(h http.Header) (string, bool, error) {
	vs := h.Values("Authorization")
	switch {
	case len(vs) == 0:
		return "", false, nil
	case len(vs) > 1:
		return "", false, errors.New("more than one Authorization header")
	case !strings.HasPrefix(vs[0], authPrefix):
		return "", false, errors.New(`scheme is not "JWT "`)
	}
	return vs[0][len(authPrefix):], true, nil
}

// readCloser joins a replacement reader with the original body's Close.
type readCloser struct {
	io.Reader
	io.Closer
}
