package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/tenant"
)

const purgeUsage = `usage: keyline purge [--dry-run] [--json]

Deletes all data of every site (Jira or Confluence) uninstalled more than
KEYLINE_RETENTION_DAYS days ago (30 by default) and not installed again:
its row, secrets, sources, delivery logs and DevOps data. A site that
reinstalls while the purge runs keeps its data. Run it once a day, as a
cron job or the Kubernetes CronJob in deploy/kubernetes; runs from several
places at once are safe. It reads the same KEYLINE_* settings as keyline
serve and applies pending migrations first.

flags:
  --dry-run   list what would be purged, delete nothing
  --json      print the sites as JSON

It prints one line per site and exits non-zero when a delete failed.
`

// purgedSite is one line of keyline purge's output.
type purgedSite struct {
	Product       string    `json:"product"`
	BaseURL       string    `json:"base_url"`
	UninstalledAt time.Time `json:"uninstalled_at"`
	// Outcome is "purged", "would purge" (--dry-run) or "skipped" (installed again).
	Outcome string `json:"outcome"`
}

// purge runs "keyline purge": see purgeUsage.
func purge(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keyline purge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dryRun := fs.Bool("dry-run", false, "")
	asJSON := fs.Bool("json", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, err := fmt.Fprint(stdout, purgeUsage)
			return err
		}
		return fmt.Errorf("purge: %w (see keyline purge --help)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("purge: unexpected argument %q (see keyline purge --help)", fs.Arg(0))
	}
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, newLogger(quietConfig(cfg), stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	cutoff := time.Now().AddDate(0, 0, -cfg.RetentionDays)
	sites, err := st.UninstalledBefore(ctx, cutoff)
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	var (
		out    = []purgedSite{}
		failed int
	)
	for _, t := range sites {
		p := purgedSite{Product: t.ProductType, BaseURL: t.BaseURL, Outcome: "would purge"}
		if t.UninstalledAt != nil {
			p.UninstalledAt = t.UninstalledAt.UTC()
		}
		if !*dryRun {
			switch err := st.PurgeUninstalledTenant(ctx, t, cutoff); {
			case errors.Is(err, tenant.ErrNotFound):
				p.Outcome = "skipped"
			case err != nil:
				failed++
				fmt.Fprintf(stderr, "keyline: purge %s %s: %s\n", t.ProductType, t.BaseURL, oneLine(err.Error()))
				continue
			default:
				p.Outcome = "purged"
			}
		}
		out = append(out, p)
	}
	if *asJSON {
		err = writeJSON(stdout, out)
	} else {
		for _, p := range out {
			note := ""
			if p.Outcome == "skipped" {
				note = ", installed again"
			}
			if _, err = fmt.Fprintf(stdout, "%s %s %s (uninstalled %s%s)\n", p.Outcome, p.Product, p.BaseURL,
				p.UninstalledAt.Format(time.DateOnly), note); err != nil {
				break
			}
		}
		if err == nil && len(out) == 0 {
			_, err = fmt.Fprintf(stdout, "nothing to purge: no site was uninstalled before %s\n", cutoff.UTC().Format(time.DateOnly))
		}
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("purge: %d of %d sites could not be deleted", failed, len(sites))
	}
	return nil
}
