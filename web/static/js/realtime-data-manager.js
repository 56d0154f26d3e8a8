// RealtimeDataManager keeps one EventSource open to the aggregator's stream and hands every
// event to whoever listens. When the stream breaks it reconnects with exponential backoff;
// after maxAttempts failed attempts it falls back to polling the JSON endpoints until told
// to retry live. It resumes after the last event id it saw, so nothing is missed across a
// reconnect that the aggregator's replay ring still covers.
//
// It runs in a page or in a worker: it only needs EventSource, fetch and timers, and all
// three can be injected for tests.

export const STREAM_URL = '/api/v1/performance/stream';

export const EVENT_TYPES = ['snapshot', 'metrics', 'circuit-breaker', 'alert', 'optimization', 'agent'];

// POLL_ENDPOINTS are the seed's polling endpoints plus the ones faultline added. The name
// is what a listener of 'poll' receives.
export const POLL_ENDPOINTS = [
  { name: 'fault-tolerance-status', url: '/api/v1/fault-tolerance/status' },
  { name: 'circuit-breakers', url: '/api/v1/fault-tolerance/circuit-breakers' },
  { name: 'optimization-status', url: '/api/v1/performance/optimization-status' },
  { name: 'suggestions', url: '/api/v1/performance/suggestions' },
  { name: 'agents', url: '/api/v1/agents' },
  { name: 'alerts', url: '/api/v1/alerts' },
];

// Connection states shown to users.
export const LIVE = 'live';
export const CONNECTING = 'connecting';
export const RECONNECTING = 'reconnecting';
export const POLLING = 'polling';
export const OFFLINE = 'offline';

const DEFAULTS = {
  streamURL: STREAM_URL,
  pollEndpoints: POLL_ENDPOINTS,
  maxAttempts: 5,
  baseDelayMs: 1000,
  maxDelayMs: 30000,
  pollIntervalMs: 5000,
  requestTimeoutMs: 10000,
  jitter: 0.2,
};

export class RealtimeDataManager {
  constructor(options = {}) {
    this.opts = { ...DEFAULTS };
    for (const [k, v] of Object.entries(options)) if (v !== undefined) this.opts[k] = v;
    this.EventSource = options.EventSource || globalThis.EventSource;
    this.fetch = options.fetch || globalThis.fetch.bind(globalThis);
    this.setTimeout = options.setTimeout || globalThis.setTimeout.bind(globalThis);
    this.clearTimeout = options.clearTimeout || globalThis.clearTimeout.bind(globalThis);
    this.random = options.random || Math.random;
    this.now = options.now || Date.now;

    this.listeners = new Map();
    this.es = null;
    this.retryTimer = null;
    this.pollTimer = null;
    this.attempt = 0;
    this.reachable = null; // in polling mode: whether the last poll reached the aggregator
    this.gen = 0; // bumped on every mode change so that stale timers and polls stop
    this.lastEventId = options.lastEventId || '';
    // cache holds the latest payload of each event type and polled endpoint.
    this.cache = { events: {}, polls: {} };
    this.status = { state: OFFLINE, attempt: 0, maxAttempts: this.opts.maxAttempts, lastEventId: '', since: this.now(), detail: 'not connected' };
    // The browser says when the network goes away: show it, and reconnect when it is back.
    const net = options.network || globalThis;
    if (net.addEventListener) {
      net.addEventListener('offline', () => {
        if (this.status.state === OFFLINE) return;
        this.gen++;
        this.stopTimers();
        this.closeStream();
        this.attempt = 0;
        this.setStatus(OFFLINE, 'no network');
      });
      net.addEventListener('online', () => {
        if (this.status.state === OFFLINE && this.status.detail === 'no network') this.connect();
      });
    }
  }

  // on registers fn for a topic: an event type, 'event' (every SSE event, raw), 'poll'
  // (every polled endpoint result), 'status' or 'error'. It returns the function that
  // removes the listener.
  on(topic, fn) {
    if (!this.listeners.has(topic)) this.listeners.set(topic, new Set());
    this.listeners.get(topic).add(fn);
    return () => this.listeners.get(topic).delete(fn);
  }

  emit(topic, value) {
    const set = this.listeners.get(topic);
    if (!set) return;
    for (const fn of set) {
      try {
        fn(value);
      } catch (err) {
        // A listener that throws must not stop the stream or the other listeners.
        if (topic !== 'error') this.emit('error', { topic, message: String(err && err.message || err) });
      }
    }
  }

  setStatus(state, detail = '') {
    const s = this.status;
    if (s.state === state && s.attempt === this.attempt && s.detail === detail) return;
    this.status = {
      state,
      attempt: this.attempt,
      maxAttempts: this.opts.maxAttempts,
      lastEventId: this.lastEventId,
      since: s.state === state ? s.since : this.now(),
      detail,
      reachable: state === POLLING ? this.reachable : state === LIVE,
    };
    this.emit('status', this.status);
  }

  // connect opens the stream, starting a fresh backoff sequence.
  connect() {
    this.gen++;
    this.stopTimers();
    this.attempt = 0;
    this.open();
  }

  // retryLive leaves polling-only mode and tries the stream again.
  retryLive() {
    this.connect();
  }

  // disconnect closes the stream and stops polling, as a user asked.
  disconnect() {
    this.gen++;
    this.stopTimers();
    this.closeStream();
    this.attempt = 0;
    this.setStatus(OFFLINE, 'disconnected');
  }

  stopTimers() {
    if (this.retryTimer !== null) this.clearTimeout(this.retryTimer);
    if (this.pollTimer !== null) this.clearTimeout(this.pollTimer);
    this.retryTimer = null;
    this.pollTimer = null;
  }

  closeStream() {
    if (this.es) {
      this.es.onopen = null;
      this.es.onerror = null;
      this.es.close();
      this.es = null;
    }
  }

  // streamURL carries the last event id as a query parameter: a new EventSource cannot set
  // the Last-Event-ID header, and the aggregator accepts either.
  streamURL() {
    const url = this.opts.streamURL;
    if (!this.lastEventId) return url;
    const sep = url.includes('?') ? '&' : '?';
    return url + sep + 'lastEventId=' + encodeURIComponent(this.lastEventId);
  }

  open() {
    this.closeStream();
    this.setStatus(this.attempt === 0 ? CONNECTING : RECONNECTING, this.attempt === 0 ? 'opening stream' : 'attempt in progress');
    let es;
    try {
      es = new this.EventSource(this.streamURL());
    } catch (err) {
      this.fail('cannot open stream: ' + (err && err.message || err));
      return;
    }
    this.es = es;
    es.onopen = () => {
      this.attempt = 0;
      this.setStatus(LIVE, 'stream open');
    };
    // Every error closes the EventSource: its own reconnects would bypass the attempt
    // count, and on a closed one (HTTP error) there is nothing else to do anyway.
    es.onerror = () => this.fail('stream broken');
    for (const type of EVENT_TYPES) {
      es.addEventListener(type, (e) => this.receive(type, e));
    }
    es.onmessage = (e) => this.receive('message', e);
  }

  fail(reason) {
    this.closeStream();
    this.attempt++;
    if (this.attempt > this.opts.maxAttempts) {
      this.attempt = this.opts.maxAttempts;
      this.enterPolling();
      return;
    }
    const delay = this.backoff(this.attempt);
    this.setStatus(RECONNECTING, reason + '; next attempt in ' + Math.round(delay / 100) / 10 + ' s');
    this.retryTimer = this.setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  // backoff is base * 2^(attempt-1), capped, with +-jitter so that many dashboards do not
  // reconnect in step after an aggregator restart.
  backoff(attempt) {
    const d = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (attempt - 1));
    const j = this.opts.jitter;
    return Math.round(d * (1 - j + 2 * j * this.random()));
  }

  receive(type, e) {
    if (e.lastEventId) this.lastEventId = e.lastEventId;
    if (this.status.state !== LIVE) {
      this.attempt = 0;
      this.setStatus(LIVE, 'stream open');
    }
    const raw = typeof e.data === 'string' ? e.data : '';
    const ev = { type, id: e.lastEventId || '', raw, data: null, error: '', received: this.now() };
    try {
      ev.data = JSON.parse(raw);
      if (!ev.data || typeof ev.data !== 'object') throw new Error('not a JSON object');
      if (ev.data.v !== 1) throw new Error('unsupported version v=' + JSON.stringify(ev.data.v));
    } catch (err) {
      ev.error = type + ' event ' + ev.id + ': ' + (err && err.message || err);
    }
    this.status.lastEventId = this.lastEventId;
    this.emit('event', ev);
    if (ev.error) {
      this.emit('error', { topic: type, message: ev.error });
      return;
    }
    this.cache.events[type] = ev.data;
    this.emit(type, ev);
  }

  // enterPolling polls the endpoints until retryLive. The state stays "polling" whether or
  // not the aggregator answers; the detail says which, and `reachable` carries it.
  enterPolling() {
    this.stopTimers();
    const gen = ++this.gen;
    const every = 'every ' + this.opts.pollIntervalMs / 1000 + ' s';
    this.reachable = null;
    this.setStatus(POLLING, 'live stream unavailable after ' + this.opts.maxAttempts + ' attempts; polling ' + every);
    const tick = async () => {
      this.pollTimer = null;
      const results = await this.pollOnce(this.opts.pollEndpoints);
      if (gen !== this.gen) return; // connected, disconnected or restarted meanwhile
      this.reachable = results.some((r) => r.status > 0);
      this.setStatus(POLLING, this.reachable ? 'polling ' + every : 'aggregator unreachable; polling ' + every);
      this.pollTimer = this.setTimeout(tick, this.opts.pollIntervalMs);
    };
    this.pollTimer = this.setTimeout(tick, 0);
  }

  // pollOnce fetches each endpoint once and reports status, latency and the parsed body.
  // Results are emitted on 'poll' as they arrive and returned together.
  async pollOnce(endpoints = this.opts.pollEndpoints) {
    return Promise.all(endpoints.map((ep) => this.fetchEndpoint(ep)));
  }

  async fetchEndpoint(ep, init = {}) {
    const start = (globalThis.performance || Date).now();
    const r = { name: ep.name, url: ep.url, method: init.method || 'GET', ok: false, status: 0, ms: 0, bytes: 0, data: null, error: '' };
    try {
      const resp = await this.fetch(ep.url, {
        cache: 'no-store',
        headers: { Accept: 'application/json' },
        signal: AbortSignal.timeout(this.opts.requestTimeoutMs),
        ...init,
      });
      r.status = resp.status;
      const text = await resp.text();
      r.bytes = text.length;
      r.ms = (globalThis.performance || Date).now() - start;
      try {
        r.data = JSON.parse(text);
      } catch {
        r.error = 'response is not JSON';
      }
      if (!resp.ok) {
        r.error = (r.data && typeof r.data.error === 'string') ? r.data.error : 'HTTP ' + resp.status;
      } else if (!r.error) {
        r.ok = true;
        this.cache.polls[ep.name] = r.data;
      }
    } catch (err) {
      r.ms = (globalThis.performance || Date).now() - start;
      r.error = err && err.name === 'TimeoutError' ? 'timed out' : 'unreachable: ' + (err && err.message || err);
    }
    this.emit('poll', r);
    return r;
  }

  // cleanupMemory asks the aggregator to free memory (scope aggregator or cluster).
  async cleanupMemory(scope = 'aggregator') {
    return this.fetchEndpoint(
      { name: 'cleanup-memory', url: '/api/v1/performance/cleanup-memory?scope=' + encodeURIComponent(scope) },
      { method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: '{}' },
    );
  }
}
