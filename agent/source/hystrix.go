package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/agent/breaker"
	"github.com/faultline-dev/faultline/internal/backoff"
	"github.com/faultline-dev/faultline/internal/cause"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Hystrix stream defaults. Hystrix writes every command about twice a second and a
// "ping:" line when it has nothing to say, so a quiet connection is a dead one.
const (
	hystrixIdleTimeout = 10 * time.Second // no byte for this long: reconnect
	hystrixForget      = 10 * time.Second // a command not written for this long turns stale
	hystrixMinBackoff  = 500 * time.Millisecond
	hystrixMaxBackoff  = 30 * time.Second
	hystrixMaxEvent    = 256 << 10
)

// HystrixOptions configures a hystrix.stream source.
type HystrixOptions struct {
	URL         string
	MaxBreakers int
	Log         hclog.Logger
	Client      *http.Client // nil: a client suited to a pod-local endpoint
	// IdleTimeout, Forget, MinBackoff and MaxBackoff override the defaults above.
	IdleTimeout, Forget, MinBackoff, MaxBackoff time.Duration
}

// Hystrix keeps one connection to an application's hystrix.stream, derives each
// command's breaker state from its events (see hystrixTrack) and reconnects with
// exponential backoff and jitter when the stream breaks.
type Hystrix struct {
	opts   HystrixOptions
	health *health

	mu       sync.Mutex
	tracks   map[string]*hystrixTrack // admitted commands; at most MaxBreakers
	over     map[string]bool          // commands over the cap since the last sweep
	problems int                      // events skipped since the last sweep
	problem  string
	// countedSince is when over and problems started counting; they restart every
	// Forget so that the status describes the recent stream.
	countedSince time.Time
	now          func() time.Time
}

var _ Source = (*Hystrix)(nil)

// NewHystrix returns a hystrix.stream source; Run starts it.
func NewHystrix(opts HystrixOptions) *Hystrix {
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	if opts.Client == nil {
		opts.Client = httpClient()
	}
	if opts.MaxBreakers < 1 {
		opts.MaxBreakers = 1
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&opts.IdleTimeout, hystrixIdleTimeout}, {&opts.Forget, hystrixForget}, {&opts.MinBackoff, hystrixMinBackoff}, {&opts.MaxBackoff, hystrixMaxBackoff}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	return &Hystrix{
		opts:   opts,
		health: newHealthEmpty(NameHystrix, "event", "events", "connected; no HystrixCommand event yet", opts.MaxBreakers),
		tracks: map[string]*hystrixTrack{},
		over:   map[string]bool{},
		now:    time.Now,
	}
}

// Name implements Source.
func (h *Hystrix) Name() string { return NameHystrix }

// Status implements Source.
func (h *Hystrix) Status() wire.Collector { return h.health.collector() }

// Run implements Source: connect, read, and on any failure mark this source's breakers
// stale, wait (doubling up to MaxBackoff, with jitter; reset after a stream that
// delivered commands) and connect again.
func (h *Hystrix) Run(ctx context.Context, reg *breaker.Registry) {
	failures := 0
	for {
		start := time.Now()
		delivered, err := h.stream(ctx, reg)
		if ctx.Err() != nil {
			return
		}
		if delivered {
			failures = 0
		}
		wait := backoff.Policy{Base: h.opts.MinBackoff, Max: h.opts.MaxBackoff}.Delay(failures)
		failures++
		reg.MarkStale(NameHystrix)
		h.health.failed(time.Since(start), err, reg.Count(NameHystrix), time.Now().Add(wait))
		h.opts.Log.Debug("hystrix stream broken", "url", h.opts.URL, "error", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

var (
	errStreamEnded = errors.New("stream ended")
	errIdle        = errors.New("no data") // the message is completed with the timeout
)

// stream reads one connection until it breaks. It reports whether any command event
// was applied.
func (h *Hystrix) stream(ctx context.Context, reg *breaker.Registry) (bool, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.opts.URL, nil)
	if err != nil {
		return false, fmt.Errorf("hystrix stream %s: %w", h.opts.URL, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := h.opts.Client.Do(req)
	if err != nil {
		return false, fmt.Errorf("hystrix stream %s: %w", h.opts.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return false, cause.Status(resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "text/event-stream" {
			return false, fmt.Errorf("content type %q is not text/event-stream", ct)
		}
	}
	h.mu.Lock()
	h.health.succeeded(0, len(h.tracks), len(h.over), h.problems, h.problem) // connected
	h.mu.Unlock()
	body := &activityReader{r: resp.Body}
	body.touch()
	done := make(chan struct{})
	defer close(done)
	go h.watch(ctx, cancel, body, reg, done)

	delivered := false
	for ev, err := range wire.ReadEvents(body, hystrixMaxEvent) {
		if err != nil {
			if cause := context.Cause(ctx); errors.Is(cause, errIdle) {
				err = cause
			}
			return delivered, err
		}
		if h.apply(ev.Data, reg) {
			delivered = true
		}
	}
	if cause := context.Cause(ctx); errors.Is(cause, errIdle) {
		return delivered, cause
	}
	return delivered, errStreamEnded
}

// watch ends a connection that went quiet and sweeps out commands the stream stopped
// writing, until the connection ends.
func (h *Hystrix) watch(ctx context.Context, cancel context.CancelCauseFunc, body *activityReader, reg *breaker.Registry, done <-chan struct{}) {
	tick := time.NewTicker(min(time.Second, h.opts.IdleTimeout/2))
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if quiet := time.Since(body.last()); quiet > h.opts.IdleTimeout {
			cancel(fmt.Errorf("%w for %s", errIdle, ago(quiet)))
			return
		}
		h.sweep(reg)
	}
}

// apply decodes one event and records the command in reg. It reports whether the event
// was a command that was applied.
func (h *Hystrix) apply(data []byte, reg *breaker.Registry) bool {
	start := time.Now()
	cmd, err := DecodeHystrix(data)
	h.mu.Lock()
	defer h.mu.Unlock()
	if errors.Is(err, ErrNotCommand) {
		return false
	}
	if err != nil {
		h.skip(err.Error())
		return false
	}
	t, ok := h.tracks[cmd.Name]
	if !ok {
		if len(h.tracks) >= h.opts.MaxBreakers {
			if len(h.over) < 10*h.opts.MaxBreakers {
				h.over[cmd.Name] = true
			}
			return false
		}
		t = &hystrixTrack{}
		h.tracks[cmd.Name] = t
	}
	now := h.now()
	if _, err := reg.Upsert(cmd.breaker(t.step(cmd, now))); err != nil {
		h.skip(fmt.Sprintf("command %q: %v", cmd.Name, err))
		delete(h.tracks, cmd.Name)
		return false
	}
	h.health.succeeded(time.Since(start), len(h.tracks), len(h.over), h.problems, h.problem)
	return true
}

func (h *Hystrix) skip(problem string) {
	if h.problems == 0 {
		h.problem = problem
	}
	h.problems++
	h.opts.Log.Debug("hystrix event skipped", "problem", problem)
}

// sweep forgets commands not written for a while: their breakers turn stale and their
// places under the cap free up. Counts of skipped and over-the-cap events restart.
func (h *Hystrix) sweep(reg *breaker.Registry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	fresh := make(map[string]bool, len(h.tracks))
	for name, t := range h.tracks {
		if now.Sub(t.seen) > h.opts.Forget {
			delete(h.tracks, name)
			continue
		}
		fresh[name] = true
	}
	reg.MarkStaleExcept(NameHystrix, fresh)
	if now.Sub(h.countedSince) >= h.opts.Forget {
		clear(h.over)
		h.problems, h.problem, h.countedSince = 0, "", now
	}
}

// activityReader remembers when it last returned data.
type activityReader struct {
	r    io.Reader
	when atomic.Int64
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.touch()
	}
	return n, err
}

func (a *activityReader) touch()          { a.when.Store(time.Now().UnixNano()) }
func (a *activityReader) last() time.Time { return time.Unix(0, a.when.Load()) }
