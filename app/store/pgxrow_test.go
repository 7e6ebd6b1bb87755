package store

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

func TestAppendParamMatchesPgx(t *testing.T) {
	at := time.Date(2026, 11, 25, 15, 4, 5, 123456789, time.FixedZone("", -7*3600))
	old := time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC)
	for _, tt := range []struct {
		oid uint32
		arg any
		ok  bool // appendParam encodes it itself
	}{
		{oidText, "", true}, {oidText, "push", true}, {oidText, "café ☕ \x01", true}, {oidVarchar, "v", true},
		{oidText, nil, true}, {oidText, 7, false}, {oidText, []byte("x"), false},
		{oidInt8, int64(0), true}, {oidInt8, int64(-1), true}, {oidInt8, int64(math.MaxInt64), true},
		{oidInt8, int64(math.MinInt64), true}, {oidInt8, 42, true}, {oidInt8, int32(4), false}, {oidInt8, "1", false},
		{oidInt8, nil, true},
		{oidInt4, 200, true}, {oidInt4, -5, true}, {oidInt4, math.MaxInt32, true}, {oidInt4, math.MinInt32, true},
		{oidInt4, math.MaxInt32 + 1, false}, {oidInt4, int64(10), true}, {oidInt4, int64(math.MinInt32 - 1), false},
		{oidBool, true, true}, {oidBool, false, true}, {oidBool, 1, false},
		{oidTimestamptz, at, true}, {oidTimestamptz, at.UTC().Truncate(time.Microsecond), true}, {oidTimestamptz, old, true},
		{oidTimestamptz, time.Date(1901, 2, 3, 4, 5, 6, 7000, time.UTC), true}, {oidTimestamptz, time.Time{}, true},
		{oidTimestamptz, nil, true}, {oidTimestamptz, "2026-01-01", false},
		{oidTextArray, []string(nil), true}, {oidTextArray, []string{}, true}, {oidTextArray, []string{"", "a", "ünï"}, true},
		{oidTextArray, []any{"a"}, false}, {oidTextArray, nil, true},
		{oidBoolArray, []bool(nil), true}, {oidBoolArray, []bool{}, true}, {oidBoolArray, []bool{true, false, true}, true},
		{oidTimestamptzArr, []*time.Time(nil), true}, {oidTimestamptzArr, []*time.Time{}, true},
		{oidTimestamptzArr, []*time.Time{&at, nil, &old}, true}, {oidTimestamptzArr, []*time.Time{&at, &old}, true},
		{oidTimestamptzArr, []time.Time{at}, false},
		{oidText + 1000, "unknown type", false},
	} {
		buf, format, null, ok := appendParam([]byte{}, tt.oid, tt.arg)
		if ok != tt.ok {
			t.Errorf("appendParam(%d, %#v): ok = %v, want %v", tt.oid, tt.arg, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		var eqb pgx.ExtendedQueryBuilder
		if err := eqb.Build(pgtype.NewMap(), &pgconn.StatementDescription{ParamOIDs: []uint32{tt.oid}}, []any{tt.arg}); err != nil {
			t.Errorf("pgx: %d, %#v: %v", tt.oid, tt.arg, err)
			continue
		}
		want := eqb.ParamValues[0]
		if null != (want == nil) || !null && (!bytes.Equal(buf, want) || format != eqb.ParamFormats[0]) {
			t.Errorf("appendParam(%d, %#v) = %x (format %d, null %v), pgx %x (format %d)",
				tt.oid, tt.arg, buf, format, null, want, eqb.ParamFormats[0])
		}
	}
}

// TestParamEncoderKeepsEmptyValues: an empty string is a value, and only
// nil is NULL, even when it comes first.
func TestParamEncoderKeepsEmptyValues(t *testing.T) {
	enc := encoders.New().(*paramEncoder)
	if !enc.encode([]uint32{oidText, oidText, oidInt8, oidText}, []any{"", nil, int64(1), ""}) {
		t.Fatal("encode refused")
	}
	if enc.values[0] == nil || len(enc.values[0]) != 0 || enc.values[1] != nil || len(enc.values[2]) != 8 ||
		enc.values[3] == nil || len(enc.values[3]) != 0 {
		t.Errorf("values = %#v", enc.values)
	}
}
