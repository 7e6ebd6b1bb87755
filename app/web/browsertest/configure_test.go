package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/keyline/keyline/app/ingest"
)

// TestConfigurePageManagesSources drives the Jira configure page's script
// the way an administrator would: it adds a generic source and sees its
// webhook URL and secret once, proves them by sending a build to that URL,
// sends a signed test delivery and reads both in the delivery log, has invalid
// environment rules refused inline and valid ones saved, rotates the secret
// and deletes the source. Every API call carries a context token that the
// preview host signs for the demo site, as Jira's all.js would.
func TestConfigurePageManagesSources(t *testing.T) {
	exec := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s := startSite(t)
	b := startBrowser(t, ctx, exec)
	b.setColorScheme("light")
	if err := chromedp.Do(b.ctx, chromedp.Navigate(s.hostURL+"/")); err != nil {
		t.Fatalf("load the host page: %v", err)
	}
	b.waitResized(allFrames, 10*time.Second)
	// How the pages load, errors included, is TestPagesInJiraAndConfluence's
	// to judge; this test judges what the configure page does from here on.
	b.forget(func(string) bool { return true })
	f := b.frame("jira-configure")

	// The script reveals the form it drives.
	f.wait(`!document.querySelector("[data-add]").hidden && !!document.querySelector("[data-list] [data-actions]:not([hidden])")`,
		"the script to reveal the add form and the source controls")
	before := f.count()

	// Add a generic source.
	f.run(`(() => {
		const form = document.querySelector("[data-add]");
		form.elements.kind.value = "generic";
		form.elements.name.value = "Nightly CI";
		form.querySelector("button[type=submit]").click();
		return true;
	})()`)
	f.wait(`!document.querySelector("[data-created]").hidden`, "the new source's URL and secret")
	var created struct {
		Heading, URL, Secret, Hint, Live string
		Focused                          bool
		Row                              string
	}
	f.read(`(() => {
		const c = document.querySelector("[data-created]");
		const rows = document.querySelectorAll("[data-list] > [data-source]");
		return {
			heading: c.querySelector("h3").textContent,
			url: c.querySelector("#created-url").textContent,
			secret: c.querySelector("#created-secret").textContent,
			hint: c.querySelector("[data-hint-slot]").innerText,
			live: document.querySelector("[data-live]").textContent,
			focused: document.activeElement === c,
			row: rows[rows.length - 1].getAttribute("data-source"),
		};
	})()`, &created)
	if !strings.HasPrefix(created.URL, s.cfg.BaseURL+"/ingest/") || len(created.Secret) < 32 {
		t.Fatalf("created: URL %q, secret %d characters", created.URL, len(created.Secret))
	}
	if !strings.Contains(created.Heading, "Nightly CI") || !created.Focused {
		t.Errorf("created panel: heading %q, focused %v", created.Heading, created.Focused)
	}
	if !strings.Contains(created.Hint, "/builds") || !strings.Contains(created.Hint, "keyline report") {
		t.Errorf("generic setup hint: %q", created.Hint)
	}
	f.wait(`document.querySelector("[data-live]").textContent.includes("added")`, "the announcement of the new source")
	if got := f.count(); got != before+1 {
		t.Errorf("source count %d after adding, want %d", got, before+1)
	}
	row := fmt.Sprintf(`document.querySelector('[data-source=%q]')`, created.Row)

	// The URL and secret work: a build sent to them is accepted.
	ingestURL := s.keylineURL + strings.TrimPrefix(created.URL, s.cfg.BaseURL)
	build := fmt.Sprintf(`{"pipelineId":"nightly","buildNumber":1,"state":"successful","lastUpdated":%q}`,
		time.Now().UTC().Format(time.RFC3339))
	if code := post(t, ingestURL+"/builds", created.Secret, build); code != http.StatusOK {
		t.Fatalf("build sent with the shown URL and secret: %d, want 200", code)
	}

	// Send a test delivery: a signed ping to the generic API, whose line the
	// log opens with, above the build.
	f.run(row + `.querySelector('[data-action="test"]').click()`)
	f.wait(row+`.querySelector('[data-panel="log"]:not([hidden]) tr.cfg-new')`, "the test delivery in the log")
	lines := logLines(f, row)
	if len(lines) != 2 || lines[0].Event != "ping" || lines[0].Outcome != "ignored" || lines[0].Status != "202" || !lines[0].Test ||
		lines[1].Event != "build" || lines[1].Outcome != "accepted" || lines[1].Status != "200" || lines[1].Test {
		t.Errorf("delivery log %+v, want the test ping (ignored, 202, marked as a test) above the build (accepted, 200)", lines)
	}
	f.wait(`document.querySelector("[data-live]").textContent.includes("Test delivery: ignored, status 202")`, "the test's announcement")
	checkFrames(t, map[string]frameState{"jira-configure": byFrameID(b.frames())["jira-configure"]}, []expectation{{frame: "jira-configure",
		texts: []string{"Nightly CI", created.URL, "Sent a ping to the generic API's /ping, signed with X-Keyline-Signature",
			"ping: the source is set up"}}})
	dir := artifactsDir(t)
	b.screenshotFrame(dir, "configure-light.png", "jira-configure")
	b.setColorScheme("dark")
	b.screenshotFrame(dir, "configure-dark.png", "jira-configure")
	b.setColorScheme("light")
	checkClean(t, b)

	// Invalid rules are refused with the API's reasons beside the editor.
	f.run(row + `.querySelector('[data-action="rules"]').click()`)
	f.run(`(() => {
		const form = ` + row + `.querySelector('[data-panel="rules"]');
		form.querySelector("textarea").value = '{"prod": ["live"], "staging": ["[a-"]}';
		form.querySelector("button[type=submit]").click();
		return true;
	})()`)
	f.wait(row+`.querySelector('[data-panel="rules"] [data-error]:not([hidden])')`, "the rules' problems")
	var refused struct {
		Problems []string
		Invalid  string
		Focused  bool
	}
	f.read(`(() => {
		const form = `+row+`.querySelector('[data-panel="rules"]');
		const area = form.querySelector("textarea");
		return {
			problems: Array.from(form.querySelectorAll("[data-error] li"), li => li.textContent),
			invalid: area.getAttribute("aria-invalid"),
			focused: document.activeElement === area,
		};
	})()`, &refused)
	if len(refused.Problems) != 2 || !strings.Contains(strings.Join(refused.Problems, " "), `"prod"`) ||
		refused.Invalid != "true" || !refused.Focused {
		t.Errorf("refused rules: %+v, want both problems listed and the editor marked invalid and focused", refused)
	}
	// Chromium reports the 400 itself; it is the answer this step expects.
	b.forget(func(p string) bool { return strings.Contains(p, "status of 400") })
	f.run(`(() => {
		const form = ` + row + `.querySelector('[data-panel="rules"]');
		form.querySelector("textarea").value = '{"production": ["live", "prod-*"]}';
		form.querySelector("button[type=submit]").click();
		return true;
	})()`)
	f.wait(row+`.querySelector('[data-field="rules"]').textContent.includes("Production: live, prod-*")`, "the saved rules")
	f.wait(row+`.querySelector('[data-panel="rules"] [data-error]').hidden`, "the problems to clear")

	// Rotate without overlap: a new secret, and the old one stops at once.
	f.run(row + `.querySelector('[data-action="rotate"]').click()`)
	f.run(`(() => {
		const form = ` + row + `.querySelector('[data-panel="rotate"]');
		form.querySelector('input[value="0"]').click();
		form.querySelector("button[type=submit]").click();
		return true;
	})()`)
	f.wait(row+`.querySelector('[data-rotated]:not([hidden]) [data-value]').textContent.length > 0`, "the new secret")
	var rotated string
	f.read(row+`.querySelector('[data-rotated] [data-value]').textContent`, &rotated)
	if rotated == created.Secret {
		t.Error("rotation showed the old secret")
	}
	if code := post(t, ingestURL+"/builds", created.Secret, build); code != http.StatusUnauthorized {
		t.Errorf("old secret after a rotation without overlap: %d, want 401", code)
	}
	if code := post(t, ingestURL+"/builds", rotated, build); code != http.StatusOK {
		t.Errorf("new secret: %d, want 200", code)
	}

	// Delete, after confirming: the row goes and the URL stops answering.
	f.run(row + `.querySelector('[data-action="delete"]').click()`)
	f.wait(`!`+row+`.querySelector('[data-panel="delete"]').hidden`, "the confirmation")
	f.run(row + `.querySelector("[data-confirm-delete]").click()`)
	f.wait(`!`+row, "the deleted source's row to go")
	if got := f.count(); got != before {
		t.Errorf("source count %d after deleting, want %d", got, before)
	}
	f.wait(`document.activeElement === document.getElementById("sources-heading")`, "focus on the sources heading")
	if code := post(t, ingestURL+"/builds", rotated, build); code != http.StatusNotFound {
		t.Errorf("deleted source's URL: %d, want 404", code)
	}
	checkClean(t, b)
}

// logLine is one row of a source's delivery log as the page shows it.
type logLine struct {
	Event, Outcome, Status, Reason string
	// Test is whether the row is marked as Keyline's own test.
	Test bool
}

// logLines reads the delivery log of the row that the expression row finds.
func logLines(f *frameWorld, row string) []logLine {
	f.b.t.Helper()
	var lines []logLine
	f.read(`Array.from(`+row+`.querySelectorAll('[data-panel="log"] tbody tr'), tr => ({
		event: tr.cells[1].querySelector("code").textContent,
		test: tr.classList.contains("cfg-test-line"),
		outcome: tr.cells[2].textContent,
		status: tr.cells[3].textContent,
		reason: tr.cells[4].textContent,
	}))`, &lines)
	return lines
}

// TestConfigurePageSetsProviderSecret drives a PagerDuty source, whose
// signing secret PagerDuty issues: the page says it is not set, the test
// button refuses to pretend, the secret is set with the keyboard alone (and
// a bad one is refused with the reason), and then a delivery signed with it
// is accepted and the test delivery verifies.
func TestConfigurePageSetsProviderSecret(t *testing.T) {
	exec := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s := startSite(t)
	b := startBrowser(t, ctx, exec)
	b.setColorScheme("light")
	if err := chromedp.Do(b.ctx, chromedp.Navigate(s.hostURL+"/")); err != nil {
		t.Fatalf("load the host page: %v", err)
	}
	b.waitResized(allFrames, 10*time.Second)
	b.forget(func(string) bool { return true })
	f := b.frame("jira-configure")
	f.wait(`!document.querySelector("[data-add]").hidden`, "the script to reveal the add form")

	f.run(`(() => {
		const form = document.querySelector("[data-add]");
		form.elements.kind.value = "pagerduty";
		form.elements.name.value = "Acme PagerDuty";
		form.querySelector("button[type=submit]").click();
		return true;
	})()`)
	f.wait(`!document.querySelector("[data-created]").hidden`, "the new source")
	var created struct{ Row, URL string }
	f.read(`(() => {
		const rows = document.querySelectorAll("[data-list] > [data-source]");
		return {row: rows[rows.length - 1].getAttribute("data-source"), url: document.querySelector("#created-url").textContent};
	})()`, &created)
	f.run(`document.querySelector("[data-created] [data-dismiss]").click()`)
	row := fmt.Sprintf(`document.querySelector('[data-source=%q]')`, created.Row)
	ingestURL := s.keylineURL + strings.TrimPrefix(created.URL, s.cfg.BaseURL)

	// Not set yet: the row says so, and the test button refuses.
	var state struct {
		State      string
		ButtonSeen bool
	}
	f.read(`(() => ({
		state: `+row+`.querySelector('[data-field="secret-state"]:not([hidden])').textContent,
		buttonSeen: !`+row+`.querySelector('[data-action="secret"]').hidden,
	}))()`, &state)
	if !strings.Contains(state.State, "Not set") || !state.ButtonSeen {
		t.Errorf("new PagerDuty source: state %q, button shown %v; want Not set and the button", state.State, state.ButtonSeen)
	}
	f.run(row + `.querySelector('[data-action="test"]').click()`)
	f.wait(row+`.querySelector('[data-row-error]:not([hidden])').textContent.includes("set the signing secret PagerDuty gave you first")`,
		"the refusal to test without PagerDuty's secret")
	b.forget(func(p string) bool { return strings.Contains(p, "status of 409") })

	// With the keyboard: Enter on the button opens the form with the field
	// focused; typing and Enter submit it.
	f.run(row + `.querySelector('[data-action="secret"]').focus()`)
	press(t, b, "\r")
	f.wait(`document.activeElement === `+row+`.querySelector('[data-panel="secret"] input[type="password"]')`, "focus in the secret field")
	press(t, b, "short")
	press(t, b, "\r")
	f.wait(row+`.querySelector('[data-panel="secret"] [data-error]:not([hidden])').textContent.includes("16 to 512 bytes")`, "the bad secret's reason")
	b.forget(func(p string) bool { return strings.Contains(p, "status of 400") })
	var invalid string
	f.read(row+`.querySelector('[data-panel="secret"] input').getAttribute("aria-invalid")`, &invalid)
	if invalid != "true" {
		t.Errorf("bad secret: aria-invalid %q, want true", invalid)
	}
	const issued = "ChGJGwDeuvCDPEMT5uMz4jUiUPOv9ngkIIlTr1VGNLzZSeNaIxXhrlc1hmqLxObd"
	f.run(row + `.querySelector('[data-panel="secret"] input').select()`)
	press(t, b, issued)
	press(t, b, "\r")
	f.wait(row+`.querySelector('[data-panel="secret"] [data-saved]:not([hidden])').textContent.includes("Secret saved")`, "the confirmation")
	var after struct {
		State, Value string
		ErrorShown   bool
	}
	f.read(`(() => ({
		state: `+row+`.querySelector('[data-field="secret-state-text"]').textContent.trim(),
		value: `+row+`.querySelector('[data-panel="secret"] input').value,
		errorShown: !`+row+`.querySelector('[data-panel="secret"] [data-error]').hidden,
	}))()`, &after)
	if after.State != "Set" || after.Value != "" || after.ErrorShown {
		t.Errorf("after saving: %+v; want state Set, the field emptied and no error", after)
	}
	f.wait(`document.querySelector("[data-live]").textContent.includes("signing secret was saved")`, "the announcement")

	// PagerDuty's deliveries verify now, and so does the test.
	if code := sendPagerDutyPing(t, ingestURL, issued); code != http.StatusAccepted {
		t.Errorf("PagerDuty delivery signed with the saved secret: %d, want 202", code)
	}
	f.run(row + `.querySelector('[data-action="test"]').click()`)
	f.wait(row+`.querySelector('[data-test-result]:not([hidden])')`, "the test's result")
	var result string
	f.read(row+`.querySelector('[data-test-result]').textContent`, &result)
	if !strings.Contains(result, "pagey.ping") || !strings.Contains(result, "ignored, status 202") {
		t.Errorf("test result %q", result)
	}
	f.wait(row+`.querySelector('[data-panel="log"]:not([hidden]) tr.cfg-new')`, "the test delivery in the log")
	if lines := logLines(f, row); len(lines) != 2 || lines[0].Event != "pagey.ping" || !lines[0].Test || lines[0].Status != "202" ||
		lines[1].Event != "pagey.ping" || lines[1].Test {
		t.Errorf("delivery log %+v, want Keyline's test above PagerDuty's delivery, both pagey.ping answered 202", lines)
	}
	checkClean(t, b)
}

// press types keys into whatever has the focus, as a keyboard would.
func press(t *testing.T, b *browser, keys string) {
	t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.KeyEvent(keys)); err != nil {
		t.Fatalf("press %q: %v", keys, err)
	}
}

// sendPagerDutyPing posts PagerDuty's pagey.ping, signed with secret, to a
// webhook URL as PagerDuty would, and returns the status.
func sendPagerDutyPing(t *testing.T, target, secret string) int {
	t.Helper()
	td, err := ingest.NewTestDelivery(ingest.KindPagerDuty, []byte(secret), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// PagerDuty's id, not one of Keyline's tests.
	td.Header.Set("X-Webhook-Id", "01FKZOXA868SHYEE4DVNWB5P9W")
	req, err := http.NewRequest(http.MethodPost, target, td.Body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = td.Header
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// post sends a generic-API delivery with a bearer secret and returns the status.
func post(t *testing.T, target, secret, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// frameWorld runs scripts in one frame's main world, as its own scripts do.
type frameWorld struct {
	b  *browser
	id runtime.ExecutionContextID
	// name is the host page's id of the frame, for messages.
	name string
}

// frame finds the host page's frame by its id (the suffix of its name).
func (b *browser) frame(id string) *frameWorld {
	b.t.Helper()
	tree, err := chromedp.Call(b.ctx, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		b.t.Fatalf("frame tree: %v", err)
	}
	for _, child := range tree.FrameTree.ChildFrames {
		if !strings.HasSuffix(child.Frame.Name, "__"+id) {
			continue
		}
		b.mu.Lock()
		ctxID, ok := b.contexts[child.Frame.ID]
		b.mu.Unlock()
		if !ok {
			b.t.Fatalf("frame %s has no script context", id)
		}
		return &frameWorld{b: b, id: ctxID, name: id}
	}
	b.t.Fatalf("no frame %s on the host page", id)
	return nil
}

// read evaluates expr in the frame and decodes its value into v.
func (f *frameWorld) read(expr string, v any) {
	f.b.t.Helper()
	if err := f.b.eval(f.id, expr, v); err != nil {
		f.b.t.Fatalf("%s: %v\nin: %s", f.name, err, expr)
	}
}

// run evaluates expr in the frame for its effect; its value, often
// undefined, is not read.
func (f *frameWorld) run(expr string) {
	f.b.t.Helper()
	var ok bool
	f.read("("+expr+", true)", &ok)
}

// wait polls cond in the frame until it is truthy, failing after 10 seconds.
func (f *frameWorld) wait(cond, what string) {
	f.b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ok bool
		// Until the condition can be evaluated (an element not there yet), it is false.
		f.read("(() => { try { return !!("+cond+"); } catch (e) { return false; } })()", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var text string
			f.read(`document.body.innerText`, &text)
			f.b.t.Fatalf("%s: waited 10s for %s; the frame shows:\n%s", f.name, what, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// count is the number the sources heading shows.
func (f *frameWorld) count() int {
	f.b.t.Helper()
	var n int
	f.read(`Number(document.querySelector("[data-count]").textContent)`, &n)
	return n
}

// forget drops recorded problems a step expected, such as Chromium's own
// console line for an API answer of 400.
func (b *browser) forget(expected func(string) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := b.problems[:0]
	for _, p := range b.problems {
		if !expected(p) {
			kept = append(kept, p)
		}
	}
	b.problems = kept
}

// screenshotFrame saves one frame of the host page as a PNG, stretching the
// viewport as screenshot does so the whole frame is painted.
func (b *browser) screenshotFrame(dir, name, id string) {
	b.t.Helper()
	height, err := chromedp.Run(b.ctx, chromedp.Evaluate[int64](`Math.ceil(document.documentElement.scrollHeight)`))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	err = chromedp.Do(b.ctx, chromedp.EmulateViewport(viewportWidth, min(height, 16000)),
		chromedp.Evaluate[chromedp.Void](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	png, err := chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.ID("frame-"+id)))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(viewportWidth, viewportHeight)); err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d KiB)", path, len(png)>>10)
}
