package secret_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/keyline/keyline/app/secret"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, secret.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newSealer(t *testing.T) *secret.Sealer {
	t.Helper()
	s, err := secret.NewSealer(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewSealerKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := secret.NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer(%d-byte key) = nil error, want error", n)
		}
	}
	if _, err := secret.NewSealer(make([]byte, 32)); err != nil {
		t.Errorf("NewSealer(32-byte key) = %v", err)
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := newSealer(t)
	for _, plain := range [][]byte{
		{},
		[]byte("x"),
		[]byte("a shared secret from Atlassian, usually 40-ish characters long"),
		bytes.Repeat([]byte{0, 0xff}, 1000),
	} {
		sealed, err := s.Seal(plain)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if len(plain) > 4 && bytes.Contains(sealed, plain) {
			t.Errorf("sealed output contains the plaintext")
		}
		got, err := s.Open(sealed)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, plain) {
			t.Errorf("Open(Seal(%q)) = %q", plain, got)
		}
	}
}

func TestSealIsRandomised(t *testing.T) {
	s := newSealer(t)
	a, _ := s.Seal([]byte("same"))
	b, _ := s.Seal([]byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical; nonce reused")
	}
}

func TestOpenRejects(t *testing.T) {
	s := newSealer(t)
	other := newSealer(t)
	sealed, err := s.Seal([]byte("top secret"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name   string
		sealer *secret.Sealer
		in     []byte
	}{
		{"wrong key", other, sealed},
		{"version flipped", s, flip(0)},
		{"nonce flipped", s, flip(1)},
		{"ciphertext flipped", s, flip(14)},
		{"tag flipped", s, flip(len(sealed) - 1)},
		{"truncated", s, sealed[:len(sealed)-1]},
		{"header only", s, sealed[:13]},
		{"empty", s, nil},
		{"appended byte", s, append(bytes.Clone(sealed), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.sealer.Open(tt.in)
			if !errors.Is(err, secret.ErrOpen) {
				t.Fatalf("Open = %q, %v; want ErrOpen", got, err)
			}
		})
	}
}
