package connect

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/tenant"
)

// errNotInstalled is what the fake lookup answers for unknown or
// uninstalled tenants, wrapped as the real cache may wrap it.
var errNotInstalled = fmt.Errorf("test lookup: %w", tenant.ErrNotFound)

// fixedClock is the "now" of every time-sensitive test.
func fixedClock() time.Time { return time.Unix(1_700_000_000, 0) }

// fakeLookup is an in-memory TenantLookup. cached answers fresh=false,
// current answers fresh=true (and fresh=false when cached has no entry),
// which lets a test model a stale cache after a reinstall elsewhere.
type fakeLookup struct {
	mu         sync.Mutex
	cached     map[string]*tenant.Tenant
	current    map[string]*tenant.Tenant
	freshCalls int
}

func newFakeLookup() *fakeLookup {
	return &fakeLookup{cached: map[string]*tenant.Tenant{}, current: map[string]*tenant.Tenant{}}
}

func lookupKey(appKey, clientKey string) string { return appKey + "\x00" + clientKey }

func (f *fakeLookup) put(t *tenant.Tenant) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.current[lookupKey(t.AppKey, t.ClientKey)] = t
}

func (f *fakeLookup) putStale(t *tenant.Tenant) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cached[lookupKey(t.AppKey, t.ClientKey)] = t
}

func (f *fakeLookup) Tenant(_ context.Context, appKey, clientKey string, fresh bool) (*tenant.Tenant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := lookupKey(appKey, clientKey)
	if fresh {
		f.freshCalls++
	} else if t, ok := f.cached[k]; ok {
		return t, nil
	}
	if t, ok := f.current[k]; ok && t.Installed {
		return t, nil
	}
	return nil, errNotInstalled
}

func (f *fakeLookup) fresh() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.freshCalls
}

// signHS256 mints a token with golang-jwt, so tests exercise the real format.
func signHS256(t testing.TB, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// signRaw builds a token with an arbitrary header and an HMAC-SHA256
// signature, for algorithm-confusion cases the library refuses to produce.
func signRaw(t testing.TB, header map[string]any, claims jwt.MapClaims, hmacKey []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	mac := hmac.New(sha256.New, hmacKey)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func signRS256(t testing.TB, key *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign RS256: %v", err)
	}
	return s
}

func signNone(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatalf("sign none: %v", err)
	}
	return s
}

func loadPrivateKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read key: %v", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return k.(*rsa.PrivateKey)
}

func publicPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func mustQSH(t testing.TB, method, path, rawQuery, basePath string) string {
	t.Helper()
	q, err := QSH(method, path, rawQuery, basePath)
	if err != nil {
		t.Fatalf("QSH: %v", err)
	}
	return q
}

// wantAuthError fails unless err is an *AuthError whose Reason contains want.
func wantAuthError(t *testing.T, err error, want string) {
	t.Helper()
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v, want *AuthError", err)
	}
	if !strings.Contains(ae.Reason, want) {
		t.Fatalf("reason = %q (%v), want it to contain %q", ae.Reason, err, want)
	}
}
