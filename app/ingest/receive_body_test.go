package ingest

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadBody(t *testing.T) {
	for _, tt := range []struct {
		name   string
		size   int
		length int64
		want   int
	}{
		{"empty, unknown length", 0, -1, 0},
		{"empty, declared", 0, 0, 0},
		{"as declared", 7000, 7000, 7000},
		{"longer than declared", 7000, 100, 7000},
		{"shorter than declared", 100, 7000, 100},
		{"unknown length", 7000, -1, 7000},
		{"largest", MaxBodyBytes, MaxBodyBytes, MaxBodyBytes},
		{"too large, declared", MaxBodyBytes + 10, MaxBodyBytes + 10, MaxBodyBytes + 1},
		{"too large, declared small", MaxBodyBytes + 10, 10, MaxBodyBytes + 1},
		{"too large, unknown length", MaxBodyBytes + 10, -1, MaxBodyBytes + 1},
	} {
		body := strings.Repeat("x", tt.size)
		// One byte per read: the body arrives in pieces.
		got, err := readBody(iotest.OneByteReader(strings.NewReader(body)), tt.length)
		if err != nil || len(got) != tt.want || !bytes.Equal(got, []byte(body[:tt.want])) {
			t.Errorf("%s: read %d bytes, err %v; want %d", tt.name, len(got), err, tt.want)
		}
	}
	if _, err := readBody(iotest.ErrReader(iotest.ErrTimeout), 100); err == nil {
		t.Error("a failed read gave no error")
	}
}
