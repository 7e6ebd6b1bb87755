// Package secret keeps tenant shared secrets encrypted at rest: a Sealer
// encrypts them with AES-256-GCM before they reach the database, and the key
// comes from the environment or from a file generated on first start.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeySize is the length of a sealing key: AES-256.
const KeySize = 32

// version1 tags output of AES-256-GCM with a random 96-bit nonce. The tag lets
// a later format (another cipher, a key id for rotation) coexist with rows
// already written.
const version1 byte = 1

// ErrOpen is returned when sealed data cannot be decrypted: it was altered,
// truncated, or sealed with another key. It deliberately does not say which.
var ErrOpen = errors.New("secret: cannot open sealed data")

// Sealer encrypts small secrets with AES-256-GCM. Output is
// version byte || 12-byte nonce || ciphertext+tag; Open rejects any tampering.
// A Sealer is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: new gcm: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain. Every call uses a fresh random nonce, so sealing the
// same secret twice gives different output.
func (s *Sealer) Seal(plain []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+s.aead.Overhead())
	out[0] = version1
	if _, err := rand.Read(out[1 : 1+ns]); err != nil {
		return nil, fmt.Errorf("secret: read nonce: %w", err)
	}
	// The version byte is authenticated as additional data so that it cannot
	// be flipped to make a future decoder misread the rest.
	return s.aead.Seal(out, out[1:1+ns], plain, out[:1]), nil
}

// Open decrypts the output of Seal. Any modification, truncation or a
// different key yields ErrOpen.
func (s *Sealer) Open(sealed []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("%w: unknown version %d", ErrOpen, sealed[0])
	}
	plain, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], sealed[:1])
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
