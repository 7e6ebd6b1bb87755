package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

// clock is a settable store clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func useClock(s *store.Store, at time.Time) *clock {
	c := &clock{t: at}
	s.SetClock(c.now)
	return c
}

type created struct {
	src           *store.Source
	token, secret string
}

func mustCreateSource(t *testing.T, s *store.Store, tn *tenant.Tenant, kind, name string) created {
	t.Helper()
	src, token, secret, err := s.CreateSource(context.Background(), tn, kind, name)
	if err != nil {
		t.Fatalf("CreateSource(%s, %q): %v", kind, name, err)
	}
	return created{src, token, secret}
}

// verifies reports whether a GitHub delivery signed with key passes the
// secrets that SourceByToken returns for token now.
func verifies(t *testing.T, s *store.Store, token string, key string) bool {
	t.Helper()
	_, src, err := s.SourceByToken(context.Background(), token)
	if err != nil {
		t.Fatalf("SourceByToken: %v", err)
	}
	body := []byte(`{"zen":"Keep it logically awesome."}`)
	h := map[string][]string{ingest.HeaderGitHubSignature: {ingest.SignatureSHA256([]byte(key), body)}}
	return ingest.VerifySignature(ingest.KindGitHub, h, body, src.Secrets) == nil
}

func TestCreateListAndGetSources(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clk := useClock(s, oddTime)
		tn := mustUpsert(t, s, install("acme"))
		if got, err := s.ListSources(ctx, tn); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("ListSources on a new site = %#v, %v; want empty, non-nil", got, err)
		}
		gh := mustCreateSource(t, s, tn, store.SourceGitHub, "  Acme org  ")
		clk.add(time.Second) // list order is creation order
		gl := mustCreateSource(t, s, tn, store.SourceGitLab, "")

		at := oddTime.UTC().Truncate(time.Microsecond)
		want := store.Source{TenantID: tn.ID, ID: gh.src.ID, Kind: "github", Name: "Acme org",
			EnvironmentRules: []byte("{}"), CreatedAt: at, UpdatedAt: at}
		diffSource(t, gh.src, want)
		if gl.src.Name != "gitlab" {
			t.Errorf("default name = %q, want the kind", gl.src.Name)
		}
		for _, c := range []created{gh, gl} {
			if !strings.HasPrefix(c.src.ID, "src_") || len(c.src.ID) != 30 || strings.ToLower(c.src.ID) != c.src.ID {
				t.Errorf("id %q: want src_ and 26 lower-case base32 characters", c.src.ID)
			}
			if b, err := base64.RawURLEncoding.DecodeString(c.token); err != nil || len(b) != 32 {
				t.Errorf("token %q: want 32 bytes of base64url, %v", c.token, err)
			}
			if b, err := hex.DecodeString(c.secret); err != nil || len(b) != 32 {
				t.Errorf("secret %q: want 32 bytes of hex, %v", c.secret, err)
			}
		}
		if gh.src.ID == gl.src.ID || gh.token == gl.token || gh.secret == gl.secret {
			t.Error("two sources share an id, token or secret")
		}

		list, err := s.ListSources(ctx, tn)
		if err != nil || len(list) != 2 || list[0].ID != gh.src.ID || list[1].ID != gl.src.ID {
			t.Fatalf("ListSources = %+v, %v", list, err)
		}
		diffSource(t, &list[0], want)

		got, err := s.SourceByID(ctx, tn, gh.src.ID)
		if err != nil {
			t.Fatal(err)
		}
		diffSource(t, got, want)

		// The database holds the token's hash and the sealed secret only.
		var hash, enc []byte
		must(t, s.ScanOne(ctx, `SELECT token_hash, secret_enc FROM sources WHERE id = '`+gh.src.ID+`'`, &hash, &enc))
		if sum := sha256.Sum256([]byte(gh.token)); !bytes.Equal(hash, sum[:]) {
			t.Errorf("token_hash = %x, want sha256 of the token", hash)
		}
		if len(enc) == 0 || bytes.Contains(enc, []byte(gh.secret)) {
			t.Errorf("secret_enc %q is empty or holds the plaintext", enc)
		}
	})
}

// diffSource compares sources; times must be equal instants in UTC.
func diffSource(t *testing.T, got *store.Source, want store.Source) {
	t.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) ||
		got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
		t.Errorf("times = %v, %v; want %v, %v in UTC", got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	}
	if got.TenantID != want.TenantID || got.ID != want.ID || got.Kind != want.Kind || got.Name != want.Name ||
		!bytes.Equal(got.EnvironmentRules, want.EnvironmentRules) {
		t.Errorf("source = %+v, want %+v", got, want)
	}
	if (got.PreviousSecretUntil == nil) != (want.PreviousSecretUntil == nil) ||
		(got.PreviousSecretUntil != nil && !got.PreviousSecretUntil.Equal(*want.PreviousSecretUntil)) {
		t.Errorf("PreviousSecretUntil = %v, want %v", got.PreviousSecretUntil, want.PreviousSecretUntil)
	}
	if got.Secrets != nil {
		t.Errorf("Secrets = %q outside SourceByToken", got.Secrets)
	}
}

func TestCreateSourceRejects(t *testing.T) {
	tests := []struct {
		name, kind, srcName string
		nilTenant           bool
	}{
		{"unknown kind", "jenkins", "", false},
		{"empty kind", "", "", false},
		{"kind in other case", "GitHub", "", false},
		{"name too long", "github", strings.Repeat("é", store.MaxSourceNameLen+1), false},
		{"control character", "github", "a\x00b", false},
		{"newline", "github", "a\nb", false},
		{"invalid utf-8", "github", "a\xffb", false},
		{"no tenant", "github", "", true},
	}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		tn := mustUpsert(t, s, install("acme"))
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				on := tn
				if tt.nilTenant {
					on = nil
				}
				if _, _, _, err := s.CreateSource(context.Background(), on, tt.kind, tt.srcName); err == nil {
					t.Fatal("CreateSource accepted it")
				}
			})
		}
		mustCreateSource(t, s, tn, "github", strings.Repeat("é", store.MaxSourceNameLen))
		if got, _ := s.ListSources(context.Background(), tn); len(got) != 1 {
			t.Errorf("%d sources after rejected creations, want only the valid one", len(got))
		}
	})
}

func TestSourceKindsMatchIngest(t *testing.T) {
	if !slices.Equal(store.SourceKinds(), ingest.Kinds()) {
		t.Fatalf("store kinds %v != ingest kinds %v", store.SourceKinds(), ingest.Kinds())
	}
	for _, k := range store.SourceKinds() {
		if !store.ValidSourceKind(k) {
			t.Errorf("ValidSourceKind(%q) = false", k)
		}
	}
}

func TestSourceByToken(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		c := mustCreateSource(t, s, tn, store.SourcePagerDuty, "PD")

		gotT, src, err := s.SourceByToken(ctx, c.token)
		if err != nil {
			t.Fatal(err)
		}
		if gotT.ID != tn.ID || gotT.ClientKey != "acme" || string(gotT.SharedSecret) != "secret-of-acme" {
			t.Errorf("tenant = %+v", gotT)
		}
		if src.ID != c.src.ID || src.Kind != "pagerduty" || src.TenantID != tn.ID {
			t.Errorf("source = %+v", src)
		}
		if len(src.Secrets) != 1 || string(src.Secrets[0]) != c.secret {
			t.Errorf("Secrets = %q, want [%q]", src.Secrets, c.secret)
		}

		for _, bad := range []string{"", "x", c.token[:len(c.token)-1], c.token + "A", strings.ToUpper(c.token), c.src.ID, strings.Repeat("a", 10000)} {
			if _, _, err := s.SourceByToken(ctx, bad); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("SourceByToken(%.20q) = %v, want ErrNotFound", bad, err)
			}
		}

		// A disabled site still receives; the caller sees Enabled.
		must(t, s.SetEnabled(ctx, tn, false))
		if gotT, _, err := s.SourceByToken(ctx, c.token); err != nil || gotT.Enabled {
			t.Errorf("disabled tenant: %+v, %v; want found with Enabled false", gotT, err)
		}
		// An uninstalled site does not; a reinstall (same id) brings it back.
		if _, err := s.MarkUninstalled(ctx, tn.AppKey, tn.ClientKey, oddTime); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.SourceByToken(ctx, c.token); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("uninstalled tenant: %v, want ErrNotFound", err)
		}
		mustUpsert(t, s, install("acme"))
		if _, _, err := s.SourceByToken(ctx, c.token); err != nil {
			t.Errorf("after reinstall: %v", err)
		}
		// A deleted source is gone for good.
		must(t, s.DeleteSource(ctx, tn, c.src.ID))
		if _, _, err := s.SourceByToken(ctx, c.token); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted source: %v, want ErrNotFound", err)
		}
	})
}

func TestRotateSourceSecret(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clk := useClock(s, oddTime)
		tn := mustUpsert(t, s, install("acme"))
		c := mustCreateSource(t, s, tn, store.SourceGitHub, "")

		clk.add(time.Minute)
		rotatedAt := clk.t
		second, err := s.RotateSourceSecret(ctx, tn, c.src.ID, store.DefaultSecretOverlap)
		if err != nil {
			t.Fatal(err)
		}
		if second == c.secret || len(second) != 64 {
			t.Fatalf("rotated secret %q", second)
		}
		_, src, err := s.SourceByToken(ctx, c.token)
		if err != nil {
			t.Fatal(err)
		}
		if len(src.Secrets) != 2 || string(src.Secrets[0]) != second || string(src.Secrets[1]) != c.secret {
			t.Fatalf("Secrets = %q, want [new, old]", src.Secrets)
		}
		until := rotatedAt.Add(store.DefaultSecretOverlap).UTC().Truncate(time.Microsecond)
		if src.PreviousSecretUntil == nil || !src.PreviousSecretUntil.Equal(until) {
			t.Errorf("PreviousSecretUntil = %v, want %v", src.PreviousSecretUntil, until)
		}
		if !src.UpdatedAt.Equal(rotatedAt.UTC().Truncate(time.Microsecond)) {
			t.Errorf("UpdatedAt = %v, want the rotation time", src.UpdatedAt)
		}
		byID, _ := s.SourceByID(ctx, tn, c.src.ID)
		if byID.PreviousSecretUntil == nil || !byID.PreviousSecretUntil.Equal(until) {
			t.Errorf("SourceByID PreviousSecretUntil = %v, want %v", byID.PreviousSecretUntil, until)
		}

		// Within the overlap both secrets verify; at its end only the new one.
		clk.add(store.DefaultSecretOverlap - time.Microsecond)
		if !verifies(t, s, c.token, c.secret) || !verifies(t, s, c.token, second) {
			t.Error("a secret fails within the overlap")
		}
		clk.add(time.Microsecond)
		if verifies(t, s, c.token, c.secret) {
			t.Error("the old secret still verifies after the overlap")
		}
		if !verifies(t, s, c.token, second) {
			t.Error("the new secret fails after the overlap")
		}
		if byID, _ := s.SourceByID(ctx, tn, c.src.ID); byID.PreviousSecretUntil != nil {
			t.Errorf("expired PreviousSecretUntil still reported: %v", byID.PreviousSecretUntil)
		}

		// Rotating during an overlap keeps only the secret being replaced.
		third, err := s.RotateSourceSecret(ctx, tn, c.src.ID, time.Hour)
		must(t, err)
		fourth, err := s.RotateSourceSecret(ctx, tn, c.src.ID, time.Hour)
		must(t, err)
		if !verifies(t, s, c.token, fourth) || !verifies(t, s, c.token, third) || verifies(t, s, c.token, second) {
			t.Error("after two rotations: want the newest two secrets only")
		}

		// Overlap 0 ends the old secret at once (after a leak).
		fifth, err := s.RotateSourceSecret(ctx, tn, c.src.ID, 0)
		must(t, err)
		if !verifies(t, s, c.token, fifth) || verifies(t, s, c.token, fourth) {
			t.Error("overlap 0: the old secret still verifies")
		}
		if _, src, _ := s.SourceByToken(ctx, c.token); len(src.Secrets) != 1 || src.PreviousSecretUntil != nil {
			t.Errorf("overlap 0: Secrets %q, until %v", src.Secrets, src.PreviousSecretUntil)
		}

		// A provider-issued secret (PagerDuty) can be set.
		issued := "pd-issued-" + strings.Repeat("k", 40)
		must(t, s.SetSourceSecret(ctx, tn, c.src.ID, issued, time.Hour))
		if !verifies(t, s, c.token, issued) || !verifies(t, s, c.token, fifth) {
			t.Error("SetSourceSecret: want the issued secret and the replaced one")
		}
		for _, bad := range []string{"", "short", " " + issued, issued + "\n", strings.Repeat("x", 513)} {
			if err := s.SetSourceSecret(ctx, tn, c.src.ID, bad, 0); err == nil {
				t.Errorf("SetSourceSecret(%.20q) accepted", bad)
			}
		}

		for _, overlap := range []time.Duration{-time.Second, store.MaxSecretOverlap + time.Second} {
			if _, err := s.RotateSourceSecret(ctx, tn, c.src.ID, overlap); err == nil {
				t.Errorf("overlap %s accepted", overlap)
			}
		}
		if _, err := s.RotateSourceSecret(ctx, tn, "src_unknown", time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown source: %v, want ErrNotFound", err)
		}
		must(t, s.DeleteSource(ctx, tn, c.src.ID))
		if _, err := s.RotateSourceSecret(ctx, tn, c.src.ID, time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted source: %v, want ErrNotFound", err)
		}
	})
}

func TestSourceWithSecrets(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clk := useClock(s, oddTime)
		tn := mustUpsert(t, s, install("acme"))
		c := mustCreateSource(t, s, tn, store.SourcePagerDuty, "PD")
		secrets := func() *store.Source {
			t.Helper()
			src, err := s.SourceWithSecrets(ctx, tn, c.src.ID)
			if err != nil {
				t.Fatal(err)
			}
			return src
		}

		got := secrets()
		if len(got.Secrets) != 1 || string(got.Secrets[0]) != c.secret || got.SecretProvided {
			t.Errorf("new source: Secrets %q, provided %v; want [%q], false", got.Secrets, got.SecretProvided, c.secret)
		}
		if got.ID != c.src.ID || got.Kind != store.SourcePagerDuty || got.Name != "PD" || got.TenantID != tn.ID {
			t.Errorf("source = %+v", got)
		}

		// A provided secret is current and marked so everywhere; the one it
		// replaced verifies during the overlap.
		clk.add(time.Minute)
		issued := "pd-issued-" + strings.Repeat("k", 40)
		must(t, s.SetSourceSecret(ctx, tn, c.src.ID, issued, time.Hour))
		got = secrets()
		if len(got.Secrets) != 2 || string(got.Secrets[0]) != issued || string(got.Secrets[1]) != c.secret || !got.SecretProvided {
			t.Errorf("after SetSourceSecret: Secrets %q, provided %v; want [issued, old], true", got.Secrets, got.SecretProvided)
		}
		byID, err := s.SourceByID(ctx, tn, c.src.ID)
		must(t, err)
		list, err := s.ListSources(ctx, tn)
		must(t, err)
		_, byToken, err := s.SourceByToken(ctx, c.token)
		must(t, err)
		if !byID.SecretProvided || len(list) != 1 || !list[0].SecretProvided || !byToken.SecretProvided {
			t.Errorf("SecretProvided: by id %v, listed %+v, by token %v; want true", byID.SecretProvided, list, byToken.SecretProvided)
		}
		if byID.Secrets != nil || list[0].Secrets != nil {
			t.Error("SourceByID or ListSources opened the secrets")
		}

		// A refused secret changes nothing.
		must(t, s.SetSourceSecret(ctx, tn, c.src.ID, issued, 0))
		if err := s.SetSourceSecret(ctx, tn, c.src.ID, "bad\nsecret-0123456789", 0); !errors.Is(err, store.ErrInvalidSecret) {
			t.Errorf("SetSourceSecret with a line break: %v, want ErrInvalidSecret", err)
		}
		if got := secrets(); len(got.Secrets) != 1 || string(got.Secrets[0]) != issued || !got.SecretProvided {
			t.Errorf("after a refused secret: Secrets %q, provided %v; want the issued one kept", got.Secrets, got.SecretProvided)
		}

		// A rotation issues Keyline's own secret again.
		rotated, err := s.RotateSourceSecret(ctx, tn, c.src.ID, 0)
		must(t, err)
		if got := secrets(); len(got.Secrets) != 1 || string(got.Secrets[0]) != rotated || got.SecretProvided {
			t.Errorf("after a rotation: Secrets %q, provided %v; want [rotated], false", got.Secrets, got.SecretProvided)
		}

		if _, err := s.SourceWithSecrets(ctx, tn, "src_unknown"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown source: %v, want ErrNotFound", err)
		}
		if _, err := s.SourceWithSecrets(ctx, nil, c.src.ID); err == nil {
			t.Error("no tenant: accepted")
		}
		must(t, s.DeleteSource(ctx, tn, c.src.ID))
		if _, err := s.SourceWithSecrets(ctx, tn, c.src.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted source: %v, want ErrNotFound", err)
		}
	})
}

func TestCheckSourceSecret(t *testing.T) {
	tests := []struct {
		name, secret string
		ok           bool
	}{
		{"PagerDuty's shape", "ChGJGwDeuvCDPEMT5uMz4jUiUPOv9ngkIIlTr1VGNLzZSeNaIxXhrlc1hmqLxObd", true},
		{"16 bytes", strings.Repeat("a", 16), true},
		{"512 bytes", strings.Repeat("a", 512), true},
		{"spaces and punctuation inside", "a b-c_d.e~f!g@h#i$", true},
		{"empty", "", false},
		{"15 bytes", strings.Repeat("a", 15), false},
		{"513 bytes", strings.Repeat("a", 513), false},
		{"leading space", " " + strings.Repeat("a", 20), false},
		{"trailing line break", strings.Repeat("a", 20) + "\n", false},
		{"tab inside", strings.Repeat("a", 10) + "\t" + strings.Repeat("a", 10), false},
		{"NUL inside", strings.Repeat("a", 10) + "\x00" + strings.Repeat("a", 10), false},
		{"DEL inside", strings.Repeat("a", 10) + "\x7f" + strings.Repeat("a", 10), false},
		{"not ASCII", strings.Repeat("é", 10), false},
		{"invalid UTF-8", strings.Repeat("\xff", 20), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := store.CheckSourceSecret(tt.secret)
			if tt.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, store.ErrInvalidSecret) {
				t.Errorf("got %v, want ErrInvalidSecret", err)
			}
		})
	}
}

func TestTakesProvidedSecret(t *testing.T) {
	for _, k := range store.SourceKinds() {
		if got, want := store.TakesProvidedSecret(k), k == store.SourcePagerDuty; got != want {
			t.Errorf("TakesProvidedSecret(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestDeleteSource(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		keep := mustCreateSource(t, s, tn, store.SourceGitHub, "keep")
		gone := mustCreateSource(t, s, tn, store.SourceGitHub, "gone")
		_, err := s.RotateSourceSecret(ctx, tn, gone.src.ID, time.Hour)
		must(t, err)
		must(t, s.RecordDelivery(ctx, tn, gone.src.ID, store.Delivery{DeliveryID: "d1", Outcome: store.DeliveryAccepted, Status: 202}))

		must(t, s.DeleteSource(ctx, tn, gone.src.ID))
		if err := s.DeleteSource(ctx, tn, gone.src.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second delete: %v, want ErrNotFound", err)
		}
		if err := s.DeleteSource(ctx, tn, "src_unknown"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown: %v, want ErrNotFound", err)
		}
		if list, _ := s.ListSources(ctx, tn); len(list) != 1 || list[0].ID != keep.src.ID {
			t.Errorf("ListSources after delete = %+v", list)
		}
		if _, err := s.SourceByID(ctx, tn, gone.src.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SourceByID of a deleted source: %v", err)
		}
		if _, err := s.ListDeliveries(ctx, tn, gone.src.ID, 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ListDeliveries of a deleted source: %v", err)
		}
		if err := s.SetEnvironmentRules(ctx, tn, gone.src.ID, []byte(`{}`)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetEnvironmentRules of a deleted source: %v", err)
		}
		// The row stays, with its log, but without secrets.
		var n, encLen int
		var prev []byte
		must(t, s.ScanOne(ctx, `SELECT COUNT(*) FROM deliveries WHERE source_id = '`+gone.src.ID+`'`, &n))
		must(t, s.ScanOne(ctx, `SELECT LENGTH(secret_enc), previous_secret_enc FROM sources WHERE id = '`+gone.src.ID+`'`, &encLen, &prev))
		if n != 1 || encLen != 0 || prev != nil {
			t.Errorf("deleted row: %d deliveries, secret of %d bytes, previous %q; want 1, 0, nil", n, encLen, prev)
		}
		if _, _, err := s.SourceByToken(ctx, keep.token); err != nil {
			t.Errorf("the other source: %v", err)
		}
	})
}

func TestSetEnvironmentRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clk := useClock(s, oddTime)
		tn := mustUpsert(t, s, install("acme"))
		c := mustCreateSource(t, s, tn, store.SourceGitLab, "")
		clk.add(time.Hour)
		rules := "{\n  \"production\": [\"prod-*\", \"live\"],\n  \"staging\": [\"*-stable\"]\n}"
		must(t, s.SetEnvironmentRules(ctx, tn, c.src.ID, []byte(rules)))
		got, err := s.SourceByID(ctx, tn, c.src.ID)
		must(t, err)
		if want := `{"production":["prod-*","live"],"staging":["*-stable"]}`; string(got.EnvironmentRules) != want {
			t.Errorf("EnvironmentRules = %s, want %s", got.EnvironmentRules, want)
		}
		if !got.UpdatedAt.Equal(clk.t.UTC().Truncate(time.Microsecond)) || got.CreatedAt.Equal(got.UpdatedAt) {
			t.Errorf("UpdatedAt = %v, CreatedAt = %v", got.UpdatedAt, got.CreatedAt)
		}
		for _, bad := range []string{"", "not json", `["prod-*"]`, `"x"`, `null`, `{"a":`, `{"a":"` + strings.Repeat("x", store.MaxEnvironmentRulesLen) + `"}`} {
			if err := s.SetEnvironmentRules(ctx, tn, c.src.ID, []byte(bad)); err == nil {
				t.Errorf("SetEnvironmentRules(%.20q) accepted", bad)
			}
		}
		if err := s.SetEnvironmentRules(ctx, tn, "src_unknown", []byte(`{}`)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown source: %v", err)
		}
	})
}

// TestSetEnvironmentRulesValidates checks that rules the ingest path could not
// use are refused with their reason and leave the stored rules as they were.
func TestSetEnvironmentRulesValidates(t *testing.T) {
	eleven := make([]string, devops.MaxEnvironmentGlobs+1)
	for i := range eleven {
		eleven[i] = fmt.Sprintf("qa-%d", i)
	}
	tooMany, _ := json.Marshal(map[string][]string{"testing": eleven})
	tests := []struct {
		name, rules string
		want        []string // in the error
	}{
		{"empty", ``, []string{"not JSON"}},
		{"not an object", `["prod-*"]`, []string{"not a JSON object"}},
		{"null document", `null`, []string{"not a JSON object"}},
		{"unknown type", `{"prod": ["prod-*"]}`, []string{`"prod" is not a type rules can map to`}},
		{"unmapped type", `{"unmapped": ["*"]}`, []string{`"unmapped" is not a type`}},
		{"type in other case", `{"Production": ["prod-*"]}`, []string{`"Production" is not a type`}},
		{"string instead of list", `{"production": "prod-*"}`, []string{`"production" must be a list of glob strings`}},
		{"null list", `{"production": null}`, []string{`"production" must be a list`}},
		{"number glob", `{"production": [1]}`, []string{`"production" must be a list`}},
		{"too many globs", string(tooMany), []string{"testing has 11 globs, at most 10"}},
		{"malformed glob", `{"production": ["prod-[0-9"]}`, []string{`production glob 1 "prod-[0-9" is not a valid glob`}},
		{"empty glob", `{"staging": ["ok", ""]}`, []string{`staging glob 2 "" is empty`}},
		{"every problem named", `{"production": ["{a"], "qa": ["*"], "staging": 3}`,
			[]string{`production glob 1 "{a"`, `"qa" is not a type`, `"staging" must be a list`}},
	}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		c := mustCreateSource(t, s, tn, store.SourceGeneric, "")
		const kept = `{"production":["live-*"]}`
		must(t, s.SetEnvironmentRules(ctx, tn, c.src.ID, []byte(kept)))
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := s.SetEnvironmentRules(ctx, tn, c.src.ID, []byte(tt.rules))
				if !errors.Is(err, devops.ErrInvalidEnvironmentRules) {
					t.Fatalf("SetEnvironmentRules(%s) = %v, want an error wrapping ErrInvalidEnvironmentRules", tt.rules, err)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if _, perr := store.ParseEnvironmentRules([]byte(tt.rules)); perr == nil {
					t.Error("ParseEnvironmentRules accepted what SetEnvironmentRules refused")
				}
				got, err := s.SourceByID(ctx, tn, c.src.ID)
				must(t, err)
				if string(got.EnvironmentRules) != kept {
					t.Errorf("rules after a refused update = %s, want %s unchanged", got.EnvironmentRules, kept)
				}
			})
		}
		// Invalid rules for a source that does not exist are refused for
		// what they are, before the lookup.
		if err := s.SetEnvironmentRules(ctx, tn, "src_unknown", []byte(`{"prod":["*"]}`)); !errors.Is(err, devops.ErrInvalidEnvironmentRules) {
			t.Errorf("invalid rules for an unknown source: %v", err)
		}
	})
}

// TestSetEnvironmentRulesStoresWhatWasChecked checks that the stored document
// is the one validated: re-encoded with sorted keys, a duplicate key's last
// value (the one encoding/json reads), globs written as they were.
func TestSetEnvironmentRulesStoresWhatWasChecked(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		c := mustCreateSource(t, s, tn, store.SourceGeneric, "")
		for _, tt := range []struct{ in, want string }{
			{`{}`, `{}`},
			{` { "staging" : [ "*-stable" ] , "development": [] } `, `{"development":[],"staging":["*-stable"]}`},
			{`{"production": ["[invalid"], "production": ["live-*"]}`, `{"production":["live-*"]}`},
			{`{"testing": ["qa&<uat>*", "\u00e9t\u00e9-*"]}`, `{"testing":["qa&<uat>*","été-*"]}`},
		} {
			must(t, s.SetEnvironmentRules(ctx, tn, c.src.ID, []byte(tt.in)))
			got, err := s.SourceByID(ctx, tn, c.src.ID)
			must(t, err)
			if string(got.EnvironmentRules) != tt.want {
				t.Errorf("SetEnvironmentRules(%s) stored %s, want %s", tt.in, got.EnvironmentRules, tt.want)
			}
			var back devops.EnvironmentRules
			if err := json.Unmarshal(got.EnvironmentRules, &back); err != nil || back.Validate() != nil {
				t.Errorf("stored rules %s do not read back as valid rules: %v", got.EnvironmentRules, err)
			}
		}
	})
}

func TestSourceLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		tn := mustUpsert(t, s, install("acme"))
		other := mustUpsert(t, s, install("other"))
		var first string
		for i := range store.MaxSourcesPerTenant {
			c := mustCreateSource(t, s, tn, store.SourceGeneric, "")
			if i == 0 {
				first = c.src.ID
			}
		}
		if _, _, _, err := s.CreateSource(ctx, tn, store.SourceGeneric, ""); !errors.Is(err, store.ErrTooManySources) {
			t.Fatalf("one over the limit: %v, want ErrTooManySources", err)
		}
		mustCreateSource(t, s, other, store.SourceGeneric, "") // per site
		must(t, s.DeleteSource(ctx, tn, first))
		mustCreateSource(t, s, tn, store.SourceGeneric, "") // deleted ones do not count
	})
}

// TestSourcesCrossTenant gives site B a source with the same id as one of
// A's, then runs every source and delivery method as A, and checks that A
// never sees B's source and that not one of B's rows changed.
func TestSourcesCrossTenant(t *testing.T) {
	ops := []struct {
		name string
		run  func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string)
	}{
		{"ListSources", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			list, err := s.ListSources(ctx, a)
			if err != nil || len(list) != 1 || list[0].Name != "A's" || list[0].TenantID != a.ID {
				t.Errorf("ListSources = %+v, %v; want A's one source", list, err)
			}
		}},
		{"SourceByID shared id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			got, err := s.SourceByID(ctx, a, shared)
			if err != nil || got.Name != "A's" {
				t.Errorf("SourceByID = %+v, %v; want A's", got, err)
			}
		}},
		{"SourceByID B's id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			if got, err := s.SourceByID(ctx, a, onlyB); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("got B's source %+v, %v", got, err)
			}
		}},
		{"RotateSourceSecret shared id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			_, err := s.RotateSourceSecret(ctx, a, shared, time.Hour)
			must(t, err)
		}},
		{"RotateSourceSecret B's id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			if _, err := s.RotateSourceSecret(ctx, a, onlyB, time.Hour); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("rotated B's source: %v", err)
			}
		}},
		{"SetSourceSecret B's id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			if err := s.SetSourceSecret(ctx, a, onlyB, strings.Repeat("s", 20), 0); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("set B's secret: %v", err)
			}
		}},
		{"SetEnvironmentRules shared id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			must(t, s.SetEnvironmentRules(ctx, a, shared, []byte(`{"production":["x"]}`)))
		}},
		{"SetEnvironmentRules B's id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			if err := s.SetEnvironmentRules(ctx, a, onlyB, []byte(`{}`)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("changed B's rules: %v", err)
			}
		}},
		{"DeleteSource shared id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			must(t, s.DeleteSource(ctx, a, shared))
		}},
		{"DeleteSource B's id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			if err := s.DeleteSource(ctx, a, onlyB); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("deleted B's source: %v", err)
			}
		}},
		{"RecordDelivery shared id, B's delivery id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			must(t, s.RecordDelivery(ctx, a, shared, store.Delivery{DeliveryID: "b-1", Outcome: store.DeliveryAccepted, Status: 202}))
		}},
		{"RecordDelivery B's id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			err := s.RecordDelivery(ctx, a, onlyB, store.Delivery{DeliveryID: "b-2", Outcome: store.DeliveryAccepted, Status: 202})
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("recorded into B's source: %v", err)
			}
		}},
		{"ListDeliveries shared id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			got, err := s.ListDeliveries(ctx, a, shared, 0)
			if err != nil || len(got) != 0 {
				t.Errorf("ListDeliveries = %+v, %v; want A's none", got, err)
			}
		}},
		{"ListDeliveries B's id", func(t *testing.T, ctx context.Context, s *store.Store, a *tenant.Tenant, shared, onlyB string) {
			if got, err := s.ListDeliveries(ctx, a, onlyB, 0); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("read B's log: %+v, %v", got, err)
			}
		}},
	}
	dbtest.Each(t, func(t *testing.T, s *store.Store) {
		for _, op := range ops {
			t.Run(op.name, func(t *testing.T) {
				ctx := context.Background()
				a := mustUpsert(t, s, install("site-a"))
				b := mustUpsert(t, s, install("site-b"))
				t.Cleanup(func() {
					_ = s.Exec(ctx, `DELETE FROM tenants WHERE id IN (?, ?)`, a.ID, b.ID)
				})
				ca := mustCreateSource(t, s, a, store.SourceGitHub, "A's")
				cb := mustCreateSource(t, s, b, store.SourceGitHub, "B's shared")
				must(t, s.Exec(ctx, `UPDATE sources SET id = ? WHERE tenant_id = ? AND id = ?`, ca.src.ID, b.ID, cb.src.ID))
				onlyB := mustCreateSource(t, s, b, store.SourceGitLab, "B's own")
				for _, id := range []string{ca.src.ID, onlyB.src.ID} {
					must(t, s.RecordDelivery(ctx, b, id, store.Delivery{DeliveryID: "b-1", Outcome: store.DeliveryAccepted, Status: 202}))
					must(t, s.RecordDelivery(ctx, b, id, store.Delivery{DeliveryID: "b-2", Outcome: store.DeliveryRejected, Status: 401}))
				}

				before, err := s.DumpTenant(ctx, b.ID)
				must(t, err)
				if len(before) != 1+2+4 {
					t.Fatalf("B's seed incomplete: %q", before)
				}
				op.run(t, ctx, s, a, ca.src.ID, onlyB.src.ID)
				after, err := s.DumpTenant(ctx, b.ID)
				must(t, err)
				if !slices.Equal(before, after) {
					t.Errorf("%s as tenant A changed tenant B's rows:\nbefore %q\nafter  %q", op.name, before, after)
				}
				// B's tokens still lead to B.
				for _, tok := range []string{cb.token, onlyB.token} {
					if got, _, err := s.SourceByToken(ctx, tok); err != nil || got.ID != b.ID {
						t.Errorf("B's token now gives %+v, %v", got, err)
					}
				}
			})
		}
	})
}
