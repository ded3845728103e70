// Service: the state of the KMS service with start, stop and clear cache,
// and its configuration for the local, vault and vault-transit backends.
// Secret fields (master key, Vault token, AppRole secret id) are
// write-only: the server never returns them, the form never shows them,
// and they are emptied as soon as a request has been sent.

import { h, field, replace } from '../dom.js';
import { errorBox, okBox } from '../errors.js';
import { badge, busy, facts, section } from './common.js';
import { checkKeyId, checkRange } from './validate.js';

const BACKENDS = [['local', 'local: encrypted key files'], ['vault', 'vault: KV v2 records sealed by Transit'], ['vault-transit', 'vault-transit: keys live in Transit']];
const PERMS = ['0600', '0400', '0640', '0440'];
const SECRET_ENV = /^KEYWARD_SECRET_[A-Za-z0-9_]+$/;

// secretInput is a secret with its source: kept as stored, typed here
// (write-only), a file in the server's --secrets-dir, or a
// KEYWARD_SECRET_* variable of the server. none, when given, is the label
// of a "no secret" choice (local: a generated root key).
function secretInput(label, name, { none } = {}) {
  const src = h('select', { id: `${name}-source` });
  const val = h('input', { id: `${name}-value`, spellcheck: 'false', autocapitalize: 'off' });
  const options = (reconf) => {
    const o = [];
    if (reconf) o.push(['keep', 'unchanged']);
    if (none) o.push(['none', none]);
    o.push(['inline', 'typed here'], ['file', 'a file in --secrets-dir'], ['env', 'a KEYWARD_SECRET_* variable']);
    replace(src, o.map(([v, l]) => h('option', { value: v }, l)));
  };
  const sync = () => {
    const s = src.value;
    val.parentElement.hidden = s === 'keep' || s === 'none';
    val.type = s === 'inline' ? 'password' : 'text';
    val.autocomplete = s === 'inline' ? 'new-password' : 'off';
    val.placeholder = s === 'file' ? '/run/keyward-secrets/…' : s === 'env' ? 'KEYWARD_SECRET_…' : '';
  };
  src.addEventListener('change', () => { val.value = ''; val.setCustomValidity(''); sync(); });
  val.addEventListener('input', () => val.setCustomValidity(''));
  const el = h('div', { class: 'secret' }, field(`${label}: source`, src), field(label, val));
  return {
    el,
    reset(reconf) { options(reconf); src.value = reconf ? 'keep' : none ? 'none' : 'inline'; val.value = ''; sync(); },
    changed: () => src.value !== 'keep',
    clear() { val.value = ''; },
    // require marks the source invalid when it is "unchanged".
    require(msg) { src.setCustomValidity(src.value === 'keep' ? msg : ''); },
    check() {
      const s = src.value;
      let msg = '';
      if (s === 'inline' && !val.value) msg = `Type the ${label.toLowerCase()}.`;
      if (s === 'file' && !val.value.startsWith('/')) msg = 'Give the absolute path of a file inside the server’s --secrets-dir.';
      if (s === 'env' && !SECRET_ENV.test(val.value)) msg = 'Give the name of a variable that starts with KEYWARD_SECRET_.';
      val.setCustomValidity(msg);
    },
    // put adds the secret to obj under base (base, base_file, base_env).
    put(obj, base) {
      const s = src.value;
      if (s === 'inline') obj[base] = val.value;
      if (s === 'file') obj[`${base}_file`] = val.value;
      if (s === 'env') obj[`${base}_env`] = val.value;
    },
  };
}

export default {
  title: () => 'Service',
  render(main, { api }) {
    const messages = h('div', { class: 'messages', tabindex: '-1', id: 'service-messages' });
    const stateBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
    const configBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
    main.append(h('h1', {}, 'Service'), messages, section('State', stateBox), section('Configuration', configBox));

    function say(node) {
      replace(messages, node);
      messages.focus();
    }

    // --- the configuration form -------------------------------------
    const mode = { reconf: h('input', { type: 'radio', name: 'mode', value: 'reconfigure', id: 'mode-reconfigure' }), conf: h('input', { type: 'radio', name: 'mode', value: 'configure', id: 'mode-configure' }) };
    const f = {
      backend: h('select', { id: 'backend_type' }, BACKENDS.map(([v, l]) => h('option', { value: v }, l))),
      defaultKey: h('input', { id: 'default_key_id', spellcheck: 'false', autocapitalize: 'off' }),
      cache: h('input', { type: 'checkbox', id: 'enable_cache' }),
      ttl: h('input', { type: 'number', id: 'cache_ttl_seconds', min: 1, max: 86400, required: true }),
      maxKeys: h('input', { type: 'number', id: 'max_cached_keys', min: 1, max: 1000000, required: true }),
      timeout: h('input', { type: 'number', id: 'timeout_seconds', min: 1, max: 300, required: true }),
      retries: h('input', { type: 'number', id: 'retry_attempts', min: 0, max: 10, required: true }),
      keyDir: h('input', { id: 'key_dir', spellcheck: 'false', autocapitalize: 'off' }),
      perms: h('select', { id: 'file_permissions' }, PERMS.map((p) => h('option', { value: p }, p))),
      address: h('input', { type: 'url', id: 'address', spellcheck: 'false', placeholder: 'https://vault.example.com:8200' }),
      auth: h('select', { id: 'auth_method' }, h('option', { value: 'token' }, 'token'), h('option', { value: 'approle' }, 'AppRole')),
      roleId: h('input', { id: 'role_id', spellcheck: 'false', autocapitalize: 'off' }),
      namespace: h('input', { id: 'namespace', spellcheck: 'false', autocapitalize: 'off' }),
      mount: h('input', { id: 'mount_path', spellcheck: 'false', autocapitalize: 'off' }),
      kvMount: h('input', { id: 'kv_mount', spellcheck: 'false', autocapitalize: 'off' }),
      prefix: h('input', { id: 'key_path_prefix', spellcheck: 'false', autocapitalize: 'off' }),
      caCert: h('textarea', { id: 'ca_cert', rows: 2, spellcheck: 'false', placeholder: '/etc/ssl/vault-ca.pem, or the PEM itself' }),
      skipTLS: h('input', { type: 'checkbox', id: 'skip_tls_verify' }),
    };
    const masterKey = secretInput('Master key', 'master_key', { none: 'none: a random root key in the data dir' });
    const token = secretInput('Vault token', 'token');
    const secretId = secretInput('AppRole secret id', 'secret_id');
    const tokenBox = h('div', {}, token.el);
    const approleBox = h('div', {}, field('AppRole role id', f.roleId), secretId.el);
    const localSet = h('fieldset', {}, h('legend', {}, 'Local key directory'),
      field('Key directory', f.keyDir, 'Relative paths are inside the data dir.'), field('Key file permissions', f.perms), masterKey.el);
    const vaultSet = h('fieldset', {}, h('legend', {}, 'Vault'),
      field('Address', f.address), field('Authentication', f.auth), tokenBox, approleBox,
      field('Namespace (Vault Enterprise)', f.namespace), field('Transit mount', f.mount), field('KV v2 mount', f.kvMount),
      field('Key path prefix in KV', f.prefix), field('CA certificate', f.caCert, 'Empty: the system’s roots (unchanged on reconfigure).'),
      h('div', { class: 'check' }, f.skipTLS, h('label', { for: f.skipTLS.id }, 'Skip TLS verification (tests only)')));
    const submit = h('button', { type: 'submit', class: 'primary', id: 'save-config' }, 'Save configuration');
    let initial = {};

    const syncBackend = () => {
      const local = f.backend.value === 'local';
      localSet.hidden = !local;
      vaultSet.hidden = local;
      tokenBox.hidden = f.auth.value !== 'token';
      approleBox.hidden = f.auth.value !== 'approle';
    };
    f.backend.addEventListener('change', syncBackend);
    f.auth.addEventListener('change', syncBackend);

    const form = h('form', {
      class: 'form', id: 'config-form', novalidate: true,
      oninput: (e) => e.target.setCustomValidity?.(''),
      onsubmit: (e) => { e.preventDefault(); save(); },
    },
    h('fieldset', { class: 'mode' }, h('legend', {}, 'What to do'),
      h('div', { class: 'check' }, mode.reconf, h('label', { for: mode.reconf.id }, 'Change settings (reconfigure: only what you change is sent; a running service swaps to it without dropping requests)')),
      h('div', { class: 'check' }, mode.conf, h('label', { for: mode.conf.id }, 'Store a whole new configuration (configure: the service must be stopped)'))),
    h('fieldset', {}, h('legend', {}, 'General'),
      field('Backend', f.backend, 'Another backend type (or key location) cannot take over a configuration that holds keys.'),
      field('Default key id', f.defaultKey, 'Used by data-key requests that name no key; created at start if missing.'),
      h('div', { class: 'check' }, f.cache, h('label', { for: f.cache.id }, 'Cache keys in memory')),
      h('div', { class: 'row' }, field('Cache entry lifetime (seconds)', f.ttl), field('Cache size (keys)', f.maxKeys)),
      h('div', { class: 'row' }, field('Backend call timeout (seconds)', f.timeout), field('Retries of backend reads', f.retries))),
    localSet, vaultSet,
    h('div', { class: 'actions' }, submit));
    mode.reconf.addEventListener('change', () => resetSecrets());
    mode.conf.addEventListener('change', () => resetSecrets());

    function resetSecrets() {
      const reconf = mode.reconf.checked;
      masterKey.reset(reconf);
      token.reset(reconf);
      secretId.reset(reconf);
    }

    function fill(status, config) {
      const c = status?.config_summary || {};
      const b = c.backend_summary || {};
      const configured = status ? status.status !== 'NotConfigured' : !!config;
      initial = {
        backend: c.backend_type || config?.backend || 'local',
        defaultKey: (config ? config.default_key_id : c.default_key_id) || '',
        cache: config ? config.cache_enabled : c.enable_cache ?? true,
        ttl: String(config?.cache_ttl_seconds ?? c.cache_summary?.ttl_seconds ?? 300),
        maxKeys: String(config?.cache_max_keys ?? c.cache_summary?.max_keys ?? 1000),
        timeout: String(c.timeout_seconds ?? 30),
        retries: String(c.retry_attempts ?? 3),
        keyDir: b.key_dir || '',
        perms: b.file_permissions !== undefined ? `0${b.file_permissions.toString(8)}` : '0600',
        address: b.address || '',
        auth: b.auth_method_type || 'token',
        roleId: '',
        namespace: b.namespace || '',
        mount: b.mount_path || 'transit',
        kvMount: b.kv_mount || 'secret',
        prefix: b.key_path_prefix || 'keyward/keys',
        caCert: '',
        skipTLS: !!b.skip_tls_verify,
      };
      for (const [k, el] of Object.entries(f)) {
        if (el.type === 'checkbox') el.checked = initial[k];
        else el.value = initial[k];
      }
      mode.reconf.checked = configured;
      mode.conf.checked = !configured;
      mode.reconf.disabled = !configured;
      resetSecrets();
      syncBackend();
    }

    // request builds the configure or reconfigure body. Reconfigure sends
    // only what changed, except that a new backend type (whose settings
    // start afresh on the server) gets every setting.
    function request() {
      const reconf = mode.reconf.checked;
      const full = !reconf || f.backend.value !== initial.backend;
      const r = {};
      const put = (key, el, conv = (v) => v) => {
        const v = el.type === 'checkbox' ? el.checked : el.value;
        const name = Object.keys(f).find((k) => f[k] === el);
        if (full || v !== initial[name]) r[key] = conv(v);
      };
      if (full) r.backend_type = f.backend.value;
      put('default_key_id', f.defaultKey);
      put('enable_cache', f.cache);
      put('cache_ttl_seconds', f.ttl, Number);
      put('max_cached_keys', f.maxKeys, Number);
      put('timeout_seconds', f.timeout, Number);
      put('retry_attempts', f.retries, Number);
      if (f.backend.value === 'local') {
        if (full ? f.keyDir.value !== '' : f.keyDir.value !== initial.keyDir) r.key_dir = f.keyDir.value;
        put('file_permissions', f.perms);
        masterKey.put(r, 'master_key');
      } else {
        put('address', f.address);
        put('namespace', f.namespace);
        put('mount_path', f.mount);
        put('kv_mount', f.kvMount);
        put('key_path_prefix', f.prefix);
        put('skip_tls_verify', f.skipTLS);
        if (f.caCert.value.trim()) r.ca_cert = f.caCert.value.trim();
        const secret = f.auth.value === 'token' ? token : secretId;
        if (full || f.auth.value !== initial.auth || secret.changed() || f.roleId.value) {
          const auth = {};
          if (f.auth.value === 'token') {
            token.put(auth, 'token');
            r.auth_method = auth;
          } else {
            auth.role_id = f.roleId.value;
            secretId.put(auth, 'secret_id');
            r.auth_method = { approle: auth };
          }
        }
      }
      return r;
    }

    function validate() {
      f.defaultKey.setCustomValidity(f.defaultKey.value ? checkKeyId(f.defaultKey.value) : '');
      f.ttl.setCustomValidity(checkRange('The cache entry lifetime', f.ttl.value, 1, 86400));
      f.maxKeys.setCustomValidity(checkRange('The cache size', f.maxKeys.value, 1, 1000000));
      f.timeout.setCustomValidity(checkRange('The timeout', f.timeout.value, 1, 300));
      f.retries.setCustomValidity(checkRange('The number of retries', f.retries.value, 0, 10));
      if (f.backend.value === 'local') {
        masterKey.check();
        return;
      }
      let url = null;
      try { url = new URL(f.address.value); } catch { /* not a URL */ }
      f.address.setCustomValidity(url && ['http:', 'https:'].includes(url.protocol) && url.host ? '' : 'Give Vault’s address as an http:// or https:// URL.');
      f.mount.setCustomValidity(f.mount.value ? '' : 'The Transit mount cannot be empty.');
      f.kvMount.setCustomValidity(f.kvMount.value ? '' : 'The KV mount cannot be empty.');
      // A new login (another method or backend, or a whole configuration)
      // needs its secret again.
      const newLogin = mode.conf.checked || f.backend.value !== initial.backend || f.auth.value !== initial.auth;
      if (f.auth.value === 'token') {
        token.check();
        token.require(newLogin ? 'A new login needs the token: choose where it comes from.' : '');
      } else {
        secretId.check();
        const changing = newLogin || secretId.changed() || f.roleId.value !== '';
        f.roleId.setCustomValidity(changing && !f.roleId.value ? 'Give the AppRole role id.' : '');
        secretId.require(changing ? 'A new AppRole login needs the secret id: choose where it comes from.' : '');
      }
    }

    async function save() {
      validate();
      // Hidden fields (the other backend, the other login method) do not count.
      for (const el of form.querySelectorAll('input, select, textarea')) {
        if (el.closest('[hidden]')) el.setCustomValidity('');
      }
      if (!form.reportValidity()) return;
      const reconf = mode.reconf.checked;
      const body = request();
      for (const s of [masterKey, token, secretId]) s.clear();
      await busy(submit, async () => {
        try {
          const resp = reconf ? await api.reconfigure(body) : await api.configure(body);
          say(okBox(`${resp.message || 'Saved'}. The service is ${resp.status}.`));
          await load();
        } catch (err) {
          say(errorBox(err));
        }
      });
    }

    // --- the state panel --------------------------------------------
    function drawState(s) {
      const start = h('button', { type: 'button', class: 'primary', id: 'start-service' }, 'Start');
      const stop = h('button', { type: 'button', class: 'secondary', id: 'stop-service' }, 'Stop');
      const clear = h('button', { type: 'button', class: 'secondary', id: 'clear-cache' }, 'Clear cache');
      const waiting = (s.secrets_required || []).map((name) => secretInput(name.replace('_', ' '), `start-${name}`));
      waiting.forEach((w) => w.reset(false));
      const run = (b, f2, done) => busy(b, async () => {
        try {
          await f2();
          say(okBox(done));
          await load();
        } catch (err) {
          say(errorBox(err));
        }
      });
      start.onclick = () => {
        waiting.forEach((w) => w.check());
        if (waiting.some((w) => !w.el.querySelector('input').checkValidity())) {
          waiting.forEach((w) => w.el.querySelector('input').reportValidity());
          return;
        }
        const body = {};
        (s.secrets_required || []).forEach((name, i) => waiting[i].put(body, name));
        waiting.forEach((w) => w.clear());
        run(start, () => api.start(body), 'The service is running.');
      };
      stop.onclick = () => run(stop, () => api.stop(), 'The service is stopped; its configuration is kept.');
      clear.onclick = () => run(clear, () => api.clearCache(), 'The cache is cleared.');
      const running = s.status === 'Running';
      start.disabled = running || s.status === 'NotConfigured';
      stop.disabled = !running;
      clear.disabled = !running;
      replace(stateBox, facts([
        ['Status', h('span', { id: 'service-status' }, badge(s.status))],
        ['Backend', s.backend_type || '—'],
        ['Healthy', s.healthy === null ? '—' : s.healthy ? 'yes' : 'no'],
        s.error ? ['Error', s.error] : null,
        s.secrets_required ? ['Waiting for', s.secrets_required.join(', ')] : null,
      ]), waiting.map((w) => w.el), h('div', { class: 'actions' }, start, stop, clear));
    }

    async function load() {
      const [st, cfg] = await Promise.allSettled([api.status(), api.config()]);
      if (st.status === 'fulfilled') drawState(st.value);
      else replace(stateBox, errorBox(st.reason));
      const config = cfg.status === 'fulfilled' ? cfg.value : null;
      const status = st.status === 'fulfilled' ? st.value : null;
      // 503 on /kms/config means "not configured yet": the form starts blank.
      if (cfg.status === 'rejected' && cfg.reason.status === 403) {
        replace(configBox, errorBox(cfg.reason));
        return;
      }
      fill(status, config);
      replace(configBox, form);
    }

    load();
    return null;
  },
};
