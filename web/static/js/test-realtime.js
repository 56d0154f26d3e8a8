// The stream test page (the seed's /test-realtime.html): connection indicator, live
// metrics, an event log of every SSE event with its id, Connect/Disconnect, a "Test
// polling" button calling every polling endpoint and a "Cleanup memory" button.
//
// The log checks event ids as they arrive: within one aggregator run (epoch) each event
// must carry the next sequence number, and a new run must start with a snapshot. Anything
// else is counted as missed and shown in red, so a lost event cannot go unnoticed.
//
// URL parameters: backoff-ms, poll-ms (as on the dashboard), autoconnect=0.

import { RealtimeDataManager, POLL_ENDPOINTS } from './realtime-data-manager.js';
import { ConnectionStatus, statusLabel } from './components/connection-status.js';
import { h, setText } from './component.js';
import { fmtBytes, fmtCores, fmtNumber, fmtRate, fmtClock } from './format.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const numParam = (name) => {
  const v = Number(params.get(name));
  return Number.isFinite(v) && v > 0 ? v : undefined;
};

const MAX_LOG_ROWS = 2000;

const mgr = new RealtimeDataManager({
  baseDelayMs: numParam('backoff-ms'),
  pollIntervalMs: numParam('poll-ms'),
  pollEndpoints: POLL_ENDPOINTS,
});
const conn = new ConnectionStatus($('conn'), $('banner'), { onRetry: () => mgr.retryLive() });

// ---- live metrics ----
const metricsEl = $('live-metrics');
const kv = {};
for (const [k, label] of [
  ['health', 'Health score'], ['agents', 'Agents connected'], ['cpu', 'CPU'], ['mem', 'Memory'],
  ['rps', 'Requests'], ['eps', 'Errors'], ['breakers', 'Breakers open'], ['alerts', 'Alerts firing'],
  ['lastId', 'Last event id'], ['events', 'Events received'], ['missed', 'Missed events'], ['metricsAt', 'Last metrics'],
]) {
  const dd = h('dd', { id: 'm-' + k, text: '\u2014' });
  kv[k] = dd;
  metricsEl.append(h('div', {}, h('dt', { text: label }), dd));
}

function showTotals(data) {
  const t = data.totals || {};
  if (data.health) setText(kv.health, String(data.health.score));
  setText(kv.agents, fmtNumber(t.agents_connected) + ' / ' + fmtNumber(t.agents));
  setText(kv.cpu, fmtCores(t.cpu_cores) + ' cores');
  setText(kv.mem, fmtBytes(t.memory_bytes));
  setText(kv.rps, fmtRate(t.requests_per_sec));
  setText(kv.eps, fmtRate(t.errors_per_sec));
  setText(kv.breakers, fmtNumber(t.breakers_open) + ' / ' + fmtNumber(t.breakers));
  setText(kv.alerts, fmtNumber(t.alerts_firing));
  setText(kv.metricsAt, fmtClock(Date.parse(data.time)));
}

// ---- event log with id checking ----
const logBody = $('event-log').querySelector('tbody');
const counters = { events: 0, missed: 0, rows: 0 };
const seqState = { epoch: '', seq: -1 };

function splitID(id) {
  const i = id.lastIndexOf('-');
  if (i <= 0) return null;
  const seq = Number(id.slice(i + 1));
  return Number.isInteger(seq) ? { epoch: id.slice(0, i), seq } : null;
}

// checkID returns a note for the log row and counts missed events.
function checkID(ev) {
  const id = splitID(ev.id);
  if (!id) return { kind: 'error', note: 'event without a valid id' };
  const prev = { ...seqState };
  seqState.epoch = id.epoch;
  seqState.seq = id.seq;
  if (ev.type === 'snapshot') {
    if (!prev.epoch) return { kind: 'event', note: 'initial snapshot' };
    if (prev.epoch !== id.epoch) return { kind: 'event', note: 'fresh snapshot: new aggregator run' };
    return { kind: 'event', note: 'fresh snapshot (replay not possible)' };
  }
  if (prev.epoch !== id.epoch) {
    counters.missed++;
    return { kind: 'gap', note: 'new aggregator run without a snapshot' };
  }
  if (id.seq === prev.seq + 1) return { kind: 'event', note: '' };
  if (id.seq <= prev.seq) {
    counters.missed++;
    return { kind: 'gap', note: 'out of order or repeated (previous ' + prev.seq + ')' };
  }
  counters.missed += id.seq - prev.seq - 1;
  return { kind: 'gap', note: 'missed ' + (id.seq - prev.seq - 1) + ' event(s) after ' + prev.epoch + '-' + prev.seq };
}

function summary(type, d) {
  if (!d) return '';
  switch (type) {
    case 'snapshot':
      return 'health ' + (d.health ? d.health.score : '?') + ', ' + (d.totals ? d.totals.agents : '?') + ' agents, ' + (Array.isArray(d.breakers) ? d.breakers.length : '?') + ' breaker tiles';
    case 'metrics':
      return 'health ' + (d.health ? d.health.score : '?') + ', ' + (d.totals ? fmtCores(d.totals.cpu_cores) + ' cores, ' + fmtRate(d.totals.requests_per_sec) : '');
    case 'circuit-breaker': {
      const tr = d.transition || {};
      return (d.namespace ? d.namespace + '/' : '') + d.workload + ' pod ' + d.pod + ': ' + (tr.breaker ? tr.breaker.name : '?') + ' ' + (tr.from || 'new') + ' \u2192 ' + tr.to;
    }
    case 'alert':
      return d.state + ' ' + d.severity + ': ' + d.summary;
    case 'optimization':
      return 'broadcast ' + d.broadcast_interval_ms + ' ms' + (d.coalescing ? ' (coalescing)' : '') + ', ' + d.subscribers + ' clients';
    case 'agent':
      return d.key + ': ' + d.state + (d.reason ? ' (' + d.reason + ')' : '');
    default:
      return '';
  }
}

function addRow(cells, kind, dataset = {}) {
  const tr = h('tr', { dataset: { kind, ...dataset } }, ...cells.map((c) => h('td', { text: c })));
  logBody.prepend(tr);
  counters.rows++;
  while (logBody.childElementCount > MAX_LOG_ROWS) logBody.lastElementChild.remove();
  setText($('log-summary'), counters.events + ' events, ' + counters.missed + ' missed' + (counters.rows > MAX_LOG_ROWS ? ' (showing newest ' + MAX_LOG_ROWS + ' rows)' : ''));
}

mgr.on('event', (ev) => {
  counters.events++;
  const check = checkID(ev);
  const kind = ev.error ? 'error' : check.kind;
  const text = ev.error || [summary(ev.type, ev.data), check.note].filter(Boolean).join(' \u2014 ');
  addRow([fmtClock(ev.received), ev.id, ev.type, String(ev.raw.length), text], kind, { id: ev.id, type: ev.type });
  setText(kv.lastId, ev.id || '\u2014');
  setText(kv.events, String(counters.events));
  setText(kv.missed, String(counters.missed));
  kv.missed.dataset.bad = String(counters.missed > 0);
  if (!ev.error && (ev.type === 'metrics' || ev.type === 'snapshot')) showTotals(ev.data);
});

mgr.on('status', (s) => {
  conn.render(s);
  addRow([fmtClock(Date.now()), '', 'status', '', statusLabel(s) + (s.detail ? ': ' + s.detail : '')], 'status', { state: s.state });
});

// ---- polling ----
const pollBody = $('polling-results').querySelector('tbody');
$('test-polling').addEventListener('click', async () => {
  const btn = $('test-polling');
  btn.disabled = true;
  setText($('polling-summary'), 'calling ' + POLL_ENDPOINTS.length + ' endpoints\u2026');
  const results = await mgr.pollOnce(POLL_ENDPOINTS);
  pollBody.replaceChildren(...results.map((r) => h('tr', { dataset: { ok: String(r.ok), endpoint: r.name } },
    h('td', {}, h('code', { text: r.method + ' ' + r.url })),
    h('td', { text: r.status ? String(r.status) : 'no response' }),
    h('td', { text: r.ms.toFixed(1) + ' ms' }),
    h('td', { text: fmtBytes(r.bytes) }),
    h('td', { text: r.ok ? describe(r.name, r.data) : '\u2716 ' + r.error }))));
  const ok = results.filter((r) => r.ok).length;
  const slowest = Math.max(...results.map((r) => r.ms));
  setText($('polling-summary'), ok + '/' + results.length + ' OK, slowest ' + slowest.toFixed(1) + ' ms, at ' + fmtClock(Date.now()));
  btn.disabled = false;
});

function describe(name, d) {
  const n = (key) => {
    if (Array.isArray(d)) return d.length;
    if (d && Array.isArray(d[key])) return d[key].length;
    return '?';
  };
  switch (name) {
    case 'fault-tolerance-status': return '\u2714 health ' + (d.health ? d.health.score : '?') + ', ' + (Array.isArray(d.pods) ? d.pods.length : 0) + ' pods';
    case 'circuit-breakers': return '\u2714 ' + n('breakers') + ' breaker tiles';
    case 'optimization-status': return '\u2714 broadcast ' + d.broadcast_interval_ms + ' ms';
    case 'suggestions': return '\u2714 ' + n('suggestions') + ' suggestions';
    case 'agents': return '\u2714 ' + n('agents') + ' agents';
    case 'alerts': return '\u2714 ' + (Array.isArray(d.firing) ? d.firing.length + ' firing, ' + (d.resolved || []).length + ' resolved' : n('alerts') + ' alerts');
    default: return '\u2714';
  }
}

// ---- cleanup ----
$('cleanup').addEventListener('click', async () => {
  const btn = $('cleanup');
  btn.disabled = true;
  setText($('cleanup-status'), 'running\u2026');
  const r = await mgr.cleanupMemory($('cleanup-scope').value);
  setText($('cleanup-status'), (r.ok ? '\u2714 ' : '\u2716 ') + (r.status ? 'HTTP ' + r.status : 'no response') + ' in ' + r.ms.toFixed(1) + ' ms');
  $('cleanup-status').dataset.ok = String(r.ok);
  setText($('cleanup-summary'), r.ok ? cleanupSummary(r.data) : '\u2716 ' + r.error);
  setText($('cleanup-result'), r.data ? JSON.stringify(r.data, null, 2) : r.error);
  btn.disabled = false;
});

function cleanupSummary(d) {
  const a = d && d.aggregator;
  if (!a) return '\u2714 done';
  let s = 'Aggregator heap in use ' + fmtBytes(a.heap_in_use_before_bytes) + ' \u2192 ' + fmtBytes(a.heap_in_use_after_bytes)
    + ', ' + fmtBytes(a.released_to_os_bytes) + ' returned to the OS in ' + fmtNumber(a.duration_ms, 1) + ' ms.';
  if (d.scope === 'cluster') s += ' Agents: ' + d.agents_ok + ' freed memory, ' + d.agents_failed + ' failed.';
  return s;
}

$('connect').addEventListener('click', () => mgr.connect());
$('disconnect').addEventListener('click', () => mgr.disconnect());
$('clear-log').addEventListener('click', () => {
  logBody.replaceChildren();
  counters.rows = 0;
  setText($('log-summary'), counters.events + ' events, ' + counters.missed + ' missed');
});

setInterval(() => conn.renderDetail(), 1000);
const received = () => conn.dataReceived(Date.now());
mgr.on('metrics', received);
mgr.on('snapshot', received);

if (params.get('autoconnect') !== '0') mgr.connect();
else conn.render({ state: 'offline', attempt: 0, maxAttempts: 5, detail: 'disconnected' });
