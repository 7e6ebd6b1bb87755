package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyline/keyline/app/config"
	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/store"
	"github.com/keyline/keyline/app/tenant"
)

const sourcesUsage = `usage: keyline sources <command> [flags]

Manage the webhook sources of a Jira site (the site must have the Jira app installed).

commands:
  add     --site URL --kind KIND [--name NAME] [--json]
          create a source; prints its webhook URL and secret, shown only this once
          (KIND: github, gitlab, bitbucket, pagerduty, opsgenie, generic)
  list    --site URL [--json]
  rotate  --site URL --id ID [--overlap 24h] [--secret-stdin] [--json]
          replace the secret; the old one keeps verifying for --overlap (0: stops now).
          --secret-stdin reads the new secret from standard input instead of
          generating one, for providers that issue their own (PagerDuty)
  delete  --site URL --id ID [--json]
  rules   --site URL --id ID (--rules JSON | --rules-file PATH) [--json]
          replace the source's environment rules and print them; JSON is an object
          from type to globs, e.g. '{"production": ["prod-*", "live"], "staging": ["*-stable"]}'
          (types: development, testing, staging, production; '{}' clears them).
          --rules-file - reads them from standard input

--site is the Jira site's base URL or custom domain, e.g. https://acme.atlassian.net.
Settings (database, KEYLINE_BASE_URL for webhook URLs) come from the same
KEYLINE_* environment variables as keyline serve.
`

// secretHints tells the operator where each provider wants the URL and secret.
var secretHints = map[string]string{
	store.SourceGitHub:    "GitHub: webhook Payload URL, Content type application/json, Secret.",
	store.SourceGitLab:    "GitLab: webhook URL and Secret token.",
	store.SourceBitbucket: "Bitbucket: webhook URL and Secret (Bitbucket sends no signature without one).",
	store.SourcePagerDuty: "PagerDuty: create a v3 webhook subscription to the URL; PagerDuty issues its own secret, so then run\n  keyline sources rotate --site … --id … --overlap 0 --secret-stdin\nand paste it.",
	store.SourceOpsgenie:  "Opsgenie: webhook integration URL, with a custom header X-Keyline-Token: <secret>.",
	store.SourceGeneric:   "Generic API: send Authorization: Bearer <secret>, or X-Keyline-Signature: sha256=<hex HMAC-SHA256 of the body>.",
}

// sourceJSON is how --json prints a source.
type sourceJSON struct {
	ID                  string     `json:"id"`
	Kind                string     `json:"kind"`
	Name                string     `json:"name"`
	WebhookURL          string     `json:"webhook_url,omitempty"`
	Secret              string     `json:"secret,omitempty"`
	CreatedAt           *time.Time `json:"created_at,omitempty"`
	UpdatedAt           *time.Time `json:"updated_at,omitempty"`
	PreviousSecretUntil *time.Time `json:"previous_secret_until,omitempty"`
	// EnvironmentRules is printed as the JSON object it is, not as a string.
	EnvironmentRules json.RawMessage `json:"environment_rules,omitempty"`
	Deleted          bool            `json:"deleted,omitempty"`
}

// sourcesFlags are the flags every sources command shares.
type sourcesFlags struct {
	fs     *flag.FlagSet
	site   string
	asJSON bool
}

func newSourcesFlags(command string) *sourcesFlags {
	f := &sourcesFlags{}
	f.fs = flag.NewFlagSet("keyline sources "+command, flag.ContinueOnError)
	// Parse errors are returned as one line; the usage goes to stdout on -h only.
	f.fs.SetOutput(io.Discard)
	f.fs.StringVar(&f.site, "site", "", "Jira site base URL or custom domain")
	f.fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	return f
}

// parse parses args and checks that --site and the named string flags are set.
func (f *sourcesFlags) parse(args []string, required map[string]*string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", f.fs.Arg(0))
	}
	if strings.TrimSpace(f.site) == "" {
		return errors.New("--site is required")
	}
	for name, v := range required {
		if strings.TrimSpace(*v) == "" {
			return fmt.Errorf("--%s is required", name)
		}
	}
	return nil
}

// sources runs "keyline sources …". stdin is read by rotate --secret-stdin
// and rules --rules-file - only.
func sources(ctx context.Context, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("sources: missing command (add, list, rotate, delete or rules); see keyline sources help")
	}
	cmd, args := args[0], args[1:]
	f := newSourcesFlags(cmd)
	var (
		kind, name, id      string
		overlap             time.Duration
		secretStdin         bool
		rulesArg, rulesFile string
		required            map[string]*string
	)
	switch cmd {
	case "add":
		f.fs.StringVar(&kind, "kind", "", "source kind: "+strings.Join(store.SourceKinds(), ", "))
		f.fs.StringVar(&name, "name", "", "display name (default: the kind)")
		required = map[string]*string{"kind": &kind}
	case "list":
	case "rotate":
		f.fs.StringVar(&id, "id", "", "source id")
		f.fs.DurationVar(&overlap, "overlap", store.DefaultSecretOverlap, "how long the old secret keeps verifying")
		f.fs.BoolVar(&secretStdin, "secret-stdin", false, "read the new secret from standard input")
		required = map[string]*string{"id": &id}
	case "delete":
		f.fs.StringVar(&id, "id", "", "source id")
		required = map[string]*string{"id": &id}
	case "rules":
		f.fs.StringVar(&id, "id", "", "source id")
		f.fs.StringVar(&rulesArg, "rules", "", "environment rules as a JSON object")
		f.fs.StringVar(&rulesFile, "rules-file", "", "file holding the rules; - for standard input")
		required = map[string]*string{"id": &id}
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, sourcesUsage)
		return err
	default:
		return fmt.Errorf("sources: unknown command %q (add, list, rotate, delete or rules)", cmd)
	}
	if err := f.parse(args, required); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, err := fmt.Fprint(stdout, sourcesUsage)
			return err
		}
		return fmt.Errorf("sources %s: %w", cmd, err)
	}
	if cmd == "add" && !store.ValidSourceKind(kind) {
		return fmt.Errorf("sources add: unknown kind %q (want one of %s)", kind, strings.Join(store.SourceKinds(), ", "))
	}
	var rules []byte
	if cmd == "rules" {
		r, err := readRules(f.fs, rulesArg, rulesFile, stdin)
		if err != nil {
			return fmt.Errorf("sources rules: %w", err)
		}
		rules = r
	}
	var secret string
	if secretStdin {
		s, err := readSecret(stdin)
		if err != nil {
			return fmt.Errorf("sources rotate: %w", err)
		}
		secret = s
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
	t, err := st.TenantByBaseURL(ctx, cfg.JiraAppKey(), f.site)
	if errors.Is(err, tenant.ErrNotFound) {
		return fmt.Errorf("sources %s: no site with the Jira app (%s) installed at %s", cmd, cfg.JiraAppKey(), f.site)
	}
	if err != nil {
		return fmt.Errorf("sources %s: %w", cmd, err)
	}

	switch cmd {
	case "add":
		src, token, secret, err := st.CreateSource(ctx, t, kind, name)
		if err != nil {
			return fmt.Errorf("sources add: %w", err)
		}
		return printCreated(stdout, f.asJSON, cfg.BaseURL, t, src, token, secret)
	case "list":
		list, err := st.ListSources(ctx, t)
		if err != nil {
			return fmt.Errorf("sources list: %w", err)
		}
		return printList(stdout, f.asJSON, list)
	case "rotate":
		if secretStdin {
			err = st.SetSourceSecret(ctx, t, id, secret, overlap)
			secret = "" // the operator has it already; do not echo it
		} else {
			secret, err = st.RotateSourceSecret(ctx, t, id, overlap)
		}
		if err != nil {
			return fmt.Errorf("sources rotate: %w", err)
		}
		src, err := st.SourceByID(ctx, t, id)
		if err != nil {
			return fmt.Errorf("sources rotate: %w", err)
		}
		return printRotated(stdout, f.asJSON, src, secret)
	case "rules":
		if err := st.SetEnvironmentRules(ctx, t, id, rules); err != nil {
			return fmt.Errorf("sources rules: %w", err)
		}
		src, err := st.SourceByID(ctx, t, id)
		if err != nil {
			return fmt.Errorf("sources rules: %w", err)
		}
		return printRules(stdout, f.asJSON, src)
	default: // delete
		if err := st.DeleteSource(ctx, t, id); err != nil {
			return fmt.Errorf("sources delete: %w", err)
		}
		if f.asJSON {
			return writeJSON(stdout, sourceJSON{ID: id, Deleted: true})
		}
		_, err := fmt.Fprintf(stdout, "Source %s deleted; its webhook URL no longer works.\n", id)
		return err
	}
}

// quietConfig keeps the store's informational logs (migrations applied) off
// a command whose output may be piped into another program; warnings and
// errors still reach stderr.
func quietConfig(cfg *config.Config) *config.Config {
	c := *cfg
	if c.LogLevel == "info" {
		c.LogLevel = "warn"
	}
	return &c
}

// readSecret reads one line from r: the secret, without its line ending.
func readSecret(r io.Reader) (string, error) {
	if r == nil {
		return "", errors.New("--secret-stdin: no standard input")
	}
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read secret: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("--secret-stdin: standard input is empty")
	}
	return line, nil
}

// readRules returns the rules document given by exactly one of --rules and
// --rules-file (a path, or - for stdin). It only reads: the store checks what
// the rules say, so the command and the API refuse the same documents.
func readRules(fs *flag.FlagSet, arg, file string, stdin io.Reader) ([]byte, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	switch {
	case set["rules"] && set["rules-file"]:
		return nil, errors.New("give --rules or --rules-file, not both")
	case set["rules"]:
		return []byte(arg), nil
	case !set["rules-file"]:
		return nil, errors.New("--rules or --rules-file is required")
	}
	r, name := stdin, "standard input"
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("--rules-file: %w", err)
		}
		defer fh.Close()
		r, name = fh, file
	} else if r == nil {
		return nil, errors.New("--rules-file -: no standard input")
	}
	// One byte over the limit is enough to know the document is too large.
	b, err := io.ReadAll(io.LimitReader(r, store.MaxEnvironmentRulesLen+1))
	if err != nil {
		return nil, fmt.Errorf("--rules-file: read %s: %w", name, err)
	}
	if len(b) > store.MaxEnvironmentRulesLen {
		return nil, fmt.Errorf("--rules-file: %s is over the limit of %d bytes", name, store.MaxEnvironmentRulesLen)
	}
	return b, nil
}

func printCreated(w io.Writer, asJSON bool, baseURL string, t *tenant.Tenant, src *store.Source, token, secret string) error {
	url := ingest.WebhookURL(baseURL, token)
	if asJSON {
		return writeJSON(w, sourceJSON{ID: src.ID, Kind: src.Kind, Name: src.Name, WebhookURL: url, Secret: secret})
	}
	_, err := fmt.Fprintf(w, "Source %s (%s, %q) created for %s.\n\nwebhook URL: %s\nsecret:      %s\n\n%s\nThe URL and secret are shown only now: if the secret is lost, rotate it;\nif the URL is lost, delete the source and add a new one.\n",
		src.ID, src.Kind, src.Name, t.BaseURL, url, secret, secretHints[src.Kind])
	return err
}

func printList(w io.Writer, asJSON bool, list []store.Source) error {
	if asJSON {
		out := make([]sourceJSON, 0, len(list))
		for _, s := range list {
			out = append(out, sourceJSON{ID: s.ID, Kind: s.Kind, Name: s.Name,
				CreatedAt: &s.CreatedAt, UpdatedAt: &s.UpdatedAt, PreviousSecretUntil: s.PreviousSecretUntil,
				EnvironmentRules: s.EnvironmentRules})
		}
		return writeJSON(w, out)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "No sources.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tNAME\tCREATED\tPREVIOUS SECRET UNTIL")
	for _, s := range list {
		until := "-"
		if s.PreviousSecretUntil != nil {
			until = s.PreviousSecretUntil.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Kind, s.Name, s.CreatedAt.Format(time.RFC3339), until)
	}
	return tw.Flush()
}

func printRotated(w io.Writer, asJSON bool, src *store.Source, secret string) error {
	if asJSON {
		return writeJSON(w, sourceJSON{ID: src.ID, Kind: src.Kind, Name: src.Name, Secret: secret,
			UpdatedAt: &src.UpdatedAt, PreviousSecretUntil: src.PreviousSecretUntil})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Source %s: secret replaced.\n", src.ID)
	if secret != "" {
		fmt.Fprintf(&b, "new secret: %s (shown only now)\n", secret)
	}
	if src.PreviousSecretUntil != nil {
		fmt.Fprintf(&b, "The previous secret keeps verifying until %s.\n", src.PreviousSecretUntil.Format(time.RFC3339))
	} else {
		b.WriteString("The previous secret no longer verifies.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func printRules(w io.Writer, asJSON bool, src *store.Source) error {
	if asJSON {
		return writeJSON(w, sourceJSON{ID: src.ID, Kind: src.Kind, Name: src.Name,
			UpdatedAt: &src.UpdatedAt, EnvironmentRules: src.EnvironmentRules})
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, src.EnvironmentRules, "", "  "); err != nil {
		return fmt.Errorf("print rules: %w", err)
	}
	_, err := fmt.Fprintf(w, "Source %s: environment rules set; deliveries from now on are classified by them.\n%s\n", src.ID, pretty.Bytes())
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
