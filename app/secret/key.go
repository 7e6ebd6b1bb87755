package secret

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFileName is the name of the generated key file inside the data directory.
const KeyFileName = "secret.key"

// ParseKey decodes the KEYLINE_SECRET_KEY form of a sealing key: 32 bytes as
// hex (64 digits) or base64 (standard or URL alphabet, padded or not).
// Surrounding white space is ignored because keys often come from files or
// env files with a trailing newline. The error never echoes the input.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("secret: empty key")
	}
	// Hex first: 64 hex digits are also valid base64, but decode to 48 bytes.
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("secret: key must be %d bytes encoded as base64 or hex", KeySize)
}

// LoadOrCreateKeyFile returns the key stored base64-encoded in dir/secret.key,
// creating the directory and the file (32 random bytes, mode 0600) if there
// is none yet. Creation is atomic and never replaces an existing file: when
// two processes start at once, both end up with the key that won.
func LoadOrCreateKeyFile(dir string) ([]byte, error) {
	path := filepath.Join(dir, KeyFileName)
	key, err := readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("secret: create key dir: %w", err)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("secret: generate key: %w", err)
	}
	if err := createExclusive(dir, path, []byte(base64.StdEncoding.EncodeToString(key)+"\n")); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Lost the race to another process: use its key, not ours.
			return readKeyFile(path)
		}
		return nil, err
	}
	return key, nil
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret: read key file: %w", err)
	}
	key, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("secret: key file %s: %w", path, err)
	}
	return key, nil
}

// createExclusive writes data to a temporary file, syncs it, then hard-links
// it to path. A link fails if path exists, so unlike rename it cannot
// overwrite a key that another process just created, and readers never see
// a half-written file.
func createExclusive(dir, path string, data []byte) error {
	tmp, err := os.CreateTemp(dir, ".secret.key-*")
	if err != nil {
		return fmt.Errorf("secret: create temp key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("secret: chmod temp key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("secret: write temp key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("secret: sync temp key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("secret: close temp key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("secret: install key file: %w", err)
	}
	// Make the new directory entry durable; losing the key after a crash
	// would make every stored secret unreadable.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
