package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/keyline/keyline/app/devops"
)

// Event is what one delivery says, in Keyline's terms. A parser fills it from
// one provider payload; the store records it. Environment types in
// Deployments are the provider's own statement (or unmapped): the source's
// rules and the heuristic are applied after parsing, by Classify.
type Event struct {
	// Name is the provider's event name (X-GitHub-Event, object_kind, …).
	Name string
	// Ignored, when set, says why Keyline does not use this event; such a
	// delivery is answered 202 and logged, nothing else.
	Ignored string
	// DeliveryID is an idempotency key found in the body, for providers that
	// send none in headers (PagerDuty's event.id).
	DeliveryID string

	Repository   *devops.Repository
	Push         *devops.Push
	Commits      []devops.Commit
	Branches     []devops.Branch
	PullRequests []devops.PullRequest
	Builds       []devops.Build
	Deployments  []devops.Deployment
	Incidents    []devops.Incident
}

// Batch returns the entities the event carries, for the store.
func (e *Event) Batch() *devops.Batch {
	return &devops.Batch{
		Repository: e.Repository, Push: e.Push, Commits: e.Commits, Branches: e.Branches,
		PullRequests: e.PullRequests, Builds: e.Builds, Deployments: e.Deployments, Incidents: e.Incidents,
	}
}

// ErrMalformed wraps every parse failure: the delivery gets 400 and nothing is stored.
var ErrMalformed = errors.New("malformed payload")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func ignored(name, reason string) *Event { return &Event{Name: name, Ignored: reason} }

// decode unmarshals body into v, reporting JSON errors as ErrMalformed.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return malformed("body is not valid JSON of the expected shape: %v", err)
	}
	return nil
}

// Classify sets each deployment's environment type from the provider's
// statement, then the source's rules, then the name heuristic.
func (e *Event) Classify(rules devops.EnvironmentRules) {
	for i := range e.Deployments {
		d := &e.Deployments[i]
		d.EnvironmentType, d.EnvironmentBasis = devops.ClassifyEnvironment(d.EnvironmentName, d.EnvironmentType, rules)
	}
}

// flexTime parses the time formats providers use: RFC 3339 (GitHub,
// Bitbucket, GitLab's newer fields), GitLab's "2006-01-02 15:04:05 UTC" and
// "2006-01-02 15:04:05 -0700". Empty means unknown; anything else is an error.
func flexTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700", "2006-01-02T15:04:05.999999999-07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, malformed("unrecognised time %q", truncateForError(s))
}

// times parses several times, failing on the first bad one.
func times(dst []*time.Time, src ...string) error {
	for i, s := range src {
		t, err := flexTime(s)
		if err != nil {
			return err
		}
		*dst[i] = t
	}
	return nil
}

// blank reports whether s holds nothing but spaces and control characters.
// Required names and ids are checked with it rather than against "": the
// store turns control characters into spaces and trims, so such an id would
// reach it empty, fail there and answer 503, and the provider would retry the
// same delivery forever instead of being told it is malformed.
func blank(s string) bool {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) == ""
}

func truncateForError(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// requireSHA checks a commit hash from a payload, lower-casing it.
func requireSHA(field, sha string) (string, error) {
	if !devops.ValidCommitSHA(sha) {
		return "", malformed("%s is not a commit hash", field)
	}
	return sha, nil
}
