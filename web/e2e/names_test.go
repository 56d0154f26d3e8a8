package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/internal/browser"
	"github.com/faultline-dev/faultline/internal/names/namestest"
	"github.com/faultline-dev/faultline/internal/testbin"
)

// shownName is a name as the dashboard writes it: byte for byte, but for the text
// direction controls, each written as its code (component.js, shown).
func shownName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r == 0x061c || r == 0x200e || r == 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
			fmt.Fprintf(&b, "[U+%04X]", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Names arrive as the application reported them, from its metrics and from its pushes,
// through the real agent and aggregator to the stream, the API and the text of the
// dashboard in Chromium: an Envoy Gateway cluster keeps its "/", and names holding "%",
// spaces, ":", quotes, non-ASCII text or a right-to-left override, and the longest
// allowed name, are shown whole. Only the direction override is written as its code on
// the page, so that it cannot reverse the text around it (the alerts panel included).
func TestNamesAsReported(t *testing.T) {
	// The application's Envoy sidecar: its clusters' breakers close, until they open.
	envoy := []string{"httproute/shop/checkout/rule/0", "outbound|9080|v2|reviews.shop.svc.cluster.local"}
	var open atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "# TYPE envoy_cluster_circuit_breakers_default_rq_open gauge")
		for _, n := range envoy {
			fmt.Fprintf(w, "envoy_cluster_circuit_breakers_default_rq_open{envoy_cluster_name=%q} %d\n", n, open.Load())
		}
	}))
	defer app.Close()

	a := startAgent(t, "shop", "cart", "cart-7d4f9-x2kzq", "--prometheus-url", app.URL, "--prometheus-interval", "200ms")
	agg := newAggregator(t, "--agents="+a.api)
	watch := watchStream(t, agg.URL())
	testbin.Eventually(t, 15*time.Second, func() error {
		var ar api.AgentsResponse
		if err := testbin.GetJSON(agg.URL()+"/api/v1/agents?state=connected", &ar); err != nil || len(ar.Agents) != 1 {
			return fmt.Errorf("agent not connected yet: %v", err)
		}
		return nil
	})
	open.Store(1)
	pushed := namestest.Hostile()
	for _, name := range pushed {
		a.put(t, url.PathEscape(name), `{"state":"open","failure_rate":50}`)
	}
	all := append(slices.Clone(envoy), pushed...)

	// The stream's circuit-breaker events.
	testbin.Eventually(t, 15*time.Second, func() error {
		watch.mu.Lock()
		defer watch.mu.Unlock()
		seen := map[string]bool{}
		for _, e := range watch.breakers {
			if e.Transition.To != "open" {
				continue
			}
			if e.Transition.Breaker.Name != e.Tile.Name {
				return fmt.Errorf("event for %q carries the tile of %q", e.Transition.Breaker.Name, e.Tile.Name)
			}
			seen[e.Transition.Breaker.Name] = true
		}
		for _, n := range all {
			if !seen[n] {
				return fmt.Errorf("no circuit-breaker event for %q", n)
			}
		}
		return nil
	})
	// The API.
	var br api.BreakersResponse
	if err := testbin.GetJSON(agg.URL()+"/api/v1/fault-tolerance/circuit-breakers", &br); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tile := range br.Breakers {
		got = append(got, tile.Name)
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(all)); !slices.Equal(want, got) {
		t.Errorf("tiles in GET /api/v1/fault-tolerance/circuit-breakers: %q, want %q", got, want)
	}

	// The dashboard.
	b := browser.New(t, 1600, 2400)
	b.Navigate(agg.URL() + "/")
	b.WaitFor(20*time.Second, `document.querySelectorAll('.tile:not([hidden]) .tile-name').length === `+itoa(len(all)),
		`document.querySelector('.grid-summary').textContent`)
	onPage := browser.Eval[[]string](b, `[...document.querySelectorAll('.tile:not([hidden]) .tile-name')].map((e) => e.textContent)`)
	for _, n := range all {
		if !slices.Contains(onPage, shownName(n)) {
			t.Errorf("the grid does not show %q as %q; it shows %q", n, shownName(n), onPage)
		}
	}
	// The alerts panel names the breakers too, with nothing that reorders the text. Its
	// groups (workload, then rule) are opened as a user would, to list their alerts.
	b.WaitFor(20*time.Second, `(document.querySelectorAll('#alerts details:not([open])').forEach((d) => { d.open = true; }), `+
		`document.querySelectorAll('#alerts .feed-item').length >= `+itoa(len(all))+`)`,
		`document.querySelector('#alerts').innerText`)
	alerts := browser.Eval[string](b, `document.querySelector('#alerts').textContent`)
	if strings.ContainsAny(alerts, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f") {
		t.Errorf("the alerts panel holds a text direction control: %q", alerts)
	}
	for _, n := range all {
		if !strings.Contains(alerts, shownName(n)) {
			t.Errorf("the alerts panel does not name %q", shownName(n))
		}
	}
}
