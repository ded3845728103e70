// Checks made in the browser before a request is sent, mirroring the
// server's rules (docs/api.md) so that most mistakes are shown next to the
// field. The server checks everything again.

export const KEY_ID = '[A-Za-z0-9._\\-]{1,128}';
export const ALIAS = 'alias/[A-Za-z0-9_\\-][A-Za-z0-9\\/_\\-]*';

const utf8 = new TextEncoder();

// checkKeyId returns '' or what is wrong with a key id.
export function checkKeyId(id) {
  if (!new RegExp(`^${KEY_ID}$`).test(id)) return 'A key id is 1 to 128 letters, digits, ".", "_" or "-".';
  if (id === '.' || id === '..') return 'A key id cannot be "." or "..".';
  if (id === 'keyward-record-kek') return 'This id is reserved.';
  return '';
}

// checkKeyRef accepts a key id or an alias.
export function checkKeyRef(ref) {
  return ref.startsWith('alias/') ? checkAlias(ref) : checkKeyId(ref);
}

export function checkAlias(name) {
  if (!new RegExp(`^${ALIAS}$`).test(name) || name.length > 255) return 'An alias is alias/ followed by letters, digits, "/", "_" or "-" (255 characters at most).';
  if (name.startsWith('alias/aws/')) return 'Names under alias/aws/ are reserved.';
  return '';
}

export function checkTags(tags) {
  const entries = Object.entries(tags);
  if (entries.length > 50) return 'At most 50 tags.';
  for (const [k, v] of entries) {
    const kl = utf8.encode(k).length;
    if (kl < 1 || kl > 128) return `Tag key "${k}" must be 1 to 128 bytes.`;
    if (utf8.encode(v).length > 256) return `The value of tag "${k}" is longer than 256 bytes.`;
  }
  return '';
}

// checkContext applies the encryption context limits (64 entries, 8192
// bytes of keys and values).
export function checkContext(ctx) {
  const entries = Object.entries(ctx);
  if (entries.length > 64) return 'An encryption context holds at most 64 entries.';
  const bytes = entries.reduce((n, [k, v]) => n + utf8.encode(k).length + utf8.encode(v).length, 0);
  if (bytes > 8192) return 'An encryption context holds at most 8192 bytes of keys and values.';
  return '';
}

// checkRange returns '' or a message when v is not an integer in [lo, hi].
export function checkRange(label, v, lo, hi) {
  const n = Number(v);
  if (v === '' || !Number.isInteger(n) || n < lo || n > hi) return `${label} must be a whole number from ${lo} to ${hi}.`;
  return '';
}
