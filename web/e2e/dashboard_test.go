package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/faultline-dev/faultline/internal/browser"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

// shop is the system under test: a real aggregator serving real agents. The demo runs
// as shop/frontend with its own agent (breakers checkout, payments, inventory,
// shipping); two agents are pods of shop/cart whose application pushes the breakers
// payments and inventory; one is shop/web with the breaker search.
type shop struct {
	agg    *aggregator
	front  *agentProc
	demo   *demoProc
	cart   []*agentProc
	web    *agentProc
	watch  *streamWatch
	agents int
	tiles  int
}

func startShop(t *testing.T) *shop {
	t.Helper()
	s := &shop{}
	for i := 0; i < 2; i++ {
		a := startAgent(t, "shop", "cart", fmt.Sprintf("cart-7d4f9-%d", i))
		a.put(t, "payments", `{"state":"closed","failure_rate":1.5,"rate_per_sec":20,"calls":{"succeeded":400,"failed":6}}`)
		a.put(t, "inventory", `{"state":"closed","failure_rate":0,"rate_per_sec":5,"calls":{"succeeded":100}}`)
		s.cart = append(s.cart, a)
	}
	s.web = startAgent(t, "shop", "web", "web-5c8b1-0")
	s.web.put(t, "search", `{"state":"closed","failure_rate":0.5,"rate_per_sec":12,"calls":{"succeeded":300,"failed":1}}`)
	s.front = startAgent(t, "shop", "frontend", "frontend-6c7d8-0")
	s.demo = startDemo(t, s.front)
	s.agents, s.tiles = 4, 7
	urls := []string{s.cart[0].api, s.cart[1].api, s.web.api, s.front.api}
	s.agg = newAggregator(t, "--agents="+strings.Join(urls, ","))
	s.watch = watchStream(t, s.agg.URL())
	return s
}

// tileSel selects the grid tile of a breaker.
func tileSel(ns, wl, name string) string {
	return `document.querySelector('.tile[data-key=` + browser.JSONString(ns+"/"+wl+"/"+name) + `]')`
}

// TestDashboardLive checks that the dashboard connects and shows live data from real
// agents: the connection is live, every panel has data, and the grid shows the breakers
// the agents report, merged per workload.
func TestDashboardLive(t *testing.T) {
	s := startShop(t)
	b := browser.New(t, 1366, 768)
	b.Navigate(s.agg.URL() + "/")

	b.WaitFor(15*time.Second, `document.querySelector('#conn').dataset.state === 'live'`, `document.querySelector('#conn').textContent`)
	b.WaitFor(10*time.Second, `/^\d+$/.test(document.querySelector('.score-value').textContent)`, `document.querySelector('#health').innerText`)
	b.WaitFor(10*time.Second, `document.querySelectorAll('#agents-table tbody tr[data-state="connected"]:not([hidden])').length === `+itoa(s.agents), `document.querySelector('#agents').innerText`)
	pay := tileSel("shop", "cart", "payments")
	b.WaitFor(10*time.Second, pay+` && `+pay+`.dataset.state === 'closed'`, `document.querySelector('#breakers').innerText`)
	if got := b.Text(`.tile[data-key="shop/cart/payments"] .tile-pods`); got != "0/2 pods open" {
		t.Errorf("payments tile says %q, want 0/2 pods open (two cart pods report it)", got)
	}
	for _, name := range []string{"checkout", "payments", "inventory", "shipping"} {
		b.WaitFor(10*time.Second, tileSel("shop", "frontend", name), `document.querySelector('.grid-summary').textContent`)
	}
	b.WaitFor(10*time.Second, tileSel("shop", "web", "search"), `document.querySelector('.grid-summary').textContent`)
	// Live data keeps arriving: the CPU figure is a number and the page re-renders.
	b.WaitFor(10*time.Second, `document.querySelector('[data-metric="cpu"] .metric-value span').textContent !== '\u2014'`, `document.querySelector('#perf').innerText`)
	r1 := browser.Eval[int](b, `window.faultlineStats.renders`)
	b.WaitFor(5*time.Second, `window.faultlineStats.renders !== `+itoa(r1), `window.faultlineStats.renders`)
	if got := b.Text(`.grid-summary`); !strings.HasPrefix(got, itoa(s.tiles)+" breakers") {
		t.Errorf("grid summary %q, want %d breakers", got, s.tiles)
	}
	// The demo's traffic shows as throughput.
	b.WaitFor(10*time.Second, `parseFloat(document.querySelector('[data-metric="rps"] .metric-value span').textContent) > 0`, `document.querySelector('#perf').innerText`)
}

// TestBreakerTileOpensWithin1s puts the demo's payments dependency into an outage, so
// that a real breaker trips (payments, or checkout in front of it, whichever trips
// first), and measures how long the grid takes to show that tile open from the moment the
// breaker opened in the demo (the transition time its agent recorded).
func TestBreakerTileOpensWithin1s(t *testing.T) {
	s := startShop(t)
	b := browser.New(t, 1366, 768)
	b.Navigate(s.agg.URL() + "/")
	b.WaitFor(15*time.Second, tileSel("shop", "frontend", "payments")+`?.dataset.state === 'closed' && `+tileSel("shop", "frontend", "checkout")+`?.dataset.state === 'closed'`,
		`document.querySelector('.grid-summary').textContent`)

	// Record, in the page, the moment each tile first shows open.
	browser.Eval[bool](b, `(() => {
		window.__openedAt = {};
		const check = () => {
			for (const el of document.querySelectorAll('.tile[data-state="open"]')) {
				if (!window.__openedAt[el.dataset.key]) window.__openedAt[el.dataset.key] = Date.now();
			}
		};
		new MutationObserver(check).observe(document.getElementById('breaker-grid'), { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state', 'data-key'] });
		return true;
	})()`)
	s.demo.setPattern(t, "payments", `{"pattern":"outage"}`)

	var first wire.Transition
	testbin.Eventually(t, 30*time.Second, func() error {
		s.watch.mu.Lock()
		defer s.watch.mu.Unlock()
		for _, e := range s.watch.breakers {
			if e.Namespace == "shop" && e.Workload == "frontend" && e.Transition.To == wire.StateOpen {
				first = e.Transition
				return nil
			}
		}
		return fmt.Errorf("no breaker of the demo opened on the aggregator stream")
	})
	key := "shop/frontend/" + first.Breaker.Name
	b.WaitFor(5*time.Second, `window.__openedAt[`+browser.JSONString(key)+`] > 0`, `JSON.stringify(window.__openedAt)`)
	openedAt := time.UnixMilli(browser.Eval[int64](b, `window.__openedAt[`+browser.JSONString(key)+`]`))
	latency := openedAt.Sub(first.Time.Time)
	t.Logf("breaker %s opened in the demo at %s, tile open in the browser %v later", first.Breaker.Name, first.Time.Format(time.RFC3339Nano), latency)
	if latency > time.Second {
		t.Errorf("tile turned open %v after the transition, want within 1s", latency)
	}
	sel := `.tile[data-key="` + key + `"]`
	if got := b.Text(sel + ` .tile-pods`); got != "1/1 pods open" {
		t.Errorf("open tile says %q, want 1/1 pods open", got)
	}
	if got := b.Text(sel + ` .badge`); !strings.Contains(got, "Open") {
		t.Errorf("open tile badge says %q: the state must be in words, not only colour", got)
	}
	// The tile changed where it stood; the next metrics event (one a second) sorts open
	// tiles first and the summary counts them.
	b.WaitFor(3*time.Second, `document.querySelector('.tile:not([hidden])[data-index="0"]').dataset.state === 'open'`, `document.querySelector('.tile:not([hidden])[data-index="0"]').dataset.key`)
	b.WaitFor(3*time.Second, `/ open/.test(document.querySelector('.grid-summary').textContent)`, `document.querySelector('.grid-summary').textContent`)
	// Tiles are moved rather than rewritten when the order changes, so their elements are
	// not in the order shown: the listbox owns them in that order, for screen readers.
	order := browser.Eval[[]string](b, `(document.getElementById('breaker-grid').getAttribute('aria-owns') || '').split(' ').map((id) => {
		const el = document.getElementById(id);
		return el ? el.dataset.index + ' ' + el.dataset.key : 'missing ' + id;
	})`)
	if len(order) != s.tiles {
		t.Errorf("the listbox owns %q, want its %d tiles", order, s.tiles)
	}
	for i, o := range order {
		if !strings.HasPrefix(o, itoa(i)+" ") {
			t.Errorf("the listbox's option %d is %q, want the tile shown at index %d", i, o, i)
		}
	}
}

// TestBreakerDetailKeyboard drives the grid with the keyboard only: Tab into the grid,
// arrows to a tile, Enter for the per-pod detail, Escape to close it.
func TestBreakerDetailKeyboard(t *testing.T) {
	s := startShop(t)
	s.cart[1].put(t, "payments", `{"state":"open","failure_rate":70,"rate_per_sec":20,"calls":{"succeeded":100,"failed":200}}`)
	b := browser.New(t, 1366, 768)
	b.Navigate(s.agg.URL() + "/")
	pay := tileSel("shop", "cart", "payments")
	b.WaitFor(15*time.Second, pay+` && `+pay+`.dataset.state === 'open'`, `document.querySelector('#breakers').innerText`)

	// Tab from the page start until the grid has focus: it must be reachable.
	browser.Eval[bool](b, `(document.activeElement && document.activeElement.blur(), true)`)
	reached := false
	for i := 0; i < 40 && !reached; i++ {
		b.Do(keyPress("Tab"))
		reached = browser.Eval[bool](b, `document.activeElement && document.activeElement.id === 'breaker-grid'`)
	}
	if !reached {
		t.Fatalf("the breaker grid is not reachable with Tab; focus is on %s", browser.Eval[string](b, `document.activeElement ? document.activeElement.outerHTML.slice(0, 120) : 'nothing'`))
	}
	// Focus selects the first tile (the open one); ArrowRight moves to the next.
	b.WaitFor(2*time.Second, `document.querySelector('.tile.active')?.dataset.key === 'shop/cart/payments'`, `document.querySelector('.tile.active')?.dataset.key`)
	b.Do(keyPress("ArrowRight"))
	b.WaitFor(2*time.Second, `document.querySelector('.tile.active')?.dataset.index === '1'`, `document.querySelector('.tile.active')?.dataset.index`)
	if got := browser.Eval[string](b, `document.getElementById('breaker-grid').getAttribute('aria-activedescendant')`); got != "bt-1" {
		t.Errorf("aria-activedescendant = %q, want bt-1", got)
	}
	b.Do(keyPress("ArrowLeft"), keyPress("Enter"))
	b.WaitFor(5*time.Second, `document.getElementById('breaker-detail').open`, `document.getElementById('breaker-detail').outerHTML.slice(0, 200)`)
	// The per-pod table lists both cart pods with their own state.
	b.WaitFor(10*time.Second, `document.querySelectorAll('#breaker-detail tbody tr[data-pod]').length === 2`, `document.querySelector('#breaker-detail').innerText`)
	got := browser.Eval[map[string]string](b, `Object.fromEntries([...document.querySelectorAll('#breaker-detail tbody tr[data-pod]')].map((r) => [r.dataset.pod, r.dataset.state]))`)
	want := map[string]string{"cart-7d4f9-0": "closed", "cart-7d4f9-1": "open"}
	for pod, st := range want {
		if got[pod] != st {
			t.Errorf("detail: pod %s state %q, want %q (all: %v)", pod, got[pod], st, got)
		}
	}
	b.Do(keyPress("Escape"))
	b.WaitFor(2*time.Second, `!document.getElementById('breaker-detail').open`, `'still open'`)
	// Focus returns to the grid, so the keyboard user carries on where they were.
	b.WaitFor(2*time.Second, `document.activeElement && document.activeElement.id === 'breaker-grid'`, `document.activeElement?.id`)
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestAgentsAlertsSuggestions checks the lower panels with real events: a cart agent is
// killed (its row turns unavailable with the reason, and an alert fires), and a breaker
// that flaps brings a suggestion with its evidence.
func TestAgentsAlertsSuggestions(t *testing.T) {
	s := startShop(t)
	b := browser.New(t, 1366, 768)
	b.Navigate(s.agg.URL() + "/")
	b.WaitFor(15*time.Second, `document.querySelectorAll('#agents-table tbody tr[data-state="connected"]:not([hidden])').length === `+itoa(s.agents), `document.querySelector('#agents').innerText`)

	// Once every breaker is known, nothing may move while data streams in: panels keep
	// their place and size (a new breaker row is a change of content, not an update).
	b.WaitFor(15*time.Second, `document.querySelectorAll('.tile:not([hidden])').length === `+itoa(s.tiles), `document.querySelector('.grid-summary').textContent`)
	rects := `JSON.stringify([...document.querySelectorAll('main > .panel')].map((p) => { const r = p.getBoundingClientRect(); return [p.id, r.x, r.y, r.width, r.height]; }))`
	before := browser.Eval[string](b, rects)
	r0 := browser.Eval[int](b, `window.faultlineStats.renders`)
	b.WaitFor(10*time.Second, `window.faultlineStats.renders >= `+itoa(r0+4), `window.faultlineStats.renders`)
	if after := browser.Eval[string](b, rects); after != before {
		t.Errorf("panels moved while data streamed in:\nbefore %s\nafter  %s", before, after)
	}

	// A flapping breaker: six transitions on one cart pod.
	for i := 0; i < 3; i++ {
		s.cart[0].put(t, "inventory", `{"state":"open","failure_rate":80}`)
		s.cart[0].put(t, "inventory", `{"state":"closed","failure_rate":1}`)
	}
	s.cart[1].Kill()

	row := `document.querySelector('#agents-table tr[data-state="unavailable"]')`
	b.WaitFor(15*time.Second, row, `document.querySelector('#agents').innerText`)
	if got := browser.Eval[string](b, row+`.cells[0].textContent`); !strings.HasPrefix(got, "\u2716 unavailable: ") || len(got) < len("\u2716 unavailable: x") {
		t.Errorf("unavailable agent's state cell %q does not give the reason", got)
	}
	if got := browser.Eval[string](b, row+`.cells[1].textContent`); got != "cart-7d4f9-1" {
		t.Errorf("unavailable row is for pod %q, want cart-7d4f9-1", got)
	}
	// Problems sort first.
	if got := browser.Eval[string](b, `document.querySelector('#agents-table tbody tr[data-key]:not([hidden])').dataset.state`); got != "unavailable" {
		t.Errorf("first agent row is %q, want the unavailable one first", got)
	}
	b.WaitFor(15*time.Second, `[...document.querySelectorAll('.feed-item[data-state="firing"]')].some((li) => /cart-7d4f9-1|unavailable/.test(li.textContent))`, `document.querySelector('#alerts').innerText`)

	sug := `[...document.querySelectorAll('.suggestion')].find((li) => li.textContent.includes('flapping'))`
	b.WaitFor(40*time.Second, sug, `document.querySelector('#suggestions').innerText`)
	b.Do(chromedp.Click(chromedp.CSS(`.suggestion details summary`), chromedp.NodeVisible))
	evidence := browser.Eval[string](b, sug+`.querySelector('.evidence').textContent`)
	if !strings.Contains(evidence, "transitions in the last") {
		t.Errorf("flapping suggestion's evidence %q", evidence)
	}
	if got := browser.Eval[string](b, sug+`.querySelector('.action')?.textContent || ''`); !strings.HasPrefix(got, "Action: ") {
		t.Errorf("suggestion action %q", got)
	}
}
