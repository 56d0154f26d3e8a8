package source

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// hystrixServer is a real hystrix.stream on loopback: each connection writes the frames
// the test sends on frames; the frame "close" ends the connection.
type hystrixServer struct {
	*httptest.Server
	frames chan string
	conns  atomic.Int32
}

func newHystrixServer(t testing.TB) *hystrixServer {
	s := &hystrixServer{frames: make(chan string, 16)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream;charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "ping: \n\n")
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case f := <-s.frames:
				if f == "close" {
					return
				}
				fmt.Fprint(w, f)
				w.(http.Flusher).Flush()
			}
		}
	}))
	t.Cleanup(func() {
		s.CloseClientConnections()
		s.Close()
	})
	return s
}

// command is the frame of one HystrixCommand event.
func command(name string, open bool, failures int) string {
	return commandN(name, open, failures, 10)
}

// commandN is command with a given count of successes, which tells events apart.
func commandN(name string, open bool, failures, successes int) string {
	return fmt.Sprintf(`data: {"type":"HystrixCommand","name":%q,"isCircuitBreakerOpen":%v,"errorPercentage":50,"requestCount":%d,`+
		`"rollingCountSuccess":%d,"rollingCountFailure":%d,"rollingCountTimeout":0,"rollingCountShortCircuited":0,`+
		`"latencyExecute":{"0":1,"25":2,"50":3,"75":4,"90":5,"95":6,"99":7,"99.5":8,"100":9},`+
		`"propertyValue_circuitBreakerSleepWindowInMilliseconds":5000,"propertyValue_circuitBreakerErrorThresholdPercentage":50,`+
		`"propertyValue_circuitBreakerRequestVolumeThreshold":20,"propertyValue_circuitBreakerForceOpen":false,`+
		`"propertyValue_circuitBreakerForceClosed":false,"propertyValue_circuitBreakerEnabled":true,"reportingHosts":1}`+"\n\n",
		name, open, successes+failures, successes, failures)
}

// fakeClock is the time the source sees, moved by the test.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newFakeClock() *fakeClock           { c := &fakeClock{}; c.ns.Store(time.Now().UnixNano()); return c }

func runHystrix(t *testing.T, opts HystrixOptions, reg *recorder, clock *fakeClock) *Hystrix {
	t.Helper()
	if opts.MaxBreakers == 0 {
		opts.MaxBreakers = 500
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	}
	h := NewHystrix(opts)
	if clock != nil {
		h.now = clock.now
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); h.Run(ctx, reg.Registry) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return h
}

func stateOf(reg *recorder, name string) string {
	b, ok := reg.Get(name)
	if !ok {
		return ""
	}
	if b.Stale {
		return string(b.State) + " stale"
	}
	return string(b.State)
}

// TestHystrixTransitions drives one command through open, half-open (derived from the
// sleep window), a failed trial, a second half-open and closed, over a real stream.
func TestHystrixTransitions(t *testing.T) {
	srv := newHystrixServer(t)
	reg := newRecorder()
	clock := newFakeClock()
	runHystrix(t, HystrixOptions{URL: srv.URL}, reg, clock)

	steps := []struct {
		advance time.Duration
		frame   string
		want    string
	}{
		{0, commandN("ChargeCard", false, 1, 0), "closed"},
		{time.Second, commandN("ChargeCard", true, 12, 1), "open"},
		{5 * time.Second, commandN("ChargeCard", true, 12, 2), "half_open"},
		{100 * time.Millisecond, commandN("ChargeCard", true, 13, 3), "open"}, // the trial failed
		{5 * time.Second, commandN("ChargeCard", true, 13, 4), "half_open"},
		{100 * time.Millisecond, commandN("ChargeCard", false, 13, 5), "closed"},
	}
	for i, s := range steps {
		clock.add(s.advance)
		srv.frames <- s.frame
		waitFor(t, fmt.Sprintf("step %d: %s", i, s.want), func() bool {
			b, ok := reg.Get("ChargeCard")
			return ok && string(b.State) == s.want && b.Calls.Succeeded == uint64(i)
		})
	}
	want := []string{
		"ChargeCard:>closed", "ChargeCard:closed>open", "ChargeCard:open>half_open",
		"ChargeCard:half_open>open", "ChargeCard:open>half_open", "ChargeCard:half_open>closed",
	}
	if diff := cmp.Diff(want, reg.transitions()); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
}

// TestHystrixReconnect ends the stream under the source: the breaker turns stale with the
// reason in the status, and fresh again once the source has reconnected.
func TestHystrixReconnect(t *testing.T) {
	srv := newHystrixServer(t)
	reg := newRecorder()
	h := runHystrix(t, HystrixOptions{URL: srv.URL, MinBackoff: 200 * time.Millisecond, MaxBackoff: 400 * time.Millisecond}, reg, nil)

	srv.frames <- command("GetUser", false, 0)
	waitFor(t, "GetUser closed", func() bool { return stateOf(reg, "GetUser") == "closed" })
	waitFor(t, "status ok with 1 breaker", func() bool {
		st := h.Status()
		return st.OK && strings.Contains(st.Status, "ago, 1 breakers")
	})
	srv.frames <- "close"
	waitFor(t, "GetUser stale", func() bool { return stateOf(reg, "GetUser") == "closed stale" })
	waitFor(t, "unavailable: stream ended, retrying, 1 stale breaker", func() bool {
		st := h.Status()
		return !st.OK && strings.HasPrefix(st.Status, "unavailable: stream ended; retrying in") && strings.Contains(st.Status, "1 breakers kept as stale")
	})
	srv.frames <- command("GetUser", false, 0)
	waitFor(t, "GetUser fresh again", func() bool { return stateOf(reg, "GetUser") == "closed" })
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("connections = %d, want 2", n)
	}
	if got := reg.transitions(); len(got) != 1 {
		t.Errorf("transitions = %v; reconnecting must not look like a change of state", got)
	}
}

// TestHystrixBadStream sends garbage, events that are not commands, an event too large
// and a stream that goes quiet: none stops the source; each is counted or reported.
func TestHystrixBadStream(t *testing.T) {
	srv := newHystrixServer(t)
	reg := newRecorder()
	// Backoff long enough for the status to be read between connections.
	h := runHystrix(t, HystrixOptions{URL: srv.URL, IdleTimeout: 400 * time.Millisecond, MinBackoff: 300 * time.Millisecond, MaxBackoff: 600 * time.Millisecond}, reg, nil)

	srv.frames <- "data: {not json\n\n"
	srv.frames <- `data: {"type":"HystrixCommand","name":"x"}` + "\n\n"
	srv.frames <- `data: {"type":"HystrixThreadPool","name":"pool"}` + "\n\n"
	srv.frames <- "\x00\xff garbage line\n\n"
	srv.frames <- command("GetUser", false, 0)
	waitFor(t, "GetUser", func() bool { return stateOf(reg, "GetUser") == "closed" })
	waitFor(t, "the 2 malformed command events counted", func() bool {
		st := h.Status()
		return st.OK && strings.Contains(st.Status, "; 2 events skipped (hystrix event: invalid character")
	})

	srv.frames <- "data: " + strings.Repeat("x", hystrixMaxEvent+1) + "\n\n"
	waitFor(t, "the oversized event named in the status", func() bool {
		st := h.Status()
		return !st.OK && strings.Contains(st.Status, "event exceeds the size limit")
	})
	if got := stateOf(reg, "GetUser"); got != "closed stale" {
		t.Errorf("GetUser = %q after the stream broke, want stale", got)
	}

	srv.frames <- command("GetUser", false, 0)
	waitFor(t, "fresh after reconnect", func() bool { return stateOf(reg, "GetUser") == "closed" })
	// Nothing more is written: the connection is idle and must be dropped.
	waitFor(t, "idle stream dropped", func() bool { return strings.Contains(h.Status().Status, "unavailable: no data for") })
	if stateOf(reg, "GetUser") != "closed stale" {
		t.Errorf("GetUser = %q after an idle stream, want stale", stateOf(reg, "GetUser"))
	}
}

func TestHystrixRefusesNonStream(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"not found", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "unavailable: HTTP 404 Not Found"},
		{"html page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html></html>")
		}, `unavailable: content type "text/html" is not text/event-stream`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			h := runHystrix(t, HystrixOptions{URL: srv.URL}, newRecorder(), nil)
			waitFor(t, tc.want, func() bool { return strings.HasPrefix(h.Status().Status, tc.want) })
		})
	}
}

func TestHystrixCapAndForget(t *testing.T) {
	srv := newHystrixServer(t)
	reg := newRecorder()
	clock := newFakeClock()
	h := runHystrix(t, HystrixOptions{URL: srv.URL, MaxBreakers: 2, Forget: 10 * time.Second}, reg, clock)
	for _, name := range []string{"a", "b", "c", "d"} {
		srv.frames <- command(name, false, 0)
	}
	srv.frames <- command("a", true, 5)
	waitFor(t, "a open", func() bool { return stateOf(reg, "a") == "open" })
	if diff := cmp.Diff([]string{"a=open", "b=closed"}, reg.states()); diff != "" {
		t.Errorf("breakers (-want +got):\n%s", diff)
	}
	waitFor(t, "c and d counted over the cap", func() bool {
		return strings.Contains(h.Status().Status, "2 breakers; 2 more over the limit of 2 not shown")
	})
	// b stops being written: after Forget it is stale and its place goes to c.
	clock.add(11 * time.Second)
	srv.frames <- command("a", true, 5)
	waitFor(t, "b stale", func() bool { return stateOf(reg, "b") == "closed stale" })
	srv.frames <- command("c", false, 0)
	waitFor(t, "c admitted", func() bool { return stateOf(reg, "c") == "closed" })
}

func TestHystrixConnectedWithoutCommands(t *testing.T) {
	srv := newHystrixServer(t)
	h := runHystrix(t, HystrixOptions{URL: srv.URL}, newRecorder(), nil)
	srv.frames <- `data: {"type":"HystrixThreadPool","name":"pool"}` + "\n\n"
	waitFor(t, "connected status", func() bool {
		st := h.Status()
		return st.OK && strings.HasSuffix(st.Status, "0 breakers (connected; no HystrixCommand event yet)")
	})
}
