package pool

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/version"
	"github.com/faultline-dev/faultline/internal/wire"
)

// agent is one target and its connection.
type agent struct {
	p     *Pool
	local bool

	mu     sync.Mutex
	target discovery.Target
	st     view.AgentStatus

	cancel context.CancelFunc
	done   chan struct{}

	// Owned by the decode worker; lastID is read by the connection goroutine only
	// after drain.
	lastID   string
	states   map[string]wire.BreakerState // last known state of each breaker
	interval atomic.Int64                 // the agent's sample interval, ns
	pending  sync.WaitGroup               // events handed to the worker, not yet handled
	failed   atomic.Pointer[error]        // why the worker dropped the connection
	worker   int
	breakers int // breakers in the last snapshot: the next one's capacity
}

func (a *agent) lastEventID() string { return a.lastID }

func newAgent(p *Pool, t discovery.Target) *agent {
	a := &agent{p: p, target: t, done: make(chan struct{}), worker: p.workerFor(t.Key)}
	a.st = view.AgentStatus{V: wire.Version, Key: t.Key, URL: t.URL, Since: wire.Now()}
	a.applyTarget(t)
	return a
}

// setTarget takes new metadata for the same endpoint (a pod relabelled, say).
func (a *agent) setTarget(t discovery.Target) {
	a.mu.Lock()
	a.target = t
	a.applyTarget(t)
	a.mu.Unlock()
}

// applyTarget copies the target's identity into the status; called with a.mu held or
// before the agent is shared.
func (a *agent) applyTarget(t discovery.Target) {
	a.st.Pod, a.st.Namespace, a.st.Workload, a.st.Node = t.Pod, t.Namespace, t.Workload, t.Node
	if a.st.Agent != nil {
		fillIdentity(&a.st, a.st.Agent)
	}
}

// fillIdentity completes what discovery did not know (static mode knows only a URL)
// from the identity the agent reports.
func fillIdentity(st *view.AgentStatus, id *wire.Agent) {
	if st.Pod == "" {
		st.Pod = id.Pod
		if st.Pod == "" {
			st.Pod = id.ID
		}
	}
	if st.Namespace == "" {
		st.Namespace = id.Namespace
	}
	if st.Workload == "" {
		st.Workload = id.Workload
	}
	if st.Node == "" {
		st.Node = id.Node
	}
}

func (a *agent) status() view.AgentStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st
}

// setState changes the state and reports it. An unavailable agent that stays
// unavailable keeps its Since; only the reason is refreshed.
func (a *agent) setState(state, reason string) {
	a.mu.Lock()
	if a.st.State == state && a.st.Reason == reason {
		a.mu.Unlock()
		return
	}
	if a.st.State != state {
		a.st.Since = wire.Now()
	}
	a.st.State, a.st.Reason = state, reason
	st := a.st
	a.mu.Unlock()
	a.p.sink.Status(st)
}

func (a *agent) start(ctx context.Context) {
	ctx, a.cancel = context.WithCancel(ctx)
	if a.target.Missing != "" {
		close(a.done)
		a.setState(view.AgentMissing, a.target.Missing)
		return
	}
	if a.local {
		close(a.done)
		return
	}
	a.p.wg.Add(1)
	go func() {
		defer a.p.wg.Done()
		defer close(a.done)
		a.run(ctx)
	}()
}

// stop ends the connection; the pool's lock is held, so it must not wait on anything
// that takes it.
func (a *agent) stop() {
	if a.cancel != nil {
		a.cancel()
	}
}

func (a *agent) run(ctx context.Context) {
	a.setState(view.AgentConnecting, "")
	attempt := 0
	answered := false
	for {
		connectedAt, err := a.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if !connectedAt.IsZero() && time.Since(connectedAt) > a.p.opts.BackoffMax {
			attempt = 0 // it was healthy for a while: start backing off afresh
		}
		if !connectedAt.IsZero() {
			answered = true
		}
		state, reason := view.AgentUnavailable, describe(err)
		// A pod's agent that has never answered was never there: missing, not unavailable.
		if silent := a.missingIfSilent(); !answered && silent != "" {
			state, reason = view.AgentMissing, silent+": "+reason
		}
		a.p.opts.Logger.Debug("agent "+state, "agent", a.target.Key, "reason", reason)
		a.setState(state, reason)
		t := time.NewTimer(backoff(attempt, a.p.opts.BackoffBase, a.p.opts.BackoffMax))
		attempt++
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// missingIfSilent is the target's reason to count as missing while it never answered.
func (a *agent) missingIfSilent() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.target.MissingIfSilent
}

// stallTimeout is how long the agent may stay silent: twice its sample interval.
func (a *agent) stallTimeout() time.Duration {
	iv := time.Duration(a.interval.Load())
	if iv <= 0 {
		iv = a.p.opts.DefaultInterval
	}
	if d := 2 * iv; d > a.p.opts.StallFloor {
		return d
	}
	return a.p.opts.StallFloor
}

// stream connects once and reads until the stream breaks. It returns when it became
// connected (zero if it never did) and why it ended.
func (a *agent) stream(ctx context.Context) (time.Time, error) {
	u, err := url.Parse(strings.TrimSuffix(a.target.URL, "/") + "/v1/stream")
	if err != nil {
		return time.Time{}, fmt.Errorf("bad agent url: %w", err)
	}
	conn, err := a.dial(ctx, u)
	lastID := a.lastEventID()
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Close()
	stopWatch := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopWatch()

	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: faultline-aggregator/" + version.Version + "\r\n"
	if lastID != "" {
		req += "Last-Event-ID: " + lastID + "\r\n"
	}
	_ = conn.SetDeadline(time.Now().Add(a.p.opts.DialTimeout))
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		return time.Time{}, fmt.Errorf("send request: %w", err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	dr := &deadlineReader{conn: conn, timeout: a.p.opts.DialTimeout}
	// The response's own buffer only holds the header and chunk sizes; the body is
	// read through the event reader's buffer.
	resp, err := http.ReadResponse(bufio.NewReaderSize(dr, 512), &http.Request{Method: http.MethodGet})
	if err != nil {
		return time.Time{}, fmt.Errorf("read response: %w", err)
	}
	// The body is not closed: closing it would drain the rest of the stream. Closing
	// the connection (deferred above) ends it at once.
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("HTTP %d from %s", resp.StatusCode, u.Path)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return time.Time{}, fmt.Errorf("%s answered with content type %q, not an event stream", u.Path, resp.Header.Get("Content-Type"))
	}
	body := resp.Body
	resp = nil // its header is not needed while the stream lasts
	connectedAt := time.Now()
	a.setState(view.AgentConnected, "")
	rd := newReader(bufio.NewReaderSize(body, a.p.opts.ReadBuffer), a.p.opts.MaxEventBytes)
	defer rd.release()
	defer a.drain() // the next connection resumes after the last event handled
	a.failed.Store(nil)
	for {
		dr.timeout = a.stallTimeout()
		ev, err := rd.next()
		if err != nil {
			if f := a.failed.Load(); f != nil {
				return connectedAt, *f // the worker found the agent misbehaving
			}
			return connectedAt, err
		}
		if !a.p.enqueue(a, conn, ev, rd.take()) {
			if f := a.failed.Load(); f != nil {
				return connectedAt, *f
			}
		}
	}
}

// drain waits until the decode worker has handled every event read so far.
func (a *agent) drain() { a.pending.Wait() }

func (a *agent) dial(ctx context.Context, u *url.URL) (net.Conn, error) {
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	d := net.Dialer{Timeout: a.p.opts.DialTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" {
		return conn, nil
	}
	tc := tls.Client(conn, &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12})
	hctx, cancel := context.WithTimeout(ctx, a.p.opts.DialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

// handle applies one event. An error means the agent misbehaves: the connection is
// dropped and the agent shown unavailable with the error as the reason.
func (a *agent) handle(ev event, conn net.Conn, in interner) error {
	switch ev.Name {
	case wire.EventSnapshot, wire.EventMetrics:
		snap := new(wire.Snapshot)
		if err := decodeSnapshot(ev.Data, snap, in, a.breakers); err != nil {
			return fmt.Errorf("bad %s event: %w", ev.Name, err)
		}
		a.breakers = len(snap.Breakers)
		if snap.Agent.V != 0 && snap.Agent.V != wire.Version {
			return fmt.Errorf("bad %s event: agent wire version %d, want %d", ev.Name, snap.Agent.V, wire.Version)
		}
		if snap.Sample != nil && snap.Sample.IntervalMs > 0 {
			iv := int64(snap.Sample.IntervalMs * float64(time.Millisecond))
			if a.interval.Swap(iv) != iv && conn != nil {
				// A read may be waiting with the deadline of the old interval.
				_ = conn.SetReadDeadline(time.Now().Add(a.stallTimeout()))
			}
		}
		a.noteIdentity(&snap.Agent)
		full := ev.Name == wire.EventSnapshot
		if full {
			a.resync(snap)
		}
		if full {
			// Known states come from snapshots and transitions only: a metrics event
			// may be handled after a newer transition (see startWorkers).
			if a.states == nil {
				a.states = make(map[string]wire.BreakerState, len(snap.Breakers))
			}
			for _, b := range snap.Breakers {
				a.states[b.Name] = b.State
			}
		}
		a.p.sink.Snapshot(a.target.Key, snap, full)
	case wire.EventCircuitBreaker:
		var tr wire.Transition
		if err := decode(ev.Data, &tr); err != nil {
			return fmt.Errorf("bad %s event: %w", ev.Name, err)
		}
		if !tr.To.Valid() || tr.Breaker.Name == "" {
			return fmt.Errorf("bad %s event: transition to %q of breaker %q", ev.Name, tr.To, tr.Breaker.Name)
		}
		if a.states == nil {
			a.states = make(map[string]wire.BreakerState)
		}
		a.states[tr.Breaker.Name] = tr.To
		a.p.sink.Transition(a.target.Key, tr)
	}
	return nil
}

// resync turns the difference between the breaker states known before a break and a
// fresh snapshot into transitions. The agent sends a snapshot instead of a replay when
// it restarted or the gap outgrew its ring; without this, a breaker that opened in that
// gap would show up open with no circuit-breaker event.
func (a *agent) resync(snap *wire.Snapshot) {
	if a.states == nil {
		return
	}
	for _, b := range snap.Breakers {
		prev, known := a.states[b.Name]
		if known && prev == b.State {
			continue
		}
		from := prev
		if !known {
			from = ""
		}
		at := b.Since
		if at.IsZero() {
			at = wire.Now()
		}
		a.p.sink.Transition(a.target.Key, wire.Transition{V: wire.Version, Agent: snap.Agent.ID, From: from, To: b.State, Time: at, Breaker: b})
	}
}

// noteIdentity records the identity the agent reports and when it was last heard from.
func (a *agent) noteIdentity(id *wire.Agent) {
	a.mu.Lock()
	a.st.LastSeen = wire.Now()
	changed := a.st.Agent == nil || *a.st.Agent != *id
	if changed {
		cp := *id
		a.st.Agent = &cp
		fillIdentity(&a.st, &cp)
	}
	st := a.st
	a.mu.Unlock()
	if changed {
		a.p.sink.Status(st)
	}
}

// deadlineReader arms the connection's read deadline before every read, so a silent
// agent ends the read with a timeout.
type deadlineReader struct {
	conn    net.Conn
	timeout time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	_ = d.conn.SetReadDeadline(time.Now().Add(d.timeout))
	return d.conn.Read(p)
}

// describe turns a stream error into the reason users see.
func describe(err error) string {
	switch {
	case err == nil:
		return "stream ended"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "stalled: no data within twice the sample interval"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "stream ended by the agent"
	case errors.Is(err, errTooLarge):
		return "misbehaving agent: " + err.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "dns: " + dnsErr.Err
	}
	return err.Error()
}
