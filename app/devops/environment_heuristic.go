package devops

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// GuessEnvironmentType classifies an environment by the words of its name,
// as GitHub for Jira does, and returns EnvironmentUnmapped when no word is
// known. The name is stripped of accents and split into lower-case words at
// every character other than an ASCII letter or digit, and between a lower-
// and an upper-case letter or before the last capital of an acronym
// followed by lower case ("ProdEU" is "prod", "eu"; "UATServer" is "uat",
// "server"). A word names a type
// if it is in that type's list:
//
//	development: development dev trunk develop
//	testing:     testing test tests tst integration integ intg int acceptance
//	             accept acpt qa qc control quality uat sit
//	staging:     staging stage stg sta preprod model internal
//	production:  production prod prd live
//
// Three refinements over GitHub for Jira, each aimed at a mapping users
// reported wrong:
//   - Numbered environments: a word ending in digits is also tried without
//     them, so "qa1", "stg2" and "prod-01" are testing, staging and production.
//   - "pre" before a production word means staging: "pre-prod", "PreProd" and
//     "preproduction" are staging, not production.
//   - "non" before a production word cancels it: "non-prod" is not production.
//
// When words of several types occur, the first type in the order
// development, testing, staging, production wins.
func GuessEnvironmentType(name string) EnvironmentType {
	words := environmentWords(name)
	best := len(mappedEnvironmentTypes()) // index of the first type found, in the fixed order
	note := func(t EnvironmentType) {
		for i, m := range mappedEnvironmentTypes() {
			if m == t {
				best = min(best, i)
			}
		}
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		if i+1 < len(words) && (w == "pre" || w == "non") && wordType(words[i+1]) == EnvironmentProduction {
			if w == "pre" {
				note(EnvironmentStaging)
			}
			i++ // the production word is consumed by its prefix
			continue
		}
		note(wordType(w))
	}
	if best < len(mappedEnvironmentTypes()) {
		return mappedEnvironmentTypes()[best]
	}
	return EnvironmentUnmapped
}

// wordType returns the type a lower-case word names, trying it as written,
// then without trailing digits, then as "pre" + a production word.
func wordType(w string) EnvironmentType {
	if t := listedWordType(w); t != EnvironmentUnmapped {
		return t
	}
	if trimmed := strings.TrimRight(w, "0123456789"); trimmed != w && trimmed != "" {
		if t := listedWordType(trimmed); t != EnvironmentUnmapped {
			return t
		}
		w = trimmed
	}
	if rest, ok := strings.CutPrefix(w, "pre"); ok && listedWordType(rest) == EnvironmentProduction {
		return EnvironmentStaging
	}
	return EnvironmentUnmapped
}

// listedWordType holds the word lists from GitHub for Jira
// (src/transforms/transform-deployment.ts), copied exactly.
func listedWordType(w string) EnvironmentType {
	switch w {
	case "development", "dev", "trunk", "develop":
		return EnvironmentDevelopment
	case "testing", "test", "tests", "tst", "integration", "integ", "intg", "int",
		"acceptance", "accept", "acpt", "qa", "qc", "control", "quality", "uat", "sit":
		return EnvironmentTesting
	case "staging", "stage", "stg", "sta", "preprod", "model", "internal":
		return EnvironmentStaging
	case "production", "prod", "prd", "live":
		return EnvironmentProduction
	}
	return EnvironmentUnmapped
}

// environmentWords splits a name into lower-case ASCII words after removing
// accents. Anything still outside ASCII separates words, like punctuation.
func environmentWords(name string) []string {
	s := deburr(name)
	var words []string
	start := -1
	for i := 0; i <= len(s); i++ {
		var c byte
		if i < len(s) {
			c = s[i]
		}
		alnum := i < len(s) && isASCIIAlnum(c)
		// Camel case: "ProdEU" splits before 'E', "UATServer" before 'S'.
		camel := alnum && start >= 0 && isASCIIUpper(c) &&
			(isASCIILower(s[i-1]) || isASCIIUpper(s[i-1]) && i+1 < len(s) && isASCIILower(s[i+1]))
		if start >= 0 && (!alnum || camel) {
			words = append(words, strings.ToLower(s[start:i]))
			start = -1
		}
		if alnum && start < 0 {
			start = i
		}
	}
	return words
}

// deburr removes accents and spells out the Latin letters that have no
// decomposition, as lodash's deburr does: "Prödüktion" becomes "Produktion",
// "Æsir" "Aesir" (capitalised like lodash, so camel-case splitting keeps one word).
func deburr(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range norm.NFD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		if sp := spelledOut(r); sp != "" {
			b.WriteString(sp)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isASCIIUpper(b byte) bool { return b >= 'A' && b <= 'Z' }
func isASCIILower(b byte) bool { return b >= 'a' && b <= 'z' }

func spelledOut(r rune) string {
	switch r {
	case 'ß':
		return "ss"
	case 'æ':
		return "ae"
	case 'Æ':
		return "Ae"
	case 'œ':
		return "oe"
	case 'Œ':
		return "Oe"
	case 'ø':
		return "o"
	case 'Ø':
		return "O"
	case 'đ', 'ð':
		return "d"
	case 'Đ', 'Ð':
		return "D"
	case 'ł':
		return "l"
	case 'Ł':
		return "L"
	case 'þ':
		return "th"
	case 'Þ':
		return "Th"
	case 'ı':
		return "i"
	}
	return ""
}
