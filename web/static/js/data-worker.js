// The dashboard's data worker: it owns the one stream connection (RealtimeDataManager) and
// the Store, so that parsing a metrics event of thousands of breakers, keeping their
// history and sorting them never blocks the page. The page tells the worker what it shows
// (sort, filters, the visible window) and the worker answers with only that, at most once
// per event batch.

import { RealtimeDataManager, POLL_ENDPOINTS } from './realtime-data-manager.js';
import { Store, asList, tileKey } from './store.js';
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

const store = new Store();
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
  alertsLimit: 50,
  detail: null,
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
  const urgent = lastStatus !== null || viewChanged.size > 0 || URGENT.some((k) => store.dirty.has(k));
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
  const d = store.dirty;
  const sections = {};
  try {
    if (lastStatus) sections.status = lastStatus;
    lastStatus = null;
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

async function fetchJSON(url) {
  const resp = await fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' } });
  const text = await resp.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error(url + ': response is not JSON (HTTP ' + resp.status + ')');
  }
  if (!resp.ok) throw new Error(url + ': ' + (data && data.error ? data.error : 'HTTP ' + resp.status));
  return data;
}

// fetchInto polls one endpoint outside polling-only mode (suggestions have no stream
// event; resolved alerts and the optimization state are not in the snapshot).
async function fetchInto(name, component) {
  const ep = POLL_ENDPOINTS.find((e) => e.name === name);
  try {
    const data = await fetchJSON(ep.url);
    store.clearError(component, 'fetch-' + name);
    timed(() => store.applyPoll(name, data));
  } catch (err) {
    store.setError(component, 'fetch-' + name, String(err.message || err));
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
async function fetchDetail() {
  clearTimeout(detailTimer);
  const key = view.detail;
  if (!key) return;
  const tile = store.tiles.get(key);
  if (tile) {
    const q = new URLSearchParams();
    if (tile.namespace) q.set('namespace', tile.namespace);
    if (WORKLOAD_RE.test(tile.workload) && tile.workload.length <= 253) q.set('workload', tile.workload);
    try {
      const data = await fetchJSON('/api/v1/fault-tolerance/circuit-breakers?' + q);
      const list = asList(data, 'breakers');
      const match = list.find((b) => b && tileKey(b.namespace || '', b.workload || '', b.name) === key);
      if (view.detail === key) {
        store.setPerPod(key, match && Array.isArray(match.per_pod) ? match.per_pod : []);
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
  if (fullInFlight || !store.streamed.partial) return;
  if (Number.isFinite(store.lastFull) && Date.now() - store.lastFull < FULL_EVERY_MS) return;
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
      timed(() => store.guard('perf', () => store.applyHistory(k, data), 'history'));
    } catch {
      // No history yet (a fresh aggregator) is normal: the sparklines fill as data comes.
    }
  }));
}

function start(options) {
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
      store.setError(comp, 'event-' + ev.type, ev.error);
      schedule();
      return;
    }
    store.clearError(comp, 'event-' + ev.type);
    timed(() => store.apply(ev.type, ev.data, ev.id));
    if (ev.type === 'metrics') {
      metricsApplied++;
      maybeFetchFull();
    }
    if (ev.type === 'circuit-breaker' && view.detail && ev.data.tile &&
      tileKey(ev.data.tile.namespace || '', ev.data.tile.workload || '', ev.data.tile.name) === view.detail) {
      fetchDetail();
    }
  });
  manager.on('poll', (r) => {
    if (r.ok) timed(() => store.applyPoll(r.name, r.data));
  });
  manager.connect();
  fetchInto('alerts', 'alerts');
  startSuggestions();
  startAgents();
  backfill();
}

self.onmessage = (e) => {
  const msg = e.data || {};
  switch (msg.type) {
    case 'start':
      start(msg.options || {});
      break;
    case 'view': {
      const next = msg.view || {};
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
        store.detailKey = next.detail || '';
        viewChanged.add('detail');
        fetchDetail();
      }
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
        store.dirty.add('perf');
        schedule();
      }
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
