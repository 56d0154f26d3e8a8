package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

var testEnv = map[string]string{"POD_NAME": "checkout-7d9fb8c5d4-x2kzq", "POD_NAMESPACE": "shop", "NODE_NAME": "node-1"}

// newTestAgent builds an agent sampling this machine in host mode, without listeners. It
// answers to the Host of httptest.NewRequest, example.com.
func newTestAgent(t *testing.T, edit func(*config.Agent)) *agent {
	t.Helper()
	cfg := config.DefaultAgent()
	cfg.Mode = config.ModeHost
	cfg.AllowedHosts = config.List{"example.com"}
	if edit != nil {
		edit(&cfg)
	}
	return newAgent(cfg, hclog.NewNullLogger(), func(k string) string { return testEnv[k] })
}

// do sends one request to h, from loopback as an application in the pod does, and
// returns the status and body.
func do(t *testing.T, h http.Handler, method, path, ctype, body string, edit ...func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:41000"
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	for _, e := range edit {
		e(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b), w.Result().Header
}

// errorOf returns the "error" of a JSON error answer, failing the test if the answer
// is not one.
func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error == "" {
		t.Fatalf("answer is not a JSON error: %q (%v)", body, err)
	}
	return e.Error
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: hclog.DefaultOutput, Level: hclog.Warn, Name: t.Name()})
}

func testConfig() config.Agent {
	cfg := config.DefaultAgent()
	cfg.Mode = config.ModeHost
	return cfg
}

func nullLogger() hclog.Logger { return hclog.NewNullLogger() }

// /healthz means the agent does its job: while the sampling loop is stalled it answers
// 503 naming the sampler, and 200 again once the loop goes round.
func TestHealthFollowsTheSampler(t *testing.T) {
	a := newTestAgent(t, func(c *config.Agent) {
		c.SampleInterval, c.Listen, c.IngestListen = 100*time.Millisecond, "127.0.0.1:0", "127.0.0.1:0"
	})
	var stalled atomic.Bool
	release := make(chan struct{})
	a.stall = func() {
		if stalled.Load() {
			<-release
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	health := func() (int, string) {
		code, body, _ := do(t, a.mainHandler(), "GET", "/healthz", "", "")
		return code, body
	}
	if code, body := health(); code != 200 {
		t.Fatalf("a sampling agent: %d %s", code, body)
	}
	stalled.Store(true)
	testbin.Eventually(t, 10*time.Second, func() error {
		if code, body := health(); code != http.StatusServiceUnavailable || !strings.Contains(body, "sampler: no sample for") {
			return fmt.Errorf("stalled sampler: %d %s", code, body)
		}
		return nil
	})
	stalled.Store(false)
	close(release)
	testbin.Eventually(t, 5*time.Second, func() error {
		if code, body := health(); code != 200 {
			return fmt.Errorf("sampling again: %d %s", code, body)
		}
		return nil
	})
}

// A reading out of the wire's bounds (a counter that went back and wrapped) leaves its
// section out, named in the collectors, instead of a sample the aggregator would refuse.
func TestOutOfBoundsReadingLeftOut(t *testing.T) {
	smp := wire.Sample{V: 1, IntervalMs: 1000, CPU: &wire.CPU{Cores: 1.8e19}, Memory: &wire.Memory{WorkingSetBytes: 1 << 20},
		Collectors: []wire.Collector{{Name: "cpu", OK: true, Status: "ok"}}}
	dropOutOfBounds(&smp)
	if smp.CPU != nil || smp.Memory == nil || wire.CheckSample(&smp) != nil {
		t.Fatalf("sample after the check: %+v", smp)
	}
	last := smp.Collectors[len(smp.Collectors)-1]
	if last.Name != "cpu" || last.OK || !strings.Contains(last.Status, "cpu.cores: 1.8e+19 is above the limit") {
		t.Errorf("collector %+v does not say why the CPU is missing", last)
	}
}
