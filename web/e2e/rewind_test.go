package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/faultline-dev/faultline/aggregator/api"
	"github.com/faultline-dev/faultline/aggregator/view"
	"github.com/faultline-dev/faultline/internal/browser"
	"github.com/faultline-dev/faultline/internal/testbin"
	"github.com/faultline-dev/faultline/internal/wire"
)

const cartPayments = "shop/cart/payments"

// tileState is the state the grid shows for a tile, and its "k/n pods" line.
func tileState(key string) string {
	return `(() => { const el = document.querySelector('.tile[data-key=` + browser.JSONString(key) + `]'); return el ? el.dataset.state + ' ' + el.querySelector('.tile-pods').textContent : 'no tile'; })()`
}

// focusPage takes the focus off any control, so that a key goes to the page.
func focusPage(b *browser.Browser) {
	browser.Eval[bool](b, `(document.activeElement && document.activeElement.blur(), true)`)
}

func key(b *browser.Browser, k string) {
	b.T().Helper()
	b.Do(keyPress(k))
}

// atParam is the instant the page's URL carries.
const atParam = `(new URL(location.href).searchParams.get('at') || '')`

// openPeriod returns when the aggregator saw cart's payments breaker open and close
// again, from its timeline.
func openPeriod(t *testing.T, base string) (from, to time.Time) {
	t.Helper()
	testbin.Eventually(t, 10*time.Second, func() error {
		var r api.BreakersResponse
		if err := testbin.GetJSON(base+"/api/v1/fault-tolerance/circuit-breakers?per_pod=false&window=10m&namespace=shop&workload=cart", &r); err != nil {
			return err
		}
		for _, b := range r.Breakers {
			if b.Name != "payments" || b.Timeline == nil {
				continue
			}
			for _, p := range b.Timeline.Periods {
				if p.State == wire.StateOpen && !p.Ongoing {
					from, to = p.From.Time, p.To.Time
					return nil
				}
			}
		}
		return fmt.Errorf("no closed open period of payments in the timeline yet")
	})
	return from, to
}

// historySince waits until the aggregator's record reaches back d: the scrubber then
// has instants to step to before what the test does next.
func historySince(t *testing.T, base string, d time.Duration) {
	t.Helper()
	testbin.Eventually(t, d+10*time.Second, func() error {
		var snap struct{}
		return testbin.GetJSON(base+"/api/v1/snapshot?at=-"+d.String(), &snap)
	})
}

// openDetail clicks a tile (where it is now: tiles move as they are sorted) and waits for
// its detail.
func openDetail(b *browser.Browser, key string) {
	b.T().Helper()
	browser.Eval[bool](b, `(document.querySelector('.tile[data-key=`+browser.JSONString(key)+`]').click(), true)`)
	b.WaitFor(5*time.Second, `document.getElementById('breaker-detail').open`, `'detail not open'`)
}

// TestPauseLosesNothing pauses the dashboard, changes a breaker and kills an agent
// meanwhile: what is shown stays as it was while a badge counts the updates received;
// Live shows everything that arrived (the breaker open, its transition in the detail, the
// agent unavailable, the alerts).
func TestPauseLosesNothing(t *testing.T) {
	s := startShop(t)
	b := browser.New(t, 1366, 768)
	b.Navigate(s.agg.URL() + "/")
	b.WaitFor(15*time.Second, tileState(cartPayments)+` === 'closed 0/2 pods open'`, tileState(cartPayments))
	b.WaitFor(10*time.Second, `document.querySelectorAll('#agents-table tbody tr[data-state="connected"]:not([hidden])').length === `+itoa(s.agents), `document.querySelector('#agents').innerText`)

	b.Click("#time-toggle")
	b.WaitFor(3*time.Second, `document.querySelector('#time-state').dataset.mode === 'paused' && document.body.dataset.time === 'paused'`, `document.querySelector('#timebar').innerText`)
	if at := browser.Eval[string](b, atParam); at == "" {
		t.Error("paused, but the URL does not carry the instant")
	}
	s.cart[1].put(t, "payments", `{"state":"open","failure_rate":72,"rate_per_sec":20,"calls":{"succeeded":100,"failed":260}}`)
	s.web.Kill()
	// The stream goes on: the badge counts what arrives, the connection stays live, and
	// what is shown does not move.
	b.WaitFor(10*time.Second, `Number(document.querySelector('#time-badge').dataset.events) >= 3`, `document.querySelector('#time-badge').textContent`)
	if got := browser.Eval[string](b, `document.querySelector('#conn').dataset.state`); got != "live" {
		t.Errorf("connection %q while paused, want live: the stream is still received", got)
	}
	testbin.Eventually(t, 10*time.Second, func() error {
		s.watch.mu.Lock()
		defer s.watch.mu.Unlock()
		for _, e := range s.watch.breakers {
			if e.Workload == "cart" && e.Transition.To == wire.StateOpen {
				return nil
			}
		}
		return fmt.Errorf("the transition has not reached the aggregator's stream")
	})
	time.Sleep(1500 * time.Millisecond) // a frozen view must stay frozen over updates; this is what is tested
	if got := browser.Eval[string](b, tileState(cartPayments)); got != "closed 0/2 pods open" {
		t.Errorf("paused, the tile changed to %q", got)
	}
	if n := browser.Eval[int](b, `document.querySelectorAll('#agents-table tbody tr[data-state="unavailable"]:not([hidden])').length`); n != 0 {
		t.Errorf("paused, %d agents turned unavailable on screen", n)
	}
	if badge := b.Text("#time-badge"); !strings.HasSuffix(badge, "received since paused") {
		t.Errorf("badge says %q", badge)
	}

	focusPage(b)
	key(b, " ") // Space: back to live
	b.WaitFor(3*time.Second, `document.querySelector('#time-state').dataset.mode === 'live' && document.querySelector('#time-badge').hidden`, `document.querySelector('#timebar').innerText`)
	b.WaitFor(2*time.Second, tileState(cartPayments)+` === 'open 1/2 pods open'`, tileState(cartPayments))
	if at := browser.Eval[string](b, atParam); at != "" {
		t.Errorf("live, but the URL still carries at=%s", at)
	}
	b.WaitFor(8*time.Second, `document.querySelector('#agents-table tbody tr[data-state="unavailable"]:not([hidden])')?.cells[1].textContent === 'web-5c8b1-0'`, `document.querySelector('#agents').innerText`)
	b.WaitFor(5*time.Second, `[...document.querySelectorAll('.feed-item[data-state="firing"]')].some((li) => li.dataset.alert === 'breaker-open/shop/cart/payments')`, `document.querySelector('#alerts').innerText`)
	// The transition received while paused is in the breaker's detail.
	openDetail(b, cartPayments)
	b.WaitFor(5*time.Second, `[...document.querySelectorAll('#breaker-detail .transitions li')].some((li) => /cart-7d4f9-1/.test(li.textContent) && /Open/.test(li.textContent))`,
		`document.querySelector('#breaker-detail').innerText`)
}

// TestRewindToABreakerOpening opens and closes a breaker, then rewinds the dashboard with
// the keyboard: [ goes back to the transitions (closed again, then open with 1/2 pods),
// ] forward, the arrow keys step by the second, the URL follows, and the detail's
// timeline shows the open period with what tripped it.
func TestRewindToABreakerOpening(t *testing.T) {
	s := startShop(t)
	b := browser.New(t, 1366, 768)
	b.Navigate(s.agg.URL() + "/")
	b.WaitFor(15*time.Second, tileState(cartPayments)+` === 'closed 0/2 pods open'`, tileState(cartPayments))
	historySince(t, s.agg.URL(), 5*time.Second)
	s.cart[0].put(t, "payments", `{"state":"open","failure_rate":70,"rate_per_sec":20,"calls":{"succeeded":90,"failed":210}}`)
	b.WaitFor(5*time.Second, tileState(cartPayments)+` === 'open 1/2 pods open'`, tileState(cartPayments))
	time.Sleep(2 * time.Second) // the breaker stays open a while, so that the open period is wide on the scrubber
	s.cart[0].put(t, "payments", `{"state":"closed","failure_rate":2,"rate_per_sec":20}`)
	b.WaitFor(5*time.Second, tileState(cartPayments)+` === 'closed 0/2 pods open'`, tileState(cartPayments))
	opened, closed := openPeriod(t, s.agg.URL())

	focusPage(b)
	key(b, " ")
	b.WaitFor(3*time.Second, `document.querySelector('#time-state').dataset.mode === 'paused'`, `document.querySelector('#timebar').innerText`)
	b.WaitFor(10*time.Second, `Number(document.querySelector('#time-scrub').dataset.transitions) >= 2`, `document.querySelector('#time-scrub').dataset.transitions`)

	want := func(at time.Time, state string) {
		t.Helper()
		b.WaitFor(10*time.Second, `document.querySelector('#time-state').dataset.mode === 'at' && !/loading/.test(document.querySelector('#time-state').textContent) && `+
			atParam+` === `+browser.JSONString(at.UTC().Format("2006-01-02T15:04:05.000Z"))+` && `+tileState(cartPayments)+` === `+browser.JSONString(state),
			`document.querySelector('#timebar').innerText + ' | ' + `+atParam+` + ' | ' + `+tileState(cartPayments))
	}
	key(b, "[")
	want(closed, "closed 0/2 pods open")
	// The alert was still firing at the closing instant: alerts resolve with the next
	// broadcast, and the view is what was shown then.
	b.WaitFor(5*time.Second, `[...document.querySelectorAll('.feed-item[data-state="firing"]')].some((li) => li.dataset.alert === 'breaker-open/shop/cart/payments')`, `document.querySelector('#alerts').innerText`)
	key(b, "[")
	want(opened, "open 1/2 pods open")
	if got := b.Text("#time-note"); !strings.Contains(got, "as they were at") {
		t.Errorf("the note does not say the view is as it was: %q", got)
	}
	key(b, "ArrowLeft") // one second before the opening: closed
	want(opened.Add(-time.Second), "closed 0/2 pods open")
	key(b, "]")
	want(opened, "open 1/2 pods open")
	key(b, "]")
	want(closed, "closed 0/2 pods open")

	// On the scrubber the arrow keys step by the second too: one back from the closing
	// is inside the open period. [ and ] work from the scrubber as well.
	b.Do(chromedp.Focus(chromedp.CSS("#time-scrub")))
	key(b, "ArrowLeft")
	closedAt := browser.JSONString(closed.UTC().Format("2006-01-02T15:04:05.000Z"))
	b.WaitFor(10*time.Second, `Date.parse(`+atParam+`) < Date.parse(`+closedAt+`) && !/loading/.test(document.querySelector('#time-state').textContent) && `+tileState(cartPayments)+` === 'open 1/2 pods open'`,
		atParam+` + ' ' + `+tileState(cartPayments)+` + ' scrubber ' + document.querySelector('#time-scrub').value + '/' + document.querySelector('#time-scrub').max`)
	key(b, "]")
	want(closed, "closed 0/2 pods open")

	// The breaker's detail shows the period on its timeline, with what tripped it.
	focusPage(b)
	key(b, " ") // live
	b.WaitFor(3*time.Second, `document.querySelector('#time-state').dataset.mode === 'live'`, `document.querySelector('#timebar').innerText`)
	openDetail(b, cartPayments)
	b.WaitFor(10*time.Second, `document.querySelectorAll('#detail-timeline .tl-seg[data-state="open"]').length === 1`, `document.querySelector('#breaker-detail').innerText`)
	seg := browser.Eval[map[string]string](b, `(() => { const s = document.querySelector('#detail-timeline .tl-seg[data-state="open"]'); return { from: s.dataset.from, to: s.dataset.to, width: s.style.width }; })()`)
	if seg["from"] != opened.UTC().Format(wire.TimeFormat) || seg["to"] != closed.UTC().Format(wire.TimeFormat) || seg["width"] == "" {
		t.Errorf("timeline segment %v, want the open period %s to %s", seg, opened.UTC().Format(wire.TimeFormat), closed.UTC().Format(wire.TimeFormat))
	}
	stats := browser.Eval[map[string]string](b, `Object.fromEntries([...document.querySelectorAll('#breaker-detail .tl-stats > div')].map((d) => [d.dataset.stat, d.querySelector('dd').textContent]))`)
	if stats["Transitions"] != "2" || stats["Mean open \u2192 closed"] == "" || strings.HasPrefix(stats["Mean open \u2192 closed"], "no opening") {
		t.Errorf("timeline figures %v: want 2 transitions and one recovery", stats)
	}
	if got := b.Text("#breaker-detail .tl-opening"); !strings.Contains(got, "cart-7d4f9-0") || !strings.Contains(got, "70.0%") || !strings.Contains(got, "210 failed") {
		t.Errorf("opening %q does not say which pod tripped it at what failure rate and calls", got)
	}
}

// TestSharedAtLink opens a link to an instant at which a breaker was open: the dashboard
// comes up showing that instant, and Live takes it back to now.
func TestSharedAtLink(t *testing.T) {
	s := startShop(t)
	testbin.Eventually(t, 15*time.Second, func() error {
		var c view.Cluster
		if err := testbin.GetJSON(s.agg.URL()+"/api/v1/fault-tolerance/status", &c); err != nil {
			return err
		}
		if len(c.Breakers) < s.tiles {
			return fmt.Errorf("%d tiles", len(c.Breakers))
		}
		return nil
	})
	s.cart[0].put(t, "payments", `{"state":"open","failure_rate":70}`)
	time.Sleep(1500 * time.Millisecond) // open for a while
	s.cart[0].put(t, "payments", `{"state":"closed","failure_rate":1}`)
	opened, _ := openPeriod(t, s.agg.URL())
	at := opened.Add(500 * time.Millisecond).UTC().Format(time.RFC3339Nano)

	b := browser.New(t, 1366, 768)
	b.Navigate(s.agg.URL() + "/?at=" + url.QueryEscape(at))
	b.WaitFor(15*time.Second, `document.querySelector('#time-state').dataset.mode === 'at' && `+tileState(cartPayments)+` === 'open 1/2 pods open'`,
		`document.querySelector('#timebar').innerText + ' | ' + `+tileState(cartPayments))
	if got := b.Text("#time-state"); !strings.HasPrefix(got, "\u25f7 As it was at") {
		t.Errorf("the time state says %q", got)
	}
	if got := browser.Eval[string](b, atParam); got != opened.Add(500*time.Millisecond).UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("URL at=%s, want the instant of the link", got)
	}
	// The connection is live all along; Live shows now.
	b.WaitFor(10*time.Second, `document.querySelector('#conn').dataset.state === 'live'`, `document.querySelector('#conn').textContent`)
	b.Click("#time-toggle")
	b.WaitFor(5*time.Second, `document.querySelector('#time-state').dataset.mode === 'live' && `+tileState(cartPayments)+` === 'closed 0/2 pods open'`, tileState(cartPayments))

	// A link outside the history kept says so, with the range, and the view stays usable.
	b.Navigate(s.agg.URL() + "/?at=" + url.QueryEscape("2001-01-01T00:00:00Z"))
	b.WaitFor(10*time.Second, `/older than what is kept .*; the allowed range is/.test(document.querySelector('#time-note').textContent)`, `document.querySelector('#time-note').textContent`)
}

// TestGroupedAlertsAndFlappingSort checks the alerts feed grouped by workload and rule
// with counts, and the grid's "most flapping" sort.
func TestGroupedAlertsAndFlappingSort(t *testing.T) {
	s := startShop(t)
	b := browser.New(t, 1366, 768)
	b.Navigate(s.agg.URL() + "/")
	b.WaitFor(15*time.Second, tileState(cartPayments)+` === 'closed 0/2 pods open'`, tileState(cartPayments))
	for i := 0; i < 3; i++ {
		s.cart[1].put(t, "inventory", `{"state":"open","failure_rate":80}`)
		s.cart[1].put(t, "inventory", `{"state":"closed","failure_rate":1}`)
	}
	s.cart[0].put(t, "payments", `{"state":"open","failure_rate":70}`)
	s.cart[1].put(t, "payments", `{"state":"open","failure_rate":70}`)
	s.web.put(t, "search", `{"state":"open","failure_rate":90}`)

	groups := `[...document.querySelectorAll('#alerts .feed-group')].map((g) => g.dataset.group + ' ' + g.dataset.severity + ': ' + g.querySelector('.group-text').textContent)`
	b.WaitFor(15*time.Second, `(`+groups+`).join('|').includes('shop/cart') && (`+groups+`).join('|').includes('shop/web')`, `JSON.stringify(`+groups+`)`)
	got := browser.Eval[[]string](b, groups)
	// Worst first: payments is open on every cart pod (critical).
	if len(got) < 2 || !strings.HasPrefix(got[0], "shop/cart critical: shop/cart") || !strings.Contains(got[0], "1 firing (1 critical)") {
		t.Errorf("alert groups %q: want shop/cart first, critical, with its count", got)
	}
	if n := browser.Eval[int](b, `document.querySelectorAll('#alerts .feed-item[data-state="firing"]').length`); n < 2 {
		t.Errorf("%d alerts listed in the groups", n)
	}
	if got := b.Text("#alerts-count"); !strings.Contains(got, "firing") || !strings.Contains(got, "groups") {
		t.Errorf("alerts total %q", got)
	}

	b.Do(chromedp.SetValue(chromedp.ID("grid-sort"), "flapping"))
	browser.Eval[bool](b, `(document.getElementById('grid-sort').dispatchEvent(new Event('change')), true)`)
	b.WaitFor(10*time.Second, `document.querySelector('.tile:not([hidden])[data-index="0"]')?.dataset.key === 'shop/cart/inventory'`,
		`[...document.querySelectorAll('.tile:not([hidden])')].map((t) => t.dataset.index + ' ' + t.dataset.key + ' ' + t.dataset.timeline).join('; ')`)
	if tl := browser.Eval[string](b, `document.querySelector('.tile[data-key="shop/cart/inventory"]').dataset.timeline`); !strings.HasPrefix(tl, "6 transitions") {
		t.Errorf("inventory's timeline %q, want 6 transitions", tl)
	}
}
