package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/keyline/keyline/app/tenant"
)

// DeliveryOutcome is what Keyline did with a delivery.
type DeliveryOutcome string

// Delivery outcomes.
const (
	// DeliveryAccepted: verified, parsed and stored.
	DeliveryAccepted DeliveryOutcome = "accepted"
	// DeliveryIgnored: verified, but an event Keyline does not use.
	DeliveryIgnored DeliveryOutcome = "ignored"
	// DeliveryDuplicate: verified, but its delivery id was already processed.
	DeliveryDuplicate DeliveryOutcome = "duplicate"
	// DeliveryRejected: refused (bad signature, too large, malformed); nothing
	// but the log line was stored.
	DeliveryRejected DeliveryOutcome = "rejected"
)

// Valid reports whether o is one of the four outcomes.
func (o DeliveryOutcome) Valid() bool {
	switch o {
	case DeliveryAccepted, DeliveryIgnored, DeliveryDuplicate, DeliveryRejected:
		return true
	}
	return false
}

// claims reports whether recording o uses up its delivery id. It must agree
// with the predicate of the deliveries_delivery_id_key index.
func (o DeliveryOutcome) claims() bool { return o == DeliveryAccepted || o == DeliveryIgnored }

// MaxDeliveriesPerSource is how many log lines each source keeps and lists;
// older lines are dropped soon after newer ones arrive.
const MaxDeliveriesPerSource = 200

// Length limits for the text of a log line. Rejected deliveries are logged
// with whatever headers an unauthenticated sender chose, so nothing here
// may be unbounded.
const (
	maxDeliveryIDLen = 128
	maxEventLen      = 100
	maxReasonLen     = 500
)

// ErrDuplicate is returned by RecordDelivery when an accepted or ignored
// delivery's id was already recorded as processed for the same source.
var ErrDuplicate = errors.New("store: duplicate delivery")

// Delivery is one line of a source's delivery log.
type Delivery struct {
	// ID is assigned by the store and increases in the order lines were recorded.
	ID int64
	// DeliveryID is the provider's id for the delivery (GitHub's
	// X-GitHub-Delivery...), the same on every retry; "" when it sends none.
	// Ids longer than 128 bytes or with characters other than printable
	// ASCII are stored as "sha256:" and their hex hash, which keeps them
	// distinct; truncating could make two deliveries collide.
	DeliveryID string
	Event      string // provider's event name, e.g. "push"; at most 100 bytes kept
	Outcome    DeliveryOutcome
	Status     int    // HTTP status answered
	Reason     string // why rejected or ignored; at most 500 bytes kept
	ReceivedAt time.Time
}

// deliveryInsert records a line if the source is live. The SELECT reads the
// source row, so a missing or deleted source inserts nothing. The conflict
// target names the partial unique index (PostgreSQL and SQLite both need its
// predicate repeated) and turns a second claim of a delivery id into no row.
// %s is the id column and value: PostgreSQL's comes from a sequence; SQLite
// has none outside a one-column key, so there it is the source's highest id
// plus one, which its single writer makes safe.
const deliveryInsert = `INSERT INTO deliveries (tenant_id, source_id%s, delivery_id, event, outcome,
	status, reason, received_at)
SELECT tenant_id, id%s, ?, ?, ?, ?, ?, ?
FROM sources WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL
ON CONFLICT (tenant_id, source_id, delivery_id)
	WHERE delivery_id <> '' AND outcome IN ('accepted', 'ignored') DO NOTHING
RETURNING id`

var (
	insertDeliveryPostgres = fmt.Sprintf(deliveryInsert, "", "")
	insertDeliverySQLite   = fmt.Sprintf(deliveryInsert, ", id",
		`, (SELECT COALESCE(MAX(d.id), 0) + 1 FROM deliveries d
			WHERE d.tenant_id = sources.tenant_id AND d.source_id = sources.id)`)
)

// RecordDelivery adds a line to the delivery log of t's live source
// sourceID, and from time to time drops lines beyond the newest
// MaxDeliveriesPerSource (see trimEvery).
// d.ReceivedAt zero means now; d.ID is ignored. RecordEvent is the way to
// record an accepted delivery together with what it carried.
//
// Idempotency: an accepted or ignored delivery claims its DeliveryID for the
// source. If the id was already claimed, nothing is written and ErrDuplicate
// is returned; the caller then records a DeliveryDuplicate line if it wants
// one. Rejected and duplicate lines claim nothing, so a retry after a
// rejection is still processed. Claims live as long as their log line, so
// the window is at least the source's last MaxDeliveriesPerSource
// deliveries; older redeliveries rely on the entity writes being idempotent themselves.
//
// A missing or deleted source gives an error wrapping ErrNotFound.
func (s *Store) RecordDelivery(ctx context.Context, t *tenant.Tenant, sourceID string, d Delivery) error {
	if err := checkTenant(t); err != nil {
		return fmt.Errorf("store: record delivery: %w", err)
	}
	id, err := s.insertDelivery(s.db.WithContext(ctx), t, sourceID, d)
	if err != nil {
		return fmt.Errorf("store: record delivery: %w", err)
	}
	s.trimDeliveries(ctx, t, sourceID, id)
	return nil
}

// insertDelivery writes one log line through db (a transaction, when the
// line must commit or roll back with entity writes) and returns its id.
func (s *Store) insertDelivery(db *gorm.DB, t *tenant.Tenant, sourceID string, d Delivery) (int64, error) {
	args, err := s.deliveryArgs(t, sourceID, d)
	if err != nil {
		return 0, err
	}
	q := insertDeliveryPostgres
	if s.dialect == DialectSQLite {
		q = insertDeliverySQLite
	}
	var id int64
	err = queryRow(db, q, args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, s.notInserted(db, t, sourceID, d)
	}
	return id, err
}

// deliveryArgs are the bind arguments of the delivery inserts.
func (s *Store) deliveryArgs(t *tenant.Tenant, sourceID string, d Delivery) ([]any, error) {
	if !d.Outcome.Valid() {
		return nil, fmt.Errorf("unknown outcome %q", d.Outcome)
	}
	if d.Status < 100 || d.Status > 599 {
		return nil, fmt.Errorf("status %d is not an HTTP status", d.Status)
	}
	at := d.ReceivedAt
	if at.IsZero() {
		at = s.now()
	}
	return []any{cleanDeliveryID(d.DeliveryID), cleanText(d.Event, maxEventLen), string(d.Outcome), d.Status,
		cleanText(d.Reason, maxReasonLen), s.ts(at), t.ID, sourceID}, nil
}

// notInserted explains a delivery insert that wrote no row: either there is
// no live source, or the delivery id was already claimed.
func (s *Store) notInserted(db *gorm.DB, t *tenant.Tenant, sourceID string, d Delivery) error {
	if err := s.sourceLive(db, t, sourceID); err != nil {
		return err
	}
	return fmt.Errorf("delivery %q: %w", d.DeliveryID, ErrDuplicate)
}

// trimEvery spaces out trimming: a log is trimmed when the id of the line
// just written is a multiple of it, so a source's log may hold up to about
// that many lines beyond MaxDeliveriesPerSource between trims (listing never
// shows them), and the DELETE runs once per trimEvery deliveries instead of
// on each, which matters at thousands of deliveries a second. On SQLite ids
// count per source, so that is exact; PostgreSQL's come from one sequence
// shared by all sources, which makes it so on average.
const trimEvery = 16

// trimDeliveries drops a source's lines beyond the newest
// MaxDeliveriesPerSource when lastID says it is time to. It is
// housekeeping: if it fails the line is still recorded (the delivery must
// not be retried for it) and a later insert trims again.
func (s *Store) trimDeliveries(ctx context.Context, t *tenant.Tenant, sourceID string, lastID int64) {
	if lastID%trimEvery != 0 {
		return
	}
	err := s.db.WithContext(ctx).Exec(`DELETE FROM deliveries
		WHERE tenant_id = ? AND source_id = ? AND id <= (
			SELECT id FROM deliveries WHERE tenant_id = ? AND source_id = ?
			ORDER BY id DESC LIMIT 1 OFFSET ?)`,
		t.ID, sourceID, t.ID, sourceID, MaxDeliveriesPerSource,
	).Error
	if err != nil {
		s.log.Warn("store: trim delivery log", "tenant", t.ID, "source", sourceID, "err", err)
	}
}

// ListDeliveries returns up to limit lines of the delivery log of t's live
// source sourceID, newest first. A limit outside 1..MaxDeliveriesPerSource
// means all of them. A missing or deleted source gives an error wrapping
// ErrNotFound.
func (s *Store) ListDeliveries(ctx context.Context, t *tenant.Tenant, sourceID string, limit int) ([]Delivery, error) {
	if err := checkTenant(t); err != nil {
		return nil, fmt.Errorf("store: list deliveries: %w", err)
	}
	if limit < 1 || limit > MaxDeliveriesPerSource {
		limit = MaxDeliveriesPerSource
	}
	db := s.db.WithContext(ctx)
	if err := s.sourceLive(db, t, sourceID); err != nil {
		return nil, fmt.Errorf("store: list deliveries: %w", err)
	}
	rows, err := db.Raw(`SELECT id, delivery_id, event, outcome, status, reason, received_at
		FROM deliveries WHERE tenant_id = ? AND source_id = ?
		ORDER BY id DESC LIMIT ?`,
		t.ID, sourceID, limit,
	).Rows()
	if err != nil {
		return nil, fmt.Errorf("store: list deliveries: %w", err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		var d Delivery
		var outcome string
		if err := rows.Scan(&d.ID, &d.DeliveryID, &d.Event, &outcome, &d.Status, &d.Reason, &d.ReceivedAt); err != nil {
			return nil, fmt.Errorf("store: list deliveries: %w", err)
		}
		d.Outcome = DeliveryOutcome(outcome)
		d.ReceivedAt = fromDB(d.ReceivedAt)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list deliveries: %w", err)
	}
	return out, nil
}

// sourceLive returns nil if t has a live source id, else ErrNotFound.
func (s *Store) sourceLive(db *gorm.DB, t *tenant.Tenant, id string) error {
	var n int
	err := queryRow(db, `SELECT COUNT(*) FROM sources
		WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL`,
		t.ID, id).Scan(&n)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// cleanDeliveryID keeps a delivery id as sent when it is short printable
// ASCII, and otherwise replaces it by its hash: distinct ids stay distinct
// and the column stays small.
func cleanDeliveryID(id string) string {
	id = strings.TrimSpace(id)
	ok := len(id) <= maxDeliveryIDLen && !strings.ContainsFunc(id, func(r rune) bool {
		return r < 0x21 || r > 0x7e
	})
	if ok {
		return id
	}
	h := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(h[:])
}

// cleanText makes s safe to store and show: valid UTF-8 (PostgreSQL refuses
// anything else), no control characters (NUL among them), at most max bytes,
// cut on a character boundary.
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return cutUTF8(strings.TrimSpace(s), max)
}

// cutUTF8 shortens s to at most max bytes without splitting a character.
func cutUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
