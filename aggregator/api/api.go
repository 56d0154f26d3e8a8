// Package api serves the aggregator's HTTP API: the resumable event stream, the polling
// endpoints, memory cleanup, and the dashboard at /. It only reads the merged state;
// the one mutating endpoint is guarded (loopback or bearer token, JSON content type,
// same origin, size-limited body). Every error is JSON {"error": "..."} naming what was
// wrong.
package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline-dev/faultline/aggregator/alert"
	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/merge"
	"github.com/faultline-dev/faultline/aggregator/rewind"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/httpx"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/wire"
)

// State is what the API reads; the store implements it.
type State interface {
	View() view.Cluster
	// Detailed is the view narrowed to a namespace and workload (empty: all) with pods,
	// agents and per-pod breaker detail.
	Detailed(namespace, workload string) view.Cluster
	Agents() []view.AgentStatus
	Suggestions() ([]wire.Suggestion, int)
	Optimization() wire.Optimization
	SnapshotData(namespace, workload string) ([]byte, error)
	// RewindRange is the span of instants Rewound can describe at now; Rewound is the
	// view as it was at an instant of it.
	RewindRange(now time.Time) (from, to time.Time)
	Rewound(at, now time.Time, namespace, workload string) rewind.Snapshot
	// Timelines is what every breaker did over the window before now.
	Timelines(window time.Duration, now time.Time) rewind.Timelines
}

// Config holds the API's dependencies.
type Config struct {
	State    State
	Hub      *stream.Hub
	History  *history.Store
	Alerts   *alert.Engine
	Delivery func() alert.Delivery // nil: delivery not configured
	Cleanup  *Cleanup
	// Guard checks every request (Host, header size) and the mutating ones (origin,
	// loopback or token, JSON, body size).
	Guard *httpx.Guard
	// Web serves the dashboard at /.
	Web    http.Handler
	Logger hclog.Logger
	Now    func() time.Time
}

// Handler returns the API's router behind its guard.
func Handler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Guard == nil {
		cfg.Guard = httpx.New(httpx.Options{Server: "faultline-aggregator", Logger: cfg.Logger})
	}
	s := &server{Config: cfg, rewinding: make(chan struct{}, rewindSlots)}
	mux := httpx.NewMux()
	mux.Get("/api/v1/performance/stream", s.stream)
	mux.Get("/api/v1/fault-tolerance/status", s.status)
	mux.Get("/api/v1/fault-tolerance/circuit-breakers", s.breakers)
	mux.Get("/api/v1/performance/optimization-status", s.optimization)
	mux.Get("/api/v1/performance/suggestions", s.suggestions)
	mux.Mutate(cfg.Guard, "/api/v1/performance/cleanup-memory", map[string]http.HandlerFunc{http.MethodPost: s.cleanup})
	mux.Get("/api/v1/agents", s.agents)
	mux.Get("/api/v1/alerts", s.alerts)
	mux.Get("/api/v1/history", s.history)
	mux.Get("/api/v1/snapshot", s.snapshotAt)
	mux.Fallback("/api/", http.HandlerFunc(httpx.NotFound))
	if cfg.Web != nil {
		mux.Fallback("/", cfg.Web)
	}
	return cfg.Guard.Handler("api", mux)
}

type server struct {
	Config
	rewinding chan struct{} // a token per rewound view being built
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpx.WriteJSON(w, status, v) }

func writeError(w http.ResponseWriter, status int, msg string) {
	httpx.WriteError(w, status, "%s", msg)
}

// badParam is a query parameter with a bad value; the message names it.
type badParam struct{ name, msg string }

func (e badParam) Error() string { return e.name + ": " + e.msg }

var (
	namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	workloadRE  = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
)

// scopeParams reads namespace and workload, checking their form.
func scopeParams(r *http.Request) (ns, wl string, err error) {
	q := r.URL.Query()
	ns, wl = q.Get("namespace"), q.Get("workload")
	if ns != "" && (len(ns) > 63 || !namespaceRE.MatchString(ns)) {
		return "", "", badParam{"namespace", fmt.Sprintf("%q is not a Kubernetes namespace name", ns)}
	}
	if wl != "" && (len(wl) > 253 || !workloadRE.MatchString(wl)) {
		return "", "", badParam{"workload", fmt.Sprintf("%q is not a workload name", wl)}
	}
	return ns, wl, nil
}

// streamEvents are the event names a client may ask for.
var streamEvents = []string{wire.EventSnapshot, wire.EventMetrics, wire.EventCircuitBreaker, wire.EventAlert, wire.EventOptimization, wire.EventAgent}

// eventsParam reads the events filter: nil means every event.
func eventsParam(r *http.Request) (map[string]bool, error) {
	raw, ok := r.URL.Query()["events"]
	if !ok {
		return nil, nil
	}
	set := map[string]bool{}
	for _, v := range raw {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			known := false
			for _, e := range streamEvents {
				if e == name {
					known = true
				}
			}
			if !known {
				return nil, badParam{"events", fmt.Sprintf("unknown event %q (known: %s)", name, strings.Join(streamEvents, ", "))}
			}
			set[name] = true
		}
	}
	return set, nil
}

// Filter is the hub filter for a stream client. Events without a namespace (metrics,
// optimization) are cluster-wide and pass the namespace and workload filters. It runs
// for every client on every event, so the event names are a bit set.
func Filter(ns, wl string, events map[string]bool) func(*stream.Event) bool {
	if ns == "" && wl == "" && events == nil {
		return nil
	}
	var want uint
	for i, e := range streamEvents {
		if events == nil || events[e] {
			want |= 1 << i
		}
	}
	return func(ev *stream.Event) bool {
		if want&eventBit(ev.Name) == 0 {
			return false
		}
		if ns != "" && ev.Namespace != "" && ev.Namespace != ns {
			return false
		}
		if wl != "" && ev.Workload != "" && ev.Workload != wl {
			return false
		}
		return true
	}
}

// eventBit is an event name's bit in a Filter's set; 0 for an unknown name.
func eventBit(name string) uint {
	for i, e := range streamEvents {
		if e == name {
			return 1 << i
		}
	}
	return 0
}

func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	ns, wl, err := scopeParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	events, err := eventsParam(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.Hub.Serve(w, r, Filter(ns, wl, events), func() ([]byte, error) { return s.State.SnapshotData(ns, wl) })
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	ns, wl, err := scopeParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.State.Detailed(ns, wl))
}

// BreakersResponse is GET /api/v1/fault-tolerance/circuit-breakers.
type BreakersResponse struct {
	V        int                `json:"v"`
	Time     wire.Time          `json:"time"`
	Total    int                `json:"total"`
	Open     int                `json:"open"`
	HalfOpen int                `json:"half_open"`
	Window   float64            `json:"window_ms,omitempty"` // with ?window: each tile's timeline covers it
	Breakers []view.BreakerTile `json:"breakers"`
}

func (s *server) breakers(w http.ResponseWriter, r *http.Request) {
	ns, wl, err := scopeParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	window, hasWindow, err := s.windowParam(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sort := q.Get("sort")
	switch sort {
	case "", "state":
	case SortTransitions, SortLongestOpen, SortOpenTime:
		if !hasWindow {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("sort: %s needs a window, e.g. window=15m", sort))
			return
		}
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("sort: %q is not one of state, %s, %s, %s", sort, SortTransitions, SortLongestOpen, SortOpenTime))
		return
	}
	perPod := true
	switch q.Get("per_pod") {
	case "", "true":
	case "false":
		perPod = false
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("per_pod: %q is not true or false", q.Get("per_pod")))
		return
	}
	c := s.State.Detailed(ns, wl)
	if !perPod {
		for i := range c.Breakers {
			c.Breakers[i].PerPod = nil
		}
	}
	if hasWindow {
		timelines(c.Breakers, s.State.Timelines(window, c.Time.Time), sort)
	}
	resp := BreakersResponse{V: wire.Version, Time: c.Time, Window: wire.Ms(window), Breakers: c.Breakers}
	for _, t := range c.Breakers {
		resp.Total += t.Pods
		resp.Open += t.Open
		resp.HalfOpen += t.HalfOpen
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *server) optimization(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.State.Optimization())
}

// SuggestionsResponse is GET /api/v1/performance/suggestions.
type SuggestionsResponse struct {
	V           int               `json:"v"`
	Time        wire.Time         `json:"time"`
	Total       int               `json:"total"`
	Suggestions []wire.Suggestion `json:"suggestions"`
}

func (s *server) suggestions(w http.ResponseWriter, r *http.Request) {
	list, total := s.State.Suggestions()
	writeJSON(w, http.StatusOK, SuggestionsResponse{V: wire.Version, Time: wire.NewTime(s.Now()), Total: total, Suggestions: list})
}

// AgentsResponse is GET /api/v1/agents.
type AgentsResponse struct {
	V         int                `json:"v"`
	Time      wire.Time          `json:"time"`
	Discovery view.Discovery     `json:"discovery"`
	Counts    map[string]int     `json:"counts"`
	Agents    []view.AgentStatus `json:"agents"`
}

func (s *server) agents(w http.ResponseWriter, r *http.Request) {
	ns, wl, err := scopeParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	state := r.URL.Query().Get("state")
	switch state {
	case "", view.AgentConnecting, view.AgentConnected, view.AgentUnavailable, view.AgentMissing, view.AgentAbsent:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("state: %q is not one of connecting, connected, unavailable, missing, absent", state))
		return
	}
	resp := AgentsResponse{V: wire.Version, Time: wire.NewTime(s.Now()), Discovery: s.State.View().Discovery,
		Counts: map[string]int{view.AgentConnecting: 0, view.AgentConnected: 0, view.AgentUnavailable: 0, view.AgentMissing: 0, view.AgentAbsent: 0},
		Agents: []view.AgentStatus{}}
	for _, a := range s.State.Agents() {
		resp.Counts[a.State]++
		if (ns == "" || a.Namespace == ns) && (wl == "" || merge.WorkloadOf(a) == wl) && (state == "" || a.State == state) {
			resp.Agents = append(resp.Agents, a)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// AlertsResponse is GET /api/v1/alerts.
type AlertsResponse struct {
	V        int          `json:"v"`
	Time     wire.Time    `json:"time"`
	Firing   []wire.Alert `json:"firing"`
	Resolved []wire.Alert `json:"resolved"` // most recent first, bounded
	// GroupBy and Groups: with ?group_by=workload|rule, the firing alerts grouped, the
	// worst groups first.
	GroupBy  string         `json:"group_by,omitempty"`
	Groups   []alert.Group  `json:"groups,omitempty"`
	Rules    []RuleInfo     `json:"rules"`
	Delivery alert.Delivery `json:"delivery"`
}

// RuleInfo is one alert rule as configured.
type RuleInfo struct {
	Name      string        `json:"name"`
	Kind      string        `json:"kind"`
	Threshold float64       `json:"threshold,omitempty"`
	ForMs     float64       `json:"for_ms"`
	Severity  wire.Severity `json:"severity,omitempty"`
}

func (s *server) alerts(w http.ResponseWriter, r *http.Request) {
	by := r.URL.Query().Get("group_by")
	if by != "" && by != alert.ByWorkload && by != alert.ByRule {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("group_by: %q is not one of %s, %s", by, alert.ByWorkload, alert.ByRule))
		return
	}
	resp := AlertsResponse{V: wire.Version, Time: wire.NewTime(s.Now()), Firing: s.Alerts.Firing(), Resolved: s.Alerts.Resolved()}
	if by != "" {
		resp.GroupBy, resp.Groups = by, alert.GroupAlerts(resp.Firing, by)
		if resp.Groups == nil {
			resp.Groups = []alert.Group{}
		}
	}
	for _, rule := range s.Alerts.Rules() {
		resp.Rules = append(resp.Rules, RuleInfo{Name: rule.Name, Kind: rule.Kind, Threshold: rule.Threshold, ForMs: wire.Ms(rule.For), Severity: rule.Severity})
	}
	if s.Delivery != nil {
		resp.Delivery = s.Delivery()
	}
	writeJSON(w, http.StatusOK, resp)
}

// DefaultWindow is the history window when none is given.
const DefaultWindow = 5 * time.Minute

func (s *server) history(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	series := q.Get("series")
	if series == "" {
		writeError(w, http.StatusBadRequest, "series: required, e.g. series=cluster:health or series=workload:shop/cart:cpu_cores")
		return
	}
	if _, _, _, err := history.ParseName(series); err != nil {
		writeError(w, http.StatusBadRequest, "series: "+err.Error())
		return
	}
	window, ok, err := s.windowParam(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !ok {
		window = DefaultWindow
	}
	res, ok := s.History.Query(series, window, s.Now())
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("series: nothing recorded for %q", series))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) cleanup(w http.ResponseWriter, r *http.Request) {
	if err := httpx.ObjectOrEmpty(httpx.Body(r)); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	scope := r.URL.Query().Get("scope")
	if scope == "" {
		scope = ScopeAggregator
	}
	if scope != ScopeAggregator && scope != ScopeCluster {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("scope: %q is not one of aggregator, cluster", scope))
		return
	}
	if s.Cleanup == nil {
		writeError(w, http.StatusServiceUnavailable, "memory cleanup is not available")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	writeJSON(w, http.StatusOK, s.Cleanup.Run(ctx, scope))
}
