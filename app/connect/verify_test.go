package connect

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/tenant"
)

const (
	testAppKey    = "com.keyline.jira"
	testClientKey = "client-1"
	testBasePath  = "/jira"
	panelPath     = "/jira/panel"
	panelQuery    = "issueKey=OPS-1&xdm_e=https%3A%2F%2Facme.atlassian.net&cp=&lic=none&cv=1001.0.0-SNAPSHOT"
)

func testTenant(secret string) *tenant.Tenant {
	return &tenant.Tenant{
		ID: 7, AppKey: testAppKey, ClientKey: testClientKey, BaseURL: "https://acme.atlassian.net",
		ProductType: "jira", SharedSecret: []byte(secret), Installed: true, Enabled: true,
	}
}

// symClaims returns valid claims for the panel request; cases then edit them.
func symClaims(t testing.TB) jwt.MapClaims {
	now := fixedClock()
	return jwt.MapClaims{
		"iss": testClientKey,
		"sub": "acc-sub",
		"iat": now.Unix(),
		"exp": now.Add(180 * time.Second).Unix(),
		"qsh": mustQSH(t, "GET", panelPath, panelQuery, testBasePath),
	}
}

func TestVerify(t *testing.T) {
	const secret = "s3cret-s3cret-s3cret-s3cret-s3cret"
	now := fixedClock()
	panelURL := panelPath + "?" + panelQuery
	edit := func(f func(c jwt.MapClaims)) jwt.MapClaims {
		c := symClaims(t)
		f(c)
		return c
	}
	good := signHS256(t, []byte(secret), symClaims(t))
	ctxClaims := edit(func(c jwt.MapClaims) { c["qsh"] = ContextQSH })

	tests := []struct {
		name       string
		method     string
		target     string
		query      string // token in ?jwt=
		header     string // full Authorization value
		mode       QSHMode
		tenant     *tenant.Tenant // nil: not installed at all
		wantReason string         // "" = success
	}{
		{name: "good iframe token", target: panelURL, query: good},
		{name: "good header token", target: panelURL, header: "JWT " + good},
		{name: "good webhook POST", method: "POST", target: "/jira/hooks/issue-updated?issueKey=OPS-1",
			header: "JWT " + signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) {
				c["qsh"] = mustQSH(t, "POST", "/jira/hooks/issue-updated", "issueKey=OPS-1", testBasePath)
			}))},
		{name: "good context token", target: "/jira/api/counts", mode: QSHContext,
			header: "JWT " + signHS256(t, []byte(secret), ctxClaims)},
		{name: "decoded path hashed", target: "/jira/a%20b", query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) {
			c["qsh"] = mustQSH(t, "GET", "/jira/a b", "", testBasePath)
		}))},
		{name: "encoded path hash rejected", target: "/jira/a%20b", wantReason: "qsh does not match",
			query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) { c["qsh"] = hashString("GET&/a%20b&") }))},
		{name: "no token", target: panelURL, wantReason: "missing token"},
		{name: "wrong secret", target: panelURL, query: signHS256(t, []byte("other-secret"), symClaims(t)),
			wantReason: "invalid signature"},
		{name: "tampered claims", target: panelURL, wantReason: "invalid signature",
			query: func() string {
				parts := strings.Split(good, ".")
				other := strings.Split(signHS256(t, []byte("x"), edit(func(c jwt.MapClaims) { c["sub"] = "admin" })), ".")
				return parts[0] + "." + other[1] + "." + parts[2]
			}()},
		{name: "alg none", target: panelURL, query: signNone(t, symClaims(t)), wantReason: "not signed with HS256"},
		{name: "alg RS256 with secret as HMAC key", target: panelURL, wantReason: "not signed with HS256",
			query: signRaw(t, map[string]any{"alg": "RS256", "typ": "JWT"}, symClaims(t), []byte(secret))},
		{name: "alg HS512", target: panelURL, wantReason: "not signed with HS256",
			query: func() string {
				s, err := jwt.NewWithClaims(jwt.SigningMethodHS512, symClaims(t)).SignedString([]byte(secret))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}()},
		{name: "garbage token", target: panelURL, query: "not-a-jwt", wantReason: "malformed token"},
		{name: "unknown iss", target: panelURL, wantReason: "unknown issuer",
			query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) { c["iss"] = "client-2" }))},
		{name: "missing iss", target: panelURL, wantReason: "no issuer",
			query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) { delete(c, "iss") }))},
		{name: "uninstalled tenant", target: panelURL, query: good, tenant: nil, wantReason: "unknown issuer"},
		{name: "missing exp", target: panelURL, wantReason: "no exp",
			query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{name: "exp now-31s fails", target: panelURL, wantReason: "expired",
			query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) {
				c["exp"] = now.Add(-31 * time.Second).Unix()
				c["iat"] = now.Add(-211 * time.Second).Unix()
			}))},
		{name: "exp now-29s passes", target: panelURL,
			query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) {
				c["exp"] = now.Add(-29 * time.Second).Unix()
				c["iat"] = now.Add(-209 * time.Second).Unix()
			}))},
		{name: "iat now+31s fails", target: panelURL, wantReason: "issued in the future",
			query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) {
				c["iat"] = now.Add(31 * time.Second).Unix()
				c["exp"] = now.Add(211 * time.Second).Unix()
			}))},
		{name: "iat now+29s passes", target: panelURL,
			query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) { c["iat"] = now.Add(29 * time.Second).Unix() }))},
		{name: "missing iat", target: panelURL, wantReason: "no iat",
			query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) { delete(c, "iat") }))},
		{name: "missing qsh", target: panelURL, wantReason: "no qsh",
			query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) { delete(c, "qsh") }))},
		{name: "missing qsh on context route", target: panelURL, mode: QSHContext, wantReason: "no qsh",
			query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) { delete(c, "qsh") }))},
		{name: "wrong qsh", target: panelURL, wantReason: "qsh does not match",
			query: signHS256(t, []byte(secret), edit(func(c jwt.MapClaims) { c["qsh"] = hashString("GET&/other&") }))},
		{name: "query changed after signing", target: panelURL + "&extra=1", query: good, wantReason: "qsh does not match"},
		{name: "method changed after signing", method: "POST", target: panelURL, query: good, wantReason: "qsh does not match"},
		{name: "context-qsh on computed route", target: panelURL, wantReason: "context tokens are not accepted",
			header: "JWT " + signHS256(t, []byte(secret), ctxClaims)},
		{name: "computed qsh on context route", target: panelURL, mode: QSHContext, query: good,
			wantReason: "accepts only context tokens"},
		{name: "token in query and header", target: panelURL, query: good, header: "JWT " + good,
			wantReason: "more than one place"},
		{name: "header without JWT prefix", target: panelURL, header: good, wantReason: "not a Connect JWT"},
		{name: "bearer header", target: panelURL, header: "Bearer " + good, wantReason: "not a Connect JWT"},
		{name: "unknown mode", target: panelURL, query: good, mode: QSHMode(9), wantReason: "unknown route class"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := newFakeLookup()
			ten := testTenant(secret)
			if tt.name != "uninstalled tenant" {
				lookup.put(ten)
			}
			method := tt.method
			if method == "" {
				method = "GET"
			}
			target := tt.target
			if tt.query != "" {
				sep := "?"
				if strings.Contains(target, "?") {
					sep = "&"
				}
				target += sep + "jwt=" + tt.query
			}
			r := httptest.NewRequest(method, target, nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			v := NewVerifier(lookup, WithClock(fixedClock))
			id, err := v.Verify(context.Background(), r, testAppKey, testBasePath, tt.mode)
			if tt.wantReason != "" {
				if id != nil {
					t.Fatalf("got identity %+v with error %v", id, err)
				}
				wantAuthError(t, err, tt.wantReason)
				if tt.query != "" && strings.Contains(err.Error(), tt.query) {
					t.Fatal("error leaks the token")
				}
				if strings.Contains(err.Error(), secret) {
					t.Fatal("error leaks the secret")
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Tenant.ID != ten.ID || id.AccountID != "acc-sub" || id.Claims.Issuer != testClientKey {
				t.Fatalf("identity = %+v / %+v", id, id.Claims)
			}
		})
	}
}

func TestVerifyLookupGuards(t *testing.T) {
	const secret = "secret"
	tests := []struct {
		name   string
		tenant *tenant.Tenant
	}{
		{"not installed", func() *tenant.Tenant { t := testTenant(secret); t.Installed = false; return t }()},
		{"other app", func() *tenant.Tenant { t := testTenant(secret); t.AppKey = "com.keyline.confluence"; return t }()},
		{"other client", func() *tenant.Tenant { t := testTenant(secret); t.ClientKey = "client-9"; return t }()},
		{"empty secret", testTenant("")},
		{"nil tenant", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := lookupFunc(func(context.Context, string, string, bool) (*tenant.Tenant, error) { return tt.tenant, nil })
			r := httptest.NewRequest("GET", panelPath+"?"+panelQuery+"&jwt="+signHS256(t, []byte(secret), symClaims(t)), nil)
			_, err := NewVerifier(lookup, WithClock(fixedClock)).Verify(context.Background(), r, testAppKey, testBasePath, QSHComputed)
			wantAuthError(t, err, "unknown issuer")
		})
	}
}

// The real cache must satisfy the interface the verifier consumes.
var _ TenantLookup = (*tenant.Cache)(nil)

type lookupFunc func(ctx context.Context, appKey, clientKey string, fresh bool) (*tenant.Tenant, error)

func (f lookupFunc) Tenant(ctx context.Context, appKey, clientKey string, fresh bool) (*tenant.Tenant, error) {
	return f(ctx, appKey, clientKey, fresh)
}

func TestVerifyLookupErrorIsWrapped(t *testing.T) {
	storeDown := errors.New("store down")
	lookup := lookupFunc(func(context.Context, string, string, bool) (*tenant.Tenant, error) { return nil, storeDown })
	r := httptest.NewRequest("GET", panelPath+"?"+panelQuery+"&jwt="+signHS256(t, []byte("s"), symClaims(t)), nil)
	_, err := NewVerifier(lookup, WithClock(fixedClock)).Verify(context.Background(), r, testAppKey, testBasePath, QSHComputed)
	wantAuthError(t, err, "tenant lookup failed")
	if !errors.Is(err, storeDown) {
		t.Fatalf("lookup error not wrapped: %v", err)
	}
}

// TestVerifyFreshRetry covers the reinstall-on-another-replica path: the
// cached secret is stale, one fresh lookup finds the new one.
func TestVerifyFreshRetry(t *testing.T) {
	tests := []struct {
		name       string
		cached     string // secret the cache still holds ("" = no stale entry)
		current    string // secret in the store
		signWith   string
		wantOK     bool
		wantFresh  int
		wantReason string
	}{
		{name: "cache hit, right secret", cached: "", current: "new", signWith: "new", wantOK: true, wantFresh: 0},
		{name: "stale cache, reinstall elsewhere", cached: "old", current: "new", signWith: "new", wantOK: true, wantFresh: 1},
		{name: "wrong secret, same after fresh lookup", cached: "", current: "new", signWith: "forged", wantFresh: 1,
			wantReason: "invalid signature"},
		{name: "stale cache, token for neither", cached: "old", current: "new", signWith: "forged", wantFresh: 1,
			wantReason: "invalid signature"},
		{name: "token signed with old secret after reinstall", cached: "old", current: "new", signWith: "old",
			wantOK: true, wantFresh: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := newFakeLookup()
			lookup.put(testTenant(tt.current))
			if tt.cached != "" {
				lookup.putStale(testTenant(tt.cached))
			}
			r := httptest.NewRequest("GET", panelPath+"?"+panelQuery+"&jwt="+signHS256(t, []byte(tt.signWith), symClaims(t)), nil)
			id, err := NewVerifier(lookup, WithClock(fixedClock)).Verify(context.Background(), r, testAppKey, testBasePath, QSHComputed)
			if tt.wantOK != (err == nil) {
				t.Fatalf("Verify error = %v, want ok=%v", err, tt.wantOK)
			}
			if err != nil {
				wantAuthError(t, err, tt.wantReason)
			} else if got := string(id.Tenant.SharedSecret); got != tt.signWith {
				t.Fatalf("identity carries secret %q, want %q", got, tt.signWith)
			}
			if got := lookup.fresh(); got != tt.wantFresh {
				t.Fatalf("fresh lookups = %d, want %d", got, tt.wantFresh)
			}
		})
	}
}

func TestVerifyFreshLookupFails(t *testing.T) {
	calls := 0
	lookup := lookupFunc(func(_ context.Context, _, _ string, fresh bool) (*tenant.Tenant, error) {
		calls++
		if fresh {
			return nil, errNotInstalled // uninstalled meanwhile
		}
		return testTenant("old"), nil
	})
	r := httptest.NewRequest("GET", panelPath+"?"+panelQuery+"&jwt="+signHS256(t, []byte("new"), symClaims(t)), nil)
	_, err := NewVerifier(lookup, WithClock(fixedClock)).Verify(context.Background(), r, testAppKey, testBasePath, QSHComputed)
	wantAuthError(t, err, "unknown issuer")
	if calls != 2 {
		t.Fatalf("lookups = %d, want 2", calls)
	}
}

func TestVerifyLeewayOption(t *testing.T) {
	lookup := newFakeLookup()
	lookup.put(testTenant("s"))
	c := symClaims(t)
	c["exp"] = fixedClock().Add(-5 * time.Second).Unix()
	r := httptest.NewRequest("GET", panelPath+"?"+panelQuery+"&jwt="+signHS256(t, []byte("s"), c), nil)
	_, err := NewVerifier(lookup, WithClock(fixedClock), WithLeeway(0)).Verify(context.Background(), r, testAppKey, testBasePath, QSHComputed)
	wantAuthError(t, err, "expired")
}

// loaderFunc adapts a function to tenant.Loader.
type loaderFunc func(ctx context.Context, appKey, clientKey string) (*tenant.Tenant, error)

func (f loaderFunc) TenantByClientKey(ctx context.Context, appKey, clientKey string) (*tenant.Tenant, error) {
	return f(ctx, appKey, clientKey)
}

// TestVerifyWithTenantCache runs the reinstall scenario against the real
// tenant.Cache: the cache still holds the old secret, the store the new one.
func TestVerifyWithTenantCache(t *testing.T) {
	now := fixedClock()
	secret := "old"
	loads := 0
	loader := loaderFunc(func(_ context.Context, appKey, clientKey string) (*tenant.Tenant, error) {
		loads++
		if appKey != testAppKey || clientKey != testClientKey {
			return nil, tenant.ErrNotFound
		}
		return testTenant(secret), nil
	})
	cache := tenant.NewCache(loader, tenant.WithClock(func() time.Time { return now }))
	v := NewVerifier(cache, WithClock(fixedClock))
	verify := func(sign string, claims jwt.MapClaims) error {
		r := httptest.NewRequest("GET", panelPath+"?"+panelQuery+"&jwt="+signHS256(t, []byte(sign), claims), nil)
		_, err := v.Verify(context.Background(), r, testAppKey, testBasePath, QSHComputed)
		return err
	}
	if err := verify("old", symClaims(t)); err != nil {
		t.Fatalf("first request: %v", err)
	}
	secret = "new" // reinstalled through another replica
	now = now.Add(5 * time.Second)
	if err := verify("new", symClaims(t)); err != nil {
		t.Fatalf("after reinstall: %v", err)
	}
	if loads != 2 {
		t.Fatalf("loads = %d, want 2 (initial + one fresh)", loads)
	}
	unknown := symClaims(t)
	unknown["iss"] = "client-unknown"
	wantAuthError(t, verify("new", unknown), "unknown issuer")
}

// BenchmarkVerify measures one iframe-load verification with the tenant
// already in an in-memory lookup (the cached path every request takes).
func BenchmarkVerify(b *testing.B) {
	lookup := newFakeLookup()
	lookup.put(testTenant("a-shared-secret-of-realistic-length-0123456789abcdef"))
	c := symClaims(b)
	c["context"] = map[string]any{"user": map[string]any{"accountId": "5be24ad8b1653240376955d2"}}
	tok := signHS256(b, []byte("a-shared-secret-of-realistic-length-0123456789abcdef"), c)
	r, err := http.NewRequest("GET", "https://keyline.example.com"+panelPath+"?"+panelQuery+"&jwt="+tok, nil)
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier(lookup, WithClock(fixedClock))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, r, testAppKey, testBasePath, QSHComputed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyTenantCache is BenchmarkVerify through the real tenant.Cache
// (warm), i.e. what a request costs in production minus routing.
func BenchmarkVerifyTenantCache(b *testing.B) {
	const secret = "a-shared-secret-of-realistic-length-0123456789abcdef"
	var loads atomic.Int64
	loader := loaderFunc(func(context.Context, string, string) (*tenant.Tenant, error) {
		loads.Add(1)
		return testTenant(secret), nil
	})
	cache := tenant.NewCache(loader, tenant.WithClock(fixedClock))
	tok := signHS256(b, []byte(secret), symClaims(b))
	r, err := http.NewRequest("GET", "https://keyline.example.com"+panelPath+"?"+panelQuery+"&jwt="+tok, nil)
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier(cache, WithClock(fixedClock))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, r, testAppKey, testBasePath, QSHComputed); err != nil {
			b.Fatal(err)
		}
	}
	// The loader stands for the database: only the first, cold lookup may reach it.
	b.ReportMetric(float64(loads.Load()-1)/float64(b.N), "db-queries/op")
	if loads.Load() > 1 {
		b.Fatalf("tenant loaded %d times; a warm cache must not query the database", loads.Load())
	}
}
