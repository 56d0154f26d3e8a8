// Helpers shared by the dashboard's components: a small element builder (text only, never
// HTML strings, so server data cannot inject markup) and the per-panel error message that
// keeps one failing component from blanking the page.

// Text direction controls (Unicode bidi embeddings, overrides, isolates and marks): in a
// name they would reverse the text around it. The names keep them byte for byte; what is
// shown writes each as a visible code, e.g. [U+202E].
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

// shown is text as the page displays it: direction controls neutralised.
export function shown(text) {
  const s = String(text);
  BIDI.lastIndex = 0;
  if (!BIDI.test(s)) return s;
  return s.replace(BIDI, (c) => '[U+' + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0') + ']');
}

// h builds an element. attrs: class, text, and any attribute (never style: the page's
// Content Security Policy forbids inline styles, so looks come from classes). Text and
// attributes go through shown.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = shown(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : shown(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(shown(c)));
  }
  return el;
}

// setText changes an element's text only when it differs, so that an update that changes
// nothing costs no style or layout work. An element holding one text node keeps it and
// only its data changes: the browser then lays out the new text instead of taking one
// node out of the layout and putting another in.
export function setText(el, text) {
  text = shown(text);
  const t = el.firstChild;
  if (t && t.nodeType === 3 && t === el.lastChild) {
    if (t.data !== text) t.data = text;
  } else if (el.textContent !== text) {
    el.textContent = text;
  }
}

export function setData(el, key, value) {
  if (el.dataset[key] !== value) el.dataset[key] = value;
}

// show sets hidden only when it changes: writing the same value still makes the browser
// restyle the element.
export function show(el, on) {
  if (el.hidden === !!on) el.hidden = !on;
}

export function toggle(el, cls, on) {
  if (el.classList.contains(cls) !== on) el.classList.toggle(cls, on);
}

// Panel owns the message line at the top of a dashboard section.
export class Panel {
  constructor(root) {
    this.root = root;
    this.msg = root.querySelector('.panel-msg');
    if (!this.msg) {
      this.msg = h('p', { class: 'panel-msg', role: 'alert', hidden: true });
      const head = root.querySelector('.panel-head');
      if (head) head.after(this.msg);
      else root.prepend(this.msg);
    }
    this.errors = { render: '', data: '', warning: '' };
  }

  // setMessage sets one kind of message (render, data, warning); the panel shows the most
  // severe one present.
  setMessage(kind, text) {
    if (this.errors[kind] === text) return;
    this.errors[kind] = text || '';
    const shown = this.errors.render
      ? 'This panel failed to draw the latest data: ' + this.errors.render + '. Other panels are unaffected.'
      : this.errors.data
        ? 'Data problem: ' + this.errors.data + '. Showing the last good data.'
        : this.errors.warning;
    setText(this.msg, shown);
    this.msg.hidden = !shown;
    toggle(this.msg, 'warn', !this.errors.render && !this.errors.data && !!this.errors.warning);
    toggle(this.root, 'has-error', !!(this.errors.render || this.errors.data));
  }

  // safely runs a render step; an exception becomes the panel's message.
  safely(fn) {
    try {
      fn();
      this.setMessage('render', '');
    } catch (err) {
      console.error(err);
      this.setMessage('render', String(err && err.message || err));
    }
  }
}

// setAttr sets an attribute only when its value changes.
export function setAttr(el, name, value) {
  value = shown(value);
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}
