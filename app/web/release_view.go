package web

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/metrics"
	"github.com/keyline/keyline/app/release"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/templates"
)

// maxTimelineDots bounds the deployments timeline: beyond a few hundred
// dots a lane is a solid bar, and the page would grow with the site. A
// page's report lists no more (release.Filter.Latest).
const maxTimelineDots = release.TimelineDeployments

// Figure ids, shared by the page, the JSON API and the CSV export.
const (
	figureFrequency   = "deployment-frequency"
	figureLeadTime    = "lead-time"
	figureFailureRate = "change-failure-rate"
	figureRestore     = "time-to-restore"
	figureRecovery    = "recovery-time"
	figureCycleTime   = "cycle-time"
)

// metricsView turns a report into the page's view. scope describes the
// report's projects in words.
func metricsView(r *release.Report, p releaseParams, scope, jiraURL string, now time.Time) templates.MetricsView {
	f := r.Filter
	v := templates.MetricsView{
		Scope:         scopeText(scope, f),
		Period:        periodText(p),
		BenchmarkYear: int(f.Benchmark),
		Empty:         r.DeploymentCount == 0 && r.Changes == 0,
	}
	v.Figures = figureViews(r)
	v.Trends = trendViews(r)
	v.Timeline = timelineView(r)
	for _, c := range r.Slowest {
		v.Slowest = append(v.Slowest, slowChangeView(c, jiraURL, now))
	}
	return v
}

func scopeText(scope string, f release.Filter) string {
	parts := []string{scope}
	if f.Service != "" {
		parts = append(parts, "service "+f.Service)
	}
	if f.Environment != "" {
		parts = append(parts, "environment "+f.Environment)
	}
	types := "production"
	if len(f.Types) > 0 {
		var ts []string
		for _, t := range f.Types {
			ts = append(ts, string(t))
		}
		types = strings.Join(ts, " and ")
	}
	return strings.Join(append(parts, types+"-type environments"), " · ")
}

func periodText(p releaseParams) string {
	from, _ := time.Parse(time.DateOnly, p.from)
	to, _ := time.Parse(time.DateOnly, p.to)
	layout := "2 Jan 2006"
	if from.Year() == to.Year() {
		layout = "2 Jan"
	}
	return fmt.Sprintf("%s – %s (%s)", from.Format(layout), to.Format("2 Jan 2006"), p.timeZone)
}

// figureViews writes the key figures with every raw value beside the band.
func figureViews(r *release.Report) []templates.FigureView {
	b := r.Filter.Benchmark
	note := fmt.Sprintf("DORA %d benchmark", b)
	fr := r.Frequency
	freq := templates.FigureView{
		ID: figureFrequency, Name: "Deployment frequency", Value: rateText(fr.PerDay),
		Raw: []string{
			templates.Plural(fr.Deployments, "successful deployment", "successful deployments") + " in " + templates.Plural(fr.Days, "day", "days"),
			fmt.Sprintf("deployed on %d of %d days, in %d of %d weeks", fr.DaysWithDeployments, fr.Days, fr.WeeksWithDeployments, fr.Weeks),
			"Four Keys class: " + string(fr.Class),
		},
		Sample:     fmt.Sprintf("N = %d", fr.Deployments),
		Band:       bandLozenge(r.Bands.Frequency),
		BandNote:   note,
		Definition: "Successful deployments to production-type environments, per day of the period.",
	}
	cf := r.FailureRate
	failure := templates.FigureView{
		ID: figureFailureRate, Name: "Change failure rate", Value: "—",
		Raw: []string{
			fmt.Sprintf("%d of %s", cf.Failed, templates.Plural(cf.Deployments, "deployment", "deployments")),
			fmt.Sprintf("%d failed or rolled back · %d suspected of an incident", cf.ByState, cf.ByIncident),
		},
		Sample:     fmt.Sprintf("N = %d", cf.Deployments),
		Band:       bandLozenge(r.Bands.FailureRate),
		BandNote:   note,
		Definition: "Deployments that failed, were rolled back or caused an incident, over all deployments that took place; each deployment counts once.",
	}
	if cf.Deployments > 0 {
		failure.Value = percentText(cf.Rate)
	}
	return []templates.FigureView{
		freq,
		durationFigure(figureLeadTime, "Lead time for changes", r.LeadTime, r.Bands.LeadTime, note,
			"First commit of a change (a merged pull request, else a commit) to its first successful production deployment; median."),
		failure,
		durationFigure(figureRestore, "Time to restore service", r.TimeToRestore, r.Bands.TimeToRestore, note,
			"Incident opened to resolved, for incidents opened in the period; median. Open incidents are pending."),
		durationFigure(figureRecovery, "Failed deployment recovery time", r.Recovery, "", "",
			"A failed or rolled-back deployment to the next successful one of the same service and environment; median."),
		durationFigure(figureCycleTime, "Cycle time", r.CycleTime, "", "",
			"An issue's first move to In Progress in Jira to its first production deployment; median."),
	}
}

func durationFigure(id, name string, d metrics.Durations, band metrics.Band, note, definition string) templates.FigureView {
	v := templates.FigureView{ID: id, Name: name, Value: "—", Sample: sampleText(d), Definition: definition}
	if d.N > 0 {
		v.Value = humanDuration(d.Median)
		v.Raw = []string{"median " + humanDuration(d.Median), "p90 " + humanDuration(d.P90)}
	}
	if band != "" {
		v.Band, v.BandNote = bandLozenge(band), note
	}
	return v
}

func sampleText(d metrics.Durations) string {
	parts := []string{fmt.Sprintf("N = %d", d.N)}
	if d.Excluded > 0 {
		parts = append(parts, fmt.Sprintf("%d excluded", d.Excluded))
	}
	if d.Pending > 0 {
		parts = append(parts, fmt.Sprintf("%d pending", d.Pending))
	}
	return strings.Join(parts, " · ")
}

// rateText writes a deployment rate in the unit that reads best.
func rateText(perDay float64) string {
	switch {
	case perDay <= 0:
		return "none"
	case perDay >= 1:
		return strconv.FormatFloat(roundTo(perDay, 1), 'f', -1, 64) + " a day"
	case perDay*7 >= 1:
		return strconv.FormatFloat(roundTo(perDay*7, 1), 'f', -1, 64) + " a week"
	}
	return strconv.FormatFloat(roundTo(perDay*30, 1), 'f', -1, 64) + " a month"
}

func percentText(rate float64) string {
	return strconv.FormatFloat(roundTo(rate*100, 1), 'f', -1, 64) + " %"
}

func roundTo(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func bandLozenge(b metrics.Band) *templates.Lozenge {
	if b == "" {
		return nil
	}
	tones := map[metrics.Band]templates.Tone{metrics.BandElite: templates.ToneSuccess, metrics.BandHigh: templates.ToneInProgress,
		metrics.BandMedium: templates.ToneMoved, metrics.BandLow: templates.ToneFailed}
	label := string(b)
	return &templates.Lozenge{Label: strings.ToUpper(label[:1]) + label[1:], Tone: tones[b]}
}

// trendViews draws one trend per figure; a period without a sample is
// missing, not zero.
func trendViews(r *release.Report) []templates.TrendView {
	per := "week"
	if r.Granularity == "month" {
		per = "month"
	}
	label := func(t time.Time) string {
		if per == "month" {
			return t.Format("Jan 2006")
		}
		return t.Format("2 Jan")
	}
	durations := func(id, title string, pick func(release.Figures) metrics.Durations) templates.TrendView {
		unit, scale := "hours", time.Hour
		for _, p := range r.Trend {
			if d := pick(p.Figures); d.N > 0 && d.Median > 72*time.Hour {
				unit, scale = "days", 24*time.Hour
			}
		}
		v := templates.TrendView{ID: id, Title: title + ", median per " + per, Unit: unit}
		for _, p := range r.Trend {
			d := pick(p.Figures)
			pt := templates.TrendPoint{Label: label(p.Start), Start: p.Start, N: d.N, Missing: d.N == 0}
			if d.N > 0 {
				pt.Value = roundTo(float64(d.Median)/float64(scale), 2)
				pt.Display = humanDuration(d.Median)
			}
			v.Points = append(v.Points, pt)
		}
		return v
	}
	freq := templates.TrendView{ID: figureFrequency, Title: "Successful deployments per " + per, Unit: "deployments"}
	cfr := templates.TrendView{ID: figureFailureRate, Title: "Change failure rate per " + per, Unit: "%"}
	for _, p := range r.Trend {
		n := p.Frequency.Deployments
		freq.Points = append(freq.Points, templates.TrendPoint{Label: label(p.Start), Start: p.Start, Value: float64(n),
			Display: templates.Plural(n, "deployment", "deployments"), N: n})
		fr := p.FailureRate
		pt := templates.TrendPoint{Label: label(p.Start), Start: p.Start, N: fr.Deployments, Missing: fr.Deployments == 0}
		if fr.Deployments > 0 {
			pt.Value, pt.Display = roundTo(fr.Rate*100, 1), percentText(fr.Rate)
		}
		cfr.Points = append(cfr.Points, pt)
	}
	return []templates.TrendView{
		freq,
		durations(figureLeadTime, "Lead time for changes", func(f release.Figures) metrics.Durations { return f.LeadTime }),
		cfr,
		durations(figureRestore, "Time to restore service", func(f release.Figures) metrics.Durations { return f.TimeToRestore }),
		durations(figureRecovery, "Failed deployment recovery time", func(f release.Figures) metrics.Durations { return f.Recovery }),
		durations(figureCycleTime, "Cycle time", func(f release.Figures) metrics.Durations { return f.CycleTime }),
	}
}

// timelineView puts the window's deployments in lanes per environment,
// keeping the most recent when there are too many to draw.
func timelineView(r *release.Report) templates.TimelineView {
	v := templates.TimelineView{From: r.Filter.Window.From, To: r.Filter.Window.To}
	deps := r.Deployments
	if len(deps) > maxTimelineDots {
		deps = deps[len(deps)-maxTimelineDots:]
	}
	// The report may list only the latest deployments; it counts them all.
	v.Omitted = r.DeploymentCount - len(deps)
	lanes := map[string]int{} // environment → index in v.Lanes
	for _, d := range deps {
		i, ok := lanes[d.Environment]
		if !ok {
			i = len(v.Lanes)
			lanes[d.Environment] = i
			v.Lanes = append(v.Lanes, templates.TimelineLane{Environment: d.Environment, Type: string(envType(d.Type)),
				TypeLabel: environmentLabel(d.Type)})
		}
		state := deploymentLozenge(d.State)
		v.Lanes[i].Dots = append(v.Lanes[i].Dots, templates.TimelineDot{
			At:    d.FinishedAt,
			State: state,
			Title: fmt.Sprintf("%s · %s · %s", strings.TrimSpace(cmp.Or(d.Service, d.PipelineName)+" "+number(d.Sequence)),
				state.Label, d.FinishedAt.UTC().Format("2 Jan 15:04 UTC")),
			URL: safeURL(d.URL),
		})
	}
	slices.SortFunc(v.Lanes, func(a, b templates.TimelineLane) int {
		return cmp.Or(cmp.Compare(environmentOrder(devops.EnvironmentType(a.Type)), environmentOrder(devops.EnvironmentType(b.Type))),
			cmp.Compare(a.Environment, b.Environment))
	})
	return v
}

func slowChangeView(c store.ChangeRecord, jiraURL string, now time.Time) templates.SlowChangeView {
	v := templates.SlowChangeView{
		Kind: "commit", Title: firstLine(c.Title), Ref: shortSHA(c.ID), URL: safeURL(c.URL),
		LeadTime: humanDuration(c.Lead), FirstCommit: moment(c.FirstCommit, now), Deployed: moment(c.DeployedAt, now),
		Environment: c.Environment, Service: c.Service,
	}
	if c.Kind == store.ChangePullRequest {
		v.Kind, v.Ref = "pull request", number(c.Number)
	}
	for _, k := range c.IssueKeys {
		v.Issues = append(v.Issues, templates.IssueLink{Key: k, URL: issueURL(jiraURL, k)})
	}
	return v
}
