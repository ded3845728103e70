// Keys: the list, filtered by state on the server and searched (id or
// description) in the browser, one page at a time. The filters live in the
// address (#/keys?state=Enabled&q=app&size=25), so the back button and a
// bookmark keep them.

import { h, field, formatDate, replace } from '../dom.js';
import { errorBox } from '../errors.js';
import { badge, keyLink } from './common.js';

const STATES = [['', 'Any state'], ['Enabled', 'Enabled'], ['Disabled', 'Disabled'], ['PendingDeletion', 'Pending deletion']];
const SIZES = [25, 50, 100];
// A search reads at most SEARCH_PAGES pages of 1000 keys.
const SEARCH_PAGES = 10;

export default {
  title: () => 'Keys',
  render(main, { api, query, go, session }) {
    const state = STATES.some(([v]) => v === query.get('state')) ? query.get('state') : '';
    const q = (query.get('q') || '').trim();
    const size = SIZES.includes(Number(query.get('size'))) ? Number(query.get('size')) : SIZES[0];
    const marker = query.get('marker') || '';
    const page = Math.max(0, Number.parseInt(query.get('page') || '0', 10) || 0);

    const stateSel = h('select', { name: 'state' }, STATES.map(([v, l]) => h('option', { value: v, selected: v === state }, l)));
    const search = h('input', { name: 'q', type: 'search', value: q, spellcheck: 'false', autocapitalize: 'off', placeholder: 'part of an id or description, or alias/…' });
    const sizeSel = h('select', { name: 'size' }, SIZES.map((n) => h('option', { value: String(n), selected: n === size }, String(n))));
    const hash = (extra) => {
      const p = new URLSearchParams();
      if (stateSel.value) p.set('state', stateSel.value);
      if (search.value.trim()) p.set('q', search.value.trim());
      if (Number(sizeSel.value) !== SIZES[0]) p.set('size', sizeSel.value);
      for (const [k, v] of Object.entries(extra || {})) if (v) p.set(k, v);
      const s = p.toString();
      return s ? `#/keys?${s}` : '#/keys';
    };
    const filters = h('form', { class: 'filters', role: 'search', onsubmit: (e) => { e.preventDefault(); go(hash()); } },
      field('State', stateSel),
      field('Search', search),
      field('Per page', sizeSel),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Apply')));
    stateSel.addEventListener('change', () => go(hash()));
    sizeSel.addEventListener('change', () => go(hash()));

    const results = h('div', { class: 'results', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
    main.append(
      h('div', { class: 'page-head' }, h('h1', {}, 'Keys'), h('a', { class: 'button primary', href: '#/keys/new' }, 'Create key')),
      h('section', { class: 'card' }, filters, results));

    function table(keys) {
      if (!keys.length) return h('p', { class: 'muted', id: 'no-keys' }, q ? 'No key matches.' : 'No keys.');
      return h('div', { class: 'table-wrap' }, h('table', { id: 'key-table' },
        h('caption', { class: 'sr-only' }, 'Keys'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Key id'), h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Description'), h('th', { scope: 'col' }, 'Created'))),
        h('tbody', {}, keys.map((k) => h('tr', { 'data-key-id': k.key_id },
          h('th', { scope: 'row' }, keyLink(k.key_id)),
          h('td', {}, k.key_state ? badge(k.key_state) : h('span', { class: 'muted', title: 'Your user may not describe this key (kms:DescribeKey)' }, 'not visible')),
          h('td', {}, k.description || ''),
          h('td', {}, formatDate(k.creation_date)))))));
    }

    function pager(prev, next, note) {
      return h('nav', { class: 'pager', 'aria-label': 'Pages' },
        prev ? h('a', { class: 'button secondary', href: prev, rel: 'prev' }, '← Previous') : null,
        note ? h('span', { class: 'muted' }, note) : null,
        next ? h('a', { class: 'button secondary', href: next, rel: 'next' }, 'Next →') : null);
    }

    async function listPage() {
      // The markers of the pages seen so far with these filters, to go
      // back: kept in the session.
      const trailKey = `keys-trail:${state}:${size}`;
      const trail = session.data.get(trailKey) || [''];
      const resp = await api.listKeys({ limit: size, marker: marker || undefined, state: state || undefined });
      const at = trail.indexOf(marker);
      const seen = !marker ? [''] : at >= 0 ? trail.slice(0, at + 1) : [...trail, marker];
      session.data.set(trailKey, seen);
      const back = seen.slice(0, -1);
      const prev = marker ? hash({ marker: back[back.length - 1] || '' }) : null;
      const next = resp.truncated && resp.next_marker ? hash({ marker: resp.next_marker }) : null;
      const unreadable = resp.unreadable_key_ids || [];
      replace(results, table(resp.keys), pager(prev, next),
        unreadable.length ? h('div', { class: 'notice error', role: 'alert' },
          h('p', {}, `Key records that cannot be read (damaged, or sealed under another master key): ${unreadable.join(', ')}`)) : null);
    }

    async function searchPages() {
      if (q.startsWith('alias/')) {
        const d = await api.describeKey(q);
        go(`#/keys/${encodeURIComponent(d.key_metadata.key_id)}`);
        return;
      }
      const needle = q.toLowerCase();
      const found = [];
      let m = null;
      let examined = 0;
      let pages = 0;
      do {
        const resp = await api.listKeys({ limit: 1000, marker: m || undefined, state: state || undefined });
        examined += resp.keys.length;
        for (const k of resp.keys) {
          if (k.key_id.toLowerCase().includes(needle) || (k.description || '').toLowerCase().includes(needle)) found.push(k);
        }
        m = resp.truncated ? resp.next_marker : null;
        pages += 1;
      } while (m && pages < SEARCH_PAGES);
      const shown = found.slice(page * size, (page + 1) * size);
      const prev = page > 0 ? hash({ page: String(page - 1) }) : null;
      const next = (page + 1) * size < found.length ? hash({ page: String(page + 1) }) : null;
      const note = `${found.length} match${found.length === 1 ? '' : 'es'} among ${examined} keys${m ? ' (the first ones only: narrow the search with a state)' : ''}`;
      replace(results, table(shown), pager(prev, next, note));
    }

    (q ? searchPages() : listPage()).catch((err) => replace(results, errorBox(err)));
    return null;
  },
};
