package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/tenant"
)

// Source kinds: where a source's webhooks come from. Each has its own way of
// signing deliveries (see package ingest).
const (
	SourceGitHub    = "github"
	SourceGitLab    = "gitlab"
	SourceBitbucket = "bitbucket"
	SourcePagerDuty = "pagerduty"
	SourceOpsgenie  = "opsgenie"
	// SourceGeneric is any CI/CD or incident tool posting to Keyline's own API.
	SourceGeneric = "generic"
)

// SourceKinds returns every valid source kind, in a fixed order.
func SourceKinds() []string {
	return []string{SourceGitHub, SourceGitLab, SourceBitbucket, SourcePagerDuty, SourceOpsgenie, SourceGeneric}
}

// ValidSourceKind reports whether kind is one of SourceKinds.
func ValidSourceKind(kind string) bool { return slices.Contains(SourceKinds(), kind) }

// Limits on sources.
const (
	// DefaultSecretOverlap is how long a rotated-out secret keeps verifying
	// unless the caller chooses otherwise: long enough to update the secret
	// in the provider's settings without losing deliveries.
	DefaultSecretOverlap = 24 * time.Hour
	// MaxSecretOverlap bounds the overlap; a longer one would defeat the rotation.
	MaxSecretOverlap = 30 * 24 * time.Hour
	// MaxSourcesPerTenant bounds the live sources of one site. Concurrent
	// creations on PostgreSQL may overshoot it by a few; it is a guard
	// against runaway scripts, not a quota.
	MaxSourcesPerTenant = 100
	// MaxSourceNameLen is the longest name, in characters.
	MaxSourceNameLen = 100
	// MaxEnvironmentRulesLen is the largest environment rules document, in bytes.
	MaxEnvironmentRulesLen = 64 << 10
	// Secrets set by hand (a provider that issues its own, like PagerDuty)
	// must be at least this long; shorter ones are guessable offline from
	// one signed delivery.
	minSecretLen = 16
	maxSecretLen = 512
	// maxTokenLen rejects absurd tokens before hashing them.
	maxTokenLen = 256
)

// defaultEnvironmentRules is what a new source starts with: no rules, so
// environments are classified by the provider's own type and the heuristic.
const defaultEnvironmentRules = "{}"

// ErrTooManySources is returned by CreateSource when the site already has
// MaxSourcesPerTenant live sources.
var ErrTooManySources = errors.New("store: too many sources")

// Source is a webhook endpoint of a site: one GitHub organisation, GitLab
// group, PagerDuty account, CI system... Its URL token and signing secret are
// shown once, when created or rotated; the store keeps only the token's hash
// and the sealed secret.
type Source struct {
	TenantID int64
	ID       string // "src_" and 26 base32 characters
	Kind     string // one of SourceKinds
	Name     string
	// EnvironmentRules is a JSON object of environment glob rules, "{}" by
	// default; SetEnvironmentRules checks it (see ParseEnvironmentRules).
	EnvironmentRules json.RawMessage
	CreatedAt        time.Time
	UpdatedAt        time.Time
	// PreviousSecretUntil is when the secret replaced by the last rotation
	// stops verifying; nil when there is none or it has already expired.
	PreviousSecretUntil *time.Time
	// Secrets are the signing secrets that verify now, current first, then
	// the previous one during a rotation overlap. Only SourceByToken fills
	// them: they are needed to verify a delivery and nowhere else.
	Secrets [][]byte
}

// qualified prefixes each column of a select list with a table alias.
func qualified(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// sourceColumns is the select list that scanSource reads, in order.
const sourceColumns = `tenant_id, id, kind, name, environment_rules, created_at, updated_at,
	previous_secret_until`

// CreateSource adds a source of kind to t's site. name may be empty (the kind
// is used). It returns the source, the token of its webhook URL and its
// signing secret; neither can be read back later.
func (s *Store) CreateSource(ctx context.Context, t *tenant.Tenant, kind, name string) (src *Source, token, secret string, err error) {
	if err := checkTenant(t); err != nil {
		return nil, "", "", fmt.Errorf("store: create source: %w", err)
	}
	if !ValidSourceKind(kind) {
		return nil, "", "", fmt.Errorf("store: create source: unknown kind %q (want one of %s)", kind, strings.Join(SourceKinds(), ", "))
	}
	name, err = cleanSourceName(name)
	if err != nil {
		return nil, "", "", fmt.Errorf("store: create source: %w", err)
	}
	if name == "" {
		name = kind
	}
	id := "src_" + strings.ToLower(rand.Text())
	if token, err = randomString(base64.RawURLEncoding.EncodeToString); err != nil {
		return nil, "", "", fmt.Errorf("store: create source: %w", err)
	}
	if secret, err = randomString(hex.EncodeToString); err != nil {
		return nil, "", "", fmt.Errorf("store: create source: %w", err)
	}
	sealed, err := s.sealer.Seal([]byte(secret))
	if err != nil {
		return nil, "", "", fmt.Errorf("store: create source: %w", err)
	}
	now := normTime(s.now())
	// One statement, so that on SQLite the count and the insert cannot
	// interleave with another creation.
	res := s.db.WithContext(ctx).Exec(`INSERT INTO sources (tenant_id, id, kind, name, token_hash,
			secret_enc, environment_rules, created_at, updated_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
		WHERE (SELECT COUNT(*) FROM sources WHERE tenant_id = ? AND deleted_at IS NULL) < ?`,
		t.ID, id, kind, name, tokenHash(token), sealed, defaultEnvironmentRules, s.ts(now), s.ts(now),
		t.ID, MaxSourcesPerTenant)
	if res.Error != nil {
		return nil, "", "", fmt.Errorf("store: create source: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, "", "", fmt.Errorf("store: create source: %w (limit %d)", ErrTooManySources, MaxSourcesPerTenant)
	}
	return &Source{
		TenantID:         t.ID,
		ID:               id,
		Kind:             kind,
		Name:             name,
		EnvironmentRules: json.RawMessage(defaultEnvironmentRules),
		CreatedAt:        now,
		UpdatedAt:        now,
	}, token, secret, nil
}

// ListSources returns t's live sources, oldest first, without secrets.
func (s *Store) ListSources(ctx context.Context, t *tenant.Tenant) ([]Source, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: list sources: %w", err)
	}
	rows, err := s.db.WithContext(ctx).Raw(`SELECT `+sourceColumns+` FROM sources
		WHERE tenant_id = ? AND deleted_at IS NULL
		ORDER BY created_at, id`,
		t.ID,
	).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: list sources: %w", err)
	}
	defer rows.Close()
	out := []Source{}
	for rows.Next() {
		src, err := s.scanSource(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list sources: %w", err)
		}
		out = append(out, *src)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list sources: %w", err)
	}
	return out, nil
}

// SourceByID returns t's live source id, without secrets, or an error
// wrapping ErrNotFound.
func (s *Store) SourceByID(ctx context.Context, t *tenant.Tenant, id string) (*Source, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: source by id: %w", err)
	}
	src, err := s.scanSource(queryRow(s.db.WithContext(ctx), `SELECT `+sourceColumns+` FROM sources
		WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL`,
		t.ID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: source by id: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: source by id: %w", err)
	}
	return src, nil
}

// SourceByToken finds the source whose webhook URL carries token, with its
// verifying secrets opened, and the tenant it belongs to. A deleted source, or
// one of a site that uninstalled the app, gives an error wrapping ErrNotFound.
// A disabled tenant is returned (Tenant.Enabled is false): disabling the app
// should not make providers drop deliveries they will never resend; the
// caller decides.
//
// This is the one site-data lookup not scoped by a tenant, because it is how
// the tenant of an unauthenticated webhook is found. That is safe because the
// token is 256 random bits: it cannot be guessed, so knowing it is proof of
// being given the URL. The database holds only its SHA-256, so a leaked
// database reveals no URL, and the index lookup by hash leaks nothing useful
// through timing (an attacker controls the hash's input, not its bytes).
// Every delivery must still pass signature verification with Secrets.
func (s *Store) SourceByToken(ctx context.Context, token string) (*tenant.Tenant, *Source, error) {
	if token == "" || len(token) > maxTokenLen {
		return nil, nil, fmt.Errorf("store: source by token: %w", ErrNotFound)
	}
	key := string(tokenHash(token))
	if t, src, ok := s.sources.get(key, s.now()); ok {
		return t, src, nil
	}
	var (
		current, before []byte
		tr              tenantRow
	)
	// One round trip: this runs for every webhook delivery.
	src, err := s.scanSource(queryRow(s.db.WithContext(ctx), `SELECT `+qualified("s", sourceColumns)+`,
			s.secret_enc, s.previous_secret_enc, `+qualified("t", tenantColumns)+`
		FROM sources s JOIN tenants t ON t.id = s.tenant_id
		WHERE s.token_hash = ? AND s.deleted_at IS NULL AND t.installed`,
		tokenHash(token)), append([]any{&current, &before}, tr.dest()...)...)
	if errors.Is(err, sql.ErrNoRows) {
		// Unknown, deleted, or of a site that uninstalled the app.
		return nil, nil, fmt.Errorf("store: source by token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: source by token: %w", err)
	}
	t, err := s.finishTenant(&tr)
	if err != nil {
		return nil, nil, fmt.Errorf("store: source by token: %w", err)
	}
	plain, err := s.sealer.Open(current)
	if err != nil {
		return nil, nil, fmt.Errorf("store: source by token: open secret of source %s: %w", src.ID, err)
	}
	src.Secrets = [][]byte{plain}
	if src.PreviousSecretUntil != nil && len(before) > 0 {
		plain, err := s.sealer.Open(before)
		if err != nil {
			return nil, nil, fmt.Errorf("store: source by token: open previous secret of source %s: %w", src.ID, err)
		}
		src.Secrets = append(src.Secrets, plain)
	}
	s.sources.put(key, t, src, s.now())
	return t, src, nil
}

// RotateSourceSecret gives t's source id a new random signing secret and
// returns it. The old secret keeps verifying for overlap (0: it stops at
// once, as after a leak; DefaultSecretOverlap is the usual choice). Only the
// secret being replaced is kept: rotating again during an overlap ends the
// older secret's overlap at once.
func (s *Store) RotateSourceSecret(ctx context.Context, t *tenant.Tenant, id string, overlap time.Duration) (string, error) {
	secret, err := randomString(hex.EncodeToString)
	if err != nil {
		return "", fmt.Errorf("store: rotate source secret: %w", err)
	}
	if err := s.replaceSecret(ctx, t, id, secret, overlap); err != nil {
		return "", fmt.Errorf("store: rotate source secret: %w", err)
	}
	return secret, nil
}

// SetSourceSecret is RotateSourceSecret with a secret chosen by the caller,
// for providers that issue their own (PagerDuty generates the signing secret
// of a webhook subscription; it cannot be set). The secret must be 16 to 512
// bytes without surrounding white space.
func (s *Store) SetSourceSecret(ctx context.Context, t *tenant.Tenant, id, secret string, overlap time.Duration) error {
	if len(secret) < minSecretLen || len(secret) > maxSecretLen || strings.TrimSpace(secret) != secret {
		return fmt.Errorf("store: set source secret: the secret must be %d to %d bytes without surrounding white space", minSecretLen, maxSecretLen)
	}
	if err := s.replaceSecret(ctx, t, id, secret, overlap); err != nil {
		return fmt.Errorf("store: set source secret: %w", err)
	}
	return nil
}

func (s *Store) replaceSecret(ctx context.Context, t *tenant.Tenant, id, secret string, overlap time.Duration) error {
	defer s.sources.forgetSource(t, id)
	if err := checkTenant(t); err != nil {
		return err
	}
	if overlap < 0 || overlap > MaxSecretOverlap {
		return fmt.Errorf("overlap %s out of range 0 to %s", overlap, MaxSecretOverlap)
	}
	sealed, err := s.sealer.Seal([]byte(secret))
	if err != nil {
		return err
	}
	now := s.now()
	// SET expressions read the row's values from before the update, so the
	// current secret moves to previous in the same statement.
	q := `UPDATE sources SET previous_secret_enc = secret_enc, previous_secret_until = ?,
			secret_enc = ?, updated_at = ?
		WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL`
	args := []any{s.ts(now.Add(overlap)), sealed, s.ts(now), t.ID, id}
	if overlap == 0 {
		q = `UPDATE sources SET previous_secret_enc = NULL, previous_secret_until = NULL,
				secret_enc = ?, updated_at = ?
			WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL`
		args = args[1:]
	}
	res := s.db.WithContext(ctx).Exec(q, args...)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteSource deletes t's source id: its URL stops working at once. The row
// stays, with its secrets wiped, so that its delivery log and the entities it
// delivered keep naming it; its token can never be reused. Deleting an
// unknown or already deleted source gives an error wrapping ErrNotFound.
func (s *Store) DeleteSource(ctx context.Context, t *tenant.Tenant, id string) error {
	defer s.sources.forgetSource(t, id)
	if err := checkTenant(t); err != nil {
		return fmt.Errorf("store: delete source: %w", err)
	}
	now := s.ts(s.now())
	res := s.db.WithContext(ctx).Exec(`UPDATE sources SET deleted_at = ?, updated_at = ?,
			secret_enc = ?, previous_secret_enc = NULL, previous_secret_until = NULL
		WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL`,
		now, now, []byte{}, t.ID, id)
	if res.Error != nil {
		return fmt.Errorf("store: delete source: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: delete source: %w", ErrNotFound)
	}
	return nil
}

// SetEnvironmentRules replaces the environment rules of t's source id with
// rules, a JSON document that ParseEnvironmentRules accepts; anything else
// gives an error wrapping devops.ErrInvalidEnvironmentRules and stores
// nothing. The rules are checked here rather than left to callers because the
// ingest path trusts what is stored. They are stored re-encoded from what was
// checked (compact, keys sorted), so a duplicate key cannot hide a glob.
func (s *Store) SetEnvironmentRules(ctx context.Context, t *tenant.Tenant, id string, rules []byte) error {
	defer s.sources.forgetSource(t, id)
	if err := checkTenant(t); err != nil {
		return fmt.Errorf("store: set environment rules: %w", err)
	}
	parsed, err := ParseEnvironmentRules(rules)
	if err != nil {
		return fmt.Errorf("store: set environment rules: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "&" and "<" readable in globs
	if err := enc.Encode(parsed); err != nil {
		return fmt.Errorf("store: set environment rules: encode: %w", err)
	}
	res := s.db.WithContext(ctx).Exec(`UPDATE sources SET environment_rules = ?, updated_at = ?
		WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL`,
		strings.TrimSpace(buf.String()), s.ts(s.now()), t.ID, id)
	if res.Error != nil {
		return fmt.Errorf("store: set environment rules: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: set environment rules: %w", ErrNotFound)
	}
	return nil
}

// ParseEnvironmentRules reads an environment rules document: a JSON object of
// at most MaxEnvironmentRulesLen bytes from environment type to a list of
// globs, that devops.EnvironmentRules.Validate accepts. Every error wraps
// devops.ErrInvalidEnvironmentRules and says what is wrong, for the person
// who wrote the rules; problems with several types are joined.
func ParseEnvironmentRules(doc []byte) (devops.EnvironmentRules, error) {
	const want = `want an object like {"production": ["prod-*", "live"], "staging": ["*-stable"]}`
	if len(doc) > MaxEnvironmentRulesLen {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", devops.ErrInvalidEnvironmentRules, len(doc), MaxEnvironmentRulesLen)
	}
	if !json.Valid(doc) {
		return nil, fmt.Errorf("%w: not JSON; %s", devops.ErrInvalidEnvironmentRules, want)
	}
	// Each value is decoded on its own so that a wrong one can be named:
	// encoding/json's type errors do not say which map key they are about.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(doc, &raw); err != nil || raw == nil {
		return nil, fmt.Errorf("%w: not a JSON object; %s", devops.ErrInvalidEnvironmentRules, want)
	}
	rules := make(devops.EnvironmentRules, len(raw))
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(raw)) {
		var globs []string
		if err := json.Unmarshal(raw[key], &globs); err != nil || globs == nil {
			errs = append(errs, fmt.Errorf(`%w: the value of %q must be a list of glob strings, like ["prod-*"]`, devops.ErrInvalidEnvironmentRules, key))
			continue
		}
		rules[devops.EnvironmentType(key)] = globs
	}
	if err := errors.Join(append(errs, rules.Validate())...); err != nil {
		return nil, err
	}
	return rules, nil
}

// scanSource reads sourceColumns, then any extra columns into extra.
func (s *Store) scanSource(r rowScanner, extra ...any) (*Source, error) {
	var (
		src   Source
		rules string
		until sql.NullTime
	)
	dest := append([]any{&src.TenantID, &src.ID, &src.Kind, &src.Name, &rules,
		&src.CreatedAt, &src.UpdatedAt, &until}, extra...)
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	src.EnvironmentRules = json.RawMessage(rules)
	src.CreatedAt = fromDB(src.CreatedAt)
	src.UpdatedAt = fromDB(src.UpdatedAt)
	// An expired overlap is as good as none; the column is not cleared
	// eagerly, so the comparison happens here, on the store's clock.
	if until.Valid && until.Time.After(s.now()) {
		u := fromDB(until.Time)
		src.PreviousSecretUntil = &u
	}
	return &src, nil
}

// tokenHash is what the sources table stores for a token. A plain hash is
// enough: the token has 256 random bits, so there is nothing to brute-force.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// randomString encodes 32 random bytes with enc: 256 bits for tokens and
// secrets alike.
func randomString(enc func([]byte) string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return enc(b), nil
}

// cleanSourceName trims name and refuses what would display badly: invalid
// UTF-8, control characters, or more than MaxSourceNameLen characters.
func cleanSourceName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) {
		return "", errors.New("name is not valid UTF-8")
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return "", errors.New("name contains control characters")
	}
	if n := utf8.RuneCountInString(name); n > MaxSourceNameLen {
		return "", fmt.Errorf("name has %d characters, over the limit of %d", n, MaxSourceNameLen)
	}
	return name, nil
}
