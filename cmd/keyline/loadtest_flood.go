package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/loadtest"
)

const floodUsage = `flood   shows what a flood on one site does to the others. It seeds
        --victims sites (loadtest-victim-1 …) with one GitHub source each
        and one flooding site (loadtest-flood-1) with --flood-sources, then
        sends at the same time the victims' pushes, paced at --victim-rate
        in all, and the flooder's, paced at --flood-rate in all or, by
        default, as fast as --flood-concurrency workers can. It reports
        the two apart. The flooder's 429s are expected (the server's
        KEYLINE_INGEST_* limits turn it away); a victim answer
        other than 200 "accepted", a 429 included, fails the run, and so
        does a flooder answer other than 200 and 429. --flood-concurrency 0
        runs the victims alone, for the comparison. Its flags:
  --url http://127.0.0.1:8080  where the server listens
  --victims 4                  victim sites, one source each
  --victim-rate 40             the victims' deliveries per second, in all
  --victim-concurrency 8       the victims' workers
  --flood-sources 8            sources of the flooding site
  --flood-concurrency 64       the flooder's workers; 0: no flood
  --flood-rate 0               the flooder's requests per second, in all;
                               0: as fast as its workers can. Unpaced, the
                               flooder and the load tool can take every core
                               of a small machine, which slows the victims
                               as much as the server's work does
  --duration 20s, --warmup 2s, --commits 10, --timeout 30s, --json
`

// floodFlags are the settings of one flood run.
type floodFlags struct {
	url               string
	victims           int
	victimRate        float64
	victimConcurrency int
	floodSources      int
	floodConcurrency  int
	floodRate         float64
	duration          time.Duration
	warmup            time.Duration
	commits           int
	timeout           time.Duration
	asJSON            bool
}

// The flood scenario's sites, apart from the other scenarios' so their
// histories never mix.
const (
	victimClientKeyPrefix = "loadtest-victim-"
	floodClientKeyPrefix  = "loadtest-flood-"
)

func parseFloodFlags(args []string) (*floodFlags, error) {
	f := &floodFlags{}
	fs := flag.NewFlagSet("keyline loadtest flood", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080", "where the server listens")
	fs.IntVar(&f.victims, "victims", 4, "victim sites")
	fs.Float64Var(&f.victimRate, "victim-rate", 40, "victims' deliveries per second")
	fs.IntVar(&f.victimConcurrency, "victim-concurrency", 8, "victims' workers")
	fs.IntVar(&f.floodSources, "flood-sources", 8, "sources of the flooding site")
	fs.IntVar(&f.floodConcurrency, "flood-concurrency", 64, "flooder's workers; 0: no flood")
	fs.Float64Var(&f.floodRate, "flood-rate", 0, "flooder's requests per second; 0: as fast as possible")
	fs.DurationVar(&f.duration, "duration", 20*time.Second, "measured window")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "warm-up, not counted")
	fs.IntVar(&f.commits, "commits", 10, "commits per push")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "time limit of one request")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	u, err := serverURL(f.url)
	if err != nil {
		return nil, err
	}
	f.url = u
	switch {
	case f.victims < 1 || f.victims > maxLoadTenants:
		return nil, fmt.Errorf("--victims %d: want 1 to %d", f.victims, maxLoadTenants)
	case !(f.victimRate > 0): // also NaN
		return nil, fmt.Errorf("--victim-rate %g: want a positive rate (victims are paced)", f.victimRate)
	case f.victimConcurrency < 1:
		return nil, fmt.Errorf("--victim-concurrency %d: want at least 1", f.victimConcurrency)
	case f.floodSources < 1 || f.floodSources > maxLoadSources:
		return nil, fmt.Errorf("--flood-sources %d: want 1 to %d", f.floodSources, maxLoadSources)
	case f.floodConcurrency < 0:
		return nil, fmt.Errorf("--flood-concurrency %d: want 0 (no flood) or more", f.floodConcurrency)
	case !(f.floodRate >= 0) || math.IsInf(f.floodRate, 0): // also NaN
		return nil, fmt.Errorf("--flood-rate %g: want 0 (as fast as possible) or a positive rate", f.floodRate)
	case f.floodRate > 0 && f.floodConcurrency == 0:
		return nil, fmt.Errorf("--flood-rate %g with --flood-concurrency 0: there is no flood to pace", f.floodRate)
	case f.duration <= 0:
		return nil, fmt.Errorf("--duration %s: want a positive duration", f.duration)
	case f.warmup < 0:
		return nil, fmt.Errorf("--warmup %s: must not be negative", f.warmup)
	case f.commits < 1 || f.commits > maxLoadCommits:
		return nil, fmt.Errorf("--commits %d: want 1 to %d", f.commits, maxLoadCommits)
	case f.timeout <= 0:
		return nil, fmt.Errorf("--timeout %s: want a positive duration", f.timeout)
	}
	return f, nil
}

// floodResultJSON is what --json prints for the flood scenario.
type floodResultJSON struct {
	Scenario          string                `json:"scenario"`
	URL               string                `json:"url"`
	Database          string                `json:"database"`
	Victims           int                   `json:"victim_sites"`
	VictimRate        float64               `json:"victim_rate"`
	FloodSources      int                   `json:"flood_sources"`
	FloodConcurrency  int                   `json:"flood_concurrency"`
	FloodRate         float64               `json:"flood_rate"`
	Commits           int                   `json:"commits_per_push"`
	Report            *loadtest.FloodReport `json:"report"`
	FloodRefusedShare float64               `json:"flood_refused_share"`
}

// loadtestFlood runs "keyline loadtest flood …".
func loadtestFlood(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	f, err := parseFloodFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		_, err := fmt.Fprint(stdout, loadtestUsage)
		return err
	}
	if err != nil {
		return fmt.Errorf("loadtest flood: %w", err)
	}
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	groups := []siteGroup{{prefix: victimClientKeyPrefix, sites: f.victims, sources: 1}}
	if f.floodConcurrency > 0 {
		groups = append(groups, siteGroup{prefix: floodClientKeyPrefix, sites: 1, sources: f.floodSources})
	}
	seeded, dialect, err := seedLoadtest(ctx, cfg, groups, stderr)
	if err != nil {
		return fmt.Errorf("loadtest flood: seed: %w", err)
	}
	// Each side has a client of its own: the flooder's connections must
	// not be the ones the victims wait for.
	victimClient := loadtest.NewKeepAliveClient(f.victimConcurrency, f.timeout)
	if err := checkReady(ctx, victimClient, f.url); err != nil {
		return fmt.Errorf("loadtest flood: %w", err)
	}
	runID, err := randomRunID()
	if err != nil {
		return fmt.Errorf("loadtest flood: %w", err)
	}
	victims, err := loadtest.GitHubPushes{BaseURL: f.url, Sources: seeded[0], Commits: f.commits, RunID: runID + "-v"}.Generator()
	if err != nil {
		return fmt.Errorf("loadtest flood: %w", err)
	}
	run := loadtest.Flood{Victims: loadtest.Config{Client: victimClient, Concurrency: f.victimConcurrency,
		Warmup: f.warmup, Duration: f.duration, Rate: f.victimRate, Generator: victims, Check: loadtest.CheckIngest}}
	if f.floodConcurrency > 0 {
		flooder, err := loadtest.GitHubPushes{BaseURL: f.url, Sources: seeded[1], Commits: f.commits, RunID: runID + "-f"}.Generator()
		if err != nil {
			return fmt.Errorf("loadtest flood: %w", err)
		}
		run.Flooder = loadtest.Config{Client: loadtest.NewKeepAliveClient(f.floodConcurrency, f.timeout), Concurrency: f.floodConcurrency,
			Warmup: f.warmup, Duration: f.duration, Rate: f.floodRate, Generator: flooder, Check: loadtest.CheckFlooder}
	}
	if !f.asJSON {
		fmt.Fprintf(stdout, "seeded %d victim sites (%s1 … %d), one GitHub source each (%s)\n",
			f.victims, victimClientKeyPrefix, f.victims, dialect)
		if f.floodConcurrency > 0 {
			fmt.Fprintf(stdout, "and flooding site %s1 with %d sources\n", floodClientKeyPrefix, f.floodSources)
			flood := fmt.Sprintf("as fast as %d workers can", f.floodConcurrency)
			if f.floodRate > 0 {
				flood = fmt.Sprintf("paced at %g/s with %d workers", f.floodRate, f.floodConcurrency)
			}
			fmt.Fprintf(stdout, "sending pushes of %d commits to %s: victims paced at %g/s in all, the flooder %s; %s warm-up, then %s measured\n",
				f.commits, f.url, f.victimRate, flood, f.warmup, f.duration)
		} else {
			fmt.Fprintf(stdout, "no flood: sending the victims' pushes of %d commits to %s alone, paced at %g/s in all; %s warm-up, then %s measured\n",
				f.commits, f.url, f.victimRate, f.warmup, f.duration)
		}
	}
	rep, runErr := run.Run(ctx)
	if rep == nil { // the configuration was refused; flags are checked, so a bug
		return fmt.Errorf("loadtest flood: %w", runErr)
	}
	if f.asJSON {
		res := floodResultJSON{Scenario: "flood", URL: f.url, Database: dialect, Victims: f.victims, VictimRate: f.victimRate,
			FloodSources: f.floodSources, FloodConcurrency: f.floodConcurrency, FloodRate: f.floodRate, Commits: f.commits, Report: rep}
		if rep.Flooder != nil && rep.Flooder.Sent > 0 {
			res.FloodRefusedShare = float64(rep.Refused()) / float64(rep.Flooder.Sent)
		}
		err = writeJSON(stdout, res)
	} else {
		err = rep.WriteText(stdout)
		if err == nil && rep.Flooder != nil && rep.Refused() == 0 {
			// Not a failure (the victims' figures still stand), but no
			// limit was shown at work.
			_, err = fmt.Fprintln(stdout, "note: the flooder got no 429: are the server's KEYLINE_INGEST_* limits off or above what it sent?")
		}
	}
	if err != nil {
		return fmt.Errorf("loadtest flood: write report: %w", err)
	}
	if runErr != nil {
		return fmt.Errorf("loadtest flood: interrupted; the report covers the requests made until then: %w", runErr)
	}
	if err := rep.Err(); err != nil {
		return fmt.Errorf("loadtest flood: %w", err)
	}
	return nil
}
