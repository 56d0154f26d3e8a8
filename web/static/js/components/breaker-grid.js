// BreakerGrid is the Hystrix-style grid: one tile per breaker per workload with its state
// (colour, icon and word), "k/n pods open", failure rate, volume, a five-minute sparkline
// and the time since its last transition. It is virtualised: only the rows in view exist
// in the DOM, so 5,000 breakers cost what 60 do. The data worker sorts and filters; the
// grid asks it for the window it shows.

import { h, setText, setAttr, shown, toggle, show } from '../component.js';
import { fmtAge, fmtDuration, fmtPercent, fmtRate, fmtNumber } from '../format.js';
import { sizeCanvas, themeColors } from '../sparkline.js';
import { drawGrid, gridBox } from '../grid-canvas.js';

export const STATE_LOOK = {
  closed: { icon: '\u2714', word: 'Closed' },
  open: { icon: '\u2716', word: 'Open' },
  half_open: { icon: '\u25d0', word: 'Half-open' },
  forced_open: { icon: '\u2716', word: 'Forced open' },
  disabled: { icon: '\u2298', word: 'Disabled' },
  unknown: { icon: '?', word: 'Unknown' },
};

export function stateLook(state, known = true) {
  if (known && STATE_LOOK[state]) return STATE_LOOK[state];
  return STATE_LOOK.unknown;
}

// rawState names a state the dashboard does not know, so the tile can say what it got.
export function rawState(state, known) {
  return !known && state && state !== 'unknown' ? 'state \u201c' + state + '\u201d' : '';
}

// podsOf is the n of a tile's "k of n": the workload's desired pods when the aggregator
// knows them (so that a pod that vanished or never came up counts), else the pods
// reporting the breaker; the larger of the two during a rollout.
export function podsOf(t) {
  return t.desired !== null && t.desired !== undefined ? Math.max(t.desired, t.pods ?? 0) : t.pods;
}

// podsText is the "k/n pods open" of a tile; half-open pods are counted apart.
export function podsText(t) {
  const n = podsOf(t);
  if (n === null) return '\u2014 pods';
  const open = t.open ?? 0;
  if (t.halfOpen && !open) return t.halfOpen + '/' + n + ' pods half-open';
  if (t.halfOpen) return open + '/' + n + ' open, ' + t.halfOpen + ' half';
  return open + '/' + n + ' pods open';
}

// timelineText says what a tile did over the window of the timeline sorts.
export function timelineText(tl) {
  if (!tl || tl.transitions === null) return '';
  return tl.transitions + (tl.transitions === 1 ? ' transition' : ' transitions') + ', longest open ' + fmtDuration(tl.longestOpenMs)
    + ' in ' + fmtDuration(tl.windowMs);
}

const OVERSCAN_ROWS = 0;

// The data worker draws the grid's charts when the browser can draw off the page.
const WORKER_DRAWS = typeof OffscreenCanvas === 'function';

export class BreakerGrid {
  constructor(body, { onView, onOpen, onCanvas }) {
    this.onView = onView;
    this.onOpen = onOpen;
    this.onCanvas = onCanvas;
    this.view = { sort: 'state', namespace: '', workload: '', text: '', problems: false, offset: 0, limit: 0 };
    this.active = -1;
    this.data = null;
    this.pool = [];
    this.shown = []; // the element showing each tile of this.data
    this.geom = { cols: 1, tileW: 200, tileH: 140, gap: 8, rowH: 148, width: 0, height: 0, spark: null, seq: 0 };
    this.filtersSig = '';

    const sel = (id, label, options) => {
      const s = h('select', { id, class: 'input' }, ...options.map(([v, t]) => h('option', { value: v, text: t })));
      return [h('label', { for: id, text: label }), s];
    };
    const [sortLabel, sort] = sel('grid-sort', 'Sort', [['state', 'State'], ['error', 'Error rate'], ['volume', 'Volume'], ['name', 'Name'],
      ['flapping', 'Most flapping (15 min)'], ['longest', 'Longest open (15 min)']]);
    const [nsLabel, ns] = sel('grid-ns', 'Namespace', [['', 'All']]);
    const [wlLabel, wl] = sel('grid-wl', 'Workload', [['', 'All']]);
    const text = h('input', { id: 'grid-text', class: 'input', type: 'search', placeholder: 'breaker, workload\u2026', autocomplete: 'off' });
    const problems = h('input', { id: 'grid-problems', type: 'checkbox' });
    this.controls = { sort, ns, wl, text, problems };
    const toolbar = h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Sort and filter breakers' },
      h('div', { class: 'field' }, sortLabel, sort),
      h('div', { class: 'field' }, nsLabel, ns),
      h('div', { class: 'field' }, wlLabel, wl),
      h('div', { class: 'field field-grow' }, h('label', { for: 'grid-text', text: 'Search' }), text),
      h('div', { class: 'field field-check' }, problems, h('label', { for: 'grid-problems', text: 'Only not closed' })));
    this.summary = h('p', { class: 'grid-summary', 'aria-live': 'off' });
    this.range = h('span', { class: 'muted small grid-range' });
    this.note = h('p', { class: 'muted small grid-note', hidden: true });
    this.spacer = h('div', { class: 'grid-spacer' });
    // One canvas over the rows in view holds every tile's sparkline and the two figures
    // that change every second (failure rate and volume): one bitmap to paint instead of
    // one per tile, and no text layout per tile per second. The figures are also in each
    // tile's accessible name, and in words in the detail dialog. The worker draws it (see
    // grid-canvas.js) and sends it with the tiles it shows.
    this.canvas = h('canvas', { class: 'grid-canvas', 'aria-hidden': 'true', hidden: true });
    this.bitmaps = WORKER_DRAWS ? this.canvas.getContext('bitmaprenderer') : null;
    this.spacer.append(this.canvas);
    // The theme's colours are drawn into the charts: a change of theme redraws them.
    const dark = globalThis.matchMedia ? matchMedia('(prefers-color-scheme: dark)') : null;
    if (dark) dark.addEventListener('change', () => this.sendCanvas(false));
    this.empty = h('p', { class: 'grid-empty muted', hidden: true });
    this.viewport = h('div', {
      class: 'grid-viewport', tabindex: '0', role: 'listbox', id: 'breaker-grid',
      'aria-label': 'Circuit breakers. Arrow keys move, Enter opens the per-pod detail.',
    }, this.spacer, this.empty);
    body.replaceChildren(toolbar, h('div', { class: 'grid-info' }, this.summary, this.range), this.note, this.viewport);

    const change = () => {
      this.view = {
        ...this.view,
        sort: sort.value,
        namespace: ns.value,
        workload: wl.value,
        text: text.value.trim(),
        problems: problems.checked,
      };
      this.viewport.scrollTop = 0;
      this.active = -1;
      this.requestWindow(true);
    };
    sort.addEventListener('change', change);
    ns.addEventListener('change', () => {
      wl.value = '';
      this.fillWorkloads();
      change();
    });
    wl.addEventListener('change', change);
    problems.addEventListener('change', change);
    let textTimer = null;
    text.addEventListener('input', () => {
      clearTimeout(textTimer);
      textTimer = setTimeout(change, 150);
    });

    this.viewport.addEventListener('scroll', () => {
      if (this.scrollFrame) return;
      this.scrollFrame = requestAnimationFrame(() => {
        this.scrollFrame = 0;
        this.requestWindow(false);
      });
    }, { passive: true });
    this.viewport.addEventListener('click', (e) => {
      const tile = e.target.closest('.tile');
      if (!tile || tile.hidden) return;
      this.setActive(Number(tile.dataset.index));
      this.open();
    });
    this.viewport.addEventListener('keydown', (e) => this.key(e));
    this.viewport.addEventListener('focus', () => {
      if (this.active < 0 && this.data && this.data.matched) this.setActive(this.data.offset);
    });
    new ResizeObserver((entries) => {
      const r = entries[entries.length - 1].contentRect;
      this.measure(r.width, r.height);
      this.requestWindow(false);
      if (this.data) this.render(this.data);
    }).observe(this.viewport);
  }

  // measure derives the tile geometry from the viewport size and the root font size (which
  // grows on large screens, see the stylesheet).
  measure(width, height) {
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    const minW = 15 * rem;
    const gap = 0.5 * rem;
    const cols = Math.max(1, Math.floor((width + gap) / (minW + gap)));
    const tileW = Math.floor((width - gap * (cols - 1)) / cols);
    const tileH = Math.round(8.6 * rem);
    const g = { cols, tileW, tileH, gap, rowH: tileH + gap, width, height, spark: null, seq: this.geom.seq + 1 };
    this.geom = g;
    this.viewport.style.setProperty('--tile-w', tileW + 'px');
    this.viewport.style.setProperty('--tile-h', tileH + 'px');
  }

  // requestWindow asks the worker for the rows in view (plus overscan) when they change.
  requestWindow(force) {
    const g = this.geom;
    if (!g.height) return;
    const first = Math.max(0, Math.floor(this.viewport.scrollTop / g.rowH) - OVERSCAN_ROWS);
    const rows = Math.ceil(g.height / g.rowH) + 2 * OVERSCAN_ROWS + 1;
    const offset = first * g.cols;
    const limit = rows * g.cols;
    if (!force && offset === this.view.offset && limit === this.view.limit) return;
    this.view = { ...this.view, offset, limit };
    this.onView(this.view);
  }

  filters(f) {
    const sig = f.namespaces.join('\u0001') + '\u0002' + f.workloads.join('\u0001');
    if (sig === this.filtersSig) return;
    this.filtersSig = sig;
    this.filterData = f;
    const ns = this.controls.ns;
    const cur = ns.value;
    ns.replaceChildren(h('option', { value: '', text: 'All' }), ...f.namespaces.map((n) => h('option', { value: n, text: n || '(none)' })));
    ns.value = f.namespaces.includes(cur) ? cur : '';
    this.fillWorkloads();
  }

  fillWorkloads() {
    const f = this.filterData;
    if (!f) return;
    const wl = this.controls.wl;
    const cur = wl.value;
    const ns = this.controls.ns.value;
    const list = f.workloads.filter((w) => !ns || w.startsWith(ns + '/'));
    wl.replaceChildren(h('option', { value: '', text: 'All' }), ...list.map((w) => h('option', { value: w, text: ns ? w.slice(ns.length + 1) : w })));
    wl.value = list.includes(cur) ? cur : '';
  }

  render(d) {
    this.data = d;
    const g = this.geom;
    const c = d.counts;
    const parts = [fmtNumber(d.total) + ' breakers'];
    for (const s of ['open', 'forced_open', 'half_open', 'unknown', 'disabled', 'closed']) {
      if (c[s]) parts.push(STATE_LOOK[s].icon + ' ' + fmtNumber(c[s]) + ' ' + STATE_LOOK[s].word.toLowerCase());
    }
    setText(this.summary, parts.join(' \u00b7 '));
    const last = Math.min(d.matched, d.offset + d.tiles.length);
    setText(this.range, d.matched ? 'showing ' + (d.offset + 1) + '\u2013' + last + ' of ' + fmtNumber(d.matched) + (d.matched < d.total ? ' matching' : '') : '');
    const st = d.streamed;
    setText(this.note, st && st.partial
      ? 'Rates update each second for the ' + fmtNumber(st.streamed) + ' worst breakers; the other ' + fmtNumber(st.total - st.streamed)
        + ' refresh every 30 s (\u25f7 marks older values' + (Number.isFinite(d.lastFull) ? ', last refresh ' + fmtDuration(Date.now() - d.lastFull) + ' ago' : '') + '). States are always live.'
      : '');
    show(this.note, st && st.partial);
    const rows = Math.ceil(d.matched / g.cols);
    const height = Math.max(0, rows * g.rowH - g.gap);
    if (this.spacerHeight !== height) {
      this.spacerHeight = height;
      this.spacer.style.height = height + 'px';
    }
    show(this.empty, !d.matched);
    if (!d.matched) setText(this.empty, d.total ? 'No breaker matches these filters.' : 'No circuit breakers reported yet. Breakers appear when an agent learns them from its application.');

    while (this.pool.length < d.tiles.length) this.pool.push(this.makeTile());
    const now = Number.isFinite(d.time) ? d.time : Date.now();
    this.skew = Date.now() - now; // server clock vs ours, for tick()
    this.shown = this.assign(d.tiles);
    for (let i = 0; i < d.tiles.length; i++) this.fill(this.shown[i], d.tiles[i], d.offset + i, d, now);
    for (const el of this.pool) {
      if (el.used || el.v.hidden === true) continue;
      el.root.hidden = true;
      el.v.hidden = true;
      el.index = -1;
      el.key = '';
    }
    // The tiles' elements are not in the order they are shown (see assign): the listbox
    // owns them in that order, for assistive technology.
    if (d.tiles.length) setAttr(this.viewport, 'aria-owns', d.tiles.map((_, i) => 'bt-' + (d.offset + i)).join(' '));
    else this.viewport.removeAttribute('aria-owns');
    if (!g.spark && d.tiles.length) this.measureTile();
    if (this.bitmaps) this.showBitmap(d);
    else this.drawSparks(d);
    this.markActive();
  }

  // measureTile finds where the chart and the figures sit inside a tile, once per
  // geometry (it makes the browser lay out the page), and gives the worker what it needs
  // to draw them.
  measureTile() {
    const g = this.geom;
    const first = this.shown[0];
    const tr = first.root.getBoundingClientRect();
    const at = (e) => {
      const r = e.getBoundingClientRect();
      return { x: r.left - tr.left, y: r.top - tr.top, w: r.width, h: r.height };
    };
    g.spark = at(first.spark);
    g.nums = at(first.nums);
    const cs = getComputedStyle(first.nums);
    g.font = cs.fontWeight + ' ' + cs.fontSize + ' ' + cs.fontFamily; // the shorthand may hold what canvas cannot parse
    this.sendCanvas(true);
  }

  // sendCanvas gives the worker the geometry and colours to draw the grid's charts with.
  // A new geometry (newGeom) makes the bitmaps drawn for the old one unusable; new colours
  // only replace the old ones with the next bitmap.
  sendCanvas(newGeom) {
    const g = this.geom;
    if (!g.spark) return;
    g.dpr = globalThis.devicePixelRatio || 1;
    g.colors = themeColors();
    if (newGeom) g.seq++;
    if (this.bitmaps && this.onCanvas) {
      this.onCanvas({
        seq: g.seq, cols: g.cols, tileW: g.tileW, gap: g.gap, rowH: g.rowH, width: g.width, dpr: g.dpr,
        spark: g.spark, nums: g.nums, font: g.font, colors: g.colors,
      });
    }
  }

  // showBitmap shows the charts the worker drew for the tiles of d. A bitmap drawn for
  // another geometry (the grid was just resized) is dropped and the canvas hidden until
  // the worker draws the new one.
  showBitmap(d) {
    const cv = this.canvas;
    const b = d.canvas;
    d.canvas = null; // a bitmap is shown once: the canvas takes it over
    if (!b || b.seq !== this.geom.seq || !d.tiles.length) {
      if (b) b.bitmap.close();
      show(cv, false);
      return;
    }
    this.placeCanvas(b.top, b.width, b.height);
    this.bitmaps.transferFromImageBitmap(b.bitmap);
    show(cv, true);
  }

  placeCanvas(top, width, height) {
    const cv = this.canvas;
    if (this.canvasTop !== top) {
      this.canvasTop = top;
      cv.style.transform = 'translateY(' + top + 'px)';
    }
    if (this.canvasW !== width || this.canvasH !== height) {
      this.canvasW = width;
      this.canvasH = height;
      cv.style.width = width + 'px';
      cv.style.height = height + 'px';
    }
  }

  // assign picks the element that shows each tile: a tile still in view keeps its element
  // and only moves, so an update that reorders the grid rewrites the text of the tiles
  // that came into view rather than of every tile. It marks the elements it used.
  assign(tiles) {
    const byKey = new Map();
    for (const el of this.pool) {
      el.used = false;
      if (el.v.hidden === false && el.key) byKey.set(el.key, el);
    }
    const out = new Array(tiles.length);
    for (let i = 0; i < tiles.length; i++) {
      const el = byKey.get(tiles[i].key);
      if (el && !el.used) {
        el.used = true;
        out[i] = el;
      }
    }
    let next = 0;
    for (let i = 0; i < tiles.length; i++) {
      if (out[i]) continue;
      while (this.pool[next].used) next++;
      out[i] = this.pool[next];
      out[i].used = true;
    }
    return out;
  }

  makeTile() {
    const badgeIcon = h('span', { class: 'badge-icon', 'aria-hidden': 'true' });
    const badgeText = h('span', { class: 'badge-text' });
    const badge = h('span', { class: 'badge' }, badgeIcon, badgeText);
    const since = h('span', { class: 'tile-since' });
    const name = h('div', { class: 'tile-name' });
    const wl = h('div', { class: 'tile-wl' });
    const spark = h('div', { class: 'tile-spark', 'aria-hidden': 'true' });
    const pods = h('span', { class: 'tile-pods' });
    const nums = h('span', { class: 'tile-nums', 'aria-hidden': 'true' });
    const root = h('div', { class: 'tile', role: 'option', 'aria-selected': 'false' },
      h('div', { class: 'tile-top' }, badge, since), name, wl, spark,
      h('div', { class: 'tile-stats' }, pods, nums));
    for (const e of [since, name, wl, pods]) e.append(document.createTextNode(''));
    this.spacer.append(root);
    // v remembers what was last written, so that an update touches only what changed
    // and never reads the DOM.
    return { root, badge, badgeIcon, badgeText, since, name, wl, spark, pods, nums, v: {}, key: '', index: -1 };
  }

  // put changes the text of node (which holds one text node) when value changed; it
  // edits the text node's data rather than replacing the node.
  put(el, field, node, value) {
    if (el.v[field] === value) return;
    el.v[field] = value;
    node.firstChild.data = shown(value);
  }

  fill(el, t, index, d, now) {
    const g = this.geom;
    const r = el.root;
    const v = el.v;
    if (v.hidden !== false) {
      r.hidden = false;
      v.hidden = false;
    }
    const x = (index % g.cols) * (g.tileW + g.gap);
    const y = Math.floor(index / g.cols) * g.rowH;
    if (x !== v.x || y !== v.y) {
      v.x = x;
      v.y = y;
      r.style.transform = 'translate(' + x + 'px,' + y + 'px)';
    }
    if (index !== el.index) {
      el.index = index;
      r.id = 'bt-' + index;
      r.dataset.index = String(index);
      r.setAttribute('aria-posinset', String(index + 1));
    }
    if (v.setsize !== d.matched) {
      v.setsize = d.matched;
      r.setAttribute('aria-setsize', String(d.matched));
    }
    if (t.key !== el.key) {
      el.key = t.key;
      r.dataset.key = t.key;
    }
    const stateKey = t.stateKnown ? t.state : 'unknown';
    if (v.state !== stateKey) {
      v.state = stateKey;
      r.dataset.state = stateKey;
      el.badge.dataset.state = stateKey;
      const look = stateLook(t.state, t.stateKnown);
      setText(el.badgeIcon, look.icon);
      setText(el.badgeText, look.word);
    }
    if (v.stale !== t.stale) {
      v.stale = t.stale;
      r.classList.toggle('stale', t.stale);
    }
    const look = stateLook(t.state, t.stateKnown);
    const sinceText = Number.isFinite(t.since) ? fmtAge(now - t.since) : '\u2014';
    this.put(el, 'since', el.since, (t.stale ? '\u26a0 stale \u00b7 ' : '') + sinceText);
    this.put(el, 'name', el.name, t.name);
    const raw = rawState(t.state, t.stateKnown);
    this.put(el, 'wl', el.wl, (t.namespace ? t.namespace + '/' : '') + t.workload + (raw ? ' \u00b7 ' + raw : ''));
    const pods = podsText(t);
    this.put(el, 'pods', el.pods, pods);
    // Tiles outside the metrics event's worst-N keep older values: say how old.
    const age = Number.isFinite(t.updated) ? now - t.updated : NaN;
    const lag = age > 5000;
    if (v.lag !== lag) {
      v.lag = lag;
      r.classList.toggle('lagging', lag);
    }
    const tl = d.view && (d.view.sort === 'flapping' || d.view.sort === 'longest') ? timelineText(t.timeline) : '';
    const label = t.name + ' in ' + (t.namespace ? t.namespace + '/' : '') + t.workload + ': ' + look.word + (raw ? ' ' + raw : '') + ', ' + pods
      + ', failure rate ' + fmtPercent(t.failureRate) + ', ' + fmtRate(t.rate) + ', for ' + sinceText + (t.stale ? ', stale' : '')
      + (lag ? ', rates from ' + fmtDuration(age) + ' ago' : '') + (tl ? ', ' + tl : '');
    if (v.timeline !== tl) {
      v.timeline = tl;
      r.dataset.timeline = tl;
    }
    if (v.label !== label) {
      v.label = label;
      r.setAttribute('aria-label', shown(label));
    }
  }

  // drawSparks draws the charts on the page, where the worker cannot (no OffscreenCanvas).
  drawSparks(d) {
    const cv = this.canvas;
    if (!d.tiles.length || !this.geom.spark) {
      show(cv, false);
      return;
    }
    const g = this.geom;
    const box = gridBox(g, d);
    this.placeCanvas(box.top, box.width, box.height);
    sizeCanvas(cv, box.width, box.height);
    drawGrid(cv.getContext('2d'), g, d);
    show(cv, true);
  }

  // patch applies tiles changed by circuit-breaker events between metrics events: they
  // change where they are (the next metrics event sorts them), without a chart redraw.
  patch(tiles) {
    const d = this.data;
    if (!d) return;
    const now = Date.now() - (this.skew || 0);
    for (const t of tiles) {
      const i = d.tiles.findIndex((x) => x.key === t.key);
      if (i < 0) continue; // not in view
      d.tiles[i] = { ...d.tiles[i], ...t };
      const el = this.shown[i];
      if (el && el.key === t.key) this.fill(el, d.tiles[i], el.index, d, now);
    }
  }

  // tick refreshes the "time since" labels between updates.
  tick(now = Date.now()) {
    if (!this.data) return;
    now -= this.skew || 0;
    for (let i = 0; i < this.data.tiles.length && i < this.shown.length; i++) {
      const t = this.data.tiles[i];
      const el = this.shown[i];
      if (Number.isFinite(t.since)) this.put(el, 'since', el.since, (t.stale ? '\u26a0 stale \u00b7 ' : '') + fmtAge(now - t.since));
    }
  }

  setActive(i) {
    const d = this.data;
    if (!d || !d.matched) return;
    this.active = Math.max(0, Math.min(d.matched - 1, i));
    const g = this.geom;
    const top = Math.floor(this.active / g.cols) * g.rowH;
    const vp = this.viewport;
    if (top < vp.scrollTop) vp.scrollTop = top;
    else if (top + g.tileH > vp.scrollTop + g.height) vp.scrollTop = top + g.tileH - g.height;
    this.markActive();
  }

  markActive() {
    let id = '';
    for (const el of this.pool) {
      const on = el.v.hidden === false && el.index === this.active;
      toggle(el.root, 'active', on);
      setAttr(el.root, 'aria-selected', on ? 'true' : 'false');
      if (on) id = el.root.id;
    }
    if (id) setAttr(this.viewport, 'aria-activedescendant', id);
    else if (this.viewport.hasAttribute('aria-activedescendant')) this.viewport.removeAttribute('aria-activedescendant');
  }

  activeKey() {
    const el = this.pool.find((p) => p.v.hidden === false && p.index === this.active);
    return el ? el.key : '';
  }

  open() {
    const key = this.activeKey();
    if (key) this.onOpen(key);
  }

  key(e) {
    const g = this.geom;
    const pageRows = Math.max(1, Math.floor(g.height / g.rowH));
    const moves = {
      ArrowRight: 1, ArrowLeft: -1, ArrowDown: g.cols, ArrowUp: -g.cols,
      PageDown: pageRows * g.cols, PageUp: -pageRows * g.cols,
    };
    if (e.key in moves) {
      this.setActive((this.active < 0 ? 0 : this.active) + moves[e.key]);
    } else if (e.key === 'Home') {
      this.setActive(0);
    } else if (e.key === 'End') {
      this.setActive(this.data ? this.data.matched - 1 : 0);
    } else if (e.key === 'Enter' || e.key === ' ') {
      this.open();
    } else {
      return;
    }
    e.preventDefault();
  }
}
