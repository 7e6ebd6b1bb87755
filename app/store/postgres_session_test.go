package store

import "testing"

func TestWithSessionDefaults(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u@h:5432/db", "postgres://u@h:5432/db?jit=off"},
		{"postgresql://u@h/db?sslmode=disable", "postgresql://u@h/db?jit=off&sslmode=disable"},
		// The operator's own choice stands.
		{"postgres://u@h/db?jit=on", "postgres://u@h/db?jit=on"},
		// Keyword form is passed through untouched.
		{"host=h dbname=db", "host=h dbname=db"},
	}
	for _, tt := range tests {
		if got := withSessionDefaults(tt.in); got != tt.want {
			t.Errorf("withSessionDefaults(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
