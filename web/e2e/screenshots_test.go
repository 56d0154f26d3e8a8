package e2e

import (
	"testing"
	"time"

	"github.com/faultline-dev/faultline/internal/browser"
)

// TestScreenshots takes the pictures in docs/screenshots (written with -screenshots) of
// the real system in trouble: the demo's payments dependency is down so its breakers
// open, one of the two cart pods has a half-open breaker, and alerts fire.
func TestScreenshots(t *testing.T) {
	s := startShop(t)
	s.demo.setPattern(t, "payments", `{"pattern":"outage"}`)
	s.cart[1].put(t, "payments", `{"state":"half_open","failure_rate":38,"rate_per_sec":14,"calls":{"succeeded":420,"failed":260}}`)
	ready := `document.querySelector('.tile[data-key^="shop/frontend/"][data-state="open"]') && document.querySelector('.feed-item')`

	for _, size := range []struct{ w, h int }{{1366, 768}, {3840, 2160}} {
		b := browser.New(t, size.w, size.h)
		b.Navigate(s.agg.URL() + "/")
		b.WaitFor(40*time.Second, ready, `document.querySelector('.grid-summary').textContent`)
		// Let the sparklines fill for a while.
		b.WaitFor(30*time.Second, `Number(window.faultlineStats.renders) >= 20`, `window.faultlineStats.renders`)
		screenshot(b, "dashboard-"+itoa(size.w)+"x"+itoa(size.h)+".png", size.w, size.h)
		if size.w == 1366 {
			b.Click(`.tile[data-key^="shop/frontend/"][data-state="open"]`)
			b.WaitFor(10*time.Second, `document.querySelectorAll('#breaker-detail tbody tr[data-pod]').length === 1`, `document.getElementById('breaker-detail').innerText`)
			screenshot(b, "breaker-detail-1366x768.png", 1366, 768)
			b.Do(keyPress("Escape"))
			setScheme(b, "dark")
			b.WaitFor(5*time.Second, `!document.getElementById('breaker-detail').open && matchMedia('(prefers-color-scheme: dark)').matches`, `'dialog still open'`)
			r := browser.Eval[int](b, `window.faultlineStats.renders`)
			b.WaitFor(5*time.Second, `window.faultlineStats.renders > `+itoa(r+1), `window.faultlineStats.renders`)
			screenshot(b, "dashboard-dark-1366x768.png", 1366, 768)
		}
	}

	b := browser.New(t, 1366, 768)
	b.Navigate(s.agg.URL() + "/test-realtime.html")
	b.WaitFor(15*time.Second, `document.querySelectorAll('#event-log tr[data-type="metrics"]').length >= 3`, `document.getElementById('log-summary').textContent`)
	b.Click("#test-polling")
	b.WaitFor(15*time.Second, `document.querySelectorAll('#polling-results tr[data-endpoint]').length === 6`, `document.getElementById('polling-results').innerText`)
	b.Click("#cleanup")
	b.WaitFor(30*time.Second, `document.getElementById('cleanup-status').textContent.startsWith('\u2714')`, `document.getElementById('cleanup-status').textContent`)
	screenshot(b, "test-realtime-1366x768.png", 1366, 768)
}
