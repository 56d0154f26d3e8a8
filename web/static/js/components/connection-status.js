// ConnectionStatus is the always-visible connection indicator (live / reconnecting n/5 /
// polling / offline) and, when the live stream is lost, the banner with "Retry live".
// State is shown by text and icon, never by colour alone.

import { h, setText, setData, shown } from '../component.js';
import { fmtSeen } from '../format.js';

const ICON = { live: '\u25cf', connecting: '\u21bb', reconnecting: '\u21bb', polling: '\u21c5', offline: '\u2715' };

export function statusLabel(s) {
  switch (s.state) {
    case 'live': return 'Live';
    case 'connecting': return 'Connecting\u2026';
    case 'reconnecting': return 'Reconnecting ' + s.attempt + '/' + s.maxAttempts;
    case 'polling': return 'Polling only';
    case 'offline': return s.detail === 'disconnected' ? 'Offline (disconnected)' : 'Offline';
    default: return s.state;
  }
}

export class ConnectionStatus {
  constructor(indicator, banner, { onRetry } = {}) {
    this.el = indicator;
    this.el.classList.add('conn');
    this.el.setAttribute('role', 'status');
    this.icon = h('span', { class: 'conn-icon', 'aria-hidden': 'true' });
    this.label = h('span', { class: 'conn-label' });
    this.detail = h('span', { class: 'conn-detail' });
    this.el.replaceChildren(this.icon, this.label, this.detail);
    this.banner = banner;
    if (banner) {
      this.bannerText = h('span', { class: 'banner-text' });
      this.retry = h('button', { type: 'button', class: 'btn btn-primary', id: 'retry-live', text: 'Retry live' });
      this.retry.addEventListener('click', () => onRetry && onRetry());
      banner.replaceChildren(h('span', { class: 'banner-icon', 'aria-hidden': 'true', text: '\u26a0' }), this.bannerText, this.retry);
      banner.hidden = true;
    }
    this.status = { state: 'connecting', attempt: 0, maxAttempts: 5, detail: '' };
    this.lastData = NaN;
    this.render(this.status);
  }

  render(s) {
    this.status = s;
    setData(this.el, 'state', s.state);
    setText(this.icon, ICON[s.state] || '?');
    setText(this.label, statusLabel(s));
    this.el.setAttribute('aria-label', 'Connection: ' + statusLabel(s) + (s.detail ? ', ' + s.detail : ''));
    this.renderDetail();
    if (!this.banner) return;
    setData(this.el, 'reachable', String(s.reachable !== false));
    const lost = s.state === 'polling' || (s.state === 'offline' && s.detail !== 'disconnected');
    this.banner.hidden = !lost;
    setData(this.banner, 'state', s.state === 'polling' && s.reachable === false ? 'offline' : s.state);
    if (lost) {
      let text;
      if (s.state === 'offline') text = 'Offline (' + s.detail + '). The last data received is shown. ';
      else if (s.reachable === false) text = 'Live stream lost after ' + s.maxAttempts + ' attempts, and the aggregator does not answer polls either: the last data received is shown. ';
      else text = 'Live stream lost after ' + s.maxAttempts + ' attempts: data is polled ' + s.detail.replace(/^.*polling /, '') + ' and may lag. ';
      setText(this.bannerText, text);
    }
  }

  // dataReceived records when data last arrived, for the "updated n s ago" hint.
  dataReceived(time) {
    this.lastData = time;
  }

  renderDetail(now = Date.now()) {
    const s = this.status;
    let text = '';
    if (s.state === 'live' || s.state === 'polling') {
      text = Number.isFinite(this.lastData) ? 'updated ' + fmtSeen(now - this.lastData) : 'waiting for data';
    } else if (s.state === 'reconnecting' || s.state === 'offline') {
      text = s.detail;
    }
    if (s.state === 'polling' && s.reachable === false) text = 'aggregator unreachable';
    setText(this.detail, text);
  }
}
