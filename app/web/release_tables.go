package web

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keyline/keyline/app/metrics"
	"github.com/keyline/keyline/app/release"
	"github.com/keyline/keyline/app/store"
)

// table is one of the release tables as the JSON API and the CSV export
// give it: named columns and rows of plain values (strings, numbers, nil
// for unknown). Times are RFC 3339 in UTC, durations whole seconds.
type table struct {
	Columns []string
	Rows    [][]any
}

// releaseTables names the tables a report offers, in the order the page
// lists them.
var releaseTables = []string{"figures", "trend", "deployments", "changes", "incidents"}

// reportTable returns one table of a report; ok is false for an unknown name.
func reportTable(r *release.Report, name string) (table, bool) {
	switch name {
	case "figures":
		return figuresTable(r), true
	case "trend":
		return trendTable(r), true
	case "deployments":
		return deploymentsTable(r.Deployments), true
	case "changes":
		return changesTable(r.Slowest), true
	case "incidents":
		return incidentsTable(r.Incidents), true
	}
	return table{}, false
}

func timeCell(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func secondsCell(d time.Duration, known bool) any {
	if !known {
		return nil
	}
	return int64(d / time.Second)
}

func durationCells(d metrics.Durations) []any {
	return []any{d.N, d.Excluded, d.Pending, secondsCell(d.Median, d.N > 0), secondsCell(d.P90, d.N > 0)}
}

func bandCell(b metrics.Band) any {
	if b == "" {
		return nil
	}
	return string(b)
}

func figuresTable(r *release.Report) table {
	t := table{Columns: []string{"figure", "n", "excluded", "pending", "median_seconds", "p90_seconds", "value",
		"band", "benchmark_year"}}
	year := int(r.Filter.Benchmark)
	fr, cf := r.Frequency, r.FailureRate
	t.Rows = append(t.Rows,
		[]any{figureFrequency, fr.Deployments, 0, 0, nil, nil, roundTo(fr.PerDay, 3), bandCell(r.Bands.Frequency), year},
		append(append([]any{figureLeadTime}, durationCells(r.LeadTime)...), nil, bandCell(r.Bands.LeadTime), year),
		[]any{figureFailureRate, cf.Deployments, 0, 0, nil, nil, roundTo(cf.Rate, 4), bandCell(r.Bands.FailureRate), year},
		append(append([]any{figureRestore}, durationCells(r.TimeToRestore)...), nil, bandCell(r.Bands.TimeToRestore), year),
		append(append([]any{figureRecovery}, durationCells(r.Recovery)...), nil, nil, nil),
		append(append([]any{figureCycleTime}, durationCells(r.CycleTime)...), nil, nil, nil),
	)
	return t
}

func trendTable(r *release.Report) table {
	t := table{Columns: []string{"period_start", "period_end", "deployments", "lead_time_n", "lead_time_median_seconds",
		"change_failure_rate", "change_failure_n", "restore_n", "restore_median_seconds", "recovery_n",
		"recovery_median_seconds", "cycle_time_n", "cycle_time_median_seconds"}}
	for _, p := range r.Trend {
		var rate any
		if p.FailureRate.Deployments > 0 {
			rate = roundTo(p.FailureRate.Rate, 4)
		}
		t.Rows = append(t.Rows, []any{timeCell(p.Start), timeCell(p.End), p.Frequency.Deployments,
			p.LeadTime.N, secondsCell(p.LeadTime.Median, p.LeadTime.N > 0),
			rate, p.FailureRate.Deployments,
			p.TimeToRestore.N, secondsCell(p.TimeToRestore.Median, p.TimeToRestore.N > 0),
			p.Recovery.N, secondsCell(p.Recovery.Median, p.Recovery.N > 0),
			p.CycleTime.N, secondsCell(p.CycleTime.Median, p.CycleTime.N > 0)})
	}
	return t
}

func deploymentsTable(deps []store.ReleaseDeployment) table {
	t := table{Columns: []string{"id", "service", "environment", "environment_type", "pipeline", "sequence", "state",
		"finished_at", "commits", "suspected_by_incidents", "recovered_at", "url"}}
	for _, d := range deps {
		t.Rows = append(t.Rows, []any{d.ID, d.Service, d.Environment, string(d.Type), d.PipelineName, d.Sequence,
			string(d.State), timeCell(d.FinishedAt), d.CommitCount, d.SuspectOf, timeCell(d.RecoveredAt), safeURL(d.URL)})
	}
	return t
}

func changesTable(cs []store.ChangeRecord) table {
	t := table{Columns: []string{"kind", "id", "number", "title", "issue_keys", "lead_seconds", "first_commit_at",
		"deployed_at", "service", "environment", "url"}}
	for _, c := range cs {
		var n any
		if c.Number > 0 {
			n = c.Number
		}
		t.Rows = append(t.Rows, []any{c.Kind, c.ID, n, firstLine(c.Title), strings.Join(c.IssueKeys, " "),
			int64(c.Lead / time.Second), timeCell(c.FirstCommit), timeCell(c.DeployedAt), c.Service, c.Environment,
			safeURL(c.URL)})
	}
	return t
}

func incidentsTable(ins []store.ReleaseIncident) table {
	t := table{Columns: []string{"id", "title", "severity", "service", "opened_at", "resolved_at", "restore_seconds",
		"suspect_deployment_id"}}
	for _, in := range ins {
		t.Rows = append(t.Rows, []any{in.ID, in.Title, in.Severity, in.Service, timeCell(in.OpenedAt),
			timeCell(in.ResolvedAt), secondsCell(in.ResolvedAt.Sub(in.OpenedAt), !in.ResolvedAt.IsZero()),
			in.SuspectDeploymentID})
	}
	return t
}

// shippedTable is the release notes as a table.
func shippedTable(issues []store.ShippedIssue) table {
	t := table{Columns: []string{"issue_key", "issue_type", "summary", "status", "deployed_at", "deployment_id",
		"service", "environment"}}
	for _, si := range issues {
		var kind, summary, status string
		if si.Issue != nil {
			kind, summary, status = si.Issue.IssueType, si.Issue.Summary, si.Issue.StatusName
		}
		t.Rows = append(t.Rows, []any{si.Key, kind, summary, status, timeCell(si.DeployedAt), si.DeploymentID,
			si.Service, si.Environment})
	}
	return t
}

// objects is the table as JSON objects, one per row.
func (t table) objects() []map[string]any {
	out := make([]map[string]any, 0, len(t.Rows))
	for _, r := range t.Rows {
		o := make(map[string]any, len(t.Columns))
		for i, c := range t.Columns {
			o[c] = r[i]
		}
		out = append(out, o)
	}
	return out
}

// records is the table as CSV records, header first. A cell that a
// spreadsheet would run as a formula (=, +, -, @ first) is prefixed with
// an apostrophe: titles come from outside and CSV files get opened in
// spreadsheets.
func (t table) records() [][]string {
	out := [][]string{t.Columns}
	for _, r := range t.Rows {
		rec := make([]string, len(r))
		for i, v := range r {
			switch x := v.(type) {
			case nil:
			case string:
				rec[i] = csvSafe(x)
			case int:
				rec[i] = strconv.Itoa(x)
			case int64:
				rec[i] = strconv.FormatInt(x, 10)
			case float64:
				rec[i] = strconv.FormatFloat(x, 'f', -1, 64)
			default:
				rec[i] = csvSafe(fmt.Sprint(x))
			}
		}
		out = append(out, rec)
	}
	return out
}

func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
