// TimeControl pauses and rewinds the dashboard: Pause freezes what is shown while the
// stream goes on being received (a badge counts what arrived; Live shows it), and a
// scrubber over the history the aggregator keeps shows any instant of it as it was. It
// owns the page's ?at= parameter, so that a link to an instant can be shared.
//
// Keyboard, anywhere outside a text field, a list or a dialog: Space pauses and goes
// live again, the arrow keys step back or forward from the instant shown (a second, or a
// minute beyond the last 15), [ and ] go to the previous and next breaker transition.

import { h, setText, setData, show } from '../component.js';
import { fmtClock, fmtDateTime, fmtDuration, fmtNumber } from '../format.js';

// FINE_MS is how far back the scrubber steps by the second (the aggregator keeps
// one-second points for 15 minutes); beyond, it steps by the minute.
export const FINE_MS = 15 * 60 * 1000;
const DEFAULT_RANGE_MS = 60 * 60 * 1000;

// scale maps the scrubber's steps to instants between earliest and latest (ms): one
// step a second over the last 15 minutes, one a minute before that.
export function scale(earliest, latest) {
  const fine = Math.max(0, Math.floor((latest - Math.max(earliest, latest - FINE_MS)) / 1000));
  const fineFrom = latest - fine * 1000;
  const coarse = Math.max(0, Math.floor((fineFrom - earliest) / 60000));
  const steps = coarse + fine;
  const clamp = (v) => Math.max(0, Math.min(steps, Math.round(v)));
  return {
    steps,
    toTime(v) {
      v = clamp(v);
      return v >= coarse ? latest - (steps - v) * 1000 : fineFrom - (coarse - v) * 60000;
    },
    toStep(t) {
      if (t >= fineFrom) return clamp(steps - Math.round((latest - t) / 1000));
      return clamp(coarse - Math.ceil((fineFrom - t) / 60000));
    },
  };
}

// parseAt reads the ?at= parameter: an RFC 3339 time, or a negative duration from now
// (-90s, -5m, -1h).
export function parseAt(raw, now = Date.now()) {
  if (!raw) return NaN;
  const m = /^-(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(raw.trim());
  if (m) return now - Number(m[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2]];
  return Date.parse(raw);
}

// ownsKeys says whether a key press belongs to the element it was pressed in. The
// scrubber keeps Home, End and Page Up/Down; its arrow keys step from the instant shown,
// as they do anywhere on the page, and Space, [ and ] are the page's.
function ownsKeys(el, key) {
  if (!el || !el.closest) return false;
  if (el.id === 'time-scrub') return key === 'Home' || key === 'End' || key.startsWith('Page');
  return !!el.closest('input, textarea, select, [contenteditable="true"], [role="listbox"], dialog[open], .table-viewport');
}

export class TimeControl {
  constructor(root, { onPause, onLive, onSeek, onJump }) {
    this.on = { onPause, onLive, onSeek, onJump };
    this.state = { mode: 'live', pausedAt: NaN, at: NaN, events: 0, earliest: NaN, latest: NaN, transitions: [], loading: false, error: '' };
    this.toggle = h('button', { type: 'button', class: 'btn', id: 'time-toggle', 'aria-keyshortcuts': 'Space' });
    this.label = h('span', { class: 'time-state', id: 'time-state' });
    this.badge = h('span', { class: 'time-badge', id: 'time-badge', hidden: true });
    this.prev = h('button', { type: 'button', class: 'btn btn-small', id: 'time-prev', 'aria-keyshortcuts': '[', title: 'Previous breaker transition ([)', text: '\u27e8 [' });
    this.next = h('button', { type: 'button', class: 'btn btn-small', id: 'time-next', 'aria-keyshortcuts': ']', title: 'Next breaker transition (])', text: '] \u27e9' });
    this.scrub = h('input', { type: 'range', id: 'time-scrub', class: 'time-scrub', min: '0', max: '3600', step: '1', value: '3600',
      'aria-label': 'Instant shown: one step a second over the last 15 minutes, a minute before' });
    this.at = h('span', { class: 'time-at', id: 'time-at' });
    this.note = h('span', { class: 'time-note', id: 'time-note' });
    root.replaceChildren(
      h('div', { class: 'time-main' }, this.toggle, this.label, this.badge),
      h('div', { class: 'time-track' }, this.prev, this.scrub, this.next, this.at),
      this.note);
    this.toggle.addEventListener('click', () => (this.state.mode === 'live' ? this.on.onPause() : this.on.onLive()));
    this.prev.addEventListener('click', () => this.on.onJump(-1));
    this.next.addEventListener('click', () => this.on.onJump(1));
    let timer = null;
    this.scrub.addEventListener('input', () => {
      clearTimeout(timer);
      const t = this.scale().toTime(Number(this.scrub.value));
      this.showInstant(t);
      timer = setTimeout(() => this.on.onSeek(t), 150);
    });
    document.addEventListener('keydown', (e) => this.key(e));
    this.render(this.state);
  }

  // scale is the scrubber's current mapping; while live it spans the last hour up to now.
  scale() {
    const s = this.state;
    const latest = s.mode === 'live' || !Number.isFinite(s.latest) ? Date.now() : s.latest;
    const earliest = Number.isFinite(s.earliest) ? s.earliest : latest - DEFAULT_RANGE_MS;
    return scale(Math.min(earliest, latest), latest);
  }

  // instant is what the page shows: the rewound instant, the pause, or now.
  instant() {
    const s = this.state;
    if (s.mode === 'at') return s.at;
    if (s.mode === 'paused') return s.pausedAt;
    return Date.now();
  }

  key(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || ownsKeys(e.target, e.key)) return;
    const s = this.state;
    switch (e.key) {
      case ' ':
        if (e.target && e.target.closest && e.target.closest('button, summary, a')) return;
        if (s.mode === 'live') this.on.onPause();
        else this.on.onLive();
        break;
      case '[':
        this.on.onJump(-1);
        break;
      case ']':
        this.on.onJump(1);
        break;
      case 'ArrowLeft':
      case 'ArrowRight': {
        // One step from the instant shown: a second within the last 15 minutes, a minute
        // before, never outside the history kept.
        if (s.mode === 'live' && e.key === 'ArrowRight') return;
        const latest = s.mode === 'live' || !Number.isFinite(s.latest) ? Date.now() : s.latest;
        const earliest = Number.isFinite(s.earliest) ? s.earliest : latest - DEFAULT_RANGE_MS;
        const from = this.instant();
        const step = from >= latest - FINE_MS ? 1000 : 60000;
        const t = Math.max(earliest, Math.min(latest, from + (e.key === 'ArrowLeft' ? -step : step)));
        this.showInstant(t);
        this.on.onSeek(t);
        break;
      }
      default:
        return;
    }
    e.preventDefault();
  }

  // showInstant moves the scrubber and its label to t at once, before the view follows;
  // null is now, while live.
  showInstant(t) {
    const sc = this.scale();
    if (t === null) {
      if (this.scrub.max !== String(sc.steps)) this.scrub.max = String(sc.steps);
      this.scrub.value = this.scrub.max;
      setText(this.at, 'now');
      this.scrub.setAttribute('aria-valuetext', 'now, live');
      return;
    }
    const v = String(sc.toStep(t));
    if (this.scrub.max !== String(sc.steps)) this.scrub.max = String(sc.steps);
    if (this.scrub.value !== v) this.scrub.value = v;
    const latest = this.state.mode === 'live' ? Date.now() : this.state.latest;
    const text = fmtClock(t) + (Number.isFinite(latest) && latest - t >= 1000 ? ' \u00b7 ' + fmtDuration(latest - t) + ' earlier' : '');
    setText(this.at, text);
    this.scrub.setAttribute('aria-valuetext', fmtDateTime(t) + (text.includes('\u00b7') ? ', ' + fmtDuration(latest - t) + ' earlier' : ''));
  }

  render(s) {
    const changed = s.mode !== this.state.mode || s.at !== this.state.at || s.pausedAt !== this.state.pausedAt;
    this.state = { ...this.state, ...s, transitions: s.transitions || this.state.transitions };
    const st = this.state;
    setData(document.body, 'time', st.mode);
    setText(this.toggle, st.mode === 'live' ? '\u275a\u275a Pause' : '\u25cf Live');
    this.toggle.setAttribute('aria-label', st.mode === 'live' ? 'Pause the live view (Space)' : 'Back to the live view (Space)');
    let label = '\u25cf Live';
    if (st.mode === 'paused') label = '\u275a\u275a Paused at ' + fmtClock(st.pausedAt);
    if (st.mode === 'at') label = '\u25f7 As it was at ' + fmtClock(st.at) + (st.loading ? ' (loading\u2026)' : '');
    setText(this.label, label);
    setData(this.label, 'mode', st.mode);
    show(this.badge, st.mode !== 'live');
    setText(this.badge, fmtNumber(st.events) + (st.events === 1 ? ' update' : ' updates') + ' received since paused');
    setData(this.badge, 'events', String(st.events));
    const n = st.transitions.length;
    this.prev.disabled = st.mode !== 'live' && !st.transitions.some((t) => t < this.instant());
    this.next.disabled = st.mode === 'live' || !st.transitions.some((t) => t > this.instant());
    setData(this.scrub, 'transitions', String(n));
    this.showInstant(st.mode === 'live' ? null : this.instant());
    let note = '';
    if (st.error) note = '\u26a0 ' + st.error;
    else if (st.mode === 'at') {
      note = 'States, k of n, alerts and agents are as they were at ' + fmtDateTime(st.at)
        + (Number.isFinite(st.figuresTime) ? '; figures from the history at ' + fmtClock(st.figuresTime) + (st.figuresResolutionMs >= 60000 ? ' (one-minute means)' : '') : '')
        + '; call rates, failure rates and counters are not kept.';
    } else if (st.mode === 'paused') {
      note = 'The stream goes on being received; Live shows it.';
    }
    setText(this.note, note);
    setData(this.note, 'kind', st.error ? 'error' : 'info');
    if (changed) this.setURL();
  }

  // setURL writes the instant shown into ?at=, or takes it out when live.
  setURL() {
    const st = this.state;
    const url = new URL(location.href);
    const t = st.mode === 'at' ? st.at : st.mode === 'paused' ? st.pausedAt : NaN;
    if (Number.isFinite(t)) url.searchParams.set('at', new Date(t).toISOString());
    else url.searchParams.delete('at');
    if (url.href !== location.href) history.replaceState(null, '', url);
  }
}
