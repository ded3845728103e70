// Server errors in words (docs/api.md, "Errors"): what happened, what the
// server said, the status and code, the IAM action the call needed and the
// request id to quote.

import { h } from './dom.js';
import { active } from './session.js';

const WORDS = {
  InvalidRequest: 'The server refused the input.',
  InvalidCiphertext: 'The ciphertext could not be opened: it is damaged, was made under another key, or the encryption context is not the one it was made with.',
  InvalidAccessKeyId: 'This access key is not known to the server.',
  SignatureDoesNotMatch: 'The secret key does not match the access key.',
  RequestTimeTooSkewed: "This computer's clock is more than 15 minutes away from the server's.",
  NotFound: 'Not found: there is no such key or alias (or it was destroyed).',
  MethodNotAllowed: 'The server does not take this call on this path.',
  Conflict: 'This conflicts with the current state.',
  InvalidKeyState: "The key's state does not allow this.",
  RequestTooLarge: 'The request is too large (1 MiB at most).',
  NotImplemented: 'The configured backend cannot do this.',
  ServiceUnavailable: 'The KMS service is not available: it is not running, or its backend cannot be reached.',
  InternalError: 'The server failed unexpectedly; the details are in its log under the request id.',
  NetworkError: 'The server could not be reached.',
  SessionExpired: 'Your session has ended. Sign in again.',
};

// headline is the one-sentence explanation of an error.
export function headline(err) {
  if (err.status === 403) {
    const user = active()?.accessKey;
    const who = user ? `User "${user}"` : 'This user';
    return err.action
      ? `Access denied: ${who} may not do ${err.action} here. An administrator can grant it in the IAM file.`
      : `Access denied: ${who} may not do this.`;
  }
  if (err.status === 401 && err.code === 'AccessDenied') {
    return 'The server did not accept the request as signed.';
  }
  return WORDS[err.code] || (err.status ? `The server answered ${err.status}.` : String(err.message || err));
}

// errorBox renders an error for a role="alert" region.
export function errorBox(err) {
  if (!err || err.status === undefined) {
    return h('div', { class: 'notice error', role: 'alert' }, h('p', {}, String(err?.message || err)));
  }
  const facts = [];
  if (err.status) facts.push(`HTTP ${err.status} ${err.code}`);
  else if (err.code) facts.push(err.code);
  if (err.action && err.status === 403) facts.push(`needs ${err.action}`);
  return h('div', { class: 'notice error', role: 'alert' },
    h('p', { class: 'headline' }, headline(err)),
    err.message && err.message !== err.code ? h('p', {}, 'Server: ', h('q', {}, err.message)) : null,
    h('p', { class: 'facts' }, facts.join(' · '),
      err.requestId ? [' · request id ', h('code', { class: 'request-id' }, err.requestId)] : null));
}

// okBox renders a success message for a role="status" region.
export function okBox(text) {
  return h('div', { class: 'notice ok', role: 'status' }, h('p', {}, text));
}
