package store

import (
	"hash/fnv"
	"testing"
)

func TestKeyStripeIsFNV1a(t *testing.T) {
	for _, k := range []string{"", "KL-1", "KL-2", "PAY-12345", "ÄÖ-1"} {
		h := fnv.New32a()
		h.Write([]byte(k))
		if got, want := keyStripe(k), int(h.Sum32()%keyStripes); got != want {
			t.Errorf("keyStripe(%q) = %d, want %d", k, got, want)
		}
	}
}
