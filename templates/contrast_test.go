package templates

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"testing"

	"github.com/keyline/keyline/static"
)

// rgba is a colour with straight alpha, channels 0..1.
type rgba struct{ r, g, b, a float64 }

func parseHex(t *testing.T, s string) rgba {
	t.Helper()
	if len(s) != 7 && len(s) != 9 {
		t.Fatalf("colour %q is not #RRGGBB or #RRGGBBAA", s)
	}
	ch := func(i int) float64 {
		v, err := strconv.ParseUint(s[i:i+2], 16, 8)
		if err != nil {
			t.Fatalf("colour %q: %v", s, err)
		}
		return float64(v) / 255
	}
	c := rgba{ch(1), ch(3), ch(5), 1}
	if len(s) == 9 {
		c.a = ch(7)
	}
	return c
}

// over composites c on an opaque background, as browsers do, in sRGB.
func (c rgba) over(bg rgba) rgba {
	mix := func(f, b float64) float64 { return c.a*f + (1-c.a)*b }
	return rgba{mix(c.r, bg.r), mix(c.g, bg.g), mix(c.b, bg.b), 1}
}

// luminance is WCAG 2's relative luminance.
func (c rgba) luminance() float64 {
	lin := func(v float64) float64 {
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.r) + 0.7152*lin(c.g) + 0.0722*lin(c.b)
}

func contrast(a, b rgba) float64 {
	la, lb := a.luminance(), b.luminance()
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

// TestColourContrast checks, in the light and the dark theme, that every
// text colour the pages use meets WCAG AA (4.5:1) on the backgrounds it is
// used on, translucent backgrounds composited as the browser does.
func TestColourContrast(t *testing.T) {
	css, err := static.FS.ReadFile("css/keyline.css")
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string][2]string{}
	for _, m := range regexp.MustCompile(`--(ds-[a-z-]+):\s*light-dark\((#[0-9A-Fa-f]+),\s*(#[0-9A-Fa-f]+)\)`).FindAllStringSubmatch(string(css), -1) {
		tokens[m[1]] = [2]string{m[2], m[3]}
	}
	// Text on background, where the background sits on a page surface.
	pairs := []struct{ text, background, page string }{
		{"ds-text", "ds-surface", "ds-surface"},
		{"ds-text-subtle", "ds-surface", "ds-surface"},
		{"ds-text-subtlest", "ds-surface", "ds-surface"},
		{"ds-link", "ds-surface", "ds-surface"},
		{"ds-text-danger", "ds-surface", "ds-surface"},
		{"ds-text-warning", "ds-surface", "ds-surface"},
		// The summary line and the empty state sit on the sunken surface.
		{"ds-text", "ds-surface-sunken", "ds-surface-sunken"},
		{"ds-text-subtle", "ds-surface-sunken", "ds-surface-sunken"},
		{"ds-text-subtlest", "ds-surface-sunken", "ds-surface-sunken"},
		{"ds-link", "ds-surface-sunken", "ds-surface-sunken"},
		// Lozenges and badges, on either surface.
		{"ds-text-subtle", "ds-background-neutral", "ds-surface"},
		{"ds-text-subtle", "ds-background-neutral", "ds-surface-sunken"},
		{"ds-text", "ds-background-neutral", "ds-surface"},
		{"ds-text-success", "ds-background-success", "ds-surface"},
		{"ds-text-danger", "ds-background-danger", "ds-surface"},
		{"ds-text-information", "ds-background-information", "ds-surface"},
		{"ds-text-warning", "ds-background-warning", "ds-surface"},
		// The admin's "Connect a source" button.
		{"ds-text-inverse", "ds-background-brand-bold", "ds-surface-sunken"},
		{"ds-text-inverse", "ds-background-brand-bold-hovered", "ds-surface-sunken"},
	}
	for theme, name := range []string{"light", "dark"} {
		for _, p := range pairs {
			t.Run(fmt.Sprintf("%s/%s on %s", name, p.text, p.background), func(t *testing.T) {
				get := func(token string) rgba {
					v, ok := tokens[token]
					if !ok {
						t.Fatalf("keyline.css does not define --%s as light-dark(…)", token)
					}
					return parseHex(t, v[theme])
				}
				page := get(p.page)
				if page.a != 1 {
					t.Fatalf("page surface --%s is translucent", p.page)
				}
				bg := get(p.background).over(page)
				fg := get(p.text).over(bg)
				if c := contrast(fg, bg); c < 4.5 {
					t.Errorf("contrast %.2f:1, want at least 4.5:1", c)
				}
			})
		}
	}
}
