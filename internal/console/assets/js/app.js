// The console's shell: sign-in, the page frame (header, navigation, main
// region) and a hash router (#/keys/alpha?state=Enabled). The hash never
// reaches the server and never holds a credential.

import { h, replace } from './dom.js';
import * as session from './session.js';
import signIn from './pages/signin.js';
import overview from './pages/overview.js';
import keys from './pages/keys.js';
import keyNew from './pages/keynew.js';
import key from './pages/key.js';
import aliases from './pages/aliases.js';
import cryptoTool from './pages/crypto.js';
import service from './pages/service.js';

const NAV = [
  ['#/', 'Overview'],
  ['#/keys', 'Keys'],
  ['#/aliases', 'Aliases'],
  ['#/crypto', 'Encrypt / decrypt'],
  ['#/service', 'Service'],
];

// route maps a hash path to a page and its parameters.
function route(path) {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return [overview, {}];
  if (parts[0] === 'keys' && parts.length === 1) return [keys, {}];
  if (parts[0] === 'keys' && parts.length === 2 && parts[1] === 'new') return [keyNew, {}];
  if (parts[0] === 'keys' && parts.length === 2) return [key, { id: parts[1] }];
  if (parts[0] === 'aliases' && parts.length === 1) return [aliases, {}];
  if (parts[0] === 'crypto' && parts.length === 1) return [cryptoTool, {}];
  if (parts[0] === 'service' && parts.length === 1) return [service, {}];
  return [null, {}];
}

const app = document.getElementById('app');
let cleanup = null;
let lastPath = null;
let endReason = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  return { path: q < 0 ? raw : raw.slice(0, q), query: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
}

function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function frame(current, main) {
  const s = session.active();
  const skip = h('a', {
    class: 'skip', href: '#main',
    onclick: (e) => { e.preventDefault(); main.focus(); },
  }, 'Skip to content');
  const nav = h('nav', { 'aria-label': 'Main' }, h('ul', {}, NAV.map(([href, label]) => {
    const here = href === '#/' ? current === '/' : current === href.slice(1) || current.startsWith(`${href.slice(1)}/`);
    return h('li', {}, h('a', { href, 'aria-current': here ? 'page' : false }, label));
  })));
  const header = h('header', { class: 'top' },
    h('a', { class: 'brand', href: '#/' }, h('img', { src: 'favicon.svg', alt: '', width: 24, height: 24 }), 'Keyward'),
    h('p', { class: 'who' }, 'Signed in as ', h('strong', { id: 'who' }, s.accessKey)),
    h('button', { type: 'button', class: 'secondary', id: 'sign-out', onclick: () => session.end('You signed out.') }, 'Sign out'));
  return [skip, header, h('div', { class: 'layout' }, nav, main)];
}

async function render() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  const { path, query } = parseHash();
  try {
    session.check();
  } catch {
    return; // ended: the onEnd listener renders the sign-in page
  }
  const s = session.active();
  const main = h('main', { id: 'main', tabindex: '-1' });
  if (!s) {
    replace(app, h('div', { class: 'signin-layout' }, main));
    document.title = 'Sign in · Keyward';
    cleanup = signIn.render(main, { reason: endReason, onSignedIn: () => { endReason = null; lastPath = null; render(); } });
    endReason = null;
    return;
  }
  const [page, params] = route(path);
  replace(app, frame(path, main));
  const ctx = { api: s.api, session: s, params, query, go };
  if (!page) {
    document.title = 'Not found · Keyward';
    main.append(h('h1', { tabindex: '-1' }, 'Page not found'), h('p', {}, h('a', { href: '#/' }, 'Go to the overview')));
  } else {
    document.title = `${page.title(params)} · Keyward`;
    cleanup = page.render(main, ctx) || null;
  }
  // A new page moves the focus to its heading (screen readers announce
  // it); a change of filters on the same page leaves the focus alone.
  if (path !== lastPath) {
    const h1 = main.querySelector('h1');
    if (h1) {
      h1.setAttribute('tabindex', '-1');
      h1.focus();
    }
  }
  lastPath = path;
}

session.onEnd((reason) => {
  endReason = reason;
  lastPath = null;
  render();
});
addEventListener('hashchange', render);
render();
