// DOM building without markup strings: the console never assigns HTML
// (the Content-Security-Policy enforces Trusted Types, under which
// innerHTML = "..." throws). Text always goes in as text nodes.

const PROPS = new Set(['value', 'checked', 'selected', 'indeterminate']);

// h('button', {class: 'primary', onclick: f}, 'Save') builds an element.
// Attribute values false, null and undefined are left out; true sets an
// empty attribute; on* entries add event listeners; children may be
// strings, numbers, nodes, arrays or null.
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s() is h() for SVG elements.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    } else if (PROPS.has(k)) {
      el[k] = v;
    } else if (k === 'style') {
      throw new Error('inline styles are not allowed (CSP)');
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// replace empties el and puts children in it.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let nextID = 0;
// uid returns a document-unique id for label/aria wiring.
export function uid(prefix = 'f') {
  nextID += 1;
  return `${prefix}-${nextID}`;
}

// field builds a labelled control: a <div class="field"> holding the
// <label>, the control and an optional hint tied by aria-describedby.
export function field(label, control, hint) {
  const id = control.id || uid();
  control.id = id;
  const parts = [h('label', { for: id }, label), control];
  if (hint) {
    const hid = `${id}-hint`;
    control.setAttribute('aria-describedby', hid);
    parts.push(h('p', { class: 'hint', id: hid }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

// formatDate shows an RFC 3339 timestamp in the reader's locale, with the
// exact UTC value as a tooltip; null is shown as a dash.
export function formatDate(ts) {
  if (!ts) return h('span', { class: 'muted' }, '—');
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  return h('time', { datetime: ts, title: ts }, d.toLocaleString());
}

// parseKV reads "key=value" lines (tags, encryption contexts). Blank lines
// are skipped; a line without "=" or a repeated key is an error.
export function parseKV(text) {
  const out = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i].trim();
    if (!line) continue;
    const eq = line.indexOf('=');
    if (eq < 1) throw new Error(`line ${i + 1}: write key=value`);
    const k = line.slice(0, eq).trim();
    const v = line.slice(eq + 1).trim();
    if (Object.hasOwn(out, k)) throw new Error(`line ${i + 1}: "${k}" is given twice`);
    out[k] = v;
  }
  return out;
}
