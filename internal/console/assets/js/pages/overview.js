// Overview: the service's state, backend and health, keys by state, and
// live charts of requests per second, errors per second and p50/p99
// latency, computed in the browser from /metrics.

import { h, replace } from '../dom.js';
import { ready } from '../api.js';
import { errorBox } from '../errors.js';
import { lineChart } from '../chart.js';
import { parse, snapshot, between } from '../metrics.js';
import { badge, facts, section } from './common.js';

// POLL_MS is how often /metrics is read while the overview is shown;
// WINDOW_MS how much history the charts show.
const POLL_MS = 3000;
const WINDOW_MS = 5 * 60 * 1000;
const MIN_WINDOW_MS = 60 * 1000;
// COUNT_PAGES bounds the listing that counts keys (1000 keys a page).
const COUNT_PAGES = 20;

export default {
  title: () => 'Overview',
  render(main, { api, session }) {
    const statusBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
    const keysBox = h('div', {}, h('p', { class: 'muted' }, 'Counting…'));
    const chartsBox = h('div', { class: 'charts' }, h('p', { class: 'muted' }, 'Reading metrics…'));
    const refresh = h('button', { type: 'button', class: 'secondary', onclick: () => { loadStatus(); loadKeys(); } }, 'Refresh');
    main.append(
      h('div', { class: 'page-head' }, h('h1', {}, 'Overview'), refresh),
      h('div', { class: 'grid-2' }, section('Service', statusBox), section('Keys by state', keysBox)),
      section('Traffic', h('p', { class: 'muted' }, `All admin requests except the console’s own reads of /metrics, every ${POLL_MS / 1000} s.`), chartsBox),
    );

    async function loadStatus() {
      const [st, isReady] = await Promise.allSettled([api.status(), ready()]);
      const readyText = isReady.value === null ? 'unknown' : isReady.value ? 'ready' : 'not ready';
      if (st.status === 'rejected') {
        replace(statusBox, errorBox(st.reason), facts([['Readiness (/health/ready)', readyText]]));
        return;
      }
      const s = st.value;
      const c = s.config_summary || {};
      replace(statusBox, facts([
        ['Status', h('span', { id: 'service-status' }, badge(s.status))],
        ['Backend', s.backend_type || '—'],
        ['Healthy', s.healthy === null ? '—' : s.healthy ? 'yes' : 'no'],
        ['Readiness (/health/ready)', readyText],
        s.error ? ['Error', s.error] : null,
        s.secrets_required ? ['Waiting for', s.secrets_required.join(', ')] : null,
        ['Default key', c.default_key_id || '—'],
        ['Cache', c.cache_summary ? `${c.cache_summary.max_keys} keys for ${c.cache_summary.ttl_seconds} s` : 'off'],
      ]));
    }

    async function loadKeys() {
      const counts = { Enabled: 0, Disabled: 0, PendingDeletion: 0 };
      let hidden = 0;
      let unreadable = 0;
      let marker = null;
      let pages = 0;
      try {
        do {
          const page = await api.listKeys({ limit: 1000, marker });
          for (const k of page.keys) {
            if (k.key_state in counts) counts[k.key_state] += 1;
            else hidden += 1;
          }
          unreadable = Math.max(unreadable, (page.unreadable_key_ids || []).length);
          marker = page.truncated ? page.next_marker : null;
          pages += 1;
        } while (marker && pages < COUNT_PAGES);
      } catch (err) {
        replace(keysBox, errorBox(err));
        return;
      }
      const row = (label, n, state) => h('li', {}, h('a', { href: state ? `#/keys?state=${state}` : '#/keys' }, h('span', { class: 'count', 'data-state': state || 'hidden' }, String(n)), ' ', label));
      replace(keysBox, h('ul', { class: 'counts' },
        row('enabled', counts.Enabled, 'Enabled'),
        row('disabled', counts.Disabled, 'Disabled'),
        row('pending deletion', counts.PendingDeletion, 'PendingDeletion'),
        hidden ? row('that your user may not describe', hidden) : null),
      unreadable ? h('p', { class: 'notice error' }, `${unreadable} key records cannot be read (see the key list).`) : null,
      marker ? h('p', { class: 'muted' }, `Counted the first ${pages * 1000} keys.`) : null);
    }

    // The history survives leaving and coming back to the page (it lives
    // in the session, and goes with it).
    const hist = session.data.get('metrics') || { last: null, points: [] };
    session.data.set('metrics', hist);
    let stopped = false;
    let timer = null;

    async function poll() {
      try {
        const text = await api.metrics();
        const snap = snapshot(parse(text), Date.now());
        if (hist.last) {
          const p = between(hist.last, snap);
          if (p) hist.points.push(p);
        }
        hist.last = snap;
        hist.points = hist.points.filter((p) => p.t >= Date.now() - WINDOW_MS);
        drawCharts();
      } catch (err) {
        if (err.status === 403) {
          replace(chartsBox, errorBox(err), h('p', {}, 'The traffic charts read /metrics, which needs kms:ServiceControl. Everything else in the console works without it.'));
          return; // no point asking again
        }
        replace(chartsBox, errorBox(err));
      }
      if (!stopped) timer = setTimeout(poll, POLL_MS);
    }

    function drawCharts() {
      const now = Date.now();
      const pts = hist.points;
      // Axis labels are round (1, 2, 5 times a power of ten, and halves).
      const round = (v) => String(+v.toPrecision(2));
      const num = (v, axis) => (axis ? round(v) : v.toFixed(v < 10 ? 2 : 1));
      const ms = (v, axis) => (axis ? `${round(v * 1000)} ms` : `${(v * 1000).toFixed(v < 0.01 ? 2 : 1)} ms`);
      if (!pts.length) {
        replace(chartsBox, h('p', { class: 'muted', id: 'charts-waiting' }, 'Waiting for a second reading of the metrics…'));
        return;
      }
      // The window grows with the history, from one minute to WINDOW_MS.
      const windowMs = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, now - pts[0].t + POLL_MS));
      replace(chartsBox,
        lineChart({ title: 'Requests per second', now, windowMs, format: (v, a) => (a ? num(v, a) : `${num(v)} /s`), series: [{ name: 'requests', points: pts.map((p) => ({ t: p.t, v: p.rps })) }] }),
        lineChart({ title: 'Errors per second', now, windowMs, format: (v, a) => (a ? num(v, a) : `${num(v)} /s`), series: [
          { name: '4xx (refused)', points: pts.map((p) => ({ t: p.t, v: p.clientErrors })) },
          { name: '5xx (failed)', points: pts.map((p) => ({ t: p.t, v: p.serverErrors })) }] }),
        lineChart({ title: 'Latency', now, windowMs, format: ms, series: [
          { name: 'p50', points: pts.map((p) => ({ t: p.t, v: p.p50 })) },
          { name: 'p99', points: pts.map((p) => ({ t: p.t, v: p.p99 })) }] }));
    }

    loadStatus();
    loadKeys();
    if (hist.points.length) drawCharts();
    poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  },
};
