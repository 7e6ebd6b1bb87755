package devops

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"
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

func TestExtractIssueKeys(t *testing.T) {
	long255 := strings.Repeat("A", 255)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		// The reference's accept and reject examples (GitHub for Jira).
		{"lower case", "jra-123", []string{"JRA-123"}},
		{"digit in project", "J2-123", []string{"J2-123"}},
		{"brackets", "[JRA-123]", []string{"JRA-123"}},
		{"parentheses", "(JRA-123)", []string{"JRA-123"}},
		{"hash", "#JRA-123", []string{"JRA-123"}},
		{"numeric project", "22-123", nil},
		{"space instead of dash", "JRA 123", nil},
		// Keyline's rules beyond it.
		{"underscore project", "MY_PROJ-1 done", []string{"MY_PROJ-1"}},
		{"underscore lower", "my_proj-1", []string{"MY_PROJ-1"}},
		{"trailing underscore", "OPS_-1", []string{"OPS_-1"}},
		{"leading zero", "OPS-01", nil},
		{"zero", "OPS-0", nil},
		{"zero then key", "OPS-0 OPS-10", []string{"OPS-10"}},
		{"single letter project", "B-52 bomber", nil},
		{"letter digit project", "A1-1", []string{"A1-1"}},
		{"digit before", "9OPS-1", nil},
		{"letter after", "OPS-1a", nil},
		{"digit run too long", "OPS-1234567890123456789", nil},
		{"18 digits", "OPS-123456789012345678", []string{"OPS-123456789012345678"}},
		{"double dash", "OPS--1", nil},
		{"dash after", "OPS-1-2", []string{"OPS-1"}},
		{"branch name", "feature/OPS-1-login", []string{"OPS-1"}},
		{"branch prefix dash", "release-ops-7", []string{"OPS-7"}},
		{"underscore before", "_OPS-1", []string{"OPS-1"}},
		{"joined by underscore", "fix_OPS-1", []string{"FIX_OPS-1"}},
		{"url", "https://acme.atlassian.net/browse/OPS-12?focusedCommentId=1#x", []string{"OPS-12"}},
		{"query param", "?issue=ops-3&x=OPS-4", []string{"OPS-3", "OPS-4"}},
		{"email", "ops-5@example.com", []string{"OPS-5"}},
		{"dedup in order", "OPS-2 ops-1 OPS-2 Ops-1 OPS-3", []string{"OPS-2", "OPS-1", "OPS-3"}},
		{"smart commit", "OPS-1 #comment fixed #time 1h #done", []string{"OPS-1"}},
		{"merge commit", "Merge pull request #12 from acme/OPS-7-fix\n\nOPS-8: tidy", []string{"OPS-7", "OPS-8"}},
		{"look-alikes pass (a KeyFilter drops them)", "UTF-8, SHA-256, x86-64", []string{"UTF-8", "SHA-256", "X86-64"}},
		{"version", "v1.2-3", nil},
		{"empty", "", nil},
		{"only punctuation", "-_-#[]()", nil},
		// CVE identifiers.
		{"cve", "fixes CVE-2024-1234", nil},
		{"cve lower", "cve-2021-44228 (log4shell)", nil},
		{"cve 1999", "CVE-1999-0001", nil},
		{"cve without suffix is a key", "CVE-2024", []string{"CVE-2024"}},
		{"cve trailing dash", "CVE-2024-", []string{"CVE-2024"}},
		{"cve not a year", "CVE-12-3", []string{"CVE-12"}},
		{"cve 18xx is not a year", "CVE-1899-1", []string{"CVE-1899"}},
		{"cve 5 digits is not a year", "CVE-20241-1", []string{"CVE-20241"}},
		{"other project with cve suffix", "MY_CVE-2024-1", []string{"MY_CVE-2024"}},
		{"cve then key", "CVE-2024-1234 and OPS-9", []string{"OPS-9"}},
		// Project key length.
		{"255-character project", long255 + "-1", []string{long255 + "-1"}},
		{"256-character project", "A" + long255 + "-1", nil},
		{"long run, key after underscore", strings.Repeat("A", 300) + "_OPS-1", []string{"OPS-1"}},
		{"long run, single letter after underscore", strings.Repeat("A", 300) + "_B-1", nil},
		{"long run, leftmost start in reach", strings.Repeat("A", 10) + "_" + strings.Repeat("B", 250) + "-1", []string{strings.Repeat("B", 250) + "-1"}},
		{"long run, start out of reach", "A_" + strings.Repeat("B", 253) + "_C_D-1", []string{"C_D-1"}},
		// Unicode.
		{"accented letter before", "ÖPS-1", nil},
		{"accented word", "éOPS-1", nil},
		{"combining mark before", "O\u0308PS-1", nil},
		{"accented letter after", "OPS-1é", nil},
		{"combining mark after", "OPS-1\u0301", nil},
		{"chinese around", "修复OPS-123的问题", []string{"OPS-123"}},
		{"japanese around", "バグOPS-4を修正", []string{"OPS-4"}},
		{"cyrillic before", "задачаOPS-1", []string{"OPS-1"}},
		{"em dash", "OPS-1—done", []string{"OPS-1"}},
		{"non-breaking space", "OPS-1\u00a0OPS-2", []string{"OPS-1", "OPS-2"}},
		{"fullwidth digits are not digits", "OPS-１", nil},
		{"kelvin sign is a Latin letter, not K", "\u212aEY-1", nil},
		{"invalid utf-8 around", "\xffOPS-1\xfe", []string{"OPS-1"}},
		// HTML and script text.
		{"script", "<script>alert('OPS-1')</script>", []string{"OPS-1"}},
		{"entities", "&lt;OPS-2&gt; &#OPS-3;", []string{"OPS-2", "OPS-3"}},
		{"attribute", `<a href="/browse/OPS-4" title="ops-5">`, []string{"OPS-4", "OPS-5"}},
		{"markdown link", "[OPS-6](https://x/browse/OPS-6)", []string{"OPS-6"}},
		{"nul bytes", "\x00OPS-7\x00", []string{"OPS-7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ExtractIssueKeys(tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ExtractIssueKeys(%q) = %q, want %q", abbrev(tt.in), got, tt.want)
			}
			if ref := referenceIssueKeys(tt.in); !slices.Equal(got, ref) {
				t.Errorf("reference disagrees: %q", ref)
			}
		})
	}
}

func TestExtractIssueKeysSeveralTexts(t *testing.T) {
	got := ExtractIssueKeys("OPS-1 fix", "feature/ops-2", "", "ops-1 and OPS-3")
	want := []string{"OPS-1", "OPS-2", "OPS-3"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if ExtractIssueKeys() != nil {
		t.Error("no texts should give nil")
	}
	// A key never spans two texts.
	if got := ExtractIssueKeys("OPS", "-1"); got != nil {
		t.Errorf("spanning texts: %q", got)
	}
}

func TestExtractIssueKeysCap(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= MaxIssueKeysPerEntity+100; i++ {
		fmt.Fprintf(&b, "OPS-%d OPS-1 ", i)
	}
	got := ExtractIssueKeys(b.String(), "LATE-1")
	if len(got) != MaxIssueKeysPerEntity {
		t.Fatalf("got %d keys, want %d", len(got), MaxIssueKeysPerEntity)
	}
	if got[0] != "OPS-1" || got[1] != "OPS-2" || got[MaxIssueKeysPerEntity-1] != fmt.Sprintf("OPS-%d", MaxIssueKeysPerEntity) {
		t.Errorf("wrong keys kept: first %q, second %q, last %q", got[0], got[1], got[len(got)-1])
	}
}

func TestExtractIssueKeysDoesNotPinInput(t *testing.T) {
	text := strings.Repeat("x ", 1000) + "OPS-1"
	got := ExtractIssueKeys(text)
	if len(got) != 1 {
		t.Fatalf("got %q", got)
	}
	// The key's bytes must not lie inside the text's memory.
	key := got[0]
	start := uintptrOf(text)
	if p := uintptrOf(key); p >= start && p < start+uintptr(len(text)) {
		t.Error("key is a slice of the input text")
	}
}

// TestExtractIssueKeysLinear feeds inputs that make backtracking matchers
// quadratic or worse; a linear scan reads 8 MiB of them in milliseconds.
func TestExtractIssueKeysLinear(t *testing.T) {
	const size = 8 << 20
	inputs := map[string]string{
		"underscore run without dash": strings.Repeat("A_", size/2),
		"underscore run then dash":    strings.Repeat("A_", size/2) + "-1",
		"dashes without numbers":      strings.Repeat("AB-", size/3),
		"leading zeros":               strings.Repeat("AB-0", size/4),
		"long numbers":                strings.Repeat("AB-"+strings.Repeat("9", 30)+" ", size/34),
		"letters only":                strings.Repeat("a", size),
		"non-latin letters":           strings.Repeat("é", size/2),
		"cve":                         strings.Repeat("CVE-2024-1 ", size/11),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			ExtractIssueKeys(in)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v for %d bytes", d, len(in))
			}
		})
	}
}

// TestExtractIssueKeysFixtures reads commit messages, pull request bodies and
// emails under testdata/issuekeys. Each file starts with a line
// "want: KEY KEY …" (or "want:" for none) followed by the text.
func TestExtractIssueKeysFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "issuekeys", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, text := readKeyFixture(t, f)
			if got := ExtractIssueKeys(text); !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func readKeyFixture(t testing.TB, path string) (want []string, text string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, text, _ := strings.Cut(string(b), "\n")
	fields, ok := strings.CutPrefix(head, "want:")
	if !ok {
		t.Fatalf("%s: first line must start with want:", path)
	}
	return strings.Fields(fields), text
}

func TestKeyFilter(t *testing.T) {
	keys := []string{"OPS-1", "UTF-8", "MY_PROJ-2", "SHA-256", "OPS-3"}
	tests := []struct {
		name   string
		filter KeyFilter
		want   []string
	}{
		{"nil keeps all", nil, keys},
		{"empty keeps none", NewKeyFilter(), nil},
		{"known projects", NewKeyFilter("ops", " MY_PROJ ", "not a key", "9X"), []string{"OPS-1", "MY_PROJ-2", "OPS-3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(keys)
			if got := tt.filter.Apply(keys); !slices.Equal(got, tt.want) {
				t.Errorf("Apply = %q, want %q", got, tt.want)
			}
			if !slices.Equal(keys, before) {
				t.Error("Apply modified its input")
			}
		})
	}
	f := NewKeyFilter("ops")
	if len(f) != 1 || !f.Knows("OPS") || f.Knows("ops") || f.Knows("UTF") {
		t.Errorf("filter %v", f)
	}
	if !KeyFilter(nil).Knows("ANY") {
		t.Error("nil filter should know every project")
	}
}

// referenceIssueKeys is a deliberately naive extractor, written from the
// rules rather than from ExtractIssueKeys: at every position it tries to read
// a whole key, using the unicode package for boundaries. Tests and the fuzz
// target compare the two.
func referenceIssueKeys(texts ...string) []string {
	var out []string
	seen := map[string]bool{}
	isWordRune := func(r rune) bool {
		return r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) ||
			r >= utf8.RuneSelf && (unicode.In(r, unicode.Latin, unicode.Mn))
	}
	for _, s := range texts {
		for i := 0; i < len(s); i++ {
			if len(out) == MaxIssueKeysPerEntity {
				return out
			}
			c := rune(s[i])
			if !(c < utf8.RuneSelf && unicode.IsLetter(c)) {
				continue
			}
			if i > 0 {
				if r, _ := utf8.DecodeLastRuneInString(s[:i]); isWordRune(r) {
					continue
				}
			}
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] < utf8.RuneSelf && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])))) {
				j++
			}
			project := strings.ToUpper(s[i:j])
			if len(project) < 2 || len(project) > 255 || j >= len(s) || s[j] != '-' {
				continue
			}
			k := j + 1
			for k < len(s) && s[k] >= '0' && s[k] <= '9' {
				k++
			}
			number := s[j+1 : k]
			if number == "" || number[0] == '0' || len(number) > 18 {
				continue
			}
			if k < len(s) {
				if r, _ := utf8.DecodeRuneInString(s[k:]); isWordRune(r) {
					continue
				}
			}
			if project == "CVE" && len(number) == 4 && (strings.HasPrefix(number, "19") || strings.HasPrefix(number, "20")) &&
				k+1 < len(s) && s[k] == '-' && s[k+1] >= '0' && s[k+1] <= '9' {
				i = k - 1
				continue
			}
			key := project + "-" + number
			if !seen[key] {
				seen[key] = true
				out = append(out, key)
			}
			i = k - 1
		}
	}
	return out
}

func abbrev(s string) string {
	if len(s) > 80 {
		return s[:60] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}

func uintptrOf(s string) uintptr { return uintptr(unsafe.Pointer(unsafe.StringData(s))) }

func TestSummarySlug(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Add checkout retries", "add-checkout-retries"},
		{"  Fix: crash (on iOS 17)!  ", "fix-crash-on-ios-17"},
		{"Ünïcode — only ASCII stays", "n-code-only-ascii-stays"},
		{"", ""},
		{"A very long summary that goes on and on past forty characters", "a-very-long-summary-that-goes-on-and-on"},
	} {
		if got := SummarySlug(c.in); got != c.want {
			t.Errorf("SummarySlug(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
