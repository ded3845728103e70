// AWS Signature Version 4 in the browser, with WebCrypto (docs/console.md,
// "How the console signs"). The secret key is imported once as a
// non-extractable HMAC key ("AWS4" + secret); the bytes it was made from
// are overwritten at once, and the derived per-day signing key is a
// non-extractable CryptoKey too. Nothing here stores anything: the signer
// lives in the page's memory and dies with it.
//
// The canonical request is the one Keyward's verifier and the AWS SDKs
// build for the service "s3": the path as sent (each segment encoded with
// the RFC 3986 unreserved set), the query sorted, the headers host,
// x-amz-content-sha256 and x-amz-date, and the body's SHA-256.

const ALGORITHM = 'AWS4-HMAC-SHA256';
export const REGION = 'us-east-1';
export const SERVICE = 's3';

const utf8 = new TextEncoder();

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function sha256Hex(bytes) {
  return hex(await crypto.subtle.digest('SHA-256', bytes));
}

function hmacKey(raw) {
  return crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

function hmac(key, text) {
  return crypto.subtle.sign('HMAC', key, utf8.encode(text));
}

// uriEncode percent-encodes every UTF-8 byte outside A-Z a-z 0-9 - . _ ~.
export function uriEncode(text) {
  let out = '';
  for (const b of utf8.encode(text)) {
    const unreserved = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) ||
      b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
    out += unreserved ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

// canonicalQuery encodes [name, value] pairs and sorts them by name, then
// value: the query is sent exactly as it is signed.
export function canonicalQuery(pairs) {
  const enc = pairs.map(([k, v]) => [uriEncode(k), uriEncode(String(v))]);
  enc.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return enc.map(([k, v]) => `${k}=${v}`).join('&');
}

// amzDate is the X-Amz-Date form of a time: 20260102T030405Z.
export function amzDate(date) {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
}

// createSigner imports the secret and returns a signer bound to the access
// key. The caller must drop its own reference to secretKey.
export async function createSigner(accessKey, secretKey) {
  const seed = utf8.encode(`AWS4${secretKey}`);
  let root;
  try {
    root = await hmacKey(seed);
  } finally {
    seed.fill(0);
  }
  let keyDay = '';
  let signingKey = null;

  async function keyFor(day) {
    if (day !== keyDay) {
      let key = root;
      for (const part of [day, REGION, SERVICE, 'aws4_request']) {
        const raw = await hmac(key, part);
        key = await hmacKey(raw);
        new Uint8Array(raw).fill(0);
      }
      signingKey = key;
      keyDay = day;
    }
    return signingKey;
  }

  return {
    accessKey,
    // sign returns the headers to send: X-Amz-Date, X-Amz-Content-Sha256
    // and Authorization. path must already be encoded (see uriEncode),
    // query be canonicalQuery's output, body a Uint8Array.
    async sign({ method, host, path, query, body, now }) {
      const stamp = amzDate(now);
      const day = stamp.slice(0, 8);
      const payload = await sha256Hex(body);
      const headers = { host, 'x-amz-content-sha256': payload, 'x-amz-date': stamp };
      const names = Object.keys(headers).sort();
      const canonHeaders = names.map((n) => `${n}:${headers[n].trim()}\n`).join('');
      const signed = names.join(';');
      const canonical = [method, path, query, canonHeaders, signed, payload].join('\n');
      const scope = `${day}/${REGION}/${SERVICE}/aws4_request`;
      const toSign = [ALGORITHM, stamp, scope, await sha256Hex(utf8.encode(canonical))].join('\n');
      const signature = hex(await hmac(await keyFor(day), toSign));
      return {
        'X-Amz-Date': stamp,
        'X-Amz-Content-Sha256': payload,
        Authorization: `${ALGORITHM} Credential=${accessKey}/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
      };
    },
  };
}
