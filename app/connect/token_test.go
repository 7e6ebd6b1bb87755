package connect

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestExtractToken(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		method      string
		target      string
		header      []string // Authorization values
		contentType string
		body        string
		want        string
		wantReason  string // "" means success
		wantNoToken bool
	}{
		{name: "query", method: "GET", target: "/p?a=1&jwt=tok.en.x", want: "tok.en.x"},
		{name: "query escaped", method: "GET", target: "/p?jwt=a%2Eb.c", want: "a.b.c"},
		{name: "header", method: "POST", target: "/p", header: []string{"JWT tok.en.x"}, want: "tok.en.x"},
		{name: "form", method: "POST", target: "/p", contentType: form, body: "a=1&jwt=tok.en.x", want: "tok.en.x"},
		{name: "form with charset", method: "PUT", target: "/p", contentType: form + "; charset=utf-8", body: "jwt=t.o.k", want: "t.o.k"},
		{name: "json body ignored", method: "POST", target: "/p", header: []string{"JWT h.h.h"},
			contentType: "application/json", body: "jwt=b.b.b", want: "h.h.h"},
		{name: "form body on GET ignored", method: "GET", target: "/p", header: []string{"JWT h.h.h"},
			contentType: form, body: "jwt=b.b.b", want: "h.h.h"},
		{name: "none", method: "GET", target: "/p?a=1", wantReason: "missing token", wantNoToken: true},
		{name: "query and header", method: "GET", target: "/p?jwt=q.q.q", header: []string{"JWT h.h.h"},
			wantReason: "more than one place"},
		{name: "query and form", method: "POST", target: "/p?jwt=q.q.q", contentType: form, body: "jwt=b.b.b",
			wantReason: "more than one place"},
		{name: "form and header", method: "POST", target: "/p", header: []string{"JWT h.h.h"}, contentType: form,
			body: "jwt=b.b.b", wantReason: "more than one place"},
		{name: "two query tokens", method: "GET", target: "/p?jwt=a.a.a&jwt=b.b.b", wantReason: "malformed query"},
		{name: "two form tokens", method: "POST", target: "/p", contentType: form, body: "jwt=a.a.a&jwt=b.b.b",
			wantReason: "malformed form"},
		{name: "header without prefix", method: "GET", target: "/p", header: []string{"tok.en.x"},
			wantReason: "not a Connect JWT"},
		{name: "bearer header", method: "GET", target: "/p", header: []string{"Bearer tok.en.x"},
			wantReason: "not a Connect JWT"},
		{name: "lowercase scheme", method: "GET", target: "/p", header: []string{"jwt tok.en.x"},
			wantReason: "not a Connect JWT"},
		{name: "scheme without space", method: "GET", target: "/p", header: []string{"JWTtok.en.x"},
			wantReason: "not a Connect JWT"},
		{name: "non-JWT header next to query token", method: "GET", target: "/p?jwt=q.q.q",
			header: []string{"Basic Zm9vOmJhcg=="}, wantReason: "not a Connect JWT"},
		{name: "two headers", method: "GET", target: "/p", header: []string{"JWT a.a.a", "JWT b.b.b"},
			wantReason: "not a Connect JWT"},
		{name: "empty query token", method: "GET", target: "/p?jwt=", wantReason: "empty token"},
		{name: "empty header token", method: "GET", target: "/p", header: []string{"JWT "}, wantReason: "empty token"},
		{name: "invalid escape in query", method: "GET", target: "/p?jwt=a.b.c&x=%zz", wantReason: "malformed query"},
		{name: "oversized token", method: "GET", target: "/p", header: []string{"JWT " + strings.Repeat("a", maxTokenLen+1)},
			wantReason: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := httptest.NewRequest(tt.method, tt.target, body)
			for _, h := range tt.header {
				r.Header.Add("Authorization", h)
			}
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			got, err := ExtractToken(r)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("ExtractToken: %v", err)
				}
				if got != tt.want {
					t.Fatalf("token = %q, want %q", got, tt.want)
				}
			} else {
				wantAuthError(t, err, tt.wantReason)
				if errors.Is(err, ErrNoToken) != tt.wantNoToken {
					t.Fatalf("errors.Is(err, ErrNoToken) = %v, want %v", !tt.wantNoToken, tt.wantNoToken)
				}
				if strings.Contains(err.Error(), "tok.en.x") {
					t.Fatalf("error %q leaks the token", err)
				}
			}
			// The handler must still see the whole body.
			if r.Body != nil {
				rest, _ := io.ReadAll(r.Body)
				if string(rest) != tt.body {
					t.Fatalf("body after ExtractToken = %q, want %q", rest, tt.body)
				}
			}
		})
	}
}

func TestExtractTokenFormAlreadyParsed(t *testing.T) {
	r := httptest.NewRequest("POST", "/p", strings.NewReader("jwt=f.f.f"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := r.ParseForm(); err != nil {
		t.Fatal(err)
	}
	got, err := ExtractToken(r)
	if err != nil || got != "f.f.f" {
		t.Fatalf("ExtractToken = %q, %v; want f.f.f", got, err)
	}
}

func TestExtractTokenOversizedForm(t *testing.T) {
	body := "jwt=a.b.c&pad=" + strings.Repeat("x", maxFormBody)
	r := httptest.NewRequest("POST", "/p", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err := ExtractToken(r)
	wantAuthError(t, err, "malformed form body")
	rest, _ := io.ReadAll(r.Body)
	if string(rest) != body {
		t.Fatalf("body not restored: got %d bytes, want %d", len(rest), len(body))
	}
}

func FuzzExtractToken(f *testing.F) {
	f.Add("POST", "jwt=a.b.c", "", "", "")
	f.Add("POST", "", "JWT a.b.c", "application/x-www-form-urlencoded", "x=1")
	f.Add("POST", "x=%zz", "", "application/x-www-form-urlencoded", "jwt=a.b.c")
	f.Add("PUT", "", "", "application/x-www-form-urlencoded; charset=utf-8", "jwt=a.b.c&jwt=d")
	f.Add("GET", "jwt=", "Bearer x", "text/plain", "jwt=x")
	f.Add("PATCH", "a;b=c&jwt=x.y.z", "JWT ", "application/x-www-form-urlencoded", "%")
	f.Fuzz(func(t *testing.T, method, rawQuery, auth, contentType, body string) {
		r := &http.Request{
			Method: method,
			URL:    &url.URL{Path: "/p", RawQuery: rawQuery},
			Header: http.Header{},
			Body:   io.NopCloser(strings.NewReader(body)),
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		tok, err := ExtractToken(r)
		if err != nil {
			var ae *AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *AuthError", err)
			}
		} else {
			if tok == "" || len(tok) > maxTokenLen {
				t.Fatalf("accepted token of length %d", len(tok))
			}
			qt, inQuery, _ := queryToken(rawQuery)
			bt, inBody, _ := queryToken(body)
			fromHeader := auth == authPrefix+tok
			if !fromHeader && !(inQuery && qt == tok) && !(inBody && bt == tok) {
				t.Fatalf("token %q came from nowhere", tok)
			}
		}
		rest, _ := io.ReadAll(r.Body)
		if string(rest) != body {
			t.Fatalf("body changed: %q -> %q", body, rest)
		}
	})
}
