// Package ingest receives deliveries from DevOps tools: webhooks of GitHub,
// GitLab, Bitbucket, PagerDuty and Opsgenie, and Keyline's own generic API.
//
// Verification comes first and is done over the raw body, before any parsing,
// so a forged delivery costs the server one HMAC and nothing else.
package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Source kinds, as stored with each source.
const (
	KindGitHub    = "github"
	KindGitLab    = "gitlab"
	KindBitbucket = "bitbucket"
	KindPagerDuty = "pagerduty"
	KindOpsgenie  = "opsgenie"
	KindGeneric   = "generic"
)

// Kinds returns every source kind VerifySignature knows, in a fixed order.
func Kinds() []string {
	return []string{KindGitHub, KindGitLab, KindBitbucket, KindPagerDuty, KindOpsgenie, KindGeneric}
}

// Headers that carry credentials.
const (
	// HeaderGitHubSignature is "sha256=" and the hex HMAC-SHA256 of the body.
	HeaderGitHubSignature = "X-Hub-Signature-256"
	// HeaderBitbucketSignature has GitHub's legacy header name but, since
	// 2023, the same "sha256=<hex>" value as HeaderGitHubSignature.
	HeaderBitbucketSignature = "X-Hub-Signature"
	// HeaderGitLabToken echoes the secret verbatim.
	HeaderGitLabToken = "X-Gitlab-Token"
	// HeaderPagerDutySignature is a comma-separated list of "v1=<hex>", one
	// per secret PagerDuty signs with (several while it rotates).
	HeaderPagerDutySignature = "X-PagerDuty-Signature"
	// HeaderKeylineToken carries the secret verbatim. Opsgenie has no
	// signing; its outgoing webhook integration can add custom headers, and
	// this is the one to add.
	HeaderKeylineToken = "X-Keyline-Token"
	// HeaderKeylineSignature is the generic API's signed form: "sha256=" and
	// the hex HMAC-SHA256 of the body, as SignatureSHA256 computes it.
	HeaderKeylineSignature = "X-Keyline-Signature"
	// HeaderAuthorization carries the generic API's simple form, "Bearer <secret>".
	HeaderAuthorization = "Authorization"
)

// maxCandidates bounds the signatures one delivery may offer, so a header
// listing thousands of values cannot multiply the work.
const maxCandidates = 16

// Verification errors. Both mean 401; they differ only for the delivery log.
var (
	ErrMissingSignature = errors.New("ingest: missing signature")
	ErrBadSignature     = errors.New("ingest: bad signature")
	// ErrUnknownKind is a programming error: the source's kind is not one of Kinds.
	ErrUnknownKind = errors.New("ingest: unknown source kind")
)

// VerifySignature checks that a delivery to a source of kind was sent by
// someone holding one of secrets (current first, then a rotated-out one
// still in its overlap; empty secrets are ignored, so an unset secret never
// matches an empty header). body must be the raw request body.
//
// Per kind:
//   - github: X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>
//   - bitbucket: X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)>
//   - gitlab: X-Gitlab-Token: <secret>
//   - pagerduty: X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...], any matching
//   - opsgenie: X-Keyline-Token: <secret>
//   - generic: Authorization: Bearer <secret>, or
//     X-Keyline-Signature: sha256=<hex HMAC-SHA256(secret, body)>; either suffices
//
// Hex may be in either case. Only SHA-256 is accepted: a "sha1=" value fails.
// All comparisons are constant-time; tokens are compared through their
// SHA-256 so that not even their length leaks. It returns nil,
// ErrMissingSignature (no credential at all), ErrBadSignature, or an error
// wrapping ErrUnknownKind.
func VerifySignature(kind string, h http.Header, body []byte, secrets [][]byte) error {
	usable := make([][]byte, 0, len(secrets))
	for _, s := range secrets {
		if len(s) > 0 {
			usable = append(usable, s)
		}
	}
	switch kind {
	case KindGitHub:
		return verifyHMAC(body, usable, prefixed(h.Values(HeaderGitHubSignature), "sha256="))
	case KindBitbucket:
		return verifyHMAC(body, usable, prefixed(h.Values(HeaderBitbucketSignature), "sha256="))
	case KindGitLab:
		return verifyToken(usable, h.Values(HeaderGitLabToken))
	case KindOpsgenie:
		return verifyToken(usable, h.Values(HeaderKeylineToken))
	case KindPagerDuty:
		var parts []string
		for _, v := range h.Values(HeaderPagerDutySignature) {
			parts = append(parts, strings.Split(v, ",")...)
		}
		return verifyHMAC(body, usable, prefixed(parts, "v1="))
	case KindGeneric:
		return verifyGeneric(h, body, usable)
	}
	return fmt.Errorf("%w %q", ErrUnknownKind, kind)
}

// SignatureSHA256 is the value of X-Keyline-Signature for body signed with
// secret: "sha256=" and the lower-case hex HMAC-SHA256. GitHub's and
// Bitbucket's signatures have the same form.
func SignatureSHA256(secret, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, body))
}

// candidates are the signatures a delivery offers. present is false when it
// offered none at all; values that are present but unusable (wrong
// algorithm, bad hex, wrong length) are skipped but still count as present.
type candidates struct {
	macs    [][]byte
	present bool
	tooMany bool
}

// prefixed collects the values of the form prefix<64 hex digits>. The prefix
// is matched without regard to case; surrounding spaces are ignored.
func prefixed(values []string, prefix string) candidates {
	var c candidates
	n := 0
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		c.present = true
		if n++; n > maxCandidates {
			c.tooMany = true
			break
		}
		if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
			continue
		}
		m, err := hex.DecodeString(v[len(prefix):])
		if err != nil || len(m) != sha256.Size {
			continue
		}
		c.macs = append(c.macs, m)
	}
	return c
}

// verifyHMAC accepts when any candidate is the HMAC of body under any secret.
// A candidate list with unusable entries is still accepted if one matches:
// PagerDuty may add signature versions Keyline does not know yet.
func verifyHMAC(body []byte, secrets [][]byte, c candidates) error {
	if !c.present {
		return ErrMissingSignature
	}
	if len(c.macs) == 0 || c.tooMany {
		return ErrBadSignature
	}
	ok := 0
	for _, s := range secrets {
		want := mac(s, body)
		for _, m := range c.macs {
			ok |= subtle.ConstantTimeCompare(want, m)
		}
	}
	if ok != 1 {
		return ErrBadSignature
	}
	return nil
}

// verifyToken accepts when any value equals any secret.
func verifyToken(secrets [][]byte, values []string) error {
	var tokens [][32]byte
	for _, v := range values {
		if v == "" {
			continue
		}
		if len(tokens) == maxCandidates {
			return ErrBadSignature
		}
		tokens = append(tokens, sha256.Sum256([]byte(v)))
	}
	if len(tokens) == 0 {
		return ErrMissingSignature
	}
	ok := 0
	for _, s := range secrets {
		want := sha256.Sum256(s)
		for _, tok := range tokens {
			ok |= subtle.ConstantTimeCompare(want[:], tok[:])
		}
	}
	if ok != 1 {
		return ErrBadSignature
	}
	return nil
}

// verifyGeneric accepts a bearer secret or an HMAC signature, whichever the
// client sent; when it sent both, one valid credential is enough (adding a
// wrong one gains an attacker nothing).
func verifyGeneric(h http.Header, body []byte, secrets [][]byte) error {
	var bearer []string
	authPresent := false
	for _, v := range h.Values(HeaderAuthorization) {
		if v == "" {
			continue
		}
		authPresent = true
		scheme, tok, _ := strings.Cut(v, " ")
		tok = strings.TrimLeft(tok, " ")
		if strings.EqualFold(scheme, "Bearer") && tok != "" {
			bearer = append(bearer, tok)
		}
	}
	sig := prefixed(h.Values(HeaderKeylineSignature), "sha256=")
	if !authPresent && !sig.present {
		return ErrMissingSignature
	}
	if len(bearer) > 0 && verifyToken(secrets, bearer) == nil {
		return nil
	}
	if sig.present && verifyHMAC(body, secrets, sig) == nil {
		return nil
	}
	return ErrBadSignature
}

func mac(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

// DeliveryID returns the provider's id of a delivery, which stays the same
// when the provider retries it, or "" when the headers carry none:
//   - github: X-GitHub-Delivery
//   - gitlab: Idempotency-Key (GitLab 17.4+, stable across retries), else
//     X-Gitlab-Event-UUID (older GitLab)
//   - bitbucket: X-Request-UUID
//   - pagerduty: X-Webhook-Id (repeated on each delivery attempt)
//   - generic: Idempotency-Key, if the client sends one
//   - opsgenie: none; the caller may use the body's alert id and action
func DeliveryID(kind string, h http.Header) string {
	var names []string
	switch kind {
	case KindGitHub:
		names = []string{"X-GitHub-Delivery"}
	case KindGitLab:
		names = []string{"Idempotency-Key", "X-Gitlab-Event-UUID"}
	case KindBitbucket:
		names = []string{"X-Request-UUID"}
	case KindPagerDuty:
		names = []string{"X-Webhook-Id"}
	case KindGeneric:
		names = []string{"Idempotency-Key"}
	}
	for _, n := range names {
		if v := strings.TrimSpace(h.Get(n)); v != "" {
			return v
		}
	}
	return ""
}

// EventName returns the provider's event name from the headers (GitHub
// X-GitHub-Event such as "push", GitLab X-Gitlab-Event such as "Push Hook",
// Bitbucket X-Event-Key such as "repo:push"), or "" for kinds that name the
// event in the body (PagerDuty event.event_type, Opsgenie action) or in the
// URL (generic).
func EventName(kind string, h http.Header) string {
	var name string
	switch kind {
	case KindGitHub:
		name = "X-GitHub-Event"
	case KindGitLab:
		name = "X-Gitlab-Event"
	case KindBitbucket:
		name = "X-Event-Key"
	default:
		return ""
	}
	return strings.TrimSpace(h.Get(name))
}

// WebhookURL is the address a source's provider delivers to: Keyline's public
// base URL, "/ingest/" and the source's token.
func WebhookURL(baseURL, token string) string { return baseURL + "/ingest/" + token }
