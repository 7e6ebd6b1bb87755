package store

import (
	"strings"
	"testing"

	"github.com/keyline/keyline/app/devops"
)

// slowCleanSHA is cleanSHA without its fast path.
func slowCleanSHA(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if !devops.ValidCommitSHA(s) {
		return ""
	}
	return s
}

// sanitizeSeeds are texts near the edges of both fast paths.
var sanitizeSeeds = []string{
	"", " ", "https://", "http://", "https:///", "https:///x", "ftp://host/x", "javascript:alert(1)",
	"https://github.com", "https://github.com/", "https://github.com/o/r/commit/0123abc",
	"http://github.com/o/r", "HTTPS://github.com/o/r", "Https://github.com/o/r", "https://GitHub.com/O/R",
	" https://github.com/o/r", "https://github.com/o/r ", "https://github.com:443/o/r", "https://u@github.com/o",
	"https://github.com/o/r?x=1", "https://github.com/o/r#f", "https://github.com/o%20r", "https://github.com/o r",
	"https://github.com//o", "https://github.com/./o/../r", "https://-/x", "https://./x", "https://a..b/x",
	"https://github.com/o_r/~x", "https://git_hub.com/x", "https://git~hub.com/x", "https://[::1]/x",
	"https://github.com/o:r", "https://github.com/o/r/tree/feature/a-b.c_d~e", "https://xn--bcher-kva.example/x",
	"https://bücher.example/x", "https://github.com/\x00", "https://github.com\\x", "http://1.2.3.4/x",
	"https://" + strings.Repeat("a", maxURLLen), "https://" + strings.Repeat("a", maxURLLen-8),
	"0123456", "012345", "0123abcdef", "0123ABCDEF", " 0123abc", "0123abc ", "0123abg", strings.Repeat("a", 64),
	strings.Repeat("a", 65), "0123456789abcdef0123456789abcdef01234567", "0123456789ABCDEF0123456789abcdef01234567",
	"\t0123456789abcdef0123456789abcdef01234567\n",
}

func TestCleanFastPathsMatchSlowPaths(t *testing.T) {
	for _, s := range sanitizeSeeds {
		if got, want := cleanURL(s), parsedURL(s); got != want {
			t.Errorf("cleanURL(%q) = %q, parsedURL gives %q", s, got, want)
		}
		if got, want := cleanSHA(s), slowCleanSHA(s); got != want {
			t.Errorf("cleanSHA(%q) = %q, without the fast path %q", s, got, want)
		}
	}
}

// FuzzCleanURLPlainMatchesParsed holds plainURL to its promise: whatever it
// lets through unparsed, parsedURL would have returned unchanged.
func FuzzCleanURLPlainMatchesParsed(f *testing.F) {
	for _, s := range sanitizeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if plainURL(s) && parsedURL(s) != s {
			t.Fatalf("plainURL(%q) but parsedURL gives %q", s, parsedURL(s))
		}
		if got, want := cleanSHA(s), slowCleanSHA(s); got != want {
			t.Fatalf("cleanSHA(%q) = %q, without the fast path %q", s, got, want)
		}
	})
}
