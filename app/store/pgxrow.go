package store

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// maxBadConnTries is how often queryRowPgx tries a statement that failed
// before any of it reached the server: database/sql's own count (two
// pooled connections, then a new one).
const maxBadConnTries = 3

// queryRowPgx runs q (PostgreSQL only, written with $n placeholders) on one
// of the pool's connections through pgx directly and scans its one row
// into dest. It is for the statement every push runs (writeCodeAtOnce):
// database/sql converts each of its ~80 arguments into a driver value and
// back, and reads the row through its own buffers, which was a few percent
// of Keyline's CPU per push. Like database/sql, it tries again on another
// connection when the statement failed without reaching the server, and
// drops the connection it failed on.
func (s *Store) queryRowPgx(ctx context.Context, q string, args []any, dest ...any) error {
	var err error
	for range maxBadConnTries {
		if err = s.queryRowPgxOnce(ctx, q, args, dest); !errors.Is(err, driver.ErrBadConn) {
			return err
		}
	}
	return err
}

func (s *Store) queryRowPgxOnce(ctx context.Context, q string, args []any, dest []any) error {
	return s.withPgx(ctx, func(pc *pgx.Conn) error {
		if pc.IsClosed() {
			return driver.ErrBadConn
		}
		err := queryRowEncoded(ctx, pc, q, args, dest)
		if err != nil && pgconn.SafeToRetry(err) {
			// Returned from Raw, ErrBadConn also closes the connection.
			return driver.ErrBadConn
		}
		return err
	})
}

// queryRowEncoded runs q as pgx's QueryRow does, with the statement
// prepared once on the connection, except that it encodes the arguments
// itself when it can (see appendParam): pgx looks up an encoding plan for
// each argument and boxes each element of an array, which for a push's
// ~80 arguments and 15 arrays was about a tenth of Keyline's CPU. Any
// argument appendParam does not know sends the whole statement through
// pgx as usual. TestAppendParamMatchesPgx holds the encoding to pgx's.
func queryRowEncoded(ctx context.Context, pc *pgx.Conn, q string, args []any, dest []any) error {
	sd, err := pc.Prepare(ctx, q, q)
	if err != nil {
		return err
	}
	if len(sd.ParamOIDs) != len(args) {
		return fmt.Errorf("store: statement takes %d arguments, got %d", len(sd.ParamOIDs), len(args))
	}
	enc := encoders.Get().(*paramEncoder)
	defer func() {
		if cap(enc.buf) <= maxPooledParams {
			encoders.Put(enc)
		}
	}()
	if len(sd.Fields) != len(dest) || !enc.encode(sd.ParamOIDs, args) {
		return pc.QueryRow(ctx, q, args...).Scan(dest...)
	}
	m := pc.TypeMap()
	enc.results = enc.results[:0]
	for _, f := range sd.Fields {
		enc.results = append(enc.results, m.FormatCodeForOID(f.DataTypeOID))
	}
	res := pc.PgConn().ExecStatement(ctx, sd, enc.values, enc.formats, enc.results).Read()
	if res.Err != nil {
		return res.Err
	}
	if len(res.Rows) == 0 {
		return pgx.ErrNoRows
	}
	row := res.Rows[0]
	if len(row) != len(dest) {
		return fmt.Errorf("store: statement returned %d columns, scanning %d", len(row), len(dest))
	}
	for i, d := range dest {
		if err := m.Scan(sd.Fields[i].DataTypeOID, enc.results[i], row[i], d); err != nil {
			return fmt.Errorf("store: scan column %d: %w", i, err)
		}
	}
	return nil
}

// paramEncoder holds one statement's encoded arguments; pooled, so that
// its buffers, grown to a push's size, are reused.
type paramEncoder struct {
	buf     []byte // never nil: an empty value must not read as NULL
	ends    []int
	values  [][]byte
	formats []int16
	results []int16
}

// maxPooledParams bounds the encoders kept for reuse: a push of a thousand
// commits need not keep its megabyte.
const maxPooledParams = 256 << 10

var encoders = sync.Pool{New: func() any { return &paramEncoder{buf: make([]byte, 0, 16<<10)} }}

// encode encodes args for parameters of types oids into enc.values and
// enc.formats, or reports false when it does not know one of them.
func (enc *paramEncoder) encode(oids []uint32, args []any) bool {
	enc.buf, enc.ends, enc.values, enc.formats = enc.buf[:0], enc.ends[:0], enc.values[:0], enc.formats[:0]
	for i, a := range args {
		var format int16
		var null, ok bool
		enc.buf, format, null, ok = appendParam(enc.buf, oids[i], a)
		if !ok {
			return false
		}
		end := len(enc.buf)
		if null {
			end = -1
		}
		enc.ends = append(enc.ends, end)
		enc.formats = append(enc.formats, format)
	}
	start := 0
	for _, end := range enc.ends {
		if end < 0 {
			enc.values = append(enc.values, nil)
			continue
		}
		enc.values = append(enc.values, enc.buf[start:end:end])
		start = end
	}
	return true
}

// PostgreSQL's type OIDs appendParam encodes.
const (
	oidBool           = 16
	oidInt8           = 20
	oidInt4           = 23
	oidText           = 25
	oidVarchar        = 1043
	oidTimestamptz    = 1184
	oidBoolArray      = 1000
	oidTextArray      = 1009
	oidTimestamptzArr = 1185
)

// appendParam appends arg encoded as pgx encodes it for a parameter of
// type oid, with the format pgx chooses for it: text in text format (the
// bytes as they are), everything else in binary. null says the parameter
// is NULL (pgx sends nil and nil slices so). ok is false for a type and
// value pgx would encode some other way, or refuse.
func appendParam(buf []byte, oid uint32, arg any) (out []byte, format int16, null, ok bool) {
	if arg == nil {
		return buf, pgtype.TextFormatCode, true, true
	}
	switch oid {
	case oidText, oidVarchar:
		if v, isString := arg.(string); isString {
			return append(buf, v...), pgtype.TextFormatCode, false, true
		}
	case oidInt8:
		switch v := arg.(type) {
		case int64:
			return binary.BigEndian.AppendUint64(buf, uint64(v)), pgtype.BinaryFormatCode, false, true
		case int:
			return binary.BigEndian.AppendUint64(buf, uint64(v)), pgtype.BinaryFormatCode, false, true
		}
	case oidInt4:
		var n int64
		switch v := arg.(type) {
		case int:
			n = int64(v)
		case int64:
			n = v
		default:
			return buf, 0, false, false
		}
		if n < math.MinInt32 || n > math.MaxInt32 {
			return buf, 0, false, false
		}
		return binary.BigEndian.AppendUint32(buf, uint32(int32(n))), pgtype.BinaryFormatCode, false, true
	case oidBool:
		if v, isBool := arg.(bool); isBool {
			return appendBool(buf, v), pgtype.BinaryFormatCode, false, true
		}
	case oidTimestamptz:
		if v, isTime := arg.(time.Time); isTime {
			return appendTimestamptz(buf, v), pgtype.BinaryFormatCode, false, true
		}
	case oidTextArray:
		if v, isStrings := arg.([]string); isStrings {
			if v == nil {
				return buf, pgtype.BinaryFormatCode, true, true
			}
			buf = appendArrayHeader(buf, oidText, len(v), false)
			for _, s := range v {
				buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
				buf = append(buf, s...)
			}
			return buf, pgtype.BinaryFormatCode, false, true
		}
	case oidBoolArray:
		if v, isBools := arg.([]bool); isBools {
			if v == nil {
				return buf, pgtype.BinaryFormatCode, true, true
			}
			buf = appendArrayHeader(buf, oidBool, len(v), false)
			for _, b := range v {
				buf = appendBool(binary.BigEndian.AppendUint32(buf, 1), b)
			}
			return buf, pgtype.BinaryFormatCode, false, true
		}
	case oidTimestamptzArr:
		if v, isTimes := arg.([]*time.Time); isTimes {
			if v == nil {
				return buf, pgtype.BinaryFormatCode, true, true
			}
			hasNull := false
			for _, t := range v {
				hasNull = hasNull || t == nil
			}
			buf = appendArrayHeader(buf, oidTimestamptz, len(v), hasNull)
			for _, t := range v {
				if t == nil {
					buf = binary.BigEndian.AppendUint32(buf, math.MaxUint32) // -1: NULL
					continue
				}
				buf = appendTimestamptz(binary.BigEndian.AppendUint32(buf, 8), *t)
			}
			return buf, pgtype.BinaryFormatCode, false, true
		}
	}
	return buf, 0, false, false
}

func appendBool(buf []byte, v bool) []byte {
	if v {
		return append(buf, 1)
	}
	return append(buf, 0)
}

// microsecFromUnixEpochToY2K is where PostgreSQL's timestamps count from.
const microsecFromUnixEpochToY2K = 946684800 * 1000000

func appendTimestamptz(buf []byte, t time.Time) []byte {
	us := t.Unix()*1000000 + int64(t.Nanosecond())/1000 - microsecFromUnixEpochToY2K
	return binary.BigEndian.AppendUint64(buf, uint64(us))
}

// appendArrayHeader appends the binary header of a one-dimensional array
// of n elements of type elem, counted from 1.
func appendArrayHeader(buf []byte, elem uint32, n int, hasNull bool) []byte {
	buf = binary.BigEndian.AppendUint32(buf, 1)
	if hasNull {
		buf = binary.BigEndian.AppendUint32(buf, 1)
	} else {
		buf = binary.BigEndian.AppendUint32(buf, 0)
	}
	buf = binary.BigEndian.AppendUint32(buf, elem)
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	return binary.BigEndian.AppendUint32(buf, 1)
}
