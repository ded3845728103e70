// Reading Keyward's Prometheus metrics in the browser: the text format,
// and rates and quantiles between two scrapes, computed as Prometheus'
// rate() and histogram_quantile() do (linear interpolation inside the
// bucket).

const REQUESTS = 'keyward_http_requests_total';
const DURATION = 'keyward_http_request_duration_seconds_bucket';
// The console's own scrapes are left out of the charts.
const SELF = '/metrics';

// parse reads the text exposition format into samples {name, labels, value}.
export function parse(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let i = 0;
    while (i < line.length && line[i] !== '{' && line[i] !== ' ') i += 1;
    const name = line.slice(0, i);
    const labels = {};
    if (line[i] === '{') {
      i += 1;
      while (i < line.length && line[i] !== '}') {
        const eq = line.indexOf('=', i);
        if (eq < 0 || line[eq + 1] !== '"') return out; // malformed: stop
        const key = line.slice(i, eq).trim();
        let j = eq + 2;
        let val = '';
        while (j < line.length && line[j] !== '"') {
          if (line[j] === '\\' && j + 1 < line.length) {
            const c = line[j + 1];
            val += c === 'n' ? '\n' : c;
            j += 2;
          } else {
            val += line[j];
            j += 1;
          }
        }
        labels[key] = val;
        i = j + 1;
        if (line[i] === ',') i += 1;
      }
      i += 1;
    }
    const rest = line.slice(i).trim().split(/\s+/);
    const value = parseValue(rest[0]);
    if (name && !Number.isNaN(value)) out.push({ name, labels, value });
  }
  return out;
}

function parseValue(s) {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}

// snapshot sums, over every route but /metrics, the request counters (all,
// 4xx, 5xx) and the latency histogram's cumulative buckets.
export function snapshot(samples, t) {
  const snap = { t, total: 0, client: 0, server: 0, buckets: new Map() };
  for (const s of samples) {
    if (s.labels.route === SELF) continue;
    if (s.name === REQUESTS) {
      snap.total += s.value;
      const code = Number(s.labels.status);
      if (code >= 500) snap.server += s.value;
      else if (code >= 400) snap.client += s.value;
    } else if (s.name === DURATION) {
      const le = parseValue(s.labels.le);
      snap.buckets.set(le, (snap.buckets.get(le) || 0) + s.value);
    }
  }
  return snap;
}

// quantile is histogram_quantile over cumulative bucket counts
// [[le, count], ...]: null without observations; the highest finite bound
// when the rank falls in the +Inf bucket.
export function quantile(q, buckets) {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  if (!sorted.length) return null;
  const total = sorted[sorted.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      if (count === prevCount) return le;
      return prevLe + (le - prevLe) * ((rank - prevCount) / (count - prevCount));
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

// between is one chart point from two snapshots: requests/s, 4xx/s, 5xx/s
// and the p50/p99 latency (seconds) of the requests in between. It is null
// when the counters went back (the server restarted) or no time passed.
export function between(a, b) {
  const dt = (b.t - a.t) / 1000;
  if (!(dt > 0) || b.total < a.total) return null;
  const delta = [];
  for (const [le, count] of b.buckets) {
    const d = count - (a.buckets.get(le) || 0);
    if (d < 0) return null;
    delta.push([le, d]);
  }
  return {
    t: b.t,
    rps: (b.total - a.total) / dt,
    clientErrors: (b.client - a.client) / dt,
    serverErrors: (b.server - a.server) / dt,
    p50: quantile(0.5, delta),
    p99: quantile(0.99, delta),
  };
}
