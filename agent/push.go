package agent

import (
	"fmt"
	"net/http"

	"github.com/faultline-dev/faultline/agent/ingest"
	"github.com/faultline-dev/faultline/internal/httpx"
	"github.com/faultline-dev/faultline/internal/wire"
)

// ingestHandler serves the pod-local write API: what the application pushes. Every
// route is a mutation: from loopback (the listener is bound to it by default) or with
// the token.
func (a *agent) ingestHandler() http.Handler {
	return a.metrics.instrument("ingest", a.guard.Handler("ingest", a.ingestRoutes()))
}

func (a *agent) ingestRoutes() *httpx.Mux {
	mux := httpx.NewMux()
	post := func(h http.HandlerFunc) map[string]http.HandlerFunc {
		return map[string]http.HandlerFunc{http.MethodPost: h}
	}
	mux.Mutate(a.guard, "/v1/breakers/{name}", map[string]http.HandlerFunc{http.MethodPut: a.putBreaker})
	mux.Mutate(a.guard, "/v1/breakers", post(a.postBreakers))
	mux.Mutate(a.guard, "/v1/throughput", post(a.postThroughput))
	mux.Mutate(a.guard, "/v1/events", post(a.postEvents))
	return mux
}

// pushResult answers the batch endpoints.
type pushResult struct {
	Breakers    int  `json:"breakers"`
	Transitions int  `json:"transitions"`
	Throughput  bool `json:"throughput"`
}

// putBreaker is PUT /v1/breakers/{name}: one breaker's state and counters.
func (a *agent) putBreaker(w http.ResponseWriter, r *http.Request) {
	body := httpx.Body(r)
	b, err := ingest.DecodeBreaker(body, r.PathValue("name"))
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if _, err := a.store([]wire.Breaker{b}); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	stored, _ := a.reg.Get(b.Name)
	httpx.WriteJSON(w, http.StatusOK, stored)
}

// postBreakers is POST /v1/breakers: a batch of reports, stored all or none.
func (a *agent) postBreakers(w http.ResponseWriter, r *http.Request) {
	body := httpx.Body(r)
	bs, err := ingest.DecodeBreakers(body)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	n, err := a.store(bs)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, pushResult{Breakers: len(bs), Transitions: n})
}

// postThroughput is POST /v1/throughput: the application's request and error counters.
func (a *agent) postThroughput(w http.ResponseWriter, r *http.Request) {
	body := httpx.Body(r)
	t, err := ingest.DecodeThroughput(body)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	a.app.record(t, a.now())
	httpx.WriteJSON(w, http.StatusOK, pushResult{Throughput: true})
}

// postEvents is POST /v1/events: breakers and throughput in one request, all or none.
func (a *agent) postEvents(w http.ResponseWriter, r *http.Request) {
	body := httpx.Body(r)
	ev, err := ingest.DecodeEvents(body)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	n, err := a.store(ev.Breakers)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if ev.Throughput != nil {
		a.app.record(*ev.Throughput, a.now())
	}
	httpx.WriteJSON(w, http.StatusOK, pushResult{Breakers: len(ev.Breakers), Transitions: n, Throughput: ev.Throughput != nil})
}

// store records validated reports and returns how many transitions they caused. It
// refuses the whole batch when it would take a source over max-breakers-per-source or
// the agent over max-breakers; refused breakers are counted.
func (a *agent) store(bs []wire.Breaker) (int, error) {
	a.pushMu.Lock()
	defer a.pushMu.Unlock()
	added := map[string]int{}
	total := 0
	for _, b := range bs {
		if _, known := a.reg.Get(b.Name); !known {
			added[b.Source]++
			total++
		}
	}
	refuse := func(err error) (int, error) {
		for src, n := range added {
			a.reg.CountRefused(src, n)
		}
		return 0, err
	}
	for src, n := range added {
		if have := a.reg.Count(src); have+n > a.cfg.MaxBreakersPerSource {
			return refuse(fmt.Errorf("name: %d new breakers from source %q would exceed max-breakers-per-source (%d; %d held)", n, src, a.cfg.MaxBreakersPerSource, have))
		}
	}
	if free := a.reg.Free(); free >= 0 && total > free {
		return refuse(fmt.Errorf("name: %d new breakers would exceed max-breakers (%d; %d held)", total, a.cfg.MaxBreakers, a.cfg.MaxBreakers-free))
	}
	transitions := 0
	for _, b := range bs {
		tr, err := a.reg.Upsert(b)
		if err != nil { // cannot happen: ingest checked every report
			return transitions, fmt.Errorf("%s: %w", b.Name, err)
		}
		if tr != nil {
			transitions++
		}
	}
	return transitions, nil
}
