package aggregator

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/testbin"
)

// /healthz means the aggregator does its job: while the broadcast loop is stalled it
// answers 503 naming the loop, and 200 again once the loop goes round; /readyz keeps
// saying ready all along.
func TestHealthFollowsTheBroadcastLoop(t *testing.T) {
	cfg := config.DefaultAggregator()
	cfg.Mode, cfg.Listen, cfg.ProbeListen, cfg.BroadcastInterval = config.ModeStatic, "127.0.0.1:0", "127.0.0.1:0", 100*time.Millisecond
	var stalled atomic.Bool
	release := make(chan struct{})
	probe := make(chan net.Addr, 1)
	opts := Options{Logger: hclog.NewNullLogger(), Listening: func(_, p net.Addr) { probe <- p }}
	opts.beforeBroadcast = func() {
		if stalled.Load() {
			<-release
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, opts) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + (<-probe).String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, `"version"`) {
		t.Fatalf("a running aggregator: %d %s", code, body)
	}
	stalled.Store(true)
	testbin.Eventually(t, 15*time.Second, func() error {
		if code, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "broadcast loop: no broadcast for") {
			return fmt.Errorf("stalled loop: %d %s", code, body)
		}
		return nil
	})
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("readiness while the loop is stalled: %d %s", code, body)
	}
	stalled.Store(false)
	close(release)
	testbin.Eventually(t, 5*time.Second, func() error {
		if code, body := get("/healthz"); code != 200 {
			return fmt.Errorf("broadcasting again: %d %s", code, body)
		}
		return nil
	})
}
