// PerformancePanel shows cluster CPU, memory and throughput with five-minute sparklines,
// and the aggregator's optimization status with its change history.

import { h, setText, setData } from '../component.js';
import { fmtBytes, fmtCores, fmtNumber, fmtPercent, fmtClock, fmtDuration } from '../format.js';
import { drawPerfCharts, themeColors } from '../sparkline.js';

const SPARK_H = 34;

// The data worker draws the charts where the browser lets a canvas be drawn off the page.
const WORKER_DRAWS = typeof HTMLCanvasElement !== 'undefined' && typeof HTMLCanvasElement.prototype.transferControlToOffscreen === 'function';

export class PerformancePanel {
  // onCharts(message, transfer), when given, hands the charts to the data worker: first
  // { canvases } (OffscreenCanvas, to transfer), then { sizes, height, dpr, colors }
  // whenever they change.
  constructor(body, { onCharts } = {}) {
    this.cards = {};
    const grid = h('div', { class: 'metric-cards' });
    for (const [k, label] of [['cpu', 'CPU'], ['mem', 'Memory'], ['rps', 'Requests'], ['eps', 'Errors']]) {
      const num = h('span', { text: '\u2014' });
      const unit = h('span', { class: 'metric-unit' });
      const value = h('span', { class: 'metric-value' }, num, unit);
      const sub = h('span', { class: 'metric-sub', text: '' });
      const canvas = h('canvas', { class: 'metric-spark', 'aria-hidden': 'true' });
      const card = h('div', { class: 'metric-card', dataset: { metric: k } },
        h('span', { class: 'metric-label', text: label }), value, sub, canvas);
      this.cards[k] = { value: num, unit, sub, canvas, card, width: 0 };
      grid.append(card);
    }
    this.opt = h('dl', { class: 'opt-list' });
    this.optEls = {};
    for (const [k, label] of [
      ['broadcast', 'Broadcast interval'], ['coalescing', 'Coalescing'], ['sample', 'Sample interval'],
      ['last', 'Last broadcast'], ['subs', 'Stream clients'], ['buffer', 'Client buffer'], ['retention', 'History kept'],
    ]) {
      const dd = h('dd', { text: '\u2014' });
      this.optEls[k] = dd;
      this.opt.append(h('div', {}, h('dt', { text: label }), dd));
    }
    this.changes = h('ol', { class: 'changes', 'aria-label': 'Optimization changes, newest first' });
    body.replaceChildren(grid,
      h('div', { class: 'opt' },
        h('div', {}, h('h3', { class: 'sub', text: 'Optimization status' }), this.opt),
        h('div', {}, h('h3', { class: 'sub', text: 'Changes' }), this.changes)));
    this.changesSig = '';
    this.last = null;
    this.onCharts = WORKER_DRAWS && onCharts ? onCharts : null;
    if (this.onCharts) {
      const canvases = {};
      for (const [k, c] of Object.entries(this.cards)) canvases[k] = c.canvas.transferControlToOffscreen();
      this.onCharts({ canvases }, Object.values(canvases));
      const dark = globalThis.matchMedia ? matchMedia('(prefers-color-scheme: dark)') : null;
      if (dark) dark.addEventListener('change', () => this.sendSizes());
    }
    const ro = new ResizeObserver((entries) => {
      for (const e of entries) {
        const c = Object.values(this.cards).find((x) => x.canvas === e.target);
        if (c) c.width = e.contentRect.width;
      }
      if (this.onCharts) this.sendSizes();
      else if (this.last) this.drawSparks(this.last);
    });
    for (const c of Object.values(this.cards)) ro.observe(c.canvas);
  }

  // sendSizes tells the worker how large to draw the charts, and in which colours.
  sendSizes() {
    const sizes = {};
    for (const [k, c] of Object.entries(this.cards)) sizes[k] = c.width;
    this.onCharts({ sizes, height: SPARK_H, dpr: globalThis.devicePixelRatio || 1, colors: themeColors() });
  }

  render(d) {
    this.last = d;
    const t = d.totals;
    if (t) {
      const c = this.cards;
      setText(c.cpu.value, fmtCores(t.cpu_cores));
      setText(c.cpu.unit, ' cores');
      setText(c.cpu.sub, t.cpu_limit_cores ? fmtPercent((t.cpu_cores / t.cpu_limit_cores) * 100) + ' of ' + fmtCores(t.cpu_limit_cores) + ' limit' : 'no limit known');
      const [mv, mu] = fmtBytes(t.memory_bytes).split('\u00a0');
      setText(c.mem.value, mv);
      setText(c.mem.unit, mu ? ' ' + mu : '');
      setText(c.mem.sub, t.memory_limit_bytes ? fmtPercent((t.memory_bytes / t.memory_limit_bytes) * 100) + ' of ' + fmtBytes(t.memory_limit_bytes) + ' limit' : 'no limit known');
      setText(c.rps.value, fmtNumber(t.requests_per_sec));
      setText(c.rps.unit, ' /s');
      setText(c.rps.sub, 'summed over pods');
      setText(c.eps.value, fmtNumber(t.errors_per_sec));
      setText(c.eps.unit, ' /s');
      const errPct = t.requests_per_sec > 0 ? (t.errors_per_sec / t.requests_per_sec) * 100 : null;
      setText(c.eps.sub, errPct === null ? 'no requests' : fmtPercent(errPct) + ' of requests');
      setData(c.eps.card, 'level', errPct !== null && errPct >= 5 ? 'bad' : 'ok');
    }
    if (!this.onCharts) this.drawSparks(d);
    this.renderOptimization(d.optimization, d.changes || []);
  }

  drawSparks(d) {
    drawPerfCharts(d, Object.fromEntries(Object.entries(this.cards).map(([k, c]) => [k, { canvas: c.canvas, width: c.width }])), SPARK_H);
  }

  renderOptimization(o, changes) {
    const e = this.optEls;
    if (o) {
      const ms = (v) => (typeof v === 'number' ? fmtNumber(v, 0) + ' ms' : '\u2014');
      setText(e.broadcast, ms(o.broadcast_interval_ms) + (o.base_broadcast_interval_ms && o.base_broadcast_interval_ms !== o.broadcast_interval_ms ? ' (base ' + ms(o.base_broadcast_interval_ms) + ')' : ''));
      setText(e.coalescing, o.coalescing ? '\u25b2 on: broadcast widened under load' : 'off');
      setText(e.sample, ms(o.sample_interval_ms));
      setText(e.last, ms(o.last_broadcast_ms) + ' of ' + ms(o.broadcast_budget_ms) + ' budget');
      setText(e.subs, fmtNumber(o.subscribers) + (o.subscribers_dropped ? ' (' + o.subscribers_dropped + ' cut off)' : ''));
      setText(e.buffer, fmtNumber(o.subscriber_buffer) + ' events');
      setText(e.retention, typeof o.history_retention_ms === 'number' ? fmtDuration(o.history_retention_ms) : '\u2014');
    }
    const sig = changes.length + '|' + (changes[0] ? changes[0].time + changes[0].parameter : '');
    if (sig === this.changesSig) return;
    this.changesSig = sig;
    if (!changes.length) {
      this.changes.replaceChildren(h('li', { class: 'muted', text: 'No changes since the aggregator started.' }));
      return;
    }
    this.changes.replaceChildren(...changes.slice(0, 8).map((c) => h('li', {},
      h('time', { class: 'muted', text: fmtClock(c.time) }), ' ',
      h('strong', { text: c.parameter }), ' ' + c.from + ' \u2192 ' + c.to,
      c.reason ? h('span', { class: 'muted', text: ' (' + c.reason + ')' }) : null)));
  }
}
