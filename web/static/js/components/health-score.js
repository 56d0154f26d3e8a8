// HealthScore shows the cluster's 0-100 score as a gauge, the words for it, and the
// breakdown of what took points off, with the headline totals beside it.

import { h, setText, setData, setAttr } from '../component.js';
import { fmtNumber } from '../format.js';

const SVG = 'http://www.w3.org/2000/svg';
const R = 50;
const C = 2 * Math.PI * R;

export function healthLevel(score) {
  if (score >= 90) return { level: 'good', word: 'Healthy', icon: '\u2714' };
  if (score >= 70) return { level: 'warn', word: 'Degraded', icon: '\u25b2' };
  return { level: 'bad', word: 'Critical', icon: '\u2716' };
}

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export class HealthScore {
  constructor(body) {
    this.body = body;
    this.arc = svg('circle', { cx: 60, cy: 60, r: R, class: 'gauge-arc', 'stroke-dasharray': C.toFixed(2), 'stroke-dashoffset': C.toFixed(2), transform: 'rotate(-90 60 60)' });
    const gauge = svg('svg', { viewBox: '0 0 120 120', class: 'gauge', 'aria-hidden': 'true' });
    gauge.append(svg('circle', { cx: 60, cy: 60, r: R, class: 'gauge-track' }), this.arc);
    this.score = h('span', { class: 'score-value', text: '\u2014' });
    this.word = h('span', { class: 'score-word', text: 'waiting for data' });
    this.scoreBox = h('div', { class: 'score', role: 'img', 'aria-label': 'Health score unknown' },
      gauge, h('div', { class: 'score-text' }, this.score, h('span', { class: 'score-max', text: '/100' })));
    this.breakdown = h('ul', { class: 'breakdown', 'aria-label': 'What lowers the score' });
    this.asOf = h('p', { class: 'muted small' });
    this.stats = h('dl', { class: 'stats' });
    this.statEls = {};
    for (const [k, label] of [['agents', 'Agents'], ['breakers', 'Pod breakers open'], ['alerts', 'Alerts firing']]) {
      const dd = h('dd', { text: '\u2014' });
      this.statEls[k] = dd;
      this.stats.append(h('div', { class: 'stat' }, h('dt', { text: label }), dd));
    }
    body.replaceChildren(
      h('div', { class: 'health-top' }, this.scoreBox, h('div', { class: 'health-side' }, this.word, this.stats)),
      h('h3', { class: 'sub', text: 'Why not 100' }),
      this.breakdown,
      this.asOf,
    );
    this.sig = '';
    this.rows = []; // one per penalty listed: { li, points, component, detail }
  }

  render(d) {
    if (d.health) {
      const score = Math.round(d.health.score);
      const lv = healthLevel(score);
      setText(this.score, String(score));
      setAttr(this.arc, 'stroke-dashoffset', (C * (1 - score / 100)).toFixed(2));
      setData(this.scoreBox, 'level', lv.level);
      setText(this.word, lv.icon + ' ' + lv.word);
      setData(this.word, 'level', lv.level);
      setAttr(this.word, 'class', 'score-word level-' + lv.level);
      setAttr(this.scoreBox, 'aria-label', 'Health score ' + score + ' of 100, ' + lv.word);
      this.renderBreakdown(d.health.breakdown);
    }
    const t = d.totals;
    if (t) {
      setText(this.statEls.agents, fmtNumber(t.agents_connected) + ' of ' + fmtNumber(t.agents) + ' connected'
        + (t.agents_unavailable ? ', ' + t.agents_unavailable + ' unavailable' : ''));
      setText(this.statEls.breakers, fmtNumber(t.breakers_open) + ' of ' + fmtNumber(t.breakers)
        + (t.breakers_half_open ? ', ' + t.breakers_half_open + ' half-open' : ''));
      setText(this.statEls.alerts, fmtNumber(t.alerts_firing));
    }
    const disc = d.discovery;
    let discText = '';
    if (disc) discText = ' \u00b7 discovery ' + (disc.error ? 'error: ' + disc.error : disc.stale ? 'stale' : disc.synced ? 'synced' : 'syncing');
    setText(this.asOf, (d.mode ? d.mode + ' mode' : '') + discText);
  }

  // renderBreakdown lists the penalties. Their figures change every second: the items are
  // kept and only their text changes, so that an update does not build the list again.
  renderBreakdown(items) {
    if (!items.length) {
      if (this.sig !== 'none') {
        this.sig = 'none';
        this.rows = [];
        this.breakdown.replaceChildren(h('li', { class: 'muted', text: 'Nothing is taking points off.' }));
      }
      return;
    }
    if (this.sig === 'none') {
      this.breakdown.replaceChildren();
    }
    this.sig = 'list';
    while (this.rows.length < items.length) {
      const r = { points: h('span', { class: 'points' }), component: h('span', { class: 'component' }), detail: h('span', { class: 'pen-detail' }) };
      r.li = h('li', {}, r.points, r.component, r.detail);
      this.breakdown.append(r.li);
      this.rows.push(r);
    }
    while (this.rows.length > items.length) this.rows.pop().li.remove();
    items.forEach((p, i) => {
      const r = this.rows[i];
      setText(r.points, '\u2212' + fmtNumber(p.points ?? NaN, 1));
      setText(r.component, p.component || 'other');
      setText(r.detail, p.detail);
    });
  }
}
