// Command keyline runs Keyline, the Open DevOps app for Jira and Confluence.
//
//	keyline [serve]   start the server (applies migrations first)
//	keyline migrate   apply database migrations and exit
//	keyline healthcheck  exit 0 if the local server's /healthz answers 200
//	keyline sources   add, list, rotate or delete a site's webhook sources
//	keyline report    send a build, deployment or incident to a generic source
//	keyline loadtest  load-test a running Keyline (ingest)
//	keyline purge     delete the data of sites uninstalled past the retention period
//	keyline version   print the version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, env, stderr)
	case "migrate":
		err = migrate(ctx, env, stdout, stderr)
	case "healthcheck":
		err = healthcheck(ctx, env, stdout)
	case "sources":
		err = sources(ctx, args, env, os.Stdin, stdout, stderr)
	case "report":
		err = report(ctx, args, env, os.Stdin, stdout, stderr)
	case "loadtest":
		err = runLoadtest(ctx, args, env, stdout, stderr)
	case "demo":
		err = runDemo(ctx, args, env, stdout, stderr)
	case "purge":
		err = purge(ctx, args, env, stdout, stderr)
	case "version":
		_, err = fmt.Fprintln(stdout, "keyline", version)
	case "help", "-h", "--help":
		_, err = fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "keyline: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "keyline:", oneLine(err.Error()))
		return 1
	}
	return 0
}

const usage = `usage: keyline [command]

commands:
  serve     start the server (the default; applies migrations first)
  migrate   apply database migrations and exit
  healthcheck
            exit 0 if the local server's /healthz answers 200 within 3s
            (for container health checks; reads KEYLINE_ADDR)
  sources   add, list, rotate or delete a Jira site's webhook sources
            (keyline sources help)
  report    send a build, deployment or incident to a generic source
            (keyline report help)
  loadtest  load-test a running Keyline with GitHub pushes
            (keyline loadtest help)
  demo      run Keyline with a demo site and a page that frames it (keyline demo help)
  purge     delete the data of sites uninstalled longer than KEYLINE_RETENTION_DAYS
            (keyline purge --help)
  version   print the version

Settings come from KEYLINE_* environment variables; see README.md.
`

func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
