// Unit checks of the dashboard's modules, run in the real browser by web/e2e. Each check
// is a function that throws on failure; the results go to window.unitResults.

import { RealtimeDataManager, POLL_ENDPOINTS } from '/js/realtime-data-manager.js';
import { Store, tileKey, tileName } from '/js/store.js';
import { Panel, h, setText, shown } from '/js/component.js';
import { fmtBytes, fmtDuration, fmtPercent, fmtRate, fmtCores, NONE } from '/js/format.js';
import { scale, parseAt, FINE_MS } from '/js/components/time-control.js';
import { podsText } from '/js/components/breaker-grid.js';

const checks = [];
const check = (name, fn) => checks.push({ name, fn });

function eq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(what + ': got ' + g + ', want ' + w);
}

// ---- fakes for the manager ----
class FakeES {
  static all = [];
  constructor(url) {
    this.url = url;
    this.listeners = {};
    this.closed = false;
    FakeES.all.push(this);
  }
  addEventListener(type, fn) { (this.listeners[type] ||= []).push(fn); }
  close() { this.closed = true; }
  emit(type, data, id) { for (const fn of this.listeners[type] || []) fn({ data, lastEventId: id }); }
}

function fakeTimers() {
  const q = [];
  let next = 1;
  return {
    q,
    setTimeout: (fn, ms) => { const id = next++; q.push({ id, fn, ms }); return id; },
    clearTimeout: (id) => { const i = q.findIndex((x) => x.id === id); if (i >= 0) q.splice(i, 1); },
    // fire runs the oldest pending timer and returns its delay.
    fire() { const t = q.shift(); t.fn(); return t.ms; },
  };
}

function newManager(fetchImpl, network = new EventTarget()) {
  FakeES.all = [];
  const timers = fakeTimers();
  const m = new RealtimeDataManager({
    network,
    EventSource: FakeES,
    fetch: fetchImpl || (async () => { throw new TypeError('Failed to fetch'); }),
    setTimeout: timers.setTimeout,
    clearTimeout: timers.clearTimeout,
    random: () => 0.5, // no jitter
  });
  const states = [];
  m.on('status', (s) => {
    const label = s.state === 'reconnecting' ? 'reconnecting ' + s.attempt + '/' + s.maxAttempts : s.state;
    if (states[states.length - 1] !== label) states.push(label);
  });
  return { m, timers, states };
}

check('text: direction controls in names are shown as codes, the rest as it is', () => {
  const evil = 'pay\u202Etxt.exe\u202C \u2066x\u2069 \u200F';
  eq(shown(evil), 'pay[U+202E]txt.exe[U+202C] [U+2066]x[U+2069] [U+200F]', 'shown');
  eq(shown('httproute/shop/cart/rule/1 100% "q" caf\u00e9 \u65e5\u672c'), 'httproute/shop/cart/rule/1 100% "q" caf\u00e9 \u65e5\u672c', 'plain names');
  const el = h('div', { text: evil, title: evil }, evil);
  if (/[\u202a-\u202e\u2066-\u2069\u200e\u200f]/.test(el.textContent + el.title)) throw new Error('a control reached the page: ' + JSON.stringify(el.textContent));
  setText(el, evil);
  eq(el.textContent, shown(evil), 'setText');
});

check('store: tile keys tell names with "/" apart and give the name back', () => {
  const a = tileKey('ns', 'w', 'b/c'), b = tileKey('ns', 'w/b', 'c');
  if (a === b) throw new Error('two tiles share the key ' + a);
  eq(tileName(a), 'b/c', 'name of ' + a);
  eq(tileName(tileKey('shop', 'cart', 'x%2Fy \u202E')), 'x%2Fy \u202E', 'name with an escape in it');
  eq(tileKey('shop', 'cart', 'payments'), 'shop/cart/payments', 'a plain key stays readable');
});

check('format: unknown values are a dash, not zero', () => {
  eq([fmtPercent(null), fmtRate(undefined), fmtBytes(NaN), fmtCores(null)], [NONE, NONE, NONE, NONE], 'unknowns');
  eq(fmtPercent(0), '0%', 'zero percent');
  eq(fmtBytes(1536), '1.50\u00a0KiB', 'bytes');
  eq(fmtDuration(125000), '2m\u00a005s', 'duration');
  eq(fmtCores(0.25), '0.25', 'cores');
});

check('manager: backoff 1, 2, 4, 8, 16 s, then polling-only', async () => {
  const { m, timers, states } = newManager();
  m.connect();
  eq(FakeES.all.length, 1, 'event sources after connect');
  eq(FakeES.all[0].url, '/api/v1/performance/stream', 'first url');
  FakeES.all[0].onopen();
  FakeES.all[0].emit('metrics', '{"v":1}', 'ep-41');
  const delays = [];
  for (let i = 0; i < 5; i++) {
    FakeES.all[FakeES.all.length - 1].onerror();
    delays.push(timers.fire());
  }
  eq(delays, [1000, 2000, 4000, 8000, 16000], 'reconnect delays');
  eq(FakeES.all.length, 6, 'event sources opened');
  for (const es of FakeES.all.slice(1)) eq(es.url, '/api/v1/performance/stream?lastEventId=ep-41', 'resume url');
  FakeES.all[5].onerror();
  eq(m.status.state, 'polling', 'state after the 5th failed attempt');
  eq(FakeES.all.every((es) => es.closed), true, 'every event source closed');
  eq(states, ['connecting', 'live', 'reconnecting 1/5', 'reconnecting 2/5', 'reconnecting 3/5', 'reconnecting 4/5', 'reconnecting 5/5', 'polling'], 'states');
  m.retryLive();
  eq(FakeES.all.length, 7, 'retry live opens a new stream');
  eq(FakeES.all[6].url, '/api/v1/performance/stream?lastEventId=ep-41', 'retry resumes after the last id');
  eq(timers.q.length, 0, 'polling stopped by retry live');
});

check('manager: polling reports status and latency per endpoint, and whether anything answered', async () => {
  const seen = [];
  const { m, timers } = newManager(async (url) => {
    seen.push(url);
    if (url.includes('agents')) return new Response('{"error":"boom"}', { status: 503 });
    return new Response('{"v":1}', { status: 200 });
  });
  const results = await m.pollOnce(POLL_ENDPOINTS);
  eq(results.map((r) => [r.name, r.status, r.ok]), POLL_ENDPOINTS.map((e) => [e.name, e.name === 'agents' ? 503 : 200, e.name !== 'agents']), 'results');
  eq(results.find((r) => r.name === 'agents').error, 'boom', 'error text from the JSON body');
  eq(results.every((r) => r.ms >= 0), true, 'latency measured');
  const down = newManager();
  down.m.enterPolling();
  down.timers.fire();
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setTimeout(r, 0));
  eq([down.m.status.state, down.m.status.reachable, down.m.status.detail], ['polling', false, 'aggregator unreachable; polling every 5 s'], 'status when no endpoint answers');
  void timers;
});

check('manager: a bad event is reported, not thrown, and the stream goes on', () => {
  const { m } = newManager();
  const events = [];
  const errors = [];
  m.on('event', (e) => events.push(e));
  m.on('error', (e) => errors.push(e.message));
  m.on('metrics', () => { throw new Error('listener bug'); });
  m.connect();
  const es = FakeES.all[0];
  es.emit('metrics', '{not json', 'e-1');
  es.emit('metrics', '{"v":2}', 'e-2');
  es.emit('metrics', '{"v":1}', 'e-3');
  eq(events.map((e) => [e.id, !!e.error]), [['e-1', true], ['e-2', true], ['e-3', false]], 'events');
  eq(errors.length, 3, 'errors: two bad events and one throwing listener');
  eq(m.lastEventId, 'e-3', 'last id');
});

check('manager: offline while the network is down, live again when it is back', () => {
  const net = new EventTarget();
  const { m, timers } = newManager(undefined, net);
  m.connect();
  FakeES.all[0].onopen();
  FakeES.all[0].emit('metrics', '{"v":1}', 'ep-7');
  net.dispatchEvent(new Event('offline'));
  eq([m.status.state, m.status.detail, FakeES.all[0].closed, timers.q.length], ['offline', 'no network', true, 0], 'after offline');
  net.dispatchEvent(new Event('online'));
  eq([m.status.state, FakeES.all.length, FakeES.all[1].url], ['connecting', 2, '/api/v1/performance/stream?lastEventId=ep-7'], 'after online');
});

function tile(ns, wl, name, state, extra = {}) {
  return { namespace: ns, workload: wl, name, state, pods: 2, open: state === 'open' ? 1 : 0, half_open: 0, failure_rate: 1, rate_per_sec: 10, calls: {}, since: '2026-01-01T00:00:00.000Z', stale: false, sources: ['push'], ...extra };
}

function metrics(breakers, extra = {}) {
  return { v: 1, time: new Date().toISOString(), health: { score: 90, breakdown: [] }, totals: { cpu_cores: 1 }, namespaces: [], workloads: [], breakers, ...extra };
}

check('store: bad parts of a payload spoil only their own panel', () => {
  const s = new Store();
  s.apply('snapshot', metrics([tile('a', 'w', 'x', 'closed')]));
  eq(s.errorsView(), {}, 'no errors after a good snapshot');
  s.apply('metrics', metrics('nope', { health: { score: 'high' } }));
  eq(Object.keys(s.errorsView()).sort(), ['grid', 'health'], 'components with errors');
  eq(s.tiles.size, 1, 'tiles kept after a bad list');
  eq(s.cluster.health.score, 90, 'last good score kept');
  s.apply('metrics', metrics([tile('a', 'w', 'x', 'exploded'), { state: 'open' }]));
  eq(s.errorsView(), {}, 'errors cleared by good data');
  eq(s.warnings.grid, '1 of 2 breakers could not be read (missing name)', 'warning for an unreadable tile');
  const t = s.tiles.get(tileKey('a', 'w', 'x'));
  eq([t.state, t.stateKnown], ['exploded', false], 'unknown state kept as unknown');
});

check('store: a truncated metrics event keeps the tiles it left out', () => {
  const s = new Store();
  s.apply('snapshot', metrics([tile('a', 'w', 'x', 'open'), tile('a', 'w', 'y', 'closed')]));
  s.apply('metrics', metrics([tile('a', 'w', 'x', 'open')], { breakers_total: 2 }));
  eq(s.tiles.size, 2, 'tiles after a truncated event');
  eq(s.streamed, { partial: true, streamed: 1, total: 2 }, 'coverage');
  s.apply('metrics', metrics([tile('a', 'w', 'x', 'open')], { breakers_total: 1 }));
  eq(s.tiles.size, 1, 'tiles after a complete event');
});

check('store: sort and filter the grid', () => {
  const s = new Store();
  s.apply('snapshot', metrics([
    tile('a', 'w1', 'db', 'closed', { failure_rate: 5, rate_per_sec: 100 }),
    tile('a', 'w2', 'cache', 'open', { failure_rate: 60, rate_per_sec: 1 }),
    tile('b', 'w3', 'auth', 'half_open', { failure_rate: 30, rate_per_sec: 50 }),
    tile('b', 'w3', 'zeta', 'closed', { failure_rate: null, rate_per_sec: 500 }),
  ]));
  const names = (view) => s.gridView({ sort: 'state', namespace: '', workload: '', text: '', problems: false, offset: 0, limit: 10, ...view }).tiles.map((t) => t.name);
  eq(names({}), ['cache', 'auth', 'db', 'zeta'], 'by state');
  eq(names({ sort: 'error' }), ['cache', 'auth', 'db', 'zeta'], 'by error rate, unknown last');
  eq(names({ sort: 'volume' }), ['zeta', 'db', 'auth', 'cache'], 'by volume');
  eq(names({ sort: 'name' }), ['auth', 'cache', 'db', 'zeta'], 'by name');
  eq(names({ namespace: 'b' }), ['auth', 'zeta'], 'namespace filter');
  eq(names({ workload: 'a/w1' }), ['db'], 'workload filter');
  eq(names({ text: 'CACH' }), ['cache'], 'text filter');
  eq(names({ problems: true }), ['cache', 'auth'], 'only not closed');
  eq(names({ offset: 2, limit: 1 }), ['db'], 'window');
});

check('store: agents carry their AgentProfile, and the search finds it', () => {
  const s = new Store();
  s.apply('agent', { v: 1, key: 'uid-1', state: 'connected', since: '2026-01-01T00:00:00.000Z', last_seen: '2026-01-01T00:00:00.000Z', pod: 'web-1', namespace: 'shop', workload: 'web', profile: 'web-defaults' });
  s.apply('agent', { v: 1, key: 'uid-2', state: 'missing', reason: 'agent not injected: bad annotation', since: '2026-01-01T00:00:00.000Z', last_seen: '2026-01-01T00:00:00.000Z', pod: 'cart-1', namespace: 'shop', workload: 'cart' });
  const view = (text) => s.agentsView({ sort: 'pod', text, offset: 0, limit: 10 }).rows.map((a) => [a.pod, a.profile]);
  eq(view(''), [['cart-1', ''], ['web-1', 'web-defaults']], 'rows');
  eq(view('defaults'), [['web-1', 'web-defaults']], 'search by profile');
});

check('store: alerts that stopped firing while away are marked, not invented', () => {
  const s = new Store();
  const a = { v: 1, id: 'r1', rule: 'breaker-open', state: 'firing', severity: 'critical', summary: 'x', target: {}, started: '2026-01-01T00:00:00.000Z' };
  s.apply('alert', a);
  s.apply('snapshot', metrics([], { alerts: [] }));
  const got = [...s.alerts.values()][0];
  eq([got.state, got.resolvedUnseen], ['resolved', true], 'alert after a snapshot without it');
  s.apply('alert', { ...a, state: 'resolved', resolved: '2026-01-01T00:01:00.000Z' });
  eq([...s.alerts.values()][0].resolvedUnseen, false, 'resolution seen');
});

check('time: the scrubber steps by the second for 15 minutes, by the minute before', () => {
  const latest = Date.parse('2026-11-27T14:30:00.000Z');
  const sc = scale(latest - 3600000, latest);
  eq(sc.steps, 45 + 900, 'steps over an hour');
  eq(new Date(sc.toTime(sc.steps)).toISOString(), '2026-11-27T14:30:00.000Z', 'last step: latest');
  eq(new Date(sc.toTime(sc.steps - 1)).toISOString(), '2026-11-27T14:29:59.000Z', 'one second back');
  eq(new Date(sc.toTime(45)).toISOString(), '2026-11-27T14:15:00.000Z', 'start of the seconds');
  eq(new Date(sc.toTime(44)).toISOString(), '2026-11-27T14:14:00.000Z', 'one minute before');
  eq(new Date(sc.toTime(0)).toISOString(), '2026-11-27T13:30:00.000Z', 'first step: earliest');
  eq(sc.toStep(Date.parse('2026-11-27T14:23:12.400Z')), 945 - 408, 'an instant in the seconds');
  eq(sc.toStep(Date.parse('2026-11-27T13:40:30.000Z')), 10, 'an instant in the minutes rounds down to its minute');
  eq(sc.toStep(latest + 5000), sc.steps, 'clamped to latest');
  const short = scale(latest - 120000, latest);
  eq([short.steps, short.toTime(0)], [120, latest - 120000], 'a short history is all seconds');
  eq(FINE_MS, 900000, 'fine span');
  eq(parseAt('-90s', latest), latest - 90000, 'negative duration');
  eq(parseAt('2026-11-27T14:03:12Z'), Date.parse('2026-11-27T14:03:12Z'), 'RFC 3339');
  eq(Number.isNaN(parseAt('soon')), true, 'bad value');
});

check('store: k of n counts desired pods; grid sorts by timeline', () => {
  eq(podsText({ pods: 2, desired: 3, open: 1, halfOpen: 0 }), '1/3 pods open', 'a vanished pod counts');
  eq(podsText({ pods: 4, desired: 3, open: 1, halfOpen: 0 }), '1/4 pods open', 'a rollout surge');
  eq(podsText({ pods: 2, desired: null, open: 0, halfOpen: 1 }), '1/2 pods half-open', 'no desired replicas: pods reporting');
  const s = new Store();
  s.apply('snapshot', metrics([tile('a', 'w', 'calm', 'closed'), tile('a', 'w', 'flappy', 'closed'), tile('a', 'w', 'stuck', 'open', { desired_pods: 5 })]));
  eq(s.tiles.get('a/w/stuck').desired, 5, 'desired pods kept');
  const tl = (name, transitions, longest) => ({ namespace: 'a', workload: 'w', name, timeline: { transitions, open_ms: longest, half_open_ms: 0, longest_open_ms: longest } });
  s.applyTimelines([tl('calm', 0, 0), tl('flappy', 12, 3000), tl('stuck', 1, 600000)], 900000);
  const names = (sort) => s.gridView({ sort, namespace: '', workload: '', text: '', problems: false, offset: 0, limit: 10 }).tiles.map((t) => t.name);
  eq(names('flapping'), ['flappy', 'stuck', 'calm'], 'most flapping');
  eq(names('longest'), ['stuck', 'flappy', 'calm'], 'longest open');
});

check('store: alerts grouped by workload then rule, worst first', () => {
  const s = new Store();
  const al = (id, rule, sev, wl, state = 'firing') => ({ v: 1, id, rule, state, severity: sev, summary: id, target: { namespace: 'shop', workload: wl }, started: '2026-01-01T00:00:00.000Z' });
  for (let i = 0; i < 30; i++) s.apply('alert', al('open-' + i, 'breaker-open', 'warning', 'cart'));
  s.apply('alert', al('down', 'agent-unavailable', 'warning', 'cart'));
  s.apply('alert', al('crit', 'breaker-open', 'critical', 'pay'));
  s.apply('alert', al('old', 'cpu-high', 'warning', 'web', 'resolved'));
  const v = s.alertsView(50);
  eq([v.firing, v.total], [32, 33], 'totals');
  eq(v.groups.map((g) => [g.key, g.severity, g.firing, g.total]), [['shop/pay', 'critical', 1, 1], ['shop/cart', 'warning', 31, 31], ['shop/web', 'none', 0, 1]], 'groups worst first');
  eq(v.groups[1].rules.map((r) => [r.rule, r.firing, r.items.length]), [['breaker-open', 30, 30], ['agent-unavailable', 1, 1]], 'rules within a group');
});

check('store: a frozen copy keeps what was shown while the store goes on', () => {
  const s = new Store();
  s.apply('snapshot', metrics([tile('a', 'w', 'x', 'closed')]));
  const f = s.freeze();
  s.apply('metrics', metrics([tile('a', 'w', 'x', 'open')]));
  const state = (st) => st.gridView({ sort: 'state', namespace: '', workload: '', text: '', problems: false, offset: 0, limit: 10 }).tiles[0].state;
  eq([state(f), state(s)], ['closed', 'open'], 'frozen and live');
  eq(f.dirty.has('grid'), true, 'the frozen copy is drawn whole');
});

check('panel: a component that throws shows a message in its panel only', () => {
  const root = document.createElement('section');
  root.innerHTML = '<div class="panel-head"><h2>x</h2></div><div class="panel-body"><p>kept</p></div>';
  document.body.append(root);
  const p = new Panel(root);
  p.safely(() => { throw new Error('cannot read properties of undefined'); });
  const msg = root.querySelector('.panel-msg');
  eq([msg.hidden, msg.textContent.includes('cannot read properties of undefined')], [false, true], 'message shown');
  eq(root.querySelector('.panel-body').textContent, 'kept', 'last content kept');
  p.safely(() => {});
  eq(msg.hidden, true, 'message cleared by a good render');
  root.remove();
});

const results = { total: checks.length, passed: [], failed: [] };
for (const c of checks) {
  try {
    await c.fn();
    results.passed.push(c.name);
  } catch (err) {
    results.failed.push(c.name + ': ' + (err && err.stack || err));
  }
}
window.unitResults = results;
document.getElementById('out').textContent = JSON.stringify(results, null, 2);
document.body.dataset.done = '1';
