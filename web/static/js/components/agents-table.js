// AgentsTable lists every agent (and every pod missing one, and every pod a workload's
// desired replicas call for that is not there) with its state and reason, pod, workload,
// node, the AgentProfile the injector applied and when it was last heard from. Rows are
// virtualised like the
// breaker grid, so a thousand agents scroll smoothly.

import { h, setText, setData, show } from '../component.js';
import { fmtSeen, fmtNumber } from '../format.js';

export const AGENT_LOOK = {
  connected: { icon: '\u2714', word: 'connected' },
  connecting: { icon: '\u21bb', word: 'connecting' },
  unavailable: { icon: '\u2716', word: 'unavailable' },
  missing: { icon: '\u2298', word: 'missing' },
  // a pod the workload's desired replicas call for, not there (Kubernetes)
  absent: { icon: '\u25cc', word: 'absent' },
  unknown: { icon: '?', word: 'unknown' },
};

const OVERSCAN = 6;

export class AgentsTable {
  constructor(body, { onView }) {
    this.onView = onView;
    this.view = { sort: 'state', text: '', offset: 0, limit: 0 };
    const sort = h('select', { id: 'agents-sort', class: 'input' },
      h('option', { value: 'state', text: 'Problems first' }), h('option', { value: 'pod', text: 'Pod' }), h('option', { value: 'seen', text: 'Last seen (oldest first)' }));
    const text = h('input', { id: 'agents-text', class: 'input', type: 'search', placeholder: 'pod, workload, node, profile\u2026', autocomplete: 'off' });
    this.summary = h('p', { class: 'grid-summary' });
    this.top = h('tr', { class: 'spacer', 'aria-hidden': 'true' }, h('td', { colspan: '7' }));
    this.bottom = h('tr', { class: 'spacer', 'aria-hidden': 'true' }, h('td', { colspan: '7' }));
    this.tbody = h('tbody', {}, this.top, this.bottom);
    this.rows = [];
    this.empty = h('p', { class: 'muted', hidden: true });
    this.viewport = h('div', { class: 'table-viewport', tabindex: '0', role: 'region', 'aria-label': 'Agents table, scrollable' },
      h('table', { class: 'table agents', id: 'agents-table' },
        h('thead', {}, h('tr', {}, ...['State', 'Pod', 'Workload', 'Node', 'Profile', 'Last seen', 'Address'].map((t) => h('th', { scope: 'col', text: t })))),
        this.tbody));
    body.replaceChildren(
      h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Sort and filter agents' },
        h('div', { class: 'field' }, h('label', { for: 'agents-sort', text: 'Sort' }), sort),
        h('div', { class: 'field field-grow' }, h('label', { for: 'agents-text', text: 'Search' }), text)),
      this.summary, this.empty, this.viewport);
    const change = () => {
      this.view = { ...this.view, sort: sort.value, text: text.value.trim() };
      this.viewport.scrollTop = 0;
      this.request(true);
    };
    sort.addEventListener('change', change);
    let timer = null;
    text.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(change, 150);
    });
    this.viewport.addEventListener('scroll', () => {
      if (this.frame) return;
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.request(false);
      });
    }, { passive: true });
    this.height = 0;
    new ResizeObserver((entries) => {
      this.height = entries[entries.length - 1].contentRect.height;
      this.rowH = (parseFloat(getComputedStyle(document.documentElement).fontSize) || 16) * 2.25;
      this.request(false);
    }).observe(this.viewport);
  }

  request(force) {
    if (!this.height) return;
    const first = Math.max(0, Math.floor(this.viewport.scrollTop / this.rowH) - OVERSCAN);
    const limit = Math.ceil(this.height / this.rowH) + 2 * OVERSCAN;
    if (!force && first === this.view.offset && limit === this.view.limit) return;
    this.view = { ...this.view, offset: first, limit };
    this.onView(this.view);
  }

  render(d) {
    this.data = d;
    const c = d.counts;
    const parts = [fmtNumber(d.total - (c.absent || 0)) + ' agents'];
    for (const s of ['connected', 'connecting', 'unavailable', 'missing', 'absent', 'unknown']) {
      if (c[s]) parts.push(AGENT_LOOK[s].icon + ' ' + fmtNumber(c[s]) + ' ' + AGENT_LOOK[s].word);
    }
    setText(this.summary, parts.join(' \u00b7 '));
    show(this.empty, !d.matched);
    if (!d.matched) setText(this.empty, d.total ? 'No agent matches the search.' : 'No agents discovered yet.');
    const rowH = this.rowH || 36;
    const topH = d.offset * rowH;
    const bottomH = Math.max(0, (d.matched - d.offset - d.rows.length) * rowH);
    if (this.topH !== topH) {
      this.topH = topH;
      this.top.firstChild.style.height = topH + 'px';
      this.top.hidden = topH === 0;
    }
    if (this.bottomH !== bottomH) {
      this.bottomH = bottomH;
      this.bottom.firstChild.style.height = bottomH + 'px';
      this.bottom.hidden = bottomH === 0;
    }
    while (this.rows.length < d.rows.length) {
      const cells = [0, 1, 2, 3, 4, 5, 6].map(() => h('td'));
      const tr = h('tr', {}, ...cells);
      this.bottom.before(tr);
      this.rows.push({ tr, cells });
    }
    for (let i = 0; i < this.rows.length; i++) {
      const r = this.rows[i];
      if (i >= d.rows.length) {
        show(r.tr, false);
        continue;
      }
      show(r.tr, true);
      const a = d.rows[i];
      r.agent = a;
      const look = AGENT_LOOK[a.state] || AGENT_LOOK.unknown;
      setData(r.tr, 'state', a.state in AGENT_LOOK ? a.state : 'unknown');
      setData(r.tr, 'key', a.key);
      setText(r.cells[0], look.icon + ' ' + (a.state in AGENT_LOOK ? look.word : a.state) + (a.reason ? ': ' + a.reason : ''));
      setText(r.cells[1], a.pod || '\u2014');
      setText(r.cells[2], (a.namespace ? a.namespace + '/' : '') + (a.workload || '\u2014'));
      setText(r.cells[3], a.node || '\u2014');
      setText(r.cells[4], a.profile || '\u2014');
      setText(r.cells[6], a.url || a.key);
    }
    this.tick();
  }

  // tick refreshes "last seen", the only cell that moves with time alone.
  tick(now = Date.now()) {
    if (!this.data) return;
    for (const r of this.rows) {
      if (r.tr.hidden || !r.agent) continue;
      const a = r.agent;
      setText(r.cells[5], Number.isFinite(a.lastSeen) ? fmtSeen(now - a.lastSeen) : 'never');
    }
  }
}
