package connect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// App identifies one of Keyline's Connect apps as its descriptor does.
type App struct {
	Key      string // descriptor key, e.g. "com.keyline.jira"
	BaseURL  string // descriptor baseUrl, e.g. https://keyline.example.com/jira
	BasePath string // path part of BaseURL, e.g. "/jira"
}

// InstallVerifier verifies the RS256-signed installed and uninstalled
// callbacks (spec §3.3). It is safe for concurrent use.
type InstallVerifier struct {
	keys     *KeyFetcher
	suffixes []string
	leeway   time.Duration
	now      func() time.Time
	parser   *jwt.Parser
}

// NewInstallVerifier returns a verifier that fetches keys through keys and
// accepts product baseUrls whose host ends in one of allowedHostSuffixes.
// Suffixes may be written ".atlassian.net", "atlassian.net" or
// "*.atlassian.net"; all mean "a subdomain of atlassian.net", so neither
// "atlassian.net" itself nor "evilatlassian.net" matches.
func NewInstallVerifier(keys *KeyFetcher, allowedHostSuffixes []string, opts ...InstallOption) *InstallVerifier {
	v := &InstallVerifier{keys: keys, leeway: defaultLeeway, now: time.Now}
	for _, s := range allowedHostSuffixes {
		s = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "*"))
		s = "." + strings.TrimPrefix(s, ".")
		// An empty suffix would admit every host.
		if s != "." {
			v.suffixes = append(v.suffixes, s)
		}
	}
	for _, o := range opts {
		o.applyInstall(v)
	}
	v.parser = newParser(jwt.SigningMethodRS256.Alg(), v.leeway, v.now)
	return v
}

// VerifyInstall authenticates an installed or uninstalled callback and
// returns its payload. body is the request body, already read by the caller
// (the token does not cover it, but iss must match its clientKey). eventType
// is the route's event (EventInstalled or EventUninstalled).
//
// Every failure is an *AuthError. When the key server could not be asked, the
// AuthError wraps a *KeyServerError: answer 503 for it if you prefer the
// product to see a transient failure rather than a rejection.
func (v *InstallVerifier) VerifyInstall(ctx context.Context, r *http.Request, body []byte, app App, eventType string) (*LifecyclePayload, error) {
	raw, err := ExtractToken(r)
	if err != nil {
		return nil, err
	}
	var unverified Claims
	tok, _, err := v.parser.ParseUnverified(raw, &unverified)
	if err != nil {
		return nil, authErr("malformed token", err)
	}
	if tok.Method != jwt.SigningMethodRS256 {
		return nil, authErr("install token is not signed with RS256", fmt.Errorf("alg %q", tok.Method.Alg()))
	}
	kid, _ := tok.Header["kid"].(string)
	if kid == "" {
		return nil, authErr("install token has no key id", nil)
	}
	key, err := v.keys.Key(ctx, kid)
	if err != nil {
		if kse := (*KeyServerError)(nil); errors.As(err, &kse) {
			return nil, authErr("install key server unavailable", err)
		}
		return nil, authErr("unknown install key", err)
	}

	claims := &Claims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return key, nil }); err != nil {
		return nil, tokenError(err)
	}
	if claims.IssuedAt == nil {
		return nil, authErr("token has no iat", nil)
	}
	if !audienceMatches(claims.Audience, app.BaseURL) {
		return nil, authErr("token audience is not this app", fmt.Errorf("aud %q, want %q", []string(claims.Audience), app.BaseURL))
	}
	if err := checkQSH(claims.QSH, r, app.BasePath, QSHComputed); err != nil {
		return nil, err
	}

	p, err := ParseLifecyclePayload(body)
	if err != nil {
		return nil, authErr("malformed lifecycle payload", err)
	}
	if err := p.Check(app.Key, eventType, claims.Issuer); err != nil {
		return nil, authErr("lifecycle payload does not match the token or route", err)
	}
	if err := v.checkProductURL(p.BaseURL, true); err != nil {
		return nil, authErr("product baseUrl not allowed", err)
	}
	if p.DisplayURL != "" {
		// A custom domain cannot be held to the host suffixes, but it ends up
		// in links shown to people, so it must at least be plain https.
		if err := v.checkProductURL(p.DisplayURL, false); err != nil {
			return nil, authErr("product displayUrl not allowed", err)
		}
	}
	return p, nil
}

// audienceMatches compares each aud value with the app's baseUrl, ignoring
// one trailing slash on either side (spec §9.3).
func audienceMatches(aud jwt.ClaimStrings, baseURL string) bool {
	want := strings.TrimSuffix(baseURL, "/")
	if want == "" {
		return false
	}
	for _, a := range aud {
		if strings.TrimSuffix(a, "/") == want {
			return true
		}
	}
	return false
}

// checkProductURL requires an absolute https URL without credentials, port,
// query or fragment; with checkHost, its host must end in an allowed suffix.
func (v *InstallVerifier) checkProductURL(raw string, checkHost bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("%q is not https", raw)
	case u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return fmt.Errorf("%q has parts a product URL never has", raw)
	case u.Hostname() == "":
		return fmt.Errorf("%q has no host", raw)
	}
	if !checkHost {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	for _, s := range v.suffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			return nil
		}
	}
	return fmt.Errorf("host %q is not under an allowed suffix", host)
}
