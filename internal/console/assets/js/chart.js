// A small SVG line chart for the overview: a fixed time window, a y axis
// from zero to a rounded maximum, one polyline per series, and a text
// summary of the latest values for screen readers and for reading exact
// figures. Colours come from the stylesheet (.series-N classes).

import { h, s } from './dom.js';

const W = 360;
const H = 160;
const PAD = { l: 44, r: 8, t: 8, b: 22 };

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// span labels the start of the window: "−45 s", "−3 min".
function span(ms) {
  return ms < 120000 ? `−${Math.round(ms / 1000)} s` : `−${Math.round(ms / 60000)} min`;
}

// lineChart draws series [{name, points: [{t, v}]}] over the last windowMs
// up to now; v null leaves a gap. format renders a value with its unit.
export function lineChart({ title, series, now, windowMs, format }) {
  const t0 = now - windowMs;
  const values = series.flatMap((sr) => sr.points.filter((p) => p.t >= t0 && p.v !== null).map((p) => p.v));
  const max = niceMax(Math.max(0, ...values));
  const x = (t) => PAD.l + ((t - t0) / windowMs) * (W - PAD.l - PAD.r);
  const y = (v) => H - PAD.b - (v / max) * (H - PAD.t - PAD.b);

  const grid = [0, 0.5, 1].map((f) => [
    s('line', { class: 'grid', x1: PAD.l, x2: W - PAD.r, y1: y(f * max), y2: y(f * max) }),
    s('text', { class: 'axis', x: PAD.l - 4, y: y(f * max) + 4, 'text-anchor': 'end' }, format(f * max, true)),
  ]);
  const xLabels = [
    s('text', { class: 'axis', x: PAD.l, y: H - 6, 'text-anchor': 'start' }, span(windowMs)),
    s('text', { class: 'axis', x: W - PAD.r, y: H - 6, 'text-anchor': 'end' }, 'now'),
  ];
  const lines = series.map((sr, i) => {
    // Split at gaps so that a missing point is not bridged.
    const runs = [];
    let run = [];
    for (const p of sr.points) {
      if (p.t < t0) continue;
      if (p.v === null) {
        if (run.length) runs.push(run);
        run = [];
      } else {
        run.push(`${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
      }
    }
    if (run.length) runs.push(run);
    return runs.map((r) => (r.length === 1
      ? s('circle', { class: `series series-${i}`, cx: r[0].split(',')[0], cy: r[0].split(',')[1], r: 2 })
      : s('polyline', { class: `series series-${i}`, points: r.join(' ') })));
  });

  const latest = series.map((sr, i) => {
    const last = [...sr.points].reverse().find((p) => p.v !== null);
    return h('li', {}, h('span', { class: `swatch series-${i}`, 'aria-hidden': 'true' }), `${sr.name}: `,
      h('strong', {}, last ? format(last.v) : 'no data'));
  });

  return h('figure', { class: 'chart' },
    h('figcaption', {}, title),
    s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}, the last ${span(windowMs).slice(1)}` },
      grid, xLabels, lines),
    h('ul', { class: 'legend' }, latest));
}
