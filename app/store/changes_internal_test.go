package store

import (
	"encoding/binary"
	"hash/fnv"
	"testing"
)

func TestKeyStripeIsFNV1a(t *testing.T) {
	for _, id := range []int64{1, 42, 1 << 40} {
		for _, k := range []string{"", "KL-1", "KL-2", "PAY-12345", "ÄÖ-1"} {
			h := fnv.New32a()
			h.Write(binary.LittleEndian.AppendUint64(nil, uint64(id)))
			h.Write([]byte(k))
			if got, want := keyStripe(id, k), int(h.Sum32()%keyStripes); got != want {
				t.Errorf("keyStripe(%d, %q) = %d, want %d", id, k, got, want)
			}
		}
	}
}
