// Package source holds the breaker sources an agent can read besides the push API: a
// Prometheus scrape (resilience4j, Envoy, generic mappings) and a hystrix.stream. Each
// source writes into the agent's breaker registry and reports its own health.
//
// A source never stops on bad input: a failed scrape or a broken stream marks the
// breakers it reported stale (kept, with their last-seen time) and shows up in Status;
// series it cannot use are counted there too. Each source reports at most
// max-breakers-per-source breakers; the ones over the cap are counted, not shown.
package source

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/agent/breaker"
	"github.com/faultline-dev/faultline/config"
	"github.com/faultline-dev/faultline/internal/cause"
	"github.com/faultline-dev/faultline/internal/wire"
)

// Source reads breaker state from one place in the application.
type Source interface {
	// Name is the source's name in breaker reports and the sample ("prometheus").
	Name() string
	// Run reads until ctx is done, writing into reg. It returns nothing: failures are
	// reported through Status, never by stopping.
	Run(ctx context.Context, reg *breaker.Registry)
	// Status is the source's health for the sample, e.g. "last scrape 1.2 s ago, 14
	// breakers" or "unavailable: connection refused".
	Status() wire.Collector
}

// Source names, also the Source field of the breakers they report.
const (
	NamePrometheus = "prometheus"
	NameHystrix    = "hystrix"
)

// FromConfig builds the sources the configuration asks for.
func FromConfig(cfg config.Agent, log hclog.Logger) []Source {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var out []Source
	if cfg.PrometheusURL != "" {
		every := cfg.PrometheusInterval
		if every <= 0 {
			every = cfg.SampleInterval
		}
		out = append(out, NewPrometheus(PrometheusOptions{
			URL:         cfg.PrometheusURL,
			Interval:    every,
			Mappings:    cfg.PrometheusMappings,
			MaxBreakers: cfg.MaxBreakersPerSource,
			Log:         log.Named(NamePrometheus),
		}))
	}
	if cfg.HystrixURL != "" {
		out = append(out, NewHystrix(HystrixOptions{
			URL:         cfg.HystrixURL,
			MaxBreakers: cfg.MaxBreakersPerSource,
			Log:         log.Named(NameHystrix),
		}))
	}
	return out
}

// httpClient is the client sources use: no proxy (the application is in the same pod)
// and bounded dialing; each request carries its own deadline.
func httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:          2,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}}
}

// health is what Status reports; it is shared by the sources.
type health struct {
	mu        sync.Mutex
	name      string
	now       func() time.Time
	attempted bool
	ok        bool
	reason    string    // why the last attempt failed
	lastOK    time.Time // last successful read
	duration  time.Duration
	breakers  int
	over      int // breakers over the cap, not reported
	max       int
	problems  int    // series or events that could not be used, last read
	problem   string // the first of them
	verb      string // "scrape" or "event"
	skipped   string // what problems counts: "series" or "events"
	empty     string // what no breakers at all means for this source
	retryAt   time.Time
}

func newHealth(name, verb, skipped string, max int) *health {
	return &health{name: name, verb: verb, skipped: skipped, max: max, now: time.Now}
}

func (h *health) succeeded(d time.Duration, breakers, over, problems int, problem string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempted, h.ok, h.reason = true, true, ""
	h.lastOK, h.duration = h.now(), d
	h.breakers, h.over, h.problems, h.problem = breakers, over, problems, problem
}

func (h *health) failed(d time.Duration, err error, stale int, retryAt time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempted, h.ok, h.reason = true, false, cause.Of(err)
	h.duration, h.retryAt = d, retryAt
	if stale > 0 || h.breakers > 0 {
		h.breakers = max(stale, h.breakers)
	}
}

func (h *health) collector() wire.Collector {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := wire.Collector{Name: h.name, OK: h.ok, DurationMs: wire.Ms(h.duration)}
	now := h.now()
	switch {
	case !h.attempted:
		c.Status = "unavailable: no " + h.verb + " yet"
	case !h.ok:
		var b strings.Builder
		b.WriteString("unavailable: " + h.reason)
		if !h.retryAt.IsZero() && h.retryAt.After(now) {
			fmt.Fprintf(&b, "; retrying in %s", ago(h.retryAt.Sub(now)))
		}
		if h.breakers > 0 && !h.lastOK.IsZero() {
			fmt.Fprintf(&b, "; %d breakers kept as stale, last seen %s ago", h.breakers, ago(now.Sub(h.lastOK)))
		}
		c.Status = b.String()
	default:
		var b strings.Builder
		fmt.Fprintf(&b, "last %s %s ago, %d breakers", h.verb, ago(now.Sub(h.lastOK)), h.breakers)
		if h.breakers == 0 && h.over == 0 && h.empty != "" {
			b.WriteString(" (" + h.empty + ")")
		}
		if h.over > 0 {
			fmt.Fprintf(&b, "; %d more over the limit of %d not shown", h.over, h.max)
		}
		if h.problems > 0 {
			fmt.Fprintf(&b, "; %d %s skipped (%s)", h.problems, h.skipped, h.problem)
		}
		c.Status = b.String()
	}
	return c
}

// ago formats a duration the way the status line reads: "1.2 s", "350 ms", "4 min".
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 2*time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
}

// capper keeps the breakers one source reports to a maximum. Names admitted earlier keep
// their place, so a new breaker never pushes out one that is already shown.
type capper struct {
	max      int
	admitted map[string]bool
}

func newCapper(max int) *capper {
	if max < 1 {
		max = 1
	}
	return &capper{max: max, admitted: map[string]bool{}}
}

// admit chooses, among names, the ones to report: those admitted before first, then new
// ones in name order, up to the cap. It returns the chosen names and how many were left
// out; names not offered lose their place.
func (c *capper) admit(names []string) (map[string]bool, int) {
	next := make(map[string]bool, min(len(names), c.max))
	var fresh []string
	for _, n := range names {
		if c.admitted[n] && len(next) < c.max {
			next[n] = true
		} else if !c.admitted[n] {
			fresh = append(fresh, n)
		}
	}
	sort.Strings(fresh)
	for _, n := range fresh {
		if len(next) >= c.max {
			break
		}
		next[n] = true
	}
	c.admitted = next
	return next, len(names) - len(next)
}

// newHealthEmpty is newHealth with a note shown when a good read finds no breaker.
func newHealthEmpty(name, verb, skipped, empty string, max int) *health {
	h := newHealth(name, verb, skipped, max)
	h.empty = empty
	return h
}
