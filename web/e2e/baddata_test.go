package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/internal/browser"
	"github.com/faultline-dev/faultline/web"
)

// badServer serves the real dashboard with an API that answers badly in every way a
// broken or mismatched aggregator could: unreadable events, missing fields, an unknown
// breaker state, errors and non-JSON bodies from the polling endpoints.
func badServer(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/performance/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		now := time.Now().UTC().Format(time.RFC3339)
		good := `{"namespace":"shop","workload":"cart","name":"payments","state":"open","pods":3,"open":2,"half_open":0,"failure_rate":61.5,"rate_per_sec":42,"calls":{"succeeded":1,"failed":2,"rejected":3,"timed_out":0},"since":"` + now + `","stale":false,"sources":["push"]}`
		odd := `{"namespace":"shop","workload":"cart","name":"inventory","state":"exploded","pods":3,"open":0}`
		nameless := `{"namespace":"shop","workload":"cart","state":"closed"}`
		events := []string{
			"id: e-1\nevent: snapshot\ndata: " + `{"v":1,"time":"` + now + `","mode":"static","health":{"score":64,"breakdown":[{"component":"breakers","points":36,"detail":"2 of 3 pods with payments open"}]},"totals":{"agents":3,"agents_connected":3,"cpu_cores":0.5,"memory_bytes":1000000,"requests_per_sec":42,"errors_per_sec":20,"breakers":6,"breakers_open":2},"namespaces":[],"workloads":[],"breakers":[` + good + `,` + odd + `,` + nameless + `],"alerts":[]}` + "\n\n",
			"id: e-2\nevent: metrics\ndata: " + `{"v":1,"time":"` + now + `","totals":{"cpu_cores":0.5},"breakers":"garbage"}` + "\n\n",
			"id: e-3\nevent: alert\ndata: {this is not json\n\n",
			"id: e-4\nevent: agent\ndata: " + `{"v":1,"state":"connected"}` + "\n\n",
		}
		for _, e := range events {
			fmt.Fprint(w, e)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("/api/v1/performance/suggestions", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error":"suggestion engine crashed"}`)
	})
	mux.HandleFunc("/api/v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html>proxy error</html>")
	})
	mux.HandleFunc("/api/v1/performance/optimization-status", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"v":1}`)
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"no such endpoint"}`)
	})
	mux.Handle("/", web.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestBadDataShowsMessages checks that bad data from the server shows a clear message in
// the panel it feeds, while the rest of the page keeps working.
func TestBadDataShowsMessages(t *testing.T) {
	srv := badServer(t)
	b := browser.New(t, 1366, 768)
	b.Allow("status of 500", "status of 404") // the bad server's answers, logged by the browser
	b.Navigate(srv.URL + "/")

	msg := func(panel string) string { return `document.querySelector('#` + panel + ` .panel-msg')` }
	shows := func(panel, text string) string {
		return msg(panel) + ` && !` + msg(panel) + `.hidden && ` + msg(panel) + `.textContent.includes(` + browser.JSONString(text) + `)`
	}
	for _, c := range []struct{ panel, text string }{
		{"breakers", "metrics.breakers is not a list"},
		{"health", "metrics.health is missing"},
		{"alerts", "alert event e-3"},
		{"suggestions", "suggestion engine crashed"},
		{"perf", "broadcast_interval_ms"},
		{"agents", "agent has no key"},
	} {
		b.WaitFor(10*time.Second, shows(c.panel, c.text), msg(c.panel)+`?.textContent`)
	}
	// The good data still shows: the score, the open tile, and the tile whose state the
	// dashboard does not know, marked as unknown rather than dropped or shown as closed.
	b.WaitFor(5*time.Second, `document.querySelector('.score-value').textContent === '64'`, `document.querySelector('.score-value').textContent`)
	open := `document.querySelector('.tile[data-key="shop/cart/payments"]')`
	b.WaitFor(5*time.Second, open+` && `+open+`.dataset.state === 'open'`, `document.querySelector('#breakers').innerText`)
	if got := b.Text(`.tile[data-key="shop/cart/payments"] .tile-pods`); got != "2/3 pods open" {
		t.Errorf("open tile says %q, want 2/3 pods open", got)
	}
	odd := b.Text(`.tile[data-key="shop/cart/inventory"]`)
	if !strings.Contains(odd, "Unknown") || !strings.Contains(odd, "state “exploded”") {
		t.Errorf("tile with an unknown state shows %q, want it marked unknown and naming the state", odd)
	}
	if got := b.Text(`#breakers .panel-msg`); !strings.Contains(got, "Showing the last good data") {
		t.Errorf("breaker panel message %q does not say the last good data is shown", got)
	}
	if got := b.Text(`#conn .conn-label`); got != "Live" {
		t.Errorf("connection shows %q, want Live: bad data is not a broken connection", got)
	}
	screenshot(b, "bad-data-1366x768.png", 1366, 768)
}
