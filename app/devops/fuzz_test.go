package devops

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzExtractIssueKeys(f *testing.F) {
	for _, s := range []string{
		"OPS-1", "jra-123 [J2-123] (A1-9) #MY_PROJ-42", "22-123 JRA 123 OPS-01", "CVE-2024-1234 CVE-2024",
		"feature/OPS-1-login", "修复OPS-123的问题", "ÖPS-1 O\u0308PS-2", "<script>alert('OPS-1')</script>",
		strings.Repeat("A_", 200) + "-1", strings.Repeat("A", 257) + "-1", "OPS-123456789012345678",
		"\xffOPS-1\xfe", "x_OPS-1", "OPS-1-2-3",
	} {
		f.Add(s, "")
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "issuekeys", "*.txt"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(string(b), "ops-1")
		}
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		keys := ExtractIssueKeys(a, b)
		if len(keys) > MaxIssueKeysPerEntity {
			t.Fatalf("%d keys", len(keys))
		}
		upper := asciiUpper(a) + "\x00" + asciiUpper(b)
		seen := map[string]bool{}
		for _, k := range keys {
			if !ValidIssueKey(k) {
				t.Fatalf("invalid key %q", k)
			}
			if len(ProjectOf(k)) < 2 {
				t.Fatalf("single-letter project in %q", k)
			}
			if seen[k] {
				t.Fatalf("duplicate key %q", k)
			}
			seen[k] = true
			if !strings.Contains(upper, k) {
				t.Fatalf("key %q is not in the input", k)
			}
		}
		if ref := referenceIssueKeys(a, b); !slices.Equal(keys, ref) {
			t.Fatalf("ExtractIssueKeys = %q, reference = %q", keys, ref)
		}
		// Keys written out again are found again, in the same order.
		if again := ExtractIssueKeys(strings.Join(keys, " ")); !slices.Equal(again, keys) {
			t.Fatalf("re-extracting %q gave %q", keys, again)
		}
	})
}

// asciiUpper upper-cases ASCII letters only, keeping byte offsets.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

func FuzzClassifyEnvironment(f *testing.F) {
	seeds := []struct{ name, provider, glob string }{
		{"prod-eu", "", "prod-*"},
		{"pre-prod", "", "*-stable"},
		{"qa1", "", ""},
		{"review/feature-x", "", "review/**"},
		{"PreProd", "unmapped", "{a,b}{c,d}"},
		{"Próduction", "", "!dev*"},
		{"stg2", "production", "[p"},
		{"UATServer", "other", "\\"},
		{"\xff\xfe", "", "**"},
		{strings.Repeat("prod-", 300), "", strings.Repeat("*", 200)},
	}
	for _, s := range seeds {
		f.Add(s.name, s.provider, s.glob)
	}
	f.Fuzz(func(t *testing.T, name, provider, glob string) {
		rules := EnvironmentRules{EnvironmentStaging: {glob}}
		typ, basis := ClassifyEnvironment(name, EnvironmentType(provider), rules)
		if !typ.Valid() || !basis.Valid() {
			t.Fatalf("invalid result %q, %q", typ, basis)
		}
		if (typ == EnvironmentUnmapped) != (basis == BasisUnmapped) {
			t.Fatalf("type %q with basis %q", typ, basis)
		}
		providerSays := EnvironmentType(provider).Valid() && provider != string(EnvironmentUnmapped)
		switch basis {
		case BasisProvider:
			if !providerSays || typ != EnvironmentType(provider) {
				t.Fatalf("provider basis for provider %q", provider)
			}
		case BasisRule:
			if providerSays || typ != EnvironmentStaging || rules.Validate() != nil {
				t.Fatalf("rule basis with provider %q, glob %q", provider, glob)
			}
		case BasisHeuristic:
			if providerSays || typ != GuessEnvironmentType(name) {
				t.Fatalf("heuristic basis disagrees with GuessEnvironmentType")
			}
		}
		again, againBasis := ClassifyEnvironment(name, EnvironmentType(provider), rules)
		if again != typ || againBasis != basis {
			t.Fatal("not deterministic")
		}
		// Neither rules nor the heuristic care about the case of an ASCII name.
		if isASCII(name) && isASCII(glob) {
			lo, loBasis := ClassifyEnvironment(strings.ToLower(name), EnvironmentType(provider), rules)
			up, upBasis := ClassifyEnvironment(strings.ToUpper(name), EnvironmentType(provider), rules)
			if lo != up || loBasis != upBasis {
				t.Fatalf("%q: lower %s/%s, upper %s/%s", name, lo, loBasis, up, upBasis)
			}
		}
		for _, w := range environmentWords(name) {
			if w == "" || !isASCII(w) || strings.ToLower(w) != w {
				t.Fatalf("bad word %q from %q", w, name)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
