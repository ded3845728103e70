// The admin API client of the console: one method per route, each call
// signed in the browser by the signed-in user's signer (sigv4.js). There is
// no other way to the server: the console has no privilege of its own.
// Requests carry no cookies (credentials: 'omit'), follow no redirects and
// are never cached.

import { canonicalQuery, uriEncode } from './sigv4.js';

export const PREFIX = '/rustfs/admin/v3';

const utf8 = new TextEncoder();

// ApiError is a failed call: the server's error body (code, message,
// request id) with the HTTP status and the IAM action the route needs.
export class ApiError extends Error {
  constructor({ status, code, message, requestId, action }) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.requestId = requestId || null;
    this.action = action || null;
  }
}

// Api signs and sends admin calls. clock() is the time to sign with (the
// browser's clock corrected by the offset learnt from the server's Date
// header); onCall runs before every call (the session checks expiry there).
export class Api {
  constructor(signer, { onCall = () => {} } = {}) {
    this.signer = signer;
    this.offsetMs = 0;
    this.onCall = onCall;
  }

  get accessKey() {
    return this.signer.accessKey;
  }

  now() {
    return new Date(Date.now() + this.offsetMs);
  }

  // learnClock adopts the server's clock when the browser's is more than
  // five seconds off (the Date header has a resolution of one second).
  learnClock(resp) {
    const date = Date.parse(resp.headers.get('Date') || '');
    if (Number.isNaN(date)) return false;
    const off = date - Date.now();
    if (Math.abs(off) <= 5000) return false;
    this.offsetMs = off;
    return true;
  }

  // call sends one signed request. path is relative to PREFIX unless
  // root is true; query is a list of [name, value] pairs; body (any JSON
  // value) is sent as JSON. It resolves to the parsed answer (null for
  // 204, text with text: true) or rejects with an ApiError.
  async call(method, path, { query = [], body, action, root = false, text = false } = {}) {
    this.onCall();
    const fullPath = root ? path : PREFIX + path;
    const q = canonicalQuery(query);
    const bytes = body === undefined ? new Uint8Array(0) : utf8.encode(JSON.stringify(body));
    for (let attempt = 0; ; attempt += 1) {
      const headers = await this.signer.sign({ method, host: location.host, path: fullPath, query: q, body: bytes, now: this.now() });
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      let resp;
      try {
        resp = await fetch(q ? `${fullPath}?${q}` : fullPath, {
          method,
          headers,
          body: body === undefined ? undefined : bytes,
          credentials: 'omit',
          cache: 'no-store',
          redirect: 'error',
          referrerPolicy: 'no-referrer',
        });
      } catch (e) {
        throw new ApiError({ status: 0, code: 'NetworkError', message: `The server could not be reached (${e.message}).`, action });
      }
      if (resp.ok) {
        if (resp.status === 204) return null;
        return text ? resp.text() : resp.json();
      }
      const err = await errorFrom(resp, action);
      // A clock more than 15 minutes off: sign again with the server's time.
      if (err.code === 'RequestTimeTooSkewed' && attempt === 0 && this.learnClock(resp)) continue;
      throw err;
    }
  }

  // Service lifecycle (docs/api.md, "Service lifecycle").
  status() { return this.call('GET', '/kms/status', { action: 'kms:ServiceControl' }); }
  config() { return this.call('GET', '/kms/config', { action: 'kms:Configure' }); }
  configure(cfg) { return this.call('POST', '/kms/configure', { body: cfg, action: 'kms:Configure' }); }
  reconfigure(cfg) { return this.call('POST', '/kms/reconfigure', { body: cfg, action: 'kms:Configure' }); }
  start(secrets) { return this.call('POST', '/kms/start', { body: secrets || {}, action: 'kms:ServiceControl' }); }
  stop() { return this.call('POST', '/kms/stop', { action: 'kms:ServiceControl' }); }
  clearCache() { return this.call('POST', '/kms/clear-cache', { action: 'kms:ClearCache' }); }
  metrics() { return this.call('GET', '/metrics', { root: true, text: true, action: 'kms:ServiceControl' }); }

  // Keys.
  listKeys({ limit = 100, marker, state } = {}) {
    const query = [['limit', limit]];
    if (marker) query.push(['marker', marker]);
    if (state) query.push(['state', state]);
    return this.call('GET', '/kms/keys', { query, action: 'kms:ListKeys' });
  }
  describeKey(id) { return this.call('GET', `/kms/keys/${uriEncode(id)}`, { action: 'kms:DescribeKey' }); }
  createKey(req) { return this.call('POST', '/kms/keys', { body: req, action: 'kms:CreateKey' }); }
  scheduleDeletion(id, days) {
    return this.call('DELETE', '/kms/keys/delete', { body: { key_id: id, pending_window_in_days: days }, action: 'kms:DeleteKey' });
  }
  cancelDeletion(id) { return this.call('POST', '/kms/keys/cancel-deletion', { body: { key_id: id }, action: 'kms:DeleteKey' }); }
  enableKey(id) { return this.call('POST', '/kms/keys/enable', { body: { key_id: id }, action: 'kms:EnableKey' }); }
  disableKey(id) { return this.call('POST', '/kms/keys/disable', { body: { key_id: id }, action: 'kms:DisableKey' }); }
  rotateKey(id) { return this.call('POST', '/kms/keys/rotate', { body: { key_id: id }, action: 'kms:RotateKey' }); }
  setRotation(id, enabled, days) {
    const body = { key_id: id, enabled };
    if (enabled) body.period_days = days;
    return this.call('POST', '/kms/keys/rotation', { body, action: 'kms:RotateKey' });
  }
  updateDescription(id, description) {
    return this.call('POST', '/kms/keys/update-description', { body: { key_id: id, description }, action: 'kms:UpdateKeyDescription' });
  }
  tagKey(id, tags) { return this.call('POST', '/kms/keys/tag', { body: { key_id: id, tags }, action: 'kms:TagResource' }); }
  untagKey(id, tagKeys) { return this.call('POST', '/kms/keys/untag', { body: { key_id: id, tag_keys: tagKeys }, action: 'kms:UntagResource' }); }

  // Cryptographic operations.
  encrypt(req) { return this.call('POST', '/kms/encrypt', { body: req, action: 'kms:Encrypt' }); }
  decrypt(req) { return this.call('POST', '/kms/decrypt', { body: req, action: 'kms:Decrypt' }); }

  // Aliases.
  listAliases({ limit = 50, marker, keyId } = {}) {
    const query = [['limit', limit]];
    if (marker) query.push(['marker', marker]);
    if (keyId) query.push(['key_id', keyId]);
    return this.call('GET', '/kms/aliases', { query, action: 'kms:ListAliases' });
  }
  createAlias(name, keyId) { return this.call('POST', '/kms/aliases', { body: { alias_name: name, target_key_id: keyId }, action: 'kms:CreateAlias' }); }
  updateAlias(name, keyId) { return this.call('POST', '/kms/aliases/update', { body: { alias_name: name, target_key_id: keyId }, action: 'kms:UpdateAlias' }); }
  deleteAlias(name) { return this.call('DELETE', '/kms/aliases', { body: { alias_name: name }, action: 'kms:DeleteAlias' }); }
}

async function errorFrom(resp, action) {
  let body = {};
  try {
    body = await resp.json();
  } catch {
    // not JSON (a proxy's page, a 431): keep the status
  }
  return new ApiError({
    status: resp.status,
    code: body.code || `HTTP${resp.status}`,
    message: body.message || resp.statusText,
    requestId: body.request_id || resp.headers.get('X-Request-Id'),
    action,
  });
}

// health reads /health/ready, which needs no signature.
export async function ready() {
  try {
    const resp = await fetch('/health/ready', { credentials: 'omit', cache: 'no-store', redirect: 'error' });
    return resp.status === 200;
  } catch {
    return null;
  }
}
