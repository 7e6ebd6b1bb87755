//go:build unix

package dbtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StopMode is how PrivateServer.Stop shuts PostgreSQL down (pg_ctl -m).
type StopMode string

const (
	// StopFast ends every session with an error, checkpoints and exits: an
	// administrator's restart.
	StopFast StopMode = "fast"
	// StopImmediate kills the server without a checkpoint, as a crash
	// would; the next start runs crash recovery.
	StopImmediate StopMode = "immediate"
)

// pgCtlTimeout bounds one pg_ctl start or stop, crash recovery included.
const pgCtlTimeout = 60 * time.Second

// maxSocketPath is below the 108 bytes of sun_path, with room for the
// socket's own name (/.s.PGSQL.<port>).
const maxSocketPath = 80

// PrivateServer is a PostgreSQL server that belongs to one test, so the test
// may stop and start it; the shared server that other tests use must never
// be stopped. It listens on 127.0.0.1 only, keeps everything in the test's
// temporary directory, and is stopped after the test.
type PrivateServer struct {
	t    testing.TB
	bin  string // directory of initdb and pg_ctl
	dir  string // owned by the server's OS user: data, socket, logs
	data string
	port int
	// cred runs the server as the postgres OS user when the test runs as
	// root, which PostgreSQL refuses; nil otherwise.
	cred *syscall.Credential

	mu      sync.Mutex
	running bool
}

// PrivatePostgres initialises and starts a new PostgreSQL server for t on a
// free port, with fsync off (its data lives only as long as the test). The
// binaries are found through pg_config --bindir or under
// /usr/lib/postgresql/*/bin. Without them the test is skipped with the
// reason, except when CI=true, where that is a failure.
func PrivatePostgres(t testing.TB) *PrivateServer {
	t.Helper()
	bin, err := postgresBinDir()
	if err != nil {
		unavailable(t, err)
	}
	p := &PrivateServer{t: t, bin: bin, dir: t.TempDir()}
	p.data = filepath.Join(p.dir, "data")
	if os.Geteuid() == 0 {
		if p.cred, err = postgresUser(); err != nil {
			unavailable(t, err)
		}
		// t.TempDir's parent is private to the test's user; the server's
		// user must be able to reach its own directory below it.
		if err := os.Chmod(filepath.Dir(p.dir), 0o711); err != nil {
			t.Fatalf("dbtest: private postgres: %v", err)
		}
		if err := os.Chown(p.dir, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			t.Fatalf("dbtest: private postgres: %v", err)
		}
	}
	if err := os.Chmod(p.dir, 0o700); err != nil {
		t.Fatalf("dbtest: private postgres: %v", err)
	}
	if p.port, err = freePort(); err != nil {
		t.Fatalf("dbtest: private postgres: %v", err)
	}
	if out, err := p.run(filepath.Join(p.bin, "initdb"), "-D", p.data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("dbtest: private postgres: initdb: %v\n%s", err, out)
	}
	socketDir := p.dir
	if len(socketDir) > maxSocketPath {
		socketDir = "" // TCP only; pg_ctl waits on postmaster.pid, not on the socket
	}
	// fsync and full-page writes guard against the machine losing power;
	// a stopped or killed server loses nothing without them, since the
	// operating system still holds what was written. synchronous_commit
	// stays on: without it an immediate stop loses acknowledged commits,
	// which is what the tests using this server look for.
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 50
shared_buffers = 16MB
fsync = off
full_page_writes = off
`, p.port, socketDir)
	if err := appendFile(filepath.Join(p.data, "postgresql.conf"), conf); err != nil {
		t.Fatalf("dbtest: private postgres: %v", err)
	}
	// Registered after t.TempDir, so it runs before the directory goes.
	t.Cleanup(func() {
		if err := p.Stop(StopImmediate); err != nil {
			t.Errorf("dbtest: private postgres: %v", err)
		}
	})
	if err := p.Start(); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return p
}

// URL is the server's postgres database, as its superuser.
func (p *PrivateServer) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// Start starts the server and waits until it accepts connections. Starting
// a running server does nothing.
func (p *PrivateServer) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return nil
	}
	out, err := p.run(filepath.Join(p.bin, "pg_ctl"), "start", "-D", p.data, "-w", "-t", seconds(pgCtlTimeout),
		"-l", filepath.Join(p.dir, "postgres.log"))
	if err != nil {
		return fmt.Errorf("private postgres: start: %w\n%s\n%s", err, out, p.serverLog())
	}
	p.running = true
	return nil
}

// Stop shuts the server down in mode and waits until it has exited.
// Stopping a stopped server does nothing.
func (p *PrivateServer) Stop(mode StopMode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return nil
	}
	out, err := p.run(filepath.Join(p.bin, "pg_ctl"), "stop", "-D", p.data, "-m", string(mode), "-w", "-t", seconds(pgCtlTimeout))
	if err != nil {
		return fmt.Errorf("private postgres: stop -m %s: %w\n%s", mode, err, out)
	}
	p.running = false
	return nil
}

// run runs a PostgreSQL program as the server's user. Its output goes to a
// file rather than a pipe: pg_ctl leaves the server running in the
// background, and a child holding the pipe would keep the read from ending.
func (p *PrivateServer) run(name string, args ...string) (string, error) {
	f, err := os.CreateTemp(p.dir, "pg-out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	runErr := cmd.Run()
	out, _ := os.ReadFile(f.Name())
	return strings.TrimSpace(string(out)), runErr
}

// serverLog is the server's own log, for a start that failed.
func (p *PrivateServer) serverLog() string {
	b, err := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
	if err != nil {
		return ""
	}
	return string(b)
}

// postgresBinDir finds the directory holding initdb and pg_ctl.
func postgresBinDir() (string, error) {
	has := func(dir string) bool {
		for _, prog := range []string{"initdb", "pg_ctl"} {
			if _, err := os.Stat(filepath.Join(dir, prog)); err != nil {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	// Debian's pg_config may belong to libpq-dev and name /usr/bin, which
	// holds no server programs; the servers live in versioned directories.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) }) // newest first
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	if path, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(path)) {
		return filepath.Dir(path), nil
	}
	return "", errors.New("no PostgreSQL server programs (initdb, pg_ctl): not in pg_config --bindir, /usr/lib/postgresql/*/bin or PATH")
}

// versionOf reads the major version of /usr/lib/postgresql/<version>/bin.
func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// postgresUser is the OS user to run the server as when the test is root.
func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses root: no postgres OS user to run it as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres OS user: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres OS user: gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func appendFile(name, s string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func seconds(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }

// unavailable skips t, or fails it under CI=true, when no private server can
// be run here.
func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("dbtest: cannot run a private PostgreSQL server: %v", err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
