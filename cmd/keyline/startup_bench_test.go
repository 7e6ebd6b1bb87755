//go:build unix

package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyline/keyline/app/dbtest"
)

const (
	// startupPoll is how often a start polls /readyz: well below the
	// figures measured, so it adds at most a millisecond to each.
	startupPoll = time.Millisecond
	// startupLimit bounds one start: a bound on a hang, not a target.
	startupLimit = 30 * time.Second
	// idleSettle is how long the server sits idle after its warm-up
	// requests before its memory is read, so the figure is what an idle
	// replica holds, not a moment inside start-up or a request.
	idleSettle = 2 * time.Second
	// warmRounds is how many times each warm-up request is sent.
	warmRounds = 5
)

// BenchmarkStartup measures issue 6's start-up and idle-memory figures on
// the real binary, which docs/benchmarks.md ("Start-up and idle memory")
// compares with their targets (300 ms, 40 MB):
//
//	go test ./cmd/keyline -run '^$' -bench Startup -benchtime 10x
//
// Each iteration starts `keyline serve` and times it from the process start
// to the first /readyz answered 200 (ns/op and ms/startup). In "sqlite" and
// "postgres" every start gets an empty database, so it applies every
// migration: a new deployment's first start. In the "-migrated" variants
// every start reuses one database migrated beforehand: a restart or a new
// replica, which has nothing to apply. After the timed starts one more
// start is warmed with a few requests and left idle for idleSettle; its
// resident memory (VmRSS), the anonymous part of it (RssAnon: heap and
// stacks, the rest being the binary's mapped pages) and its peak (VmHWM)
// are MB-rss-idle, MB-anon-idle and MB-hwm-idle, in MiB.
//
// PostgreSQL is the test server of app/dbtest, one fresh schema per start;
// unreachable, the PostgreSQL variants are skipped, or fail with CI=true.
func BenchmarkStartup(b *testing.B) {
	bin := buildKeyline(b)
	b.Run("sqlite", func(b *testing.B) { benchStartup(b, bin, sqliteSettings) })
	b.Run("postgres", func(b *testing.B) { benchStartup(b, bin, postgresSettings) })
	b.Run("sqlite-migrated", func(b *testing.B) { benchStartup(b, bin, migrated(b, bin, sqliteSettings)) })
	b.Run("postgres-migrated", func(b *testing.B) { benchStartup(b, bin, migrated(b, bin, postgresSettings)) })
}

// databaseSettings returns the KEYLINE_* settings of the database one start
// uses.
type databaseSettings func(b *testing.B) map[string]string

// sqliteSettings is embedded mode in a new, empty data dir.
func sqliteSettings(b *testing.B) map[string]string {
	return map[string]string{"KEYLINE_DATA_DIR": b.TempDir()}
}

// postgresSettings is a new, empty schema on the test server, with the
// secret key PostgreSQL mode requires.
func postgresSettings(b *testing.B) map[string]string {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		b.Fatal(err)
	}
	return map[string]string{
		"KEYLINE_DATABASE_URL": dbtest.Postgres(b),
		"KEYLINE_SECRET_KEY":   hex.EncodeToString(key),
	}
}

// migrated prepares one database of kind settings with `keyline migrate`
// and gives it to every start.
func migrated(b *testing.B, bin string, settings databaseSettings) databaseSettings {
	env := settings(b)
	cmd := exec.Command(bin, "migrate")
	cmd.Env = processEnv(env)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("keyline migrate: %v\n%s", err, out)
	}
	return func(*testing.B) map[string]string { return env }
}

func benchStartup(b *testing.B, bin string, settings databaseSettings) {
	var took []time.Duration
	for b.Loop() {
		// Only the start itself is timed: not making the database, not
		// stopping the server.
		b.StopTimer()
		env := settings(b)
		b.StartTimer()
		k, d := startServing(b, bin, env)
		b.StopTimer()
		took = append(took, d)
		k.stop(b)
		b.StartTimer()
	}
	slices.Sort(took)
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(sum/time.Duration(len(took))), "ms/startup")
	b.ReportMetric(ms(took[len(took)/2]), "ms-p50/startup")
	b.ReportMetric(ms(took[len(took)-1]), "ms-max/startup")

	k, _ := startServing(b, bin, settings(b))
	k.warm(b)
	time.Sleep(idleSettle)
	mem := k.memory(b)
	k.stop(b)
	b.ReportMetric(mem["VmRSS"], "MB-rss-idle")
	b.ReportMetric(mem["RssAnon"], "MB-anon-idle")
	b.ReportMetric(mem["VmHWM"], "MB-hwm-idle")
}

// servingProcess is one `keyline serve` of the benchmark.
type servingProcess struct {
	cmd    *exec.Cmd
	base   string
	logs   *syncBuffer
	exited chan struct{}
}

// processEnv is the server's whole environment: the settings, plus the Go
// runtime's own variables when the benchmark has them, so GOGC or
// GOMEMLIMIT can be tried on the server without editing this file.
func processEnv(settings map[string]string) []string {
	var env []string
	for name, v := range settings {
		env = append(env, name+"="+v)
	}
	for _, name := range []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// startServing starts `keyline serve` with settings on a free port of
// 127.0.0.1 and returns once /readyz answers 200, with the time that took
// from just before the process was started.
func startServing(b *testing.B, bin string, settings map[string]string) (*servingProcess, time.Duration) {
	b.Helper()
	env := map[string]string{"KEYLINE_ADDR": freeAddr(b)}
	for name, v := range settings {
		env[name] = v
	}
	k := &servingProcess{
		cmd:    exec.Command(bin, "serve"),
		base:   "http://" + env["KEYLINE_ADDR"],
		logs:   &syncBuffer{},
		exited: make(chan struct{}),
	}
	k.cmd.Env = processEnv(env)
	k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()

	start := time.Now()
	if err := k.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		_ = k.cmd.Wait() // the exit code is read from ProcessState
		close(k.exited)
	}()
	b.Cleanup(func() {
		_ = k.cmd.Process.Kill() // fails once it has exited, which is fine
		<-k.exited
	})
	for {
		resp, err := client.Get(k.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return k, time.Since(start)
			}
		}
		select {
		case <-k.exited:
			b.Fatalf("keyline exited before it was ready: %v; logs:\n%s", k.cmd.ProcessState, k.logs.String())
		default:
		}
		if time.Since(start) > startupLimit {
			b.Fatalf("keyline not ready after %v: %v; logs:\n%s", startupLimit, err, k.logs.String())
		}
		time.Sleep(startupPoll)
	}
}

// warm sends what a freshly installed replica first answers: the two
// descriptors and the probes.
func (k *servingProcess) warm(b *testing.B) {
	b.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	for range warmRounds {
		for _, path := range []string{"/jira/atlassian-connect.json", "/confluence/atlassian-connect.json", "/healthz", "/readyz"} {
			resp, err := client.Get(k.base + path)
			if err != nil {
				b.Fatalf("GET %s: %v", path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("GET %s = %d; logs:\n%s", path, resp.StatusCode, k.logs.String())
			}
		}
	}
}

// memoryFields are the lines of /proc/<pid>/status that memory reads.
var memoryFields = []string{"VmRSS", "RssAnon", "VmHWM"}

// memory reads memoryFields of the process, in MiB.
func (k *servingProcess) memory(b *testing.B) map[string]float64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", k.cmd.Process.Pid))
	if err != nil {
		b.Fatalf("resident memory needs /proc: %v", err)
	}
	defer f.Close()
	found := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "VmRSS:	   26316 kB"
		name, rest, ok := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(rest)
		if !ok || !slices.Contains(memoryFields, name) || len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			b.Fatalf("/proc status %s: %v", name, err)
		}
		found[name] = kb / 1024
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	if len(found) != len(memoryFields) {
		b.Fatalf("/proc/%d/status lacks some of %v in kB: %v", k.cmd.Process.Pid, memoryFields, found)
	}
	return found
}

// stop sends SIGTERM and waits for a clean exit.
func (k *servingProcess) stop(b *testing.B) {
	b.Helper()
	if err := k.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	select {
	case <-k.exited:
	case <-time.After(startupLimit):
		b.Fatalf("keyline still running %v after SIGTERM; logs:\n%s", startupLimit, k.logs.String())
	}
	if code := k.cmd.ProcessState.ExitCode(); code != 0 {
		b.Errorf("keyline exited with %d after SIGTERM; logs:\n%s", code, k.logs.String())
	}
}
