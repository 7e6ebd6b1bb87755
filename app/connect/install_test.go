package connect

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var installApp = App{Key: "com.keyline.jira", BaseURL: "https://keyline.example.com/jira", BasePath: "/jira"}

func installClaims(t testing.TB, event string) jwt.MapClaims {
	now := fixedClock()
	return jwt.MapClaims{
		"iss":     testClientKey,
		"sub":     "admin-account",
		"aud":     installApp.BaseURL,
		"iat":     now.Unix(),
		"exp":     now.Add(180 * time.Second).Unix(),
		"qsh":     mustQSH(t, "POST", "/jira/"+event, "", "/jira"),
		"context": map[string]any{},
	}
}

func installPayload(event string) map[string]any {
	p := map[string]any{
		"eventType":      event,
		"key":            installApp.Key,
		"clientKey":      testClientKey,
		"baseUrl":        "https://acme.atlassian.net",
		"displayUrl":     "https://jira.acme.example",
		"productType":    "jira",
		"description":    "Atlassian JIRA at https://acme.atlassian.net ",
		"serverVersion":  100104, // a number: decoded leniently
		"pluginsVersion": "1.415.0",
		"cloudId":        "cloud-1",
		"installationId": "ari:cloud:ecosystem::installation/uuid-1",
		"oauthClientId":  "oauth-1",
	}
	if event == EventInstalled {
		p["sharedSecret"] = "fresh-shared-secret"
	}
	return p
}

func TestVerifyInstall(t *testing.T) {
	priv := loadPrivateKey(t, "install_key.pem")
	other := loadPrivateKey(t, "other_key.pem")
	ks := newKeyServer(t)
	ks.set("/kid-1", string(publicPEM(t, &priv.PublicKey)))
	ks.setStatus("/kid-down", http.StatusBadGateway)
	allowed := []string{".atlassian.net", "*.jira.com"}

	type tokenFunc func(t *testing.T, c jwt.MapClaims) string
	rs := func(key *rsa.PrivateKey, kid string) tokenFunc {
		return func(t *testing.T, c jwt.MapClaims) string { return signRS256(t, key, kid, c) }
	}
	tests := []struct {
		name       string
		event      string // route event; default installed
		claims     func(c jwt.MapClaims)
		payload    func(p map[string]any)
		body       []byte // overrides payload
		token      tokenFunc
		app        *App
		wantReason string
		wantKSE    bool
	}{
		{name: "valid installed"},
		{name: "valid uninstalled", event: EventUninstalled},
		{name: "aud with trailing slash passes", claims: func(c jwt.MapClaims) { c["aud"] = installApp.BaseURL + "/" }},
		{name: "app baseUrl with trailing slash passes", app: &App{Key: installApp.Key, BaseURL: installApp.BaseURL + "/", BasePath: "/jira"}},
		{name: "aud as array passes", claims: func(c jwt.MapClaims) { c["aud"] = []string{installApp.BaseURL} }},
		{name: "jira.com host passes", payload: func(p map[string]any) { p["baseUrl"] = "https://acme.jira.com" }},
		{name: "confluence wiki baseUrl passes", payload: func(p map[string]any) { p["baseUrl"] = "https://acme.atlassian.net/wiki" }},
		{name: "no displayUrl passes", payload: func(p map[string]any) { delete(p, "displayUrl") }},
		{name: "HS256 with shared secret", token: func(t *testing.T, c jwt.MapClaims) string {
			return signHS256(t, []byte("fresh-shared-secret"), c)
		}, wantReason: "not signed with RS256"},
		{name: "HS256 with public key as HMAC key (alg confusion)", token: func(t *testing.T, c jwt.MapClaims) string {
			return signRaw(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "kid-1"}, c, publicPEM(t, &priv.PublicKey))
		}, wantReason: "not signed with RS256"},
		{name: "alg none", token: func(t *testing.T, c jwt.MapClaims) string { return signNone(t, c) },
			wantReason: "not signed with RS256"},
		{name: "missing kid", token: rs(priv, ""), wantReason: "no key id"},
		{name: "unknown kid 404", token: rs(priv, "kid-unknown"), wantReason: "unknown install key"},
		{name: "kid with ..", token: rs(priv, "../kid-1"), wantReason: "unknown install key"},
		{name: "key server down", token: rs(priv, "kid-down"), wantReason: "key server unavailable", wantKSE: true},
		{name: "signed by another key", token: rs(other, "kid-1"), wantReason: "invalid signature"},
		{name: "aud mismatch", claims: func(c jwt.MapClaims) { c["aud"] = "https://other-app.example.com/jira" },
			wantReason: "audience"},
		{name: "aud of sibling app", claims: func(c jwt.MapClaims) { c["aud"] = "https://keyline.example.com/confluence" },
			wantReason: "audience"},
		{name: "aud prefix only", claims: func(c jwt.MapClaims) { c["aud"] = "https://keyline.example.com" },
			wantReason: "audience"},
		{name: "aud missing", claims: func(c jwt.MapClaims) { delete(c, "aud") }, wantReason: "audience"},
		{name: "wrong qsh", claims: func(c jwt.MapClaims) { c["qsh"] = mustQSH(t, "POST", "/jira/uninstalled", "", "/jira") },
			wantReason: "qsh does not match"},
		{name: "context qsh", claims: func(c jwt.MapClaims) { c["qsh"] = ContextQSH }, wantReason: "context tokens"},
		{name: "missing qsh", claims: func(c jwt.MapClaims) { delete(c, "qsh") }, wantReason: "no qsh"},
		{name: "iss not clientKey", claims: func(c jwt.MapClaims) { c["iss"] = "client-2" }, wantReason: "does not match"},
		{name: "body clientKey not iss", payload: func(p map[string]any) { p["clientKey"] = "client-2" }, wantReason: "does not match"},
		{name: "key not app key", payload: func(p map[string]any) { p["key"] = "com.evil.app" }, wantReason: "does not match"},
		{name: "eventType mismatch", payload: func(p map[string]any) { p["eventType"] = EventUninstalled },
			wantReason: "does not match"},
		{name: "installed without sharedSecret", payload: func(p map[string]any) { p["sharedSecret"] = "" },
			wantReason: "does not match"},
		{name: "host not allowed", payload: func(p map[string]any) { p["baseUrl"] = "https://acme.evil.com" },
			wantReason: "baseUrl not allowed"},
		{name: "suffix without dot boundary", payload: func(p map[string]any) { p["baseUrl"] = "https://evilatlassian.net" },
			wantReason: "baseUrl not allowed"},
		{name: "bare suffix", payload: func(p map[string]any) { p["baseUrl"] = "https://atlassian.net" },
			wantReason: "baseUrl not allowed"},
		{name: "suffix then other domain", payload: func(p map[string]any) { p["baseUrl"] = "https://acme.atlassian.net.evil.com" },
			wantReason: "baseUrl not allowed"},
		{name: "http baseUrl", payload: func(p map[string]any) { p["baseUrl"] = "http://acme.atlassian.net" },
			wantReason: "baseUrl not allowed"},
		{name: "baseUrl with userinfo", payload: func(p map[string]any) { p["baseUrl"] = "https://evil.com@acme.atlassian.net" },
			wantReason: "baseUrl not allowed"},
		{name: "baseUrl with port", payload: func(p map[string]any) { p["baseUrl"] = "https://acme.atlassian.net:8443" },
			wantReason: "baseUrl not allowed"},
		{name: "javascript displayUrl", payload: func(p map[string]any) { p["displayUrl"] = "javascript:alert(1)" },
			wantReason: "displayUrl not allowed"},
		{name: "expired", claims: func(c jwt.MapClaims) {
			c["iat"] = fixedClock().Add(-300 * time.Second).Unix()
			c["exp"] = fixedClock().Add(-31 * time.Second).Unix()
		}, wantReason: "expired"},
		{name: "missing exp", claims: func(c jwt.MapClaims) { delete(c, "exp") }, wantReason: "no exp"},
		{name: "iat in future", claims: func(c jwt.MapClaims) { c["iat"] = fixedClock().Add(time.Minute).Unix() },
			wantReason: "issued in the future"},
		{name: "missing iat", claims: func(c jwt.MapClaims) { delete(c, "iat") }, wantReason: "no iat"},
		{name: "malformed JSON", body: []byte(`{"eventType":"installed",`), wantReason: "malformed lifecycle payload"},
		{name: "clientKey not a string", payload: func(p map[string]any) { p["clientKey"] = 42 },
			wantReason: "malformed lifecycle payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			event := tt.event
			if event == "" {
				event = EventInstalled
			}
			app := installApp
			if tt.app != nil {
				app = *tt.app
			}
			claims := installClaims(t, event)
			if tt.claims != nil {
				tt.claims(claims)
			}
			payload := installPayload(event)
			if tt.payload != nil {
				tt.payload(payload)
			}
			body := tt.body
			if body == nil {
				var err error
				if body, err = json.Marshal(payload); err != nil {
					t.Fatal(err)
				}
			}
			token := rs(priv, "kid-1")
			if tt.token != nil {
				token = tt.token
			}
			r := httptest.NewRequest("POST", "/jira/"+event, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "JWT "+token(t, claims))

			v := NewInstallVerifier(NewKeyFetcher(ks.URL, ks.Client()), allowed, WithClock(fixedClock))
			got, err := v.VerifyInstall(context.Background(), r, body, app, event)
			if tt.wantReason != "" {
				wantAuthError(t, err, tt.wantReason)
				var kse *KeyServerError
				if errors.As(err, &kse) != tt.wantKSE {
					t.Fatalf("KeyServerError present = %v, want %v", !tt.wantKSE, tt.wantKSE)
				}
				if bytes.Contains([]byte(err.Error()), []byte("fresh-shared-secret")) {
					t.Fatal("error leaks the shared secret")
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifyInstall: %v", err)
			}
			if got.ClientKey != testClientKey || got.EventType != event || got.ServerVersion != "100104" {
				t.Fatalf("payload = %+v", got)
			}
			if event == EventInstalled && got.SharedSecret != "fresh-shared-secret" {
				t.Fatal("shared secret not returned")
			}
		})
	}
}

// TestVerifyInstallFetchesKeyOnce checks that install verification goes
// through the fetcher's cache.
func TestVerifyInstallFetchesKeyOnce(t *testing.T) {
	priv := loadPrivateKey(t, "install_key.pem")
	ks := newKeyServer(t)
	ks.set("/kid-1", string(publicPEM(t, &priv.PublicKey)))
	v := NewInstallVerifier(NewKeyFetcher(ks.URL, ks.Client()), []string{"atlassian.net"}, WithClock(fixedClock))
	body, _ := json.Marshal(installPayload(EventInstalled))
	for range 2 {
		r := httptest.NewRequest("POST", "/jira/installed", bytes.NewReader(body))
		r.Header.Set("Authorization", "JWT "+signRS256(t, priv, "kid-1", installClaims(t, EventInstalled)))
		if _, err := v.VerifyInstall(context.Background(), r, body, installApp, EventInstalled); err != nil {
			t.Fatal(err)
		}
	}
	if got := ks.count("/kid-1"); got != 1 {
		t.Fatalf("key fetched %d times, want 1", got)
	}
}

func TestVerifyInstallLeewayOption(t *testing.T) {
	priv := loadPrivateKey(t, "install_key.pem")
	ks := newKeyServer(t)
	ks.set("/kid-1", string(publicPEM(t, &priv.PublicKey)))
	c := installClaims(t, EventInstalled)
	c["exp"] = fixedClock().Add(-5 * time.Second).Unix()
	body, _ := json.Marshal(installPayload(EventInstalled))
	for _, tt := range []struct {
		leeway time.Duration
		ok     bool
	}{{defaultLeeway, true}, {0, false}} {
		r := httptest.NewRequest("POST", "/jira/installed", bytes.NewReader(body))
		r.Header.Set("Authorization", "JWT "+signRS256(t, priv, "kid-1", c))
		v := NewInstallVerifier(NewKeyFetcher(ks.URL, ks.Client()), []string{".atlassian.net"},
			WithClock(fixedClock), WithLeeway(tt.leeway))
		if _, err := v.VerifyInstall(context.Background(), r, body, installApp, EventInstalled); (err == nil) != tt.ok {
			t.Fatalf("leeway %v: err = %v, want ok=%v", tt.leeway, err, tt.ok)
		}
	}
}

func TestNewInstallVerifierIgnoresEmptySuffix(t *testing.T) {
	v := NewInstallVerifier(nil, []string{"", "*", ".", "  "})
	if err := v.checkProductURL("https://anything.example.com", true); err == nil {
		t.Fatal("empty suffixes admitted a host")
	}
}
