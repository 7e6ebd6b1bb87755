package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/keyline/keyline/app/devops"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // a Monday

func h(n float64) time.Duration { return time.Duration(n * float64(time.Hour)) }

func TestSummarise(t *testing.T) {
	got := Summarise([]time.Duration{h(10), -h(1), h(3), 0, h(1), h(4), h(2)})
	want := Durations{N: 5, Excluded: 2, Median: h(3), P90: h(10)}
	if got != want {
		t.Errorf("Summarise = %+v, want %+v", got, want)
	}
	if got := Summarise(nil); got != (Durations{}) {
		t.Errorf("empty sample = %+v", got)
	}
}

func success(at time.Time) Deployment {
	return Deployment{ID: at.String(), Service: "web", Environment: "prod", State: devops.DeploymentSuccessful, At: at}
}

func TestDeploymentFrequency(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	march := Window{From: t0.Add(-9 * time.Hour), To: t0.Add(-9*time.Hour + 28*24*time.Hour)} // 4 whole ISO weeks
	var threeDaysAWeek, everyOtherWeek, once []Deployment
	for w := range 4 {
		for d := range 3 {
			threeDaysAWeek = append(threeDaysAWeek, success(t0.AddDate(0, 0, 7*w+d)))
		}
		if w%2 == 0 {
			everyOtherWeek = append(everyOtherWeek, success(t0.AddDate(0, 0, 7*w)))
		}
	}
	once = []Deployment{success(t0)}
	failed := []Deployment{{ID: "f", State: devops.DeploymentFailed, At: t0}}
	quarter := Window{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}
	tests := []struct {
		name      string
		deps      []Deployment
		w         Window
		class     FrequencyClass
		count     int
		daysWith  int
		weeks     int
		weeksWith int
		days      int
	}{
		{"three days a week is daily", threeDaysAWeek, march, FrequencyDaily, 12, 12, 4, 4, 28},
		{"every other week is weekly", everyOtherWeek, march, FrequencyWeekly, 2, 2, 4, 2, 28},
		{"one week in four is monthly", once, march, FrequencyMonthly, 1, 1, 4, 1, 28},
		{"once a quarter is yearly", once, quarter, FrequencyYearly, 1, 1, 14, 1, 90},
		{"failures are not deployments", failed, march, FrequencyNone, 0, 0, 4, 0, 28},
		{"outside the window does not count", []Deployment{success(t0.AddDate(0, 0, 40))}, march, FrequencyNone, 0, 0, 4, 0, 28},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := DeploymentFrequency(tt.deps, tt.w)
			if f.Class != tt.class || f.Deployments != tt.count || f.DaysWithDeployments != tt.daysWith ||
				f.Weeks != tt.weeks || f.WeeksWithDeployments != tt.weeksWith || f.Days != tt.days {
				t.Errorf("got %+v", f)
			}
			if byDays := FrequencyOfDays(daySuccesses(tt.deps), tt.w); byDays != f {
				t.Errorf("FrequencyOfDays = %+v, want %+v", byDays, f)
			}
		})
	}
	t.Run("days are the time zone's, across a DST change", func(t *testing.T) {
		// Berlin moves to summer time on 2026-03-29: that day has 23 hours.
		w := Window{From: time.Date(2026, 3, 28, 0, 0, 0, 0, berlin), To: time.Date(2026, 4, 1, 0, 0, 0, 0, berlin), Location: berlin}
		deps := []Deployment{
			success(time.Date(2026, 3, 29, 21, 30, 0, 0, time.UTC)), // 23:30 on the 29th in Berlin
			success(time.Date(2026, 3, 29, 22, 30, 0, 0, time.UTC)), // 00:30 on the 30th in Berlin
		}
		f := DeploymentFrequency(deps, w)
		if f.Days != 4 || f.DaysWithDeployments != 2 {
			t.Errorf("Berlin: %+v; want 4 days, 2 with deployments", f)
		}
		if byDays := FrequencyOfDays(daySuccesses(deps), w); byDays != f {
			t.Errorf("FrequencyOfDays in Berlin = %+v, want %+v", byDays, f)
		}
		w.Location = time.UTC
		if f := DeploymentFrequency(deps, w); f.DaysWithDeployments != 1 {
			t.Errorf("UTC: %+v; want both on one day", f)
		}
	})
}

// daySuccesses counts deps as a store would: each successful one is a
// count of one on its day; failed ones are counted as zero successes.
func daySuccesses(deps []Deployment) []DaySuccesses {
	out := make([]DaySuccesses, 0, len(deps))
	for _, d := range deps {
		n := 0
		if d.State == devops.DeploymentSuccessful {
			n = 1
		}
		out = append(out, DaySuccesses{Day: d.At, Successful: n})
	}
	return out
}

func TestFrequencyOfDaysSumsADaysCounts(t *testing.T) {
	w := Window{From: t0, To: t0.AddDate(0, 0, 14)}
	got := FrequencyOfDays([]DaySuccesses{
		{Day: t0.Add(time.Hour), Successful: 3},
		{Day: t0.Add(2 * time.Hour), Successful: 2}, // the same day, counted apart
		{Day: t0.AddDate(0, 0, 8), Successful: 0},
		{Day: t0.AddDate(0, 0, 20), Successful: 9}, // outside the window
	}, w)
	if got.Deployments != 5 || got.DaysWithDeployments != 1 {
		t.Errorf("FrequencyOfDays = %+v; want 5 deployments on 1 day", got)
	}
}

func TestDayStart(t *testing.T) {
	cases := []struct {
		zone    string
		y       int
		m       time.Month
		d       int
		wantUTC string
	}{
		{"UTC", 2025, 12, 32, "2026-01-01T00:00:00Z"}, // normalised like time.Date
		{"Europe/Berlin", 2025, 3, 30, "2025-03-29T23:00:00Z"},
		// Clocks jump from 00:00 to 01:00: the day starts at 01:00.
		{"America/Santiago", 2025, 9, 7, "2025-09-07T04:00:00Z"},
		{"Atlantic/Azores", 2025, 3, 30, "2025-03-30T01:00:00Z"},
		// Clocks go back from 01:00 to 00:00: the day starts at the first
		// midnight, still in summer time.
		{"Asia/Gaza", 2020, 10, 24, "2020-10-23T21:00:00Z"},
	}
	for _, c := range cases {
		loc, err := time.LoadLocation(c.zone)
		if err != nil {
			t.Fatal(err)
		}
		got := DayStart(c.y, c.m, c.d, loc)
		if s := got.UTC().Format(time.RFC3339); s != c.wantUTC {
			t.Errorf("DayStart(%d-%02d-%02d, %s) = %s (%s), want %s", c.y, c.m, c.d, c.zone, s, got, c.wantUTC)
		}
		if got.Location() != loc {
			t.Errorf("DayStart in %s is in %s", c.zone, got.Location())
		}
	}
}

func TestFrequencyAcrossASkippedMidnight(t *testing.T) {
	santiago, err := time.LoadLocation("America/Santiago")
	if err != nil {
		t.Fatal(err)
	}
	// Chile's clocks jump from 00:00 to 01:00 on 2025-09-07.
	w := Window{From: DayStart(2025, 9, 5, santiago), To: DayStart(2025, 9, 10, santiago), Location: santiago}
	deps := []Deployment{success(time.Date(2025, 9, 7, 12, 0, 0, 0, santiago))}
	f := DeploymentFrequency(deps, w)
	if f.Days != 5 || f.DaysWithDeployments != 1 {
		t.Errorf("DeploymentFrequency = %+v; want 5 days, 1 with deployments", f)
	}
	// A store's span of that day starts when the day does.
	days := []DaySuccesses{{Day: DayStart(2025, 9, 7, santiago), Successful: 1}}
	if byDays := FrequencyOfDays(days, w); byDays != f {
		t.Errorf("FrequencyOfDays = %+v, want %+v", byDays, f)
	}
}

func TestLeadTime(t *testing.T) {
	deploy := t0.Add(72 * time.Hour)
	got := LeadTime([]Change{
		// A squash-merged pull request: its first branch commit, three days earlier.
		{ID: "pr-1", FirstCommitAt: t0, DeployedAt: deploy},
		{ID: "c-2", FirstCommitAt: deploy.Add(-2 * time.Hour), DeployedAt: deploy},
		{ID: "c-skewed", FirstCommitAt: deploy.Add(time.Minute), DeployedAt: deploy},
		{ID: "c-waiting", FirstCommitAt: t0},
	})
	want := Durations{N: 2, Excluded: 1, Pending: 1, Median: h(2), P90: h(72)}
	if got != want {
		t.Errorf("LeadTime = %+v, want %+v", got, want)
	}
}

func TestChangeFailureRate(t *testing.T) {
	deps := []Deployment{
		{ID: "d1", State: devops.DeploymentSuccessful},
		{ID: "d2", State: devops.DeploymentFailed},
		{ID: "d3", State: devops.DeploymentRolledBack},
		{ID: "d4", State: devops.DeploymentSuccessful},
		{ID: "d5", State: devops.DeploymentCancelled},
		{ID: "d6", State: devops.DeploymentInProgress},
	}
	incidents := []Incident{{ID: "i1", SuspectDeploymentID: "d4"}, {ID: "i2", SuspectDeploymentID: "d4"},
		{ID: "i3", SuspectDeploymentID: "d2"}, {ID: "i4"}}
	got := ChangeFailureRate(deps, incidents)
	want := FailureRate{Deployments: 4, Failed: 3, ByState: 2, ByIncident: 2, Rate: 0.75}
	if got != want {
		t.Errorf("ChangeFailureRate = %+v, want %+v", got, want)
	}
	// The same from counts: d2 failed and is suspected, so it counts once.
	if got := (FailureCounts{Deployments: 4, ByState: 2, ByIncident: 2, Both: 1}).Rate(); got != want {
		t.Errorf("FailureCounts.Rate = %+v, want %+v", got, want)
	}
	// Every deployment causing several incidents still caps at 100 %.
	if r := ChangeFailureRate(deps[:1], []Incident{{SuspectDeploymentID: "d1"}, {SuspectDeploymentID: "d1"}}); r.Rate != 1 {
		t.Errorf("rate %v, want 1", r.Rate)
	}
	if r := ChangeFailureRate(nil, incidents); r.Rate != 0 || r.Deployments != 0 {
		t.Errorf("empty period: %+v", r)
	}
}

func TestRecovery(t *testing.T) {
	restore := TimeToRestore([]Incident{
		{OpenedAt: t0, ResolvedAt: t0.Add(2 * time.Hour)},
		{OpenedAt: t0, ResolvedAt: t0.Add(30 * time.Minute)},
		{OpenedAt: t0},
	})
	if want := (Durations{N: 2, Pending: 1, Median: h(0.5), P90: h(2)}); restore != want {
		t.Errorf("TimeToRestore = %+v, want %+v", restore, want)
	}
	dep := func(env string, state devops.DeploymentState, at time.Time) Deployment {
		return Deployment{ID: env + at.String(), Service: "web", Environment: env, State: state, At: at}
	}
	recovery := FailedDeploymentRecovery([]Deployment{
		dep("prod", devops.DeploymentSuccessful, t0.Add(-time.Hour)), // before the failure: not a recovery
		dep("prod", devops.DeploymentFailed, t0),
		dep("prod", devops.DeploymentSuccessful, t0.Add(30*time.Minute)),
		dep("prod", devops.DeploymentRolledBack, t0.Add(time.Hour)),
		dep("prod", devops.DeploymentSuccessful, t0.Add(3*time.Hour)),
		dep("eu", devops.DeploymentFailed, t0),
		dep("us", devops.DeploymentSuccessful, t0.Add(time.Hour)), // another environment
	})
	if want := (Durations{N: 2, Pending: 1, Median: h(0.5), P90: h(2)}); recovery != want {
		t.Errorf("FailedDeploymentRecovery = %+v, want %+v", recovery, want)
	}
}

func TestCycleTime(t *testing.T) {
	got := CycleTime([]IssueCycle{
		{Key: "KL-1", StartedAt: t0, FirstProductionAt: t0.Add(5 * time.Hour)},
		{Key: "KL-2", FirstProductionAt: t0},                               // never started
		{Key: "KL-3", StartedAt: t0},                                       // not in production yet
		{Key: "KL-4", StartedAt: t0.Add(time.Hour), FirstProductionAt: t0}, // deployed before started
	})
	want := Durations{N: 1, Excluded: 2, Pending: 1, Median: h(5), P90: h(5)}
	if got != want {
		t.Errorf("CycleTime = %+v, want %+v", got, want)
	}
}

func TestBands(t *testing.T) {
	tests := []struct {
		year                        Benchmark
		lead, restore               time.Duration
		perDay, rate                float64
		wantLead, wantRestore       Band
		wantFrequency, wantFailures Band
	}{
		{Benchmark2019, h(20), h(0.5), 2, 0.10, BandElite, BandElite, BandElite, BandElite},
		{Benchmark2019, h(48), h(20), 0.2, 0.30, BandHigh, BandHigh, BandHigh, BandMedium},
		{Benchmark2019, h(24 * 40), h(24 * 10), 0.01, 0.50, BandLow, BandLow, BandLow, BandLow},
		{Benchmark2021, h(20), h(30), 0.05, 0.20, BandHigh, BandMedium, BandHigh, BandHigh},
		{Benchmark2021, h(0.5), h(0.5), 1, 0.40, BandElite, BandElite, BandElite, BandLow},
		{Benchmark2023, h(24 * 10), h(24 * 3), 0.05, 0.08, BandMedium, BandMedium, BandMedium, BandHigh},
		{Benchmark2023, h(20), h(0.5), 0.5, 0.12, BandElite, BandElite, BandHigh, BandMedium},
	}
	for _, tt := range tests {
		got := [4]Band{tt.year.LeadTime(tt.lead), tt.year.Restore(tt.restore), tt.year.Frequency(tt.perDay), tt.year.FailureRate(tt.rate)}
		want := [4]Band{tt.wantLead, tt.wantRestore, tt.wantFrequency, tt.wantFailures}
		if got != want {
			t.Errorf("%d: bands %v, want %v", tt.year, got, want)
		}
	}
	if _, err := ParseBenchmark(2022); err == nil {
		t.Error("2022 has no Elite cluster and no benchmark here")
	}
}

// TestMergedDurationsMatchesSummarise checks that figures built from the
// samples of a period's parts equal those of all its values at once.
func TestMergedDurationsMatchesSummarise(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 5))
	for trial := range 200 {
		var all []time.Duration
		parts := make([]Sample, rnd.IntN(15))
		for i := range parts {
			values := make([]time.Duration, rnd.IntN(40))
			for j := range values {
				values[j] = time.Duration(rnd.IntN(100)-10) * time.Minute // some non-positive, many repeated
				if trial%4 == 0 {
					values[j] = time.Duration(rnd.Int64()) - math.MaxInt64/8 // spread, extremes
				}
			}
			all = append(all, values...)
			parts[i] = NewSample(values)
		}
		if got, want := MergedDurations(parts...), Summarise(all); got != want {
			t.Fatalf("trial %d: merged %+v, all at once %+v", trial, got, want)
		}
	}
}
