package store

import (
	"fmt"
	"time"
)

// sqliteTimeLayout is how timestamps are stored on SQLite: UTC, fixed width,
// microseconds. Fixed width makes text comparison equal time comparison (the
// issue upsert relies on it); microseconds is what PostgreSQL keeps, so a
// value reads back equal on both engines. SQLite's date functions accept it.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// normTime is the value a timestamp will have after a round trip through
// either database: UTC, truncated to microseconds.
func normTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// ts converts a timestamp into the bind argument for the store's dialect.
// The ncruces driver would otherwise write RFC 3339 with a variable number of
// fraction digits, which neither sorts nor round-trips exactly.
func (s *Store) ts(t time.Time) any {
	t = normTime(t)
	if s.dialect == DialectSQLite {
		return t.Format(sqliteTimeLayout)
	}
	return t
}

// tsOrNil is ts for nullable columns.
func (s *Store) tsOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.ts(*t)
}

// fromDB normalises a scanned timestamp: pgx returns local time, and callers
// compare with values that went through normTime.
func fromDB(t time.Time) time.Time { return t.UTC() }

// anyTime scans a timestamp that SQLite may hand back as text: the result
// of an expression (a subquery, MIN, CASE) has no declared column type, so
// the driver cannot tell it is a time. Valid is false for NULL.
type anyTime struct {
	Time  time.Time
	Valid bool
}

// Scan implements sql.Scanner.
func (a *anyTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		a.Time, a.Valid = time.Time{}, false
		return nil
	case time.Time:
		a.Time, a.Valid = fromDB(x), true
		return nil
	case []byte:
		return a.Scan(string(x))
	case string:
		for _, layout := range []string{sqliteTimeLayout, time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05"} {
			if t, err := time.Parse(layout, x); err == nil {
				a.Time, a.Valid = t.UTC(), true
				return nil
			}
		}
		return fmt.Errorf("store: %q is not a timestamp", x)
	}
	return fmt.Errorf("store: cannot read %T as a timestamp", v)
}
