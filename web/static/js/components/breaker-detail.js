// BreakerDetail is the dialog opened from a grid tile: the breaker's state on every pod of
// its workload, its recent transitions, a larger five-minute chart, and its timeline over
// a window (the periods it was open or half-open as a bar, how often it changed state,
// how long it stayed open, how long it took to close again, and what tripped each
// opening). It is a modal <dialog>, so focus stays inside and Escape closes it.

import { h, setText, setData } from '../component.js';
import { fmtClock, fmtDuration, fmtNumber, fmtPercent, fmtRate, parseTime } from '../format.js';
import { drawSpark, sparkWindow } from '../sparkline.js';
import { stateLook, podsText, rawState } from './breaker-grid.js';
import { tileName } from '../store.js';

function badge(state, known = true) {
  const look = stateLook(state, known);
  const raw = rawState(state, known);
  return h('span', { class: 'badge', dataset: { state: known && state in { closed: 1, open: 1, half_open: 1, forced_open: 1, disabled: 1 } ? state : 'unknown' } },
    h('span', { class: 'badge-icon', 'aria-hidden': 'true', text: look.icon }), h('span', { class: 'badge-text', text: look.word + (raw ? ' (' + raw + ')' : '') }));
}

// calls writes call counters; windowMs, when the source counts a rolling window (Hystrix)
// rather than every call since start, says which.
function calls(c, windowMs) {
  if (!c) return '\u2014';
  return fmtNumber(c.succeeded) + ' ok \u00b7 ' + fmtNumber(c.failed) + ' failed \u00b7 ' + fmtNumber(c.rejected) + ' rejected \u00b7 ' + fmtNumber(c.timed_out) + ' timed out'
    + (Number.isFinite(windowMs) && windowMs > 0 ? ' in the last ' + fmtDuration(windowMs) : '');
}

export class BreakerDetail {
  constructor(dialog, { onClose, onWindow }) {
    this.dialog = dialog;
    // The title takes the focus when the dialog opens (not the Close button, which the
    // Enter key that opened the dialog would otherwise press at once).
    this.title = h('h2', { id: 'detail-title', tabindex: '-1', autofocus: true });
    this.sub = h('p', { class: 'muted' });
    this.badgeBox = h('span', { class: 'detail-badge' });
    this.msg = h('p', { class: 'panel-msg', role: 'alert', hidden: true });
    this.stats = h('dl', { class: 'detail-stats' });
    this.canvas = h('canvas', { class: 'detail-spark', 'aria-hidden': 'true' });
    this.legend = h('p', { class: 'muted small', text: 'Line: calls per second. Dashed: failure rate (0\u2013100 %). Shaded: open (red) or half-open (amber). Up to the last 5 minutes.' });
    this.pods = h('tbody');
    this.window = h('select', { id: 'detail-window', class: 'input' },
      ...[['5m', 'last 5 minutes'], ['15m', 'last 15 minutes'], ['1h', 'last hour']].map(([v, t]) => h('option', { value: v, text: t, selected: v === '15m' })));
    this.window.addEventListener('change', () => onWindow && onWindow(this.window.value));
    this.tlBar = h('div', { class: 'tl-bar', id: 'detail-timeline', role: 'img' });
    this.tlAxis = h('div', { class: 'tl-axis muted small' });
    this.tlStats = h('dl', { class: 'detail-stats tl-stats' });
    this.tlOpenings = h('ol', { class: 'transitions tl-openings' });
    this.transitions = h('ol', { class: 'transitions' });
    const close = h('button', { type: 'button', class: 'btn', id: 'detail-close', text: 'Close' });
    close.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => onClose());
    dialog.setAttribute('aria-labelledby', 'detail-title');
    dialog.replaceChildren(
      h('div', { class: 'detail-head' }, h('div', {}, this.title, this.sub), this.badgeBox, close),
      this.msg,
      this.stats,
      this.canvas,
      this.legend,
      h('div', { class: 'tl-head' }, h('h3', { class: 'sub', text: 'Timeline' }),
        h('label', { for: 'detail-window', class: 'muted small', text: 'over the' }), this.window),
      this.tlBar,
      this.tlAxis,
      this.tlStats,
      h('h3', { class: 'sub', text: 'Openings and what tripped them' }),
      this.tlOpenings,
      h('h3', { class: 'sub', text: 'Per pod' }),
      h('div', { class: 'table-scroll' }, h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, ...['Pod', 'State', 'Failure rate', 'Slow calls', 'Calls/s', 'Calls', 'In state for', 'Transitions', 'Source'].map((t) => h('th', { scope: 'col', text: t })))),
        this.pods)),
      h('h3', { class: 'sub', text: 'Recent transitions' }),
      this.transitions,
    );
    this.key = '';
  }

  show(key) {
    this.key = key;
    this.last = null;
    setText(this.title, tileName(key));
    setText(this.sub, 'loading\u2026');
    this.pods.replaceChildren();
    this.transitions.replaceChildren();
    this.renderTimeline(null);
    if (!this.dialog.open) this.dialog.showModal();
    this.width = this.canvas.parentElement.clientWidth - 48;
  }

  setError(text) {
    setText(this.msg, text || '');
    this.msg.hidden = !text;
  }

  render(d) {
    if (!this.dialog.open || d.key !== this.key) return;
    if (d.gone) {
      setText(this.sub, 'This breaker is no longer reported by any pod.');
      return;
    }
    const t = d.tile;
    const now = Number.isFinite(d.time) ? d.time : Date.now();
    setText(this.title, t.name);
    setText(this.sub, (t.namespace ? 'namespace ' + t.namespace + ' \u00b7 ' : '') + 'workload ' + t.workload + (t.stale ? ' \u00b7 \u26a0 stale: a source stopped reporting' : ''));
    this.badgeBox.replaceChildren(badge(t.state, t.stateKnown));
    setData(this.dialog, 'state', t.stateKnown ? t.state : 'unknown');
    const w = d.workload;
    const rows = [
      ['Pods', podsText(t)],
      ['Failure rate', fmtPercent(t.failureRate)],
      ['Volume', fmtRate(t.rate)],
      ['In this state for', Number.isFinite(t.since) ? fmtDuration(now - t.since) + ' (since ' + fmtClock(t.since) + ')' : '\u2014'],
      ['Calls', calls(t.calls)],
      ['Sources', t.sources.join(', ') || '\u2014'],
    ];
    if (w) rows.push(['Workload', fmtNumber(w.pods_connected) + '/' + fmtNumber(w.pods) + ' pods connected, ' + fmtRate(w.requests_per_sec) + ' requests, ' + fmtRate(w.errors_per_sec) + ' errors']);
    this.stats.replaceChildren(...rows.map(([k, v]) => h('div', {}, h('dt', { text: k }), h('dd', { text: v }))));
    drawSpark(this.canvas, Math.max(200, this.width || 600), 90, {
      times: d.times, values: t.rateHist, states: t.stateHist, second: t.failHist, now, windowMs: sparkWindow(d.times, now),
    });
    if (d.perPod === null) {
      this.pods.replaceChildren(h('tr', {}, h('td', { colspan: '9', class: 'muted', text: 'Loading per-pod detail\u2026' })));
    } else if (!d.perPod.length) {
      this.pods.replaceChildren(h('tr', {}, h('td', { colspan: '9', class: 'muted', text: 'No per-pod detail available.' })));
    } else {
      this.pods.replaceChildren(...d.perPod.map((p) => {
        const b = p.breaker || {};
        const since = parseTime(b.since);
        const known = ['closed', 'open', 'half_open', 'forced_open', 'disabled'].includes(b.state);
        return h('tr', { dataset: { pod: p.pod || p.agent || '', state: known ? b.state : 'unknown' } },
          h('td', { text: p.pod || p.agent || '\u2014' }),
          h('td', {}, badge(b.state, known), b.stale ? ' \u26a0 stale' : ''),
          h('td', { text: fmtPercent(b.failure_rate) }),
          h('td', { text: fmtPercent(b.slow_call_rate) }),
          h('td', { text: fmtRate(b.rate_per_sec) }),
          h('td', { text: calls(b.calls, b.calls_window_ms) }),
          h('td', { text: Number.isFinite(since) ? fmtDuration(now - since) : '\u2014' }),
          h('td', { text: p.timeline && typeof p.timeline.transitions === 'number' ? fmtNumber(p.timeline.transitions) : '\u2014' }),
          h('td', { text: b.source || '\u2014' }));
      }));
    }
    this.renderTimeline(d.timeline);
    if (!d.transitions.length) {
      this.transitions.replaceChildren(h('li', { class: 'muted', text: 'No transitions seen since this page opened.' }));
    } else {
      this.transitions.replaceChildren(...d.transitions.map((tr) => h('li', {},
        h('time', { class: 'muted', text: fmtClock(tr.time) }), ' pod ' + (tr.pod || tr.agent || '?') + ': ',
        badge(tr.from || 'unknown', !!tr.from), ' \u2192 ', badge(tr.to, true),
        tr.failureRate !== null ? ' at ' + fmtPercent(tr.failureRate) + ' failures' : '')));
    }
  }

  // renderTimeline draws what the breaker did over the window: a bar of its open and
  // half-open periods (placed through CSSOM, which the page's CSP allows), the figures,
  // and each opening with the failure rate and calls that tripped it.
  renderTimeline(tl) {
    if (!tl) {
      this.tlBar.replaceChildren();
      this.tlBar.setAttribute('aria-label', 'Timeline loading');
      setText(this.tlAxis, '');
      this.tlStats.replaceChildren();
      this.tlOpenings.replaceChildren(h('li', { class: 'muted', text: 'Loading\u2026' }));
      return;
    }
    const from = parseTime(tl.from);
    const to = parseTime(tl.to);
    const span = Math.max(1, to - from);
    const periods = (Array.isArray(tl.periods) ? tl.periods : []).filter((p) => p && typeof p === 'object');
    this.tlBar.replaceChildren(...periods.map((p) => {
      const a = Math.max(from, parseTime(p.from));
      const z = Math.min(to, parseTime(p.to));
      const known = ['open', 'half_open', 'forced_open', 'disabled'].includes(p.state);
      const seg = h('span', { class: 'tl-seg', dataset: { state: known ? p.state : 'unknown', from: p.from, to: p.to },
        title: stateLook(p.state, known).word + ' ' + fmtClock(a) + '\u2013' + fmtClock(z) + ' (' + fmtDuration(z - a) + ')' + (p.ongoing ? ', ongoing' : '') });
      seg.style.left = ((a - from) / span * 100).toFixed(3) + '%';
      seg.style.width = Math.max(0.2, (z - a) / span * 100).toFixed(3) + '%';
      return seg;
    }));
    const openPeriods = periods.filter((p) => p.state === 'open' || p.state === 'forced_open').length;
    this.tlBar.setAttribute('aria-label', 'Timeline from ' + fmtClock(from) + ' to ' + fmtClock(to) + ': ' + openPeriods + ' open periods, '
      + fmtDuration(tl.open_ms) + ' open in all');
    setText(this.tlAxis, fmtClock(from) + ' \u2192 ' + fmtClock(to) + (tl.known_from ? ' \u00b7 changed state more often than is kept: known from ' + fmtClock(parseTime(tl.known_from)) : ''));
    const rows = [
      ['Transitions', fmtNumber(tl.transitions)],
      ['Time open', fmtDuration(tl.open_ms)],
      ['Time half-open', fmtDuration(tl.half_open_ms)],
      ['Longest open', fmtDuration(tl.longest_open_ms)],
      ['Mean open \u2192 closed', typeof tl.mean_open_to_closed_ms === 'number'
        ? fmtDuration(tl.mean_open_to_closed_ms) + ' over ' + fmtNumber(tl.recoveries) + (tl.recoveries === 1 ? ' recovery' : ' recoveries')
        : 'no opening closed again in this window'],
    ];
    this.tlStats.replaceChildren(...rows.map(([k, v]) => h('div', { dataset: { stat: k } }, h('dt', { text: k }), h('dd', { text: v }))));
    const openings = (Array.isArray(tl.openings) ? tl.openings : []).filter((o) => o && typeof o === 'object');
    if (!openings.length) {
      this.tlOpenings.replaceChildren(h('li', { class: 'muted', text: 'No opening in this window.' }));
      return;
    }
    this.tlOpenings.replaceChildren(...openings.slice().reverse().map((o) => h('li', { class: 'tl-opening' },
      h('time', { class: 'muted', text: fmtClock(parseTime(o.time)) }), ' pod ' + (o.pod || '?') + ' opened'
      + (o.from ? ' from ' + stateLook(o.from, true).word.toLowerCase() : '') + ' at ' + fmtPercent(o.failure_rate) + ' failures; calls ' + calls(o.calls))));
  }
}
