package store

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// eachRow runs q (written with "?" placeholders) and calls fn for every row.
// It is for the reads that return tens of thousands of rows, such as the
// release reports'. On PostgreSQL it runs the query on the pool's pgx
// connection directly: database/sql boxes every value into a driver.Value
// and converts it again on Scan, which cost more than the query itself for
// a busy quarter's rows, and in a transaction of its own, without parallel
// workers (see below). r is then a pgx.Rows, whose raw values a read may
// decode itself (rawRows). SQLite goes through database/sql as usual. fn
// must not keep r, or the values it gave, beyond the call.
func (s *Store) eachRow(ctx context.Context, q string, args []any, fn func(r rowScanner) error) error {
	if s.dialect != DialectPostgres {
		rows, err := s.sqlDB.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		return scanAll(rows, fn)
	}
	return s.withPgx(ctx, func(pc *pgx.Conn) error {
		// Without parallel workers: a release report runs its reads at
		// the same time, so they already keep the cores busy, and a
		// project's filters made PostgreSQL expect a few hundred rows
		// where there are tens of thousands and plan a parallel scan that
		// cost more than it saved (2 cores, 1,000,000 deployments: a
		// project's year from 289 to 208 ms at p50). SET LOCAL ends with
		// the transaction.
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		if err := readEach(ctx, tx, q, args, fn); err != nil {
			// A connection left inside the transaction must not go back
			// to the pool: when the rollback fails, database/sql is told
			// to drop it.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			if rerr := tx.Rollback(rctx); rerr != nil && !pc.IsClosed() {
				return errors.Join(err, driver.ErrBadConn)
			}
			return err
		}
		return tx.Commit(ctx)
	})
}

// readEach runs q in tx without parallel workers, as eachRow describes.
func readEach(ctx context.Context, tx pgx.Tx, q string, args []any, fn func(r rowScanner) error) error {
	if _, err := tx.Exec(ctx, `SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
		return err
	}
	// An unnamed statement, described and then run: PostgreSQL plans it
	// for these arguments. A cached prepared statement would move to a
	// generic plan after five runs, the same for a week and for a year,
	// and the release reads' best plans differ between the two.
	rows, err := tx.Query(ctx, dollarPlaceholders(q), append([]any{pgx.QueryExecModeDescribeExec}, args...)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var r rowScanner = rows
	if ctx.Value(scanOnlyKey{}) != nil {
		r = scanOnlyRow{rows}
	}
	for rows.Next() {
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// scanOnlyKey marks a context whose reads scan every row through pgx and
// never decode raw values (see rawRows): the store's tests read both ways
// and compare.
type scanOnlyKey struct{}

// scanOnlyRow hides all of a pgx row but Scan.
type scanOnlyRow struct{ r pgx.Rows }

func (s scanOnlyRow) Scan(dest ...any) error { return s.r.Scan(dest...) }

// withPgx runs fn on one of the pool's PostgreSQL connections as pgx sees
// it, for the few paths where database/sql's conversions cost more than
// the query. An error fn returns is returned as it is; driver.ErrBadConn
// also makes database/sql drop the connection.
func (s *Store) withPgx(ctx context.Context, fn func(pc *pgx.Conn) error) error {
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		sc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: unexpected PostgreSQL driver connection %T", driverConn)
		}
		return fn(sc.Conn())
	})
}

// appendRow appends v to rows, doubling the capacity when it runs out.
// append grows a large slice by about a quarter at a time, so a read of a
// hundred thousand rows would copy them several times over.
func appendRow[T any](rows []T, v T) []T {
	if len(rows) == cap(rows) {
		rows = slices.Grow(rows, max(256, len(rows)))
	}
	return append(rows, v)
}

// rowChunks collects a large read's rows in fixed-size chunks, so that
// they are copied once, into a slice of the right size, instead of again
// at every doubling of a growing slice (and its new half cleared each
// time): a year's deployment rows are about 20 MB.
type rowChunks[T any] struct {
	full [][]T
	cur  []T
	n    int
}

// rowChunkLen is the rows per chunk.
const rowChunkLen = 4096

func (c *rowChunks[T]) add(v T) {
	if len(c.cur) == cap(c.cur) {
		if c.cur != nil {
			c.full = append(c.full, c.cur)
		}
		c.cur = make([]T, 0, rowChunkLen)
	}
	c.cur = append(c.cur, v)
	c.n++
}

// appendTo appends the rows collected, in order, to out.
func (c *rowChunks[T]) appendTo(out []T) []T {
	for _, ch := range c.full {
		out = append(out, ch...)
	}
	return append(out, c.cur...)
}

// joinChunks returns the rows of cs in order in one slice, nil when there
// are none.
func joinChunks[T any](cs ...*rowChunks[T]) []T {
	n := 0
	for _, c := range cs {
		n += c.n
	}
	if n == 0 {
		return nil
	}
	out := make([]T, 0, n)
	for _, c := range cs {
		out = c.appendTo(out)
	}
	return out
}

// rawRows lets a large read decode PostgreSQL's values itself instead of
// through pgx's scan plans, which for a year of release rows (hundreds of
// thousands) cost more Go time than anything else the report did: a plan
// lookup and an interface call per value, and a new string for every text
// value. It is used only when the columns come in the formats it reads
// (see rawColumnsOK); otherwise, and on SQLite, the read scans as usual.
type rawRows struct {
	checked, ok bool
}

// values returns the row's raw column values when r is a PostgreSQL row
// whose columns have types oids in the formats the raw decoders read, and
// nil otherwise. The layout is checked on the first row only: every row of
// a result has the same.
func (rr *rawRows) values(r rowScanner, oids ...uint32) [][]byte {
	pr, isPgx := r.(pgx.Rows)
	if !rr.checked {
		rr.checked = true
		rr.ok = isPgx && rawColumnsOK(pr.FieldDescriptions(), oids)
	}
	if !rr.ok {
		return nil
	}
	return pr.RawValues()
}

// rawColumnsOK reports whether fields are of types oids, with the fixed
// width types (integers, timestamptz) in binary, as the raw decoders read
// them. Text reads the same in either format.
func rawColumnsOK(fields []pgconn.FieldDescription, oids []uint32) bool {
	if len(fields) != len(oids) {
		return false
	}
	for i, f := range fields {
		if f.DataTypeOID != oids[i] {
			return false
		}
		if oids[i] != oidText && f.Format != pgtype.BinaryFormatCode {
			return false
		}
	}
	return true
}

// errRawNull is what a raw decoder returns for NULL where the column may
// not hold one, as Scan would fail.
var errRawNull = errors.New("store: unexpected NULL")

// rawTime decodes a binary timestamptz, in UTC as fromDB returns times;
// valid is false for NULL. Infinite timestamps, which no column the
// release reads holds, are an error, as they are for Scan into a time.
func rawTime(b []byte) (t time.Time, valid bool, err error) {
	if b == nil {
		return time.Time{}, false, nil
	}
	if len(b) != 8 {
		return time.Time{}, false, fmt.Errorf("store: timestamptz of %d bytes", len(b))
	}
	us := int64(binary.BigEndian.Uint64(b))
	if us == math.MaxInt64 || us == math.MinInt64 {
		return time.Time{}, false, errors.New("store: infinite timestamp")
	}
	us += microsecFromUnixEpochToY2K
	return time.Unix(us/1_000_000, (us%1_000_000)*1000).UTC(), true, nil
}

// rawInt decodes a binary int8 or int4; valid is false for NULL.
func rawInt(b []byte) (n int64, valid bool, err error) {
	switch len(b) {
	case 8:
		return int64(binary.BigEndian.Uint64(b)), true, nil
	case 4:
		return int64(int32(binary.BigEndian.Uint32(b))), true, nil
	}
	if b == nil {
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("store: integer of %d bytes", len(b))
}

// interner returns one string for every equal run of bytes, so that the
// values a large read repeats on every row (a service, an environment, a
// state) are allocated once per read rather than once per row.
type interner map[string]string

// maxInterned bounds an interner: a column with more distinct values than
// this is not one that repeats, and its strings are allocated as usual.
const maxInterned = 4096

func (in interner) string(b []byte) string {
	if s, ok := in[string(b)]; ok { // no allocation: the compiler looks up the bytes
		return s
	}
	s := string(b)
	if len(in) < maxInterned {
		in[s] = s
	}
	return s
}

// again is string for a column whose previous value was prev: prev itself
// when the bytes are the same.
func (in interner) again(prev string, b []byte) string {
	if string(b) == prev { // compared without allocating
		return prev
	}
	return in.string(b)
}
