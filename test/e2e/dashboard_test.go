//go:build e2e

package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultline-dev/faultline/internal/browser"
)

// TestDashboardInChromium: the dashboard, opened in Chromium through a port-forward to
// the aggregator (as a user opens it), goes live, lists every demo agent as connected,
// shows a tile for each breaker of the demo's workloads, and turns the checkout's
// payments tile open, and the health score down, when the payments service goes down.
// FAULTLINE_E2E_SCREENSHOT=<file.png> saves what it shows at the end.
func TestDashboardInChromium(t *testing.T) {
	c := connect(t)
	demo := c.demoPods(t)
	c.connectedAgents(t, c.timeout, names(demo))
	b := c.openDashboard(t)
	tile := func(workload, breaker string) string {
		key := browser.JSONString(c.namespace + "/" + c.release + "-demo-" + workload + "/" + breaker)
		return `document.querySelector('.tile[data-key=` + key + `]')`
	}
	b.WaitFor(30*time.Second, `document.querySelectorAll('#agents-table tbody tr[data-state="connected"]:not([hidden])').length === `+strconv.Itoa(len(demo)),
		`document.querySelector('#agents').innerText`)
	for workload, breakers := range map[string][]string{"frontend": {"checkout"}, "checkout": {"payments", "inventory", "shipping"}} {
		for _, name := range breakers {
			b.WaitFor(30*time.Second, tile(workload, name), `document.querySelector('#breakers').innerText`)
		}
	}

	c.setPattern(t, "payments", "outage")
	pay := tile("checkout", "payments")
	b.WaitFor(time.Minute, pay+`?.dataset.state === 'open'`, `document.querySelector('#breakers').innerText`)
	if text := browser.Eval[string](b, pay+`.innerText`); !strings.Contains(strings.ToLower(text), "open") {
		t.Errorf("the open payments tile reads %q: no word says it is open", text)
	}
	// The health score and its counts follow with the next metrics event.
	b.WaitFor(5*time.Second, `Number(document.querySelector('.score-value').textContent) < 100`, `document.querySelector('#health').innerText`)
	if out := os.Getenv("FAULTLINE_E2E_SCREENSHOT"); out != "" {
		if err := os.WriteFile(out, b.Screenshot(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// openDashboard opens the dashboard in Chromium through a port-forward to the aggregator,
// as a user opens it, and waits until it is live.
func (c *cluster) openDashboard(t *testing.T) *browser.Browser {
	t.Helper()
	aggregator := c.readyPods(t, c.selector("aggregator"), c.timeout)[0]
	base := c.forward(t, aggregator.Name, 3001)
	b := browser.New(t, 1366, 900)
	b.Navigate(base + "/")
	b.WaitFor(30*time.Second, `document.querySelector('#conn').dataset.state === 'live'`, `document.querySelector('#conn').textContent`)
	return b
}

// showsAgentsConnected waits until the dashboard's agents table has a connected row for
// every agent key in keys.
func showsAgentsConnected(b *browser.Browser, keys []string) {
	b.T().Helper()
	for _, key := range keys {
		b.WaitFor(30*time.Second, `document.querySelector('#agents-table tbody tr[data-state="connected"][data-key=`+browser.JSONString(key)+`]')`,
			`document.querySelector('#agents').innerText`)
	}
}
