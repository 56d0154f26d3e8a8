// Package client reports a Go service's circuit breakers and throughput to the faultline
// agent running beside it in the pod, with one line of setup:
//
//	reporter := client.New(client.Options{})            // agent at http://127.0.0.1:9801
//	defer reporter.Close()
//	cb := client.NewBreaker[[]byte](reporter, gobreaker.Settings{Name: "payments"})
//	body, err := cb.Execute(func() ([]byte, error) { ... }) // gobreaker's API, unchanged
//
// Every state change is pushed at once; call counts are batched and pushed every
// FlushInterval. Reporting never blocks the caller: a call through a breaker costs a few
// atomic additions, and a state change is queued without waiting. When the agent is away
// the reports are dropped and counted (see Stats), and the breakers' current state is
// sent again once it answers.
//
// The package uses only the standard library and github.com/sony/gobreaker/v2, so that
// any Go service can import it; its JSON matches the agent's ingest API
// (POST /v1/breakers, POST /v1/throughput).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAgentURL is the agent's pod-local ingest listener.
const DefaultAgentURL = "http://127.0.0.1:9801"

// Options configures a Reporter. The zero value reports to DefaultAgentURL every second.
type Options struct {
	AgentURL      string        // the agent's ingest API; default DefaultAgentURL
	FlushInterval time.Duration // how often counters are pushed; default 1 s
	// ResendEvery is how often the state of every breaker is pushed even if nothing
	// changed, so the agent sees them as alive; default 10 s.
	ResendEvery time.Duration
	QueueSize   int          // state changes waiting to be sent; default 1024, the rest dropped
	Source      string       // source name the agent shows; default "gobreaker"
	HTTPClient  *http.Client // default: a client with a 2 s timeout
}

// Stats counts what a Reporter sent and what it had to drop.
type Stats struct {
	Sent      uint64 // reports the agent accepted (breaker reports and throughput reports)
	Dropped   uint64 // reports dropped: the queue was full or the agent did not accept them
	Failures  uint64 // requests to the agent that failed
	LastError string // the last failure, "" if none
}

// Reporter pushes the state of its breakers and the service's throughput to the agent
// from a background goroutine. It is safe for concurrent use.
type Reporter struct {
	opts Options

	mu       sync.Mutex
	breakers []*tracked
	names    map[string]bool

	queue chan breakerReport // state changes, in order
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	flushMu   sync.Mutex
	resendAll atomic.Bool // the agent missed something: send every breaker's state
	tp        throughput

	sent, dropped, failures atomic.Uint64
	lastErr                 atomic.Value // string
}

// New starts a Reporter. Close stops it.
func New(opts Options) *Reporter {
	if opts.AgentURL == "" {
		opts.AgentURL = DefaultAgentURL
	}
	opts.AgentURL = strings.TrimRight(opts.AgentURL, "/")
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	if opts.ResendEvery <= 0 {
		opts.ResendEvery = 10 * time.Second
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.Source == "" {
		opts.Source = "gobreaker"
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 2 * time.Second}
	}
	r := &Reporter{
		opts:  opts,
		names: map[string]bool{},
		queue: make(chan breakerReport, opts.QueueSize),
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	r.tp.hist.Store(newHistogram())
	r.tp.keep = max(1, int(latencyWindow/opts.FlushInterval))
	go r.run()
	return r
}

// Stats returns the counters so far.
func (r *Reporter) Stats() Stats {
	s := Stats{Sent: r.sent.Load(), Dropped: r.dropped.Load(), Failures: r.failures.Load()}
	if e, ok := r.lastErr.Load().(string); ok {
		s.LastError = e
	}
	return s
}

// Flush sends what is pending now and waits for it (or ctx). The background goroutine
// does this every FlushInterval; Flush is for tests and for shutdown paths.
func (r *Reporter) Flush(ctx context.Context) {
	r.flush(ctx)
}

// Close sends what is pending (waiting at most the HTTP client's timeout) and stops the
// background goroutine. Breakers keep working after Close; they are no longer reported.
func (r *Reporter) Close() error {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	return nil
}

func (r *Reporter) run() {
	defer close(r.done)
	t := time.NewTicker(r.opts.FlushInterval)
	defer t.Stop()
	lastFull := time.Now()
	for {
		select {
		case <-r.stop:
			r.flush(context.Background())
			return
		case <-r.wake:
		case <-t.C:
		}
		if time.Since(lastFull) >= r.opts.ResendEvery {
			r.resendAll.Store(true)
			lastFull = time.Now()
		}
		r.flush(context.Background())
	}
}

// register adds a breaker; names must be unique per Reporter.
func (r *Reporter) register(t *tracked) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[t.name] {
		return fmt.Errorf("faultline client: a breaker named %q is already reported", t.name)
	}
	r.names[t.name] = true
	r.breakers = append(r.breakers, t)
	return nil
}

// enqueue queues a state change without blocking; a full queue drops it and asks for
// the full state to be sent instead.
func (r *Reporter) enqueue(rep breakerReport) {
	select {
	case r.queue <- rep:
	default:
		r.dropped.Add(1)
		r.resendAll.Store(true)
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Reporter) flush(ctx context.Context) {
	r.flushMu.Lock() // one flush at a time keeps reports in order
	defer r.flushMu.Unlock()
	r.mu.Lock()
	breakers := append([]*tracked(nil), r.breakers...)
	r.mu.Unlock()

	// Reading the state lets gobreaker move an open breaker to half-open when its
	// timeout has passed, even with no traffic; the change lands in the queue.
	for _, t := range breakers {
		t.poll()
	}
	var reports []breakerReport
	changed := map[string]bool{}
drain:
	for {
		select {
		case rep := <-r.queue:
			reports = append(reports, rep)
			changed[rep.Name] = true
		default:
			break drain
		}
	}
	all := r.resendAll.Swap(false)
	for _, t := range breakers {
		if rep, ok := t.periodic(all || changed[t.name]); ok {
			reports = append(reports, rep)
		}
	}
	if len(reports) > 0 {
		if !r.sendBreakers(ctx, reports) {
			r.resendAll.Store(true)
		}
	}
	if rep, ok := r.tp.report(); ok {
		r.send(ctx, "/v1/throughput", rep, 1)
	}
}

// sendBreakers posts reports in order, in batches that name each breaker once (the
// agent refuses a batch naming one twice). After a failure the rest is dropped.
func (r *Reporter) sendBreakers(ctx context.Context, reports []breakerReport) bool {
	for start := 0; start < len(reports); {
		end := start
		names := map[string]bool{}
		for end < len(reports) && !names[reports[end].Name] && end-start < maxBatch {
			names[reports[end].Name] = true
			end++
		}
		if !r.send(ctx, "/v1/breakers", reports[start:end], end-start) {
			r.dropped.Add(uint64(len(reports) - end))
			return false
		}
		start = end
	}
	return true
}

// maxBatch keeps a request well under the agent's 64 KiB body limit.
const maxBatch = 100

// send posts body as JSON; n is how many reports it carries, for the counters.
func (r *Reporter) send(ctx context.Context, path string, body any, n int) bool {
	err := r.post(ctx, path, body)
	if err != nil {
		r.failures.Add(1)
		r.dropped.Add(uint64(n))
		r.lastErr.Store(err.Error())
		return false
	}
	r.sent.Add(uint64(n))
	return true
}

func (r *Reporter) post(ctx context.Context, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.opts.AgentURL+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("post %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(msg, &e) == nil && e.Error != "" {
			return fmt.Errorf("post %s: agent answered %d: %s", path, resp.StatusCode, e.Error)
		}
		return fmt.Errorf("post %s: agent answered %d", path, resp.StatusCode)
	}
	return nil
}

var errNoReporter = errors.New("faultline client: nil Reporter")
