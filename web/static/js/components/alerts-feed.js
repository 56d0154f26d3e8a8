// AlertsFeed lists alerts, firing and resolved, grouped by workload and rule, with
// severity, state and time; Suggestions lists the aggregator's suggestions with their
// evidence.

import { h, setText, setData } from '../component.js';
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

// groupCounts says what a group holds: "2 firing (1 critical, 1 warning), 1 resolved".
function groupCounts(g) {
  const sev = g.counts || {};
  const parts = ['critical', 'warning', 'info', 'unknown'].filter((k) => sev[k]).map((k) => sev[k] + ' ' + k);
  const resolved = g.total - g.firing;
  return fmtNumber(g.firing) + ' firing' + (parts.length && g.firing ? ' (' + parts.join(', ') + ')' : '') + (resolved ? ', ' + fmtNumber(resolved) + ' resolved' : '');
}

// place makes els the children of list, in order, moving only what moved: items that
// left go first, so that the ones after them are not moved one by one.
function place(list, els) {
  const keep = new Set(els);
  for (const el of [...list.children]) if (!keep.has(el)) el.remove();
  const kids = list.children;
  for (let i = 0; i < els.length; i++) {
    if (kids[i] !== els[i]) list.insertBefore(els[i], kids[i] || null);
  }
}

// AlertsFeed groups alerts by workload, then by rule, the worst group first, with counts
// in each group's line: in a storm of hundreds of alerts the panel reads as a few lines,
// and a group opens to show its alerts. The total stays in the panel's title. Only open
// groups hold their alerts' elements, so a storm costs the page the lines it shows.
export class AlertsFeed {
  constructor(body, countEl) {
    this.list = h('ol', { class: 'feed', 'aria-label': 'Alerts by workload and rule, worst first' });
    this.count = countEl;
    body.replaceChildren(this.list);
    this.items = new Map(); // key + state -> list item, reused across renders
    this.open = new Map(); // group key -> open, as the user left it
    this.groups = new Map(); // group key -> its elements
    this.more = h('li', { class: 'muted small feed-more' });
    this.empty = h('li', { class: 'muted empty', text: 'No alerts.' });
    this.last = null;
  }

  render(d) {
    this.last = d;
    const groups = d.groups || [];
    setText(this.count, d.firing + ' firing' + (d.total > d.firing ? ', ' + (d.total - d.firing) + ' resolved' : '')
      + (d.groupsTotal > 1 ? ' in ' + d.groupsTotal + ' groups' : ''));
    // Small feeds show everything; a storm shows its groups closed until opened.
    const openByDefault = d.total <= 8;
    const nextItems = new Map();
    const nextGroups = new Map();
    const item = (a) => {
      const id = a.key + '|' + a.state + '|' + a.resolvedUnseen;
      const li = this.items.get(id) || this.item(a);
      nextItems.set(id, li);
      return li;
    };
    const lis = groups.map((g) => {
      const single = g.rules.length === 1;
      const name = g.key || 'cluster';
      const head = name + (single ? ' \u00b7 ' + (g.rules[0].rule || 'alert') : '') + ' \u00b7 ' + groupCounts(g);
      return this.group(nextGroups, g.key, g.severity, head, openByDefault, 'feed-group', { group: name }, () => (single
        ? g.rules[0].items.map(item)
        : g.rules.map((r) => this.group(nextGroups, g.key + '\u0000' + r.rule, r.severity, (r.rule || 'alert') + ' \u00b7 ' + groupCounts(r),
          openByDefault, 'feed-rule', { rule: r.rule }, () => r.items.map(item)))));
    });
    if (!groups.length) lis.push(this.empty);
    if (d.groupsTotal > groups.length) {
      setText(this.more, (d.groupsTotal - groups.length) + ' more groups, less severe, not shown');
      lis.push(this.more);
    }
    for (const [id, li] of this.items) if (!nextItems.has(id)) li.remove();
    this.items = nextItems;
    this.groups = nextGroups;
    place(this.list, lis);
    this.tick();
  }

  // group makes (or reuses) one expandable group: a line with the worst severity and the
  // counts, and, while it is open, its members (made by members()).
  group(next, key, severity, head, openByDefault, cls, data, members) {
    let g = this.groups.get(key);
    if (!g) {
      g = { summary: h('summary', { class: 'group-head' }), body: h('ol', { class: 'group-body' }), severity: '' };
      g.sev = h('span', { class: 'group-sev' });
      g.text = h('span', { class: 'group-text' });
      g.summary.append(g.sev, g.text);
      g.details = h('details', {}, g.summary, g.body);
      g.details.open = this.open.has(key) ? this.open.get(key) : openByDefault;
      g.details.addEventListener('toggle', () => {
        if (this.open.get(key) === g.details.open) return;
        this.open.set(key, g.details.open);
        if (this.last) this.render(this.last);
      });
      g.li = h('li', { class: cls, dataset: data }, g.details);
    }
    next.set(key, g);
    if (g.severity !== severity) {
      g.severity = severity;
      setData(g.li, 'severity', severity === 'none' ? 'resolved' : severity);
      g.sev.replaceChildren(severity === 'none' ? h('span', { class: 'sev sev-info', text: '\u2714 Resolved' }) : severityBadge(severity));
    }
    setText(g.text, head);
    place(g.body, g.details.open ? members() : []);
    return g.li;
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
    for (const li of this.items.values()) {
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
