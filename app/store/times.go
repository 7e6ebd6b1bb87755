package store

import "time"

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
