package templates

import "time"

// MetricsView is the release metrics of one scope (a project, or a macro's
// projects), ready to print: the key figures, their weekly trends, a
// deployments timeline per environment and the slowest changes.
type MetricsView struct {
	// Scope describes what the figures cover, in words:
	// "ABC · service checkout · production-type environments".
	Scope string
	// Period is the window in the viewer's terms: "1 Sep – 30 Nov 2026
	// (Europe/Berlin)".
	Period string
	// BenchmarkYear is the DORA report the bands compare against.
	BenchmarkYear int
	// Figures are the four keys, then failed deployment recovery time and
	// cycle time, in that order.
	Figures []FigureView
	// Trends are one chart per figure that has a trend, same order.
	Trends []TrendView
	// Timeline is every counted deployment of the window, per environment.
	Timeline TimelineView
	// Slowest are the changes with the longest lead times, slowest first.
	Slowest []SlowChangeView
	// Empty is set when no production deployment at all falls in the
	// window: the page then explains how figures come about.
	Empty bool
	// Filter is the form that changes the scope; nil where the scope is
	// fixed (the macro, whose author sets it).
	Filter *MetricsFilterView
	// CSVLinks offer each table as CSV, by the API's path with its query.
	CSVLinks []CSVLink
}

// FigureView is one key figure.
type FigureView struct {
	// ID is a stable hook for tests and styles: "deployment-frequency",
	// "lead-time", "change-failure-rate", "time-to-restore",
	// "recovery-time", "cycle-time".
	ID   string
	Name string // "Lead time for changes"
	// Value is the headline value: "3 h 20 min" (median), "2.4 a day", "12 %".
	Value string
	// Raw lists the other raw values, each always shown: "p90 2 d 4 h",
	// "4 of 33 deployments".
	Raw []string
	// Sample states the sample: "N = 42 · 3 excluded · 5 pending".
	Sample string
	// Band is the DORA performance band; nil when there is no value to
	// place (an empty sample) or the figure has no benchmark (cycle time).
	Band *Lozenge
	// BandNote names the benchmark: "DORA 2023 benchmark".
	BandNote string
	// Definition is one sentence on how the figure is computed.
	Definition string
}

// TrendView is one figure's value per period (week or month) of the window.
type TrendView struct {
	ID    string // as FigureView.ID
	Title string // "Lead time for changes, median per week"
	// Unit labels the value axis: "hours", "per day", "%".
	Unit   string
	Points []TrendPoint
}

// TrendPoint is one period of a trend.
type TrendPoint struct {
	Label string    // "7 Sep": the period's first day
	Start time.Time // the period's first instant
	// Value is in the trend's unit; it is meaningless when Missing.
	Value float64
	// Display is the value as text, for tooltips and the table fallback.
	Display string
	N       int  // sample size of the period
	Missing bool // no sample in the period: a gap in the line, not a zero
}

// TimelineView places deployments on a time axis, one lane per environment,
// development first and production last.
type TimelineView struct {
	From, To time.Time
	Lanes    []TimelineLane
	// Omitted counts deployments left out to keep the chart readable.
	Omitted int
}

// TimelineLane is one environment's deployments, oldest first.
type TimelineLane struct {
	Environment string
	Type        string // "production", ...
	TypeLabel   string
	Dots        []TimelineDot
}

// TimelineDot is one deployment on the timeline.
type TimelineDot struct {
	At    time.Time
	State Lozenge
	// Title is the tooltip: "checkout #118 · successful · 2 Sep 14:03".
	Title string
	URL   string
}

// SlowChangeView is one change and its lead time.
type SlowChangeView struct {
	// Kind is "pull request" or "commit".
	Kind        string
	Title       string // pull request title or commit message's first line
	Ref         string // "#42" or a short sha
	URL         string
	Issues      []IssueLink
	LeadTime    string // "4 d 3 h"
	FirstCommit Moment
	Deployed    Moment
	Environment string
	Service     string
}

// MetricsFilterView is the project page's filter form, with the current
// choices selected.
type MetricsFilterView struct {
	// APIPath is where the page's script fetches a re-rendered section:
	// "/jira/api/projects/ABC/metrics".
	APIPath     string
	From, To    string // "2026-09-01"
	TimeZone    string // "Europe/Berlin"
	Service     string
	Environment string
	Year        int
	// Services and Environments are the choices the site's deployments
	// offer; Years the benchmark years.
	Services     []string
	Environments []string
	Years        []int
}

// CSVLink is a table offered as CSV.
type CSVLink struct {
	Label string // "Deployments (CSV)"
	URL   string
}

// ReleaseNotesView is the issues shipped to production in a range,
// grouped by issue type.
type ReleaseNotesView struct {
	// Range says what was shipped when: "Shipped to production between
	// checkout #117 and #118", "Fix version 2.4", "1 – 30 Sep 2026".
	Range  string
	Groups []ReleaseNoteGroup
	Total  int
	// Omitted counts shipped issues left out by the list's bound.
	Omitted int
}

// ReleaseNoteGroup is the shipped issues of one issue type.
type ReleaseNoteGroup struct {
	Type   string // "Bug", "Story"; "Other" when Jira never said
	Issues []ReleaseNoteItem
}

// ReleaseNoteItem is one shipped issue.
type ReleaseNoteItem struct {
	Key     string
	URL     string
	Summary string // empty when Jira's webhooks never mentioned the issue
	Status  string
	// Shipped is its first production deployment's finish; unknown for an
	// issue of a fix version that has not shipped.
	Shipped Moment
}
