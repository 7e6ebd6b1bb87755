package devops

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// heuristicLists repeats the reference's word lists (devops-reference.md §1,
// "Environment type heuristic") so a change to listedWordType is caught.
func heuristicLists() map[EnvironmentType][]string {
	return map[EnvironmentType][]string{
		EnvironmentDevelopment: {"development", "dev", "trunk", "develop"},
		EnvironmentTesting: {"testing", "test", "tests", "tst", "integration", "integ", "intg", "int",
			"acceptance", "accept", "acpt", "qa", "qc", "control", "quality", "uat", "sit"},
		EnvironmentStaging:    {"staging", "stage", "stg", "sta", "preprod", "model", "internal"},
		EnvironmentProduction: {"production", "prod", "prd", "live"},
	}
}

func TestGuessEnvironmentTypeLists(t *testing.T) {
	for want, words := range heuristicLists() {
		for _, w := range words {
			for _, name := range []string{
				w,
				strings.ToUpper(w),
				strings.ToUpper(w[:1]) + w[1:],
				"acme-" + w + "-eu",
				"acme_" + w,
				w + "/eu-west-1",
				w + "1",                                 // numbered
				w + "02",                                // numbered, zero-padded
				w + "-3",                                // numbered, separated
				"Acme" + strings.ToUpper(w[:1]) + w[1:], // camel case
			} {
				if got := GuessEnvironmentType(name); got != want {
					t.Errorf("GuessEnvironmentType(%q) = %s, want %s", name, got, want)
				}
			}
		}
	}
}

func TestGuessEnvironmentType(t *testing.T) {
	tests := []struct {
		name string
		want EnvironmentType
	}{
		{"", EnvironmentUnmapped},
		{"sandbox", EnvironmentUnmapped},
		{"review/feature-x", EnvironmentUnmapped},
		{"preview", EnvironmentUnmapped},
		{"product", EnvironmentUnmapped},
		{"delivery", EnvironmentUnmapped},
		{"devops", EnvironmentUnmapped},
		{"1prod", EnvironmentUnmapped},
		{"v2", EnvironmentUnmapped},
		{"---", EnvironmentUnmapped},
		{"Production", EnvironmentProduction},
		{"prod-eu-west-1", EnvironmentProduction},
		{"prod2024", EnvironmentProduction},
		{"eu.live", EnvironmentProduction},
		{"integration-tests", EnvironmentTesting},
		// Numbered environments (#594): trailing digits are ignored.
		{"qa1", EnvironmentTesting},
		{"QA2", EnvironmentTesting},
		{"stg2", EnvironmentStaging},
		{"uat-3", EnvironmentTesting},
		{"dev42", EnvironmentDevelopment},
		{"prd01", EnvironmentProduction},
		// "pre" and "non" before a production word.
		{"pre-prod", EnvironmentStaging},
		{"pre prod", EnvironmentStaging},
		{"Pre_Production", EnvironmentStaging},
		{"PreProd", EnvironmentStaging},
		{"preproduction", EnvironmentStaging},
		{"prelive", EnvironmentStaging},
		{"preprod2", EnvironmentStaging},
		{"pre-prod3", EnvironmentStaging},
		{"pre", EnvironmentUnmapped},
		{"pre-sandbox", EnvironmentUnmapped},
		{"non-prod", EnvironmentUnmapped},
		{"NonProd", EnvironmentUnmapped},
		{"nonprod", EnvironmentUnmapped},
		{"non-prod-qa", EnvironmentTesting},
		{"prod-non", EnvironmentProduction},
		// Camel case and acronyms.
		{"ProdEU", EnvironmentProduction},
		{"myStaging", EnvironmentStaging},
		{"UATServer", EnvironmentTesting},
		{"QAEnv", EnvironmentTesting},
		// Accents and other Latin letters.
		{"Próduction", EnvironmentProduction},
		{"stäging", EnvironmentStaging},
		{"Prød", EnvironmentProduction},
		{"DÉV", EnvironmentDevelopment},
		{"te\u0301st", EnvironmentTesting}, // decomposed accent
		{"développement", EnvironmentUnmapped},
		{"продакшн", EnvironmentUnmapped},
		{"本番-prod", EnvironmentProduction},
		// Several types: the fixed order decides.
		{"test-prod", EnvironmentTesting},
		{"prod-test", EnvironmentTesting},
		{"staging-dev", EnvironmentDevelopment},
		{"live-stage", EnvironmentStaging},
	}
	for _, tt := range tests {
		if got := GuessEnvironmentType(tt.name); got != tt.want {
			t.Errorf("GuessEnvironmentType(%q) = %s, want %s (words %q)", tt.name, got, tt.want, environmentWords(tt.name))
		}
	}
}

func TestEnvironmentWords(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"prod-eu_west.1", "prod eu west 1"},
		{"ProdEU", "prod eu"},
		{"UATServer", "uat server"},
		{"myQA2", "my qa2"},
		{"Æsir Straße Łódź", "aesir strasse lodz"},
		{"a\u00a0b", "a b"},
		{"Œ Þ Ð Đ Ł Ø ı ø œ ð þ đ ł æ", "oe th d d l o i o oe d th d l ae"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := strings.Join(environmentWords(tt.in), " "); got != tt.want {
			t.Errorf("environmentWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClassifyEnvironment(t *testing.T) {
	rules := EnvironmentRules{
		EnvironmentDevelopment: {"sandbox-*"},
		EnvironmentTesting:     {"*-mirror", "[pq]a-*"},
		EnvironmentStaging:     {"*-stable", "review/*"},
		EnvironmentProduction:  {"{eu,us}-*", "PROD-*", "**"},
	}
	tests := []struct {
		name      string
		provider  EnvironmentType
		rules     EnvironmentRules
		want      EnvironmentType
		wantBasis Basis
	}{
		{"dev", EnvironmentProduction, rules, EnvironmentProduction, BasisProvider},
		{"whatever", EnvironmentTesting, nil, EnvironmentTesting, BasisProvider},
		{"prod", EnvironmentUnmapped, nil, EnvironmentProduction, BasisHeuristic},
		{"prod", "", nil, EnvironmentProduction, BasisHeuristic},
		{"prod", "other", nil, EnvironmentProduction, BasisHeuristic},
		{"sandbox", "", nil, EnvironmentUnmapped, BasisUnmapped},
		{"sandbox", "", EnvironmentRules{}, EnvironmentUnmapped, BasisUnmapped},
		{"", "", rules, EnvironmentUnmapped, BasisUnmapped},
		{"sandbox-1", "", rules, EnvironmentDevelopment, BasisRule},
		{"SANDBOX-1", "", rules, EnvironmentDevelopment, BasisRule},
		{"prod-mirror", "", rules, EnvironmentTesting, BasisRule},
		{"qa-1", "", rules, EnvironmentTesting, BasisRule},
		{"api-stable", "", rules, EnvironmentStaging, BasisRule},
		{"review/feature-x", "", rules, EnvironmentStaging, BasisRule},
		{"review/a/b", "", rules, EnvironmentProduction, BasisRule}, // '*' stops at '/', "**" does not
		{"eu-central", "", rules, EnvironmentProduction, BasisRule},
		{"Prod-East", "", rules, EnvironmentProduction, BasisRule},
		{"anything", "", rules, EnvironmentProduction, BasisRule},
		// The fixed order beats the order globs are written in.
		{"prod", "", EnvironmentRules{EnvironmentProduction: {"prod*"}, EnvironmentDevelopment: {"*"}}, EnvironmentDevelopment, BasisRule},
		// A regex habit is not a glob: ".*-stable" only matches a literal ".".
		{"api-stable", "", EnvironmentRules{EnvironmentStaging: {".*-stable"}}, EnvironmentUnmapped, BasisUnmapped},
		{".x-stable", "", EnvironmentRules{EnvironmentStaging: {".*-stable"}}, EnvironmentStaging, BasisRule},
		// Globs match the whole name.
		{"my-prod-1", "", EnvironmentRules{EnvironmentStaging: {"prod-*"}}, EnvironmentProduction, BasisHeuristic},
		// Negation.
		{"qa", "", EnvironmentRules{EnvironmentStaging: {"!prod*"}}, EnvironmentStaging, BasisRule},
		{"prod-1", "", EnvironmentRules{EnvironmentStaging: {"!prod*"}}, EnvironmentProduction, BasisHeuristic},
		{"prod-1", "", EnvironmentRules{EnvironmentStaging: {"!!prod*"}}, EnvironmentStaging, BasisRule},
		// Rules that would not validate never match.
		{"prod", "", EnvironmentRules{EnvironmentTesting: {"[p"}}, EnvironmentProduction, BasisHeuristic},
		{"prod", "", EnvironmentRules{"qa": {"*"}}, EnvironmentProduction, BasisHeuristic},
		// Numbered names with rules in place still fall back to the heuristic.
		{"stg2", "", rules, EnvironmentProduction, BasisRule},
		{"stg2", "", EnvironmentRules{EnvironmentTesting: {"qa*"}}, EnvironmentStaging, BasisHeuristic},
		// Accented names and globs match without regard to case.
		{"ÉTÉ-1", "", EnvironmentRules{EnvironmentTesting: {"été-*"}}, EnvironmentTesting, BasisRule},
	}
	for _, tt := range tests {
		got, basis := ClassifyEnvironment(tt.name, tt.provider, tt.rules)
		if got != tt.want || basis != tt.wantBasis {
			t.Errorf("ClassifyEnvironment(%q, %q, %v) = %s, %s; want %s, %s", tt.name, tt.provider, tt.rules, got, basis, tt.want, tt.wantBasis)
		}
	}
}

func TestEnvironmentRulesValidate(t *testing.T) {
	eleven := make([]string, MaxEnvironmentGlobs+1)
	for i := range eleven {
		eleven[i] = "env-*"
	}
	tests := []struct {
		name    string
		rules   EnvironmentRules
		wantErr string // substring; "" means valid
	}{
		{"nil", nil, ""},
		{"empty", EnvironmentRules{}, ""},
		{"typical", EnvironmentRules{EnvironmentProduction: {"prod-*", "live", "{eu,us}-prod"}, EnvironmentStaging: {"*-stable", "review/**"}}, ""},
		{"ten globs", EnvironmentRules{EnvironmentTesting: eleven[:MaxEnvironmentGlobs]}, ""},
		{"negation", EnvironmentRules{EnvironmentTesting: {"!prod*"}}, ""},
		{"escaped", EnvironmentRules{EnvironmentTesting: {`qa\*`}}, ""},
		{"eleven globs", EnvironmentRules{EnvironmentTesting: eleven}, "testing has 11 globs, at most 10"},
		{"empty glob", EnvironmentRules{EnvironmentTesting: {""}}, `testing glob 1 "" is empty`},
		{"blank glob", EnvironmentRules{EnvironmentTesting: {"qa", "  "}}, `testing glob 2 "  " is empty`},
		{"too long", EnvironmentRules{EnvironmentStaging: {strings.Repeat("a", MaxEnvironmentGlobLen+1)}}, "longer than 255 bytes"},
		{"unclosed class", EnvironmentRules{EnvironmentProduction: {"prod-[0-9"}}, "not a valid glob"},
		{"unclosed brace", EnvironmentRules{EnvironmentProduction: {"{eu,us-prod"}}, "not a valid glob"},
		{"trailing backslash", EnvironmentRules{EnvironmentProduction: {`prod\`}}, "not a valid glob"},
		{"too many braces", EnvironmentRules{EnvironmentProduction: {"{a,b}{c,d}{e,f}"}}, "more than 2 brace groups"},
		{"bare negation", EnvironmentRules{EnvironmentProduction: {"!"}}, "negates nothing"},
		{"unmapped type", EnvironmentRules{EnvironmentUnmapped: {"*"}}, `"unmapped" is not a type rules can map to`},
		{"unknown type", EnvironmentRules{"prod": {"*"}}, `"prod" is not a type rules can map to`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rules.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("no error, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			case err != nil && !errors.Is(err, ErrInvalidEnvironmentRules):
				t.Errorf("error %v does not wrap ErrInvalidEnvironmentRules", err)
			}
		})
	}
}

func TestEnvironmentRulesValidateReportsAllStably(t *testing.T) {
	rules := EnvironmentRules{
		"zeta":                {"*"},
		"alpha":               {"*"},
		EnvironmentProduction: {"[", ""},
		EnvironmentTesting:    {"{"},
	}
	first := rules.Validate()
	if first == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(first.Error(), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 5 problems, got %d:\n%v", len(lines), first)
	}
	for range 20 {
		if again := rules.Validate(); again.Error() != first.Error() {
			t.Fatalf("message changed:\n%v\nthen\n%v", first, again)
		}
	}
	if !strings.Contains(lines[0], "testing") || !strings.Contains(lines[3], `"alpha"`) {
		t.Errorf("unexpected order:\n%v", first)
	}
}

func TestEnvironmentRulesJSON(t *testing.T) {
	var r EnvironmentRules
	if err := json.Unmarshal([]byte(`{"production":["prod-*","live"],"staging":["*-stable"]}`), &r); err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Match("prod-eu"); got != EnvironmentProduction {
		t.Errorf("Match = %q", got)
	}
	b, err := json.Marshal(r)
	if err != nil || string(b) != `{"production":["prod-*","live"],"staging":["*-stable"]}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
}

func TestEnvironmentRulesMatchLongName(t *testing.T) {
	rules := EnvironmentRules{EnvironmentTesting: {"*"}}
	if _, ok := rules.Match(strings.Repeat("a", maxRuleNameLen)); !ok {
		t.Error("name at the limit should match")
	}
	if _, ok := rules.Match(strings.Repeat("a", maxRuleNameLen+1)); ok {
		t.Error("name over the limit should not be tried")
	}
}

// TestEnvironmentRulesMatchCost checks that the worst rules Validate accepts
// stay cheap on the longest name Match tries.
func TestEnvironmentRulesMatchCost(t *testing.T) {
	name := strings.Repeat("a", maxRuleNameLen)
	worst := []string{
		strings.Repeat("*a", 120) + "b",
		"{a,aa}{*a,a*}" + strings.Repeat("*a", 100) + "b",
		"**/" + strings.Repeat("*a", 120) + "b",
	}
	for _, g := range worst {
		globs := make([]string, MaxEnvironmentGlobs)
		for i := range globs {
			globs[i] = g
		}
		rules := EnvironmentRules{EnvironmentDevelopment: globs, EnvironmentTesting: globs, EnvironmentStaging: globs, EnvironmentProduction: globs}
		if err := rules.Validate(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rules.Match(name)
		if d := time.Since(start); d > time.Second {
			t.Errorf("40 globs like %.20q… took %v", g, d)
		}
	}
}

func TestEnvironmentTypeAndBasisValid(t *testing.T) {
	for _, s := range []string{"unmapped", "development", "testing", "staging", "production"} {
		if !EnvironmentType(s).Valid() {
			t.Errorf("%s should be valid", s)
		}
		if got, ok := ParseEnvironmentType(" " + strings.ToUpper(s) + " "); !ok || string(got) != s {
			t.Errorf("ParseEnvironmentType(%q) = %q, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "prod", "Production", "other"} {
		if EnvironmentType(s).Valid() {
			t.Errorf("%q should be invalid", s)
		}
	}
	if _, ok := ParseEnvironmentType("other"); ok {
		t.Error("ParseEnvironmentType(other) should fail")
	}
	for _, b := range []Basis{BasisProvider, BasisRule, BasisHeuristic, BasisUnmapped} {
		if !b.Valid() {
			t.Errorf("%s should be valid", b)
		}
	}
	if Basis("guess").Valid() {
		t.Error("unknown basis should be invalid")
	}
}
