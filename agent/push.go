package agent

import (
	"fmt"
	"net/http"

	"github.com/faultline-dev/faultline/agent/ingest"
	"github.com/faultline-dev/faultline/internal/wire"
)

// ingestHandler serves the pod-local write API: what the application pushes.
func (a *agent) ingestHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/breakers/{name}", methods{http.MethodPut: a.putBreaker})
	mux.Handle("/v1/breakers", methods{http.MethodPost: a.postBreakers})
	mux.Handle("/v1/throughput", methods{http.MethodPost: a.postThroughput})
	mux.Handle("/v1/events", methods{http.MethodPost: a.postEvents})
	mux.HandleFunc("/", notFound)
	return a.metrics.instrument("ingest", mux)
}

// pushResult answers the batch endpoints.
type pushResult struct {
	Breakers    int  `json:"breakers"`
	Transitions int  `json:"transitions"`
	Throughput  bool `json:"throughput"`
}

// putBreaker is PUT /v1/breakers/{name}: one breaker's state and counters.
func (a *agent) putBreaker(w http.ResponseWriter, r *http.Request) {
	body, ok := readJSONBody(w, r, ingest.MaxBodyBytes)
	if !ok {
		return
	}
	b, err := ingest.DecodeBreaker(body, r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if _, err := a.store([]wire.Breaker{b}); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	stored, _ := a.reg.Get(b.Name)
	writeJSON(w, http.StatusOK, stored)
}

// postBreakers is POST /v1/breakers: a batch of reports, stored all or none.
func (a *agent) postBreakers(w http.ResponseWriter, r *http.Request) {
	body, ok := readJSONBody(w, r, ingest.MaxBodyBytes)
	if !ok {
		return
	}
	bs, err := ingest.DecodeBreakers(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	n, err := a.store(bs)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, pushResult{Breakers: len(bs), Transitions: n})
}

// postThroughput is POST /v1/throughput: the application's request and error counters.
func (a *agent) postThroughput(w http.ResponseWriter, r *http.Request) {
	body, ok := readJSONBody(w, r, ingest.MaxBodyBytes)
	if !ok {
		return
	}
	t, err := ingest.DecodeThroughput(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	a.app.record(t, a.now())
	writeJSON(w, http.StatusOK, pushResult{Throughput: true})
}

// postEvents is POST /v1/events: breakers and throughput in one request, all or none.
func (a *agent) postEvents(w http.ResponseWriter, r *http.Request) {
	body, ok := readJSONBody(w, r, ingest.MaxBodyBytes)
	if !ok {
		return
	}
	ev, err := ingest.DecodeEvents(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	n, err := a.store(ev.Breakers)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if ev.Throughput != nil {
		a.app.record(*ev.Throughput, a.now())
	}
	writeJSON(w, http.StatusOK, pushResult{Breakers: len(ev.Breakers), Transitions: n, Throughput: ev.Throughput != nil})
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
