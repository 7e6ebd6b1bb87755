package ingest_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyline/keyline/app/ingest"
)

var (
	secret    = []byte("0123456789abcdef0123456789abcdef")
	oldSecret = []byte("an older secret, still in its overlap")
	other     = []byte("somebody else's secret")
)

// fixture reads a provider payload from testdata.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hmacHex(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func sha1Hex(key, body []byte) string {
	m := hmac.New(sha1.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// hdr builds headers from name, value pairs; a name may repeat.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestVerifySignature(t *testing.T) {
	body := fixture(t, "github/push.json")
	good := hmacHex(secret, body)
	oldGood := hmacHex(oldSecret, body)
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)/2] ^= 1
	both := [][]byte{secret, oldSecret}

	tests := []struct {
		name    string
		kind    string
		h       http.Header
		body    []byte // nil: the push fixture
		secrets [][]byte
		want    error
	}{
		// GitHub
		{"github ok", "github", hdr("X-Hub-Signature-256", "sha256="+good), nil, both, nil},
		{"github uppercase hex", "github", hdr("X-Hub-Signature-256", "sha256="+strings.ToUpper(good)), nil, both, nil},
		{"github uppercase algorithm", "github", hdr("X-Hub-Signature-256", "SHA256="+good), nil, both, nil},
		{"github surrounding spaces", "github", hdr("X-Hub-Signature-256", "  sha256="+good+" "), nil, both, nil},
		{"github old secret in overlap", "github", hdr("X-Hub-Signature-256", "sha256="+oldGood), nil, both, nil},
		{"github old secret after overlap", "github", hdr("X-Hub-Signature-256", "sha256="+oldGood), nil, [][]byte{secret}, ingest.ErrBadSignature},
		{"github wrong secret", "github", hdr("X-Hub-Signature-256", "sha256="+hmacHex(other, body)), nil, both, ingest.ErrBadSignature},
		{"github tampered body", "github", hdr("X-Hub-Signature-256", "sha256="+good), tampered, both, ingest.ErrBadSignature},
		{"github empty body", "github", hdr("X-Hub-Signature-256", "sha256="+good), []byte{}, both, ingest.ErrBadSignature},
		{"github truncated hex", "github", hdr("X-Hub-Signature-256", "sha256="+good[:63]), nil, both, ingest.ErrBadSignature},
		{"github short hex", "github", hdr("X-Hub-Signature-256", "sha256="+good[:40]), nil, both, ingest.ErrBadSignature},
		{"github extra hex", "github", hdr("X-Hub-Signature-256", "sha256="+good+"00"), nil, both, ingest.ErrBadSignature},
		{"github not hex", "github", hdr("X-Hub-Signature-256", "sha256="+strings.Repeat("zz", 32)), nil, both, ingest.ErrBadSignature},
		{"github no prefix", "github", hdr("X-Hub-Signature-256", good), nil, both, ingest.ErrBadSignature},
		{"github sha1 prefix", "github", hdr("X-Hub-Signature-256", "sha1="+good), nil, both, ingest.ErrBadSignature},
		{"github legacy sha1 header only", "github", hdr("X-Hub-Signature", "sha1="+sha1Hex(secret, body)), nil, both, ingest.ErrMissingSignature},
		{"github missing", "github", hdr(), nil, both, ingest.ErrMissingSignature},
		{"github empty value", "github", hdr("X-Hub-Signature-256", ""), nil, both, ingest.ErrMissingSignature},
		{"github second header line good", "github", hdr("X-Hub-Signature-256", "sha256="+hmacHex(other, body), "X-Hub-Signature-256", "sha256="+good), nil, both, nil},
		{"github no secrets", "github", hdr("X-Hub-Signature-256", "sha256="+good), nil, nil, ingest.ErrBadSignature},
		{"github empty secret signs", "github", hdr("X-Hub-Signature-256", "sha256="+hmacHex(nil, body)), nil, [][]byte{{}}, ingest.ErrBadSignature},

		// Bitbucket: GitHub's legacy header name, SHA-256 value.
		{"bitbucket ok", "bitbucket", hdr("X-Hub-Signature", "sha256="+good), nil, both, nil},
		{"bitbucket old secret", "bitbucket", hdr("X-Hub-Signature", "sha256="+oldGood), nil, both, nil},
		{"bitbucket sha1 value", "bitbucket", hdr("X-Hub-Signature", "sha1="+sha1Hex(secret, body)), nil, both, ingest.ErrBadSignature},
		{"bitbucket wrong secret", "bitbucket", hdr("X-Hub-Signature", "sha256="+hmacHex(other, body)), nil, both, ingest.ErrBadSignature},
		{"bitbucket github header only", "bitbucket", hdr("X-Hub-Signature-256", "sha256="+good), nil, both, ingest.ErrMissingSignature},
		{"bitbucket missing (no secret configured)", "bitbucket", hdr(), nil, both, ingest.ErrMissingSignature},

		// GitLab
		{"gitlab ok", "gitlab", hdr("X-Gitlab-Token", string(secret)), nil, both, nil},
		{"gitlab old secret", "gitlab", hdr("X-Gitlab-Token", string(oldSecret)), nil, both, nil},
		{"gitlab wrong", "gitlab", hdr("X-Gitlab-Token", string(other)), nil, both, ingest.ErrBadSignature},
		{"gitlab prefix of secret", "gitlab", hdr("X-Gitlab-Token", string(secret[:10])), nil, both, ingest.ErrBadSignature},
		{"gitlab secret plus suffix", "gitlab", hdr("X-Gitlab-Token", string(secret)+"x"), nil, both, ingest.ErrBadSignature},
		{"gitlab other case", "gitlab", hdr("X-Gitlab-Token", strings.ToUpper(string(secret))), nil, both, ingest.ErrBadSignature},
		{"gitlab missing", "gitlab", hdr(), nil, both, ingest.ErrMissingSignature},
		{"gitlab empty token, empty secret", "gitlab", hdr("X-Gitlab-Token", ""), nil, [][]byte{{}}, ingest.ErrMissingSignature},
		{"gitlab token, only empty secret", "gitlab", hdr("X-Gitlab-Token", "x"), nil, [][]byte{nil, {}}, ingest.ErrBadSignature},
		{"gitlab hmac is not a token", "gitlab", hdr("X-Gitlab-Token", "sha256="+good), nil, both, ingest.ErrBadSignature},

		// PagerDuty
		{"pagerduty one value", "pagerduty", hdr("X-PagerDuty-Signature", "v1="+good), nil, both, nil},
		{"pagerduty rotation, second matches", "pagerduty", hdr("X-PagerDuty-Signature", "v1="+hmacHex(other, body)+",v1="+good), nil, both, nil},
		{"pagerduty spaces after commas", "pagerduty", hdr("X-PagerDuty-Signature", "v1="+hmacHex(other, body)+", v1="+good), nil, both, nil},
		{"pagerduty our old secret", "pagerduty", hdr("X-PagerDuty-Signature", "v1="+oldGood), nil, both, nil},
		{"pagerduty unknown version next to v1", "pagerduty", hdr("X-PagerDuty-Signature", "v2=abc,v1="+good), nil, both, nil},
		{"pagerduty only unknown version", "pagerduty", hdr("X-PagerDuty-Signature", "v2="+good), nil, both, ingest.ErrBadSignature},
		{"pagerduty none match", "pagerduty", hdr("X-PagerDuty-Signature", "v1="+hmacHex(other, body)+",v1="+hmacHex([]byte("x"), body)), nil, both, ingest.ErrBadSignature},
		{"pagerduty truncated", "pagerduty", hdr("X-PagerDuty-Signature", "v1="+good[:60]), nil, both, ingest.ErrBadSignature},
		{"pagerduty tampered body", "pagerduty", hdr("X-PagerDuty-Signature", "v1="+good), tampered, both, ingest.ErrBadSignature},
		{"pagerduty too many values", "pagerduty", hdr("X-PagerDuty-Signature", strings.Repeat("v1="+hmacHex(other, body)+",", 16)+"v1="+good), nil, both, ingest.ErrBadSignature},
		{"pagerduty sixteen values", "pagerduty", hdr("X-PagerDuty-Signature", strings.Repeat("v1="+hmacHex(other, body)+",", 15)+"v1="+good), nil, both, nil},
		{"pagerduty only commas", "pagerduty", hdr("X-PagerDuty-Signature", ",,,"), nil, both, ingest.ErrMissingSignature},
		{"pagerduty missing", "pagerduty", hdr(), nil, both, ingest.ErrMissingSignature},

		// Opsgenie
		{"opsgenie ok", "opsgenie", hdr("X-Keyline-Token", string(secret)), nil, both, nil},
		{"opsgenie wrong", "opsgenie", hdr("X-Keyline-Token", string(other)), nil, both, ingest.ErrBadSignature},
		{"opsgenie bearer is not accepted", "opsgenie", hdr("Authorization", "Bearer "+string(secret)), nil, both, ingest.ErrMissingSignature},
		{"opsgenie missing", "opsgenie", hdr(), nil, both, ingest.ErrMissingSignature},

		// Generic
		{"generic bearer", "generic", hdr("Authorization", "Bearer "+string(secret)), nil, both, nil},
		{"generic bearer lower case", "generic", hdr("Authorization", "bearer "+string(secret)), nil, both, nil},
		{"generic bearer old secret", "generic", hdr("Authorization", "Bearer "+string(oldSecret)), nil, both, nil},
		{"generic bearer wrong", "generic", hdr("Authorization", "Bearer "+string(other)), nil, both, ingest.ErrBadSignature},
		{"generic bearer empty", "generic", hdr("Authorization", "Bearer "), nil, [][]byte{{}}, ingest.ErrBadSignature},
		{"generic basic", "generic", hdr("Authorization", "Basic "+string(secret)), nil, both, ingest.ErrBadSignature},
		{"generic bare secret", "generic", hdr("Authorization", string(secret)), nil, both, ingest.ErrBadSignature},
		{"generic signature", "generic", hdr("X-Keyline-Signature", ingest.SignatureSHA256(secret, body)), nil, both, nil},
		{"generic signature tampered", "generic", hdr("X-Keyline-Signature", ingest.SignatureSHA256(secret, body)), tampered, both, ingest.ErrBadSignature},
		{"generic wrong bearer, good signature", "generic", hdr("Authorization", "Bearer nope", "X-Keyline-Signature", "sha256="+good), nil, both, nil},
		{"generic good bearer, bad signature", "generic", hdr("Authorization", "Bearer "+string(secret), "X-Keyline-Signature", "sha256="+good[:10]), nil, both, nil},
		{"generic both bad", "generic", hdr("Authorization", "Bearer nope", "X-Keyline-Signature", "sha256="+hmacHex(other, body)), nil, both, ingest.ErrBadSignature},
		{"generic github header is not accepted", "generic", hdr("X-Hub-Signature-256", "sha256="+good), nil, both, ingest.ErrMissingSignature},
		{"generic missing", "generic", hdr(), nil, both, ingest.ErrMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.body
			if b == nil {
				b = body
			}
			err := ingest.VerifySignature(tt.kind, tt.h, b, tt.secrets)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("VerifySignature = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifySignatureUnknownKind(t *testing.T) {
	for _, kind := range []string{"", "GitHub", "jenkins"} {
		err := ingest.VerifySignature(kind, hdr("Authorization", "Bearer x"), nil, [][]byte{[]byte("x")})
		if !errors.Is(err, ingest.ErrUnknownKind) {
			t.Errorf("kind %q: %v, want ErrUnknownKind", kind, err)
		}
	}
}

// TestVerifyEveryFixture signs every testdata payload the way its provider
// does and checks it verifies, and fails once one byte changes.
func TestVerifyEveryFixture(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		kind := filepath.Base(filepath.Dir(f))
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(kind+"/"+filepath.Base(f), func(t *testing.T) {
			h := sign(kind, body, secret)
			if err := ingest.VerifySignature(kind, h, body, [][]byte{secret}); err != nil {
				t.Fatalf("signed fixture: %v", err)
			}
			if kind == ingest.KindGitLab || kind == ingest.KindOpsgenie {
				return // token kinds do not cover the body
			}
			changed := append([]byte(nil), body...)
			changed[len(changed)-1] ^= 0x20
			if err := ingest.VerifySignature(kind, h, changed, [][]byte{secret}); !errors.Is(err, ingest.ErrBadSignature) {
				t.Fatalf("changed body: %v, want ErrBadSignature", err)
			}
		})
	}
}

// sign returns the headers the provider of kind would send for body.
func sign(kind string, body, key []byte) http.Header {
	switch kind {
	case ingest.KindGitHub:
		return hdr(ingest.HeaderGitHubSignature, ingest.SignatureSHA256(key, body))
	case ingest.KindBitbucket:
		return hdr(ingest.HeaderBitbucketSignature, ingest.SignatureSHA256(key, body))
	case ingest.KindGitLab:
		return hdr(ingest.HeaderGitLabToken, string(key))
	case ingest.KindPagerDuty:
		return hdr(ingest.HeaderPagerDutySignature, "v1="+hmacHex(key, body))
	case ingest.KindOpsgenie:
		return hdr(ingest.HeaderKeylineToken, string(key))
	case ingest.KindGeneric:
		return hdr(ingest.HeaderKeylineSignature, ingest.SignatureSHA256(key, body))
	}
	return hdr()
}

func TestSignatureSHA256(t *testing.T) {
	// RFC 4231 test case 2.
	got := ingest.SignatureSHA256([]byte("Jefe"), []byte("what do ya want for nothing?"))
	want := "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got != want {
		t.Fatalf("SignatureSHA256 = %s, want %s", got, want)
	}
}

func TestDeliveryIDAndEventName(t *testing.T) {
	tests := []struct {
		kind      string
		h         http.Header
		wantID    string
		wantEvent string
	}{
		{"github", hdr("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-GitHub-Event", "push"), "72d3162e-cc78-11e3-81ab-4c9367dc0958", "push"},
		{"github", hdr("x-github-delivery", " d1 ", "x-github-event", "workflow_run"), "d1", "workflow_run"},
		{"github", hdr(), "", ""},
		{"gitlab", hdr("Idempotency-Key", "idem-1", "X-Gitlab-Event-UUID", "evt-1", "X-Gitlab-Event", "Push Hook"), "idem-1", "Push Hook"},
		{"gitlab", hdr("X-Gitlab-Event-UUID", "evt-1", "X-Gitlab-Event", "Pipeline Hook"), "evt-1", "Pipeline Hook"},
		{"bitbucket", hdr("X-Request-UUID", "req-1", "X-Hook-UUID", "hook-1", "X-Event-Key", "repo:push"), "req-1", "repo:push"},
		{"pagerduty", hdr("X-Webhook-Id", "wh-1", "X-Webhook-Subscription", "sub-1"), "wh-1", ""},
		{"opsgenie", hdr("Idempotency-Key", "ignored", "X-Request-UUID", "ignored"), "", ""},
		{"generic", hdr("Idempotency-Key", "ci-run-42-deploy", "X-GitHub-Event", "push"), "ci-run-42-deploy", ""},
		{"unknown", hdr("X-GitHub-Delivery", "d", "Idempotency-Key", "k"), "", ""},
	}
	for _, tt := range tests {
		if got := ingest.DeliveryID(tt.kind, tt.h); got != tt.wantID {
			t.Errorf("DeliveryID(%s, %v) = %q, want %q", tt.kind, tt.h, got, tt.wantID)
		}
		if got := ingest.EventName(tt.kind, tt.h); got != tt.wantEvent {
			t.Errorf("EventName(%s, %v) = %q, want %q", tt.kind, tt.h, got, tt.wantEvent)
		}
	}
}

func BenchmarkVerifySignatureGitHub(b *testing.B) {
	body := fixture(b, "github/push.json")
	h := sign(ingest.KindGitHub, body, secret)
	secrets := [][]byte{secret, oldSecret}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := ingest.VerifySignature(ingest.KindGitHub, h, body, secrets); err != nil {
			b.Fatal(err)
		}
	}
}
