// The signed-in session: the access key, the signer holding the secret as
// a non-extractable CryptoKey, and the times that end it. It lives only in
// this module's memory: nothing is written to cookies, localStorage,
// sessionStorage or IndexedDB, so a reload or a closed tab ends it, and
// there is no ambient credential another site could make the browser send.

import { Api, ApiError } from './api.js';
import { createSigner } from './sigv4.js';

// IDLE_MS without input (keys, pointer) ends a session; ABSOLUTE_MS ends
// it whatever happens. Times are measured with performance.now(), which a
// change of the wall clock does not move.
export const IDLE_MS = 15 * 60 * 1000;
export const ABSOLUTE_MS = 8 * 60 * 60 * 1000;

let current = null;
let ticker = null;
const listeners = new Set();

// onEnd registers f(reason) for when a session ends.
export function onEnd(f) {
  listeners.add(f);
}

export function active() {
  return current;
}

// signIn checks the credentials with one signed call and starts the
// session. GET /kms/status answers 200 or, for a user without
// kms:ServiceControl, 403: both prove the signature was accepted. Any
// other answer (401 above all) is thrown as an ApiError.
export async function signIn(accessKey, secretKey) {
  end(null);
  const signer = await createSigner(accessKey, secretKey);
  const api = new Api(signer, { onCall: () => check() });
  try {
    const live = await fetch('/health/live', { credentials: 'omit', cache: 'no-store', redirect: 'error' });
    api.learnClock(live);
  } catch {
    // the signed call below reports the network error
  }
  let status = null;
  try {
    status = await api.status();
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 403) throw e;
  }
  const t = performance.now();
  current = { accessKey, api, started: t, lastActive: t, status, data: new Map() };
  ticker = setInterval(quietCheck, 15 * 1000);
  return current;
}

// touch records user activity.
export function touch() {
  if (current) current.lastActive = performance.now();
}

// check ends an expired session; it runs on a timer, before every call
// and on every navigation.
export function check() {
  if (!current) return false;
  const t = performance.now();
  if (t - current.started >= ABSOLUTE_MS) {
    end('Your session ended after 8 hours. Sign in again.');
  } else if (t - current.lastActive >= IDLE_MS) {
    end('Your session ended after 15 minutes without activity. Sign in again.');
  }
  if (!current) throw new ApiError({ status: 0, code: 'SessionExpired', message: 'The session has ended.' });
  return true;
}

// end drops the session: the signer (and with it the only references to
// the key objects) and everything pages kept for it.
export function end(reason) {
  if (ticker) clearInterval(ticker);
  ticker = null;
  if (!current) return;
  current.data.clear();
  current.api.signer = null;
  current = null;
  for (const f of listeners) f(reason);
}

for (const ev of ['keydown', 'pointerdown', 'wheel', 'touchstart']) {
  addEventListener(ev, touch, { capture: true, passive: true });
}
// quietCheck is check for timers and events: an ended session has already
// told its listeners, which show the sign-in page.
function quietCheck() {
  try {
    check();
  } catch {
    // ended
  }
}

// A tab that was asleep (a laptop lid) checks as soon as it is seen again.
document.addEventListener('visibilitychange', quietCheck);
