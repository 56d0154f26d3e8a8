package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// demo is the whole workload: a frontend that calls a checkout service, which calls
// three flaky dependencies, each hop over HTTP through a gobreaker breaker reported to
// the faultline agent.
type demo struct {
	cfg      Config
	log      hclog.Logger
	reporter *client.Reporter
	http     *http.Client
	deps     map[string]*dependency
	breakers map[string]*client.Breaker[struct{}]

	checkoutURL string
	frontURL    string
	loadSkipped atomic.Uint64
}

// Run serves the demo until ctx is done.
func Run(ctx context.Context, cfg Config, log hclog.Logger) error {
	d := &demo{
		cfg: cfg, log: log,
		reporter: client.New(client.Options{AgentURL: cfg.IngestURL}),
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
		}},
		deps:     map[string]*dependency{},
		breakers: map[string]*client.Breaker[struct{}]{},
	}
	defer d.reporter.Close()

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
	loopback := func() (net.Listener, string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", fmt.Errorf("listen on loopback: %w", err)
		}
		return ln, "http://" + ln.Addr().String(), nil
	}
	defer func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			_ = srv.Shutdown(shutdown)
		}
	}()

	for _, name := range dependencyNames {
		ln, url, err := loopback()
		if err != nil {
			return err
		}
		dep := newDependency(name, cfg.Dependencies[name])
		dep.url = url
		d.deps[name] = dep
		serve(ln, dep)
		d.breakers[name] = d.newBreaker(name)
	}
	d.breakers["checkout"] = d.newBreaker("checkout")

	ln, url, err := loopback()
	if err != nil {
		return err
	}
	d.checkoutURL = url
	serve(ln, d.checkoutHandler())

	main, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen (--listen): %w", err)
	}
	_, port, _ := net.SplitHostPort(main.Addr().String())
	d.frontURL = "http://127.0.0.1:" + port
	serve(main, d.mainHandler())
	log.Info("demo running", "frontend", d.frontURL+"/buy", "control", d.frontURL+"/control/dependencies",
		"agent", cfg.IngestURL, "load_rps", cfg.LoadRPS)

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

// checkoutHandler is the checkout service: reserve stock, charge the card, quote
// shipping. Shipping has a fallback (a flat rate); the other two do not.
func (d *demo) checkoutHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /checkout", func(w http.ResponseWriter, r *http.Request) {
		if err := d.call(r.Context(), "inventory", http.MethodPost, d.deps["inventory"].url+"/reserve"); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "inventory: " + err.Error()})
			return
		}
		if err := d.call(r.Context(), "payments", http.MethodPost, d.deps["payments"].url+"/charge"); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "payments: " + err.Error()})
			return
		}
		shipping := "quoted"
		if err := d.call(r.Context(), "shipping", http.MethodGet, d.deps["shipping"].url+"/quote"); err != nil {
			shipping = "flat rate (fallback)"
		}
		writeJSON(w, http.StatusOK, map[string]string{"order": "placed", "shipping": shipping})
	})
	return mux
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
	url    string
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
	Breaker string  `json:"breaker_state"` // the checkout's breaker in front of it
}

func (d *demo) view(dep *dependency) dependencyView {
	p := dep.pattern()
	return dependencyView{
		Name: dep.name, Pattern: p, Spec: p.String(),
		Served: dep.served.Load(), Failed: dep.failed.Load(),
		Breaker: d.breakers[dep.name].State().String(),
	}
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
