//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/keyline/keyline/app/dbtest"
)

// The tests in this file stand in for `docker build`, `docker run` and
// `kubectl apply`, which this repository's CI cannot run: they read the
// Dockerfile and deploy/kubernetes, build the binary with the Dockerfile's
// own build command, and run it as the image and the manifests would.
// deploy/kubernetes/manifests_test.go checks the manifests themselves.

const (
	// repoRoot is the build context, relative to this package.
	repoRoot = "../.."
	// imageRunUID is the distroless :nonroot user the image runs as.
	imageRunUID = 65532
	// imageVersion is the VERSION build argument of the emulated build.
	imageVersion = "1.2.3-container-test"
	// imageCommandBound bounds one short command (migrate, purge,
	// healthcheck) against a hang; it is not a measurement.
	imageCommandBound = 2 * time.Minute
)

// directivePattern matches a Dockerfile parser directive.
var directivePattern = regexp.MustCompile(`^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*\S`)

// dockerInstruction is one Dockerfile instruction, its continuation lines
// joined.
type dockerInstruction struct {
	line  int      // where it starts
	cmd   string   // the keyword, upper case
	flags []string // leading --flags: --from=build, --mount=…, --interval=…
	rest  string   // the arguments after the flags
}

// dockerStage is one FROM and the instructions up to the next.
type dockerStage struct {
	from, name string
	instrs     []dockerInstruction
}

// parseDockerfile reads a Dockerfile well enough for the checks here:
// comments, line continuations with the default escape character, flags,
// and stages. Parser directives other than syntax are refused, since an
// escape directive would change how lines join.
func parseDockerfile(src string) ([]dockerStage, error) {
	var stages []dockerStage
	var cur strings.Builder
	start := 0
	directives := true
	flush := func() error {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return nil
		}
		kw, rest, _ := strings.Cut(text, " ")
		in := dockerInstruction{line: start, cmd: strings.ToUpper(kw)}
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			var flag string
			flag, rest, _ = strings.Cut(rest, " ")
			in.flags = append(in.flags, flag)
			rest = strings.TrimSpace(rest)
		}
		in.rest = rest
		if in.cmd == "FROM" {
			f := strings.Fields(rest)
			st := dockerStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			} else if len(f) != 1 {
				return fmt.Errorf("line %d: FROM %s", start, rest)
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				return nil // a global build argument
			}
			return fmt.Errorf("line %d: %s before FROM", start, in.cmd)
		}
		st := &stages[len(stages)-1]
		st.instrs = append(st.instrs, in)
		return nil
	}
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if directives {
			// Directives are "# name=value" lines before anything else.
			if m := directivePattern.FindStringSubmatch(trimmed); m != nil {
				if !strings.EqualFold(m[1], "syntax") {
					return nil, fmt.Errorf("line %d: parser directive %q is not supported here", i+1, trimmed)
				}
				continue
			}
			directives = false
		}
		// Comments and blank lines are skipped, also inside a continued
		// instruction.
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(strings.TrimRight(line, " \t"), `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if cur.Len() > 0 {
		return nil, errors.New("the last instruction ends with a line continuation")
	}
	return stages, nil
}

// find returns the stage's instructions with keyword cmd.
func (s dockerStage) find(cmd string) []dockerInstruction {
	var out []dockerInstruction
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// execForm decodes a JSON (exec form) argument list; the shell form would
// need a shell, which the final image does not have.
func execForm(rest string) ([]string, error) {
	var args []string
	if err := json.Unmarshal([]byte(rest), &args); err != nil || len(args) == 0 {
		return nil, fmt.Errorf("%q is not the exec (JSON) form", rest)
	}
	return args, nil
}

// envInstruction parses ENV key=value pairs (values without spaces).
func envInstruction(rest string) (map[string]string, error) {
	env := map[string]string{}
	for _, kv := range strings.Fields(rest) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("ENV %q: use key=value", rest)
		}
		env[k] = strings.Trim(v, `"`)
	}
	return env, nil
}

// shellWords splits a RUN command the way sh would for the simple commands
// used here: words, single and double quotes, and ${NAME} or $NAME taken
// from args. Anything else a shell does (;, &&, pipes) is refused.
func shellWords(s string, args map[string]string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'' && r != '\'':
			w.WriteRune(r)
		case r == '\'' || r == '"':
			inWord = true
			switch quote {
			case 0:
				quote = r
			case r:
				quote = 0
			default:
				w.WriteRune(r)
			}
		case r == '$':
			name := ""
			if i+1 < len(rs) && rs[i+1] == '{' {
				end := slices.Index(rs[i:], '}')
				if end < 0 {
					return nil, fmt.Errorf("unterminated ${ in %q", s)
				}
				name = string(rs[i+2 : i+end])
				i += end
			} else {
				j := i + 1
				for j < len(rs) && (rs[j] == '_' || rs[j] >= 'A' && rs[j] <= 'Z' || rs[j] >= 'a' && rs[j] <= 'z' || rs[j] >= '0' && rs[j] <= '9') {
					j++
				}
				name = string(rs[i+1 : j])
				i = j - 1
			}
			v, ok := args[name]
			if !ok {
				return nil, fmt.Errorf("$%s is not a build argument", name)
			}
			w.WriteString(v)
			inWord = true
		case quote == 0 && (r == ' ' || r == '\t'):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case quote == 0 && strings.ContainsRune(";&|<>`()", r):
			return nil, fmt.Errorf("%q: only a simple command is supported", s)
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// imageBuild is the Dockerfile's build command, ready to run here.
type imageBuild struct {
	env    []string // NAME=value assignments before `go`
	goArgs []string // the arguments of `go`, with -o's value
	output string   // the -o path inside the build stage
}

// dockerfile is the parsed Dockerfile with its build and final stages.
type dockerfile struct {
	stages       []dockerStage
	build, final dockerStage
}

func readDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages, err := parseDockerfile(string(src))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a final one", len(stages))
	}
	df := &dockerfile{stages: stages, final: stages[len(stages)-1]}
	// The build stage is the one the final stage copies the binary from.
	for _, c := range df.final.find("COPY") {
		for _, f := range c.flags {
			if from, ok := strings.CutPrefix(f, "--from="); ok {
				for _, s := range stages {
					if s.name == from {
						df.build = s
					}
				}
			}
		}
	}
	if df.build.name == "" {
		t.Fatal("Dockerfile: the final stage copies from no named stage")
	}
	return df
}

// buildCommand finds the build stage's `go build` and expands its build
// arguments (defaults, overridden by args as `--build-arg` would).
func (df *dockerfile) buildCommand(t *testing.T, buildArgs map[string]string) imageBuild {
	t.Helper()
	vars := map[string]string{}
	var b imageBuild
	for _, in := range df.build.instrs {
		switch in.cmd {
		case "ARG":
			name, def, _ := strings.Cut(in.rest, "=")
			vars[name] = def
			if v, ok := buildArgs[name]; ok {
				vars[name] = v
			}
		case "RUN":
			words, err := shellWords(in.rest, vars)
			if err != nil {
				continue // not the build command
			}
			i := 0
			for i < len(words) && strings.Contains(words[i], "=") {
				i++
			}
			if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
				continue
			}
			if b.goArgs != nil {
				t.Fatalf("Dockerfile line %d: a second go build", in.line)
			}
			b.env, b.goArgs = words[:i], words[i+1:]
			if o := slices.Index(b.goArgs, "-o"); o >= 0 && o+1 < len(b.goArgs) {
				b.output = b.goArgs[o+1]
			}
		}
	}
	if b.goArgs == nil {
		t.Fatalf("Dockerfile: no `go build` RUN in stage %q", df.build.name)
	}
	if b.output == "" {
		t.Fatalf("Dockerfile: go build %v has no -o", b.goArgs)
	}
	return b
}

// finalEnv is the final stage's ENV.
func (df *dockerfile) finalEnv(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, in := range df.final.find("ENV") {
		e, err := envInstruction(in.rest)
		if err != nil {
			t.Fatalf("Dockerfile line %d: %v", in.line, err)
		}
		for k, v := range e {
			env[k] = v
		}
	}
	return env
}

// one returns the final stage's single instruction cmd, or stops the test.
func (df *dockerfile) one(t *testing.T, cmd string) dockerInstruction {
	t.Helper()
	ins := df.final.find(cmd)
	if len(ins) != 1 {
		t.Fatalf("Dockerfile: the final stage has %d %s instructions, want 1", len(ins), cmd)
	}
	return ins[0]
}

// installedBinary is where the final stage copies the build output to.
func (df *dockerfile) installedBinary(t *testing.T, output string) string {
	t.Helper()
	for _, c := range df.final.find("COPY") {
		f := strings.Fields(c.rest)
		if slices.Contains(c.flags, "--from="+df.build.name) && len(f) == 2 && f[0] == output {
			return f[1]
		}
	}
	t.Fatalf("Dockerfile: the final stage does not copy %s from %q", output, df.build.name)
	return ""
}

// TestDockerfile checks the Dockerfile's structure: a static build of
// ./cmd/keyline on the Go version of go.mod, and a final image without a
// shell that runs `keyline serve` as a non-root user, with a health check
// the binary itself answers.
func TestDockerfile(t *testing.T) {
	df := readDockerfile(t)
	b := df.buildCommand(t, nil)
	bin := df.installedBinary(t, b.output)
	env := df.finalEnv(t)

	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := ""
	for line := range strings.Lines(string(gomod)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			goVersion = v
		}
	}

	tests := []struct {
		name string
		ok   bool
		why  string
	}{
		{"build stage on go.mod's Go", strings.HasPrefix(df.build.from, "golang:") &&
			strings.HasPrefix(goVersion+".", strings.TrimPrefix(df.build.from, "golang:")+"."),
			fmt.Sprintf("build stage FROM %s, go.mod says go %s", df.build.from, goVersion)},
		{"static build", slices.Contains(b.env, "CGO_ENABLED=0"), fmt.Sprintf("go build env %v lacks CGO_ENABLED=0", b.env)},
		{"builds cmd/keyline", b.goArgs[len(b.goArgs)-1] == "./cmd/keyline", fmt.Sprintf("go %v does not build ./cmd/keyline", b.goArgs)},
		{"reproducible paths", slices.Contains(b.goArgs, "-trimpath"), fmt.Sprintf("go %v lacks -trimpath", b.goArgs)},
		{"stamps the version", slices.ContainsFunc(b.goArgs, func(a string) bool { return strings.Contains(a, "-X main.version=") }),
			fmt.Sprintf("go %v does not set main.version", b.goArgs)},
		{"minimal final image", df.final.from == "scratch" || strings.HasPrefix(df.final.from, "gcr.io/distroless/static"),
			fmt.Sprintf("final stage FROM %s, want distroless/static or scratch", df.final.from)},
		// Distroless static has no shell: a RUN would fail the build.
		{"no RUN in the final image", len(df.final.find("RUN")) == 0, "the final stage has RUN instructions, but no shell"},
	}
	ops, err := os.ReadFile(filepath.Join(repoRoot, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	tests = append(tests, struct {
		name string
		ok   bool
		why  string
	}{"docs name the base image", bytes.Contains(ops, []byte("`"+df.final.from+"`")),
		fmt.Sprintf("docs/operations.md does not name the final image `%s`", df.final.from)})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Error(tt.why)
			}
		})
	}

	t.Run("non-root user", func(t *testing.T) {
		user := df.one(t, "USER").rest
		uid, gid, _ := strings.Cut(user, ":")
		for _, id := range []string{uid, gid} {
			// Numeric, so Kubernetes' runAsNonRoot can check it without
			// reading /etc/passwd.
			if n, err := strconv.Atoi(id); err != nil || n == 0 {
				t.Errorf("USER %q: want a numeric non-root uid:gid", user)
				break
			}
		}
	})
	t.Run("entrypoint and command", func(t *testing.T) {
		ep, err := execForm(df.one(t, "ENTRYPOINT").rest)
		if err != nil || !slices.Equal(ep, []string{bin}) {
			t.Errorf("ENTRYPOINT %v (%v), want [%q]", ep, err, bin)
		}
		cmd, err := execForm(df.one(t, "CMD").rest)
		if err != nil || !slices.Equal(cmd, []string{"serve"}) {
			t.Errorf("CMD %v (%v), want [\"serve\"]", cmd, err)
		}
	})
	t.Run("health check", func(t *testing.T) {
		hc := df.one(t, "HEALTHCHECK")
		args, ok := strings.CutPrefix(hc.rest, "CMD ")
		if !ok {
			t.Fatalf("HEALTHCHECK %s: want CMD", hc.rest)
		}
		argv, err := execForm(strings.TrimSpace(args))
		if err != nil || !slices.Equal(argv, []string{bin, "healthcheck"}) {
			t.Errorf("HEALTHCHECK CMD %v (%v), want [%q \"healthcheck\"]: there is no shell or curl", argv, err, bin)
		}
	})
	t.Run("listen address and data dir", func(t *testing.T) {
		_, port, err := net.SplitHostPort(env["KEYLINE_ADDR"])
		if err != nil {
			t.Fatalf("ENV KEYLINE_ADDR %q: %v", env["KEYLINE_ADDR"], err)
		}
		if got := df.one(t, "EXPOSE").rest; got != port {
			t.Errorf("EXPOSE %s, but KEYLINE_ADDR listens on %s", got, port)
		}
		dataDir := env["KEYLINE_DATA_DIR"]
		if got := df.one(t, "VOLUME").rest; got != fmt.Sprintf("[%q]", dataDir) {
			t.Errorf("VOLUME %s, want KEYLINE_DATA_DIR [%q]", got, dataDir)
		}
		// The runtime user must own the data dir, and the image has no
		// shell to create it, so it is copied with its owner.
		user := df.one(t, "USER").rest
		if !slices.ContainsFunc(df.final.find("COPY"), func(c dockerInstruction) bool {
			return slices.Contains(c.flags, "--chown="+user) && strings.HasSuffix(c.rest, " "+dataDir)
		}) {
			t.Errorf("no COPY --chown=%s of the data dir %s", user, dataDir)
		}
	})
}

// TestDockerfileParser checks the parts of parseDockerfile and shellWords
// the checks above rely on.
func TestDockerfileParser(t *testing.T) {
	src := "# syntax=docker/dockerfile:1\n# a comment\nARG BASE=x\nFROM golang:1 AS build\n" +
		"RUN --mount=type=cache,target=/c \\\n    # inside\n    CGO_ENABLED=0 go build -ldflags \"-X main.v=${V}\" -o '/o k' .\n" +
		"FROM scratch\nCOPY --from=build /o /b\nCMD [\"serve\"]\n"
	stages, err := parseDockerfile(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != 2 || stages[0].name != "build" || stages[1].from != "scratch" {
		t.Fatalf("stages %+v", stages)
	}
	run := stages[0].instrs[0]
	if run.cmd != "RUN" || run.line != 5 || !slices.Equal(run.flags, []string{"--mount=type=cache,target=/c"}) {
		t.Errorf("RUN %+v", run)
	}
	words, err := shellWords(run.rest, map[string]string{"V": "1 2"})
	want := []string{"CGO_ENABLED=0", "go", "build", "-ldflags", "-X main.v=1 2", "-o", "/o k", "."}
	if err != nil || !slices.Equal(words, want) {
		t.Errorf("shellWords = %q, %v; want %q", words, err, want)
	}
	bad := []struct{ name, src string }{
		{"escape directive", "# escape=`\nFROM scratch\n"},
		{"dangling continuation", "FROM scratch\nCMD a \\\n"},
		{"instruction before FROM", "RUN x\nFROM scratch\n"},
	}
	for _, b := range bad {
		if _, err := parseDockerfile(b.src); err == nil {
			t.Errorf("%s: parsed without error", b.name)
		}
	}
	if _, err := shellWords("go build && rm -rf /", nil); err == nil {
		t.Error("shellWords accepted a compound command")
	}
	if _, err := shellWords("go build ${UNSET}", nil); err == nil {
		t.Error("shellWords accepted an unknown build argument")
	}
}

// buildImageBinary runs the Dockerfile's go build here, with its flags and
// environment, into a temporary directory, and returns the binary.
func buildImageBinary(t *testing.T, df *dockerfile, dir string) string {
	t.Helper()
	b := df.buildCommand(t, map[string]string{"VERSION": imageVersion})
	out := filepath.Join(dir, "keyline")
	args := slices.Clone(b.goArgs)
	args[slices.Index(args, "-o")+1] = out
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goBin, args...)
	// WORKDIR /src holds the whole build context (COPY . .).
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), b.env...)
	if runtime.GOOS != "linux" {
		t.Skipf("the image is linux; this is %s", runtime.GOOS)
	}
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v %v: %v\n%s", b.env, cmd.Args, err, msg)
	}
	return out
}

// checkStatic fails unless the ELF file at path needs no dynamic loader
// and no shared library: distroless/static has neither.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter (PT_INTERP): it is dynamically linked", path)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", path, libs)
	}
}

// imageSandbox is the file system a container of the image sees, emulated:
// a binary, a working directory the process cannot write (the image's
// root filesystem, read-only under the manifests), and the data dir owned
// by the image's user.
type imageSandbox struct {
	bin, workDir, dataDir string
	// cred runs the process as the image's user when the test is root;
	// otherwise the test's own user stands in for it.
	cred *syscall.Credential
}

func newImageSandbox(t *testing.T, df *dockerfile) *imageSandbox {
	t.Helper()
	root := t.TempDir()
	// Let the image's user reach the files below the test's temp dirs.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &imageSandbox{workDir: filepath.Join(root, "work"), dataDir: filepath.Join(root, "data")}
	if err := os.Mkdir(s.workDir, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		s.cred = &syscall.Credential{Uid: imageRunUID, Gid: imageRunUID}
		if err := os.Chown(s.dataDir, imageRunUID, imageRunUID); err != nil {
			t.Fatal(err)
		}
	}
	binDir := filepath.Join(root, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	s.bin = buildImageBinary(t, df, binDir)
	return s
}

// command prepares the binary with args and exactly env (a container has
// no other environment), in the read-only working directory.
func (s *imageSandbox) command(ctx context.Context, env map[string]string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Dir = s.workDir
	cmd.Env = []string{}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

// runToEnd runs a short command and returns its exit code and output.
func (s *imageSandbox) runToEnd(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	code, out, err := s.result(env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

// result is runToEnd for other goroutines than the test's: it returns
// what runToEnd stops the test for.
func (s *imageSandbox) result(env map[string]string, args ...string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), imageCommandBound)
	defer cancel()
	out, err := s.command(ctx, env, args...).CombinedOutput()
	if ctx.Err() != nil {
		return 0, "", fmt.Errorf("keyline %v did not finish within %s: %s", args, imageCommandBound, out)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out), nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("keyline %v: %w", args, err)
	}
	return 0, string(out), nil
}

// serving is a started `keyline serve`.
type serving struct {
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{}
}

// serve starts the server with args and waits until addr answers /readyz.
func (s *imageSandbox) serve(t *testing.T, env map[string]string, addr string, args ...string) *serving {
	t.Helper()
	sv := &serving{cmd: s.command(context.Background(), env, args...), logs: &syncBuffer{}, exited: make(chan struct{})}
	sv.cmd.Stdout, sv.cmd.Stderr = sv.logs, sv.logs
	if err := sv.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = sv.cmd.Wait()
		close(sv.exited)
	}()
	t.Cleanup(func() {
		_ = sv.cmd.Process.Kill()
		<-sv.exited
	})
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return sv
			}
		}
		select {
		case <-sv.exited:
			t.Fatalf("keyline %v exited: %s", args, sv.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("keyline %v never became ready: %v; logs:\n%s", args, err, sv.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, as docker stop and the kubelet do, and expects a
// clean exit.
func (sv *serving) stop(t *testing.T) {
	t.Helper()
	if err := sv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sv.exited:
	case <-time.After(imageCommandBound):
		t.Fatalf("keyline serve did not exit after SIGTERM; logs:\n%s", sv.logs.String())
	}
	if code := sv.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("keyline serve exited %d after SIGTERM; logs:\n%s", code, sv.logs.String())
	}
}

// httpStatus requests url and returns the status code.
func httpStatus(t *testing.T, url string) int {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkUnwritten fails if the process wrote into the working directory,
// which stands for the read-only root filesystem. Root ignores the
// directory's mode, so the listing is what shows it.
func (s *imageSandbox) checkUnwritten(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(s.workDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		t.Errorf("keyline wrote %s into its working directory (a read-only root filesystem)", entries[0].Name())
	}
}

// TestImageBinary builds the binary exactly as the Dockerfile does and
// checks what the image needs from it.
func TestImageBinary(t *testing.T) {
	df := readDockerfile(t)
	bin := buildImageBinary(t, df, t.TempDir())
	checkStatic(t, bin)
	out, err := exec.Command(bin, "version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "keyline "+imageVersion {
		t.Errorf("keyline version = %q, %v; want the VERSION build argument %q", out, err, imageVersion)
	}
}

// TestImageRun emulates `docker run` of the image on embedded SQLite: the
// image's environment, user and data volume, `keyline migrate` as an init
// step, then the default command, the HEALTHCHECK and a stop.
func TestImageRun(t *testing.T) {
	df := readDockerfile(t)
	s := newImageSandbox(t, df)
	env := df.finalEnv(t)
	if env["KEYLINE_DATA_DIR"] == "" {
		t.Fatal("the image sets no KEYLINE_DATA_DIR")
	}
	// The volume and listener stand in for /data and :8080; the base URL
	// is what the Dockerfile's docker run example passes.
	env["KEYLINE_DATA_DIR"] = s.dataDir
	addr := freeAddr(t)
	env["KEYLINE_ADDR"] = addr
	env["KEYLINE_BASE_URL"] = "https://keyline.example.com"

	if code, out := s.runToEnd(t, env, "migrate"); code != 0 || !strings.Contains(out, "migrations applied (sqlite)") {
		t.Fatalf("keyline migrate: exit %d: %s", code, out)
	}
	cmd, err := execForm(df.one(t, "CMD").rest)
	if err != nil {
		t.Fatal(err)
	}
	sv := s.serve(t, env, addr, cmd...)
	hc, _ := strings.CutPrefix(df.one(t, "HEALTHCHECK").rest, "CMD ")
	argv, err := execForm(strings.TrimSpace(hc))
	if err != nil {
		t.Fatal(err)
	}
	if code, out := s.runToEnd(t, env, argv[1:]...); code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("HEALTHCHECK %v: exit %d: %s", argv, code, out)
	}
	sv.stop(t)
	for _, f := range []string{"keyline.db", "secret.key"} {
		if _, err := os.Stat(filepath.Join(s.dataDir, f)); err != nil {
			t.Errorf("the data volume lacks %s: %v", f, err)
		}
	}
	s.checkUnwritten(t)
	// With the server gone the health check must fail, or it checks
	// nothing.
	if code, _ := s.runToEnd(t, env, argv[1:]...); code == 0 {
		t.Error("HEALTHCHECK passed with no server")
	}
}

// readManifest decodes a deploy/kubernetes file into obj. The manifests'
// own test decodes them strictly; here only their values matter.
func readManifest(t *testing.T, name string, obj any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "kubernetes", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, obj); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestKubernetesPods emulates the manifests on PostgreSQL: the settings of
// the ConfigMap and Secret, three replicas' `migrate` init containers at
// once, the serving container's probes and metrics port, the purge
// CronJob's command, then termination, all without a writable working
// directory or data dir.
func TestKubernetesPods(t *testing.T) {
	df := readDockerfile(t)
	var cm corev1.ConfigMap
	var sec corev1.Secret
	var dep appsv1.Deployment
	var purge batchv1.CronJob
	readManifest(t, "configmap.yaml", &cm)
	readManifest(t, "secret.example.yaml", &sec)
	readManifest(t, "deployment.yaml", &dep)
	readManifest(t, "purge-cronjob.yaml", &purge)

	env := map[string]string{}
	for k, v := range cm.Data {
		env[k] = v
	}
	for k, v := range sec.StringData {
		env[k] = v
	}
	if env["KEYLINE_DATABASE_URL"] == "" || env["KEYLINE_SECRET_KEY"] == "" {
		t.Fatal("the example Secret lacks KEYLINE_DATABASE_URL or KEYLINE_SECRET_KEY")
	}
	// What the README has the operator create, and loopback listeners in
	// place of the pod's own network namespace.
	env["KEYLINE_DATABASE_URL"] = dbtest.Postgres(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env["KEYLINE_SECRET_KEY"] = hex.EncodeToString(key)
	if env["KEYLINE_ADDR"] == "" || env["KEYLINE_METRICS_ADDR"] == "" {
		t.Fatal("the ConfigMap does not set KEYLINE_ADDR and KEYLINE_METRICS_ADDR, which the pods' ports and scrape annotations name")
	}
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	env["KEYLINE_ADDR"], env["KEYLINE_METRICS_ADDR"] = addr, metricsAddr

	s := newImageSandbox(t, df)
	// The image's ENV is there too, but KEYLINE_DATA_DIR points at the
	// read-only working directory: nothing may be written in PostgreSQL
	// mode, and the manifests mount no volume there.
	for k, v := range df.finalEnv(t) {
		if _, set := env[k]; !set {
			env[k] = v
		}
	}
	env["KEYLINE_DATA_DIR"] = filepath.Join(s.workDir, "data")

	pod := dep.Spec.Template.Spec
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("want one init container and one container, got %d and %d", len(pod.InitContainers), len(pod.Containers))
	}
	replicas := 1
	if dep.Spec.Replicas != nil {
		replicas = int(*dep.Spec.Replicas)
	}
	// Pods of a rollout start together; goose's lock makes them queue.
	var wg sync.WaitGroup
	codes, outs, errs := make([]int, replicas), make([]string, replicas), make([]error, replicas)
	for i := range replicas {
		wg.Go(func() { codes[i], outs[i], errs[i] = s.result(env, pod.InitContainers[0].Args...) })
	}
	wg.Wait()
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("init container %d: %v", i, errs[i])
		}
		if codes[i] != 0 || !strings.Contains(outs[i], "migrations applied (postgres)") {
			t.Fatalf("init container %d, keyline %v: exit %d: %s", i, pod.InitContainers[0].Args, codes[i], outs[i])
		}
	}

	c := pod.Containers[0]
	sv := s.serve(t, env, addr, c.Args...)
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
	}{{"startupProbe", c.StartupProbe}, {"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no httpGet", p.name)
			continue
		}
		if code := httpStatus(t, "http://"+addr+p.probe.HTTPGet.Path); code != http.StatusOK {
			t.Errorf("%s GET %s: %d, want 200", p.name, p.probe.HTTPGet.Path, code)
		}
	}
	metricsPath := dep.Spec.Template.Annotations["prometheus.io/path"]
	if code := httpStatus(t, "http://"+metricsAddr+metricsPath); code != http.StatusOK {
		t.Errorf("metrics port GET %s: %d, want 200", metricsPath, code)
	}
	if code := httpStatus(t, "http://"+addr+metricsPath); code != http.StatusNotFound {
		t.Errorf("the Service's port answers GET %s with %d; metrics must stay off it", metricsPath, code)
	}

	purgeArgs := purge.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args
	if code, out := s.runToEnd(t, env, purgeArgs...); code != 0 {
		t.Errorf("CronJob keyline %v: exit %d: %s", purgeArgs, code, out)
	}
	sv.stop(t)
	s.checkUnwritten(t)
	if t.Failed() {
		t.Logf("serve logs:\n%s", sv.logs.String())
	}
}
