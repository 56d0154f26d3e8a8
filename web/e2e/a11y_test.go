package e2e

import (
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/faultline-dev/faultline/internal/browser"
)

// contrastJS measures the WCAG 2 contrast ratio of every visible text node against its
// effective background (the element's and its ancestors' backgrounds composited, with
// opacity) and returns the ones under AA: 4.5:1, or 3:1 for large text.
const contrastJS = `(() => {
	const parse = (c) => {
		const m = /rgba?\(([^)]+)\)/.exec(c);
		if (!m) return null;
		const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
		return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
	};
	const blend = (top, bottom) => ({
		r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
		b: top.b * top.a + bottom.b * (1 - top.a), a: 1,
	});
	const lum = (c) => {
		const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
		return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
	};
	const canvas = parse(getComputedStyle(document.documentElement).backgroundColor);
	const base = canvas && canvas.a > 0 ? { ...canvas, a: 1 } : { r: 255, g: 255, b: 255, a: 1 };
	const background = (el) => {
		const layers = [];
		for (let e = el; e; e = e.parentElement) {
			const c = parse(getComputedStyle(e).backgroundColor);
			if (c && c.a > 0) {
				layers.push(c);
				if (c.a >= 1) break;
			}
		}
		let bg = base;
		for (const l of layers.reverse()) bg = blend(l, bg);
		return bg;
	};
	const failures = [];
	let checked = 0;
	const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	while (walk.nextNode()) {
		const node = walk.currentNode;
		const text = node.textContent.trim();
		if (!text) continue;
		const el = node.parentElement;
		if (el.closest('[hidden], :disabled, option, script, style, dialog:not([open])')) continue;
		const rect = el.getBoundingClientRect();
		if (!rect.width || !rect.height || rect.bottom < 0 || rect.top > innerHeight) continue;
		const cs = getComputedStyle(el);
		if (cs.visibility !== 'visible') continue;
		let opacity = 1;
		for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
		const bg = background(el);
		const c = parse(cs.color);
		const fg = blend({ ...c, a: c.a * opacity }, bg);
		const l1 = lum(fg), l2 = lum(bg);
		const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
		const size = parseFloat(cs.fontSize);
		const large = size >= 24 || (Number(cs.fontWeight) >= 700 && size >= 18.66);
		checked++;
		if (ratio < (large ? 3 : 4.5)) {
			failures.push(text.slice(0, 40) + ' [' + (el.className || el.tagName) + '] ' + ratio.toFixed(2) + ':1 (' + cs.color + ' on rgb(' + [bg.r, bg.g, bg.b].map(Math.round).join(',') + '))');
		}
	}
	return { checked, failures };
})()`

// statesInWordsJS lists tiles, agent rows and alerts whose state is not in words.
const statesInWordsJS = `(() => {
	const bad = [];
	for (const t of document.querySelectorAll('.tile:not([hidden])')) {
		if (!t.querySelector('.badge-text').textContent.trim() || !t.querySelector('.badge-icon').textContent.trim()) bad.push('tile ' + t.dataset.key);
		if (!/^\d+\/\d+ (pods open|pods half-open|open, \d+ half)$/.test(t.querySelector('.tile-pods').textContent)) bad.push('tile pods ' + t.dataset.key);
	}
	for (const r of document.querySelectorAll('#agents-table tbody tr[data-state]:not([hidden])')) {
		if (!r.cells[0].textContent.includes(r.dataset.state === 'unknown' ? '' : r.dataset.state)) bad.push('agent ' + r.dataset.key);
	}
	for (const a of document.querySelectorAll('.feed-item')) {
		if (!/FIRING|RESOLVED/.test(a.querySelector('.alert-state').textContent) || !a.querySelector('.sev').textContent.trim()) bad.push('alert ' + a.dataset.alert);
	}
	return bad;
})()`

type contrastResult struct {
	Checked  int      `json:"checked"`
	Failures []string `json:"failures"`
}

func setScheme(b *browser.Browser, scheme string) {
	b.T().Helper()
	_, err := chromedp.Call(b.Ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	})
	if err != nil {
		b.T().Fatal(err)
	}
}

func checkContrast(t *testing.T, b *browser.Browser, what string) {
	t.Helper()
	res := browser.Eval[contrastResult](b, contrastJS)
	t.Logf("%s: %d texts checked", what, res.Checked)
	if res.Checked < 20 {
		t.Errorf("%s: only %d text nodes checked; the page did not render", what, res.Checked)
	}
	for _, f := range res.Failures {
		t.Errorf("%s: contrast under WCAG AA: %s", what, f)
	}
}

// TestContrastAndStateWords checks every visible text of the dashboard, the test page and
// the error messages against WCAG AA in the light and the dark theme, and that breaker,
// agent and alert states are given in words as well as colour.
func TestContrastAndStateWords(t *testing.T) {
	s := startShop(t)
	s.cart[0].put(t, "payments", `{"state":"open","failure_rate":64,"rate_per_sec":20}`)
	s.web.put(t, "search", `{"state":"half_open","failure_rate":20,"rate_per_sec":5}`)
	s.web.put(t, "ads", `{"state":"forced_open"}`)
	s.web.put(t, "legacy", `{"state":"disabled"}`)
	bad := badServer(t)

	b := browser.New(t, 1366, 768)
	b.Allow("status of 500", "status of 404")
	for _, scheme := range []string{"light", "dark"} {
		setScheme(b, scheme)
		b.Navigate(s.agg.URL() + "/")
		b.WaitFor(15*time.Second, `document.querySelectorAll('.tile:not([hidden])').length === `+itoa(s.tiles+2)+` && document.querySelector('.tile[data-state="half_open"]') && document.querySelector('.feed-item')`, `document.querySelectorAll('.tile:not([hidden])').length + ' tiles; ' + document.querySelector('#breakers').innerText + document.querySelector('#alerts').innerText`)
		if got := browser.Eval[bool](b, `matchMedia('(prefers-color-scheme: dark)').matches`); got != (scheme == "dark") {
			t.Fatalf("%s scheme not applied", scheme)
		}
		checkContrast(t, b, scheme+" dashboard")
		if missing := browser.Eval[[]string](b, statesInWordsJS); len(missing) > 0 {
			t.Errorf("%s: states shown by colour only: %v", scheme, missing)
		}

		b.Navigate(s.agg.URL() + "/test-realtime.html")
		b.WaitFor(15*time.Second, `document.querySelectorAll('#event-log tr[data-type="metrics"]').length >= 1`, `document.getElementById('log-summary').textContent`)
		checkContrast(t, b, scheme+" test page")

		b.Navigate(bad.URL + "/")
		b.WaitFor(10*time.Second, `document.querySelectorAll('.panel-msg:not([hidden])').length >= 4`, `document.body.innerText.slice(0, 300)`)
		checkContrast(t, b, scheme+" error messages")
	}
}
