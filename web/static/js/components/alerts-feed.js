// AlertsFeed lists alerts newest first, firing and resolved, with severity, state and time;
// Suggestions lists the aggregator's suggestions with their evidence.

import { h, setText } from '../component.js';
import { fmtAge, fmtClock, fmtDuration, fmtNumber } from '../format.js';

export const SEVERITY = {
  critical: { icon: '\u2716', word: 'Critical' },
  warning: { icon: '\u25b2', word: 'Warning' },
  info: { icon: '\u2139', word: 'Info' },
  unknown: { icon: '?', word: 'Unknown severity' },
};

export function targetText(t) {
  if (!t) return '';
  const parts = [];
  if (t.namespace) parts.push(t.namespace);
  if (t.workload) parts.push(t.workload);
  let s = parts.join('/');
  if (t.pod) s += (s ? ' \u00b7 pod ' : 'pod ') + t.pod;
  if (t.breaker) s += (s ? ' \u00b7 breaker ' : 'breaker ') + t.breaker;
  if (!s && t.agent) s = 'agent ' + t.agent;
  return s || 'cluster';
}

function severityBadge(sev) {
  const s = SEVERITY[sev] || SEVERITY.unknown;
  return h('span', { class: 'sev sev-' + sev }, h('span', { 'aria-hidden': 'true', text: s.icon + ' ' }), s.word);
}

export class AlertsFeed {
  constructor(body, countEl) {
    this.list = h('ol', { class: 'feed', 'aria-label': 'Alerts, newest first' });
    this.count = countEl;
    body.replaceChildren(this.list);
    this.sig = null;
    this.items = new Map(); // key + state -> list item, reused across renders
  }

  render(d) {
    setText(this.count, d.firing + ' firing' + (d.total > d.firing ? ', ' + (d.total - d.firing) + ' resolved' : ''));
    const sig = d.items.map((a) => a.key + a.state + a.resolvedUnseen).join('|');
    if (sig !== this.sig) {
      this.sig = sig;
      if (!d.items.length) {
        this.items.clear();
        this.list.replaceChildren(h('li', { class: 'muted empty', text: 'No alerts.' }));
      } else {
        const next = new Map();
        const lis = d.items.map((a) => {
          const id = a.key + '|' + a.state + '|' + a.resolvedUnseen;
          const li = this.items.get(id) || this.item(a);
          next.set(id, li);
          return li;
        });
        // Move only what moved: new alerts are usually prepended, old ones drop off. Items
        // that left go first, so that the ones after them are not moved one by one (a
        // move lays an item out again).
        for (const [id, li] of this.items) if (!next.has(id)) li.remove();
        this.items = next;
        const kids = this.list.children;
        for (let i = 0; i < lis.length; i++) {
          if (kids[i] !== lis[i]) this.list.insertBefore(lis[i], kids[i] || null);
        }
        while (kids.length > lis.length) this.list.lastElementChild.remove();
      }
    }
    this.tick();
  }

  item(a) {
    const when = h('span', { class: 'when' });
    const li = h('li', { class: 'feed-item state-' + a.state, dataset: { alert: a.id, state: a.state } },
      h('div', { class: 'feed-line' },
        severityBadge(a.severity),
        h('span', { class: 'alert-state', text: a.state === 'firing' ? '\u25cf FIRING' : a.state === 'resolved' ? '\u2714 RESOLVED' : '? ' + a.state }),
        when),
      h('div', { class: 'feed-summary', text: a.summary }),
      h('div', { class: 'muted small', text: targetText(a.target) + (a.rule ? ' \u00b7 rule ' + a.rule : '') + (a.value !== null ? ' \u00b7 value ' + fmtNumber(a.value, 1) : '') }));
    // Clock times are fixed per item: format them once (toLocaleTimeString is slow).
    li._alert = a;
    li._when = when;
    li._started = fmtClock(a.started);
    li._resolved = fmtClock(a.resolved);
    li._text = '';
    return li;
  }

  // tick refreshes the relative times without rebuilding the list.
  tick(now = Date.now()) {
    for (const li of this.list.children) {
      const a = li._alert;
      if (!a) continue;
      let text;
      // The age appears from the first minute on, so that a list of fresh alerts is not
      // rewritten every second.
      if (a.state === 'firing') text = 'since ' + li._started + (now - a.started >= 60000 ? ' (' + fmtAge(now - a.started) + ')' : '');
      else if (a.resolvedUnseen) text = 'resolved while disconnected';
      else text = 'resolved ' + li._resolved + ' after ' + fmtDuration(a.resolved - a.started);
      if (li._text !== text) {
        li._text = text;
        setText(li._when, text);
      }
    }
  }
}

export class Suggestions {
  constructor(body, countEl) {
    this.list = h('ol', { class: 'suggestions' });
    this.count = countEl;
    body.replaceChildren(this.list);
    this.sig = null;
  }

  render(list) {
    setText(this.count, String(list.length));
    const sig = JSON.stringify(list.map((s) => [s.id, s.summary, s.evidence]));
    if (sig === this.sig) return;
    this.sig = sig;
    const open = new Set([...this.list.querySelectorAll('details[open]')].map((d) => d.dataset.id));
    if (!list.length) {
      this.list.replaceChildren(h('li', { class: 'muted empty', text: 'No suggestions: nothing in the recent history calls for a change.' }));
      return;
    }
    this.list.replaceChildren(...list.map((s) => {
      const details = h('details', { dataset: { id: s.id }, open: open.has(s.id) },
        h('summary', {}, 'Evidence (' + s.evidence.length + ')'),
        h('ul', { class: 'evidence' }, ...s.evidence.map((e) => h('li', { text: e }))));
      return h('li', { class: 'suggestion', dataset: { suggestion: s.id } },
        h('div', { class: 'feed-line' }, severityBadge(s.severity), h('span', { class: 'muted small', text: targetText(s.target) })),
        h('div', { class: 'feed-summary', text: s.summary }),
        s.action ? h('div', { class: 'action' }, h('strong', { text: 'Action: ' }), s.action) : null,
        details);
    }));
  }
}
