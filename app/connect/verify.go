package connect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyline/keyline/app/tenant"
)

// TenantLookup finds an installed tenant for (appKey, clientKey). fresh=true
// must bypass any cache: the Verifier asks once more with fresh=true when the
// HMAC check fails with a cached secret, so that a reinstall handled by
// another replica is picked up. Unknown or uninstalled tenants are
// tenant.ErrNotFound (wrapped is fine).
type TenantLookup interface {
	Tenant(ctx context.Context, appKey, clientKey string, fresh bool) (*tenant.Tenant, error)
}

// Identity is what a verified request carries into handlers. Every query a
// handler makes must be scoped by Tenant.ID from here, never by request data.
type Identity struct {
	Tenant    *tenant.Tenant
	AccountID string // "" when the token has no user
	Claims    *Claims
}

// Verifier checks product-issued HS256 tokens: iframe loads, webhooks, the
// enabled/disabled callbacks and context tokens. It is safe for concurrent use.
type Verifier struct {
	lookup TenantLookup
	leeway time.Duration
	now    func() time.Time
	parser *jwt.Parser
}

// NewVerifier returns a Verifier that finds tenants through lookup.
func NewVerifier(lookup TenantLookup, opts ...VerifierOption) *Verifier {
	v := &Verifier{lookup: lookup, leeway: defaultLeeway, now: time.Now}
	for _, o := range opts {
		o.applyVerifier(v)
	}
	v.parser = newParser(jwt.SigningMethodHS256.Alg(), v.leeway, v.now)
	return v
}

// newParser pins one algorithm and requires exp; iat is checked for the
// future here and for presence by the callers (the library cannot require it).
func newParser(alg string, leeway time.Duration, now func() time.Time) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{alg}),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
}

// Verify authenticates r as a request from the product for the app appKey
// mounted at basePath, following spec §4.3. mode decides which qsh the route
// accepts. Every failure is an *AuthError (answer 401). A lookup error other
// than tenant.ErrNotFound has the reason "tenant lookup failed" and stays
// wrapped, so a caller that prefers 503 for a store outage can tell it apart
// with errors.Is(err, tenant.ErrNotFound). Verify reads the body only through
// ExtractToken's form rule. Whether the tenant is enabled is left to the
// caller: the "enabled" callback itself arrives for a disabled tenant.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, appKey, basePath string, mode QSHMode) (*Identity, error) {
	raw, err := ExtractToken(r)
	if err != nil {
		return nil, err
	}
	var unverified Claims
	tok, _, err := v.parser.ParseUnverified(raw, &unverified)
	if err != nil {
		return nil, authErr("malformed token", err)
	}
	// Checked before any lookup so a wrong-algorithm token costs nothing and
	// can never reach a key function.
	if tok.Method != jwt.SigningMethodHS256 {
		return nil, authErr("token is not signed with HS256", fmt.Errorf("alg %q", tok.Method.Alg()))
	}
	if unverified.Issuer == "" {
		return nil, authErr("token has no issuer", nil)
	}

	t, err := v.tenant(ctx, appKey, unverified.Issuer, false)
	if err != nil {
		return nil, err
	}
	claims, err := v.parse(raw, t)
	if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		// The cached secret may predate a reinstall handled elsewhere.
		fresh, ferr := v.tenant(ctx, appKey, unverified.Issuer, true)
		if ferr != nil {
			return nil, ferr
		}
		if !bytes.Equal(fresh.SharedSecret, t.SharedSecret) {
			t = fresh
			claims, err = v.parse(raw, t)
		}
	}
	if err != nil {
		return nil, tokenError(err)
	}
	if claims.IssuedAt == nil {
		return nil, authErr("token has no iat", nil)
	}
	if err := checkQSH(claims.QSH, r, basePath, mode); err != nil {
		return nil, err
	}
	return &Identity{Tenant: t, AccountID: claims.AccountID(), Claims: claims}, nil
}

// tenant looks up the issuer and refuses anything that is not an installed
// tenant of this very app with a secret.
func (v *Verifier) tenant(ctx context.Context, appKey, clientKey string, fresh bool) (*tenant.Tenant, error) {
	t, err := v.lookup.Tenant(ctx, appKey, clientKey, fresh)
	if err != nil {
		reason := "unknown issuer"
		if !errors.Is(err, tenant.ErrNotFound) {
			// Still a 401 (the request is not authenticated), but the log
			// and the wrapped error show it was the store, not the caller.
			reason = "tenant lookup failed"
		}
		if reason != "unknown issuer" {
			err = fmt.Errorf("%w: %w", ErrTenantLookup, err)
		}
		return nil, authErr(reason, fmt.Errorf("look up tenant %q: %w", clientKey, err))
	}
	// Belt and braces against a lookup that returns the wrong or a stale row.
	if t == nil || !t.Installed || t.AppKey != appKey || t.ClientKey != clientKey {
		return nil, authErr("unknown issuer", fmt.Errorf("tenant %q is not installed for %q", clientKey, appKey))
	}
	if len(t.SharedSecret) == 0 {
		return nil, authErr("unknown issuer", fmt.Errorf("tenant %q has no shared secret", clientKey))
	}
	return t, nil
}

// parse verifies the HMAC and the time claims with the tenant's secret.
func (v *Verifier) parse(raw string, t *tenant.Tenant) (*Claims, error) {
	claims := &Claims{}
	_, err := v.parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) {
		return t.SharedSecret, nil
	})
	if err != nil {
		return nil, err
	}
	return claims, nil
}

// checkQSH enforces the route class of spec §4.5.
func checkQSH(got string, r *http.Request, basePath string, mode QSHMode) error {
	switch {
	case got == "":
		return authErr("token has no qsh", nil)
	case mode == QSHContext:
		if got != ContextQSH {
			return authErr("this endpoint accepts only context tokens", nil)
		}
		return nil
	case mode != QSHComputed:
		return authErr("unknown route class", fmt.Errorf("qsh mode %d", mode))
	case got == ContextQSH:
		return authErr("context tokens are not accepted on this endpoint", nil)
	}
	want, err := QSH(r.Method, r.URL.Path, r.URL.RawQuery, basePath)
	if err != nil {
		return authErr("malformed query string", err)
	}
	if got != want {
		return authErr("qsh does not match the request", nil)
	}
	return nil
}

// tokenError turns a golang-jwt error into a 401 with a readable reason.
func tokenError(err error) *AuthError {
	reason := "invalid token"
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason = "invalid signature"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		reason = "token has no exp"
	case errors.Is(err, jwt.ErrTokenExpired):
		reason = "token expired"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = "token issued in the future"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		reason = "token not valid yet"
	case errors.Is(err, jwt.ErrTokenMalformed):
		reason = "malformed token"
	}
	return authErr(reason, err)
}
