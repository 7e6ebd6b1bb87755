package browsertest

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// expectation is what one frame must show. Texts are matched in the frame's
// rendered text exactly, Folded ignoring case (lozenges are upper-cased by
// CSS), Absent must not appear; Hooks are data-testid hooks the pages are
// expected to grow, reported when missing but not failed on, since the
// visible text is what users judge.
type expectation struct {
	frame  string
	texts  []string
	folded []string
	absent []string
	hooks  []string
}

// The frames of the host page, by its own id (the suffix of each iframe name).
var allFrames = []string{"issue-panel", "issue-summary", "macro-status", "macro-deployments",
	"macro-metrics", "macro-release-notes", "project-page", "jira-configure", "confluence-configure"}

// TestPagesInJiraAndConfluence loads the preview host page in Chromium,
// which frames Keyline's issue panel, issue summary, Confluence macro (both
// views), project page and both configure pages as the products do, and
// checks what each frame shows, that each told the host its height through
// AP.resize, that nothing logged an error or broke the CSP, that the hostile
// commit and pull request stayed text, and that nothing left the machine.
// It saves light and dark screenshots of the host page.
func TestPagesInJiraAndConfluence(t *testing.T) {
	exec := chromium(t)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s := startSite(t)
	seeded := time.Since(began)
	b := startBrowser(t, ctx, exec)
	b.setColorScheme("light")
	started := time.Since(began)

	key := s.demo.Featured
	if err := chromedp.Do(b.ctx, chromedp.Navigate(s.hostURL+"/?issue="+url.QueryEscape(key))); err != nil {
		t.Fatalf("load the host page: %v", err)
	}
	hs := b.waitResized(allFrames, 10*time.Second)
	loaded := time.Since(began)
	frames := byFrameID(b.frames())
	siteHost := strings.TrimPrefix(s.hostURL, "http://")

	checkFrames(t, frames, []expectation{
		{frame: "issue-panel",
			texts:  []string{key, key + " " + scriptLine, key + " " + imgLine},
			folded: []string{"production", "staging", "development"},
			hooks:  []string{"summary", "branches", "commits", "pull-requests", "builds", "deployments", "incidents", "timeline"}},
		{frame: "issue-summary", folded: []string{"production"}, hooks: []string{"summary"}},
		{frame: "macro-status",
			texts:  []string{"PAY", "WEB", "OPS", key, "On-call handbook: escalation policy", "No development linked yet", "issues deployed to production"},
			folded: []string{"production", "1 open", "1 merged", "in review"},
			absent: []string{"not installed"},
			hooks:  []string{"macro-status", "readiness", "macro-issue", "macro-pull-requests", "macro-build", "macro-environment"}},
		{frame: "macro-deployments",
			texts:  []string{"PAY", "WEB", "OPS", "checkout-api", "storefront-web", "platform-gateway", "at most 5 per environment"},
			folded: []string{"production", "staging", "development"},
			absent: []string{"not installed", "No deployments"},
			hooks:  []string{"macro-deployments", "environment", "macro-deployment", "deployment-issues"}},
		{frame: "macro-metrics",
			texts:  []string{"Deployment frequency", "Lead time for changes", "Change failure rate", "DORA 2023 benchmark"},
			absent: []string{"not installed", "No deployment to a production-type environment"},
			hooks:  []string{"metrics", "figure-deployment-frequency", "figure-lead-time", "trend-lead-time", "timeline", "slowest"}},
		{frame: "macro-release-notes", hooks: []string{"release-notes"}, absent: []string{"not installed"}},
		{frame: "project-page",
			texts:  []string{"Release metrics", "PAY", "Deployment frequency", "Cycle time"},
			absent: []string{"No deployment to a production-type environment"},
			hooks:  []string{"metrics", "metrics-filter", "figure-change-failure-rate", "trend-deployment-frequency", "timeline", "csv-links"}},
		{frame: "jira-configure", texts: []string{siteHost, s.cfg.JiraAppKey()}},
		{frame: "confluence-configure", texts: []string{siteHost}, absent: []string{"not installed"}},
	})
	checkResized(t, hs, allFrames)
	checkClean(t, b)

	// Dark: the host's colour scheme changes, and every page that asked for
	// theming must follow it, as it does under Jira.
	dir := artifactsDir(t)
	b.screenshot(dir, "host-light.png")
	b.setColorScheme("dark")
	for id, f := range byFrameID(b.frames()) {
		if f.ColorMode != "" && f.ColorMode != "dark" {
			t.Errorf("%s: data-color-mode %q after the host turned dark", id, f.ColorMode)
		}
	}
	b.screenshot(dir, "host-dark.png")
	checkClean(t, b)
	b.setColorScheme("light")

	// An issue without development, seen by a team member who is not a Jira
	// administrator: the empty state, and no configure page (user_is_admin).
	quiet := s.demo.Quiet
	if err := chromedp.Do(b.ctx, chromedp.Navigate(s.hostURL+"/?as=viewer&issue="+url.QueryEscape(quiet))); err != nil {
		t.Fatalf("load the host page for %s: %v", quiet, err)
	}
	viewerFrames := slices.DeleteFunc(slices.Clone(allFrames), func(id string) bool { return id == "jira-configure" })
	hs = b.waitResized(viewerFrames, 10*time.Second)
	frames = byFrameID(b.frames())
	if _, ok := frames["jira-configure"]; ok {
		t.Error("a team member was shown the Jira configure page")
	}
	checkFrames(t, frames, []expectation{
		{frame: "issue-panel", texts: []string{quiet}, absent: []string{scriptLine}, hooks: []string{"empty-state"}},
		{frame: "issue-summary", absent: []string{"production"}},
	})
	checkResized(t, hs, viewerFrames)
	checkClean(t, b)

	t.Logf("timings: Keyline and demo site %s, browser %s, first host page with all frames %s, total %s",
		seeded.Round(time.Millisecond), (started - seeded).Round(time.Millisecond),
		(loaded - started).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// byFrameID keys frames by the host page's frame id, the last part of each
// iframe's name (<app key>__<module>__<id>).
func byFrameID(in map[string]frameState) map[string]frameState {
	out := map[string]frameState{}
	for name, f := range in {
		out[name[strings.LastIndex(name, "__")+2:]] = f
	}
	return out
}

func checkFrames(t *testing.T, frames map[string]frameState, want []expectation) {
	t.Helper()
	for _, w := range want {
		f, ok := frames[w.frame]
		if !ok {
			t.Errorf("%s: no such frame on the host page (have %v)", w.frame, keys(frames))
			continue
		}
		failed := false
		for _, s := range w.texts {
			if !strings.Contains(f.Text, s) {
				t.Errorf("%s (%s): %q is not shown", w.frame, f.Path, s)
				failed = true
			}
		}
		lower := strings.ToLower(f.Text)
		for _, s := range w.folded {
			if !strings.Contains(lower, strings.ToLower(s)) {
				t.Errorf("%s (%s): %q is not shown", w.frame, f.Path, s)
				failed = true
			}
		}
		for _, s := range w.absent {
			if strings.Contains(f.Text, s) {
				t.Errorf("%s (%s): %q is shown", w.frame, f.Path, s)
				failed = true
			}
		}
		if failed {
			t.Logf("%s shows:\n%s", w.frame, f.Text)
		}
		var missing []string
		for _, h := range w.hooks {
			if !slices.Contains(f.TestIDs, h) {
				missing = append(missing, h)
			}
		}
		if len(missing) > 0 {
			t.Logf("%s: data-testid hooks not (yet) present: %v", w.frame, missing)
		}
	}
	for id, f := range frames {
		if f.Pwned != nil {
			t.Errorf("%s: injected script ran: window.__pwned = %s", id, *f.Pwned)
		}
		if f.Payloads > 0 {
			t.Errorf("%s: %d element(s) carry the hostile markup as markup", id, f.Payloads)
		}
		if len(f.CSP) > 0 {
			t.Errorf("%s: CSP violations %v", id, f.CSP)
		}
		if !f.Stub {
			t.Errorf("%s: the AP stand-in for all.js did not load", id)
		}
		if strings.Contains(f.Text, "Keyline cannot show this page") {
			t.Errorf("%s: error page: %s", id, f.Text)
		}
	}
}

func checkResized(t *testing.T, hs hostState, ids []string) {
	t.Helper()
	for _, id := range ids {
		if hs.Resized[id] <= 0 {
			var calls []string
			for _, c := range hs.Calls {
				if c.Frame == id {
					calls = append(calls, c.Method+"("+strings.Join(c.Args, ", ")+")")
				}
			}
			t.Errorf("%s: no AP.resize with a positive height reached the host; its AP calls: %v", id, calls)
		}
	}
}

// checkClean fails on console errors, exceptions, error log entries (CSP
// violations and failed loads among them) and requests that tried to leave
// the machine, then forgets them so each phase is judged on its own.
func checkClean(t *testing.T, b *browser) {
	t.Helper()
	problems, external, stubbed := b.recorded()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	for _, u := range external {
		t.Errorf("request left the machine: %s", u)
	}
	if stubbed == 0 {
		t.Error("no page asked for all.js: the CDN interception saw nothing")
	}
	b.mu.Lock()
	b.problems, b.external = nil, nil
	b.mu.Unlock()
}

func keys(m map[string]frameState) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
