package devops

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// EnvironmentType is a deployment environment's tier, spelled as in Jira's
// deployments API.
type EnvironmentType string

// Environment types.
const (
	EnvironmentUnmapped    EnvironmentType = "unmapped"
	EnvironmentDevelopment EnvironmentType = "development"
	EnvironmentTesting     EnvironmentType = "testing"
	EnvironmentStaging     EnvironmentType = "staging"
	EnvironmentProduction  EnvironmentType = "production"
)

// mappedEnvironmentTypes lists the types rules can map to, in the order rules
// and the heuristic try them: the first type that matches wins, so a name
// that fits both "testing" and "production" is taken as testing (a wrong
// "production" would count towards DORA metrics; a wrong "testing" does not).
func mappedEnvironmentTypes() [4]EnvironmentType {
	return [4]EnvironmentType{EnvironmentDevelopment, EnvironmentTesting, EnvironmentStaging, EnvironmentProduction}
}

// EnvironmentTypes returns the five environment types, unmapped first.
func EnvironmentTypes() [5]EnvironmentType {
	m := mappedEnvironmentTypes()
	return [5]EnvironmentType{EnvironmentUnmapped, m[0], m[1], m[2], m[3]}
}

// Valid reports whether t is one of the five environment types.
func (t EnvironmentType) Valid() bool {
	switch t {
	case EnvironmentUnmapped, EnvironmentDevelopment, EnvironmentTesting, EnvironmentStaging, EnvironmentProduction:
		return true
	}
	return false
}

// ParseEnvironmentType reads an environment type without regard to case or
// surrounding space.
func ParseEnvironmentType(s string) (EnvironmentType, bool) {
	t := EnvironmentType(strings.ToLower(strings.TrimSpace(s)))
	return t, t.Valid()
}

// Basis says how an environment's type was decided, so the UI can show
// "mapped by rule" or flag an unmapped environment.
type Basis string

// Bases of an environment type.
const (
	BasisProvider  Basis = "provider"  // the provider's own tier or production flag
	BasisRule      Basis = "rule"      // one of the source's glob rules
	BasisHeuristic Basis = "heuristic" // a word in the environment's name
	BasisUnmapped  Basis = "unmapped"  // nothing matched
)

// Valid reports whether b is one of the four bases.
func (b Basis) Valid() bool {
	switch b {
	case BasisProvider, BasisRule, BasisHeuristic, BasisUnmapped:
		return true
	}
	return false
}

// Limits on EnvironmentRules. The glob count matches .jira/config.yml's; the
// length and brace limits keep matching cheap, because brace alternatives
// multiply the work of every match.
const (
	MaxEnvironmentGlobs      = 10  // per environment type
	MaxEnvironmentGlobLen    = 255 // bytes
	MaxEnvironmentGlobBraces = 2   // '{' groups per glob
	// maxRuleNameLen bounds the names rules are tried on: Jira caps an
	// environment's display name at 255 characters, and a longer name falls
	// through to the heuristic instead of costing quadratic glob matching.
	maxRuleNameLen = 1024
)

// ErrInvalidEnvironmentRules is wrapped by every error Validate returns.
var ErrInvalidEnvironmentRules = errors.New("invalid environment rules")

// EnvironmentRules maps environment types to glob patterns, in the form of
// .jira/config.yml's deployments.environmentMapping:
//
//	{"production": ["prod-*", "live"], "staging": ["*-stable"]}
//
// Globs are minimatch-style and match the whole name without regard to case:
// '*' and '?' do not cross '/', "**" does, "[a-z]" and "{a,b}" work, and a
// leading '!' negates the rest of the glob. Types are tried in the order
// development, testing, staging, production; within a type, any glob
// matching is enough. A nil or empty EnvironmentRules matches nothing.
type EnvironmentRules map[EnvironmentType][]string

// Validate reports every problem with r, joined, each wrapping
// ErrInvalidEnvironmentRules: an unknown or unmapped type, more than
// MaxEnvironmentGlobs globs for a type, or a glob that is empty, too long,
// has too many brace groups or is malformed.
func (r EnvironmentRules) Validate() error {
	var errs []error
	for _, t := range mappedEnvironmentTypes() {
		globs := r[t]
		if len(globs) > MaxEnvironmentGlobs {
			errs = append(errs, fmt.Errorf("%w: %s has %d globs, at most %d allowed", ErrInvalidEnvironmentRules, t, len(globs), MaxEnvironmentGlobs))
		}
		for i, g := range globs {
			if err := validateGlob(g); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s glob %d %q %w", ErrInvalidEnvironmentRules, t, i+1, g, err))
			}
		}
	}
	mapped := mappedEnvironmentTypes()
	var unknown []string
	for t := range r {
		if !slices.Contains(mapped[:], t) {
			unknown = append(unknown, string(t))
		}
	}
	slices.Sort(unknown) // map order is random; keep the message stable
	for _, t := range unknown {
		errs = append(errs, fmt.Errorf("%w: %q is not a type rules can map to (development, testing, staging or production)", ErrInvalidEnvironmentRules, t))
	}
	return errors.Join(errs...)
}

func validateGlob(g string) error {
	switch {
	case strings.TrimSpace(g) == "":
		return errors.New("is empty")
	case len(g) > MaxEnvironmentGlobLen:
		return fmt.Errorf("is longer than %d bytes", MaxEnvironmentGlobLen)
	case strings.Count(g, "{") > MaxEnvironmentGlobBraces:
		return fmt.Errorf("has more than %d brace groups", MaxEnvironmentGlobBraces)
	}
	_, body := globNegation(g)
	if body == "" {
		return errors.New("negates nothing")
	}
	if !doublestar.ValidatePattern(strings.ToLower(body)) {
		return errors.New("is not a valid glob (unclosed '[' or '{', or a trailing '\\')")
	}
	return nil
}

// globNegation strips minimatch's leading '!'s: an odd number negates.
func globNegation(g string) (negate bool, body string) {
	for strings.HasPrefix(g, "!") {
		negate = !negate
		g = g[1:]
	}
	return negate, g
}

// Match returns the first type, in the order development, testing, staging,
// production, with a glob matching name. Invalid globs never match (Validate
// rejects them before they are stored).
func (r EnvironmentRules) Match(name string) (EnvironmentType, bool) {
	if len(r) == 0 || name == "" || len(name) > maxRuleNameLen {
		return "", false
	}
	lower := strings.ToLower(name)
	for _, t := range mappedEnvironmentTypes() {
		for _, g := range r[t] {
			if globMatches(g, lower) {
				return t, true
			}
		}
	}
	return "", false
}

// globMatches matches g against a lower-cased name. Both sides are
// lower-cased because doublestar's Match is case-sensitive.
func globMatches(g, lowerName string) bool {
	if validateGlob(g) != nil {
		return false
	}
	negate, body := globNegation(g)
	ok, err := doublestar.Match(strings.ToLower(body), lowerName)
	return err == nil && ok != negate
}

// ClassifyEnvironment decides the type of the environment called name. The
// provider's own answer comes first (GitLab's tier, GitHub's production
// flag, an explicit type in a generic payload) unless it is empty or
// unmapped; then the source's rules; then GuessEnvironmentType's heuristic;
// otherwise the environment is unmapped. The Basis says which applied.
func ClassifyEnvironment(name string, providerType EnvironmentType, rules EnvironmentRules) (EnvironmentType, Basis) {
	if providerType.Valid() && providerType != EnvironmentUnmapped {
		return providerType, BasisProvider
	}
	if t, ok := rules.Match(name); ok {
		return t, BasisRule
	}
	if t := GuessEnvironmentType(name); t != EnvironmentUnmapped {
		return t, BasisHeuristic
	}
	return EnvironmentUnmapped, BasisUnmapped
}
