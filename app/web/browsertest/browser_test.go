package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/keyline/keyline/app/preview"
	"github.com/keyline/keyline/templates"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// The window: a laptop screen, wide enough for Jira's two issue columns.
const viewportWidth, viewportHeight = 1280, 900

// chromium returns the browser to run, or skips the test (fails it under
// CI=true, where a missing browser means the install step broke).
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	msg := "browser tests need Debian's chromium at " + chromiumPath +
		" (apt-get install -y --no-install-recommends chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser is one headless Chromium tab and what the test saw in it.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	contexts map[cdp.FrameID]runtime.ExecutionContextID // each frame's main world
	problems []string                                   // console errors, exceptions, error log entries
	external []string                                   // requests that would have left the machine
	stubbed  int                                        // all.js requests answered with the stub
}

// startBrowser starts Chromium with the flags the machine notes ask for and
// wires the tab: every request is intercepted, Atlassian's all.js is answered
// with the preview's stand-in, anything else that is not 127.0.0.1 fails and
// is recorded; console errors, exceptions and error log entries are recorded;
// and each frame's main-world execution context is tracked so the test can
// read the frames as the pages themselves see them.
func startBrowser(t *testing.T, ctx context.Context, execPath string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(viewportWidth, viewportHeight),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	b := &browser{t: t, contexts: map[cdp.FrameID]runtime.ExecutionContextID{}}
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	t.Cleanup(cancelTab)
	b.ctx = tabCtx
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	paused := chromedp.Events(tabCtx, fetch.RequestPaused)
	go b.intercept(paused)
	if _, err := chromedp.Call(tabCtx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*"}}}); err != nil {
		t.Fatalf("intercept requests: %v", err)
	}
	// Runs in every frame before the page's own scripts, outside the page's
	// CSP: it reports each CSP violation as a console error.
	_, err := chromedp.Call(tabCtx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
		document.addEventListener("securitypolicyviolation", function (e) {
			(window.__keylineCSP = window.__keylineCSP || []).push(e.violatedDirective + " " + e.blockedURI);
			console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline code") + " in " + location.pathname);
		});`})
	if err != nil {
		t.Fatalf("add the CSP watcher: %v", err)
	}
	return b
}

// listen runs in the tab's event loop: it must be quick and send no command.
func (b *browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExecutionContextCreated:
		var aux struct {
			FrameID   cdp.FrameID `json:"frameId"`
			IsDefault bool        `json:"isDefault"`
		}
		if json.Unmarshal([]byte(ev.Context.AuxData), &aux) == nil && aux.IsDefault {
			b.contexts[aux.FrameID] = ev.Context.ID
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			b.problems = append(b.problems, "console."+string(ev.Type)+": "+strings.Join(parts, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		b.problems = append(b.problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, text))
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			b.problems = append(b.problems, fmt.Sprintf("%s error: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	}
}

// intercept answers the paused requests. Keyline's pages load all.js from
// Atlassian's CDN; here it gets the preview's stand-in, which talks to the
// host page. Nothing else may leave 127.0.0.1.
func (b *browser) intercept(paused func(func(fetch.EventRequestPaused, error) bool)) {
	for ev, err := range paused {
		if err != nil {
			return
		}
		u, _ := url.Parse(ev.Request.URL)
		var callErr error
		switch {
		case ev.Request.URL == templates.AllJSURL:
			b.mu.Lock()
			b.stubbed++
			b.mu.Unlock()
			_, callErr = chromedp.Call(b.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
				RequestID:    ev.RequestID,
				ResponseCode: 200,
				ResponseHeaders: []*fetch.HeaderEntry{
					{Name: "Content-Type", Value: "application/javascript; charset=utf-8"},
					{Name: "Access-Control-Allow-Origin", Value: "*"},
				},
				Body: preview.AllJS(),
			})
		case u != nil && u.Hostname() == "127.0.0.1":
			_, callErr = chromedp.Call(b.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		default:
			b.mu.Lock()
			b.external = append(b.external, ev.Request.URL)
			b.mu.Unlock()
			_, callErr = chromedp.Call(b.ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
		}
		if callErr != nil && b.ctx.Err() == nil {
			b.mu.Lock()
			b.problems = append(b.problems, "interception: "+callErr.Error())
			b.mu.Unlock()
		}
	}
}

// frameState is what a frame's own script world sees.
type frameState struct {
	Path      string   `json:"path"`
	Title     string   `json:"title"`
	Text      string   `json:"text"` // innerText: what is rendered, as rendered
	TestIDs   []string `json:"testids"`
	Pwned     *string  `json:"pwned"` // window.__pwned; nil while undefined
	CSP       []string `json:"csp"`
	Stub      bool     `json:"stub"` // the AP stand-in loaded
	ColorMode string   `json:"colorMode"`
	// Payloads counts elements that carry the hostile markup as markup
	// (a script, an onerror handler): escaping must leave none.
	Payloads int `json:"payloads"`
}

const readFrame = `(() => ({
	path: location.pathname,
	title: document.title,
	text: document.body ? document.body.innerText : "",
	testids: Array.from(document.querySelectorAll("[data-testid]"), e => e.getAttribute("data-testid")),
	pwned: typeof window.__pwned === "undefined" ? null : String(window.__pwned),
	csp: window.__keylineCSP || [],
	stub: !!(window.AP && window.AP._preview),
	colorMode: document.documentElement.getAttribute("data-color-mode") || "",
	payloads: Array.from(document.querySelectorAll("script, [onerror]")).filter(e => e.outerHTML.includes("__pwned")).length,
}))()`

// frames reads every child frame of the host page, by iframe name.
func (b *browser) frames() map[string]frameState {
	b.t.Helper()
	tree, err := chromedp.Call(b.ctx, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		b.t.Fatalf("frame tree: %v", err)
	}
	out := map[string]frameState{}
	for _, child := range tree.FrameTree.ChildFrames {
		f := child.Frame
		b.mu.Lock()
		id, ok := b.contexts[f.ID]
		b.mu.Unlock()
		if !ok {
			b.t.Errorf("frame %q (%s) has no script context", f.Name, f.URL)
			continue
		}
		var st frameState
		if err := b.eval(id, readFrame, &st); err != nil {
			b.t.Errorf("read frame %q: %v", f.Name, err)
			continue
		}
		out[f.Name] = st
	}
	return out
}

// eval runs expr in one execution context and decodes its JSON value.
func (b *browser) eval(id runtime.ExecutionContextID, expr string, v any) error {
	res, err := chromedp.Call(b.ctx, runtime.Evaluate, runtime.EvaluateParams{
		Expression: expr, ContextID: id, ReturnByValue: new(true), AwaitPromise: new(true)})
	if err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return errors.New(res.ExceptionDetails.Text)
	}
	return json.Unmarshal([]byte(res.Result.Value), v)
}

// hostState is what the host page recorded of the AP calls.
type hostState struct {
	Calls []struct {
		Frame  string   `json:"frame"`
		Method string   `json:"method"`
		Args   []string `json:"args"`
	} `json:"calls"`
	Resized map[string]int `json:"resized"`
}

func (b *browser) host() hostState {
	b.t.Helper()
	var hs hostState
	raw, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]byte](`JSON.stringify(window.__keylinePreview || {})`))
	if err != nil {
		b.t.Fatalf("read the host page: %v", err)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		b.t.Fatalf("read the host page: %v", err)
	}
	if err := json.Unmarshal([]byte(s), &hs); err != nil {
		b.t.Fatalf("read the host page: %v", err)
	}
	return hs
}

// waitResized waits until every frame told the host its height.
func (b *browser) waitResized(names []string, within time.Duration) hostState {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		hs := b.host()
		missing := 0
		for _, n := range names {
			if hs.Resized[n] <= 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return hs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setColorScheme emulates the user's light or dark preference and waits for
// a frame to be painted with it.
func (b *browser) setColorScheme(scheme string) {
	b.t.Helper()
	_, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
	if err != nil {
		b.t.Fatalf("emulate %s: %v", scheme, err)
	}
	err = chromedp.Do(b.ctx, chromedp.Evaluate[chromedp.Void](
		`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("wait for paint: %v", err)
	}
}

// screenshot saves the whole host page as a PNG. Chromium does not paint
// iframes outside the viewport into a beyond-the-viewport capture, so the
// viewport is stretched to the page's height for the shot.
func (b *browser) screenshot(dir, name string) {
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
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
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

func (b *browser) recorded() (problems, external []string, stubbed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...), append([]string(nil), b.external...), b.stubbed
}
