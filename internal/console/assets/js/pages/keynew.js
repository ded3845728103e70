// Create a key: id (or one made by the server), description, tags and,
// optionally, an alias, checked in the browser before they are sent.

import { h, field, parseKV, replace } from '../dom.js';
import { errorBox } from '../errors.js';
import { busy } from './common.js';
import { KEY_ID, ALIAS, checkKeyId, checkTags } from './validate.js';

export default {
  title: () => 'Create key',
  render(main, { api, go }) {
    const id = h('input', { name: 'key_id', pattern: KEY_ID, maxlength: 128, spellcheck: 'false', autocapitalize: 'off' });
    const desc = h('textarea', { name: 'description', rows: 2, maxlength: 8192 });
    const tags = h('textarea', { name: 'tags', rows: 3, spellcheck: 'false', placeholder: 'env=prod\nteam=billing' });
    const alias = h('input', { name: 'alias', pattern: ALIAS, maxlength: 255, spellcheck: 'false', autocapitalize: 'off', placeholder: 'alias/billing' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Create key');
    const out = h('div', { class: 'messages' });
    const form = h('form', {
      class: 'card form',
      novalidate: true,
      onsubmit: (e) => {
        e.preventDefault();
        id.setCustomValidity(id.value ? checkKeyId(id.value) : '');
        let tagMap = {};
        try {
          tagMap = parseKV(tags.value);
          tags.setCustomValidity(checkTags(tagMap));
        } catch (err) {
          tags.setCustomValidity(err.message);
        }
        if (!form.reportValidity()) return;
        busy(submit, async () => {
          const req = { description: desc.value };
          if (id.value) req.key_id = id.value;
          if (Object.keys(tagMap).length) req.tags = tagMap;
          try {
            const resp = await api.createKey(req);
            const kid = resp.key_id;
            if (alias.value) {
              try {
                await api.createAlias(alias.value, kid);
              } catch (err) {
                replace(out, h('p', {}, `Key ${kid} was created, but its alias was not:`), errorBox(err),
                  h('p', {}, h('a', { href: `#/keys/${encodeURIComponent(kid)}` }, `Open ${kid}`)));
                return;
              }
            }
            go(`#/keys/${encodeURIComponent(kid)}`);
          } catch (err) {
            replace(out, errorBox(err));
          }
        });
      },
    },
    field('Key id (optional)', id, 'Letters, digits, ".", "_" and "-", up to 128. Left empty: the "name" tag, or a random UUID.'),
    field('Description', desc),
    field('Tags', tags, 'One key=value per line, at most 50.'),
    field('Alias (optional)', alias, 'alias/ followed by letters, digits, "/", "_" or "-".'),
    h('div', { class: 'actions' }, submit, h('a', { class: 'button secondary', href: '#/keys' }, 'Cancel')),
    out);
    for (const el of [id, tags]) el.addEventListener('input', () => el.setCustomValidity(''));
    main.append(h('h1', {}, 'Create key'), form);
    return null;
  },
};
