package metrics

import (
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/keyline/keyline/app/devops"
)

// Deployment is a deployment as the metrics see it. Callers pass only the
// deployments that count: those to the environment types the site treats as
// production.
type Deployment struct {
	ID          string
	Service     string
	Environment string
	State       devops.DeploymentState
	// At is when it finished (for an unfinished one, its last update).
	At time.Time
}

func (d Deployment) failed() bool {
	return d.State == devops.DeploymentFailed || d.State == devops.DeploymentRolledBack
}

// counted reports whether a deployment took place: it ended successful,
// failed or rolled back. Cancelled and unfinished ones changed nothing.
func (d Deployment) counted() bool {
	return d.State == devops.DeploymentSuccessful || d.failed()
}

// FrequencyClass is the deployment-frequency classification of Four Keys.
type FrequencyClass string

// Frequency classes.
const (
	FrequencyDaily   FrequencyClass = "daily"
	FrequencyWeekly  FrequencyClass = "weekly"
	FrequencyMonthly FrequencyClass = "monthly"
	FrequencyYearly  FrequencyClass = "yearly"
	FrequencyNone    FrequencyClass = "none"
)

// Frequency is deployment frequency over a window.
type Frequency struct {
	// Deployments is the number of successful deployments in the window.
	Deployments int
	// Days, Weeks and Months are the calendar days, ISO weeks and months
	// the window touches, in its time zone; the With… fields count those
	// with at least one successful deployment.
	Days, DaysWithDeployments     int
	Weeks, WeeksWithDeployments   int
	Months, MonthsWithDeployments int
	// PerDay is Deployments divided by the window's length in days.
	PerDay float64
	Class  FrequencyClass
}

// DeploymentFrequency counts successful deployments in w and classifies
// them as Four Keys does: daily when, in the median week, deployments
// happened on at least 3 days; else weekly when at least half the weeks had
// one; else monthly when at least half the months had one; else yearly when
// there was any. Calendar days, weeks and months are those of w's time
// zone, so a deployment at 23:30 local time counts for that local day even
// across a daylight-saving change.
func DeploymentFrequency(deps []Deployment, w Window) Frequency {
	return frequencyOf(w, func(yield func(time.Time, int) bool) {
		for _, d := range deps {
			if d.State == devops.DeploymentSuccessful && !yield(d.At, 1) {
				return
			}
		}
	})
}

// DaySuccesses is how many successful deployments finished within one
// calendar day of a window's time zone.
type DaySuccesses struct {
	// Day is any instant of the day that falls in the window.
	Day        time.Time
	Successful int
}

// FrequencyOfDays is DeploymentFrequency from per-day counts instead of the
// deployments themselves, for a store that counts them: days may list a
// day more than once, and days outside w are ignored.
func FrequencyOfDays(days []DaySuccesses, w Window) Frequency {
	return frequencyOf(w, func(yield func(time.Time, int) bool) {
		for _, d := range days {
			if !yield(d.Day, d.Successful) {
				return
			}
		}
	})
}

// frequencyOf counts the successful deployments of successes (when, how
// many) that fall in w, on the calendar days of w's time zone, and
// classifies them. Days are keyed by their date as a number: formatting a
// string for each of a busy quarter's deployments was most of the cost.
func frequencyOf(w Window, successes iter.Seq2[time.Time, int]) Frequency {
	loc := w.loc()
	n := 0
	deployed := map[int]bool{}
	for at, k := range successes {
		if k <= 0 || !w.Contains(at) {
			continue
		}
		n += k
		deployed[dayKey(at.In(loc))] = true
	}
	return frequency(w, n, deployed)
}

// frequency classifies n successful deployments in w, on the calendar days
// (dayKey in w's time zone) of deployed.
func frequency(w Window, n int, deployed map[int]bool) Frequency {
	loc := w.loc()
	f := Frequency{Deployments: n}
	perWeek := map[string]int{}
	weekSeen := map[string]bool{}
	monthSeen := map[string]bool{}
	monthDeployed := map[string]bool{}
	var weekOrder []string
	start := w.From.In(loc)
	for i := 0; ; i++ {
		day := DayStart(start.Year(), start.Month(), start.Day()+i, loc)
		if !day.Before(w.To) {
			break
		}
		f.Days++
		y, wk := day.ISOWeek()
		week := fmt.Sprintf("%d-W%02d", y, wk)
		month := day.Format("2006-01")
		if !weekSeen[week] {
			weekSeen[week] = true
			weekOrder = append(weekOrder, week)
		}
		monthSeen[month] = true
		if deployed[dayKey(day)] {
			f.DaysWithDeployments++
			perWeek[week]++
			monthDeployed[month] = true
		}
	}
	f.Weeks, f.Months = len(weekOrder), len(monthSeen)
	f.MonthsWithDeployments = len(monthDeployed)
	daysPerWeek := make([]int, 0, len(weekOrder))
	for _, wk := range weekOrder {
		daysPerWeek = append(daysPerWeek, perWeek[wk])
		if perWeek[wk] > 0 {
			f.WeeksWithDeployments++
		}
	}
	if length := w.To.Sub(w.From).Hours() / 24; length > 0 {
		f.PerDay = float64(f.Deployments) / length
	}
	switch {
	case f.Deployments == 0:
		f.Class = FrequencyNone
	case medianInt(daysPerWeek) >= 3:
		f.Class = FrequencyDaily
	case 2*f.WeeksWithDeployments >= f.Weeks:
		f.Class = FrequencyWeekly
	case 2*f.MonthsWithDeployments >= f.Months:
		f.Class = FrequencyMonthly
	default:
		f.Class = FrequencyYearly
	}
	return f
}

// DayStart is the first instant of calendar day y-m-d (normalised as
// time.Date does) in loc. Its midnight is not always it: where clocks jump
// from 00:00 to 01:00 (Santiago, the Azores) time.Date gives 23:00 of the
// day before, and where midnight comes twice (Gaza until 2021) it gives the
// second. Days, weeks and months of a report start here.
func DayStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	want := dayKey(time.Date(y, m, d, 12, 0, 0, 0, time.UTC))
	if dayKey(t) != want {
		// Midnight skipped: the day starts with the zone period that
		// skipped it.
		if _, end := t.ZoneBounds(); !end.IsZero() && dayKey(end) == want {
			return end
		}
		return t
	}
	if start, _ := t.ZoneBounds(); !start.IsZero() && !start.After(t) {
		if before := start.Add(-time.Nanosecond); dayKey(before) == want {
			// Midnight repeated: the day started at the first one, in
			// the zone period before.
			_, offset := before.Zone()
			return time.Date(y, m, d, 0, 0, 0, 0, time.FixedZone("", offset)).In(loc)
		}
	}
	return t
}

// dayKey identifies t's calendar date in t's location.
func dayKey(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

// medianInt is the nearest-rank median; 0 for an empty list.
func medianInt(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)+1)/2-1]
}

// Change is one change on its way to production: a merged pull request, or
// a commit that reached production without one.
type Change struct {
	ID string
	// FirstCommitAt is when its first commit was authored: for a pull
	// request, the earliest of its commits, which squash merging hides
	// from the trunk.
	FirstCommitAt time.Time
	// DeployedAt is when the first successful production deployment that
	// contained it finished; zero while it has not reached production.
	DeployedAt time.Time
}

// LeadTime summarises first commit → first successful production
// deployment over changes. Changes not yet deployed are counted as Pending;
// non-positive lead times are Excluded.
func LeadTime(changes []Change) Durations {
	var values []time.Duration
	pending := 0
	for _, c := range changes {
		if c.DeployedAt.IsZero() {
			pending++
			continue
		}
		values = append(values, c.DeployedAt.Sub(c.FirstCommitAt))
	}
	d := Summarise(values)
	d.Pending = pending
	return d
}

// Incident is an incident as the metrics see it.
type Incident struct {
	ID                  string
	OpenedAt            time.Time
	ResolvedAt          time.Time // zero while open
	SuspectDeploymentID string    // "" when none is known
}

// FailureRate is change failure rate.
type FailureRate struct {
	// Deployments is the number of deployments that took place (successful,
	// failed or rolled back); Failed those that failed, were rolled back,
	// or are the suspect of an incident, each counted once.
	Deployments, Failed int
	// ByState and ByIncident break Failed down; a deployment that failed
	// and also caused an incident counts in both but once in Failed.
	ByState, ByIncident int
	// Rate is Failed / Deployments, 0 when there were none; never above 1.
	Rate float64
}

// ChangeFailureRate divides the deployments that failed, were rolled back
// or caused an incident by all deployments that took place. It counts
// deployments, not deployment × change pairs, so one incident on a
// deployment of many changes counts once.
func ChangeFailureRate(deps []Deployment, incidents []Incident) FailureRate {
	suspect := map[string]bool{}
	for _, in := range incidents {
		if in.SuspectDeploymentID != "" {
			suspect[in.SuspectDeploymentID] = true
		}
	}
	var c FailureCounts
	for _, d := range deps {
		if !d.counted() {
			continue
		}
		c.Deployments++
		byState, byIncident := d.failed(), suspect[d.ID]
		if byState {
			c.ByState++
		}
		if byIncident {
			c.ByIncident++
		}
		if byState && byIncident {
			c.Both++
		}
	}
	return c.Rate()
}

// FailureCounts are what change failure rate is computed from, for a store
// that counts deployments rather than listing them: the deployments that
// took place, those that failed or were rolled back (ByState), those an
// incident suspects (ByIncident), and those that are both.
type FailureCounts struct {
	Deployments, ByState, ByIncident, Both int
}

// Rate is ChangeFailureRate from the counts: a deployment both failed and
// suspected counts once in Failed.
func (c FailureCounts) Rate() FailureRate {
	r := FailureRate{Deployments: c.Deployments, ByState: c.ByState, ByIncident: c.ByIncident,
		Failed: c.ByState + c.ByIncident - c.Both}
	if r.Deployments > 0 {
		r.Rate = float64(r.Failed) / float64(r.Deployments)
	}
	return r
}

// TimeToRestore summarises incident opened → resolved; open incidents are
// Pending.
func TimeToRestore(incidents []Incident) Durations {
	var values []time.Duration
	pending := 0
	for _, in := range incidents {
		if in.ResolvedAt.IsZero() {
			pending++
			continue
		}
		values = append(values, in.ResolvedAt.Sub(in.OpenedAt))
	}
	d := Summarise(values)
	d.Pending = pending
	return d
}

// FailedDeploymentRecovery summarises, for each failed or rolled-back
// deployment, the time to the next successful deployment of the same
// service to the same environment. A failure not yet followed by a success
// is Pending. deps must include the successes after the window's failures.
func FailedDeploymentRecovery(deps []Deployment) Durations {
	type target struct{ service, environment string }
	successes := map[target][]time.Time{}
	for _, d := range deps {
		if d.State == devops.DeploymentSuccessful {
			k := target{d.Service, d.Environment}
			successes[k] = append(successes[k], d.At)
		}
	}
	for k := range successes {
		slices.SortFunc(successes[k], func(a, b time.Time) int { return a.Compare(b) })
	}
	var values []time.Duration
	pending := 0
	for _, d := range deps {
		if !d.failed() {
			continue
		}
		times := successes[target{d.Service, d.Environment}]
		i, _ := slices.BinarySearchFunc(times, d.At, func(a, b time.Time) int {
			if a.After(b) {
				return 1
			}
			return -1 // equal times sort before: a success must come after the failure
		})
		if i == len(times) {
			pending++
			continue
		}
		values = append(values, times[i].Sub(d.At))
	}
	d := Summarise(values)
	d.Pending = pending
	return d
}

// IssueCycle is one Jira issue's way from work started to production.
type IssueCycle struct {
	Key string
	// StartedAt is its first move into an "in progress" status category;
	// zero if it never had one.
	StartedAt time.Time
	// FirstProductionAt is when the first successful production deployment
	// linked to it finished; zero while none has.
	FirstProductionAt time.Time
}

// CycleTime summarises first "in progress" → first production deployment
// over issues. Issues not yet in production are Pending; those never
// started, or deployed before they were started, are Excluded.
func CycleTime(issues []IssueCycle) Durations {
	var values []time.Duration
	pending, unstarted := 0, 0
	for _, is := range issues {
		switch {
		case is.FirstProductionAt.IsZero():
			pending++
		case is.StartedAt.IsZero():
			unstarted++
		default:
			values = append(values, is.FirstProductionAt.Sub(is.StartedAt))
		}
	}
	d := Summarise(values)
	d.Pending, d.Excluded = pending, d.Excluded+unstarted
	return d
}
