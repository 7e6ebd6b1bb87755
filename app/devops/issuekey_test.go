package devops

import (
	"strings"
	"testing"
)

func TestValidIssueKey(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"OPS-1", true},
		{"J2-123", true},
		{"MY_PROJ-42", true},
		{"A-9", true},
		{"ops-1", false},
		{"OPS-01", false},
		{"OPS-0", false},
		{"22-123", false},
		{"_A-1", false},
		{"OPS 1", false},
		{"OPS-", false},
		{"-1", false},
		{"OPS-1-2", false},
		{"OPS-1<script>", false},
		{"OPS-" + strings.Repeat("9", 19), false},
		{strings.Repeat("A", 299) + "-1", false},
		{"ÖPS-1", false},
	}
	for _, tt := range tests {
		if got := ValidIssueKey(tt.in); got != tt.want {
			t.Errorf("ValidIssueKey(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if ProjectOf("MY_PROJ-42") != "MY_PROJ" {
		t.Errorf("ProjectOf = %q", ProjectOf("MY_PROJ-42"))
	}
}
