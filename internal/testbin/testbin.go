// Package testbin runs faultline's real binaries in tests: it builds a command once per
// test binary, starts it as a process with its output kept for failure reports, and stops
// it when the test ends. It also decides what a missing external tool means: a skip on a
// developer's machine, a failure in CI (FAULTLINE_REQUIRE_ALL=1).
package testbin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{}
	tmpDir  string
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// buildTags are the build tags each binary under cmd/ is built with, here and by `make
// build` (the Makefile's *_TAGS), so that what the tests run and the benchmarks measure
// is what the images ship. TestBuildStage (test/image) fails when the binaries the
// Dockerfile builds carry other tags.
var buildTags = map[string]string{
	// The agent serves plain HTTP/1.1 and scrapes pod-local endpoints: it leaves out
	// net/http's bundled HTTP/2, half a megabyte of code it would map and never run.
	"faultline-agent": "nethttpomithttp2",
}

// Tags returns the build tags of ./cmd/<name>, comma-separated ("" for none).
func Tags(name string) string { return buildTags[name] }

// Build compiles ./cmd/<name> once per test process and returns the binary's path. It
// is built as the images build it (static, -trimpath, the binary's tags) but neither
// stripped nor stamped with a version.
func Build(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	out := filepath.Join(tempDir(t), name)
	goBuild(t, name, out)
	built[name] = out
	return out
}

// tempDir is the test process's directory for built binaries and helm's files; call
// with buildMu held.
func tempDir(t testing.TB) string {
	t.Helper()
	if tmpDir == "" {
		d, err := os.MkdirTemp("", "faultline-testbin-")
		if err != nil {
			t.Fatal(err)
		}
		tmpDir = d
	}
	return tmpDir
}

// RemoveTemp removes what Build and Helm left in the test process's temporary
// directory; for a TestMain, after the tests ran.
func RemoveTemp() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
		tmpDir = ""
		built = map[string]string{}
	}
}

// Helm runs the helm CLI (see Tool) with its cache, config and data in the test
// process's temporary directory, so tests never read or write the user's helm setup.
// It returns stdout, and an error that carries stderr.
func Helm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	bin := Tool(t, "helm", "make tools installs it into bin/")
	buildMu.Lock()
	home := filepath.Join(tempDir(t), "helm")
	buildMu.Unlock()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// BuildStripped compiles ./cmd/<name> into out exactly as the images ship it: Build's
// flags plus a stripped symbol table and DWARF (-ldflags "-s -w"), for the size and
// footprint checks.
func BuildStripped(t testing.TB, name, out string) {
	t.Helper()
	goBuild(t, name, out, "-ldflags", "-s -w")
}

func goBuild(t testing.TB, name, out string, flags ...string) {
	t.Helper()
	args := append([]string{"build", "-trimpath", "-tags", Tags(name)}, flags...)
	cmd := exec.Command("go", append(args, "-o", out, "./cmd/"+name)...)
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
}

// Process is a running binary.
type Process struct {
	Cmd  *exec.Cmd
	name string
	out  *SyncBuffer
	done chan struct{}
	err  error
}

// Start runs path with args and env (added to the test's environment). The process is
// killed when the test ends, and its output is logged if the test failed.
func Start(t testing.TB, path string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{name: filepath.Base(path), out: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(path, args...)
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout = p.out
	p.Cmd.Stderr = p.out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("output of %s %s:\n%s", p.name, strings.Join(args, " "), p.Output())
		}
	})
	return p
}

// Output is everything the process wrote so far.
func (p *Process) Output() string { return p.out.String() }

// Kill stops the process at once (SIGKILL) and waits for it.
func (p *Process) Kill() {
	if p.Cmd.Process != nil {
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// Stop asks the process to end (SIGTERM) and waits up to timeout for it to exit.
func (p *Process) Stop(timeout time.Duration) error {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s did not stop within %v", p.name, timeout)
	}
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// SyncBuffer collects what a process or a logger writes while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeAddr returns a loopback address with a port free at the time of the call. ip may
// be any 127.x.y.z address (the whole 127/8 range answers on Linux).
func FreeAddr(t testing.TB, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitHTTP waits until GET url answers with status want, or fails the test at the deadline.
func WaitHTTP(t testing.TB, url string, want int, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("GET %s: status %d, want %d", url, resp.StatusCode, want)
		}
		return nil
	})
}

// PutJSON sends body with PUT to url as application/json, as an application or an
// operator would, and fails the test unless the answer is 200 OK.
func PutJSON(t testing.TB, url, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s: %d %s", url, resp.StatusCode, b)
	}
}

// GetJSON decodes the JSON answer of GET url into v; an answer other than 200 is an
// error. It returns errors rather than failing, for use inside Eventually.
func GetJSON(url string, v any) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Eventually calls check until it returns nil, failing the test with check's last error
// when timeout passes.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RequireAll reports whether CI asked for every test to run (FAULTLINE_REQUIRE_ALL=1).
func RequireAll() bool { return os.Getenv("FAULTLINE_REQUIRE_ALL") == "1" }

// Missing skips the test because a tool is missing, or fails it when every test is required.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if RequireAll() {
		t.Fatalf("required tool missing (FAULTLINE_REQUIRE_ALL=1): %s", msg)
	}
	t.Skipf("skipping: %s", msg)
}

// Tool finds an external tool: in $FAULTLINE_<NAME> if set, then in the repository's bin/,
// then on PATH. When it is absent the test is skipped, or failed under RequireAll.
func Tool(t testing.TB, name, hint string) string {
	t.Helper()
	env := "FAULTLINE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p := filepath.Join(RepoRoot(), "bin", name); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	Missing(t, "%s not found in $%s, bin/ or PATH (%s)", name, env, hint)
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
