package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sony/gobreaker/v2"

	"github.com/faultline-dev/faultline/agent/client"
)

// Server timeouts; calls between the demo's services are bounded by --call-timeout.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// demo is the part of the workload one process runs: the services of its role (every
// service for role all), the breakers in front of every service they call, the
// dependencies' failure patterns and, where the frontend runs, the load generator. Each
// call between services is an HTTP request through a gobreaker breaker reported to the
// faultline agent: over loopback when both services are in this process, to the
// --<name>-url of the service otherwise.
type demo struct {
	cfg      Config
	log      hclog.Logger
	reporter *client.Reporter
	http     *http.Client
	served   []string                             // the services of this process, the ones called first
	main     string                               // the service on --listen: the last of served
	deps     map[string]*dependency               // the dependencies among served
	breakers map[string]*client.Breaker[struct{}] // by the name of the service called
	peers    map[string]string                    // base URL of every service called, by name

	frontURL    string
	loadSkipped atomic.Uint64
}

// dependencyRoute is how the checkout calls a dependency, and why.
type dependencyRoute struct{ method, path, what string }

var dependencyRoutes = map[string]dependencyRoute{
	"payments":  {http.MethodPost, "/charge", "charge the card"},
	"inventory": {http.MethodPost, "/reserve", "reserve the stock"},
	"shipping":  {http.MethodGet, "/quote", "quote shipping"},
}

// newDemo builds the services of cfg.Role, reporting to reporter. The URLs of the
// services called in another process come from cfg; Run adds those it serves itself.
func newDemo(cfg Config, log hclog.Logger, reporter *client.Reporter) *demo {
	d := &demo{
		cfg: cfg, log: log, reporter: reporter,
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
			// A service in another pod is reached through its Kubernetes Service, whose
			// proxy balances connections, not requests: kept-alive connections would pin
			// every caller to one pod of the callee. A connection per call spreads the
			// calls over the callee's pods, as a mesh's per-request balancing would.
			DisableKeepAlives: len(cfg.PeerURLs) > 0,
		}},
		served:   cfg.services(),
		deps:     map[string]*dependency{},
		breakers: map[string]*client.Breaker[struct{}]{},
		peers:    maps.Clone(cfg.PeerURLs),
	}
	d.main = d.served[len(d.served)-1]
	for _, name := range d.served {
		if _, ok := dependencyRoutes[name]; ok {
			d.deps[name] = newDependency(name, cfg.Dependencies[name])
		}
		for _, callee := range calls[name] {
			d.breakers[callee] = d.newBreaker(callee)
		}
	}
	return d
}

// Run serves the demo until ctx is done.
func Run(ctx context.Context, cfg Config, log hclog.Logger) error {
	reporter := client.New(client.Options{AgentURL: cfg.IngestURL})
	defer reporter.Close()
	d := newDemo(cfg, log, reporter)

	var servers []*http.Server
	serve := func(ln net.Listener, h http.Handler) {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout, IdleTimeout: idleTimeout}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				log.Error("serve", "addr", ln.Addr().String(), "error", err)
			}
		}()
	}
	defer func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			_ = srv.Shutdown(shutdown)
		}
	}()

	// Every listener first, so that each service knows where the ones it calls are
	// before it takes a request.
	listeners := map[string]net.Listener{}
	fail := func(err error) error {
		for _, ln := range listeners {
			ln.Close()
		}
		return err
	}
	for _, name := range d.served[:len(d.served)-1] {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(fmt.Errorf("listen on loopback for %s: %w", name, err))
		}
		listeners[name] = ln
		d.peers[name] = "http://" + ln.Addr().String()
	}
	main, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fail(fmt.Errorf("listen (--listen): %w", err))
	}
	listeners[d.main] = main
	_, port, _ := net.SplitHostPort(main.Addr().String())
	d.frontURL = "http://127.0.0.1:" + port

	for _, name := range d.served[:len(d.served)-1] {
		serve(listeners[name], d.serviceHandler(name))
	}
	serve(main, d.mainHandler())
	kv := []any{"role", cfg.Role, "service", d.main, "listen", main.Addr().String(), "agent", cfg.IngestURL}
	for _, name := range serviceNames {
		if u, ok := cfg.PeerURLs[name]; ok {
			kv = append(kv, name+"_url", u)
		}
	}
	if d.main == "frontend" {
		kv = append(kv, "load_rps", cfg.LoadRPS)
	}
	log.Info("demo running", kv...)

	if d.main != "frontend" {
		<-ctx.Done()
		return nil
	}
	d.load(ctx)
	return nil
}

// newBreaker is a gobreaker breaker over a rolling 10 s window that trips when at
// least MinRequests calls were made and FailureRatio percent of them failed.
func (d *demo) newBreaker(name string) *client.Breaker[struct{}] {
	minReq, ratio := uint32(d.cfg.MinRequests), d.cfg.FailureRatio
	return client.NewBreaker[struct{}](d.reporter, gobreaker.Settings{
		Name:         name,
		MaxRequests:  3,
		Interval:     10 * time.Second,
		BucketPeriod: time.Second,
		Timeout:      d.cfg.BreakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= minReq && float64(c.TotalFailures)/float64(c.Requests)*100 >= ratio
		},
		// A caller that went away says nothing about the dependency.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			d.log.Info("breaker changed state", "breaker", name, "from", from.String(), "to", to.String())
		},
	})
}

// call makes one HTTP call through the named breaker; a 5xx answer is a failure.
func (d *demo) call(ctx context.Context, breaker, method, url string) error {
	_, err := d.breakers[breaker].Execute(func() (struct{}, error) {
		ctx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, url, nil)
		if err != nil {
			return struct{}{}, err
		}
		resp, err := d.http.Do(req)
		if err != nil {
			return struct{}{}, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode >= 500 {
			return struct{}{}, fmt.Errorf("%s %s: HTTP %d", method, url, resp.StatusCode)
		}
		return struct{}{}, nil
	})
	return err
}

// serviceHandler serves the routes of the named service alone: what a service of role
// all serves on its loopback listener.
func (d *demo) serviceHandler(name string) http.Handler {
	mux := http.NewServeMux()
	d.serviceRoutes(mux, name, func(h http.Handler) http.Handler { return h })
	return errorsAsJSON(mux)
}

// serviceRoutes adds the routes of the named service to mux, each handler wrapped.
func (d *demo) serviceRoutes(mux *http.ServeMux, name string, wrap func(http.Handler) http.Handler) {
	switch name {
	case "frontend":
		mux.Handle("GET /buy", wrap(http.HandlerFunc(d.buy)))
	case "checkout":
		mux.Handle("POST /checkout", wrap(http.HandlerFunc(d.checkout)))
	default:
		route := dependencyRoutes[name]
		mux.Handle(route.method+" "+route.path, wrap(d.deps[name]))
	}
}

// buy is the frontend: it places an order through the checkout service.
func (d *demo) buy(w http.ResponseWriter, r *http.Request) {
	if err := d.call(r.Context(), "checkout", http.MethodPost, d.peers["checkout"]+"/checkout"); err != nil {
		writeError(w, http.StatusServiceUnavailable, "checkout: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"order": "placed"})
}

// checkout is the checkout service: reserve stock, charge the card, quote shipping.
// Shipping has a fallback (a flat rate); the other two do not.
func (d *demo) checkout(w http.ResponseWriter, r *http.Request) {
	callDep := func(name string) error {
		route := dependencyRoutes[name]
		return d.call(r.Context(), name, route.method, d.peers[name]+route.path)
	}
	if err := callDep("inventory"); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "inventory: " + err.Error()})
		return
	}
	if err := callDep("payments"); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "payments: " + err.Error()})
		return
	}
	shipping := "quoted"
	if err := callDep("shipping"); err != nil {
		shipping = "flat rate (fallback)"
	}
	writeJSON(w, http.StatusOK, map[string]string{"order": "placed", "shipping": shipping})
}

// load drives the frontend at LoadRPS until ctx is done. At most 256 requests are in
// flight; a tick that finds them all busy is skipped (and counted) rather than queued.
func (d *demo) load(ctx context.Context) {
	if d.cfg.LoadRPS == 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / d.cfg.LoadRPS))
	defer t.Stop()
	slots := make(chan struct{}, 256)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			d.loadSkipped.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.frontURL+"/buy", nil)
			if resp, err := d.http.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
}

// dependency is a flaky service: it answers as its pattern says.
type dependency struct {
	name   string
	mu     sync.Mutex
	p      Pattern
	rnd    *rand.Rand
	served atomic.Uint64
	failed atomic.Uint64
}

func newDependency(name string, p Pattern) *dependency {
	return &dependency{name: name, p: p, rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

func (dep *dependency) pattern() Pattern {
	dep.mu.Lock()
	defer dep.mu.Unlock()
	return dep.p
}

func (dep *dependency) setPattern(p Pattern) {
	dep.mu.Lock()
	defer dep.mu.Unlock()
	dep.p = p
}

func (dep *dependency) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	dep.mu.Lock()
	wait, fail := dep.p.outcome(time.Now(), dep.rnd)
	dep.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	dep.served.Add(1)
	if fail {
		dep.failed.Add(1)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": dep.name + " is failing (" + dep.pattern().Kind + ")"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"dependency": dep.name, "status": "ok"})
}

// dependencyView is a dependency in the control API.
type dependencyView struct {
	Name    string  `json:"name"`
	Pattern Pattern `json:"pattern"`
	Spec    string  `json:"spec"` // the same pattern in flag form
	Served  uint64  `json:"served"`
	Failed  uint64  `json:"failed"`
	// Breaker is the state of the checkout's breaker in front of the dependency, when
	// the checkout runs in this process (role all); absent otherwise.
	Breaker string `json:"breaker_state,omitempty"`
}

func (d *demo) view(dep *dependency) dependencyView {
	p := dep.pattern()
	v := dependencyView{
		Name: dep.name, Pattern: p, Spec: p.String(),
		Served: dep.served.Load(), Failed: dep.failed.Load(),
	}
	if cb, ok := d.breakers[dep.name]; ok {
		v.Breaker = cb.State().String()
	}
	return v
}

func (d *demo) views() []dependencyView {
	out := make([]dependencyView, 0, len(d.deps))
	for _, dep := range d.deps {
		out = append(out, d.view(dep))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
