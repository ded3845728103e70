// Pieces several pages share.

import { h } from '../dom.js';

const STATE_CLASS = { Enabled: 'ok', Running: 'ok', Disabled: 'warn', Configured: 'warn', PendingDeletion: 'bad', Error: 'bad', NotConfigured: 'muted' };

// badge shows a key or service state.
export function badge(state) {
  return h('span', { class: ['badge', STATE_CLASS[state] || 'muted'] }, state || 'unknown');
}

// facts renders [term, value] pairs as a description list.
export function facts(pairs) {
  return h('dl', { class: 'facts-list' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

// keyLink links to a key's page.
export function keyLink(id) {
  return h('a', { href: `#/keys/${encodeURIComponent(id)}` }, id);
}

// busy disables a button while f runs.
export async function busy(button, f) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await f();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// confirmDialog asks a question in a modal <dialog> (focus stays inside,
// Escape cancels) and resolves to true when confirmed. extra are controls
// shown between the text and the buttons; ready(), when given, decides
// whether the confirm button is enabled (re-checked on every input).
export function confirmDialog({ title, text, confirmLabel, danger = false, extra = [], ready }) {
  return new Promise((resolve) => {
    const ok = h('button', { type: 'submit', class: danger ? 'danger' : 'primary', value: 'ok' }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    const refresh = () => { ok.disabled = ready ? !ready() : false; };
    const form = h('form', { method: 'dialog', oninput: refresh },
      h('h2', {}, title), h('p', {}, text), extra, h('div', { class: 'actions' }, ok, cancel));
    const dlg = h('dialog', { 'aria-label': title }, form);
    let result = false;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (ok.disabled) return;
      result = true;
      dlg.close();
    });
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    document.body.append(dlg);
    refresh();
    dlg.showModal();
    const first = dlg.querySelector('input, textarea, select') || cancel;
    first.focus();
  });
}

// section builds a titled panel.
export function section(title, ...children) {
  return h('section', { class: 'card', 'aria-label': title }, h('h2', {}, title), children);
}
