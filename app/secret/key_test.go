package secret_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyline/keyline/app/secret"
)

func TestParseKey(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0xf0 + i) // high bytes make std and URL base64 differ
	}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"hex lower", hex.EncodeToString(key), true},
		{"hex upper", strings.ToUpper(hex.EncodeToString(key)), true},
		{"base64 std", base64.StdEncoding.EncodeToString(key), true},
		{"base64 raw std", base64.RawStdEncoding.EncodeToString(key), true},
		{"base64 url", base64.URLEncoding.EncodeToString(key), true},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(key), true},
		{"trailing newline", base64.StdEncoding.EncodeToString(key) + "\n", true},
		{"surrounding spaces", "  " + hex.EncodeToString(key) + " ", true},
		{"empty", "", false},
		{"blank", "   \n", false},
		{"hex too short", hex.EncodeToString(key[:31]), false},
		{"hex too long", hex.EncodeToString(append(key, 0)), false},
		{"hex bad digit", "zz" + hex.EncodeToString(key)[2:], false},
		{"base64 16 bytes", base64.StdEncoding.EncodeToString(key[:16]), false},
		{"base64 33 bytes", base64.StdEncoding.EncodeToString(append(key, 1)), false},
		{"not encoded", "correct horse battery staple!!", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := secret.ParseKey(tt.in)
			if !tt.ok {
				if err == nil {
					t.Fatalf("ParseKey(%q) = %x, want error", tt.in, got)
				}
				if len(tt.in) > 8 && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
					t.Errorf("error echoes the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey(%q): %v", tt.in, err)
			}
			if !bytes.Equal(got, key) {
				t.Fatalf("ParseKey(%q) = %x, want %x", tt.in, got, key)
			}
		})
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := secret.LoadOrCreateKeyFile(dir)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if len(k1) != secret.KeySize {
		t.Fatalf("key length %d", len(k1))
	}
	fi, err := os.Stat(filepath.Join(dir, secret.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %v, want 0600", perm)
	}
	k2, err := secret.LoadOrCreateKeyFile(dir)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("second call returned a different key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only the key file", len(entries))
	}
}

func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 16
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = secret.LoadOrCreateKeyFile(dir) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("call %d got a different key: concurrent creation is not atomic", i)
		}
	}
}

func TestLoadOrCreateKeyFileRejectsBadFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, secret.KeyFileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := secret.LoadOrCreateKeyFile(dir); err == nil {
		t.Fatal("corrupt key file accepted; it must never be silently replaced")
	}
}
