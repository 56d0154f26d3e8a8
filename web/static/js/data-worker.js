// The dashboard's data worker: it owns the one stream connection (RealtimeDataManager) and
// the Store, so that parsing a metrics event of thousands of breakers, keeping their
// history and sorting them never blocks the page. The page tells the worker what it shows
// (sort, filters, the visible window) and the worker answers with only that, at most once
// per event batch.
//
// Time: the live store takes every event, always. What the page is shown is the live
// store, or, once paused, a frozen copy of it (nothing the stream brings is lost: it goes
// on into the live store, and Live shows it), or the view at an instant the page asked
// for, rebuilt by the aggregator (GET /api/v1/snapshot?at=).

import { RealtimeDataManager, POLL_ENDPOINTS } from './realtime-data-manager.js';
import { Store, asList, tileKey } from './store.js';
import { parseTime } from './format.js';
import { GridPainter } from './grid-canvas.js';
import { drawPerfCharts } from './sparkline.js';

const SUGGESTIONS_EVERY_MS = 15000;
// Agent events carry state changes only; "last seen" moves every sample, so the agents
// list is refreshed on a timer.
const AGENTS_EVERY_MS = 5000;
const DETAIL_EVERY_MS = 5000;
// FULL_EVERY_MS: in a large fleet the metrics event carries only the worst tiles; the
// complete list is fetched this often so that the rest do not fall far behind.
const FULL_EVERY_MS = 30000;
const HISTORY = { cpu: 'cluster:cpu_cores', mem: 'cluster:memory_bytes', rps: 'cluster:requests_per_sec', eps: 'cluster:errors_per_sec', health: 'cluster:health' };
// Workload names the API accepts as a filter (see aggregator/api scopeParams).
const WORKLOAD_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

const live = new Store();
// shown is the store the page sees: live, frozen or rewound.
let shown = live;
// RANGE_EVERY_MS: while paused, how often the range of instants and the breaker
// transitions in it are read again; SORT_EVERY_MS: how often the timelines behind the
// grid's timeline sorts are.
const RANGE_EVERY_MS = 30000;
const SORT_EVERY_MS = 15000;
const SORT_WINDOW = '15m';
const time = {
  mode: 'live', // live, paused (frozen at pausedAt) or at (rewound to at)
  pausedAt: NaN,
  at: NaN,
  events: 0, // stream events received since paused
  earliest: NaN,
  latest: NaN,
  transitions: [], // instants at which a breaker tile changed state, ascending
  transitionsSeq: 0,
  loading: false,
  error: '',
  figuresTime: NaN,
  figuresResolutionMs: NaN,
  notKept: [],
};
let timeDirty = false;
let sentTransitionsSeq = -1;
let seekInFlight = false;
let seekNext = NaN;
let rangeTimer = null;
let sortTimer = null;
// The grid's charts are drawn here, with the tiles they belong to, when the browser can
// draw off the page (OffscreenCanvas); the page only shows the bitmap.
const painter = GridPainter.supported() ? new GridPainter() : null;
// The performance panel's charts, when the page hands them over: { cpu: { canvas, width },
// ... }, with the page's colours and pixel ratio.
const perfCharts = { charts: null, height: 0, dpr: 1, colors: null };
let manager = null;
let view = {
  grid: { sort: 'state', namespace: '', workload: '', text: '', problems: false, offset: 0, limit: 60 },
  agents: { sort: 'state', text: '', offset: 0, limit: 40 },
  alertsLimit: 20,
  detail: null,
  detailWindow: '15m',
};
let viewChanged = new Set(['grid', 'agents', 'detail', 'alerts']);
let flushTimer = null;
let filtersSig = '';
let applyMs = 0;
let buildMs = 0;
let shownKeys = new Set(); // the tiles of the last grid section sent
let applied = 0;
let metricsApplied = 0;
let lastStatus = null;
let suggestionsTimer = null;
let agentsTimer = null;
let detailTimer = null;

// schedule sends the page an update soon: at once after a quiet spell, otherwise at most
// every MIN_FLUSH_MS, so that events arriving close together cost the page one frame.
// Sections that are not urgent (alerts, agents, suggestions, the optimization status)
// wait up to DEFER_MS for the next urgent update, normally the next metrics event about
// a second later, and are drawn in its frame: every frame costs the page a pass of style
// and layout, however little changed.
const MIN_FLUSH_MS = 250;
const DEFER_MS = 1200;
const URGENT = ['grid', 'gridPatch', 'health', 'detail', 'errors', 'filters'];
let lastFlush = 0;
let flushDue = 0;

function schedule() {
  const urgent = lastStatus !== null || viewChanged.size > 0 || URGENT.some((k) => shown.dirty.has(k));
  const due = lastFlush + (urgent ? MIN_FLUSH_MS : DEFER_MS);
  if (flushTimer !== null) {
    if (flushDue <= due) return;
    clearTimeout(flushTimer);
  }
  flushDue = due;
  flushTimer = setTimeout(flush, Math.max(0, due - performance.now()));
}

function flush() {
  flushTimer = null;
  const t0 = performance.now();
  lastFlush = t0;
  const store = shown;
  const d = store.dirty;
  const sections = {};
  try {
    if (lastStatus) sections.status = lastStatus;
    lastStatus = null;
    if (timeDirty) {
      sections.time = { ...time, transitions: undefined };
      if (sentTransitionsSeq !== time.transitionsSeq) {
        sections.time.transitions = time.transitions;
        sentTransitionsSeq = time.transitionsSeq;
      }
      timeDirty = false;
    }
    if (d.has('health') || d.has('perf')) sections.health = store.healthView();
    if (d.has('perf')) {
      const perf = store.perfView();
      if (perfCharts.charts) {
        drawPerfCharts(perf, perfCharts.charts, perfCharts.height, perfCharts.colors, perfCharts.dpr);
        for (const k of ['times', 'cpu', 'mem', 'rps', 'eps', 'health']) delete perf[k];
      }
      sections.perf = perf;
    }
    if (d.has('alerts') || viewChanged.has('alerts')) sections.alerts = store.alertsView(view.alertsLimit);
    if (d.has('suggestions')) sections.suggestions = store.suggestionsView();
    if (d.has('filters')) {
      const f = store.filtersView();
      const sig = f.namespaces.join('\u0001') + '\u0002' + f.workloads.join('\u0001');
      if (sig !== filtersSig) {
        filtersSig = sig;
        sections.filters = f;
      }
    }
    if (d.has('grid') || viewChanged.has('grid')) {
      const grid = { ...store.gridView(view.grid), view: view.grid };
      if (painter) {
        try {
          grid.canvas = painter.paint(grid);
          store.clearError('grid', 'charts');
        } catch (err) {
          grid.canvas = null;
          store.setError('grid', 'charts', 'the charts could not be drawn (' + (err && err.message || err) + ')');
        }
        // The page does not draw the charts: their history stays here.
        delete grid.times;
        for (const t of grid.tiles) {
          delete t.rateHist;
          delete t.failHist;
          delete t.stateHist;
        }
      }
      sections.grid = grid;
      shownKeys = new Set(grid.tiles.map((t) => t.key));
    }
    else if (d.has('gridPatch')) {
      // Only tiles the page shows are patched; the others wait for the next metrics event.
      const patch = store.gridPatchView().filter((t) => shownKeys.has(t.key));
      if (patch.length) sections.gridPatch = patch;
    }
    if (d.has('agents') || viewChanged.has('agents')) sections.agents = { ...store.agentsView(view.agents), view: view.agents };
    if (view.detail && (d.has('grid') || d.has('detail') || viewChanged.has('detail'))) sections.detail = store.detailView(view.detail);
    if (d.has('errors') || Object.keys(sections).length) {
      sections.errors = store.errorsView();
      sections.warnings = { ...store.warnings };
    }
  } catch (err) {
    sections.errors = { ...store.errorsView(), page: 'the data worker failed: ' + (err && err.message || err) };
  }
  d.clear();
  viewChanged.clear();
  buildMs += performance.now() - t0;
  // Nothing for the page (an event that changed nothing it shows): no message, no frame.
  if (!Object.keys(sections).length) return;
  const transfer = sections.grid && sections.grid.canvas ? [sections.grid.canvas.bitmap] : [];
  postMessage({ type: 'update', sections, timing: { applyMs, buildMs, events: applied, metrics: metricsApplied } }, transfer);
  buildMs = 0;
  applyMs = 0;
  applied = 0;
  metricsApplied = 0;
}

function timed(fn) {
  const t0 = performance.now();
  fn();
  applyMs += performance.now() - t0;
  applied++;
  schedule();
}

// received counts a stream event that arrived while the page shows another time.
function received() {
  if (time.mode === 'live') return;
  time.events++;
  timeDirty = true;
}

async function fetchJSON(url) {
  const resp = await fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' } });
  const text = await resp.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error(url + ': response is not JSON (HTTP ' + resp.status + ')');
  }
  if (!resp.ok) {
    const err = new Error(url + ': ' + (data && data.error ? data.error : 'HTTP ' + resp.status));
    err.body = data;
    throw err;
  }
  return data;
}

// fetchInto polls one endpoint outside polling-only mode (suggestions have no stream
// event; resolved alerts and the optimization state are not in the snapshot).
async function fetchInto(name, component) {
  const ep = POLL_ENDPOINTS.find((e) => e.name === name);
  try {
    const data = await fetchJSON(ep.url);
    live.clearError(component, 'fetch-' + name);
    timed(() => live.applyPoll(name, data));
  } catch (err) {
    live.setError(component, 'fetch-' + name, String(err.message || err));
    schedule();
  }
}

// Suggestions have no stream event, and the optimization state's client counts change
// without one: both are refreshed on a timer.
function startSuggestions() {
  clearTimeout(suggestionsTimer);
  fetchInto('suggestions', 'suggestions');
  fetchInto('optimization-status', 'perf');
  suggestionsTimer = setTimeout(startSuggestions, SUGGESTIONS_EVERY_MS);
}

function startAgents() {
  clearTimeout(agentsTimer);
  fetchInto('agents', 'agents');
  agentsTimer = setTimeout(startAgents, AGENTS_EVERY_MS);
}

// Per-pod detail is not in the metrics event; the open detail dialog fetches it for the
// tile's workload.
// The detail also shows what the breaker did over a window (its timeline).
async function fetchDetail() {
  clearTimeout(detailTimer);
  const key = view.detail;
  if (!key) return;
  const store = shown;
  const tile = store.tiles.get(key);
  if (tile) {
    const q = new URLSearchParams();
    if (tile.namespace) q.set('namespace', tile.namespace);
    if (WORKLOAD_RE.test(tile.workload) && tile.workload.length <= 253) q.set('workload', tile.workload);
    q.set('window', view.detailWindow);
    try {
      const data = await fetchJSON('/api/v1/fault-tolerance/circuit-breakers?' + q);
      const list = asList(data, 'breakers');
      const match = list.find((b) => b && tileKey(b.namespace || '', b.workload || '', b.name) === key);
      if (view.detail === key) {
        store.setPerPod(key, match && Array.isArray(match.per_pod) ? match.per_pod : [], match && isTimeline(match.timeline) ? match.timeline : null);
        store.clearError('detail', 'fetch');
      }
    } catch (err) {
      store.setError('detail', 'fetch', 'per-pod detail unavailable: ' + (err.message || err));
    }
    store.dirty.add('detail');
    schedule();
  }
  if (view.detail === key) detailTimer = setTimeout(fetchDetail, DETAIL_EVERY_MS);
}

let fullInFlight = false;
async function maybeFetchFull() {
  if (fullInFlight || !live.streamed.partial) return;
  if (Number.isFinite(live.lastFull) && Date.now() - live.lastFull < FULL_EVERY_MS) return;
  fullInFlight = true;
  try {
    await fetchInto('circuit-breakers', 'grid');
  } finally {
    fullInFlight = false;
  }
}

async function backfill() {
  await Promise.all(Object.entries(HISTORY).map(async ([k, series]) => {
    try {
      const data = await fetchJSON('/api/v1/history?series=' + encodeURIComponent(series) + '&window=5m');
      timed(() => live.guard('perf', () => live.applyHistory(k, data), 'history'));
    } catch {
      // No history yet (a fresh aggregator) is normal: the sparklines fill as data comes.
    }
  }));
}

function start({ at, ...options }) {
  manager = new RealtimeDataManager({
    ...options,
    pollEndpoints: POLL_ENDPOINTS.filter((e) => e.name !== 'circuit-breakers'),
  });
  // Status changes are rare and each one is shown: they are sent at once, not coalesced.
  manager.on('status', (s) => {
    lastStatus = s;
    clearTimeout(flushTimer);
    flush();
  });
  manager.on('event', (ev) => {
    // An event the manager could not parse is reported in the panel it feeds until the
    // next good event of its type.
    const comp = { snapshot: 'grid', metrics: 'grid', 'circuit-breaker': 'grid', agent: 'agents', alert: 'alerts', optimization: 'perf' }[ev.type] || 'page';
    if (ev.error) {
      live.setError(comp, 'event-' + ev.type, ev.error);
      schedule();
      return;
    }
    live.clearError(comp, 'event-' + ev.type);
    received();
    timed(() => live.apply(ev.type, ev.data, ev.id));
    if (ev.type === 'metrics') {
      metricsApplied++;
      maybeFetchFull();
    }
    if (ev.type === 'circuit-breaker' && time.mode === 'live' && view.detail && ev.data.tile &&
      tileKey(ev.data.tile.namespace || '', ev.data.tile.workload || '', ev.data.tile.name) === view.detail) {
      fetchDetail();
    }
  });
  manager.on('poll', (r) => {
    if (r.ok) timed(() => live.applyPoll(r.name, r.data));
  });
  manager.connect();
  fetchInto('alerts', 'alerts');
  startSuggestions();
  startAgents();
  backfill();
  if (Number.isFinite(at)) seek(at);
}

self.onmessage = (e) => {
  const msg = e.data || {};
  switch (msg.type) {
    case 'start':
      start(msg.options || {});
      break;
    case 'view': {
      const next = msg.view || {};
      const sortBefore = view.grid.sort;
      for (const k of ['grid', 'agents']) {
        if (next[k] && JSON.stringify(next[k]) !== JSON.stringify(view[k])) {
          view[k] = { ...view[k], ...next[k] };
          viewChanged.add(k);
        }
      }
      if (next.gridCanvas && painter) {
        painter.geom = next.gridCanvas;
        viewChanged.add('grid');
      }
      if ('detail' in next && next.detail !== view.detail) {
        view.detail = next.detail;
        live.detailKey = shown.detailKey = next.detail || '';
        viewChanged.add('detail');
        fetchDetail();
      }
      if (next.detailWindow && next.detailWindow !== view.detailWindow) {
        view.detailWindow = next.detailWindow;
        fetchDetail();
      }
      if (view.grid.sort !== sortBefore) timelineSort();
      if (next.alertsLimit && next.alertsLimit !== view.alertsLimit) {
        view.alertsLimit = next.alertsLimit;
        viewChanged.add('alerts');
      }
      schedule();
      break;
    }
    case 'perf-charts':
      if (msg.canvases) {
        perfCharts.charts = {};
        for (const [k, canvas] of Object.entries(msg.canvases)) perfCharts.charts[k] = { canvas, width: 0 };
      }
      if (msg.sizes && perfCharts.charts) {
        for (const [k, w] of Object.entries(msg.sizes)) if (perfCharts.charts[k]) perfCharts.charts[k].width = w;
        Object.assign(perfCharts, { height: msg.height, dpr: msg.dpr, colors: msg.colors });
        shown.dirty.add('perf');
        schedule();
      }
      break;
    case 'time':
      timeAction(msg);
      break;
    case 'retry-live':
      manager.retryLive();
      break;
    case 'refresh':
      fetchInto('suggestions', 'suggestions');
      break;
    default:
      break;
  }
};

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isTimeline = (t) => isObj(t) && Array.isArray(t.periods) && Array.isArray(t.openings);

// show makes st the store the page sees and has the page draw all of it.
function show(st) {
  shown = st;
  st.detailKey = view.detail || '';
  for (const k of ['health', 'perf', 'alerts', 'suggestions', 'filters', 'grid', 'agents', 'detail', 'errors']) st.dirty.add(k);
  filtersSig = '';
  timeDirty = true;
  clearTimeout(flushTimer);
  flushTimer = null;
  flush();
}

function timeAction(msg) {
  switch (msg.action) {
    case 'pause':
      if (time.mode === 'live') pause();
      break;
    case 'live':
      clearTimeout(rangeTimer);
      Object.assign(time, { mode: 'live', pausedAt: NaN, at: NaN, events: 0, error: '', loading: false, notKept: [] });
      seekNext = NaN;
      show(live);
      break;
    case 'seek':
      seek(msg.at);
      break;
    case 'jump':
      jump(msg.dir);
      break;
    default:
      break;
  }
}

// pause freezes what is shown; the stream goes on into the live store. What is shown is
// as of now: the last metrics event and every breaker event since.
function pause() {
  Object.assign(time, { mode: 'paused', pausedAt: Date.now(), at: NaN, events: 0, error: '', earliest: NaN, transitions: [], transitionsSeq: 0 });
  show(live.freeze());
  fetchRange();
}

// seek shows the view at instant at (ms), rebuilt by the aggregator. Requests made while
// one is in flight collapse into the last one.
async function seek(at) {
  if (!Number.isFinite(at)) return;
  const wasLive = time.mode === 'live';
  time.mode = 'at';
  if (wasLive) {
    Object.assign(time, { pausedAt: Date.now(), events: 0, earliest: NaN, transitions: [], transitionsSeq: 0 });
    fetchRange();
  }
  time.at = at;
  time.loading = true;
  timeDirty = true;
  schedule();
  if (seekInFlight) {
    seekNext = at;
    return;
  }
  seekInFlight = true;
  try {
    const data = await fetchJSON('/api/v1/snapshot?at=' + encodeURIComponent(new Date(at).toISOString()));
    if (time.mode === 'at' && time.at === at) {
      const st = new Store();
      st.applyCluster(data, true);
      // Suggestions are not kept per instant: those of now stay in their panel.
      st.suggestions = live.suggestions;
      st.optimization = live.optimization;
      const a = isObj(data.at) ? data.at : {};
      Object.assign(time, {
        error: '', earliest: parseTime(a.earliest), figuresTime: parseTime(a.figures_time),
        figuresResolutionMs: typeof a.figures_resolution_ms === 'number' ? a.figures_resolution_ms : NaN,
        notKept: Array.isArray(a.not_kept) ? a.not_kept.map(String) : [],
      });
      show(st);
    }
  } catch (err) {
    const body = isObj(err.body) ? err.body : {};
    const earliest = parseTime(body.earliest);
    const latest = parseTime(body.latest);
    if (Number.isFinite(earliest)) time.earliest = earliest;
    // This clock may run a little ahead of the aggregator's: an instant just after its
    // now is its now.
    if (Number.isFinite(latest) && at > latest && at - latest < 5000 && !Number.isFinite(seekNext)) seekNext = latest;
    else time.error = 'Could not show ' + new Date(at).toISOString() + ': ' + (err.message || err);
  } finally {
    seekInFlight = false;
    time.loading = false;
    timeDirty = true;
    schedule();
    if (Number.isFinite(seekNext)) {
      const next = seekNext;
      seekNext = NaN;
      if (time.mode === 'at') seek(next);
    }
  }
}

// jump goes to the previous (dir -1) or next (dir 1) instant at which a breaker tile
// changed state.
async function jump(dir) {
  if (time.mode === 'live') pause();
  if (!time.transitionsSeq) await fetchRange();
  const from = time.mode === 'at' ? time.at : time.pausedAt;
  const list = time.transitions;
  let target = NaN;
  if (dir < 0) {
    for (let i = list.length - 1; i >= 0; i--) if (list[i] < from) { target = list[i]; break; }
  } else {
    for (const t of list) if (t > from) { target = t; break; }
  }
  if (Number.isFinite(target)) seek(target);
  else {
    time.error = dir < 0 ? 'No breaker transition before this instant in the history kept.' : 'No breaker transition after this instant.';
    timeDirty = true;
    schedule();
  }
}

// retentionWindow is the aggregator's history retention as a window parameter.
function retentionWindow() {
  const ms = live.optimization && typeof live.optimization.history_retention_ms === 'number' ? live.optimization.history_retention_ms : 3600000;
  return { ms, param: Math.max(1, Math.floor(ms / 1000)) + 's' };
}

// fetchRange reads what the scrubber spans: the breaker tiles' timelines over the
// retention, whose periods start and end where a tile changed state, and from when the
// aggregator knows.
async function fetchRange() {
  clearTimeout(rangeTimer);
  const ret = retentionWindow();
  if (!Number.isFinite(time.earliest)) time.earliest = time.pausedAt - ret.ms;
  time.latest = time.pausedAt;
  timeDirty = true;
  try {
    const data = await fetchJSON('/api/v1/fault-tolerance/circuit-breakers?per_pod=false&window=' + ret.param);
    const instants = new Set();
    let earliest = Infinity;
    for (const b of asList(data, 'breakers')) {
      if (!isObj(b) || !isTimeline(b.timeline)) continue;
      const from = parseTime(b.timeline.from);
      if (Number.isFinite(from)) earliest = Math.min(earliest, from);
      for (const p of b.timeline.periods) {
        if (!isObj(p)) continue;
        const a = parseTime(p.from);
        const z = parseTime(p.to);
        if (Number.isFinite(a) && a > from) instants.add(a);
        if (Number.isFinite(z) && !p.ongoing) instants.add(z);
      }
    }
    if (time.mode === 'live') return;
    if (Number.isFinite(earliest)) time.earliest = Math.max(earliest, time.pausedAt - ret.ms);
    time.transitions = [...instants].filter((t) => t <= time.pausedAt).sort((a, b) => a - b);
    time.transitionsSeq++;
  } catch (err) {
    time.error = 'The history of breaker transitions could not be read: ' + (err.message || err);
  }
  timeDirty = true;
  schedule();
  if (time.mode !== 'live') rangeTimer = setTimeout(fetchRange, RANGE_EVERY_MS);
}

// timelineSort keeps the timelines behind the grid's "most flapping" and "longest open"
// sorts fresh while one of them is chosen.
async function timelineSort() {
  clearTimeout(sortTimer);
  if (view.grid.sort !== 'flapping' && view.grid.sort !== 'longest') return;
  try {
    const data = await fetchJSON('/api/v1/fault-tolerance/circuit-breakers?per_pod=false&window=' + SORT_WINDOW);
    const list = asList(data, 'breakers');
    const ms = typeof data.window_ms === 'number' ? data.window_ms : NaN;
    for (const st of new Set([live, shown])) {
      st.guard('grid', () => st.applyTimelines(list, ms), 'timelines');
    }
  } catch (err) {
    live.setError('grid', 'timelines', 'breaker timelines unavailable: ' + (err.message || err));
  }
  viewChanged.add('grid');
  schedule();
  sortTimer = setTimeout(timelineSort, SORT_EVERY_MS);
}
