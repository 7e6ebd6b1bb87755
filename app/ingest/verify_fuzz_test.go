package ingest_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyline/keyline/app/ingest"
)

// credentialHeaders are the headers each kind reads credentials from.
var credentialHeaders = map[string][]string{
	ingest.KindGitHub:    {ingest.HeaderGitHubSignature},
	ingest.KindBitbucket: {ingest.HeaderBitbucketSignature},
	ingest.KindGitLab:    {ingest.HeaderGitLabToken},
	ingest.KindPagerDuty: {ingest.HeaderPagerDutySignature},
	ingest.KindOpsgenie:  {ingest.HeaderKeylineToken},
	ingest.KindGeneric:   {ingest.HeaderAuthorization, ingest.HeaderKeylineSignature},
}

// FuzzVerifySignature puts an arbitrary value in every credential header of
// a kind and checks that VerifySignature never panics, answers only its
// documented errors, accepts only when the value really holds the credential
// for (body, secret), and always accepts the provider's correct signature.
func FuzzVerifySignature(f *testing.F) {
	kinds := ingest.Kinds()
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		kind := filepath.Base(filepath.Dir(file))
		k := uint8(slices.Index(kinds, kind))
		good := sign(kind, body, secret)
		for _, name := range credentialHeaders[kind] {
			f.Add(k, good.Get(name), body, secret)
		}
		f.Add(k, "", body, secret)
	}
	f.Add(uint8(0), "sha256="+strings.Repeat("0", 64), []byte("{}"), []byte(nil))
	f.Add(uint8(3), "v1=,v1=zz,,v1="+strings.Repeat("A", 64), []byte{}, []byte("k"))
	f.Add(uint8(5), "Bearer ", []byte("x"), []byte{})

	f.Fuzz(func(t *testing.T, k uint8, value string, body, key []byte) {
		kind := kinds[int(k)%len(kinds)]
		h := http.Header{}
		for _, name := range credentialHeaders[kind] {
			h.Set(name, value)
		}
		err := ingest.VerifySignature(kind, h, body, [][]byte{key})
		switch {
		case err == nil:
			if len(key) == 0 {
				t.Fatalf("%s: accepted %q with an empty secret", kind, value)
			}
			if !holdsCredential(kind, value, body, key) {
				t.Fatalf("%s: accepted %q, which is not the credential for this body and secret", kind, value)
			}
		case errors.Is(err, ingest.ErrMissingSignature), errors.Is(err, ingest.ErrBadSignature):
		default:
			t.Fatalf("%s: unexpected error %v", kind, err)
		}
		if len(key) > 0 {
			if err := ingest.VerifySignature(kind, sign(kind, body, key), body, [][]byte{key}); err != nil {
				t.Fatalf("%s: correct signature refused: %v", kind, err)
			}
		}
	})
}

// holdsCredential is an independent, deliberately naive statement of what
// an accepted header value must contain.
func holdsCredential(kind, value string, body, key []byte) bool {
	lower := strings.ToLower(value)
	mac := hmacHex(key, body)
	switch kind {
	case ingest.KindGitHub, ingest.KindBitbucket:
		return strings.TrimSpace(lower) == "sha256="+mac
	case ingest.KindPagerDuty:
		return strings.Contains(lower, "v1="+mac)
	case ingest.KindGitLab, ingest.KindOpsgenie:
		return value == string(key)
	case ingest.KindGeneric:
		// The same value sits in Authorization and X-Keyline-Signature.
		scheme, tok, _ := strings.Cut(value, " ")
		return (strings.EqualFold(scheme, "bearer") && strings.TrimLeft(tok, " ") == string(key)) ||
			strings.TrimSpace(lower) == "sha256="+mac
	}
	return false
}
