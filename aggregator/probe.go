package aggregator

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/faultline-dev/faultline/aggregator/alert"
	"github.com/faultline-dev/faultline/aggregator/broadcast"
	"github.com/faultline-dev/faultline/aggregator/discovery"
	"github.com/faultline-dev/faultline/aggregator/fleet"
	"github.com/faultline-dev/faultline/aggregator/history"
	"github.com/faultline-dev/faultline/aggregator/optimize"
	"github.com/faultline-dev/faultline/aggregator/pool"
	"github.com/faultline-dev/faultline/internal/health"
	"github.com/faultline-dev/faultline/internal/httpx"
	"github.com/faultline-dev/faultline/internal/stream"
	"github.com/faultline-dev/faultline/internal/version"
)

// probeDeps are what the probe listener reports on.
type probeDeps struct {
	disc   discovery.Discoverer
	fleet  *fleet.Fleet
	bc     *broadcast.Broadcaster
	opt    *optimize.Optimizer
	hub    *stream.Hub
	hist   *history.Store
	n      *alert.Notifier
	pool   *pool.Pool
	guard  *httpx.Guard
	health *health.Monitor
}

// probeHandler serves /healthz (the aggregator does its job: the broadcast loop and the
// pool's event loops go round, the agents' reports are applied), /readyz (discovery has
// synced: the aggregator knows which agents exist) and /metrics (the aggregator's own
// metrics), behind the same guard as the API.
func probeHandler(d probeDeps, profiling bool) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&selfCollector{d}, d.fleet.TransitionDelay, d.bc.BroadcastTime)
	mux := httpx.NewMux()
	mux.Get("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}).ServeHTTP)
	mux.Get("/healthz", d.health.Handler(map[string]string{"version": version.Version}))
	mux.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		s := d.disc.Status()
		if !s.Synced {
			msg := "discovery has not synced yet"
			if s.Error != "" {
				msg += ": " + s.Error
			}
			httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": msg})
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready", "mode": s.Mode})
	})
	if profiling {
		mux.Get("/debug/pprof/", pprof.Index)
		mux.Get("/debug/pprof/profile", pprof.Profile)
		mux.Get("/debug/pprof/symbol", pprof.Symbol)
		mux.Get("/debug/pprof/trace", pprof.Trace)
	}
	mux.Fallback("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, "no such endpoint: %s (this port serves /healthz, /readyz, /metrics)", r.URL.Path)
	}))
	return d.guard.Handler("probe", mux)
}

var (
	descAgents       = prometheus.NewDesc("faultline_aggregator_agents", "Agents by state.", []string{"state"}, nil)
	descClients      = prometheus.NewDesc("faultline_aggregator_stream_clients", "Clients connected to the event stream.", nil, nil)
	descDropped      = prometheus.NewDesc("faultline_aggregator_stream_clients_dropped_total", "Stream clients cut off for falling behind.", nil, nil)
	descEventsIn     = prometheus.NewDesc("faultline_aggregator_agent_events_total", "Snapshot, metrics and circuit-breaker events received from agents.", nil, nil)
	descTransitions  = prometheus.NewDesc("faultline_aggregator_breaker_transitions_total", "Breaker transitions received from agents.", nil, nil)
	descBroadcasts   = prometheus.NewDesc("faultline_aggregator_broadcasts_total", "Metrics broadcasts.", nil, nil)
	descBroadcastDur = prometheus.NewDesc("faultline_aggregator_broadcast_duration_seconds", "Duration of the last broadcast (merge, alerts, history, publish).", nil, nil)
	descInterval     = prometheus.NewDesc("faultline_aggregator_broadcast_interval_seconds", "Current broadcast interval (widened under load).", nil, nil)
	descFiring       = prometheus.NewDesc("faultline_aggregator_alerts_firing", "Alerts firing.", nil, nil)
	descSeries       = prometheus.NewDesc("faultline_aggregator_history_series", "History series held.", nil, nil)
	descHistBytes    = prometheus.NewDesc("faultline_aggregator_history_bytes", "Estimated memory held by history.", nil, nil)
	descSynced       = prometheus.NewDesc("faultline_aggregator_discovery_synced", "1 once discovery has sent the full set of agents.", []string{"mode"}, nil)
	descAMSent       = prometheus.NewDesc("faultline_aggregator_alertmanager_sent_total", "Alerts delivered to Alertmanager.", nil, nil)
	descAMFail       = prometheus.NewDesc("faultline_aggregator_alertmanager_failures_total", "Failed deliveries to Alertmanager.", nil, nil)
	descAMPending    = prometheus.NewDesc("faultline_aggregator_alertmanager_pending", "Alerts waiting for delivery.", nil, nil)
	descRefusedHTTP  = prometheus.NewDesc("faultline_aggregator_http_refused_total", "HTTP requests refused by the guard (Host, header size, origin, auth, content type, body size), by listener and reason.", []string{"listener", "reason"}, nil)
	descAgentDrops   = prometheus.NewDesc("faultline_aggregator_agent_streams_dropped_total", "Agent streams dropped for misbehaving (an event over agent-max-event-bytes, bytes that are not Server-Sent Events, an invalid event) or stalling, by reason.", []string{"reason"}, nil)
	descMailDropped  = prometheus.NewDesc("faultline_aggregator_transitions_dropped_total", "Transitions dropped because an agent's reports waited unapplied beyond the inbox's bound (the snapshots after them carry their state).", nil, nil)
)

// selfCollector reads the aggregator's figures at scrape time.
type selfCollector struct{ probeDeps }

func (c *selfCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAgents, descClients, descDropped, descEventsIn, descTransitions, descBroadcasts,
		descBroadcastDur, descInterval, descFiring, descSeries, descHistBytes, descSynced, descAMSent, descAMFail, descAMPending,
		descRefusedHTTP, descAgentDrops, descMailDropped} {
		ch <- d
	}
}

func (c *selfCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for k, n := range c.guard.Refused() {
		counter(descRefusedHTTP, float64(n), k[0], k[1])
	}
	for reason, n := range c.pool.Dropped() {
		counter(descAgentDrops, float64(n), reason)
	}
	counter(descMailDropped, float64(c.fleet.TransitionsDropped()))
	for state, n := range c.fleet.AgentCounts() {
		gauge(descAgents, float64(n), state)
	}
	gauge(descClients, float64(c.hub.Subscribers()))
	counter(descDropped, float64(c.hub.Dropped()))
	events, transitions := c.fleet.Counters()
	counter(descEventsIn, float64(events))
	counter(descTransitions, float64(transitions))
	broadcasts, last := c.bc.Counters()
	counter(descBroadcasts, float64(broadcasts))
	gauge(descBroadcastDur, last.Seconds())
	gauge(descInterval, c.opt.Interval().Seconds())
	gauge(descFiring, float64(len(c.bc.View().Alerts)))
	gauge(descSeries, float64(c.hist.Len()))
	gauge(descHistBytes, float64(c.hist.Bytes()))
	s := c.disc.Status()
	synced := 0.0
	if s.Synced {
		synced = 1
	}
	gauge(descSynced, synced, s.Mode)
	if c.n != nil {
		d := c.n.Status()
		counter(descAMSent, float64(d.Sent))
		counter(descAMFail, float64(d.Failures))
		gauge(descAMPending, float64(d.Pending))
	}
}
