// One key: its metadata, versions and rotation, tags and aliases, and
// everything that changes it. Every change answers with the key's new
// metadata, which is drawn again at once.

import { h, field, formatDate, replace } from '../dom.js';
import { errorBox, okBox } from '../errors.js';
import { badge, busy, confirmDialog, facts, section } from './common.js';
import { ALIAS, checkAlias, checkRange, checkTags } from './validate.js';

export default {
  title: ({ id }) => `Key ${id}`,
  render(main, { api, params }) {
    const id = params.id;
    const title = h('h1', {}, 'Key ', h('code', {}, id));
    const head = h('div', { class: 'page-head' }, title);
    const messages = h('div', { class: 'messages', id: 'key-messages', tabindex: '-1' });
    const body = h('div', { class: 'stack' }, h('p', { class: 'muted' }, 'Loading…'));
    main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/keys' }, '← Keys')), head, messages, body);

    function say(node) {
      replace(messages, node);
      messages.focus();
    }

    // act runs one change from button b; on success the key is redrawn
    // from the answer and done is announced.
    async function act(b, done, f) {
      await busy(b, async () => {
        try {
          const resp = await f();
          if (resp && resp.key_metadata) draw(resp.key_metadata);
          else await load();
          say(okBox(done));
        } catch (err) {
          say(errorBox(err));
        }
      });
    }

    function actions(m) {
      const b = [];
      const st = m.key_state;
      if (st === 'Enabled') {
        const dis = h('button', { type: 'button', class: 'secondary', id: 'disable-key' }, 'Disable');
        dis.onclick = () => act(dis, 'The key is disabled: it no longer encrypts or decrypts.', () => api.disableKey(id));
        const rot = h('button', { type: 'button', class: 'secondary', id: 'rotate-key' }, 'Rotate now');
        rot.onclick = async () => {
          const yes = await confirmDialog({ title: 'Rotate now?', text: `Key ${id} gets version ${m.key_version + 1}; new data is encrypted under it, and every older version still decrypts.`, confirmLabel: 'Rotate' });
          if (yes) act(rot, `Rotated: version ${m.key_version + 1} is now current.`, () => api.rotateKey(id));
          else rot.focus();
        };
        b.push(dis, rot);
      }
      if (st === 'Disabled') {
        const en = h('button', { type: 'button', class: 'primary', id: 'enable-key' }, 'Enable');
        en.onclick = () => act(en, 'The key is enabled.', () => api.enableKey(id));
        b.push(en);
      }
      if (st === 'PendingDeletion') {
        const cancel = h('button', { type: 'button', class: 'primary', id: 'cancel-deletion' }, 'Cancel deletion');
        cancel.onclick = () => act(cancel, 'Deletion cancelled: the key is enabled again.', () => api.cancelDeletion(id));
        b.push(cancel);
      } else {
        const del = h('button', { type: 'button', class: 'danger', id: 'schedule-deletion' }, 'Schedule deletion…');
        del.onclick = () => scheduleDeletion(del);
        b.push(del);
      }
      return h('div', { class: 'actions', role: 'group', 'aria-label': 'Key actions' }, b);
    }

    async function scheduleDeletion(button) {
      const days = h('input', { type: 'number', min: 7, max: 30, value: '30', required: true });
      const typed = h('input', { spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off', id: 'confirm-key-id' });
      const yes = await confirmDialog({
        title: 'Schedule deletion',
        text: `Key ${id} stops working at once and is destroyed when the waiting period ends; until then you can cancel. Once destroyed, what it encrypted can never be decrypted again.`,
        confirmLabel: 'Schedule deletion',
        danger: true,
        extra: [field('Waiting period (days, 7 to 30)', days), field(`Type the key id (${id}) to confirm`, typed)],
        ready: () => typed.value === id && checkRange('The waiting period', days.value, 7, 30) === '',
      });
      if (!yes) {
        button.focus();
        return;
      }
      const n = Number(days.value);
      act(button, `Deletion scheduled in ${n} days; cancel it any time before.`, () => api.scheduleDeletion(id, n));
    }

    function rotationForm(m) {
      const on = h('input', { type: 'checkbox', checked: m.rotation_enabled, id: 'rotation-enabled' });
      const period = h('input', { type: 'number', min: 90, max: 2560, value: String(m.rotation_period_days || 365), id: 'rotation-period' });
      const save = h('button', { type: 'submit', class: 'secondary' }, 'Save schedule');
      const sync = () => { period.disabled = !on.checked; };
      on.addEventListener('change', sync);
      sync();
      return h('form', {
        class: 'inline-form',
        novalidate: true,
        onsubmit: (e) => {
          e.preventDefault();
          period.setCustomValidity(on.checked ? checkRange('The period', period.value, 90, 2560) : '');
          if (!e.target.reportValidity()) return;
          act(save, on.checked ? `Rotates automatically every ${period.value} days.` : 'Automatic rotation is off.',
            () => api.setRotation(id, on.checked, Number(period.value)));
        },
        oninput: () => period.setCustomValidity(''),
      }, h('div', { class: 'check' }, on, h('label', { for: on.id }, 'Rotate automatically')), field('Every (days, 90 to 2560)', period), h('div', { class: 'actions' }, save));
    }

    function descriptionForm(m) {
      const text = h('textarea', { rows: 2, maxlength: 8192, id: 'description', value: m.description });
      const save = h('button', { type: 'submit', class: 'secondary' }, 'Save description');
      return h('form', {
        class: 'inline-form',
        onsubmit: (e) => { e.preventDefault(); act(save, 'Description saved.', () => api.updateDescription(id, text.value)); },
      }, field('Description', text), h('div', { class: 'actions' }, save));
    }

    function tagsPanel(m) {
      const entries = Object.entries(m.tags || {}).sort(([a], [b]) => (a < b ? -1 : 1));
      const rows = entries.map(([k, v]) => {
        const rm = h('button', { type: 'button', class: 'link', 'aria-label': `Remove tag ${k}` }, 'Remove');
        rm.onclick = () => act(rm, `Tag ${k} removed.`, () => api.untagKey(id, [k]));
        return h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v), h('td', {}, rm));
      });
      const k = h('input', { id: 'tag-key', required: true, maxlength: 128, spellcheck: 'false', autocapitalize: 'off' });
      const v = h('input', { id: 'tag-value', maxlength: 256, spellcheck: 'false' });
      const add = h('button', { type: 'submit', class: 'secondary' }, 'Add tag');
      const form = h('form', {
        class: 'inline-form row',
        novalidate: true,
        onsubmit: (e) => {
          e.preventDefault();
          k.setCustomValidity(checkTags({ [k.value]: v.value }));
          if (!form.reportValidity()) return;
          act(add, `Tag ${k.value} saved.`, () => api.tagKey(id, { [k.value]: v.value }));
        },
        oninput: () => k.setCustomValidity(''),
      }, field('Tag key', k), field('Value', v), h('div', { class: 'actions' }, add));
      return [
        entries.length
          ? h('div', { class: 'table-wrap' }, h('table', { id: 'tag-table' }, h('caption', { class: 'sr-only' }, 'Tags'),
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, 'Value'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
            h('tbody', {}, rows)))
          : h('p', { class: 'muted' }, 'No tags.'),
        form,
      ];
    }

    function aliasesPanel(m) {
      const list = (m.aliases || []).map((a) => h('li', {}, h('code', {}, a)));
      const name = h('input', { id: 'new-alias', required: true, pattern: ALIAS, maxlength: 255, placeholder: 'alias/billing', spellcheck: 'false', autocapitalize: 'off' });
      const add = h('button', { type: 'submit', class: 'secondary' }, 'Add alias');
      const form = h('form', {
        class: 'inline-form row',
        novalidate: true,
        onsubmit: (e) => {
          e.preventDefault();
          name.setCustomValidity(checkAlias(name.value));
          if (!form.reportValidity()) return;
          act(add, `Alias ${name.value} now points at ${id}.`, () => api.createAlias(name.value, id));
        },
        oninput: () => name.setCustomValidity(''),
      }, field('New alias', name), h('div', { class: 'actions' }, add));
      return [
        list.length ? h('ul', { class: 'plain', id: 'alias-list' }, list) : h('p', { class: 'muted' }, 'No aliases.'),
        h('p', {}, h('a', { href: `#/aliases?key=${encodeURIComponent(id)}` }, 'Manage aliases of this key')),
        form,
      ];
    }

    function draw(m) {
      replace(head, title, h('span', { id: 'key-state' }, badge(m.key_state)));
      const older = m.key_version === 1 ? 'none'
        : m.key_version === 2 ? 'version 1 still decrypts what it encrypted'
          : `versions 1 to ${m.key_version - 1} still decrypt what they encrypted`;
      replace(body,
        actions(m),
        h('div', { class: 'grid-2' },
          section('Details', facts([
            ['Key id', h('code', {}, m.key_id)],
            ['State', m.key_state],
            ['Usage', m.key_usage],
            ['Created', formatDate(m.creation_date)],
            m.deletion_date ? ['Destroyed on', formatDate(m.deletion_date)] : null,
          ]), descriptionForm(m)),
          section('Versions and rotation', facts([
            ['Current version', h('span', { id: 'key-version' }, String(m.key_version))],
            ['Older versions', older],
            ['Last rotated', formatDate(m.rotation_date)],
            ['Automatic rotation', m.rotation_enabled ? `every ${m.rotation_period_days} days` : 'off'],
            ['Next rotation', formatDate(m.next_rotation_date)],
          ]), rotationForm(m))),
        h('div', { class: 'grid-2' }, section('Tags', tagsPanel(m)), section('Aliases', aliasesPanel(m))));
    }

    async function load() {
      try {
        const resp = await api.describeKey(id);
        draw(resp.key_metadata);
      } catch (err) {
        replace(body, errorBox(err));
      }
    }

    load();
    return null;
  },
};
