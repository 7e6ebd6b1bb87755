package ingest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// TestDeliveryPrefix starts the id of every test delivery Keyline sends
// itself, so its lines in a delivery log are told apart from the provider's.
const TestDeliveryPrefix = "keyline-test-"

// testMessage is the text each test body carries where its shape has room.
const testMessage = "Sent by Keyline's configure page to test this source."

// TestDelivery is a delivery to a source, shaped and signed as its
// provider would send it: what the configure page's test button hands to
// Receiver.ReceiveSource.
type TestDelivery struct {
	Delivery
	// What says in words what was sent, e.g. "GitHub's ping event, signed
	// with X-Hub-Signature-256".
	What string
}

// NewTestDelivery builds a test delivery to a source of kind, signed with
// secret (its current one), with a fresh id that starts with
// TestDeliveryPrefix. Every kind's is an event Keyline records as ignored
// (202), so a test stores nothing but its log line:
//   - github: GitHub's own test event, ping
//   - pagerduty: PagerDuty's own test event, pagey.ping
//   - generic: the generic API's ping (GenericPing)
//   - gitlab, bitbucket, opsgenie: these providers have no test event that
//     Keyline could ignore (GitLab's "Test" button sends a real push of
//     the project's latest commits), so Keyline sends an event of its own
//     in their shape — X-Gitlab-Event "Keyline Test Hook", X-Event-Key
//     "keyline:test", Opsgenie action "KeylineTest" — which no provider
//     sends and every parser ignores.
//
// at is the event's time, where the shape has one.
func NewTestDelivery(kind string, secret []byte, at time.Time) (*TestDelivery, error) {
	if len(secret) == 0 {
		return nil, fmt.Errorf("ingest: test delivery: the source has no secret")
	}
	id := TestDeliveryPrefix + strings.ToLower(rand.Text())
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Keyline-Test")
	var (
		body   any
		entity string
		what   string
	)
	switch kind {
	case KindGitHub:
		body = map[string]any{"zen": testMessage}
		h.Set("X-GitHub-Event", "ping")
		h.Set("X-GitHub-Delivery", id)
		what = "GitHub's ping event, signed with " + HeaderGitHubSignature
	case KindGitLab:
		body = map[string]any{"object_kind": "keyline_test", "message": testMessage}
		h.Set("X-Gitlab-Event", "Keyline Test Hook")
		h.Set("Idempotency-Key", id)
		h.Set("X-Gitlab-Event-UUID", id)
		h.Set(HeaderGitLabToken, string(secret))
		what = "a GitLab-shaped test hook (GitLab has none of its own that Keyline ignores), with the secret in " + HeaderGitLabToken
	case KindBitbucket:
		body = map[string]any{"message": testMessage}
		h.Set("X-Event-Key", "keyline:test")
		h.Set("X-Request-UUID", id)
		what = "a Bitbucket-shaped keyline:test event (Bitbucket Cloud has no test event), signed with " + HeaderBitbucketSignature
	case KindPagerDuty:
		body = map[string]any{"event": map[string]any{
			"id": id, "event_type": "pagey.ping", "resource_type": "pagey",
			"occurred_at": at.UTC().Format(time.RFC3339Nano), "agent": nil, "client": nil,
			"data": map[string]any{"message": testMessage, "type": "ping"},
		}}
		h.Set("X-Webhook-Id", id)
		what = "PagerDuty's pagey.ping test event, signed with " + HeaderPagerDutySignature
	case KindOpsgenie:
		body = map[string]any{"action": "KeylineTest", "alert": map[string]any{
			"alertId": id, "message": testMessage, "createdAt": at.UnixMilli(), "updatedAt": at.UnixMilli(),
		}}
		h.Set(HeaderKeylineToken, string(secret))
		what = "an Opsgenie-shaped KeylineTest alert action (Opsgenie has no test event), with the secret in " + HeaderKeylineToken
	case KindGeneric:
		body = map[string]any{"message": testMessage}
		entity = GenericPing
		h.Set("Idempotency-Key", id)
		what = "a ping to the generic API's /ping, signed with " + HeaderKeylineSignature
	default:
		return nil, fmt.Errorf("ingest: test delivery: %w %q", ErrUnknownKind, kind)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("ingest: test delivery: %w", err)
	}
	switch kind {
	case KindGitHub:
		h.Set(HeaderGitHubSignature, SignatureSHA256(secret, raw))
	case KindBitbucket:
		h.Set(HeaderBitbucketSignature, SignatureSHA256(secret, raw))
	case KindPagerDuty:
		h.Set(HeaderPagerDutySignature, "v1="+hex.EncodeToString(mac(secret, raw)))
	case KindGeneric:
		h.Set(HeaderKeylineSignature, SignatureSHA256(secret, raw))
	}
	return &TestDelivery{
		Delivery: Delivery{Entity: entity, Header: h, Body: bytes.NewReader(raw), ID: id},
		What:     what,
	}, nil
}
