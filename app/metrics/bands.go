package metrics

import (
	"fmt"
	"time"
)

// Band is a DORA performance cluster.
type Band string

// Bands, best first.
const (
	BandElite  Band = "elite"
	BandHigh   Band = "high"
	BandMedium Band = "medium"
	BandLow    Band = "low"
)

// Benchmark is the year of the State of DevOps report whose clusters a band
// is read against. The boundaries move from year to year, so every band
// shown says which year it uses, and the raw value is always shown beside it.
type Benchmark int

// Supported benchmark years.
const (
	Benchmark2019 Benchmark = 2019
	Benchmark2021 Benchmark = 2021
	Benchmark2023 Benchmark = 2023
)

// ParseBenchmark reads a benchmark year.
func ParseBenchmark(year int) (Benchmark, error) {
	switch b := Benchmark(year); b {
	case Benchmark2019, Benchmark2021, Benchmark2023:
		return b, nil
	}
	return 0, fmt.Errorf("metrics: no DORA benchmark for %d (use 2019, 2021 or 2023)", year)
}

// The reports' clusters leave gaps and overlaps (2019 gives 0-15 % change
// failure rate to three clusters; 2021 has no cluster between an hour and a
// day of lead time). The limits below make each year's clusters contiguous
// the way Four Keys (2019) and Apache DevLake (2021, 2023) do: a value falls
// in the best cluster whose upper limit it is under.
const (
	hour  = time.Hour
	day   = 24 * time.Hour
	week  = 7 * day
	month = 30 * day
)

// durationLimits are the upper limits of elite, high and medium.
type durationLimits [3]time.Duration

var (
	leadTimeLimits = map[Benchmark]durationLimits{
		Benchmark2019: {day, week, month},
		Benchmark2021: {hour, week, 6 * month},
		Benchmark2023: {day, week, month},
	}
	restoreLimits = map[Benchmark]durationLimits{
		Benchmark2019: {hour, day, week},
		Benchmark2021: {hour, day, week},
		Benchmark2023: {hour, day, week},
	}
	// Deployments per day at or above which a cluster is reached: on
	// demand (daily or more), weekly, monthly, twice a year.
	frequencyFloors = map[Benchmark][3]float64{
		Benchmark2019: {1, 1.0 / 7, 1.0 / 30},
		Benchmark2021: {1, 1.0 / 30, 1.0 / 182},
		Benchmark2023: {1, 1.0 / 7, 1.0 / 30},
	}
	// Change failure rate at or below which a cluster is reached.
	failureCeilings = map[Benchmark][3]float64{
		Benchmark2019: {0.15, 0.15, 0.45},
		Benchmark2021: {0.15, 0.30, 0.30},
		Benchmark2023: {0.05, 0.10, 0.15},
	}
)

func bandOf(i int) Band {
	return [...]Band{BandElite, BandHigh, BandMedium, BandLow}[i]
}

// LeadTime returns the band of a median lead time.
func (b Benchmark) LeadTime(d time.Duration) Band { return durationBand(leadTimeLimits[b], d) }

// Restore returns the band of a median time to restore.
func (b Benchmark) Restore(d time.Duration) Band { return durationBand(restoreLimits[b], d) }

func durationBand(limits durationLimits, d time.Duration) Band {
	for i, limit := range limits {
		if d < limit {
			return bandOf(i)
		}
	}
	return BandLow
}

// Frequency returns the band of a deployment rate, in deployments per day.
func (b Benchmark) Frequency(perDay float64) Band {
	for i, floor := range frequencyFloors[b] {
		if perDay >= floor {
			return bandOf(i)
		}
	}
	return BandLow
}

// FailureRate returns the band of a change failure rate (0 to 1).
func (b Benchmark) FailureRate(rate float64) Band {
	for i, ceiling := range failureCeilings[b] {
		if rate <= ceiling {
			return bandOf(i)
		}
	}
	return BandLow
}
