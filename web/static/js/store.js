// Store is the dashboard's local cache of the cluster: it applies stream events and polled
// responses, keeps five minutes of history per breaker tile and for the cluster totals, and
// answers the windowed, sorted and filtered queries the components render from.
//
// Bad data never throws out of the store: each section that cannot be read records a
// message for the component it feeds (keyed by component and source, so that a good
// payload from one source does not hide a bad one from another) and keeps its last good
// state: one broken payload shows as a message in one panel instead of blanking the page.

import { parseTime } from './format.js';

// SPARK_POINTS is the history kept per tile: five minutes at the default 1 s broadcast.
export const SPARK_POINTS = 300;
export const SPARK_WINDOW_MS = 5 * 60 * 1000;

export const KNOWN_STATES = ['closed', 'open', 'half_open', 'disabled', 'forced_open'];

// State codes stored per history point; 0 means no data.
export const STATE_CODE = { closed: 1, half_open: 2, open: 3, forced_open: 4, disabled: 5, unknown: 6 };

// STATE_RANK orders tiles for the "state" sort: the ones that need attention first.
const STATE_RANK = { open: 0, forced_open: 1, half_open: 2, unknown: 3, disabled: 4, closed: 5 };

const MAX_ALERTS = 200; // the aggregator keeps the last 200 resolved
const MAX_ALERT_GROUPS = 30; // the feed's groups, worst first
const MAX_TRANSITIONS = 10; // per tile
const MAX_TRANSITION_TILES = 200; // tiles whose recent transitions are kept, most recent first
const MAX_CHANGES = 50;

export class DataError extends Error {}

// SEVERITY_RANK orders alert severities, worst highest; 'none' ranks a group with
// nothing firing.
const SEVERITY_RANK = { none: 0, unknown: 1, info: 2, warning: 3, critical: 4 };

// ORDER_SPAN bounds the tiles that sortKeyOf can order (2^17): far beyond what a grid shows.
const ORDER_SPAN = 131072;
const RATE_CODES = 65536;

// rateCode orders rates from high to low on a log scale with 16 bits (0 first); unknown
// rates come last.
function rateCode(r) {
  if (r === null) return RATE_CODES - 1;
  return RATE_CODES - 2 - Math.min(RATE_CODES - 2, Math.round(Math.log2(1 + Math.max(0, r)) * 2048));
}

// failCode orders failure rates (percent) from high to low at 0.01 % steps; unknown last.
function failCode(f) {
  if (f === null) return 10001;
  return 10000 - Math.max(0, Math.min(10000, Math.round(f * 100)));
}

// countCode orders counts (or seconds) from high to low, unknown last.
function countCode(n) {
  if (n === null || !Number.isFinite(n)) return RATE_CODES - 1;
  return rateCode(n);
}

// sortKeyOf packs a tile's place in a sort into one integer below 2^53: the sort's
// criteria from the most significant bits down, and the tile's rank by name last, so
// that ties keep a stable, readable order.
export function sortKeyOf(t, sort) {
  switch (sort) {
    case 'name':
      return t.nameOrder;
    case 'error':
      return (failCode(t.failureRate) * RATE_CODES + rateCode(t.rate)) * ORDER_SPAN + t.order;
    case 'volume':
      return rateCode(t.rate) * ORDER_SPAN + t.order;
    // The timeline sorts: most transitions, longest open period over the window the
    // worker fetched (see applyTimelines); tiles without a timeline last.
    case 'flapping':
      return countCode(t.timeline ? t.timeline.transitions : null) * ORDER_SPAN + t.order;
    case 'longest':
      return countCode(t.timeline ? t.timeline.longestOpenMs / 1000 : null) * ORDER_SPAN + t.order;
    default: {
      const rank = STATE_RANK[t.stateKnown ? t.state : 'unknown'];
      const open = 1023 - Math.max(0, Math.min(1023, t.open ?? 0));
      return ((rank * 1024 + open) * 16384 + failCode(t.failureRate)) * ORDER_SPAN + t.order;
    }
  }
}

function need(cond, message) {
  if (!cond) throw new DataError(message);
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v) => (typeof v === 'string' ? v : '');

// asList accepts a bare array or an object holding one under key (both shapes are common
// for list endpoints).
export function asList(data, key) {
  if (Array.isArray(data)) return data;
  if (isObj(data) && Array.isArray(data[key])) return data[key];
  throw new DataError(key + ': expected a list');
}

// alertLists reads GET /api/v1/alerts ({firing, resolved}) or a bare list.
function alertLists(data) {
  if (Array.isArray(data)) return data;
  need(isObj(data), 'alerts: expected an object');
  need(Array.isArray(data.firing), 'alerts.firing is not a list');
  return data.firing.concat(Array.isArray(data.resolved) ? data.resolved : []);
}

// A name may hold "/" (Envoy Gateway's route clusters do): each part is escaped, so that
// two tiles never share a key; tileName undoes it.
export function tileKey(ns, workload, name) {
  return encodeURIComponent(ns) + '/' + encodeURIComponent(workload) + '/' + encodeURIComponent(name);
}

// tileName is the breaker name of a tile key.
export function tileName(key) {
  return decodeURIComponent(key.split('/')[2] || '');
}

// Ring is the shared time axis: one slot per metrics tick, written for every tile at once.
class Ring {
  constructor(cap) {
    this.cap = cap;
    this.times = new Float64Array(cap);
    this.head = 0; // next slot to write
    this.count = 0;
  }
  advance(t) {
    const slot = this.head;
    this.times[slot] = t;
    this.head = (slot + 1) % this.cap;
    if (this.count < this.cap) this.count++;
    return slot;
  }
  // order returns the slots from oldest to newest.
  order() {
    const out = new Uint16Array(this.count);
    const start = (this.head - this.count + this.cap) % this.cap;
    for (let i = 0; i < this.count; i++) out[i] = (start + i) % this.cap;
    return out;
  }
  ordered(arr, order, Type = Float32Array) {
    const out = new Type(order.length);
    for (let i = 0; i < order.length; i++) out[i] = arr[order[i]];
    return out;
  }
}

export class Store {
  constructor({ sparkPoints = SPARK_POINTS, now = Date.now } = {}) {
    this.now = now;
    this.ring = new Ring(sparkPoints);
    this.cluster = { time: NaN, mode: '', discovery: null, health: null, totals: null };
    this.series = {
      cpu: new Float64Array(sparkPoints).fill(NaN),
      mem: new Float64Array(sparkPoints).fill(NaN),
      rps: new Float64Array(sparkPoints).fill(NaN),
      eps: new Float64Array(sparkPoints).fill(NaN),
      health: new Float64Array(sparkPoints).fill(NaN),
    };
    this.tiles = new Map();
    this.workloads = [];
    this.namespaces = [];
    this.pods = new Map();
    this.agents = new Map();
    this.alerts = new Map();
    this.suggestions = [];
    this.optimization = null;
    this.changes = new Map();
    this.transitions = new Map();
    this.perPod = new Map(); // tile key -> {time, rows}
    this.errors = {};
    this.warnings = {};
    this.dirty = new Set();
    this.tilesVersion = 0;
    this.sortCache = null;
    this.agentsSorted = null;
    this.lastEvent = { type: '', id: '', time: NaN };
    this.streamed = { partial: false, streamed: 0, total: 0 };
    this.lastFull = NaN;
    this.backfill = {};
    this.detailKey = '';
    this.patched = new Set();
    this.tileSet = 0; // bumped when a tile is added or removed
    this.filtersSet = -1;
    this.orderSet = -1;
    this.byKey = [];
    this.byName = [];
  }

  // applyHistory keeps a cluster series fetched from GET /api/v1/history, drawn before
  // the first live tick so that the sparklines are full from the first second.
  applyHistory(key, result) {
    need(isObj(result) && Array.isArray(result.points), 'history ' + key + ': points is not a list');
    this.backfill[key] = result.points.filter((p) => isObj(p) && num(p.t) !== null && num(p.v) !== null);
    this.dirty.add('perf');
  }

  // apply routes one stream event; it returns false when the payload was unreadable.
  apply(type, data, id = '') {
    this.lastEvent = { type, id, time: this.now() };
    switch (type) {
      case 'snapshot': return this.applyCluster(data, true);
      case 'metrics': return this.applyCluster(data, false);
      case 'circuit-breaker': return this.guard('grid', () => this.applyBreakerEvent(data), 'breaker-event');
      case 'agent': return this.guard('agents', () => this.applyAgent(data), 'agent-event');
      case 'alert': return this.guard('alerts', () => this.applyAlert(data), 'alert-event');
      case 'optimization': return this.guard('perf', () => this.applyOptimization(data), 'optimization');
      default: return true;
    }
  }

  // applyPoll routes one polled endpoint's body.
  applyPoll(name, data) {
    switch (name) {
      case 'fault-tolerance-status': return this.applyCluster(data, true);
      case 'agents': return this.guard('agents', () => this.replaceAgents(asList(data, 'agents')), 'agents-list');
      case 'alerts': return this.guard('alerts', () => this.mergeAlerts(alertLists(data)), 'alerts-list');
      case 'circuit-breakers': return this.guard('grid', () => this.applyFullTiles(asList(data, 'breakers'), parseTime(data.time)), 'full-list');
      case 'suggestions': return this.guard('suggestions', () => this.replaceSuggestions(asList(data, 'suggestions')), 'list');
      case 'optimization-status': return this.guard('perf', () => this.applyOptimization(data), 'optimization');
      default: return true;
    }
  }

  setError(component, source, message) {
    const key = component + '|' + source;
    if (this.errors[key] === message) return;
    this.errors[key] = message;
    this.dirty.add('errors');
  }

  clearError(component, source) {
    const key = component + '|' + source;
    if (!(key in this.errors)) return;
    delete this.errors[key];
    this.dirty.add('errors');
  }

  // errorsView joins the messages of each component.
  errorsView() {
    const out = {};
    for (const [key, msg] of Object.entries(this.errors)) {
      const c = key.slice(0, key.indexOf('|'));
      out[c] = out[c] ? out[c] + '; ' + msg : msg;
    }
    return out;
  }

  // guard runs fn, recording a DataError (or any bug) as the component's message from
  // source, and clearing that message when fn succeeds.
  guard(component, fn, source = 'data') {
    try {
      fn();
      this.clearError(component, source);
      return true;
    } catch (err) {
      this.setError(component, source, err instanceof DataError ? err.message : 'unexpected data: ' + (err && err.message || err));
      return false;
    }
  }

  // applyCluster takes a snapshot (view.Cluster) or a metrics event (view.Metrics). Each
  // part is checked on its own so that a bad part spoils only its own panel.
  applyCluster(m, full) {
    if (!isObj(m)) {
      const why = (full ? 'snapshot' : 'metrics') + ': payload is not an object';
      this.setError('health', 'cluster', why);
      this.setError('perf', 'totals', why);
      this.setError('grid', 'tiles', why);
      return false;
    }
    const what = full ? 'snapshot' : 'metrics';
    const t = parseTime(m.time);
    const time = Number.isFinite(t) ? t : this.now();
    const slot = this.ring.advance(time);
    for (const s of Object.values(this.series)) s[slot] = NaN;
    let ok = true;
    this.cluster.time = time;
    if (full) {
      this.cluster.mode = str(m.mode);
      this.cluster.discovery = isObj(m.discovery) ? m.discovery : null;
    }
    ok = this.guard('health', () => {
      need(isObj(m.health), what + '.health is missing');
      need(num(m.health.score) !== null, what + '.health.score is not a number');
      need(Array.isArray(m.health.breakdown) || m.health.breakdown == null, what + '.health.breakdown is not a list');
      this.cluster.health = {
        score: Math.max(0, Math.min(100, m.health.score)),
        breakdown: (m.health.breakdown || []).filter(isObj).map((p) => ({
          component: str(p.component), points: num(p.points), detail: str(p.detail),
        })),
      };
      this.series.health[slot] = this.cluster.health.score;
      this.dirty.add('health');
    }, 'cluster') && ok;
    ok = this.guard('perf', () => {
      need(isObj(m.totals), what + '.totals is missing');
      const tt = m.totals;
      this.cluster.totals = tt;
      this.series.cpu[slot] = num(tt.cpu_cores) ?? NaN;
      this.series.mem[slot] = num(tt.memory_bytes) ?? NaN;
      this.series.rps[slot] = num(tt.requests_per_sec) ?? NaN;
      this.series.eps[slot] = num(tt.errors_per_sec) ?? NaN;
      this.dirty.add('perf');
    }, 'totals') && ok;
    ok = this.guard('grid', () => {
      need(Array.isArray(m.breakers), what + '.breakers is not a list');
      // A metrics event of a large fleet carries only the worst tiles; the others keep
      // their last known values and get no history point for this tick.
      const total = num(m.breakers_total);
      const partial = !full && total !== null && total > m.breakers.length;
      this.streamed = { partial, streamed: m.breakers.length, total: total ?? m.breakers.length };
      this.replaceTiles(m.breakers, slot, partial, time);
      if (Array.isArray(m.workloads)) this.workloads = m.workloads.filter(isObj);
      if (Array.isArray(m.namespaces)) this.namespaces = m.namespaces.filter(isObj);
    }, 'tiles') && ok;
    if ('grid|tiles' in this.errors) this.blankSlot(slot);
    if (full) {
      if (Array.isArray(m.pods)) {
        this.guard('agents', () => {
          this.pods.clear();
          for (const p of m.pods) if (isObj(p) && p.agent) this.pods.set(p.agent, p);
        }, 'pods');
      }
      if (Array.isArray(m.agents)) ok = this.guard('agents', () => this.replaceAgents(m.agents), 'agents-list') && ok;
      if (m.alerts != null) ok = this.guard('alerts', () => this.syncFiring(asList(m.alerts, 'alerts'), time), 'firing') && ok;
    }
    return ok;
  }

  // replaceTiles sets the tile list to breakers (a full list) and records one history
  // point per tile in slot. Tiles absent from the list are gone from the cluster.
  replaceTiles(breakers, slot, partial = false, time = NaN) {
    const seen = this.tilesVersion + 1;
    let bad = 0;
    let firstBad = '';
    for (const b of breakers) {
      const why = this.upsertTile(b, seen);
      if (why) {
        bad++;
        if (!firstBad) firstBad = why;
        continue;
      }
    }
    for (const [key, tile] of this.tiles) {
      const fresh = tile.seen === seen;
      if (!fresh && !partial) {
        this.tiles.delete(key);
        this.transitions.delete(key);
        this.perPod.delete(key);
        this.tileSet++;
        continue;
      }
      if (fresh) tile.updated = time;
      else tile.seen = seen; // kept: its state stays current through circuit-breaker events
      tile.rateHist[slot] = fresh ? tile.rate ?? NaN : NaN;
      tile.failHist[slot] = fresh ? tile.failureRate ?? NaN : NaN;
      tile.stateHist[slot] = STATE_CODE[tile.stateKnown ? tile.state : 'unknown'];
    }
    this.tilesVersion = seen;
    this.sortCache = null;
    this.dirty.add('grid');
    if (this.tileSet !== this.filtersSet) this.dirty.add('filters');
    const warning = bad ? bad + ' of ' + breakers.length + ' breakers could not be read (' + firstBad + ')' : '';
    if ((this.warnings.grid || '') !== warning) {
      this.warnings.grid = warning;
      this.dirty.add('errors');
    }
  }

  // applyFullTiles takes a complete tile list fetched between ticks (GET
  // /api/v1/fault-tolerance/circuit-breakers): it updates every tile's values and drops
  // the tiles that are gone, without adding a history point.
  applyFullTiles(breakers, time) {
    const seen = this.tilesVersion + 1;
    let bad = 0;
    for (const b of breakers) {
      if (this.upsertTile(b, seen)) bad++;
      else this.tiles.get(tileKey(str(b.namespace), str(b.workload), b.name)).updated = Number.isFinite(time) ? time : this.now();
    }
    for (const [key, tile] of this.tiles) {
      if (tile.seen !== seen) {
        this.tiles.delete(key);
        this.transitions.delete(key);
        this.perPod.delete(key);
        this.tileSet++;
      }
    }
    this.tilesVersion = seen;
    this.lastFull = this.now();
    this.sortCache = null;
    this.dirty.add('grid');
    if (this.tileSet !== this.filtersSet) this.dirty.add('filters');
    this.dirty.add('detail');
    this.warnings.grid = bad ? bad + ' of ' + breakers.length + ' breakers could not be read' : '';
    this.dirty.add('errors');
  }

  // blankSlot marks slot as "no data" for every tile, so that a tick whose breaker list was
  // unreadable does not leave the values of the tick that used the slot before.
  blankSlot(slot) {
    for (const t of this.tiles.values()) {
      t.rateHist[slot] = NaN;
      t.failHist[slot] = NaN;
      t.stateHist[slot] = 0;
    }
  }

  // upsertTile updates (or creates) the tile for b in place and returns why b was
  // unreadable, or ''.
  upsertTile(b, seen) {
    if (!isObj(b)) return 'not an object';
    if (typeof b.name !== 'string' || b.name === '') return 'missing name';
    const ns = str(b.namespace);
    const wl = str(b.workload);
    const key = tileKey(ns, wl, b.name);
    let t = this.tiles.get(key);
    if (!t) {
      const cap = this.ring.cap;
      t = {
        key, namespace: ns, workload: wl, name: b.name,
        sortName: b.name + '\u0000' + ns + '\u0000' + wl,
        sortKey: ns + '\u0000' + wl + '\u0000' + b.name,
        sinceText: null, since: NaN,
        rateHist: new Float32Array(cap).fill(NaN),
        failHist: new Float32Array(cap).fill(NaN),
        stateHist: new Uint8Array(cap),
        seen: 0,
        updated: NaN,
      };
      this.tiles.set(key, t);
      this.tileSet++;
    }
    const state = str(b.state);
    t.state = state || 'unknown';
    t.stateKnown = KNOWN_STATES.includes(state);
    t.pods = num(b.pods);
    t.desired = num(b.desired_pods);
    t.open = num(b.open);
    t.halfOpen = num(b.half_open);
    t.failureRate = num(b.failure_rate);
    t.rate = num(b.rate_per_sec);
    t.calls = isObj(b.calls) ? b.calls : null;
    if (b.since !== t.sinceText) {
      t.sinceText = b.since;
      t.since = parseTime(b.since);
    }
    t.stale = b.stale === true;
    t.sources = Array.isArray(b.sources) ? b.sources : [];
    if (Array.isArray(b.per_pod) && key === this.detailKey) this.perPod.set(key, { time: this.now(), rows: b.per_pod.filter(isObj) });
    t.seen = seen || t.seen;
    return '';
  }

  applyBreakerEvent(ev) {
    need(isObj(ev), 'circuit-breaker event is not an object');
    need(isObj(ev.tile), 'circuit-breaker event has no tile');
    const why = this.upsertTile(ev.tile, 0);
    need(!why, 'circuit-breaker event tile: ' + why);
    const key = tileKey(str(ev.tile.namespace), str(ev.tile.workload), ev.tile.name);
    const tile = this.tiles.get(key);
    if (tile.seen === 0) {
      // New since the last tick: keep it, and place it in the sorted order.
      tile.seen = this.tilesVersion;
      this.sortCache = null;
      this.dirty.add('grid');
    } else {
      // A known tile changed state: patch it where it is shown now; the next metrics
      // event (at most one broadcast interval away) sorts it into place.
      this.patched.add(key);
      this.dirty.add('gridPatch');
    }
    const tr0 = isObj(ev.transition) ? parseTime(ev.transition.time) : NaN;
    tile.updated = Number.isFinite(tr0) ? tr0 : this.now();
    const tr = isObj(ev.transition) ? ev.transition : {};
    const list = this.transitions.get(key) || [];
    list.unshift({
      time: parseTime(tr.time), pod: str(ev.pod), agent: str(tr.agent),
      from: str(tr.from), to: str(tr.to),
      failureRate: isObj(tr.breaker) ? num(tr.breaker.failure_rate) : null,
    });
    if (list.length > MAX_TRANSITIONS) list.length = MAX_TRANSITIONS;
    // Re-inserting keeps the map in order of the latest transition, so the oldest go first.
    this.transitions.delete(key);
    this.transitions.set(key, list);
    if (this.transitions.size > MAX_TRANSITION_TILES) this.transitions.delete(this.transitions.keys().next().value);
    this.dirty.add('detail');
  }

  // gridPatchView returns the tiles changed by circuit-breaker events since the last
  // grid view, without their history.
  gridPatchView() {
    const out = [];
    for (const key of this.patched) {
      const t = this.tiles.get(key);
      if (t) out.push(this.tileView(t, null));
    }
    this.patched.clear();
    return out;
  }

  normAgent(a) {
    need(isObj(a), 'agent is not an object');
    need(typeof a.key === 'string' && a.key !== '', 'agent has no key');
    const id = isObj(a.agent) ? a.agent : {};
    return {
      key: a.key,
      url: str(a.url),
      state: str(a.state) || 'unknown',
      reason: str(a.reason),
      since: parseTime(a.since),
      lastSeen: parseTime(a.last_seen),
      pod: str(a.pod) || str(id.pod) || str(id.id),
      namespace: str(a.namespace) || str(id.namespace),
      workload: str(a.workload) || str(id.workload),
      node: str(a.node) || str(id.node),
      profile: str(a.profile),
      version: str(id.version),
    };
  }

  applyAgent(a) {
    const row = this.normAgent(a);
    if (row.state === 'removed') this.agents.delete(row.key);
    else this.agents.set(row.key, row);
    this.agentsSorted = null;
    this.dirty.add('agents');
  }

  replaceAgents(list) {
    const next = new Map();
    let bad = 0;
    for (const a of list) {
      try {
        const row = this.normAgent(a);
        next.set(row.key, row);
      } catch {
        bad++;
      }
    }
    this.agents = next;
    this.agentsSorted = null;
    this.warnings.agents = bad ? bad + ' agent rows could not be read' : '';
    this.dirty.add('agents');
    this.dirty.add('errors');
  }

  normAlert(a) {
    need(isObj(a), 'alert is not an object');
    need(typeof a.id === 'string' && a.id !== '', 'alert has no id');
    const started = parseTime(a.started);
    const resolved = parseTime(a.resolved);
    const state = a.state === 'resolved' ? 'resolved' : a.state === 'firing' ? 'firing' : 'unknown';
    return {
      key: a.id + '@' + str(a.started),
      id: a.id,
      rule: str(a.rule),
      state,
      severity: ['info', 'warning', 'critical'].includes(a.severity) ? a.severity : 'unknown',
      summary: str(a.summary) || str(a.rule) || a.id,
      target: isObj(a.target) ? a.target : {},
      value: num(a.value),
      started,
      resolved,
      changed: state === 'resolved' && Number.isFinite(resolved) ? resolved : started,
      resolvedUnseen: false,
    };
  }

  applyAlert(a) {
    const al = this.normAlert(a);
    this.alerts.set(al.key, al);
    this.trimAlerts();
    this.dirty.add('alerts');
  }

  mergeAlerts(list) {
    for (const a of list) {
      const al = this.normAlert(a);
      this.alerts.set(al.key, al);
    }
    this.trimAlerts();
    this.dirty.add('alerts');
  }

  // syncFiring takes the alerts firing now (a snapshot's list): ones we held as firing but
  // missing there resolved while we were not listening, at a time we do not know.
  syncFiring(list, time) {
    const firing = new Set();
    for (const a of list) {
      const al = this.normAlert(a);
      firing.add(al.key);
      this.alerts.set(al.key, al);
    }
    for (const al of this.alerts.values()) {
      if (al.state === 'firing' && !firing.has(al.key)) {
        al.state = 'resolved';
        al.resolvedUnseen = true;
        al.changed = time;
      }
    }
    this.trimAlerts();
    this.dirty.add('alerts');
  }

  trimAlerts() {
    if (this.alerts.size <= MAX_ALERTS) return;
    const oldest = [...this.alerts.values()].filter((a) => a.state !== 'firing').sort((a, b) => a.changed - b.changed);
    for (const a of oldest.slice(0, this.alerts.size - MAX_ALERTS)) this.alerts.delete(a.key);
  }

  replaceSuggestions(list) {
    this.suggestions = list.filter(isObj).map((s) => ({
      id: str(s.id),
      rule: str(s.rule),
      severity: ['info', 'warning', 'critical'].includes(s.severity) ? s.severity : 'unknown',
      target: isObj(s.target) ? s.target : {},
      summary: str(s.summary) || str(s.rule),
      evidence: Array.isArray(s.evidence) ? s.evidence.map(String) : [],
      action: str(s.action),
      since: parseTime(s.since),
    }));
    this.dirty.add('suggestions');
  }

  applyOptimization(o) {
    need(isObj(o), 'optimization is not an object');
    need(num(o.broadcast_interval_ms) !== null, 'optimization.broadcast_interval_ms is not a number');
    this.optimization = o;
    if (Array.isArray(o.changes)) {
      for (const c of o.changes) {
        if (!isObj(c)) continue;
        const key = str(c.time) + '|' + str(c.parameter) + '|' + str(c.to);
        if (!this.changes.has(key)) {
          this.changes.set(key, {
            time: parseTime(c.time), parameter: str(c.parameter), from: str(c.from), to: str(c.to), reason: str(c.reason),
          });
        }
      }
      if (this.changes.size > MAX_CHANGES) {
        const sorted = [...this.changes.entries()].sort((a, b) => b[1].time - a[1].time);
        this.changes = new Map(sorted.slice(0, MAX_CHANGES));
      }
    }
    this.dirty.add('perf');
  }

  // applyTimelines takes GET /api/v1/fault-tolerance/circuit-breakers?window=...: what each
  // tile did over the window, for the timeline sorts. Tiles missing from it have none.
  applyTimelines(breakers, windowMs) {
    const seen = new Set();
    for (const b of breakers) {
      if (!isObj(b) || typeof b.name !== 'string') continue;
      const t = this.tiles.get(tileKey(str(b.namespace), str(b.workload), b.name));
      const tl = isObj(b.timeline) ? b.timeline : null;
      if (!t || !tl) continue;
      seen.add(t.key);
      t.timeline = {
        windowMs, transitions: num(tl.transitions), openMs: num(tl.open_ms), halfOpenMs: num(tl.half_open_ms),
        longestOpenMs: num(tl.longest_open_ms),
      };
    }
    for (const t of this.tiles.values()) if (!seen.has(t.key)) t.timeline = null;
    this.sortCache = null;
    this.dirty.add('grid');
  }

  // freeze returns a copy of the store as it is now: what a paused dashboard shows while
  // this one goes on taking events.
  freeze() {
    const f = new Store({ sparkPoints: this.ring.cap, now: this.now });
    const r = this.ring;
    f.ring.times.set(r.times);
    f.ring.head = r.head;
    f.ring.count = r.count;
    Object.assign(f, structuredClone({
      cluster: this.cluster, series: this.series, tiles: this.tiles, workloads: this.workloads, namespaces: this.namespaces,
      pods: this.pods, agents: this.agents, alerts: this.alerts, suggestions: this.suggestions, optimization: this.optimization,
      changes: this.changes, transitions: this.transitions, perPod: this.perPod, errors: this.errors, warnings: this.warnings,
      lastEvent: this.lastEvent, streamed: this.streamed, lastFull: this.lastFull, backfill: this.backfill, detailKey: this.detailKey,
    }));
    f.tileSet = 1; // order and filters computed afresh
    f.dirty = new Set(['health', 'perf', 'alerts', 'suggestions', 'filters', 'grid', 'agents', 'detail', 'errors']);
    return f;
  }

  // setPerPod keeps the per-pod detail of the tile the detail dialog shows, with the
  // tile's timeline over the window asked for (null: none).
  setPerPod(key, rows, timeline = null) {
    this.perPod.set(key, { time: this.now(), rows: rows.filter(isObj), timeline });
    this.dirty.add('detail');
  }

  // ---- queries -------------------------------------------------------------------

  healthView() {
    return { ...this.cluster, lastEvent: this.lastEvent };
  }

  perfView() {
    const order = this.ring.order();
    const r = this.ring;
    const live = {
      times: r.ordered(r.times, order, Float64Array),
      cpu: r.ordered(this.series.cpu, order, Float64Array),
      mem: r.ordered(this.series.mem, order, Float64Array),
      rps: r.ordered(this.series.rps, order, Float64Array),
      eps: r.ordered(this.series.eps, order, Float64Array),
      health: r.ordered(this.series.health, order, Float64Array),
    };
    const out = { time: this.cluster.time, totals: this.cluster.totals, optimization: this.optimization,
      changes: [...this.changes.values()].sort((a, b) => b.time - a.time) };
    const master = this.backfill.cpu || this.backfill.health;
    const firstLive = live.times.length ? live.times[0] : Infinity;
    const before = master ? master.filter((p) => p.t < firstLive - 500).map((p) => p.t) : [];
    if (!before.length) return Object.assign(out, live);
    const n = before.length + live.times.length;
    out.times = new Float64Array(n);
    out.times.set(before);
    out.times.set(live.times, before.length);
    for (const k of ['cpu', 'mem', 'rps', 'eps', 'health']) {
      const byT = new Map((this.backfill[k] || []).map((p) => [p.t, p.v]));
      const arr = new Float64Array(n);
      before.forEach((t, i) => { arr[i] = byT.has(t) ? byT.get(t) : NaN; });
      arr.set(live[k], before.length);
      out[k] = arr;
    }
    return out;
  }

  // alertsView groups the alerts by workload, then by rule, the worst groups first (a
  // group with a critical alert firing before one with warnings, then the one with more
  // firing), at most MAX_ALERT_GROUPS of them; within a rule, newest first, at most limit.
  // Each group counts its firing alerts by severity.
  alertsView(limit = 20) {
    const all = [...this.alerts.values()];
    all.sort((a, b) => (b.changed || 0) - (a.changed || 0));
    const groups = new Map();
    const add = (map, key, make) => {
      let g = map.get(key);
      if (!g) {
        g = make();
        map.set(key, g);
      }
      return g;
    };
    const tally = (g, a) => {
      g.total++;
      if (a.state === 'firing') {
        g.firing++;
        g.counts[a.severity] = (g.counts[a.severity] || 0) + 1;
        if (SEVERITY_RANK[a.severity] > SEVERITY_RANK[g.severity]) g.severity = a.severity;
      }
    };
    const group = (key, extra) => ({ key, severity: 'none', firing: 0, total: 0, counts: {}, ...extra });
    for (const a of all) {
      const t = a.target || {};
      const key = (str(t.namespace) ? t.namespace + '/' : '') + str(t.workload);
      const g = add(groups, key, () => group(key, { rules: new Map() }));
      tally(g, a);
      const r = add(g.rules, a.rule, () => group(key + '\u0000' + a.rule, { rule: a.rule, items: [] }));
      tally(r, a);
      if (r.items.length < limit) r.items.push(a);
    }
    const worst = (a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || b.firing - a.firing || b.total - a.total || (a.key < b.key ? -1 : 1);
    const list = [...groups.values()].sort(worst);
    const shown = list.slice(0, MAX_ALERT_GROUPS);
    for (const g of shown) g.rules = [...g.rules.values()].sort(worst);
    return {
      firing: all.filter((a) => a.state === 'firing').length,
      total: all.length,
      groupsTotal: list.length,
      groups: shown,
    };
  }

  suggestionsView() {
    const rank = { critical: 0, warning: 1, info: 2, unknown: 3 };
    return [...this.suggestions].sort((a, b) => rank[a.severity] - rank[b.severity] || (b.since || 0) - (a.since || 0));
  }

  // filtersView lists the namespaces and workloads that have breakers.
  filtersView() {
    this.filtersSet = this.tileSet;
    const ns = new Set();
    const wl = new Set();
    for (const t of this.tiles.values()) {
      ns.add(t.namespace);
      wl.add(t.namespace + '/' + t.workload);
    }
    return { namespaces: [...ns].sort(), workloads: [...wl].sort() };
  }

  // ensureOrder ranks every tile by namespace/workload/name (byKey) and by name
  // (byName), once per change of the tile set: the ranks break ties in sortKeyOf.
  ensureOrder() {
    if (this.orderSet === this.tileSet) return;
    this.orderSet = this.tileSet;
    const all = [...this.tiles.values()];
    all.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    all.forEach((t, i) => { t.order = i; });
    this.byKey = all;
    this.byName = [...all].sort((a, b) => (a.sortName < b.sortName ? -1 : a.sortName > b.sortName ? 1 : 0));
    this.byName.forEach((t, i) => { t.nameOrder = i; });
  }

  // sorted returns the tiles matching the view's filters in the view's order. The result
  // is cached until the tiles or the view change. Each tile's place is one number (see
  // sortKeyOf), so sorting 5,000 tiles is a typed-array sort without a comparator.
  sorted(view) {
    const sig = [view.sort, view.namespace, view.workload, view.text, view.problems].join('\u0001');
    if (this.sortCache && this.sortCache.sig === sig) return this.sortCache;
    this.ensureOrder();
    const text = (view.text || '').toLowerCase();
    const counts = { closed: 0, open: 0, half_open: 0, forced_open: 0, disabled: 0, unknown: 0 };
    const keys = new Float64Array(this.tiles.size);
    let n = 0;
    for (const t of this.tiles.values()) {
      if (view.namespace && t.namespace !== view.namespace) continue;
      if (view.workload && t.namespace + '/' + t.workload !== view.workload) continue;
      if (text && !t.sortKey.toLowerCase().includes(text)) continue;
      counts[t.stateKnown ? t.state : 'unknown']++;
      if (view.problems && t.state === 'closed' && !t.stale) continue;
      keys[n++] = sortKeyOf(t, view.sort);
    }
    const sortedKeys = keys.subarray(0, n).sort();
    const from = view.sort === 'name' ? this.byName : this.byKey;
    const list = new Array(n);
    for (let i = 0; i < n; i++) list[i] = from[sortedKeys[i] % ORDER_SPAN];
    this.sortCache = { sig, list, counts };
    return this.sortCache;
  }

  // tileView is what the page draws of a tile; with order, its history too.
  tileView(t, order) {
    const r = this.ring;
    const v = {
      key: t.key, namespace: t.namespace, workload: t.workload, name: t.name,
      state: t.state, stateKnown: t.stateKnown,
      pods: t.pods, desired: t.desired, open: t.open, halfOpen: t.halfOpen, timeline: t.timeline || null,
      failureRate: t.failureRate, rate: t.rate, calls: t.calls,
      since: t.since, stale: t.stale, sources: t.sources, updated: t.updated,
    };
    if (order) {
      v.rateHist = r.ordered(t.rateHist, order);
      v.failHist = r.ordered(t.failHist, order);
      v.stateHist = r.ordered(t.stateHist, order, Uint8Array);
    }
    return v;
  }

  gridView(view) {
    this.patched.clear();
    const { list, counts } = this.sorted(view);
    const order = this.ring.order();
    const offset = Math.max(0, Math.min(view.offset | 0, Math.max(0, list.length - 1)));
    const limit = Math.max(0, Math.min(view.limit | 0, 2000));
    const tiles = [];
    for (let i = offset; i < Math.min(list.length, offset + limit); i++) tiles.push(this.tileView(list[i], order));
    return {
      total: this.tiles.size,
      matched: list.length,
      counts,
      offset,
      tiles,
      times: this.ring.ordered(this.ring.times, order, Float64Array),
      time: this.cluster.time,
      streamed: this.streamed,
      lastFull: this.lastFull,
    };
  }

  detailView(key) {
    const t = this.tiles.get(key);
    if (!t) return { key, gone: true };
    const order = this.ring.order();
    const pp = this.perPod.get(key);
    return {
      key,
      gone: false,
      tile: this.tileView(t, order),
      times: this.ring.ordered(this.ring.times, order, Float64Array),
      time: this.cluster.time,
      transitions: this.transitions.get(key) || [],
      perPod: pp ? pp.rows : null,
      perPodTime: pp ? pp.time : NaN,
      timeline: pp ? pp.timeline || null : null,
      workload: this.workloads.find((w) => str(w.namespace) === t.namespace && str(w.name) === t.workload) || null,
    };
  }

  agentsView(view) {
    if (!this.agentsSorted || this.agentsSorted.sig !== view.sort + '\u0001' + view.text) {
      const rank = { unavailable: 0, missing: 1, absent: 2, connecting: 3, unknown: 4, connected: 5 };
      const text = (view.text || '').toLowerCase();
      const counts = { connected: 0, connecting: 0, unavailable: 0, missing: 0, absent: 0, unknown: 0 };
      const list = [];
      for (const a of this.agents.values()) {
        counts[a.state in counts ? a.state : 'unknown']++;
        if (text && !(a.pod + ' ' + a.namespace + ' ' + a.workload + ' ' + a.node + ' ' + a.profile + ' ' + a.url).toLowerCase().includes(text)) continue;
        list.push(a);
      }
      const byName = (a, b) => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : a.key < b.key ? -1 : 1);
      const cmp = view.sort === 'pod' ? byName
        : view.sort === 'seen' ? (a, b) => (a.lastSeen || 0) - (b.lastSeen || 0) || byName(a, b)
          : (a, b) => (rank[a.state] ?? 4) - (rank[b.state] ?? 4) || byName(a, b);
      list.sort(cmp);
      this.agentsSorted = { sig: view.sort + '\u0001' + view.text, list, counts };
    }
    const { list, counts } = this.agentsSorted;
    const offset = Math.max(0, Math.min(view.offset | 0, Math.max(0, list.length - 1)));
    const limit = Math.max(0, Math.min(view.limit | 0, 1000));
    return { total: this.agents.size, matched: list.length, counts, offset, rows: list.slice(offset, offset + limit), time: this.cluster.time };
  }
}
