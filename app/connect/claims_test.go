package connect

import (
	"encoding/json"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestClaimsAccountID(t *testing.T) {
	tests := []struct {
		name    string
		sub     string
		context string
		want    string
	}{
		{"context user wins", "sub-id", `{"user":{"accountId":"ctx-id","userKey":"k"}}`, "ctx-id"},
		{"sub when context empty", "sub-id", `{}`, "sub-id"},
		{"sub when no context", "sub-id", ``, "sub-id"},
		{"sub when user has no accountId", "sub-id", `{"user":{"userKey":"admin"}}`, "sub-id"},
		{"sub when context not an object", "sub-id", `"weird"`, "sub-id"},
		{"sub when user not an object", "sub-id", `{"user":5}`, "sub-id"},
		{"empty without user", "", `{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: tt.sub}, Context: json.RawMessage(tt.context)}
			if got := c.AccountID(); got != tt.want {
				t.Fatalf("AccountID = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClaimsJSONRoundTrip(t *testing.T) {
	in := `{"iss":"ck","sub":"acc","exp":1700000180,"iat":1700000000,"qsh":"context-qsh","context":{"user":{"accountId":"a1"}}}`
	var c Claims
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "ck" || c.QSH != ContextQSH || c.AccountID() != "a1" || c.ExpiresAt.Unix() != 1700000180 {
		t.Fatalf("decoded %+v", c)
	}
	out, err := json.Marshal(Claims{QSH: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"qsh":"x"}` {
		t.Fatalf("outbound claims JSON = %s", out)
	}
}

func TestAuthError(t *testing.T) {
	inner := ErrNoToken
	e := &AuthError{Reason: "missing token", Err: inner}
	if e.Error() != "unauthorized: missing token: no token in request" || e.Unwrap() != inner {
		t.Fatalf("Error() = %q", e.Error())
	}
	if (&AuthError{Reason: "r"}).Error() != "unauthorized: r" {
		t.Fatal("Error() without cause")
	}
}
