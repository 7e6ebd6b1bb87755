package templates

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/keyline/keyline/app/chart"
	"github.com/keyline/keyline/static"
)

// metricsView has one of everything, a gap in a trend, and hostile text
// and URLs where a provider controls them.
func metricsView() MetricsView {
	at := Moment{Relative: "3 d ago", ISO: "2026-11-20T09:00:00Z", Exact: "20 Nov 2026, 09:00 UTC"}
	ok := Lozenge{Label: "Successful", Tone: ToneSuccess}
	failed := Lozenge{Label: "Failed", Tone: ToneFailed}
	from := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	week := func(i int) time.Time { return from.AddDate(0, 0, 7*i) }
	return MetricsView{
		Scope:         "PAY · production-type environments",
		Period:        "1 Sep – 30 Nov 2026 (UTC)",
		BenchmarkYear: 2023,
		Figures: []FigureView{
			{ID: "deployment-frequency", Name: "Deployment frequency", Value: "2.4 a day", Raw: []string{"218 deployments", "daily"},
				Sample: "N = 218", Band: &Lozenge{Label: "Elite", Tone: ToneSuccess}, BandNote: "DORA 2023 benchmark",
				Definition: "Successful production deployments per day of the window."},
			{ID: "lead-time", Name: "Lead time for changes", Value: "3 h 20 min", Raw: []string{"p90 2 d 4 h"},
				Sample: "N = 42 · 3 excluded · 5 pending", Band: &Lozenge{Label: "High", Tone: ToneInProgress}, BandNote: "DORA 2023 benchmark",
				Definition: "From a change's first commit to its first successful production deployment."},
			{ID: "cycle-time", Name: "Cycle time", Value: "", Sample: "N = 0", Definition: "From in progress to production."},
		},
		Trends: []TrendView{
			{ID: "lead-time", Title: "Lead time for changes, median per week", Unit: "hours", Points: []TrendPoint{
				{Label: "1 Sep", Start: week(0), Value: 5.3, Display: "5 h 18 min", N: 4},
				{Label: "8 Sep", Start: week(1), Missing: true},
				{Label: "15 Sep", Start: week(2), Value: 2, Display: "2 h", N: 7},
				{Label: "22 Sep", Start: week(3), Value: 4, Display: "4 h", N: 3},
			}},
		},
		Timeline: TimelineView{From: from, To: from.AddDate(0, 0, 30), Omitted: 3, Lanes: []TimelineLane{
			{Environment: "staging-eu", Type: "staging", TypeLabel: "Staging", Dots: []TimelineDot{
				{At: from.AddDate(0, 0, 2), State: ok, Title: "checkout #117 · successful · 3 Sep 14:03", URL: "https://ci.example.com/117"},
			}},
			{Environment: "production", Type: "production", TypeLabel: "Production", Dots: []TimelineDot{
				{At: from.AddDate(0, 0, 3), State: ok, Title: "checkout #118 · successful · 4 Sep 10:00", URL: "https://ci.example.com/118"},
				{At: from.AddDate(0, 0, 9), State: failed, Title: "checkout #119 · failed · 10 Sep 10:00", URL: "javascript:alert(4)"},
			}},
		}},
		Slowest: []SlowChangeView{
			{Kind: "pull request", Title: "<script>alert(1)</script>", Ref: "#42", URL: "javascript:alert(1)",
				Issues:   []IssueLink{{Key: "PAY-7", URL: "https://acme.atlassian.net/browse/PAY-7"}, {Key: "PAY-8", URL: "javascript:alert(2)"}},
				LeadTime: "4 d 3 h", FirstCommit: at, Deployed: at, Environment: "production", Service: "checkout"},
			{Kind: "commit", Title: "PAY-9: fix rounding", Ref: "4444444", URL: "https://github.com/acme/pay/commit/4444444",
				LeadTime: "2 d", FirstCommit: at, Deployed: at, Environment: "production", Service: "checkout"},
		},
		Filter: &MetricsFilterView{APIPath: "/jira/api/projects/PAY/metrics", From: "2026-09-01", To: "2026-11-30", TimeZone: "UTC",
			Service: "checkout", Services: []string{"billing", "checkout"}, Environments: []string{"production", "staging-eu"},
			Year: 2023, Years: []int{2019, 2021, 2023}},
		CSVLinks: []CSVLink{
			{Label: "Deployments (CSV)", URL: "/jira/api/projects/PAY/metrics/deployments.csv?from=2026-09-01"},
			{Label: "Changes (CSV)", URL: "javascript:alert(5)"},
		},
	}
}

func releaseNotesView() ReleaseNotesView {
	at := Moment{Relative: "2 d ago", ISO: "2026-09-04T10:00:00Z", Exact: "4 Sep 2026, 10:00 UTC"}
	return ReleaseNotesView{
		Range: "Shipped to production between checkout #117 and #118",
		Total: 3, Omitted: 2,
		Groups: []ReleaseNoteGroup{
			{Type: "Bug", Issues: []ReleaseNoteItem{
				{Key: "PAY-7", URL: "https://acme.atlassian.net/browse/PAY-7", Summary: "Totals round wrongly", Status: "Done", Shipped: at},
				{Key: "PAY-8", URL: "javascript:alert(1)", Summary: "<img src=x onerror=alert(2)>", Status: "In Progress"},
			}},
			{Type: "New Feature", Issues: []ReleaseNoteItem{{Key: "PAY-9", URL: "https://acme.atlassian.net/browse/PAY-9", Shipped: at}}},
		},
	}
}

// inert checks that nothing in the rendered markup can run script: the
// hostile texts stay text and no URL becomes a javascript: link.
func inert(t *testing.T, d doc) {
	t.Helper()
	if strings.Contains(d.raw, "<script>alert") || strings.Contains(d.raw, "<img") {
		t.Error("hostile text became markup")
	}
	for n := range d.root.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "script" {
			if src, ok := attr(n, "src"); !ok || src == "" || n.FirstChild != nil {
				t.Errorf("inline or source-less script %q", src)
			}
		}
		for _, a := range n.Attr {
			v := strings.ToLower(strings.TrimSpace(a.Val))
			if strings.HasPrefix(a.Key, "on") || a.Key == "style" || strings.HasPrefix(v, "javascript:") || strings.Contains(v, "about:invalid") {
				t.Errorf("<%s %s=%q>", n.Data, a.Key, a.Val)
			}
		}
		if n.Data == "a" {
			if target, _ := attr(n, "target"); target == "_blank" {
				if rel, _ := attr(n, "rel"); rel != "noopener noreferrer" {
					t.Errorf("link %q opens a new tab with rel %q", text(n), rel)
				}
			}
		}
	}
}

func TestMetricsSection(t *testing.T) {
	d := render(t, MetricsSection(metricsView()))
	m := d.one(d.root, "metrics")
	inert(t, d)

	for _, tt := range []struct {
		id   string
		want []string
		not  []string
	}{
		{"figure-deployment-frequency", []string{"Deployment frequency", "2.4 a day", "218 deployments", "daily", "N = 218", "Elite DORA 2023 benchmark",
			"Successful production deployments per day"}, nil},
		{"figure-lead-time", []string{"3 h 20 min", "p90 2 d 4 h", "N = 42 · 3 excluded · 5 pending", "High DORA 2023 benchmark"}, nil},
		// A figure without a value or band says so, and shows no band.
		{"figure-cycle-time", []string{"Cycle time", "No value", "N = 0"}, []string{"DORA"}},
		{"trend-lead-time", []string{"Lead time for changes, median per week", "8 Sep No sample 0", "1 Sep 5 h 18 min 4"}, nil},
		{"timeline", []string{"Deployments", "staging-eu", "production", "Successful", "Failed", "checkout #119 · failed", "3 more deployments not shown."}, nil},
		{"slowest", []string{"pull request #42 <script>alert(1)</script>", "PAY-7 PAY-8", "4 d 3 h", "3 d ago", "checkout", "commit 4444444 PAY-9: fix rounding"}, nil},
		{"metrics-filter", []string{"From", "To", "Time zone", "Service", "Environment", "Benchmark", "Apply"}, nil},
		{"csv-links", []string{"Deployments (CSV)", "Changes (CSV)"}, nil},
	} {
		t.Run(tt.id, func(t *testing.T) {
			got := text(d.one(m, tt.id))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%s reads %q; lacks %q", tt.id, got, w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("%s reads %q; has %q", tt.id, got, w)
				}
			}
		})
	}
	if len(all(m, testID("metrics-empty"))) != 0 {
		t.Error("metrics with figures show the empty state")
	}
	if band := all(d.one(m, "figure-lead-time"), tag("span")); len(band) == 0 {
		t.Error("no band lozenge")
	} else if tone, _ := attr(band[0], "data-tone"); tone != "information" {
		t.Errorf("band lozenge tone %q", tone)
	}

	// Links: only http(s) URLs become links; moments are <time> elements.
	slow := d.one(m, "slowest")
	var hrefs []string
	for _, a := range all(slow, tag("a")) {
		h, _ := attr(a, "href")
		hrefs = append(hrefs, h)
	}
	if strings.Join(hrefs, " ") != "https://acme.atlassian.net/browse/PAY-7 https://github.com/acme/pay/commit/4444444" {
		t.Errorf("slowest-changes links %q", hrefs)
	}
	times := all(all(slow, testID("slow-change"))[0], tag("time"))
	if len(times) != 2 {
		t.Fatalf("%d <time> elements in a slow change, want first commit and deployed", len(times))
	}
	if dt, _ := attr(times[0], "datetime"); dt != "2026-11-20T09:00:00Z" {
		t.Errorf("datetime %q", dt)
	}
	if title, _ := attr(times[1], "title"); title != "20 Nov 2026, 09:00 UTC" {
		t.Errorf("time title %q", title)
	}
	csv := all(d.one(m, "csv-links"), tag("a"))
	if len(csv) != 1 {
		t.Fatalf("%d CSV links, want only the safe one", len(csv))
	}
	if h, _ := attr(csv[0], "href"); h != "/jira/api/projects/PAY/metrics/deployments.csv?from=2026-09-01" {
		t.Errorf("CSV link %q", h)
	}
}

func TestMetricsTrendChart(t *testing.T) {
	d := render(t, MetricsSection(metricsView()))
	trend := d.one(d.root, "trend-lead-time")
	svgs := all(trend, tag("svg"))
	if len(svgs) != 1 {
		t.Fatalf("%d svg elements in a trend", len(svgs))
	}
	svg := svgs[0]
	if role, _ := attr(svg, "role"); role != "img" {
		t.Errorf("trend svg role %q", role)
	}
	label, _ := attr(svg, "aria-label")
	if want := "Lead time for changes, median per week: 4 periods from 1 Sep to 22 Sep, 1 without a sample; lowest 2 h (15 Sep), highest 5 h 18 min (1 Sep)."; label != want {
		t.Errorf("aria-label %q, want %q", label, want)
	}
	if vb, _ := attr(svg, "viewBox"); vb == "" {
		t.Error("trend svg has no viewBox")
	}
	if _, ok := attr(svg, "width"); ok {
		t.Error("trend svg has a fixed width and does not scale")
	}

	// One dot per period with a sample, each with its tooltip; the gap has none.
	dots := all(svg, tag("circle"))
	var tips []string
	for _, c := range dots {
		tips = append(tips, text(c))
	}
	if strings.Join(tips, "|") != "1 Sep: 5 h 18 min (N = 4)|15 Sep: 2 h (N = 7)|22 Sep: 4 h (N = 3)" {
		t.Errorf("dot tooltips %q", tips)
	}
	// The gap breaks the line: one lone dot, then one line of two, and no
	// point anywhere sits on the zero line at the gap's x.
	lines := all(svg, tag("polyline"))
	if len(lines) != 1 {
		t.Fatalf("%d polylines, want the one after the gap", len(lines))
	}
	pts, _ := attr(lines[0], "points")
	if len(strings.Fields(pts)) != 2 {
		t.Errorf("line points %q, want the two periods after the gap", pts)
	}
	gapX := trendFrame.PlotLeft() + (trendFrame.PlotRight()-trendFrame.PlotLeft())/3
	zero := trendFrame.PlotBottom()
	for _, c := range dots {
		cx, _ := attr(c, "cx")
		cy, _ := attr(c, "cy")
		if cx == chart.Num(gapX) || cy == chart.Num(zero) {
			t.Errorf("a dot at (%s, %s) draws the gap or a zero", cx, cy)
		}
	}
	if strings.Contains(pts, chart.Num(gapX)+",") {
		t.Errorf("the line %q passes through the gap", pts)
	}
	// Tick labels are nice numbers, with the unit.
	var ticks []string
	for _, tx := range all(svg, tag("text")) {
		ticks = append(ticks, text(tx))
	}
	if got := strings.Join(ticks, " "); !strings.HasPrefix(got, "0 2 4 6 1 Sep 8 Sep 15 Sep 22 Sep hours") {
		t.Errorf("axis labels %q", got)
	}
	// The data table is there for screen readers and without the chart.
	table := d.one(trend, "trend-table")
	if len(all(table, tag("tr"))) != 5 {
		t.Errorf("trend table has %d rows, want a header and 4 periods", len(all(table, tag("tr"))))
	}
}

func TestMetricsTimeline(t *testing.T) {
	d := render(t, MetricsSection(metricsView()))
	tl := d.one(d.root, "timeline")
	svg := all(tl, tag("svg"))[0]
	lanes := all(svg, func(n *html.Node) bool { _, ok := attr(n, "data-environment-type"); return ok })
	if len(lanes) != 2 {
		t.Fatalf("%d lanes, want one per environment", len(lanes))
	}
	if typ, _ := attr(lanes[1], "data-environment-type"); typ != "production" {
		t.Errorf("second lane is %q", typ)
	}
	// Successes are circles, the failure a diamond; tooltips on each.
	prod := lanes[1]
	if c, p := all(prod, tag("circle")), all(prod, tag("path")); len(c) != 1 || len(p) != 1 || text(p[0]) != "checkout #119 · failed · 10 Sep 10:00" {
		t.Errorf("production lane: %d circles, %d diamonds", len(c), len(p))
	} else if tone, _ := attr(p[0], "data-tone"); tone != "danger" {
		t.Errorf("failed dot tone %q", tone)
	}
	// Only the http(s) deployment URLs are links.
	links := all(svg, tag("a"))
	if len(links) != 2 {
		t.Errorf("%d links on the timeline, want 2", len(links))
	}
	for _, a := range links {
		if l, _ := attr(a, "aria-label"); !strings.HasPrefix(l, "checkout #11") {
			t.Errorf("timeline link labelled %q", l)
		}
	}
	label, _ := attr(svg, "aria-label")
	if label != "Deployments from 1 Sep 2026 to 1 Oct 2026: 3 in 2 environments." {
		t.Errorf("timeline aria-label %q", label)
	}
	if len(all(d.one(tl, "timeline-table"), tag("tr"))) != 4 {
		t.Error("the timeline's table does not list every deployment")
	}
}

func TestMetricsFilter(t *testing.T) {
	d := render(t, MetricsSection(metricsView()))
	form := d.one(d.root, "metrics-filter")
	if form.Data != "form" {
		t.Fatalf("metrics-filter is a <%s>", form.Data)
	}
	for k, want := range map[string]string{"method": "get", "data-api": "/jira/api/projects/PAY/metrics", "class": "metrics-filter"} {
		if got, _ := attr(form, k); got != want {
			t.Errorf("form %s=%q, want %q", k, got, want)
		}
	}
	// Every control has a label.
	labels := map[string]bool{}
	for _, l := range all(form, tag("label")) {
		f, _ := attr(l, "for")
		labels[f] = true
	}
	controls := all(form, func(n *html.Node) bool { return n.Data == "input" || n.Data == "select" })
	if len(controls) != 6 {
		t.Errorf("%d controls, want from, to, time zone, service, environment, year", len(controls))
	}
	values := map[string]string{}
	for _, c := range controls {
		id, _ := attr(c, "id")
		name, _ := attr(c, "name")
		if !labels[id] {
			t.Errorf("control %q has no label", name)
		}
		if c.Data == "input" {
			values[name], _ = attr(c, "value")
			continue
		}
		opts := all(c, tag("option"))
		if v, _ := attr(opts[0], "value"); name != "year" && (v != "" || text(opts[0]) != "All") {
			t.Errorf("%s's first option is %q=%q, want All", name, v, text(opts[0]))
		}
		for _, o := range opts {
			if _, sel := attr(o, "selected"); sel {
				values[name], _ = attr(o, "value")
			}
		}
	}
	want := map[string]string{"from": "2026-09-01", "to": "2026-11-30", "tz": "UTC", "service": "checkout", "environment": "", "year": "2023"}
	for k, v := range want {
		if values[k] != v {
			t.Errorf("%s = %q, want %q", k, values[k], v)
		}
	}
	var types []string
	for _, c := range all(form, tag("input")) {
		ty, _ := attr(c, "type")
		types = append(types, ty)
	}
	if strings.Join(types, " ") != "date date text" {
		t.Errorf("input types %q", types)
	}
	if len(all(form, tag("button"))) != 1 {
		t.Error("no submit button")
	}

	// The macro's metrics have no filter.
	v := metricsView()
	v.Filter = nil
	if d := render(t, MetricsSection(v)); len(all(d.root, tag("form"))) != 0 {
		t.Error("a fixed scope renders a form")
	}
}

func TestMetricsEmpty(t *testing.T) {
	v := metricsView()
	v.Empty = true
	d := render(t, MetricsSection(v))
	empty := d.one(d.root, "metrics-empty")
	if got := text(empty); !strings.Contains(got, "a pipeline must report its deployments") || !strings.Contains(got, "production-type environments") {
		t.Errorf("empty state reads %q", got)
	}
	for _, id := range []string{"figure-lead-time", "trend-lead-time", "timeline", "slowest", "csv-links"} {
		if len(all(d.root, testID(id))) != 0 {
			t.Errorf("the empty state shows %s", id)
		}
	}
	// The filter stays, so the reader can widen the window.
	d.one(d.root, "metrics-filter")
}

func TestReleaseNotesSection(t *testing.T) {
	d := render(t, ReleaseNotesSection(releaseNotesView()))
	inert(t, d)
	rn := d.one(d.root, "release-notes")
	if h := all(rn, tag("h2")); len(h) != 1 || text(h[0]) != "Shipped to production between checkout #117 and #118" {
		t.Errorf("heading %v", h)
	}
	bugs := d.one(rn, "release-group-bug")
	if h := all(bugs, tag("h3")); len(h) != 1 || text(h[0]) != "Bug 2" {
		t.Errorf("bug group heading reads %q", text(h[0]))
	}
	items := all(bugs, testID("release-note"))
	if len(items) != 2 {
		t.Fatalf("%d bugs", len(items))
	}
	if got := text(items[0]); got != "PAY-7 Totals round wrongly Done shipped 2 d ago" {
		t.Errorf("first bug reads %q", got)
	}
	if got := text(items[1]); got != "PAY-8 <img src=x onerror=alert(2)> In Progress not shipped yet" || len(all(items[1], tag("a"))) != 0 {
		t.Errorf("hostile bug reads %q", got)
	}
	feature := d.one(rn, "release-group-new-feature")
	if got := text(feature); !strings.Contains(got, "New Feature 1") || !strings.Contains(got, "Jira has not told Keyline about this issue yet") {
		t.Errorf("feature group reads %q", got)
	}
	if got := text(rn); !strings.Contains(got, "2 more issues not shown.") || !strings.Contains(got, "3 issues shipped") {
		t.Errorf("release notes read %q", got)
	}
	if len(all(rn, testID("release-notes-empty"))) != 0 {
		t.Error("release notes with issues show the empty state")
	}

	empty := render(t, ReleaseNotesSection(ReleaseNotesView{Range: "1 – 30 Sep 2026"}))
	if got := text(empty.one(empty.root, "release-notes-empty")); got != "Nothing was shipped in this range." {
		t.Errorf("empty release notes read %q", got)
	}
}

func TestProjectPageShowsMetrics(t *testing.T) {
	v := ProjectView{Page: Page{Title: "Release metrics", StaticPrefix: "/jira/static", AssetVersion: "t1"},
		ProjectKey: "PAY", SiteHost: "acme.atlassian.net", IssuesKnown: 12, Metrics: metricsView()}
	d := render(t, ProjectPage(v))
	inert(t, d)
	page := d.one(d.root, "project-page")
	if h := all(page, tag("h1")); len(h) != 1 || text(h[0]) != "Release metrics for PAY" {
		t.Errorf("heading %q", text(h[0]))
	}
	if text(d.one(page, "project-key")) != "PAY" {
		t.Error("project key")
	}
	d.one(page, "metrics")
	if got := text(d.one(page, "issues-known")); got != "Keyline knows 12 issues of this project from Jira's webhooks so far." {
		t.Errorf("issues-known reads %q", got)
	}
	var srcs []string
	for _, s := range all(d.root, tag("script")) {
		src, _ := attr(s, "src")
		srcs = append(srcs, src)
	}
	if len(srcs) != 3 || srcs[2] != "/jira/static/js/metrics.js?v=t1" {
		t.Errorf("scripts %q, want all.js, keyline.js and metrics.js", srcs)
	}

	// Without a filter or downloads there is nothing for the script to do.
	v.Metrics = MetricsView{Empty: true}
	d = render(t, ProjectPage(v))
	if strings.Contains(d.raw, "metrics.js") {
		t.Error("metrics.js is loaded with nothing to enhance")
	}
	d.one(d.root, "metrics-empty")
}

func TestMacroMetricsAndReleaseNotes(t *testing.T) {
	mv, rv := metricsView(), releaseNotesView()
	mv.Filter = nil
	base := MacroView{Page: Page{Title: "Keyline", StaticPrefix: "/confluence/static"}, Projects: []string{"PAY"},
		SiteHost: "acme.atlassian.net", Jira: SiteLink{Connected: true}, Visible: true, Metrics: &mv, ReleaseNotes: &rv,
		AsOf: "2 Jan 2026, 15:04 UTC"}
	for _, tt := range []struct {
		name    string
		view    string
		visible bool
		static  bool
		want    []string
		wantIDs []string
		not     []string
		notIDs  []string
	}{
		{name: "metrics", view: "metrics", visible: true, want: []string{"Release metrics", "3 h 20 min"},
			wantIDs: []string{"metrics", "figure-lead-time", "trend-lead-time", "timeline", "slowest"}, notIDs: []string{"metrics-filter", "release-notes", "macro-status"}},
		{name: "release notes", view: "release-notes", visible: true, want: []string{"Release notes", "Totals round wrongly"},
			wantIDs: []string{"release-notes", "release-group-bug"}, notIDs: []string{"metrics", "macro-status"}},
		{name: "metrics hidden", view: "metrics", not: []string{"3 h 20 min"}, notIDs: []string{"metrics"}},
		{name: "release notes hidden", view: "release-notes", not: []string{"Totals round wrongly"}, notIDs: []string{"release-notes"}},
		{name: "static metrics", view: "metrics", visible: true, static: true,
			want: []string{"Release metrics", "Lead time for changes", "3 h 20 min", "p90 2 d 4 h", "High (DORA 2023 benchmark)",
				"Lead time for changes, median per week", "8 Sep No sample 0", "Slowest changes", "PAY-7, PAY-8", "20 Nov 2026, 09:00 UTC"},
			not: []string{"<svg", "<form", "<script", "class=", "<polyline", "<details"}},
		{name: "static release notes", view: "release-notes", visible: true, static: true,
			want: []string{"Release notes", "Bug (2)", "PAY-7 Totals round wrongly · Done · shipped 4 Sep 2026, 10:00 UTC", "New Feature (1)", "2 more issues not shown."},
			not:  []string{"<svg", "<form", "<script", "class=", "<img"}},
		{name: "static metrics hidden", view: "metrics", static: true, not: []string{"3 h 20 min"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := base
			v.View, v.Visible = tt.view, tt.visible
			c := Macro(v)
			if tt.static {
				c = MacroStatic(v)
			}
			d := render(t, c)
			inert(t, d)
			got := text(d.root)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("macro reads %q; lacks %q", got, w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(d.raw, w) {
					t.Errorf("macro has %q", w)
				}
			}
			for _, id := range tt.wantIDs {
				d.one(d.root, id)
			}
			for _, id := range tt.notIDs {
				if len(all(d.root, testID(id))) != 0 {
					t.Errorf("macro shows %s", id)
				}
			}
		})
	}
	// A metrics or release-notes view without its data shows neither, nor
	// the status view in their place.
	v := base
	v.View, v.Metrics = "metrics", nil
	if d := render(t, Macro(v)); len(all(d.root, testID("macro-status"))) != 0 || len(all(d.root, testID("metrics"))) != 0 {
		t.Error("a metrics macro without metrics shows something else")
	}
}

// TestChartMarkContrast checks that the charts' dots and lines stand out
// from the page by WCAG's 3:1 for graphics, in both themes; their text is
// covered by TestColourContrast.
func TestChartMarkContrast(t *testing.T) {
	css, err := static.FS.ReadFile("css/keyline.css")
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string][2]string{}
	for _, m := range regexp.MustCompile(`--(ds-[a-z-]+):\s*light-dark\((#[0-9A-Fa-f]+),\s*(#[0-9A-Fa-f]+)\)`).FindAllStringSubmatch(string(css), -1) {
		tokens[m[1]] = [2]string{m[2], m[3]}
	}
	for theme, name := range []string{"light", "dark"} {
		for _, mark := range []string{"ds-icon-information", "ds-icon-success", "ds-icon-danger", "ds-icon-warning", "ds-border-bold"} {
			for _, surface := range []string{"ds-surface", "ds-surface-sunken"} {
				fg, bg := tokens[mark][theme], tokens[surface][theme]
				if fg == "" || bg == "" {
					t.Fatalf("keyline.css lacks --%s or --%s", mark, surface)
				}
				if c := contrast(parseHex(t, fg), parseHex(t, bg)); c < 3 {
					t.Errorf("%s: --%s on --%s has contrast %.2f:1, want 3:1", name, mark, surface, c)
				}
			}
		}
	}
}
