// BreakerDetail is the dialog opened from a grid tile: the breaker's state on every pod of
// its workload, its recent transitions and a larger five-minute chart. It is a modal
// <dialog>, so focus stays inside and Escape closes it.

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
  constructor(dialog, { onClose }) {
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
      h('h3', { class: 'sub', text: 'Per pod' }),
      h('div', { class: 'table-scroll' }, h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, ...['Pod', 'State', 'Failure rate', 'Slow calls', 'Calls/s', 'Calls', 'In state for', 'Source'].map((t) => h('th', { scope: 'col', text: t })))),
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
      this.pods.replaceChildren(h('tr', {}, h('td', { colspan: '8', class: 'muted', text: 'Loading per-pod detail\u2026' })));
    } else if (!d.perPod.length) {
      this.pods.replaceChildren(h('tr', {}, h('td', { colspan: '8', class: 'muted', text: 'No per-pod detail available.' })));
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
          h('td', { text: b.source || '\u2014' }));
      }));
    }
    if (!d.transitions.length) {
      this.transitions.replaceChildren(h('li', { class: 'muted', text: 'No transitions seen since this page opened.' }));
    } else {
      this.transitions.replaceChildren(...d.transitions.map((tr) => h('li', {},
        h('time', { class: 'muted', text: fmtClock(tr.time) }), ' pod ' + (tr.pod || tr.agent || '?') + ': ',
        badge(tr.from || 'unknown', !!tr.from), ' \u2192 ', badge(tr.to, true),
        tr.failureRate !== null ? ' at ' + fmtPercent(tr.failureRate) + ' failures' : '')));
    }
  }
}
