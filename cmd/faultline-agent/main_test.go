package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// agentProc is a running faultline-agent binary.
type agentProc struct {
	*testbin.Process
	api, ingest string // base URLs
}

func startAgent(t testing.TB, env []string, args ...string) *agentProc {
	t.Helper()
	bin := testbin.Build(t, "faultline-agent")
	a := &agentProc{api: "http://" + testbin.FreeAddr(t, "127.0.0.1"), ingest: "http://" + testbin.FreeAddr(t, "127.0.0.1")}
	args = append([]string{"--listen", strings.TrimPrefix(a.api, "http://"), "--ingest-listen", strings.TrimPrefix(a.ingest, "http://")}, args...)
	a.Process = testbin.Start(t, bin, env, args...)
	testbin.WaitHTTP(t, a.api+"/readyz", http.StatusOK, 20*time.Second)
	return a
}

func (a *agentProc) put(t testing.TB, name, body string) {
	t.Helper()
	testbin.PutJSON(t, a.ingest+"/v1/breakers/"+name, body)
}

// sseClient reads one /v1/stream connection in the background.
type sseClient struct {
	events chan wire.Event
	cancel context.CancelFunc
}

func openStream(t testing.TB, url, lastID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/stream", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET /v1/stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{events: make(chan wire.Event, 1024), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		defer close(c.events)
		for ev, err := range wire.ReadEvents(resp.Body, 0) {
			if err != nil {
				return
			}
			c.events <- ev
		}
	}()
	t.Cleanup(cancel)
	return c
}

func (c *sseClient) next(t testing.TB) wire.Event {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return wire.Event{}
}

// nextNamed skips events until one named name.
func (c *sseClient) nextNamed(t testing.TB, name string) wire.Event {
	t.Helper()
	for {
		if ev := c.next(t); ev.Name == name {
			return ev
		}
	}
}

func seqOf(t testing.TB, id string) uint64 {
	t.Helper()
	_, s, ok := strings.Cut(id, "-")
	n, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil {
		t.Fatalf("event id %q is not <epoch>-<seq>", id)
	}
	return n
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func states(bs []wire.Breaker) map[string]wire.BreakerState {
	m := map[string]wire.BreakerState{}
	for _, b := range bs {
		m[b.Name] = b.State
	}
	return m
}

// TestAgentEndToEnd runs the agent binary, pushes breaker states over HTTP and reads
// them back through /v1/snapshot and /v1/stream, then resumes the stream with
// Last-Event-ID and gets exactly the events it missed, then stops the agent with
// SIGTERM while a stream is open.
func TestAgentEndToEnd(t *testing.T) {
	a := startAgent(t, []string{"POD_NAME=checkout-7d9fb8c5d4-x2kzq", "POD_NAMESPACE=shop", "NODE_NAME=node-1"},
		"--sample-interval=200ms", "--mode=host")

	a.put(t, "payments", `{"state":"open","failure_rate":62.5,"calls":{"succeeded":30,"failed":50}}`)
	a.put(t, "inventory", `{"state":"closed"}`)
	var snap wire.Snapshot
	getJSON(t, a.api+"/v1/snapshot", &snap)
	if diff := cmp.Diff(map[string]wire.BreakerState{"payments": "open", "inventory": "closed"}, states(snap.Breakers)); diff != "" {
		t.Errorf("snapshot breakers (-want +got):\n%s", diff)
	}
	if snap.Agent.ID != "shop/checkout-7d9fb8c5d4-x2kzq" || snap.Agent.Workload != "checkout" || snap.Sample == nil || snap.Sample.Memory == nil {
		t.Errorf("snapshot agent %+v, sample %+v", snap.Agent, snap.Sample)
	}

	// A new client gets a snapshot, then transitions as they happen.
	s1 := openStream(t, a.api, "")
	first := s1.next(t)
	var s1snap wire.Snapshot
	if err := wire.Decode(first, &s1snap); err != nil || first.Name != wire.EventSnapshot {
		t.Fatalf("first event %q: %v", first.Name, err)
	}
	if diff := cmp.Diff(map[string]wire.BreakerState{"payments": "open", "inventory": "closed"}, states(s1snap.Breakers)); diff != "" {
		t.Errorf("stream snapshot breakers (-want +got):\n%s", diff)
	}
	a.put(t, "payments", `{"state":"half_open"}`)
	ev := s1.nextNamed(t, wire.EventCircuitBreaker)
	var tr wire.Transition
	if err := wire.Decode(ev, &tr); err != nil || tr.Breaker.Name != "payments" || tr.From != "open" || tr.To != "half_open" {
		t.Fatalf("transition %+v: %v", tr, err)
	}
	// Disconnect after the next event, whatever it is, and remember its id.
	last := s1.next(t)
	s1.cancel()

	missed := []string{"payments:half_open>closed", "inventory:closed>open", "db:>closed"}
	a.put(t, "payments", `{"state":"closed"}`)
	a.put(t, "inventory", `{"state":"open"}`)
	a.put(t, "db", `{"state":"closed"}`)

	// Resuming: every event after the last one seen, in order, no snapshot, no gap.
	s2 := openStream(t, a.api, last.ID)
	want := seqOf(t, last.ID) + 1
	var got []string
	for len(got) < len(missed) {
		ev := s2.next(t)
		if ev.Name == wire.EventSnapshot {
			t.Fatal("resume within the ring got a snapshot instead of the missed events")
		}
		if seq := seqOf(t, ev.ID); seq != want {
			t.Fatalf("event id %s, want sequence %d: a gap or a repeat", ev.ID, want)
		}
		want++
		if ev.Name == wire.EventCircuitBreaker {
			var tr wire.Transition
			if err := wire.Decode(ev, &tr); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s:%s>%s", tr.Breaker.Name, tr.From, tr.To))
		}
	}
	if diff := cmp.Diff(missed, got); diff != "" {
		t.Errorf("transitions replayed (-want +got):\n%s", diff)
	}

	// An id from another run cannot be resumed: a fresh snapshot instead.
	s3 := openStream(t, a.api, "0-5")
	if ev := s3.next(t); ev.Name != wire.EventSnapshot {
		t.Errorf("resume from another epoch: first event %q, want snapshot", ev.Name)
	}

	// SIGTERM ends the open streams and the process exits cleanly.
	if err := a.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	deadline := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-s2.events:
		case <-deadline:
			t.Fatal("stream still open after the agent stopped")
		}
	}
	if !strings.Contains(a.Output(), "agent stopping") {
		t.Errorf("no shutdown in the log:\n%s", a.Output())
	}
}

// TestIngestDefaultsToLoopback: --help documents every setting, and the write API
// listens on loopback unless told otherwise.
func TestIngestDefaultsToLoopback(t *testing.T) {
	bin := testbin.Build(t, "faultline-agent")
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, want := range []string{"-ingest-listen string", `(default "127.0.0.1:9801")`, "-sample-interval", "FAULTLINE_<NAME>"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
}

func TestVersionAndBadConfig(t *testing.T) {
	bin := testbin.Build(t, "faultline-agent")
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "faultline-agent ") {
		t.Errorf("--version: %v %q", err, out)
	}
	cmd := exec.Command(bin, "--mode=vm", "--sample-interval=5ms")
	out, err = cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("bad config: %v, want exit status 2", err)
	}
	for _, want := range []string{`mode: "vm"`, "sample-interval: 5ms"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("bad config output lacks %q:\n%s", want, out)
		}
	}
	// A port already in use is reported, with exit status 1.
	a := startAgent(t, nil, "--mode=host")
	cmd = exec.Command(bin, "--mode=host", "--listen", strings.TrimPrefix(a.api, "http://"), "--ingest-listen", "127.0.0.1:0")
	out, err = cmd.CombinedOutput()
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "listen (--listen)") {
		t.Errorf("port in use: %v\n%s", err, out)
	}
}

// TestNoKubernetesClient keeps client-go and controller-runtime out of the agent binary.
func TestNoKubernetesClient(t *testing.T) {
	for _, pkg := range agentDeps(t) {
		if strings.HasPrefix(pkg, "k8s.io/") || strings.HasPrefix(pkg, "sigs.k8s.io/controller-runtime") ||
			strings.HasPrefix(pkg, "github.com/faultline-dev/faultline/aggregator") {
			t.Errorf("the agent depends on %s", pkg)
		}
	}
}

// TestNoPrometheusClientLibrary keeps client_golang out of the agent binary: /metrics
// is built from client_model's types and written with prometheus/common's encoders
// (agent/metrics.go), and client_golang's registry and handler would cost resident
// memory the agent's 12 MiB budget has no room for.
func TestNoPrometheusClientLibrary(t *testing.T) {
	for _, pkg := range agentDeps(t) {
		if strings.HasPrefix(pkg, "github.com/prometheus/client_golang/") {
			t.Errorf("the agent depends on %s", pkg)
		}
	}
}

// agentDeps lists every package the agent binary links, with its build tags.
func agentDeps(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-tags", testbin.Tags("faultline-agent"), "./cmd/faultline-agent")
	cmd.Dir = testbin.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

// TestStrippedBinarySize checks the agent binary as the Dockerfile builds it: at most
// 15 MB, and without net/http's HTTP/2 (its build tags must take it out).
func TestStrippedBinarySize(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent binary")
	}
	out := filepath.Join(t.TempDir(), "faultline-agent")
	testbin.BuildStripped(t, "faultline-agent", out)
	if b, err := os.ReadFile(out); err != nil {
		t.Fatal(err)
	} else if bytes.Contains(b, []byte("http2: Framer")) {
		t.Error("the agent binary holds net/http's HTTP/2 server")
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stripped agent binary: %.2f MB", float64(st.Size())/1e6)
	if st.Size() > 15e6 {
		t.Errorf("stripped agent binary is %d bytes, over the 15 MB budget", st.Size())
	}
}
