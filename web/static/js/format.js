// Formatting of numbers, sizes, rates and times for display. Every function accepts null
// or undefined and returns an em dash: "no data" must never look like zero.

export const NONE = '\u2014';

function known(n) {
  return typeof n === 'number' && Number.isFinite(n);
}

export function fmtNumber(n, digits = 1) {
  if (!known(n)) return NONE;
  const abs = Math.abs(n);
  if (abs >= 1e9) return (n / 1e9).toFixed(digits) + 'G';
  if (abs >= 1e6) return (n / 1e6).toFixed(digits) + 'M';
  if (abs >= 1e4) return (n / 1e3).toFixed(digits) + 'k';
  if (abs >= 100 || Number.isInteger(n)) return Math.round(n).toString();
  return n.toFixed(digits);
}

export function fmtPercent(p) {
  if (!known(p)) return NONE;
  if (p !== 0 && Math.abs(p) < 0.1) return '<0.1%';
  return (p >= 99.95 || p === 0 ? p.toFixed(0) : p.toFixed(1)) + '%';
}

export function fmtRate(r) {
  if (!known(r)) return NONE;
  return fmtNumber(r) + '/s';
}

export function fmtCores(c) {
  if (!known(c)) return NONE;
  if (c > 0 && c < 0.01) return '<0.01';
  return c.toFixed(c < 10 ? 2 : 1);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function fmtBytes(b) {
  if (!known(b)) return NONE;
  let i = 0;
  let v = b;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)) + '\u00a0' + UNITS[i];
}

// fmtDuration writes a duration in ms as the two largest units: 45s, 2m 05s, 3h 12m, 4d 2h.
export function fmtDuration(ms) {
  if (!known(ms)) return NONE;
  if (ms < 0) ms = 0;
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm\u00a0' + String(s % 60).padStart(2, '0') + 's';
  const h = Math.floor(m / 60);
  if (h < 24) return h + 'h\u00a0' + String(m % 60).padStart(2, '0') + 'm';
  const d = Math.floor(h / 24);
  return d + 'd\u00a0' + (h % 24) + 'h';
}

// fmtAge is fmtDuration at the resolution a glance needs: seconds only in the first
// minute, so that a label on a long-stable breaker changes once a minute, not every second.
export function fmtAge(ms) {
  if (!known(ms)) return NONE;
  const s = Math.floor(Math.max(0, ms) / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm';
  return fmtDuration(ms);
}

// fmtSeen says how long ago something was last heard from, in words that stay the same
// while it keeps reporting: "just now" under 10 s.
export function fmtSeen(ms) {
  if (!known(ms)) return 'never';
  return ms < 10000 ? 'just now' : fmtAge(ms) + ' ago';
}

// parseTime reads a wire time (RFC 3339) into epoch ms, or NaN when absent or malformed.
export function parseTime(s) {
  if (typeof s !== 'string' || s === '') return NaN;
  return Date.parse(s);
}

export function fmtAgo(ms, now = Date.now()) {
  if (!known(ms)) return NONE;
  return fmtDuration(now - ms) + ' ago';
}

// One formatter for every clock time: toLocaleTimeString builds a new one per call.
const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });

export function fmtClock(ms) {
  if (!known(ms)) return NONE;
  return clock.format(ms);
}

export function fmtDateTime(ms) {
  if (!known(ms)) return NONE;
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}
