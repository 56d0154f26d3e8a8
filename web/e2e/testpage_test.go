package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/faultline-dev/faultline/internal/browser"
	"github.com/faultline-dev/faultline/internal/wire"
)

// recordStates makes the page keep every connection label it shows, in order, in
// window.__states, so a test sees short-lived states too.
func recordStates(b *browser.Browser) {
	b.T().Helper()
	browser.Eval[bool](b, `(() => {
		window.__states = [];
		const el = document.getElementById('conn');
		const note = () => {
			const s = el.querySelector('.conn-label').textContent;
			if (window.__states[window.__states.length - 1] !== s) window.__states.push(s);
		};
		note();
		new MutationObserver(note).observe(el, { subtree: true, childList: true, characterData: true });
		return true;
	})()`)
}

// logEntry is one row of the test page's event log.
type logEntry struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Kind string `json:"kind"`
}

// eventLog returns the test page's log, oldest first, without the status rows.
func eventLog(b *browser.Browser) []logEntry {
	b.T().Helper()
	return browser.Eval[[]logEntry](b, `[...document.querySelectorAll('#event-log tbody tr')].reverse()
		.filter((r) => r.dataset.kind !== 'status')
		.map((r) => ({ id: r.dataset.id || '', type: r.dataset.type || '', kind: r.dataset.kind }))`)
}

func splitID(t testing.TB, id string) (string, uint64) {
	t.Helper()
	i := strings.LastIndex(id, "-")
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if i <= 0 || err != nil {
		t.Fatalf("event id %q is not <epoch>-<seq>", id)
	}
	return id[:i], seq
}

// checkContiguous fails unless, within each epoch, every event after the first carries
// the next sequence number, and each new epoch starts with a snapshot.
func checkContiguous(t testing.TB, log []logEntry) {
	t.Helper()
	var epoch string
	var seq uint64
	for i, e := range log {
		if e.Kind != "event" {
			t.Errorf("log row %d (%s %s) is marked %s", i, e.Type, e.ID, e.Kind)
		}
		ep, s := splitID(t, e.ID)
		switch {
		case e.Type == wire.EventSnapshot:
			// A snapshot stands for the state up to its id: the next event follows it.
		case ep != epoch:
			t.Errorf("log row %d: %s %s starts epoch %s without a snapshot", i, e.Type, e.ID, ep)
		case s != seq+1:
			t.Errorf("log row %d: %s %s follows %s-%d: %d event(s) missing", i, e.Type, e.ID, epoch, seq, int64(s)-int64(seq)-1)
		}
		epoch, seq = ep, s
	}
}

// waitServerEvents waits until the aggregator has published n events after lastID (read
// with a resuming stream client, which consumes nothing).
func waitServerEvents(t testing.TB, base, lastID string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/performance/stream", nil)
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := 0
	for ev, err := range wire.ReadEvents(bufio.NewReader(resp.Body), 8<<20) {
		if err != nil {
			t.Fatalf("waiting for %d events after %s: %v", n, lastID, err)
		}
		if ev.Name == wire.EventSnapshot {
			t.Fatalf("the aggregator could not replay after %s (sent a snapshot)", lastID)
		}
		if got++; got >= n {
			return
		}
	}
	t.Fatalf("stream ended after %d of %d events", got, n)
}

// TestTestPageResumeAndFallback covers the stream test page's connection handling:
//   - Disconnect, events happen, Connect: the missed events are replayed, none lost;
//   - the aggregator stops: "reconnecting 1/5" ... "5/5", then polling-only with a
//     banner (the dashboard too);
//   - it restarts on the same port and "Retry live" resumes: the log shows the new run's
//     snapshot and then every event, with no gap.
func TestTestPageResumeAndFallback(t *testing.T) {
	s := startShop(t)
	b := browser.New(t, 1366, 900)
	b.Allow("ERR_CONNECTION_REFUSED", "ERR_EMPTY_RESPONSE", "ERR_CONNECTION_RESET", "ERR_INCOMPLETE_CHUNKED_ENCODING")
	const params = "?backoff-ms=200&poll-ms=500"
	b.Navigate(s.agg.URL() + "/test-realtime.html" + params)
	b.WaitFor(15*time.Second, `document.getElementById('conn').dataset.state === 'live'`, `document.getElementById('conn').textContent`)
	b.WaitFor(10*time.Second, `document.querySelectorAll('#event-log tr[data-type="metrics"]').length >= 2`, `document.getElementById('log-summary').textContent`)

	// A second browser with the dashboard goes through the same outage.
	d := browser.New(t, 1366, 768)
	d.Allow("ERR_CONNECTION_REFUSED", "ERR_EMPTY_RESPONSE", "ERR_CONNECTION_RESET", "ERR_INCOMPLETE_CHUNKED_ENCODING")
	d.Navigate(s.agg.URL() + "/" + params)
	d.WaitFor(15*time.Second, `document.getElementById('conn').dataset.state === 'live'`, `document.getElementById('conn').textContent`)

	// 1. Disconnect and reconnect by hand: the replay fills the gap.
	b.Click("#disconnect")
	b.WaitFor(5*time.Second, `document.querySelector('#conn .conn-label').textContent === 'Offline (disconnected)'`, `document.getElementById('conn').textContent`)
	lastID := b.Text("#m-lastId")
	waitServerEvents(t, s.agg.URL(), lastID, 3)
	b.Click("#connect")
	b.WaitFor(10*time.Second, `document.getElementById('conn').dataset.state === 'live'`, `document.getElementById('conn').textContent`)
	_, lastSeq := splitID(t, lastID)
	b.WaitFor(10*time.Second, `(() => { const id = document.getElementById('m-lastId').textContent; return Number(id.slice(id.lastIndexOf('-') + 1)) >= `+strconv.FormatUint(lastSeq+3, 10)+`; })()`, `document.getElementById('m-lastId').textContent`)
	log := eventLog(b)
	checkContiguous(t, log)
	for _, e := range log {
		if _, seq := splitID(t, e.ID); seq > lastSeq && e.Type == wire.EventSnapshot {
			t.Errorf("resume after %s sent a snapshot (%s) instead of replaying", lastID, e.ID)
		}
	}

	// 2. The aggregator goes away: five reconnect attempts, then polling-only.
	recordStates(b)
	recordStates(d)
	s.agg.stop()
	for _, p := range []*browser.Browser{b, d} {
		p.WaitFor(20*time.Second, `window.__states.includes('Polling only')`, `window.__states.join(' > ')`)
		states := browser.Eval[[]string](p, `window.__states`)
		want := []string{"Live", "Reconnecting 1/5", "Reconnecting 2/5", "Reconnecting 3/5", "Reconnecting 4/5", "Reconnecting 5/5", "Polling only"}
		if got := strings.Join(states[:min(len(states), len(want))], " > "); got != strings.Join(want, " > ") {
			t.Errorf("connection states %q, want %q", strings.Join(states, " > "), strings.Join(want, " > "))
		}
		p.WaitFor(5*time.Second, `!document.getElementById('banner').hidden && document.getElementById('retry-live')`, `document.getElementById('banner').outerHTML`)
	}
	// Nothing answers the polls while it is down, and the banner says so.
	b.WaitFor(10*time.Second, `document.getElementById('conn').dataset.reachable === 'false'`, `document.getElementById('conn').textContent`)
	if got := b.Text("#banner"); !strings.Contains(got, "does not answer") {
		t.Errorf("banner while the aggregator is down: %q", got)
	}

	// 3. It comes back on the same address: polling reaches it, and "Retry live" resumes.
	s.agg.start()
	before := len(eventLog(b))
	for _, p := range []*browser.Browser{b, d} {
		p.WaitFor(15*time.Second, `document.getElementById('conn').dataset.reachable === 'true'`, `document.getElementById('conn').textContent`)
		if got := p.Text("#conn .conn-label"); got != "Polling only" {
			t.Errorf("label with the aggregator back but before Retry live: %q", got)
		}
		p.Click("#retry-live")
		p.WaitFor(10*time.Second, `document.getElementById('conn').dataset.state === 'live'`, `document.getElementById('conn').textContent`)
		p.WaitFor(5*time.Second, `document.getElementById('banner').hidden`, `document.getElementById('banner').textContent`)
	}
	b.WaitFor(10*time.Second, `document.querySelectorAll('#event-log tr[data-type="metrics"]').length >= `+strconv.Itoa(before+2), `document.getElementById('log-summary').textContent`)
	log = eventLog(b)
	checkContiguous(t, log)
	after := log[before:]
	if len(after) == 0 || after[0].Type != wire.EventSnapshot {
		t.Errorf("first event after the restart is %+v, want the new run's snapshot", after)
	}
	if got := b.Text("#m-missed"); got != "0" {
		t.Errorf("the page counted %s missed events", got)
	}
	d.WaitFor(10*time.Second, `/^\d+$/.test(document.querySelector('.score-value').textContent)`, `document.getElementById('health').innerText`)
}

// TestTestPageButtons presses the test page's buttons: every polling endpoint answers
// with its status and latency shown, and memory cleanup shows its result.
func TestTestPageButtons(t *testing.T) {
	s := startShop(t)
	b := browser.New(t, 1366, 900)
	b.Navigate(s.agg.URL() + "/test-realtime.html")
	b.WaitFor(15*time.Second, `document.getElementById('conn').dataset.state === 'live'`, `document.getElementById('conn').textContent`)
	b.WaitFor(10*time.Second, `document.getElementById('m-health').textContent !== '\u2014'`, `document.getElementById('live-metrics').innerText`)

	b.Click("#test-polling")
	b.WaitFor(15*time.Second, `document.querySelectorAll('#polling-results tr[data-endpoint]').length === 6`, `document.getElementById('polling-results').innerText`)
	rows := browser.Eval[[][]string](b, `[...document.querySelectorAll('#polling-results tr[data-endpoint]')].map((r) => [r.dataset.endpoint, r.dataset.ok, ...[...r.cells].map((c) => c.textContent)])`)
	latency := regexp.MustCompile(`^\d+\.\d ms$`)
	wantEndpoints := map[string]string{
		"fault-tolerance-status": "GET /api/v1/fault-tolerance/status", "circuit-breakers": "GET /api/v1/fault-tolerance/circuit-breakers",
		"optimization-status": "GET /api/v1/performance/optimization-status", "suggestions": "GET /api/v1/performance/suggestions",
		"agents": "GET /api/v1/agents", "alerts": "GET /api/v1/alerts",
	}
	for _, r := range rows {
		name, ok, endpoint, status, ms, result := r[0], r[1], r[2], r[3], r[4], r[6]
		if wantEndpoints[name] != endpoint {
			t.Errorf("row %s calls %q, want %q", name, endpoint, wantEndpoints[name])
		}
		if ok != "true" || status != "200" || !latency.MatchString(ms) || !strings.HasPrefix(result, "\u2714") {
			t.Errorf("row %s: ok=%s status=%s latency=%q result=%q", name, ok, status, ms, result)
		}
		delete(wantEndpoints, name)
	}
	if len(wantEndpoints) > 0 {
		t.Errorf("endpoints not polled: %v", wantEndpoints)
	}
	if got := b.Text("#polling-summary"); !strings.HasPrefix(got, "6/6 OK") {
		t.Errorf("polling summary %q", got)
	}

	for _, scope := range []string{"aggregator", "cluster"} {
		b.Do(chromedp.SetValue(chromedp.ID("cleanup-scope"), scope))
		browser.Eval[bool](b, `(document.getElementById('cleanup-status').textContent = '', true)`)
		b.Click("#cleanup")
		b.WaitFor(30*time.Second, `document.getElementById('cleanup-status').textContent.startsWith('\u2714 HTTP 200')`, `document.getElementById('cleanup-status').textContent + ' ' + document.getElementById('cleanup-result').textContent`)
		var res struct {
			Scope      string `json:"scope"`
			AgentsOK   int    `json:"agents_ok"`
			Aggregator struct {
				HeapBefore uint64 `json:"heap_in_use_before_bytes"`
			} `json:"aggregator"`
		}
		if err := json.Unmarshal([]byte(b.Text("#cleanup-result")), &res); err != nil {
			t.Fatalf("cleanup result is not the JSON answer: %v", err)
		}
		if res.Scope != scope || res.Aggregator.HeapBefore == 0 {
			t.Errorf("cleanup %s: %+v", scope, res)
		}
		if scope == "cluster" && res.AgentsOK != s.agents {
			t.Errorf("cluster cleanup freed memory in %d agents, want %d", res.AgentsOK, s.agents)
		}
		if got := b.Text("#cleanup-summary"); !strings.Contains(got, "returned to the OS") {
			t.Errorf("cleanup summary %q", got)
		}
	}

	b.Click("#disconnect")
	b.WaitFor(5*time.Second, `document.querySelector('#conn .conn-label').textContent === 'Offline (disconnected)'`, `document.getElementById('conn').textContent`)
	n := len(eventLog(b))
	b.Click("#connect")
	b.WaitFor(10*time.Second, `document.getElementById('conn').dataset.state === 'live'`, `document.getElementById('conn').textContent`)
	b.WaitFor(10*time.Second, fmt.Sprintf(`document.querySelectorAll('#event-log tr[data-type]:not([data-kind="status"])').length > %d`, n), `document.getElementById('log-summary').textContent`)
	checkContiguous(t, eventLog(b))
}
