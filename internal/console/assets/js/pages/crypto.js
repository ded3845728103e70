// Encrypt and decrypt a short text with an encryption context, through
// /kms/encrypt and /kms/decrypt. The text is UTF-8; results are shown in
// read-only fields and dropped when the page is left.

import { h, field, parseKV, replace } from '../dom.js';
import { errorBox } from '../errors.js';
import { busy } from './common.js';
import { checkContext, checkKeyRef } from './validate.js';

const utf8 = new TextEncoder();
const MAX_BYTES = 4096;

function toBase64(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function fromBase64(text) {
  const bin = atob(text);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

// contextField reads key=value lines into an encryption context, or marks
// the field invalid.
function readContext(el) {
  try {
    const ctx = parseKV(el.value);
    el.setCustomValidity(checkContext(ctx));
    return ctx;
  } catch (err) {
    el.setCustomValidity(err.message);
    return null;
  }
}

export default {
  title: () => 'Encrypt / decrypt',
  render(main, { api }) {
    const key = h('input', { id: 'enc-key', spellcheck: 'false', autocapitalize: 'off', placeholder: 'the default key' });
    const plain = h('textarea', { id: 'enc-plaintext', rows: 4, required: true, spellcheck: 'false' });
    const encCtx = h('textarea', { id: 'enc-context', rows: 2, spellcheck: 'false', placeholder: 'app=billing' });
    const encBtn = h('button', { type: 'submit', class: 'primary' }, 'Encrypt');
    const encOut = h('div', { class: 'messages' });
    const encForm = h('form', {
      class: 'card form',
      novalidate: true,
      'aria-labelledby': 'enc-title',
      oninput: (e) => e.target.setCustomValidity?.(''),
      onsubmit: (e) => {
        e.preventDefault();
        key.setCustomValidity(key.value ? checkKeyRef(key.value) : '');
        const bytes = utf8.encode(plain.value);
        plain.setCustomValidity(bytes.length === 0 ? 'Enter a text.' : bytes.length > MAX_BYTES ? `At most ${MAX_BYTES} bytes (this is ${bytes.length}).` : '');
        const ctx = readContext(encCtx);
        if (!encForm.reportValidity()) return;
        busy(encBtn, async () => {
          const req = { plaintext: toBase64(bytes) };
          bytes.fill(0);
          if (key.value) req.key_id = key.value;
          if (Object.keys(ctx).length) req.encryption_context = ctx;
          try {
            const resp = await api.encrypt(req);
            const blob = h('textarea', { id: 'enc-result', rows: 3, readonly: true, value: resp.ciphertext_blob });
            const use = h('button', { type: 'button', class: 'secondary', onclick: () => {
              cipher.value = resp.ciphertext_blob;
              decCtx.value = encCtx.value;
              cipher.focus();
            } }, 'Decrypt this');
            replace(encOut, h('div', { role: 'status' }, h('p', {}, `Encrypted under key ${resp.key_id}.`)), field('Ciphertext (base64)', blob), h('div', { class: 'actions' }, use));
          } catch (err) {
            replace(encOut, errorBox(err));
          }
        });
      },
    },
    h('h2', { id: 'enc-title' }, 'Encrypt'),
    field('Key id or alias', key, 'Empty: the configured default key.'),
    field('Text', plain, `Up to ${MAX_BYTES} bytes of UTF-8.`),
    field('Encryption context', encCtx, 'One key=value per line. Decrypting needs exactly the same context.'),
    h('div', { class: 'actions' }, encBtn), encOut);

    const cipher = h('textarea', { id: 'dec-ciphertext', rows: 3, required: true, spellcheck: 'false' });
    const decCtx = h('textarea', { id: 'dec-context', rows: 2, spellcheck: 'false' });
    const decBtn = h('button', { type: 'submit', class: 'primary' }, 'Decrypt');
    const decOut = h('div', { class: 'messages' });
    const decForm = h('form', {
      class: 'card form',
      novalidate: true,
      'aria-labelledby': 'dec-title',
      oninput: (e) => e.target.setCustomValidity?.(''),
      onsubmit: (e) => {
        e.preventDefault();
        const blob = cipher.value.replace(/\s+/g, '');
        let ok = /^[A-Za-z0-9+/]+={0,2}$/.test(blob) && blob.length % 4 === 0;
        cipher.setCustomValidity(ok ? '' : 'Paste a ciphertext in standard base64.');
        const ctx = readContext(decCtx);
        if (!decForm.reportValidity()) return;
        busy(decBtn, async () => {
          const req = { ciphertext_blob: blob };
          if (Object.keys(ctx).length) req.encryption_context = ctx;
          try {
            const resp = await api.decrypt(req);
            const bytes = fromBase64(resp.plaintext);
            let text;
            try {
              text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
              ok = true;
            } catch {
              text = resp.plaintext;
              ok = false;
            }
            bytes.fill(0);
            replace(decOut, h('div', { role: 'status' }, h('p', {}, `Decrypted with key ${resp.key_id}${ok ? '.' : '; the plaintext is not UTF-8 text, shown in base64.'}`)),
              field('Plaintext', h('textarea', { id: 'dec-result', rows: 4, readonly: true, value: text })));
          } catch (err) {
            replace(decOut, errorBox(err));
          }
        });
      },
    },
    h('h2', { id: 'dec-title' }, 'Decrypt'),
    field('Ciphertext (base64)', cipher),
    field('Encryption context', decCtx, 'Exactly the context the text was encrypted with.'),
    h('div', { class: 'actions' }, decBtn), decOut);

    main.append(h('h1', {}, 'Encrypt / decrypt'),
      h('p', { class: 'muted' }, 'For a short text: a password, a token, a note. Applications encrypt their data locally with data keys instead (docs/api.md, generate-data-key).'),
      h('div', { class: 'grid-2' }, encForm, decForm));
    return null;
  },
};
