//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyline/keyline/app/ingest"
	"github.com/keyline/keyline/app/loadtest"
	"github.com/keyline/keyline/app/store"
)

const (
	// shutdownGrace is KEYLINE_SHUTDOWN_GRACE in these tests.
	shutdownGrace = 3 * time.Second
	// shutdownMargin is how much longer than the grace period the process
	// may take to exit after SIGTERM: a bound on a hang, not a measurement.
	shutdownMargin = 3 * time.Second
)

// TestSIGTERMUnderLoad builds the real binary, starts it on SQLite, and
// sends it SIGTERM while webhook deliveries are in flight: their handlers
// are reading the request bodies, which the test has not sent yet.
func TestSIGTERMUnderLoad(t *testing.T) {
	bin := buildKeyline(t)

	// In-flight requests finish with their normal answer after SIGTERM,
	// new connections are refused meanwhile, and the process exits 0 once
	// the last one is done.
	t.Run("in-flight requests finish", func(t *testing.T) {
		k := startBinary(t, bin)
		inflight := make([]*slowDelivery, 3)
		for i := range inflight {
			inflight[i] = k.beginDelivery(t)
		}
		signalled := k.terminate(t)
		k.waitLog(t, "shutting down")
		refused(t, k.addr)
		select {
		case <-k.exited:
			t.Fatalf("exited with requests in flight; logs:\n%s", k.logs.String())
		default:
		}
		for i, d := range inflight {
			status, outcome, err := d.finish()
			if err != nil || status != http.StatusOK || outcome != "accepted" {
				t.Errorf("in-flight delivery %d: %d %q, %v; want 200 accepted", i, status, outcome, err)
			}
		}
		code := k.waitExit(t, signalled)
		if code != 0 {
			t.Errorf("exit code %d, want 0; logs:\n%s", code, k.logs.String())
		}
		logged := k.deliveries(t)
		for i, d := range inflight {
			if logged[d.id] != store.DeliveryAccepted {
				t.Errorf("in-flight delivery %d (%s) not stored: log %v", i, d.id, logged)
			}
		}
	})

	// A request that outlives the grace period does not keep the process:
	// it exits by the end of the grace period, with status 1 and a line
	// saying the drain was cut short, and the request gets no answer.
	t.Run("a request outliving the grace period", func(t *testing.T) {
		k := startBinary(t, bin)
		stuck := k.beginDelivery(t)
		signalled := k.terminate(t)
		code := k.waitExit(t, signalled)
		if code != 1 || !strings.Contains(k.logs.String(), "were cut off") {
			t.Errorf("exit code %d, want 1 with a line on the cut drain; logs:\n%s", code, k.logs.String())
		}
		if status, _, err := stuck.finish(); err == nil {
			t.Errorf("the request cut off at exit was answered %d", status)
		}
		if logged := k.deliveries(t); len(logged) != 0 {
			t.Errorf("the cut-off delivery was stored: %v", logged)
		}
	})
}

// buildKeyline builds the command into a temporary directory.
func buildKeyline(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "keyline")
	cmd := exec.Command(goBin, "build", "-o", out, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// keylineProcess is the built binary serving on SQLite, with a Jira site
// and one GitHub source.
type keylineProcess struct {
	cmd    *exec.Cmd
	env    map[string]string
	addr   string
	source loadtest.Source
	repo   *loadtest.Repo
	logs   *syncBuffer
	exited chan struct{}
	code   int
}

func startBinary(t *testing.T, bin string) *keylineProcess {
	t.Helper()
	env := sourcesEnv(t)
	env["KEYLINE_ADDR"] = freeAddr(t)
	env["KEYLINE_SHUTDOWN_GRACE"] = shutdownGrace.String()
	env["KEYLINE_LOG_LEVEL"] = "info"
	k := &keylineProcess{env: env, addr: env["KEYLINE_ADDR"], logs: &syncBuffer{}, exited: make(chan struct{}),
		repo: loadtest.NewRepo(1, "acme/web", "OPS")}

	st := testStore(t, env)
	ten, err := st.TenantByClientKey(context.Background(), "dev.keyline.jira", "acme")
	if err != nil {
		t.Fatal(err)
	}
	_, token, secret, err := st.CreateSource(context.Background(), ten, ingest.KindGitHub, "web")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	k.source = loadtest.Source{Token: token, Secret: secret}

	k.cmd = exec.Command(bin, "serve")
	for name, v := range env {
		k.cmd.Env = append(k.cmd.Env, name+"="+v)
	}
	k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := k.cmd.Wait()
		k.code = k.cmd.ProcessState.ExitCode()
		if k.code < 0 {
			k.code = -1 // killed by a signal
			t.Logf("keyline: %v", err)
		}
		close(k.exited)
	}()
	t.Cleanup(func() {
		k.cmd.Process.Kill()
		<-k.exited
	})

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + k.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return k
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("keyline never became ready: %v; logs:\n%s", err, k.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// terminate sends SIGTERM and returns when it did.
func (k *keylineProcess) terminate(t *testing.T) time.Time {
	t.Helper()
	at := time.Now()
	if err := k.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return at
}

// waitExit waits for the process to exit, at most the grace period and the
// margin after SIGTERM, and returns its exit code.
func (k *keylineProcess) waitExit(t *testing.T, signalled time.Time) int {
	t.Helper()
	select {
	case <-k.exited:
	case <-time.After(time.Until(signalled.Add(shutdownGrace + shutdownMargin))):
		t.Fatalf("still running %v after SIGTERM with a %v grace period; logs:\n%s",
			time.Since(signalled).Round(time.Millisecond), shutdownGrace, k.logs.String())
	}
	return k.code
}

// waitLog waits until the process has logged s.
func (k *keylineProcess) waitLog(t *testing.T, s string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(k.logs.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("keyline never logged %q; logs:\n%s", s, k.logs.String())
		}
	}
}

// deliveries reads the source's delivery log once the process is gone.
func (k *keylineProcess) deliveries(t *testing.T) map[string]store.DeliveryOutcome {
	t.Helper()
	ctx := context.Background()
	st := testStore(t, k.env)
	defer st.Close()
	ten, err := st.TenantByClientKey(ctx, "dev.keyline.jira", "acme")
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := st.ListSources(ctx, ten)
	if err != nil || len(srcs) != 1 {
		t.Fatalf("sources: %v, %v", srcs, err)
	}
	lines, err := st.ListDeliveries(ctx, ten, srcs[0].ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.DeliveryOutcome{}
	for _, l := range lines {
		out[l.DeliveryID] = l.Outcome
	}
	return out
}

// slowDelivery is a signed push whose headers are sent and whose body is
// not: the server's handler is blocked reading it.
type slowDelivery struct {
	id   string
	conn net.Conn
	br   *bufio.Reader
	body []byte
}

// beginDelivery sends a push's headers with Expect: 100-continue and waits
// for the 100 Continue, which the server sends when the handler first reads
// the body: from then on the request is in flight, deterministically.
func (k *keylineProcess) beginDelivery(t *testing.T) *slowDelivery {
	t.Helper()
	body, id := k.repo.Push(1, time.Now())
	conn, err := net.DialTimeout("tcp", k.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("POST /ingest/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: %s\r\n%s: %s\r\n\r\n",
		k.source.Token, k.addr, len(body), id, ingest.HeaderGitHubSignature, ingest.SignatureSHA256([]byte(k.source.Secret), body))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	d := &slowDelivery{id: id, conn: conn, br: bufio.NewReader(conn), body: body}
	resp, err := http.ReadResponse(d.br, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue once the handler reads the body: %v, %v; logs:\n%s", resp, err, k.logs.String())
	}
	return d
}

// finish sends the body and reads the answer.
func (d *slowDelivery) finish() (status int, outcome string, err error) {
	if _, err := d.conn.Write(d.body); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(d.br, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var ans struct {
		Outcome string `json:"outcome"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return resp.StatusCode, "", err
	}
	return resp.StatusCode, ans.Outcome, nil
}

// refused waits until a new connection to addr is refused: the listener
// closes as shutdown begins.
func refused(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(shutdownGrace); ; time.Sleep(10 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if err == nil {
			conn.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("new connections still accepted during shutdown (last: %v)", err)
		}
	}
}
