package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/keyline/keyline/app/devops"
	"github.com/keyline/keyline/app/ingest"
)

const reportUsage = `usage: keyline report build|deployment|incident [flags]

Sends one build, deployment or incident to a Keyline source of kind generic,
from any CI job or script. The body is signed with X-Keyline-Signature
(HMAC-SHA256 of the exact bytes sent); the secret itself never leaves the machine.

environment:
  KEYLINE_URL    the source's webhook URL, as keyline sources add printed it
                 (override: --keyline-url); /builds, /deployments or
                 /incidents is appended
  KEYLINE_TOKEN  the source's secret (override: --token-stdin, which reads it
                 from standard input; secrets are never taken as flag values,
                 which other users can see in the process list)

Inside GitHub Actions (GITHUB_ACTIONS=true) or GitLab CI (GITLAB_CI=true),
flags marked "CI default" are taken from the job's variables when not given;
pass the flag with an empty value (--commit "") to send none.

common flags:
  --keyline-url URL        instead of KEYLINE_URL
  --token-stdin            read the secret from standard input (one line)
  --idempotency-key KEY    Idempotency-Key header; a repeat with the same key is
                           answered "duplicate" and changes nothing (default: a
                           random key per invocation, reused by its retries)
  --timeout 30s            time limit of each attempt
  --dry-run                print the JSON body and send nothing (needs no
                           KEYLINE_URL or KEYLINE_TOKEN)
  --json                   print Keyline's JSON answer instead of one line

On success one line is printed (accepted, duplicate or ignored) and the exit
status is 0. When Keyline refuses the report its reason is printed and the
exit status is 1. Connection errors, time-outs and 5xx answers are retried,
3 attempts in all.

keyline report build -h (deployment -h, incident -h) lists a kind's flags.
See docs/ingest.md for the fields' meaning.
`

// Environment variables the command reads its target and secret from.
const (
	envReportURL   = "KEYLINE_URL"
	envReportToken = "KEYLINE_TOKEN"
)

// Limits of what the command sends and reads.
const (
	// maxReplyLen bounds how much of Keyline's answer is read: answers are
	// one short JSON object, and anything larger is not from Keyline.
	maxReplyLen = 1 << 20
	// maxIdempotencyKeyLen keeps a chosen key within what the delivery log
	// shows verbatim (longer keys are stored as their hash).
	maxIdempotencyKeyLen = 128
	// maxSecretLineLen bounds --token-stdin's read; secrets are at most 512 bytes.
	maxSecretLineLen = 4096
)

// reporter holds what "keyline report" needs from outside the command line,
// so tests can shorten the wait between attempts and fix the clock.
type reporter struct {
	attempts  int                           // attempts in all, at least 1
	backoff   func(retry int) time.Duration // wait before retry n (1, 2, …)
	now       func() time.Time
	transport http.RoundTripper // nil: http.DefaultTransport
}

// defaultReporter makes 3 attempts, waiting 1 s and then 2 s: long enough to
// ride out a restart of Keyline, short enough not to hold up a CI job.
func defaultReporter() reporter {
	return reporter{
		attempts: 3,
		backoff:  func(retry int) time.Duration { return time.Second << (retry - 1) },
		now:      time.Now,
	}
}

// report runs "keyline report …". stdin is read by --token-stdin only.
func report(ctx context.Context, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) error {
	return defaultReporter().run(ctx, args, env, stdin, stdout, stderr)
}

// reportCommon are the flags every kind shares.
type reportCommon struct {
	keylineURL     string
	tokenStdin     bool
	idempotencyKey string
	timeout        time.Duration
	dryRun         bool
	asJSON         bool
}

func (c *reportCommon) define(fs *flag.FlagSet) {
	fs.StringVar(&c.keylineURL, "keyline-url", "", "the source's webhook URL (default: $KEYLINE_URL)")
	fs.BoolVar(&c.tokenStdin, "token-stdin", false, "read the source's secret from standard input (default: $KEYLINE_TOKEN)")
	fs.StringVar(&c.idempotencyKey, "idempotency-key", "", "Idempotency-Key header (default: random per invocation, reused by retries)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "time limit of each attempt")
	fs.BoolVar(&c.dryRun, "dry-run", false, "print the JSON body and send nothing")
	fs.BoolVar(&c.asJSON, "json", false, "print Keyline's JSON answer")
}

// payloadFunc builds a kind's payload once the flags are parsed. set holds
// the flags given on the command line, so CI defaults fill only the others.
type payloadFunc func(ci ciDefaults, set map[string]bool, now time.Time) (any, error)

func (r reporter) run(ctx context.Context, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("report: missing kind (build, deployment or incident); see keyline report help")
	}
	kind, args := args[0], args[1:]
	fs := flag.NewFlagSet("keyline report "+kind, flag.ContinueOnError)
	// Parse errors are returned as one line; the flag list goes to stdout on -h only.
	fs.SetOutput(io.Discard)
	var common reportCommon
	common.define(fs)
	var (
		entity string
		build  payloadFunc
	)
	switch kind {
	case "build":
		entity, build = ingest.GenericBuild, defineBuildFlags(fs)
	case "deployment":
		entity, build = ingest.GenericDeployment, defineDeploymentFlags(fs)
	case "incident":
		entity, build = ingest.GenericIncident, defineIncidentFlags(fs)
	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, reportUsage)
		return err
	default:
		return fmt.Errorf("report: unknown kind %q (build, deployment or incident)", kind)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return printReportFlags(stdout, fs, kind)
		}
		return fmt.Errorf("report %s: %w", kind, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("report %s: unexpected argument %q", kind, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	payload, err := build(ciDefaultsFrom(env), set, r.now())
	if err != nil {
		return fmt.Errorf("report %s: %w", kind, err)
	}
	body, err := encodePayload(payload)
	if err != nil {
		return fmt.Errorf("report %s: %w", kind, err)
	}
	// The server's own parser: what it would refuse is refused here, before
	// anything is sent, with the same reason.
	if _, err := ingest.ParseGeneric(entity, body); err != nil {
		return fmt.Errorf("report %s: %w", kind, err)
	}
	if common.dryRun {
		_, err := stdout.Write(append(body, '\n'))
		return err
	}

	rawURL := env[envReportURL]
	if set["keyline-url"] {
		rawURL = common.keylineURL
	}
	target, err := reportTarget(rawURL, entity)
	if err != nil {
		return fmt.Errorf("report %s: %w", kind, err)
	}
	secret, err := reportSecret(env, common.tokenStdin, stdin)
	if err != nil {
		return fmt.Errorf("report %s: %w", kind, err)
	}
	key := common.idempotencyKey
	if set["idempotency-key"] {
		if err := checkIdempotencyKey(key); err != nil {
			return fmt.Errorf("report %s: %w", kind, err)
		}
	} else {
		// A key of its own makes the retries below safe: if an attempt was
		// stored but its answer lost, the retry is answered "duplicate".
		key = "report-" + strings.ToLower(rand.Text())
	}
	if common.timeout <= 0 {
		return fmt.Errorf("report %s: --timeout must be positive", kind)
	}

	reply, raw, err := r.send(ctx, stderr, "report "+kind, target, body, secret, key, common.timeout)
	if err != nil {
		return fmt.Errorf("report %s: %w", kind, err)
	}
	if common.asJSON {
		var buf bytes.Buffer
		if json.Indent(&buf, raw, "", "  ") == nil {
			buf.WriteByte('\n')
			_, err := stdout.Write(buf.Bytes())
			return err
		}
	}
	_, err = fmt.Fprintln(stdout, reply.line())
	return err
}

func printReportFlags(w io.Writer, fs *flag.FlagSet, kind string) error {
	if _, err := fmt.Fprintf(w, "usage: keyline report %s [flags]\n\nflags:\n", kind); err != nil {
		return err
	}
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	_, err := io.WriteString(w, "\nkeyline report help explains KEYLINE_URL, KEYLINE_TOKEN, retries and exit statuses.\n")
	return err
}

// ciDefaults are values a CI job's own variables give for flags the user
// left out. Only one CI system's variables are read, the one the job runs
// in, so a stray variable of another system never leaks into a report.
type ciDefaults struct {
	commit     string
	ref        string
	repository string // as the code host's webhooks name it, so it matches their commits
	runNumber  string
	runURL     string
}

func ciDefaultsFrom(env map[string]string) ciDefaults {
	switch {
	case env["GITHUB_ACTIONS"] == "true":
		d := ciDefaults{
			commit: env["GITHUB_SHA"],
			// On pull_request events GITHUB_REF is refs/pull/N/merge; the
			// head branch's name is the one that carries issue keys.
			ref:        firstNonEmptyString(env["GITHUB_HEAD_REF"], env["GITHUB_REF"]),
			repository: env["GITHUB_REPOSITORY_ID"],
			runNumber:  env["GITHUB_RUN_NUMBER"],
		}
		if server, repo, id := env["GITHUB_SERVER_URL"], env["GITHUB_REPOSITORY"], env["GITHUB_RUN_ID"]; server != "" && repo != "" && id != "" {
			d.runURL = strings.TrimSuffix(server, "/") + "/" + repo + "/actions/runs/" + id
		}
		return d
	case env["GITLAB_CI"] == "true":
		return ciDefaults{
			commit:     env["CI_COMMIT_SHA"],
			ref:        env["CI_COMMIT_REF_NAME"],
			repository: env["CI_PROJECT_ID"],
			runNumber:  env["CI_PIPELINE_IID"],
			runURL:     env["CI_PIPELINE_URL"],
		}
	}
	return ciDefaults{}
}

// Help texts of flags shared by several kinds.
const (
	helpCommit     = "hash of the commit (CI default: GITHUB_SHA, CI_COMMIT_SHA)"
	helpRepository = "repository id of --commit as the code host's webhooks name it: GitHub repository id, GitLab project id, Bitbucket {uuid} (CI default: GITHUB_REPOSITORY_ID, CI_PROJECT_ID)"
	helpRef        = "branch or tag; issue keys in it are linked (CI default: GITHUB_HEAD_REF or GITHUB_REF, CI_COMMIT_REF_NAME)"
	helpIssueKey   = "Jira issue key to link; repeatable, or several separated by commas"
	helpUpdatedAt  = "when it reached this state, RFC 3339 (default: now)"
	helpRunURL     = "(CI default: the run's page, CI_PIPELINE_URL)"
)

func defineBuildFlags(fs *flag.FlagSet) payloadFunc {
	var (
		p            ingest.GenericBuildPayload
		commit, repo string
		keys         listFlag
		tests        [4]int // total, passed, failed, skipped
	)
	fs.StringVar(&p.PipelineID, "pipeline-id", "", "id of the pipeline, the same for all its runs (required)")
	fs.StringVar(&p.DisplayName, "pipeline-name", "", "name of the pipeline shown in Jira (default: the id)")
	fs.Int64Var(&p.BuildNumber, "number", 0, "number of this run, positive (required; CI default: GITHUB_RUN_NUMBER, CI_PIPELINE_IID)")
	fs.StringVar(&p.State, "state", "", "pending, in_progress, successful, failed, cancelled or unknown (required); success, failure, canceled and running are read as their Keyline names")
	fs.StringVar(&p.URL, "url", "", "link to the run "+helpRunURL)
	fs.StringVar(&p.StartedAt, "started-at", "", "when the run started, RFC 3339")
	fs.StringVar(&p.LastUpdated, "updated-at", "", helpUpdatedAt)
	fs.StringVar(&p.Ref, "ref", "", helpRef)
	fs.StringVar(&commit, "commit", "", helpCommit)
	fs.StringVar(&repo, "repository", "", helpRepository)
	fs.Var(&keys, "issue-key", helpIssueKey)
	testNames := testFlagNames()
	for i, help := range [4]string{
		"number of tests (default: passed + failed + skipped)",
		"number of tests that passed", "number of tests that failed", "number of tests skipped",
	} {
		fs.IntVar(&tests[i], testNames[i], 0, help)
	}
	return func(ci ciDefaults, set map[string]bool, now time.Time) (any, error) {
		if strings.TrimSpace(p.PipelineID) == "" {
			return nil, errors.New("--pipeline-id is required")
		}
		if err := defaultNumber(set, "number", &p.BuildNumber, ci.runNumber); err != nil {
			return nil, err
		}
		var err error
		if p.State, err = reportState("state", p.State); err != nil {
			return nil, err
		}
		defaultString(set, "url", &p.URL, ci.runURL)
		defaultString(set, "ref", &p.Ref, ci.ref)
		if err := checkTimes(now, &p.LastUpdated, [2]string{"started-at", p.StartedAt}); err != nil {
			return nil, err
		}
		if sha, repository, err := commitFlags(ci, set, commit, repo); err != nil {
			return nil, err
		} else if sha != "" {
			p.Commit = newOf(p.Commit)
			p.Commit.SHA, p.Commit.Repository = sha, repository
		}
		p.IssueKeys = keys
		if set[testNames[0]] || set[testNames[1]] || set[testNames[2]] || set[testNames[3]] {
			ts, err := testSummary(set[testNames[0]], tests)
			if err != nil {
				return nil, err
			}
			p.TestInfo = ts
		}
		return &p, nil
	}
}

func defineDeploymentFlags(fs *flag.FlagSet) payloadFunc {
	var (
		p            ingest.GenericDeploymentPayload
		commit, repo string
		keys         listFlag
	)
	fs.StringVar(&p.Pipeline.ID, "pipeline-id", "", "id of the deploying pipeline (required)")
	fs.StringVar(&p.Pipeline.DisplayName, "pipeline-name", "", "name of the pipeline shown in Jira (default: the id)")
	fs.StringVar(&p.Pipeline.URL, "pipeline-url", "", "link to the pipeline, shown when --url is empty")
	fs.StringVar(&p.Environment.ID, "environment-id", "", "id of the environment (required)")
	fs.StringVar(&p.Environment.DisplayName, "environment-name", "", "name of the environment; environment rules and the name heuristic read it (default: the id)")
	fs.StringVar(&p.Environment.Type, "environment-type", "", "development, testing, staging or production (default: from the source's rules or the name)")
	fs.StringVar(&p.Environment.URL, "environment-url", "", "link to the deployed environment")
	fs.Int64Var(&p.DeploymentSequenceNumber, "sequence", 0, "number of this deployment, increasing within pipeline and environment (required; CI default: GITHUB_RUN_NUMBER, CI_PIPELINE_IID)")
	fs.StringVar(&p.State, "state", "", "pending, in_progress, successful, failed, cancelled, rolled_back or unknown (required); success, failure, canceled and running are read as their Keyline names")
	fs.StringVar(&p.Service, "service", "", "service deployed; incidents of the same service are matched to its production deployments")
	fs.StringVar(&p.URL, "url", "", "link to the deployment "+helpRunURL)
	fs.StringVar(&p.StartedAt, "started-at", "", "when the deployment started, RFC 3339")
	fs.StringVar(&p.LastUpdated, "updated-at", "", helpUpdatedAt)
	fs.StringVar(&p.Ref, "ref", "", helpRef)
	// One commit, not a list: a deployment deploys one commit, and Keyline
	// finds the others from the recorded pushes.
	fs.StringVar(&commit, "commit", "", "hash of the deployed commit (CI default: GITHUB_SHA, CI_COMMIT_SHA)")
	fs.StringVar(&repo, "repository", "", helpRepository)
	fs.Var(&keys, "issue-key", helpIssueKey)
	return func(ci ciDefaults, set map[string]bool, now time.Time) (any, error) {
		for _, f := range [][2]string{{"pipeline-id", p.Pipeline.ID}, {"environment-id", p.Environment.ID}} {
			if strings.TrimSpace(f[1]) == "" {
				return nil, fmt.Errorf("--%s is required", f[0])
			}
		}
		if err := defaultNumber(set, "sequence", &p.DeploymentSequenceNumber, ci.runNumber); err != nil {
			return nil, err
		}
		var err error
		if p.State, err = reportState("state", p.State); err != nil {
			return nil, err
		}
		defaultString(set, "url", &p.URL, ci.runURL)
		defaultString(set, "ref", &p.Ref, ci.ref)
		if err := checkTimes(now, &p.LastUpdated, [2]string{"started-at", p.StartedAt}); err != nil {
			return nil, err
		}
		if sha, repository, err := commitFlags(ci, set, commit, repo); err != nil {
			return nil, err
		} else if sha != "" {
			p.Commits = oneOf(p.Commits)
			p.Commits[0].SHA, p.Commits[0].Repository = sha, repository
		}
		p.IssueKeys = keys
		return &p, nil
	}
}

func defineIncidentFlags(fs *flag.FlagSet) payloadFunc {
	var (
		p    ingest.GenericIncidentPayload
		dep  devops.DeploymentKey
		keys listFlag
	)
	fs.StringVar(&p.ID, "id", "", "the incident's id in your tool; send it again to update the incident (required)")
	fs.StringVar(&p.Summary, "summary", "", "one-line summary")
	fs.StringVar(&p.Severity, "severity", "", "severity as your tool names it: P1, high, SEV2…")
	fs.StringVar(&p.Status, "status", "", "open, resolved or unknown (required)")
	fs.StringVar(&p.Service, "service", "", "affected service; without --deployment-* or --commit the incident is linked to this service's last successful production deployment before --opened-at")
	fs.StringVar(&p.URL, "url", "", "link to the incident")
	fs.StringVar(&p.CreatedDate, "opened-at", "", "when the incident opened, RFC 3339 (required)")
	fs.StringVar(&p.ResolvedDate, "resolved-at", "", "when it was resolved, RFC 3339")
	fs.StringVar(&p.LastUpdated, "updated-at", "", helpUpdatedAt)
	fs.StringVar(&p.Commit, "commit", "", "hash of the commit that caused it; the first successful deployment containing it is linked (no CI default)")
	fs.StringVar(&dep.PipelineID, "deployment-pipeline", "", "with --deployment-environment and --deployment-sequence: the deployment that caused it")
	fs.StringVar(&dep.EnvironmentID, "deployment-environment", "", "environment id of that deployment")
	fs.Int64Var(&dep.SequenceNumber, "deployment-sequence", 0, "sequence number of that deployment")
	fs.Var(&keys, "issue-key", helpIssueKey)
	return func(_ ciDefaults, set map[string]bool, now time.Time) (any, error) {
		if strings.TrimSpace(p.ID) == "" {
			return nil, errors.New("--id is required")
		}
		if strings.TrimSpace(p.Status) == "" {
			return nil, errors.New("--status is required (open, resolved or unknown)")
		}
		if p.CreatedDate == "" {
			return nil, errors.New("--opened-at is required")
		}
		if err := checkTimes(now, &p.LastUpdated, [2]string{"opened-at", p.CreatedDate}, [2]string{"resolved-at", p.ResolvedDate}); err != nil {
			return nil, err
		}
		n := 0
		for _, name := range []string{"deployment-pipeline", "deployment-environment", "deployment-sequence"} {
			if set[name] {
				n++
			}
		}
		switch {
		case n == 3:
			p.Deployment = &dep
		case n > 0:
			return nil, errors.New("--deployment-pipeline, --deployment-environment and --deployment-sequence go together")
		}
		p.IssueKeys = keys
		return &p, nil
	}
}

// newOf returns a new zero T for a *T field. It lets this package fill the
// payloads' commit fields, whose element type ingest does not export,
// through the exported payload structs rather than a copy of their schema.
func newOf[T any](*T) *T { return new(T) }

// oneOf returns a one-element slice for a []T field; see newOf.
func oneOf[T any]([]T) []T { return make([]T, 1) }

// defaultString sets *dst to v when the flag name was not given.
func defaultString(set map[string]bool, name string, dst *string, v string) {
	if !set[name] && v != "" {
		*dst = v
	}
}

// defaultNumber sets *dst from the CI run number when the flag was not
// given, and checks the result is positive.
func defaultNumber(set map[string]bool, name string, dst *int64, ciValue string) error {
	if !set[name] && ciValue != "" {
		n, err := strconv.ParseInt(ciValue, 10, 64)
		if err != nil {
			return fmt.Errorf("--%s: the CI run number %q is not a number", name, ciValue)
		}
		*dst = n
	}
	if *dst <= 0 {
		return fmt.Errorf("--%s is required and must be positive", name)
	}
	return nil
}

// checkTimes checks the time flags, given as name and value pairs, after
// setting an empty updated-at to now: the time of the report is the best
// guess of when the state was reached, and Keyline orders reports that
// arrive out of order by it.
func checkTimes(now time.Time, updatedAt *string, others ...[2]string) error {
	if *updatedAt == "" {
		*updatedAt = now.UTC().Format(time.RFC3339)
	}
	for _, f := range append(others, [2]string{"updated-at", *updatedAt}) {
		if err := checkTime(f[0], f[1]); err != nil {
			return err
		}
	}
	return nil
}

// checkTime accepts an empty value or an RFC 3339 time. The server also
// reads GitLab's own formats; the command asks for one format so that
// scripts stay portable.
func checkTime(name, v string) error {
	if v == "" {
		return nil
	}
	if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
		return fmt.Errorf("--%s %q is not an RFC 3339 time such as 2026-03-01T12:00:00Z (date -u +%%FT%%TZ prints one)", name, v)
	}
	return nil
}

// stateAliases are the spellings GitHub's job.status and GitLab's
// CI_JOB_STATUS use, so their values can be passed to --state unchanged.
func stateAliases() map[string]string {
	return map[string]string{
		"success":  "successful",
		"failure":  "failed",
		"canceled": "cancelled",
		"running":  "in_progress",
	}
}

// reportState normalises a build or deployment --state; validity is left to
// the server's parser, which names the accepted states.
func reportState(name, v string) (string, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return "", fmt.Errorf("--%s is required", name)
	}
	if alias, ok := stateAliases()[v]; ok {
		v = alias
	}
	return v, nil
}

// commitFlags returns the commit and repository to send: the flags, else the
// CI defaults. A repository without a commit is an error when given by hand
// and dropped when it came from CI, where it only qualifies the commit.
func commitFlags(ci ciDefaults, set map[string]bool, commit, repo string) (sha, repository string, err error) {
	defaultString(set, "commit", &commit, ci.commit)
	defaultString(set, "repository", &repo, ci.repository)
	commit = strings.TrimSpace(commit)
	if commit == "" {
		if set["repository"] && repo != "" {
			return "", "", errors.New("--repository needs --commit")
		}
		return "", "", nil
	}
	if !devops.ValidCommitSHA(strings.ToLower(commit)) {
		return "", "", fmt.Errorf("--commit %q is not a commit hash (7 to 64 hex digits)", commit)
	}
	return strings.ToLower(commit), repo, nil
}

func testFlagNames() [4]string {
	return [4]string{"tests-total", "tests-passed", "tests-failed", "tests-skipped"}
}

// testSummary builds testInfo from the --tests-* values (total, passed,
// failed, skipped).
func testSummary(totalSet bool, v [4]int) (*devops.TestSummary, error) {
	for i, n := range v {
		if n < 0 {
			return nil, fmt.Errorf("--%s must not be negative", testFlagNames()[i])
		}
	}
	ts := &devops.TestSummary{Total: v[0], Passed: v[1], Failed: v[2], Skipped: v[3]}
	sum := ts.Passed + ts.Failed + ts.Skipped
	if !totalSet {
		ts.Total = sum
	}
	if ts.Total < sum {
		return nil, fmt.Errorf("--tests-total %d is less than passed + failed + skipped (%d)", ts.Total, sum)
	}
	return ts, nil
}

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })...)
	return nil
}

func firstNonEmptyString(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// encodePayload renders a payload as indented JSON without its empty
// members. The server reads a missing member as the empty value, so the
// meaning is the same; the body is shorter to read in --dry-run; and a
// newer keyline, whose payload structs may have gained fields, still talks
// to an older server, whose strict decoder refuses members it does not know.
func encodePayload(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	pruned, keep, err := pruneJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	if !keep {
		pruned = []byte("{}")
	}
	var out bytes.Buffer
	if err := json.Indent(&out, pruned, "", "  "); err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return out.Bytes(), nil
}

// pruneJSON drops object members whose value is null, "", or an object
// left empty, keeping the members' order; keep is false when raw itself is
// such a value. Array elements are pruned inside but never dropped.
func pruneJSON(raw []byte) (out []byte, keep bool, err error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null" || string(raw) == `""`:
		return nil, false, nil
	case raw[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil {
			return nil, false, err
		}
		var b bytes.Buffer
		b.WriteByte('{')
		n := 0
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, false, err
			}
			name, _ := tok.(string)
			var member json.RawMessage
			if err := dec.Decode(&member); err != nil {
				return nil, false, err
			}
			v, keep, err := pruneJSON(member)
			if err != nil {
				return nil, false, err
			}
			if !keep {
				continue
			}
			if n > 0 {
				b.WriteByte(',')
			}
			nameJSON, err := json.Marshal(name)
			if err != nil {
				return nil, false, err
			}
			b.Write(nameJSON)
			b.WriteByte(':')
			b.Write(v)
			n++
		}
		if n == 0 {
			return nil, false, nil
		}
		b.WriteByte('}')
		return b.Bytes(), true, nil
	case raw[0] == '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil, false, err
		}
		if len(elems) == 0 {
			return nil, false, nil
		}
		var b bytes.Buffer
		b.WriteByte('[')
		for i, e := range elems {
			v, keep, err := pruneJSON(e)
			if err != nil {
				return nil, false, err
			}
			if !keep {
				v = e
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(v)
		}
		b.WriteByte(']')
		return b.Bytes(), true, nil
	}
	return raw, true, nil
}

// reportTarget checks the webhook URL and appends the entity's path. The
// URL is never repeated in errors: its token is half of the credentials.
func reportTarget(raw, entity string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, fmt.Errorf("%s is not set: set it to the source's webhook URL (printed by keyline sources add), or pass --keyline-url", envReportURL)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, errors.New("the webhook URL is not an absolute URL such as https://keyline.example.com/ingest/<token>")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		// A local Keyline during development; anywhere else the body would
		// cross the network in clear.
	default:
		return nil, errors.New("the webhook URL must use https (http only for localhost)")
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, errors.New("the webhook URL must have no user, query or fragment; use it as keyline sources add printed it")
	}
	trimmed := strings.TrimRight(u.Path, "/")
	switch last := path.Base(trimmed); last {
	case ingest.GenericBuild, ingest.GenericDeployment, ingest.GenericIncident:
		return nil, fmt.Errorf("the webhook URL ends in /%s: give the source's URL without it; keyline report adds /%s itself", last, entity)
	}
	if trimmed == "" {
		return nil, errors.New("the webhook URL has no path: it should end in /ingest/<token>")
	}
	return u.JoinPath(entity), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL shows where a request went without the source's token.
func redactURL(u *url.URL) string {
	return u.Scheme + "://" + u.Host + "/…/" + path.Base(u.Path)
}

// reportSecret returns the source's secret from standard input or the
// environment.
func reportSecret(env map[string]string, fromStdin bool, stdin io.Reader) ([]byte, error) {
	var s string
	if fromStdin {
		if stdin == nil {
			return nil, errors.New("--token-stdin: no standard input")
		}
		line, err := bufio.NewReader(io.LimitReader(stdin, maxSecretLineLen)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("--token-stdin: read: %w", err)
		}
		if s = strings.TrimSpace(line); s == "" {
			return nil, errors.New("--token-stdin: standard input is empty")
		}
		return []byte(s), nil
	}
	// Surrounding space is never part of a secret (Keyline refuses such
	// secrets); it is what a copied value or a secrets file tends to add.
	if s = strings.TrimSpace(env[envReportToken]); s == "" {
		return nil, fmt.Errorf("%s is not set: set it to the source's secret (shown by keyline sources add), or pass the secret on standard input with --token-stdin", envReportToken)
	}
	return []byte(s), nil
}

// checkIdempotencyKey accepts 1 to 128 printable ASCII characters without
// spaces, which the delivery log shows as sent.
func checkIdempotencyKey(k string) error {
	if k == "" || len(k) > maxIdempotencyKeyLen {
		return fmt.Errorf("--idempotency-key must have 1 to %d characters", maxIdempotencyKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return errors.New("--idempotency-key must be printable ASCII without spaces")
		}
	}
	return nil
}

// ingestReply is Keyline's answer to a delivery.
type ingestReply struct {
	Outcome    string `json:"outcome"`
	Event      string `json:"event"`
	DeliveryID string `json:"delivery_id"`
	Reason     string `json:"reason"`
	Error      string `json:"error"`
}

// line is the one line printed on success.
func (r ingestReply) line() string {
	s := firstNonEmptyString(r.Outcome, "accepted")
	if r.Event != "" {
		s += " " + r.Event
	}
	if r.DeliveryID != "" {
		s += " (delivery " + r.DeliveryID + ")"
	}
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return oneLine(s)
}

// attemptError is a failed attempt; retry says whether another may succeed.
type attemptError struct {
	err   error
	retry bool
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// send posts body to target, retrying connection errors, time-outs and
// 5xx, 408 and 429 answers with the same Idempotency-Key. It returns the
// decoded and the raw answer of the first 2xx.
func (r reporter) send(ctx context.Context, stderr io.Writer, label string, target *url.URL, body, secret []byte, key string, timeout time.Duration) (ingestReply, []byte, error) {
	client := &http.Client{
		Timeout:   timeout,
		Transport: r.transport,
		// The webhook URL never redirects; following one would post the
		// report somewhere else, or (301, 302) turn it into a GET.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	signature := ingest.SignatureSHA256(secret, body)
	attempts := max(r.attempts, 1)
	for attempt := 1; ; attempt++ {
		reply, raw, err := r.attempt(ctx, client, target, body, signature, key)
		if err == nil {
			return reply, raw, nil
		}
		var ae *attemptError
		retry := errors.As(err, &ae) && ae.retry && ctx.Err() == nil
		if !retry || attempt == attempts {
			if attempt > 1 {
				return ingestReply{}, nil, fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
			}
			return ingestReply{}, nil, err
		}
		wait := r.backoff(attempt)
		fmt.Fprintf(stderr, "keyline: %s: attempt %d of %d failed: %s; retrying in %s\n", label, attempt, attempts, oneLine(err.Error()), wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ingestReply{}, nil, fmt.Errorf("%w (interrupted before attempt %d: %w)", err, attempt+1, ctx.Err())
		case <-t.C:
		}
	}
}

func (r reporter) attempt(ctx context.Context, client *http.Client, target *url.URL, body []byte, signature, key string) (ingestReply, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return ingestReply{}, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keyline-report/"+version)
	req.Header.Set(ingest.HeaderKeylineSignature, signature)
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error would print the whole URL, token included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return ingestReply{}, nil, &attemptError{err: fmt.Errorf("POST %s: %w", redactURL(target), err), retry: true}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyLen))
	if err != nil {
		return ingestReply{}, nil, &attemptError{err: fmt.Errorf("POST %s: read answer: %w", redactURL(target), err), retry: true}
	}
	var reply ingestReply
	_ = json.Unmarshal(raw, &reply) // a non-JSON answer (a proxy's error page) leaves it empty
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return reply, raw, nil
	}
	msg := fmt.Sprintf("Keyline answered %s", resp.Status)
	switch {
	case reply.Error != "":
		msg += ": " + reply.Error
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		msg += ": a redirect; set KEYLINE_URL to the webhook URL exactly as keyline sources add printed it"
	}
	retry := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
	return ingestReply{}, nil, &attemptError{err: errors.New(oneLine(msg)), retry: retry}
}
