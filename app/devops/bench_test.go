package devops

import (
	"strings"
	"testing"
)

// BenchmarkExtractIssueKeys measures a realistic 1 KiB commit message with
// two keys, one repeated (testdata/issuekeys/commit_1k.txt).
func BenchmarkExtractIssueKeys(b *testing.B) {
	_, msg := readKeyFixture(b, "testdata/issuekeys/commit_1k.txt")
	cases := map[string]string{
		"1KiB":        msg,
		"1KiB-nokeys": strings.Repeat("refactor the retry loop; ", 41)[:1024],
		"1KiB-lower":  strings.ToLower(msg),
		"1KiB-50keys": strings.Repeat("ops-12345 ", 103)[:1024],
	}
	for name, text := range cases {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				ExtractIssueKeys(text)
			}
		})
	}
}

func BenchmarkClassifyEnvironment(b *testing.B) {
	rules := EnvironmentRules{
		EnvironmentTesting:    {"qa-*", "*-mirror"},
		EnvironmentStaging:    {"*-stable", "review/**"},
		EnvironmentProduction: {"{eu,us}-prod-*", "live"},
	}
	for _, name := range []string{"eu-prod-1", "pre-prod", "Próduction-EU"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ClassifyEnvironment(name, "", rules)
			}
		})
	}
}
