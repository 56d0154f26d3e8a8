// The dashboard page: it starts the data worker, and on each animation frame renders the
// sections the worker sent since the last frame. Each panel renders inside its own guard,
// so one failing panel shows a message and the others keep working.
//
// URL parameters (for tests and slow links): backoff-ms (first reconnect delay, default
// 1000), poll-ms (polling interval in polling-only mode, default 5000); at (an RFC 3339
// time or a negative duration such as -90s) opens the view as it was then.

import { Panel, setText } from './component.js';
import { ConnectionStatus } from './components/connection-status.js';
import { HealthScore } from './components/health-score.js';
import { PerformancePanel } from './components/performance-panel.js';
import { AlertsFeed, Suggestions } from './components/alerts-feed.js';
import { BreakerGrid } from './components/breaker-grid.js';
import { BreakerDetail } from './components/breaker-detail.js';
import { AgentsTable } from './components/agents-table.js';
import { TimeControl, parseAt } from './components/time-control.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const numParam = (name) => {
  const v = Number(params.get(name));
  return Number.isFinite(v) && v > 0 ? v : undefined;
};

const worker = new Worker(new URL('./data-worker.js', import.meta.url), { type: 'module' });
const post = (msg) => worker.postMessage(msg);

const panels = {
  health: new Panel($('health')),
  perf: new Panel($('perf')),
  alerts: new Panel($('alerts')),
  suggestions: new Panel($('suggestions')),
  grid: new Panel($('breakers')),
  agents: new Panel($('agents')),
};
const pageMsg = $('page-msg');

function build(panel, make) {
  let c = null;
  panel.safely(() => { c = make(); });
  return c;
}

const timeCtl = new TimeControl($('timebar'), {
  onPause: () => post({ type: 'time', action: 'pause' }),
  onLive: () => post({ type: 'time', action: 'live' }),
  onSeek: (at) => post({ type: 'time', action: 'seek', at }),
  onJump: (dir) => post({ type: 'time', action: 'jump', dir }),
});
const conn = new ConnectionStatus($('conn'), $('banner'), { onRetry: () => post({ type: 'retry-live' }) });
const health = build(panels.health, () => new HealthScore($('health').querySelector('.panel-body')));
const perf = build(panels.perf, () => new PerformancePanel($('perf').querySelector('.panel-body'), {
  onCharts: (msg, transfer = []) => worker.postMessage({ type: 'perf-charts', ...msg }, transfer),
}));
const alerts = build(panels.alerts, () => new AlertsFeed($('alerts').querySelector('.panel-body'), $('alerts-count')));
const suggestions = build(panels.suggestions, () => new Suggestions($('suggestions').querySelector('.panel-body'), $('suggestions-count')));
let detail = null;
const grid = build(panels.grid, () => new BreakerGrid($('breakers').querySelector('.panel-body'), {
  onView: (v) => post({ type: 'view', view: { grid: v } }),
  onOpen: (key) => {
    detail.show(key);
    post({ type: 'view', view: { detail: key } });
  },
  onCanvas: (c) => post({ type: 'view', view: { gridCanvas: c } }),
}));
detail = new BreakerDetail($('breaker-detail'), {
  onClose: () => post({ type: 'view', view: { detail: null } }),
  onWindow: (w) => post({ type: 'view', view: { detailWindow: w } }),
});
const agents = build(panels.agents, () => new AgentsTable($('agents').querySelector('.panel-body'), {
  onView: (v) => post({ type: 'view', view: { agents: v } }),
}));

// Sections arrive from the worker at any time; the page draws the newest of each once per
// frame, so a burst of events (a replay after reconnecting) costs one render.
let pending = {};
let frame = 0;
const stats = { updates: 0, renders: 0, lastRenderMs: 0, maxRenderMs: 0, totalRenderMs: 0, worker: { applyMs: 0, buildMs: 0, events: 0, metrics: 0 } };
// Exposed for the benchmark and for debugging in the console.
globalThis.faultlineStats = stats;

worker.onmessage = (e) => {
  const msg = e.data;
  if (!msg || msg.type !== 'update') return;
  // A full grid supersedes patches; patches that arrive before a frame add up.
  const sec = msg.sections;
  if (sec.gridPatch && pending.gridPatch && !sec.grid) sec.gridPatch = pending.gridPatch.concat(sec.gridPatch);
  if (sec.grid) {
    delete pending.gridPatch;
    // A grid not drawn yet is superseded: free the bitmap of its charts.
    if (pending.grid && pending.grid.canvas) pending.grid.canvas.bitmap.close();
  }
  Object.assign(pending, sec);
  stats.updates++;
  stats.worker.applyMs += msg.timing.applyMs;
  stats.worker.buildMs += msg.timing.buildMs;
  stats.worker.events += msg.timing.events;
  stats.worker.metrics += msg.timing.metrics;
  if (!frame) frame = requestAnimationFrame(render);
};
worker.onerror = (e) => {
  pageMsg.hidden = false;
  pageMsg.textContent = 'The dashboard\u2019s data worker failed (' + (e.message || 'unknown error') + '). Reload the page; the API under /api/v1/ still answers.';
};

function render() {
  frame = 0;
  const t0 = performance.now();
  const s = pending;
  pending = {};
  if (s.status) conn.render(s.status);
  if (s.time) timeCtl.render(s.time);
  if (s.health && health) {
    conn.dataReceived(Date.now());
    conn.renderDetail();
    panels.health.safely(() => health.render(s.health));
  }
  if (s.perf && perf) panels.perf.safely(() => perf.render(s.perf));
  if (s.alerts && alerts) panels.alerts.safely(() => alerts.render(s.alerts));
  if (s.suggestions && suggestions) panels.suggestions.safely(() => suggestions.render(s.suggestions));
  if (s.filters && grid) panels.grid.safely(() => grid.filters(s.filters));
  if (s.grid && grid) panels.grid.safely(() => grid.render(s.grid));
  if (s.gridPatch && grid) panels.grid.safely(() => grid.patch(s.gridPatch));
  if (s.agents && agents) panels.agents.safely(() => agents.render(s.agents));
  if (s.detail) {
    try {
      detail.render(s.detail);
      detail.setError('');
    } catch (err) {
      detail.setError('The detail failed to draw: ' + err.message);
    }
  }
  if (s.errors) {
    const e = s.errors;
    const w = s.warnings || {};
    panels.health.setMessage('data', e.health || '');
    panels.perf.setMessage('data', e.perf || '');
    panels.alerts.setMessage('data', e.alerts || '');
    panels.suggestions.setMessage('data', e.suggestions || '');
    panels.grid.setMessage('data', e.grid || '');
    panels.grid.setMessage('warning', w.grid || '');
    panels.agents.setMessage('data', e.agents || '');
    panels.agents.setMessage('warning', w.agents || '');
    detail.setError(e.detail || '');
    if (pageMsg.hidden !== !e.page) pageMsg.hidden = !e.page;
    setText(pageMsg, e.page || '');
  }
  // The frame that draws the grid (once a second with the metrics) moves the clocks on
  // too, so that they change in the frame that changes the figures, not in one of their own.
  if (s.grid || Date.now() - lastTick >= 900) tick();
  const ms = performance.now() - t0;
  stats.renders++;
  stats.lastRenderMs = ms;
  stats.totalRenderMs += ms;
  if (ms > stats.maxRenderMs) stats.maxRenderMs = ms;
}

// Relative times ("2m 05s") move on with each frame drawn, and on a timer when no data
// arrives (polling, or a quiet stream), so that they do not cost a frame of their own
// while data streams in.
let lastTick = 0;
function tick() {
  const now = Date.now();
  lastTick = now;
  conn.renderDetail(now);
  if (grid) panels.grid.safely(() => grid.tick(now));
  if (alerts) panels.alerts.safely(() => alerts.tick(now));
  if (agents) panels.agents.safely(() => agents.tick(now));
}
setInterval(() => {
  if (Date.now() - lastTick >= 1500) tick();
}, 500);

post({ type: 'start', options: { baseDelayMs: numParam('backoff-ms'), pollIntervalMs: numParam('poll-ms'), at: parseAt(params.get('at')) } });
