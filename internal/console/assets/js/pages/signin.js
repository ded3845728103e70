// Sign-in: the access key and secret key of the root user or an IAM user.
// The secret is read from its field once, the field is emptied at once,
// and the secret goes straight into the WebCrypto key (sigv4.js). The form
// is built by script with its submission handled by script: there is no
// native submission (the CSP's form-action 'none' forbids one anyway),
// so the secret can never end up in a URL or a request body.

import { h, field } from '../dom.js';
import { errorBox } from '../errors.js';
import * as session from '../session.js';

export default {
  title: () => 'Sign in',
  render(main, { reason, onSignedIn }) {
    const access = h('input', { name: 'access_key', autocomplete: 'username', spellcheck: 'false', autocapitalize: 'off', required: true });
    const secret = h('input', { name: 'secret_key', type: 'password', autocomplete: 'current-password', required: true });
    const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
    const out = h('div', { class: 'messages' });
    const form = h('form', {
      class: 'card signin',
      onsubmit: async (e) => {
        e.preventDefault();
        const ak = access.value.trim();
        let sk = secret.value;
        secret.value = '';
        if (!ak || !sk) {
          out.replaceChildren(errorBox(new Error('Enter an access key and its secret key.')));
          (ak ? secret : access).focus();
          return;
        }
        button.disabled = true;
        out.replaceChildren(h('p', { role: 'status' }, 'Signing in…'));
        try {
          await session.signIn(ak, sk);
          sk = null;
          onSignedIn();
        } catch (err) {
          sk = null;
          button.disabled = false;
          out.replaceChildren(errorBox(err));
          secret.focus();
        }
      },
    },
    h('h1', {}, 'Sign in to Keyward'),
    h('p', { class: 'muted' }, 'Use the access key and secret key of the root user or of a user in the IAM file. The console can do what that user may do, nothing more.'),
    reason ? h('div', { class: 'notice', role: 'status' }, h('p', {}, reason)) : null,
    field('Access key', access),
    field('Secret key', secret, 'Kept only in this tab’s memory, as a key the page cannot read back; never stored, never sent. Reloading the page or 15 minutes without activity signs you out.'),
    h('div', { class: 'actions' }, button),
    out);
    main.append(form);
    // WebCrypto exists only in secure contexts: HTTPS, or the loopback
    // address. Elsewhere the console cannot sign, and would not want to
    // over plain HTTP anyway.
    if (!window.isSecureContext || !globalThis.crypto?.subtle) {
      for (const el of [access, secret, button]) el.disabled = true;
      out.replaceChildren(h('div', { class: 'notice error', role: 'alert' },
        h('p', { class: 'headline' }, 'The console needs a secure connection.'),
        h('p', {}, 'Open it over HTTPS (start the server with --tls-cert and --tls-key), or on this machine at http://127.0.0.1 or http://localhost. Browsers offer the cryptography the console signs with only there.')));
      return null;
    }
    access.focus();
    return null;
  },
};
