// Aliases: list (all, or one key's), create, point at another key, delete.

import { h, field, formatDate, replace } from '../dom.js';
import { errorBox, okBox } from '../errors.js';
import { busy, confirmDialog, keyLink } from './common.js';
import { ALIAS, KEY_ID, checkAlias, checkKeyId } from './validate.js';

const PAGE = 50;

export default {
  title: () => 'Aliases',
  render(main, { api, query, go }) {
    const keyFilter = query.get('key') || '';
    const marker = query.get('marker') || '';
    const messages = h('div', { class: 'messages', tabindex: '-1', id: 'alias-messages' });
    const results = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));

    const filterInput = h('input', { name: 'key', value: keyFilter, pattern: KEY_ID, spellcheck: 'false', autocapitalize: 'off' });
    const filter = h('form', { class: 'filters', role: 'search', onsubmit: (e) => {
      e.preventDefault();
      go(filterInput.value ? `#/aliases?key=${encodeURIComponent(filterInput.value)}` : '#/aliases');
    } }, field('Only the aliases of key', filterInput), h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Apply')));

    const name = h('input', { id: 'alias-name', required: true, pattern: ALIAS, maxlength: 255, placeholder: 'alias/billing', spellcheck: 'false', autocapitalize: 'off' });
    const target = h('input', { id: 'alias-target', required: true, pattern: KEY_ID, maxlength: 128, value: keyFilter, spellcheck: 'false', autocapitalize: 'off' });
    const create = h('button', { type: 'submit', class: 'primary' }, 'Create alias');
    const createForm = h('form', {
      class: 'inline-form row',
      novalidate: true,
      oninput: () => { name.setCustomValidity(''); target.setCustomValidity(''); },
      onsubmit: (e) => {
        e.preventDefault();
        name.setCustomValidity(checkAlias(name.value));
        target.setCustomValidity(checkKeyId(target.value));
        if (!createForm.reportValidity()) return;
        busy(create, async () => {
          try {
            const a = await api.createAlias(name.value, target.value);
            say(okBox(`Alias ${a.alias_name} points at ${a.target_key_id}.`));
            name.value = '';
            load();
          } catch (err) {
            say(errorBox(err));
          }
        });
      },
    }, field('Alias name', name), field('Key id', target), h('div', { class: 'actions' }, create));

    main.append(h('h1', {}, 'Aliases'), messages,
      h('section', { class: 'card', 'aria-label': 'New alias' }, h('h2', {}, 'New alias'), createForm),
      h('section', { class: 'card', 'aria-label': 'All aliases' }, h('h2', {}, keyFilter ? `Aliases of ${keyFilter}` : 'All aliases'), filter, results));

    function say(node) {
      replace(messages, node);
      messages.focus();
    }

    async function retarget(a, button) {
      const input = h('input', { value: a.target_key_id, pattern: KEY_ID, spellcheck: 'false', autocapitalize: 'off', id: 'retarget-key' });
      const yes = await confirmDialog({
        title: `Point ${a.alias_name} at another key`,
        text: 'Callers that use the alias use the new key from now on. Data encrypted before still names its own key and decrypts as before.',
        confirmLabel: 'Point at this key',
        extra: [field('Key id', input)],
        ready: () => checkKeyId(input.value) === '' && input.value !== a.target_key_id,
      });
      if (!yes) { button.focus(); return; }
      busy(button, async () => {
        try {
          const u = await api.updateAlias(a.alias_name, input.value);
          say(okBox(`Alias ${u.alias_name} now points at ${u.target_key_id}.`));
          load();
        } catch (err) {
          say(errorBox(err));
        }
      });
    }

    async function remove(a, button) {
      const yes = await confirmDialog({ title: `Delete ${a.alias_name}?`, text: `Key ${a.target_key_id} is not affected; callers that use the alias get "not found".`, confirmLabel: 'Delete alias', danger: true });
      if (!yes) { button.focus(); return; }
      busy(button, async () => {
        try {
          await api.deleteAlias(a.alias_name);
          say(okBox(`Alias ${a.alias_name} deleted.`));
          load();
        } catch (err) {
          say(errorBox(err));
        }
      });
    }

    async function load() {
      try {
        const resp = await api.listAliases({ limit: PAGE, marker: marker || undefined, keyId: keyFilter || undefined });
        const rows = resp.aliases.map((a) => {
          const edit = h('button', { type: 'button', class: 'link', 'aria-label': `Point ${a.alias_name} at another key` }, 'Change key');
          edit.onclick = () => retarget(a, edit);
          const del = h('button', { type: 'button', class: 'link danger', 'aria-label': `Delete ${a.alias_name}` }, 'Delete');
          del.onclick = () => remove(a, del);
          return h('tr', { 'data-alias': a.alias_name }, h('th', { scope: 'row' }, h('code', {}, a.alias_name)), h('td', {}, keyLink(a.target_key_id)),
            h('td', {}, formatDate(a.creation_date)), h('td', {}, formatDate(a.last_updated_date)), h('td', { class: 'row-actions' }, edit, ' ', del));
        });
        const base = keyFilter ? `#/aliases?key=${encodeURIComponent(keyFilter)}&` : '#/aliases?';
        replace(results,
          rows.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'alias-table' }, h('caption', { class: 'sr-only' }, 'Aliases'),
            h('thead', {}, h('tr', {}, ['Alias', 'Key', 'Created', 'Last changed'].map((c) => h('th', { scope: 'col' }, c)), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
            h('tbody', {}, rows))) : h('p', { class: 'muted' }, 'No aliases.'),
          h('nav', { class: 'pager', 'aria-label': 'Pages' },
            marker ? h('a', { class: 'button secondary', href: base.replace(/[?&]$/, '') }, '← First page') : null,
            resp.truncated && resp.next_marker ? h('a', { class: 'button secondary', href: `${base}marker=${encodeURIComponent(resp.next_marker)}` }, 'Next →') : null));
      } catch (err) {
        replace(results, errorBox(err));
      }
    }

    load();
    return null;
  },
};
