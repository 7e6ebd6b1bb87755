package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// MaxBodyBytes is the largest delivery Keyline reads (5 MiB): above GitHub's
// 25 MiB cap on paper, but far above any push, pipeline or incident payload
// in practice; a larger body is refused with 413 rather than buffered.
const MaxBodyBytes = 5 << 20

// Store is what Receiver needs of the store; *store.Store implements it.
type Store interface {
	SourceByToken(ctx context.Context, token string) (*tenant.Tenant, *store.Source, error)
	RecordEvent(ctx context.Context, t *tenant.Tenant, sourceID string, d store.Delivery, b *devops.Batch) error
	RecordDelivery(ctx context.Context, t *tenant.Tenant, sourceID string, d store.Delivery) error
}

// Receiver takes webhook deliveries through verification, parsing and
// storage. It knows nothing of HTTP servers: the web layer hands it the
// request's parts and writes out the Result.
type Receiver struct {
	store  Store
	log    *slog.Logger
	limits *Limits
}

// ReceiverOption configures a Receiver.
type ReceiverOption func(*Receiver)

// WithLimits refuses deliveries beyond l's per-source and per-site rates
// with 429; nil (the default) limits nothing.
func WithLimits(l *Limits) ReceiverOption { return func(r *Receiver) { r.limits = l } }

// NewReceiver returns a Receiver storing into st.
func NewReceiver(st Store, log *slog.Logger, opts ...ReceiverOption) *Receiver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{store: st, log: log}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Delivery is one incoming request to a source's webhook URL.
type Delivery struct {
	// Token is the URL token that names the source.
	Token string
	// Entity is the path segment after the token: "" for provider webhooks,
	// GenericBuild, GenericDeployment, GenericIncident or GenericPing for the
	// generic API.
	Entity string
	Header http.Header
	Body   io.Reader
	// Length is the body's length as the sender declared it (an HTTP
	// request's Content-Length); 0 or less when unknown. It only sizes the
	// buffer the body is read into: the body is still read to its end,
	// and refused past MaxBodyBytes.
	Length int64
	// ID names the delivery when neither its headers nor its body do. Only
	// senders in process set it (Keyline's test deliveries to Opsgenie
	// sources, whose webhooks carry no id); an HTTP delivery's id is the
	// provider's.
	ID string
}

// Result is the answer to a delivery. Status is the HTTP status; Outcome is
// set when the delivery was verified (accepted, ignored or duplicate) or
// refused after the source was found (rejected); Reason says why a delivery
// was refused or ignored, in words meant for the sender.
type Result struct {
	Status     int                   `json:"-"`
	Outcome    store.DeliveryOutcome `json:"outcome,omitempty"`
	Event      string                `json:"event,omitempty"`
	DeliveryID string                `json:"delivery_id,omitempty"`
	Reason     string                `json:"reason,omitempty"`
	// TenantID and SourceID identify whose delivery it was, for logs; zero
	// and "" when the token named no source.
	TenantID int64  `json:"-"`
	SourceID string `json:"-"`
	// Kind is the source's kind ("" when the token named no source), and
	// Refusal a fixed word for why a delivery was not stored (one of the
	// Refused* constants, "" otherwise): metrics count by them, where Reason
	// is free text for the sender.
	Kind    string `json:"-"`
	Refusal string `json:"-"`
	// RetryAfter is set on a 429: how long the sender should wait, in
	// whole seconds (Retry-After's unit), at least one.
	RetryAfter time.Duration `json:"-"`
}

// Why a delivery was refused, as Result.Refusal says it.
const (
	RefusedUnknownSource    = "unknown_source"
	RefusedWrongPath        = "wrong_path"
	RefusedUnreadable       = "unreadable_body"
	RefusedTooLarge         = "too_large"
	RefusedMissingSignature = "missing_signature"
	RefusedBadSignature     = "bad_signature"
	RefusedMalformed        = "malformed"
	RefusedStoreError       = "store_error"
	RefusedRateLimited      = "rate_limited"
)

// Receive handles one delivery. Its error is non-nil only when storing
// failed (Status is then 503): the sender should retry, and nothing of the
// delivery was committed. Everything answered 2xx was committed first.
//
// The order is fixed: the token must name a live source (404), the source
// and its site must be within their rate limits (429), the body must fit
// MaxBodyBytes (413), the signature must verify over the raw body (401),
// and only then is the body parsed (400 when malformed). A delivery refused
// after the source was found leaves a line in its delivery log and nothing
// else, except one refused by a rate limit, which leaves nothing at all.
func (r *Receiver) Receive(ctx context.Context, d Delivery) (Result, error) {
	t, src, err := r.store.SourceByToken(ctx, d.Token)
	if errors.Is(err, store.ErrNotFound) {
		return Result{Status: http.StatusNotFound, Reason: "no webhook source has this URL", Refusal: RefusedUnknownSource}, nil
	}
	if err != nil {
		return Result{Status: http.StatusServiceUnavailable, Refusal: RefusedStoreError}, fmt.Errorf("find source: %w", err)
	}
	return r.ReceiveSource(ctx, t, src, d)
}

// ReceiveSource is Receive for a delivery whose source the caller has
// already found, with its Secrets opened (store.SourceWithSecrets), for
// tenant t, which the caller has verified: Keyline's own test deliveries,
// which the configure page signs and hands over in process, knowing the
// source but not its URL's token. d.Token is not read. Everything after
// finding the source is Receive's, so a test delivery is checked, parsed,
// logged and answered exactly as the provider's would be.
func (r *Receiver) ReceiveSource(ctx context.Context, t *tenant.Tenant, src *store.Source, d Delivery) (Result, error) {
	res := Result{TenantID: t.ID, SourceID: src.ID, DeliveryID: DeliveryID(src.Kind, d.Header),
		Event: EventName(src.Kind, d.Header), Kind: src.Kind}
	if src.Kind == KindGeneric {
		res.Event = d.Entity
	}
	// Limits apply only to sources the store found, so a flood of made-up
	// tokens cannot grow the buckets, and before the body is read or its
	// signature checked, so a refused delivery costs a cached lookup. It is
	// not written to the delivery log: a write per refused request would
	// turn a flood into database writes, which is what the limit is there
	// to prevent. The metrics count it instead.
	if refusal, ok := r.limits.Allow(t.ID, src.ID); !ok {
		res.Status, res.Outcome, res.Refusal, res.RetryAfter = http.StatusTooManyRequests, "", RefusedRateLimited, refusal.RetryAfter
		res.Reason = limitReason(refusal)
		return res, nil
	}
	if reason := entityMismatch(src.Kind, d.Entity); reason != "" {
		res.Refusal = RefusedWrongPath
		return r.reject(ctx, t, src, res, http.StatusNotFound, reason), nil
	}
	body, err := readBody(d.Body, d.Length)
	if err != nil {
		res.Refusal = RefusedUnreadable
		return r.reject(ctx, t, src, res, http.StatusBadRequest, "the request body could not be read"), nil
	}
	if len(body) > MaxBodyBytes {
		res.Refusal = RefusedTooLarge
		return r.reject(ctx, t, src, res, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes)), nil
	}
	if err := VerifySignature(src.Kind, d.Header, body, src.Secrets); err != nil {
		reason := "the signature does not match this source's secret"
		res.Refusal = RefusedBadSignature
		if errors.Is(err, ErrMissingSignature) {
			reason = "the delivery carries no signature: " + signatureHint(src.Kind)
			res.Refusal = RefusedMissingSignature
		}
		return r.reject(ctx, t, src, res, http.StatusUnauthorized, reason), nil
	}
	ev, err := parse(src.Kind, res.Event, d.Entity, body)
	if err != nil {
		res.Refusal = RefusedMalformed
		return r.reject(ctx, t, src, res, http.StatusBadRequest, err.Error()), nil
	}
	if ev.Name != "" {
		res.Event = ev.Name
	}
	if res.DeliveryID == "" {
		res.DeliveryID = ev.DeliveryID
	}
	if res.DeliveryID == "" {
		res.DeliveryID = d.ID
	}
	line := store.Delivery{DeliveryID: res.DeliveryID, Event: res.Event, Outcome: store.DeliveryAccepted, Status: http.StatusOK}
	batch := ev.Batch()
	if ev.Ignored != "" {
		line.Outcome, line.Status, line.Reason = store.DeliveryIgnored, http.StatusAccepted, ev.Ignored
		batch = nil
	} else if len(ev.Deployments) > 0 {
		// Only deployments are classified: pushes, most deliveries, need
		// not decode the rules.
		var rules devops.EnvironmentRules
		if err := json.Unmarshal(src.EnvironmentRules, &rules); err != nil {
			// Rules are validated when set; unreadable ones fall back to the
			// provider's type and the heuristic rather than losing the delivery.
			r.log.Warn("ingest: unreadable environment rules", "tenant", t.ID, "source", src.ID, "err", err)
			rules = nil
		}
		ev.Classify(rules)
	}
	err = r.store.RecordEvent(ctx, t, src.ID, line, batch)
	switch {
	case errors.Is(err, store.ErrDuplicate):
		res.Status, res.Outcome, res.Reason = http.StatusOK, store.DeliveryDuplicate, "this delivery was already processed"
		dup := store.Delivery{DeliveryID: res.DeliveryID, Event: res.Event, Outcome: store.DeliveryDuplicate,
			Status: res.Status, Reason: res.Reason}
		if err := r.store.RecordDelivery(ctx, t, src.ID, dup); err != nil {
			r.log.Warn("ingest: log duplicate delivery", "tenant", t.ID, "source", src.ID, "err", err)
		}
		return res, nil
	case errors.Is(err, store.ErrNotFound):
		// The source was deleted while the delivery was in flight.
		return Result{Status: http.StatusNotFound, Reason: "no webhook source has this URL", Kind: src.Kind, Refusal: RefusedUnknownSource}, nil
	case err != nil:
		return Result{Status: http.StatusServiceUnavailable, TenantID: t.ID, SourceID: src.ID, Kind: src.Kind, Refusal: RefusedStoreError},
			fmt.Errorf("store delivery: %w", err)
	}
	res.Status, res.Outcome, res.Reason = line.Status, line.Outcome, line.Reason
	return res, nil
}

// readBody reads a delivery's body, up to one byte past MaxBodyBytes so
// that a larger one shows. With a declared length it reads into one buffer
// of that size (and a little more, to see the end): io.ReadAll would start
// small and copy the body several times as it grows.
func readBody(r io.Reader, length int64) ([]byte, error) {
	r = io.LimitReader(r, MaxBodyBytes+1)
	if length <= 0 || length > MaxBodyBytes {
		return io.ReadAll(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, length+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// reject logs a refused delivery in its source's log and returns the answer.
// Failing to log it changes nothing for the sender: it is refused anyway.
func (r *Receiver) reject(ctx context.Context, t *tenant.Tenant, src *store.Source, res Result, status int, reason string) Result {
	res.Status, res.Outcome, res.Reason = status, store.DeliveryRejected, reason
	line := store.Delivery{DeliveryID: res.DeliveryID, Event: res.Event, Outcome: store.DeliveryRejected,
		Status: status, Reason: reason}
	if err := r.store.RecordDelivery(ctx, t, src.ID, line); err != nil {
		r.log.Warn("ingest: log rejected delivery", "tenant", t.ID, "source", src.ID, "err", err)
	}
	return res
}

// limitReason tells the sender which limit it hit and when to come back.
func limitReason(f Refusal) string {
	who := "this source"
	if f.Limit == LimitSite {
		who = "this site's sources together"
	}
	return fmt.Sprintf("rate limit of the %s exceeded: %s sent more deliveries than Keyline takes; retry after %d s",
		f.Limit, who, int(f.RetryAfter/time.Second))
}

// entityMismatch says why a delivery went to the wrong URL for its source's
// kind: generic sources take one entity kind per path, providers none.
func entityMismatch(kind, entity string) string {
	if kind == KindGeneric {
		switch entity {
		case GenericBuild, GenericDeployment, GenericIncident, GenericPing:
			return ""
		}
		return "a generic source takes deliveries at <webhook URL>/builds, /deployments or /incidents"
	}
	if entity != "" {
		return "a " + kind + " source takes deliveries at its webhook URL itself, with nothing after it"
	}
	return ""
}

// signatureHint names the header a kind of source must send.
func signatureHint(kind string) string {
	switch kind {
	case KindGitHub:
		return "set the webhook's secret so GitHub sends " + HeaderGitHubSignature
	case KindBitbucket:
		return "set the webhook's secret so Bitbucket sends " + HeaderBitbucketSignature
	case KindGitLab:
		return "set the webhook's secret token so GitLab sends " + HeaderGitLabToken
	case KindPagerDuty:
		return "PagerDuty sends " + HeaderPagerDutySignature + " when the subscription has a signing secret"
	case KindOpsgenie:
		return "add the custom header " + HeaderKeylineToken + " with the source's secret to the Opsgenie webhook"
	}
	return "send " + HeaderAuthorization + ": Bearer <secret> or " + HeaderKeylineSignature
}

// parse dispatches a verified body to its kind's parser.
func parse(kind, event, entity string, body []byte) (*Event, error) {
	switch kind {
	case KindGitHub:
		return ParseGitHub(event, body)
	case KindGitLab:
		return ParseGitLab(event, body)
	case KindBitbucket:
		return ParseBitbucket(event, body)
	case KindPagerDuty:
		return ParsePagerDuty(body)
	case KindOpsgenie:
		return ParseOpsgenie(body)
	case KindGeneric:
		if entity == GenericPing {
			return ignored(GenericPing, "ping: the source is set up; nothing is stored"), nil
		}
		return ParseGeneric(entity, body)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKind, kind)
}

// GenericPing is the generic API's test path, <webhook URL>/ping: a signed
// delivery there is verified and logged as ignored, with any body, and
// nothing is stored. It is the generic API's counterpart of GitHub's ping,
// for a CI job to check its URL and secret, and what the configure page's
// test button sends.
const GenericPing = "ping"
